"""What a diffusion training step consumes: latents of one clip layout, plus prompts."""
from __future__ import annotations

from dataclasses import dataclass, field
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
    reference_images: torch.Tensor | None = None  # [B, 3, H, W] in [-1, 1] (view 0), for rewards
    garment_images: torch.Tensor | None = None  # [B, 3, H, W] in [-1, 1] (first slot), for rewards
    foreground: torch.Tensor | None = None  # [B, 1, F, h, w] in [0, 1]: person cover per latent cell, or None
    # the same cover for the world's other masks (garment slots, head, hair, skin): {name: [B, 1, F, h, w]}
    regions: dict[str, torch.Tensor] = field(default_factory=dict)
    # the clips encoded again with the texture of `DataConfig.flatten_regions` averaged away
    # (`flatten.flatten_inside`), for the teacher's restoration objective; None when not asked for
    flat_video: torch.Tensor | None = None  # [B, C, F, h, w]
    # pixels the person covers in any frame of the clip (world clips), for GR-DMD's background term; or None
    person_hull: torch.Tensor | None = None  # [B, 1, H, W] in {0, 1}

    @property
    def conditions(self) -> torch.Tensor:
        return torch.cat([self.references, self.garments], dim=2)  # [B, C, N+M, h, w]

    @property
    def mask_names(self) -> list[str]:
        """The masks this batch has covers of: "person" (`foreground`) and its regions."""
        return ["person"] * (self.foreground is not None) + sorted(self.regions)

    def cover(self, name: str) -> torch.Tensor | None:
        """The cover `[B, 1, F, h, w]` of a named mask: "person" is `foreground`, any other name one of
        `regions`; None when the batch has no such mask (user clips have none)."""
        return self.foreground if name == "person" else self.regions.get(name)

    def to(self, device: torch.device | str) -> "LatentBatch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return LatentBatch(move(self.video), move(self.references), move(self.garments), list(self.prompts),
                           self.slots, move(self.reference_images), move(self.garment_images),
                           move(self.foreground), {k: move(v) for k, v in self.regions.items()},
                           move(self.flat_video), move(self.person_hull))


LatentBatchFn = Callable[[int], LatentBatch]  # step -> batch (deterministic per step and rank)
