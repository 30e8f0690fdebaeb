"""What a diffusion training step consumes: latents of one clip layout, plus prompts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["LatentBatch", "LatentBatchFn"]


@dataclass
class LatentBatch:
    """One batch; every row shares the layout (number of reference views and garment slots).

    Condition frames are clean standalone image latents; the model sees them before the video
    frames in this order: references, then garment slots (in `slots` order).
    """

    video: torch.Tensor  # [B, C, F, h, w] clean video latents
    references: torch.Tensor  # [B, C, N, h, w]
    garments: torch.Tensor  # [B, C, M, h, w]
    prompts: list[str]
    slots: tuple[str, ...] = ("full",)

    @property
    def conditions(self) -> torch.Tensor:
        return torch.cat([self.references, self.garments], dim=2)  # [B, C, N+M, h, w]

    def to(self, device: torch.device | str) -> "LatentBatch":
        return LatentBatch(self.video.to(device), self.references.to(device), self.garments.to(device),
                           list(self.prompts), self.slots)


LatentBatchFn = Callable[[int], LatentBatch]  # step -> batch (deterministic per step and rank)
