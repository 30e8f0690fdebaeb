"""Switch latency: how many frames after a garment-switch request the new garment shows.

Every generated frame from the request on is compared, by the evaluation's blur-tolerant
retrieval, with the same frame of two ground-truth renders of the sample person (the old outfit
and the new one, on the same motion timeline). The latency is the distance from the request to
the first frame from which the new outfit is retrieved `stable` frames in a row (so one lucky
frame does not count); None when that never happens in the frames given.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..metrics.retrieval import render_retrieval

__all__ = ["SwitchLatency", "switch_latency"]


@dataclass(frozen=True)
class SwitchLatency:
    frames: int | None  # request -> first frame of the new garment (None: not seen)
    retrieved: list[int]  # per frame from the request on: 0 = old outfit, 1 = new outfit


def switch_latency(video: Tensor, request_frame: int, old: Tensor, new: Tensor, plate: Tensor,
                   stable: int = 3) -> SwitchLatency:
    """video, old, new `[T, 3, H, W]` in [-1, 1] (old/new: renders of the same frames), plate `[3, H, W]`."""
    if stable < 1:
        raise ValueError(f"stable must be >= 1, got {stable}")
    retrieved, run, first = [], 0, None
    for f in range(request_frame, video.shape[0]):
        got = render_retrieval(video[f:f + 1], [old[f:f + 1], new[f:f + 1]], plate)
        retrieved.append(got)
        run = run + 1 if got == 1 else 0
        if first is None and run == stable:
            first = f - stable + 1 - request_frame
    return SwitchLatency(first, retrieved)
