"""What a benchmark run measures: one frozen dataclass, plus the parsing helpers the CLI shares."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ...runtime.config import DTYPE_NAMES, ConfigError
from ...runtime.embedded import WEIGHTS_DIR

__all__ = ["BenchConfig", "DTYPES", "DEFAULT_SIZES", "parse_size"]

DTYPES = DTYPE_NAMES  # the names --dtype accepts

# The resolution each preset is normally run at (H, W): the embedded model's training size, the
# paper's 704x1280 for Wan2.2-TI2V-5B, Self-Forcing's 480x832 for Wan2.1-1.3B.
DEFAULT_SIZES: dict[str, tuple[int, int]] = {"tiny": (128, 128), "wan2.2-ti2v-5b": (704, 1280),
                                             "wan2.1-1.3b": (480, 832)}


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"size must look like HxW (e.g. 704x1280), got {text!r}") from None
    if h <= 0 or w <= 0:
        raise ConfigError(f"size must be positive, got {text!r}")
    return h, w


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run. Chunk counts are chunks of the causal student (3 latent frames each)."""

    device: str = "cpu"
    dtype: str | None = None  # fp32 / bf16 / fp16; None: bf16 on cuda, fp32 on cpu
    threads: int | None = None  # torch intra-op threads (None: torch's choice)
    preset: str = "tiny"  # model preset for random weights (the embedded model brings its own config)
    random_weights: bool = False  # random weights + decode stand-in codec + random prompt encoder
    layers: int | None = None  # override the preset's layer count (random weights only)
    size: tuple[int, int] | None = None  # (H, W) in pixels; None: the preset's usual size
    weights: Path = WEIGHTS_DIR
    seed: int = 0
    warmup_chunks: int = 2  # chunks of a throw-away stream before anything is timed
    chunks: int = 8  # steady-state chunks (cache full) timed for FPS and per-chunk latency
    long_frames: int = 3000  # length of the one long stream (pixel frames): cost growth
    growth_frame: int = 30  # the early point of the cost-growth ratio (pixel frame)
    growth_chunks: int = 5  # chunks around each growth point whose median time is taken (a VM is noisy)
    switch_after_chunks: int = 4  # chunks streamed before the garment switch is requested
    switch_chunks: int = 3  # chunks streamed after the request (latency is measured over them)
    stable_frames: int = 3  # the new garment must be retrieved this many frames in a row
    teacher_steps: int = 50  # the teacher's sampling steps: 50, as the paper samples its teacher (docs/method.md §2.1)
    teacher_cfg: float = 3.0  # the teacher's text CFG scale
    teacher_chunks: int = 7  # clip length of the teacher comparison, in student chunks (7 = 21 latent frames)
    peak_size: int | None = None  # square matmul size of the peak measurement (None: 1024 cpu, 8192 cuda)
    peak_seconds: float = 1.0  # time spent measuring the matmul peak

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"device must be cpu or cuda, got {self.device!r}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        for name in ("chunks", "long_frames", "growth_chunks", "switch_after_chunks", "switch_chunks",
                     "stable_frames", "teacher_steps", "teacher_chunks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_chunks < 0:
            raise ConfigError(f"warmup_chunks must be >= 0, got {self.warmup_chunks}")
        if self.layers is not None and self.layers < 1:
            raise ConfigError(f"layers must be >= 1, got {self.layers}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype_name]

    @property
    def dtype_name(self) -> str:
        return self.dtype or ("bf16" if self.device == "cuda" else "fp32")

    @property
    def matmul_size(self) -> int:
        return self.peak_size or (8192 if self.device == "cuda" else 1024)

    def resolution(self, preset: str) -> tuple[int, int]:
        return self.size or DEFAULT_SIZES.get(preset, DEFAULT_SIZES["tiny"])
