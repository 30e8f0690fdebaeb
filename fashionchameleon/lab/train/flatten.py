"""Texture removed inside a region: the input side of the teacher's restoration objective.

The teacher keeps a garment's texture that it is shown through noise up to sigma ~0.6, but from
pure noise it lays out only the garment's colours (docs/training-log.md, 2026-12-01: where the
texture is lost). Near sigma 0.6 its training input always still carries the true texture, so
copying the texture from the in-context flat-lay never pays there. `flatten_inside` makes the
input that sampling meets instead: the same clip with the region's detail averaged away (a box
mean of `size` px taken over the region's own pixels only, so no background bleeds in), while
the target stays the true clip (`DiffusionStageConfig.restore_prob`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["flatten_inside", "region_mask", "check_box_size"]


def check_box_size(size: int, name: str) -> None:
    """The box of the average must be an odd number of pixels >= 1 (centred on its pixel)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"{name} must be an odd number of pixels >= 1, got {size}")


def region_mask(masks: dict[str, torch.Tensor], names: tuple[str, ...] | list[str]) -> torch.Tensor:
    """The union `[T, H, W]` (float 0/1) of the named masks a clip has (a one-outfit clip has no
    "upper"); a clip with none of them is refused (user clips carry no masks)."""
    present = [masks[n].float() for n in names if n in masks]
    if not present:
        raise ValueError(f"flatten regions {list(names)} name no mask this clip has (its masks: {sorted(masks)}); "
                         "only world clips carry masks")
    return torch.stack(present).amax(0)


def flatten_inside(video: torch.Tensor, mask: torch.Tensor, size: int) -> torch.Tensor:
    """`video` `[T, 3, H, W]` with every pixel of `mask` `[T, H, W]` replaced by the mean of the
    masked pixels in the `size` x `size` box around it; pixels outside the mask are unchanged."""
    check_box_size(size, "flatten size")
    m = mask.to(video.dtype)[:, None]  # [T, 1, H, W]
    pad = size // 2

    def box(x: torch.Tensor) -> torch.Tensor:  # a box mean, separable: rows then columns (2 k, not k^2, per pixel)
        x = F.avg_pool2d(x, (1, size), stride=1, padding=(0, pad), count_include_pad=True)
        return F.avg_pool2d(x, (size, 1), stride=1, padding=(pad, 0), count_include_pad=True)
    mean = box(video * m) / box(m).clamp_min(1e-6)  # [T, 3, H, W], the masked mean per box
    return torch.where(m > 0.5, mean, video)
