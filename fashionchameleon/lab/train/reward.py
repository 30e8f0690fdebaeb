"""Per-chunk rewards for GR-DMD and the gradient-reweighting weights softmax(-R / tau).

The paper scores frames with an aesthetic predictor; any reward works. Our default for the
procedural world is cheap and needs no learned judge: decode the chunk, then
  - garment fidelity: colour-histogram intersection between the frame's foreground (pixels that
    differ from the reference, whose scene is the same) and the garment flat-lay's non-white
    pixels, in [0, 1];
  - sharpness: the frame's mean gradient magnitude relative to the reference's, clipped to [0, 1]
    (blurry, washed-out chunks score low).
R = mean of the two. Low-reward chunks get larger weights.
"""
from __future__ import annotations

from typing import Protocol

import torch

from ..metrics.descriptors import colour_histogram

__all__ = ["ChunkReward", "gr_weights", "GarmentFidelityReward"]


class ChunkReward(Protocol):
    def __call__(self, video: torch.Tensor, references: torch.Tensor, garments: torch.Tensor,
                 frames_per_chunk: int) -> torch.Tensor:
        """video `[B, 3, T, H, W]`, references `[B, 3, H, W]`, garments `[B, 3, H, W]`, all in [-1, 1]
        -> rewards `[B, T // frames_per_chunk]`."""


def gr_weights(rewards: torch.Tensor, frames_per_chunk: int, tau: float = 0.2) -> torch.Tensor:
    """`[B, n_chunks]` rewards -> `[B, F]` per-latent-frame weights summing to 1 per clip.

    Each chunk's reward is broadcast to its frames and a softmax of -R / tau is taken over all F
    entries, so equal rewards give 1/F everywhere (plain DMD) and the worst chunk weighs most.
    """
    per_frame = rewards.repeat_interleave(frames_per_chunk, dim=1)  # [B, F]
    return torch.softmax(-per_frame / tau, dim=1)


def _grad_mag(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute spatial gradient over the last two axes."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean((-1, -2)) + (x[..., :, 1:] - x[..., :, :-1]).abs().mean((-1, -2))


class GarmentFidelityReward:
    """The default reward (see the module docstring)."""

    def __init__(self, foreground_threshold: float = 0.15, white_threshold: float = 0.92) -> None:
        self.fg, self.white = foreground_threshold, white_threshold

    @torch.no_grad()
    def __call__(self, video, references, garments, frames_per_chunk):
        b, _, t = video.shape[:3]
        vid = (video.float() + 1) / 2  # [B, 3, T, H, W] in [0, 1]
        ref = (references.float() + 1) / 2
        gar = (garments.float() + 1) / 2
        out = torch.zeros(b, t // frames_per_chunk)
        for i in range(b):
            g_pix = gar[i].flatten(1).T  # [HW, 3]
            g_hist = colour_histogram(g_pix, (g_pix.min(1).values < self.white).float())
            sharp_ref = _grad_mag(ref[i]).mean().clamp_min(1e-4)
            for c in range(t // frames_per_chunk):
                clip = vid[i, :, c * frames_per_chunk:(c + 1) * frames_per_chunk]  # [3, k, H, W]
                fg = ((clip - ref[i][:, None]).abs().amax(0) > self.fg).float()  # [k, H, W]
                hist = colour_histogram(clip.permute(1, 2, 3, 0).reshape(-1, 3), fg.flatten())
                fidelity = torch.minimum(hist, g_hist).sum()
                sharp = (_grad_mag(clip).mean() / sharp_ref).clamp(0, 1)
                out[i, c] = 0.5 * fidelity + 0.5 * sharp
        return out
