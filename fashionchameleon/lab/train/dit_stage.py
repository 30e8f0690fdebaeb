"""What the DiT stages (teacher, forcing, try-off) share: config, networks, optimizer, step, export."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from ...runtime.files.checkpoint import load_checkpoint, save_checkpoint
from ...runtime.files.dit_loading import load_dit_state
from ...runtime.config import JsonConfig, ModelConfig, preset
from ...runtime.garment_layout import LAYOUT_KEY, check_layout
from ..weights_world import world_entry
from ...runtime.dit.model import WanDiT, grown_keys
from ...runtime.stream.schedule import FlowMatchSchedule, training_weight
from ...runtime.stream.seeding import generator_for
from ...runtime.encoders.text import TinyPromptEncoder, TinyTextConfig
from .batch import LatentBatch, LatentBatchFn
from .distributed import DistInfo, sync_gradients
from .ema import EMA

__all__ = ["DiffusionStageConfig", "DiTStage", "build_model_config", "sample_timesteps", "drop_prompts",
           "init_weights", "build_text", "cell_weights", "weighted_mean"]


# loss weight per timestep, by the name a stage config gives (`DiffusionStageConfig.timestep_weight`)
TIMESTEP_WEIGHTS = {"bell": training_weight, "uniform": lambda t: torch.ones_like(t, dtype=torch.float32)}


@dataclass(frozen=True)
class DiffusionStageConfig(JsonConfig):
    """Knobs shared by the teacher, forcing and try-off stages."""

    preset: str = "tiny"
    model: dict = field(default_factory=dict)  # ModelConfig overrides on top of the preset
    text: dict = field(default_factory=dict)  # TinyTextConfig fields
    lr: float = 2e-4
    # learning-rate factor of the grown parameters (`model.GROWN_PARAMETERS`, e.g. the garment hint's embedding):
    # a model grown from a trained checkpoint starts them at zero, and Adam's full step moves them by noise first
    grown_lr: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    text_dropout: float = 0.1
    # teacher: the probability a clip's garment slots are all replaced by the null garment (an all-zero
    # latent frame, `sampler.null_garments`), so the teacher can be guided on its garments; 0 = never
    garment_dropout: float = 0.0
    # try-off stage: the probability a step trains the try-off direction (person -> flat garment) rather than
    # try-on (reference + garment -> person); the product uses only try-off, so 1.0 gives it every step
    tryoff_prob: float = 0.5
    shift: float = 5.0
    # teacher: the probability a clip whose timestep lies in `restore_sigmas` is noised from its flattened copy
    # (`LatentBatch.flat_video`: `DataConfig.flatten_regions` with their texture averaged away) while the
    # target stays the true clip, so the model learns to put back, from the conditions, the detail that a
    # sample from noise still lacks at mid noise (`flatten.py`); 0 = never
    restore_prob: float = 0.0
    restore_sigmas: tuple[float, float] = (0.3, 0.9)  # the noise range (sigma) where restoration is trained
    foreground_weight: float = 0.0  # loss weight 1 + this x person cover per latent cell (world data); 0 = uniform
    # extra loss weight per named world mask ("upper", "lower", "full", "head", "hair", "skin"): its
    # cells' weight gains this x their cover, on top of the person's (e.g. {"upper": 6} for the top)
    region_weights: dict = field(default_factory=dict)
    # loss weight over timesteps: "bell" (Wan / Self-Forcing fine-tuning: the extremes count least) or "uniform"
    # (training from scratch: the high-noise end, where a clip's layout is decided, must count fully)
    timestep_weight: str = "bell"
    init_model: str = ""  # DiT checkpoint to start from (the teacher for forcing/try-off); "" = fresh init
    init_text: str = ""  # prompt-encoder checkpoint to start from
    # fine-tune the prompt encoder too; False keeps it as loaded (a student distilled from a teacher then
    # shares the teacher's prompt features, so one shipped encoder serves both)
    train_text: bool = True
    # > 0 keeps an exponential moving average of the DiT (e.g. 0.999); export then writes the average
    ema_decay: float = 0.0
    seed: int = 0
    garment_layout: str = "frame"  # the data's flat-lay layout, recorded in the export (build_stage sets it)
    world: str = ""  # the data's world as `trained_world` JSON, recorded in the export (build_stage sets it)

    def export_meta(self) -> dict[str, str]:
        """What an export records of its data: the garment layout (unless "frame") and the world."""
        meta = {LAYOUT_KEY: self.garment_layout} if self.garment_layout != "frame" else {}
        return {**meta, **world_entry(self.world)}

    def __post_init__(self) -> None:
        check_layout(self.garment_layout)
        if self.grown_lr <= 0:
            raise ValueError(f"grown_lr must be > 0 (a factor of lr), got {self.grown_lr}")
        if not 0.0 <= self.garment_dropout < 1.0:
            raise ValueError(f"garment_dropout must be in [0, 1), got {self.garment_dropout}")
        if not 0.0 <= self.restore_prob <= 1.0:
            raise ValueError(f"restore_prob must be in [0, 1], got {self.restore_prob}")
        lo, hi = self.restore_sigmas
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"restore_sigmas must be (low, high) with 0 < low <= high <= 1, got {self.restore_sigmas}")
        if not 0.0 <= self.tryoff_prob <= 1.0:
            raise ValueError(f"tryoff_prob must be in [0, 1], got {self.tryoff_prob}")
        bad = {k: v for k, v in self.region_weights.items() if not isinstance(v, (int, float)) or v < 0}
        if bad:
            raise ValueError(f"region_weights must map mask names to weights >= 0, got {bad}")
        if self.timestep_weight not in TIMESTEP_WEIGHTS:
            raise ValueError(f"timestep_weight must be one of {list(TIMESTEP_WEIGHTS)}, got {self.timestep_weight!r}")

    def loss_weight(self, t: torch.Tensor) -> torch.Tensor:
        """Per-sample loss weights for timesteps `t` (any shape, float)."""
        return TIMESTEP_WEIGHTS[self.timestep_weight](t)


def build_model_config(cfg: DiffusionStageConfig) -> ModelConfig:
    return preset(cfg.preset).replace(**cfg.model) if cfg.model else preset(cfg.preset)


def sample_timesteps(schedule: FlowMatchSchedule, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Timesteps drawn uniformly over the 1000-entry shifted table (float32, CPU)."""
    table = schedule.training_timesteps().float()
    return table[torch.randint(0, len(table), shape, generator=generator)]


def drop_prompts(prompts: list[str], p: float, generator: torch.Generator) -> list[str]:
    keep = torch.rand(len(prompts), generator=generator) >= p
    return [t if k else "" for t, k in zip(prompts, keep.tolist())]


def cell_weights(batch: LatentBatch, foreground_weight: float,
                 region_weights: Mapping[str, float] | None = None) -> torch.Tensor | None:
    """Loss weights `[B, 1, F, h, w]` = 1 + foreground_weight x person cover + sum of region weight x
    that region's cover (`LatentBatch.regions`); None = uniform.

    The person is ~10 % of a frame of the procedural world, so a uniform loss spends most of its
    signal on the background; weighting the person's cells makes the garments learn sooner, and a
    region weight moves more of it onto one part (a garment slot, the head). Clips without masks
    (user manifests) train uniformly.
    """
    regions = {k: v for k, v in (region_weights or {}).items() if v > 0}
    if batch.foreground is None or (foreground_weight <= 0 and not regions):
        return None
    missing = sorted(name for name in regions if batch.cover(name) is None)
    if missing:
        raise ValueError(f"region_weights names {missing}, which this data has no masks for; "
                         f"its masks: {batch.mask_names}")
    weights = 1.0 + foreground_weight * batch.foreground
    for name, w in regions.items():
        weights = weights + w * batch.cover(name)
    return weights


def weighted_mean(err: torch.Tensor, weights: torch.Tensor | None, dims: tuple[int, ...]) -> torch.Tensor:
    """Mean of `err` `[B, C, F, h, w]` over `dims`, weighted by broadcastable `weights` (None = plain mean)."""
    if weights is None:
        return err.mean(dims)
    w = weights.expand_as(err)
    return (err * w).sum(dims) / w.sum(dims)


def init_weights(model: WanDiT, path: str, stages: tuple[str, ...]) -> None:
    """Load a DiT checkpoint of one of `stages` into `model` (nothing when `path` is empty)."""
    if path:
        load_dit_state(model, load_checkpoint(path, stages).tensors, path)


def build_text(text_cfg: dict, init: str, device: torch.device) -> TinyPromptEncoder:
    """The prompt encoder of a stage, from a checkpoint when `init` is given."""
    text = TinyPromptEncoder(TinyTextConfig.from_json(text_cfg)).to(device)
    if init:
        text.load_state_dict(load_checkpoint(init, "text").tensors)
    return text


class DiTStage:
    """Base of the DiT stages: subclasses set `name`, `export_stage` and implement `loss`."""

    name = "dit"
    export_stage = "teacher"
    restored_inits = ("init_model", "init_text")  # starting checkpoints a resumed state replaces (`modules`)

    def __init__(self, cfg: DiffusionStageConfig, batches: LatentBatchFn, device: torch.device | str = "cpu",
                 dist: DistInfo = DistInfo()) -> None:
        self.cfg, self.batches, self.device, self.dist = cfg, batches, torch.device(device), dist
        self.model_cfg = build_model_config(cfg)
        self.model = WanDiT(self.model_cfg).to(self.device)
        self.text = build_text(cfg.text, cfg.init_text, self.device)
        if self.text.text_dim != self.model_cfg.text_dim:
            raise ValueError(f"prompt encoder text_dim {self.text.text_dim} != model text_dim {self.model_cfg.text_dim}")
        init_weights(self.model, cfg.init_model, ("teacher", "student"))
        self.schedule = FlowMatchSchedule(shift=cfg.shift)
        self.text.requires_grad_(cfg.train_text)
        self.opt = torch.optim.AdamW(self._param_groups(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.ema = EMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None

    def _param_groups(self) -> list[dict]:
        """The trained parameters: one group at `lr`, plus the grown ones at `lr x grown_lr` when that differs."""
        named = dict(self.model.named_parameters())
        # every grown parameter (an empty state lacks them all), in its own group only when its rate differs
        grown_names = set(grown_keys({}, named)) if self.cfg.grown_lr != 1.0 else set()
        grown = [p for k, p in named.items() if k in grown_names]
        rest = [p for k, p in named.items() if k not in grown_names]
        rest += list(self.text.parameters()) if self.cfg.train_text else []
        return [{"params": rest}] + ([{"params": grown, "lr": self.cfg.lr * self.cfg.grown_lr}] if grown else [])

    def modules(self):
        return {"model": self.model, "text": self.text, **({"ema": self.ema} if self.ema is not None else {})}

    def optimizers(self):
        return {"opt": self.opt}

    def loss(self, batch: LatentBatch, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        self.model.train()
        self.text.train(self.cfg.train_text)
        loss = self.loss(self.batches(step).to(self.device), generator_for(self.cfg.seed, step))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in self.opt.param_groups for p in g["params"]]
        sync_gradients(params, self.dist)
        torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.opt.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return {"loss": loss.detach()}

    def exported_model(self) -> WanDiT:
        """The weights export writes: the moving average when the stage keeps one."""
        return self.ema.shadow if self.ema is not None else self.model

    def export(self, out_dir: Path) -> list[Path]:
        out, model = Path(out_dir), self.exported_model()
        return [save_checkpoint(out / f"{self.name}.safetensors", model.state_dict(), self.export_stage, self.model_cfg,
                                self.cfg.export_meta() or None),
                save_checkpoint(out / "text.safetensors", self.text.state_dict(), "text", self.text.config)]
