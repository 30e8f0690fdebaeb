"""A background term for GR-DMD (`DMDStageConfig.background`): away from the person, paint the plate.

The distilled student paints blotches around the figure. The metrics find the figure as the pixels that
differ from the plate, so a blotch beside the head moves the head band the identity score reads onto the
background: on the held-out cases, pasting the plate back beyond 2 px of the true person lifts identity
from 45 to 58 of 72 (`tools/background_check.py`). The distribution-matching score does not see it: a
blotch is a plausible patch of some background.

This term looks at the pixels more than `px` from anywhere the batch's real person ever is in its clip
(`away_from_person`), where the real clip shows nothing but its static plate, and pulls the decoded
rollout there to the codec's own rendering of the real clip (its decoded frames averaged over time, so
the target is what the codec can paint, not the plate's exact pixels): the mean squared error over those
pixels. Its gradient reaches the rollout's exit step through the frozen decoder. The world's plate does
not move and neither does its camera, so the real clip's background is the background of every frame of
the stream the rollout continues.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["away_from_person", "background_loss"]


def away_from_person(hull: torch.Tensor, px: int) -> torch.Tensor:
    """`[B, 1, H, W]` person hull (any pixel the person covers in the clip) -> `[B, 1, H, W]` bool: more than
    `px` pixels (Chebyshev) from it."""
    if px < 0:
        raise ValueError(f"px must be >= 0, got {px}")
    near = F.max_pool2d(hull.float(), 2 * px + 1, 1, px) if px else hull.float()
    return near <= 0


def background_loss(pixels: torch.Tensor, target: torch.Tensor, away: torch.Tensor,
                    off: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean over clips of the squared error over `away` pixels, `[B]` share of those pixels off by more than
    `off` in mean absolute colour); `pixels` `[B, 3, T, H, W]` (with gradient), `target` `[B, 3, H, W]`,
    `away` `[B, 1, H, W]` bool."""
    diff = pixels - target[:, :, None]  # [B, 3, T, H, W]
    weights = away[:, :, None].float()  # [B, 1, 1, H, W]
    count = (weights.sum((1, 2, 3, 4)) * pixels.shape[2]).clamp_min(1.0)  # [B] away pixels over all frames
    per_clip = (diff.pow(2).mean(1, keepdim=True) * weights).sum((1, 2, 3, 4)) / count
    share = ((diff.detach().abs().mean(1, keepdim=True) > off).float() * weights).sum((1, 2, 3, 4)) / count
    return per_clip.mean(), share
