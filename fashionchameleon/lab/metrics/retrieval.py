"""Retrieval among K candidates: is the generated window closest to the right candidate?"""
from __future__ import annotations

import torch

from .descriptors import describe, descriptor_distance, foreground_mask, robust_describe

__all__ = ["retrieve", "window_descriptor", "retrieval_hit", "retrieval_decision", "render_retrieval"]


def retrieve(query: torch.Tensor, candidates: torch.Tensor) -> int:
    """Index of the candidate descriptor `[K, D]` nearest to `query` `[D]`."""
    return int(descriptor_distance(query[None], candidates).argmin())


def render_retrieval(frames: torch.Tensor, renders: list[torch.Tensor], background: torch.Tensor) -> int:
    """Which render `[T, 3, H, W]` (the same frames in K outfits) generated frames `[T, 3, H, W]` resemble most.

    Uses the evaluation's blur-tolerant descriptor (`robust_describe`), since generated frames come
    through a codec and are softer than the renders.
    """
    query = robust_describe(frames, background)
    return retrieve(query, torch.stack([robust_describe(r, background) for r in renders]))


def window_descriptor(frames: torch.Tensor, background: torch.Tensor, region=None) -> torch.Tensor:
    """Descriptor of frames `[T, 3, H, W]`' foreground; `region(mask) -> mask` narrows it (e.g. to the head)."""
    mask = foreground_mask(frames, background)
    if region is not None:
        mask = region(mask)
    return describe(frames, mask)


def retrieval_hit(generated: torch.Tensor, candidates: list[torch.Tensor], background: torch.Tensor,
                  target: int, region=None) -> bool:
    """Do the generated frames retrieve candidate `target` among renders `[T, 3, H, W]` of the same frames?"""
    query = window_descriptor(generated, background, region)
    pool = torch.stack([window_descriptor(c, background, region) for c in candidates])
    return retrieve(query, pool) == target


def retrieval_decision(query: torch.Tensor, candidates: torch.Tensor, target: int) -> dict:
    """Strict retrieval of `target` among candidate descriptors `[K, D]`, with its margin.

    A hit needs the target strictly nearer than every other candidate (a tie, or a query with
    non-finite values, is a miss). Returns {"hit", "nearest", "margin"}: margin is the nearest
    other candidate's distance minus the target's (positive for a hit).
    """
    d = descriptor_distance(query[None].float(), candidates.float())
    if not bool(torch.isfinite(d).all()):
        return {"hit": False, "nearest": -1, "margin": float("nan")}
    others = torch.cat([d[:target], d[target + 1:]])
    best_other = float(others.min()) if len(others) else float("inf")
    return {"hit": bool(float(d[target]) < best_other), "nearest": int(d.argmin()),
            "margin": best_other - float(d[target])}
