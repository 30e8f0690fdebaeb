"""Everything the nodes take from ComfyUI's runtime: devices, dtypes, progress, previews, interrupts.

All lookups happen when a node runs, never at import (ComfyUI picks its device at start-up and the
user may change the preview method between prompts).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

import comfy.model_management as mm
import comfy.utils

from ..fashionchameleon import DTYPE_NAMES, StepInfo
from .convert import preview_image

__all__ = ["DTYPES", "DEVICES", "pick_device", "pick_dtype", "output_device", "free_memory", "check_interrupt",
           "StreamProgress", "chunks_for", "simple_progress"]

DTYPES = ("auto", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cpu")


def pick_device(choice: str) -> torch.device:
    """"auto" = ComfyUI's torch device (the GPU unless ComfyUI runs with --cpu); "cpu" = the CPU."""
    if choice == "cpu":
        return torch.device("cpu")
    if choice != "auto":
        raise ValueError(f"device must be one of {list(DEVICES)}, got {choice!r}")
    return mm.get_torch_device()


def pick_dtype(choice: str, device: torch.device) -> torch.dtype:
    """A named dtype, or for "auto" what ComfyUI picks for a diffusion model on `device` (bf16 or fp32)."""
    if choice in DTYPE_NAMES:
        return DTYPE_NAMES[choice]
    if choice != "auto":
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {choice!r}")
    # fp16 is left out of "auto": the embedded model is trained in fp32 and checked in bf16 only.
    return mm.unet_dtype(device=device, supported_dtypes=[torch.bfloat16, torch.float32])


def output_device() -> torch.device:
    """Where node outputs live (the CPU unless ComfyUI runs with --gpu-only)."""
    return mm.intermediate_device()


def free_memory(device: torch.device) -> int | None:
    """Bytes ComfyUI reports free on `device` (RAM for the CPU), or None where it cannot tell."""
    get = getattr(mm, "get_free_memory", None)
    if get is None:
        return None
    try:
        return int(get(device))
    except Exception:  # noqa: BLE001 - a device ComfyUI cannot query: no limit is known
        return None


def check_interrupt() -> bool:
    """The engine's cancel callback: raises ComfyUI's InterruptProcessingException after /interrupt.

    The engine calls it before a chunk, after every denoising step and before decoding; the
    exception passes through the engine, which rolls back the unfinished chunk.
    """
    mm.throw_exception_if_processing_interrupted()
    return False


def _previews_on() -> bool:
    """ComfyUI's live-preview setting (--preview-method, or the frontend's choice for this prompt)."""
    try:
        from comfy.cli_args import args
    except ImportError:  # pragma: no cover - very old ComfyUI
        return False
    method = getattr(args, "preview_method", None)
    return method is not None and getattr(method, "value", method) != "none"


def _preview_size() -> int:
    try:
        from comfy.cli_args import args
    except ImportError:  # pragma: no cover
        return 512
    return int(getattr(args, "preview_size", 512))


class StreamProgress:
    """A ComfyUI ProgressBar over `chunks x steps` denoising steps, with a preview of the current chunk.

    The preview is the last frame of the chunk's current clean prediction (x0), decoded with the
    model's own codec; it is skipped when ComfyUI's previews are off.
    """

    def __init__(self, codec, chunks: int, steps: int) -> None:
        self.codec = codec
        self.total = max(1, chunks * steps)
        self.done = 0
        self.previews = _previews_on()
        self.size = _preview_size()
        self.bar = comfy.utils.ProgressBar(self.total)

    def __call__(self, info: StepInfo) -> None:
        self.done = min(self.done + 1, self.total)
        self.bar.update_absolute(self.done, self.total, self._preview(info.x0) if self.previews else None)

    @torch.no_grad()
    def _preview(self, x0: torch.Tensor):
        video, _ = self.codec.decode(x0[:, :, -1:])  # last latent frame -> [1, 3, tf, H, W]
        return ("JPEG", preview_image(video[0, :, -1]), self.size)

    def finish(self) -> None:
        self.done = self.total
        self.bar.update_absolute(self.total, self.total)


def chunks_for(session, num_frames: int) -> int:
    """How many chunks a stream needs for `num_frames` more frames (an upper bound, for the progress bar)."""
    per_chunk = session.codec.pixel_frames(session.config.chunk_frames, first=True)
    return max(1, math.ceil(num_frames / max(1, per_chunk)))


def simple_progress(total: int) -> Callable[[int], None]:
    """A plain ProgressBar for engine calls that report no steps; returns `set(value)`."""
    bar = comfy.utils.ProgressBar(total)
    return lambda value: bar.update_absolute(value, total)
