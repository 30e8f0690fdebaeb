"""Stage `tryoff`: one DiT for try-off and try-on by partial diffusion (see `fashionchameleon.runtime.tryoff`).

A `CanvasBatch` row holds a dressed person latent, the flat garment latent of one slot and an
identity reference latent. Each step picks a direction per batch (try-off with probability
`DiffusionStageConfig.tryoff_prob`), noises only the target frame at one sampled t, keeps the others clean at t = 0,
and regresses the target's velocity.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ...runtime.files.checkpoint import save_checkpoint
from ...runtime.tryoff import canvas_positions, empty_context
from .distributed import DistInfo
from ...runtime.stream.schedule import frame_timesteps
from .dit_stage import DiffusionStageConfig, DiTStage, sample_timesteps

__all__ = ["CanvasBatch", "TryOffStage"]


@dataclass
class CanvasBatch:
    person: torch.Tensor  # [B, C, 1, h, w] a frame of someone wearing the garment
    garment: torch.Tensor  # [B, C, 1, h, w] the flat garment of `slot`
    reference: torch.Tensor  # [B, C, 1, h, w] the same person in another outfit (try-on identity)
    slot: str = "full"

    def to(self, device) -> "CanvasBatch":
        return CanvasBatch(self.person.to(device), self.garment.to(device), self.reference.to(device), self.slot)


class TryOffStage(DiTStage):
    name = "tryoff"
    export_stage = "tryoff"

    def __init__(self, cfg: DiffusionStageConfig, batches: Callable[[int], CanvasBatch],
                 device: torch.device | str = "cpu", dist: DistInfo = DistInfo()) -> None:
        super().__init__(cfg, batches, device, dist)  # the prompt encoder is built but unused (all-zero context)

    def loss(self, batch: CanvasBatch, generator: torch.Generator) -> torch.Tensor:
        tryoff = bool(torch.rand((), generator=generator) < self.cfg.tryoff_prob)
        if tryoff:
            clean, target, direction = batch.person, batch.garment, "tryoff"
        else:
            clean, target, direction = torch.cat([batch.reference, batch.garment], 2), batch.person, "tryon"
        b, k = target.shape[0], clean.shape[2]
        t = sample_timesteps(self.schedule, (b,), generator).to(self.device)
        noise = torch.randn(target.shape, generator=generator).to(self.device)
        x_t = self.schedule.add_noise(target, noise, t[:, None, None, None, None])
        t_frames = frame_timesteps(t, 1, k)  # [B, k + 1]
        v = self.model(torch.cat([clean, x_t], 2), t_frames, empty_context(self.model, b),
                       canvas_positions(direction, batch.slot))[:, :, k:].float()
        per = F.mse_loss(v, self.schedule.velocity_target(target, noise), reduction="none").mean((1, 2, 3, 4))
        return (per * self.cfg.loss_weight(t)).mean()

    def export(self, out_dir: Path) -> list[Path]:
        return [save_checkpoint(Path(out_dir) / "tryoff.safetensors", self.exported_model().state_dict(), "tryoff",
                                self.model_cfg, self.cfg.export_meta() or None)]
