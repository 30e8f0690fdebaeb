"""Measuring instruments: a device-synchronised clock, resident memory, percentiles, and a codec proxy
that times every decode (so the backbone's share of a chunk is the chunk time minus its decode time,
without re-implementing the stream's step)."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import torch
from torch import Tensor

from ...runtime.encoders.codec import LatentCodec

__all__ = ["Clock", "rss_bytes", "percentile", "median", "TimedCodec"]

T = TypeVar("T")


class Clock:
    """Wall time that waits for queued device work first (`torch.cuda.synchronize` on cuda)."""

    def __init__(self, device: torch.device | str) -> None:
        self.cuda = torch.device(device).type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def time(self, fn: Callable[[], T]) -> tuple[T, float]:
        """Run `fn` once: (its result, seconds)."""
        start = self.now()
        out = fn()
        return out, self.now() - start


def rss_bytes() -> int:
    """Resident set size of this process (VmRSS in /proc/self/status); 0 where that file does not exist."""
    status = Path("/proc/self/status")
    if not status.exists():
        return 0
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return 0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


class TimedCodec:
    """A `LatentCodec` proxy that adds up the seconds spent in `decode` (device-synchronised)."""

    def __init__(self, codec: LatentCodec, clock: Clock) -> None:
        self.inner, self.clock = codec, clock
        self.decode_seconds = 0.0
        self.decode_calls = 0

    @property
    def latent_channels(self) -> int:
        return self.inner.latent_channels

    @property
    def spatial_factor(self) -> int:
        return self.inner.spatial_factor

    @property
    def temporal_factor(self) -> int:
        return self.inner.temporal_factor

    @property
    def causal_first_frame(self) -> bool:
        return self.inner.causal_first_frame

    def pixel_frames(self, latent_frames: int, first: bool = True) -> int:
        return self.inner.pixel_frames(latent_frames, first)

    def latent_frames(self, pixel_frames: int) -> int:
        return self.inner.latent_frames(pixel_frames)

    def encode_video(self, video: Tensor) -> Tensor:
        return self.inner.encode_video(video)

    def encode_image(self, image: Tensor) -> Tensor:
        return self.inner.encode_image(image)

    def decode(self, latents: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        out, seconds = self.clock.time(lambda: self.inner.decode(latents, state))
        self.decode_seconds += seconds
        self.decode_calls += 1
        return out
