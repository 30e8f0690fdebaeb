"""The training loop every stage shares: resume, warm-up, cool-down, logging, periodic resumable saves, export.

A stage owns its networks, optimizers and the maths of one step (`Stage.train_step`); the runner
owns everything around it, so codec, teacher, forcing, DMD and try-off training behave alike.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch
from torch import nn

from .distributed import DistInfo
from .state import OPTIMIZER_RESET, load_state, save_state

__all__ = ["Stage", "RunConfig", "lr_factor", "run_stage", "export_snapshot", "read_log"]

log = logging.getLogger(__name__)
STATE_FILE = "state.safetensors"
LOG_FILE = "log.jsonl"


class Stage(Protocol):
    """One training stage. `train_step` does forward, backward and the optimizer step(s)."""

    name: str

    def modules(self) -> Mapping[str, nn.Module]: ...

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]: ...

    def train_step(self, step: int) -> dict[str, torch.Tensor | float]:
        """Metrics may be detached tensors: the runner reads them only when it logs (no per-step sync)."""

    def export(self, out_dir: Path) -> list[Path]: ...


@dataclass(frozen=True)
class RunConfig:
    steps: int
    warmup: int = 0
    cooldown: int = 0  # the last `cooldown` steps before `steps` take the learning rate linearly down to ~0
    log_every: int = 10
    save_every: int = 200
    time_limit_s: float | None = None  # stop (and save) after this much wall time; resume later

    def __post_init__(self) -> None:
        for name in ("warmup", "cooldown"):
            if getattr(self, name) < 0:
                raise ValueError(f"run.{name} must be >= 0, got {getattr(self, name)}")


def lr_factor(run: RunConfig, step: int, warm_from: int = 0) -> float:
    """The learning rate of `step` as a share of the configured one: a linear warm-up over `run.warmup` steps
    from `warm_from` (0, or the step a compact state resumed at), a constant rate, and with `run.cooldown`
    a linear decay over the run's last steps (warm-up, stable, decay: the decay can start from any saved
    state of the stable phase, so a run can be continued at the full rate and cooled down again later)."""
    warm = min(1.0, (step - warm_from + 1) / run.warmup) if run.warmup > 0 else 1.0
    cool = min(1.0, (run.steps - step) / run.cooldown) if run.cooldown > 0 else 1.0
    return warm * cool


def _set_lr(optimizers: Mapping[str, torch.optim.Optimizer], factor: float) -> None:
    for opt in optimizers.values():
        for group in opt.param_groups:
            group.setdefault("base_lr", group["lr"])
            group["lr"] = group["base_lr"] * factor


def run_stage(stage: Stage, run: RunConfig, out_dir: str | Path, config: Any, info: DistInfo = DistInfo(),
              device: torch.device | str = "cpu", resume: bool = True,
              on_log: Callable[[dict], None] | None = None) -> dict:
    """Train `stage` up to `run.steps` (resuming from `out_dir/state.safetensors`); returns the last log row."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    step, elapsed, warm_from = 0, 0.0, 0
    if resume and state_path.exists():
        step, extra = load_state(state_path, stage.modules(), stage.optimizers(), device)
        elapsed = float(extra.get("wall_s", 0.0))
        if extra.get(OPTIMIZER_RESET):  # a compact state: fresh optimizer moments, so warm up again
            warm_from = step
        log.info("resumed %s at step %d from %s%s", stage.name, step, state_path,
                 " (optimizers restarted, learning rate warms up again)" if warm_from else "")
    start, row, window = time.perf_counter(), {}, []

    def save() -> None:
        if info.is_main:
            save_state(state_path, step, stage.modules(), stage.optimizers(), config,
                       {"wall_s": elapsed + time.perf_counter() - start, "stage": stage.name})

    while step < run.steps:
        _set_lr(stage.optimizers(), lr_factor(run, step, warm_from))
        window.append(stage.train_step(step))
        step += 1
        if step % run.log_every == 0 or step == run.steps:
            row = {"step": step, "wall_s": round(elapsed + time.perf_counter() - start, 2)}
            keys = dict.fromkeys(k for m in window for k in m)  # stages may report some metrics only on some steps
            row.update({k: round(float(sum(m[k] for m in window if k in m)) / sum(k in m for m in window), 6)
                        for k in keys})
            window = []
            if info.is_main:
                with open(out / LOG_FILE, "a") as f:
                    f.write(json.dumps(row) + "\n")
                if on_log is not None:
                    on_log(row)
        if step % run.save_every == 0:
            save()
        if run.time_limit_s is not None and time.perf_counter() - start > run.time_limit_s:
            log.info("time limit reached at step %d; saved for resuming", step)
            break
    save()
    if step >= run.steps and info.is_main:
        stage.export(out)
    return row


def export_snapshot(stage: Stage, out_dir: str | Path, dst: str | Path) -> tuple[int, list[Path]]:
    """Export the weights of `out_dir`'s saved state to `dst` (a run may still be training there)."""
    state_path = Path(out_dir) / STATE_FILE
    if not state_path.exists():
        raise FileNotFoundError(f"no training state at {state_path}: train the stage there first")
    step, _ = load_state(state_path, stage.modules(), {})
    Path(dst).mkdir(parents=True, exist_ok=True)
    return step, stage.export(Path(dst))


def read_log(out_dir: str | Path) -> list[dict]:
    path = Path(out_dir) / LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
