"""Resumable training state in one safetensors file (no pickles): modules, optimizers, step, RNG.

Optimizer state dicts are flattened: tensors become `optim.<name>.<param id>.<key>` entries and
everything else (param groups, scalar state such as Adam's `step` when it is a number) goes into
JSON metadata. The file is overwritten in place, atomically, so a run keeps one small checkpoint.

`compact_state` writes a copy small enough to commit between sessions: module weights in fp16,
no optimizer moments (a 9 M-parameter DiT: ~18 MB instead of ~108 MB). Resuming from it restores
the weights, the step and the RNG, starts the optimizers afresh and tells the runner to warm the
learning rate up again (`extra[OPTIMIZER_RESET]`). A model that has grown parameters since its state
was saved (`model.GROWN_PARAMETERS`, e.g. a garment hint added to a trained teacher) resumes with them
at their initial zeros and restarts its optimizers the same way.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ...runtime.files.checkpoint import load_checkpoint, save_checkpoint
from ...runtime.dit.model import grown_keys
from .distributed import unwrap

__all__ = ["save_state", "load_state", "compact_state", "OPTIMIZER_RESET"]

OPTIMIZER_RESET = "optimizer_reset"  # key in load_state's `extra`: the file had no optimizer moments
OPTIONAL_MODULES = "optional_modules"  # metadata key: modules a resume may do without (compact_state drops them)


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in sd["state"].items():
        for key, val in entries.items():
            if isinstance(val, torch.Tensor):
                tensors[f"optim.{name}.{pid}.{key}"] = val
            else:
                scalars[f"{pid}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(name: str, opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for key, val in tensors.items():
        if key.startswith(prefix):
            pid, entry = key[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[entry] = val
    for key, val in meta["scalars"].items():
        pid, entry = key.split(".", 1)
        state.setdefault(int(pid), {})[entry] = val
    configured = [g.get("base_lr", g["lr"]) for g in opt.param_groups]  # the stage config's rates
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    for group, lr in zip(opt.param_groups, configured):  # a resume may change the rate: the config wins
        group["base_lr"] = group["lr"] = lr


def save_state(path: str | Path, step: int, modules: Mapping[str, nn.Module],
               optimizers: Mapping[str, torch.optim.Optimizer], config: Any, extra: Mapping[str, Any] | None = None) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update({f"module.{name}.{k}": v for k, v in unwrap(module).state_dict().items()})
    optim_meta = {}
    for name, opt in optimizers.items():
        t, meta = _flatten_optimizer(name, opt)
        tensors.update(t)
        optim_meta[name] = meta
    tensors["rng.torch"] = torch.get_rng_state()
    optional = sorted(n for n, m in modules.items() if getattr(m, "optional_in_state", False))
    info = {"step": str(step), "optimizers": json.dumps(optim_meta), "extra": json.dumps(dict(extra or {})),
            OPTIONAL_MODULES: json.dumps(optional)}
    return save_checkpoint(path, tensors, "training", config, extra=info)


def load_state(path: str | Path, modules: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
               device: torch.device | str = "cpu") -> tuple[int, dict]:
    """Restore modules and optimizers in place; returns (step, extra)."""
    ckpt = load_checkpoint(path, expect_stage="training")
    grew = False  # a module gained parameters the state lacks: its optimizer's groups no longer match
    for name, module in modules.items():
        prefix = f"module.{name}."
        sd = {k[len(prefix):]: v for k, v in ckpt.tensors.items() if k.startswith(prefix)}
        if not sd and getattr(module, "optional_in_state", False):
            continue  # e.g. an EMA switched on after this state was saved: it starts afresh
        grown = grown_keys(sd, unwrap(module).state_dict())  # kept at their initial zeros
        grew = grew or bool(grown)
        unwrap(module).load_state_dict({**sd, **grown}, strict=True)
    optim_meta = json.loads(ckpt.metadata["optimizers"])
    extra = json.loads(ckpt.metadata["extra"])
    for name, opt in optimizers.items():
        if name in optim_meta and not grew:
            _restore_optimizer(name, opt, {k: v.to(device) for k, v in ckpt.tensors.items()}, optim_meta[name])
        else:
            extra[OPTIMIZER_RESET] = True
    torch.set_rng_state(ckpt.tensors["rng.torch"])
    return int(ckpt.metadata["step"]), extra


def compact_state(src: str | Path, dst: str | Path, dtype: torch.dtype = torch.float16,
                  keep_optional: bool = False) -> Path:
    """Copy a training state without optimizer moments, module weights cast to `dtype` (see module doc).

    Modules the state lists as optional (`optional_in_state`, e.g. a DiT stage's weights' average,
    which a resumed run restarts from the resumed weights) are left out too, so the copy stays one
    network's size; every module a resume needs is kept. `keep_optional` keeps them as well (twice
    the size): a resumed teacher then goes on with its average, and its export is the average at
    once instead of after ~1,000 steps.
    """
    ckpt = load_checkpoint(src, expect_stage="training")
    optional = [] if keep_optional else json.loads(ckpt.metadata.get(OPTIONAL_MODULES, "[]"))
    dropped = tuple(f"module.{m}." for m in optional)
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in ckpt.tensors.items()
               if k.startswith("module.") and not k.startswith(dropped)}
    tensors["rng.torch"] = ckpt.tensors["rng.torch"]
    extra = json.loads(ckpt.metadata["extra"])
    extra["compacted_from"] = Path(src).name
    info = {"step": ckpt.metadata["step"], "optimizers": json.dumps({}), "extra": json.dumps(extra)}
    return save_checkpoint(dst, tensors, "training", ckpt.config, extra=info)
