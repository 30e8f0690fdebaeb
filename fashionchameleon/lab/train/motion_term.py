"""A motion-matching term for GR-DMD (`DMDStageConfig.motion`): the rollout moves as much as real clips do.

Deep in a long stream the distilled student can stop moving (a figure that raises its hands once and
then holds still for 900 frames) or move far more than its prompt (a sway at 3x the truth), while
each chunk still looks like a plausible frame: the distribution-matching score, read on a few chunks
whose own context is already still, does not see it. This term compares one number per clip, the
mean absolute difference between consecutive latent frames, of the rollout's scored chunks against
the batch's real clip, and penalises the squared log of their ratio, so a clip moving 10x too little
and one moving 10x too much cost the same. Its gradient reaches the scored chunks' exit step only,
as the distribution-matching loss's does.
"""
from __future__ import annotations

import torch

__all__ = ["latent_motion", "motion_loss"]


def latent_motion(video: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """`[B, C, F, h, w]` latents (F >= 2) -> `[B]` mean |x_{f+1} - x_f| over frames, channels and cells."""
    if video.shape[2] < 2:
        raise ValueError(f"motion needs at least 2 latent frames, got {video.shape[2]}")
    return (video[:, :, 1:] - video[:, :, :-1]).abs().mean((1, 2, 3, 4)) + eps


def motion_loss(video: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean over clips of log(motion(video) / motion(real))^2, `[B]` ratio motion(video) / motion(real));
    `video`: the rollout `[B, C, F, h, w]` (with gradient), `real`: the batch's real clips (no gradient)."""
    ratio = latent_motion(video) / latent_motion(real.detach())
    return ratio.log().pow(2).mean(), ratio.detach()
