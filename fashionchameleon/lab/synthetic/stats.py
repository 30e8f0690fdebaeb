"""How a clip frames its person: the share of the frame, pixels and DiT tokens each region covers.

A token is `TOKEN` x `TOKEN` pixels (the codec's 8x spatial factor times the DiT's 2x2 patch) and
a latent frame spans `temporal_factor` pixel frames (4 for the shipped codec), so "tokens per
latent frame" is what the DiT sees of a region. Used by the framing tests and `tools/world_stats.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["TOKEN", "REGIONS", "FrameStats", "frame_stats", "tokens_per_frame"]

TOKEN = 16  # pixels per token side: codec 8x spatial x patch 2
REGIONS = ("person", "upper", "lower", "head")


def tokens_per_frame(height: int, width: int) -> int:
    """Tokens of one latent frame of `height` x `width` pixel frames."""
    return (height // TOKEN) * (width // TOKEN)


@dataclass(frozen=True)
class FrameStats:
    """Framing measures of one clip of `T` frames `H x W` (means over frames unless per frame)."""

    height: int
    width: int
    share: dict[str, float]  # fraction of the frame's pixels
    pixels: dict[str, float]  # pixels per frame
    tokens: dict[str, float]  # token area per latent frame: pixels / TOKEN^2
    tokens_half: dict[str, float]  # tokens of a latent frame the region covers at least half of (on average)
    person_height: np.ndarray  # [T] rows the person spans / H
    edges: dict[str, np.ndarray]  # [T] bool per edge (left, right, top, bottom): the person touches it
    head_whole: np.ndarray  # [T] bool: the head is in the frame and touches no edge


def _edges(mask: Tensor) -> dict[str, np.ndarray]:
    """Per frame, whether `mask` `[T, H, W]` has a pixel on each edge of the frame."""
    return {"left": mask[:, :, 0].any(1).numpy(), "right": mask[:, :, -1].any(1).numpy(),
            "top": mask[:, 0, :].any(1).numpy(), "bottom": mask[:, -1, :].any(1).numpy()}


def frame_stats(masks: Mapping[str, Tensor], temporal_factor: int = 4) -> FrameStats:
    """Measures of a clip from its masks (`Sample.masks` / `Clip.masks`: `{region: [T, H, W] bool}`)."""
    person = masks["person"]
    t, h, w = person.shape
    share, pixels, tokens, half = {}, {}, {}, {}
    groups = max(1, t // temporal_factor)
    for name in REGIONS:
        m = masks[name].float()  # [T, H, W]
        share[name] = float(m.mean())
        pixels[name] = float(m.sum((1, 2)).mean())
        tokens[name] = pixels[name] / TOKEN ** 2
        # cover of each token, averaged over the pixel frames of each latent frame
        per_latent = m[:groups * temporal_factor].reshape(groups, -1, h, w).mean(1) if t >= temporal_factor else m
        cover = F.avg_pool2d(per_latent[:, None], TOKEN)[:, 0]  # [F, H / TOKEN, W / TOKEN]
        half[name] = float((cover >= 0.5).float().sum((1, 2)).mean())
    rows = person.any(2)  # [T, H]
    index = torch.arange(h)
    top = torch.where(rows, index, h).amin(1)
    bottom = torch.where(rows, index, -1).amax(1)
    spanned = ((bottom - top + 1).clamp(min=0).float() / h).numpy()
    head = masks["head"]
    head_edges = _edges(head)
    head_whole = head.any(2).any(1).numpy() & ~np.any(np.stack(list(head_edges.values())), axis=0)
    return FrameStats(h, w, share, pixels, tokens, half, spanned, _edges(person), head_whole)
