"""A motion-matching term for GR-DMD (`DMDStageConfig.motion`): the rollout moves as much as real clips do.

Deep in a long stream the distilled student can stop moving (a figure that raises its hands once and
then holds still for 900 frames) or move far more than its prompt (a sway at 3x the truth), while
each chunk still looks like a plausible frame: the distribution-matching score, read on a few chunks
whose own context is already still, does not see it. This term compares one number per clip, the
mean absolute difference between consecutive latent frames, of the rollout's scored chunks against
the batch's real clip, and penalises the squared log of their ratio, so a clip moving 10x too little
and one moving 10x too much cost the same. Its gradient reaches the scored chunks' exit step only,
as the distribution-matching loss's does.

Over the whole frame that number is dominated by the body and the background, so a pair of arms that
stops moving barely changes it. With `cells` (a region's cover per latent cell, e.g. the real clip's
person or skin averaged over its frames, `[B, 1, 1, h, w]`) the mean is taken over that region: the
camera follows the person, so the region stays about where it is in the rollout too.
"""
from __future__ import annotations

import torch

__all__ = ["latent_motion", "motion_loss"]


def latent_motion(video: torch.Tensor, cells: torch.Tensor | None = None, eps: float = 1e-4) -> torch.Tensor:
    """`[B, C, F, h, w]` latents (F >= 2) -> `[B]` mean |x_{f+1} - x_f| over frames, channels and cells,
    the cells weighted by `cells` `[B, 1, 1, h, w]` when given (None: all alike)."""
    if video.shape[2] < 2:
        raise ValueError(f"motion needs at least 2 latent frames, got {video.shape[2]}")
    diff = (video[:, :, 1:] - video[:, :, :-1]).abs()  # [B, C, F - 1, h, w]
    if cells is None:
        return diff.mean((1, 2, 3, 4)) + eps
    weights = cells.expand(-1, 1, diff.shape[2], -1, -1)  # [B, 1, F - 1, h, w]
    return (diff * weights).mean(1).sum((1, 2, 3)) / weights.sum((1, 2, 3, 4)).clamp_min(eps) + eps


def motion_loss(video: torch.Tensor, real: torch.Tensor,
                cells: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean over clips of log(motion(video) / motion(real))^2, `[B]` ratio motion(video) / motion(real));
    `video`: the rollout `[B, C, F, h, w]` (with gradient), `real`: the batch's real clips (no gradient),
    `cells`: the region both are measured on (`latent_motion`)."""
    ratio = latent_motion(video, cells) / latent_motion(real.detach(), cells)
    return ratio.log().pow(2).mean(), ratio.detach()
