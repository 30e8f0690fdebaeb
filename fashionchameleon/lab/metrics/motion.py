"""Continuity and motion measures on foreground silhouettes `[T, H, W]` (bool)."""
from __future__ import annotations

import torch

__all__ = ["iou", "adjacent_iou", "switch_continuity", "motion_amplitude"]


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boolean masks over the last two axes."""
    inter = (a & b).flatten(-2).sum(-1).float()
    union = (a | b).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def adjacent_iou(masks: torch.Tensor) -> torch.Tensor:
    """`[T-1]` IoU of each frame with the next."""
    return iou(masks[:-1], masks[1:])


def switch_continuity(masks: torch.Tensor, boundary: int) -> float:
    """IoU across the switch (frames boundary-1 -> boundary) / median adjacent IoU of the clip.

    1.0 means the switch is as smooth as an ordinary frame step; a jump of the figure scores low.
    """
    across = iou(masks[boundary - 1], masks[boundary]).item()
    typical = adjacent_iou(masks).median().item()
    return across / max(typical, 1e-6)


def motion_amplitude(masks: torch.Tensor) -> float:
    """Mean (1 - adjacent IoU): 0 for a frozen figure, larger for more motion."""
    return float((1 - adjacent_iou(masks)).mean())
