"""Out-of-memory errors reported with the settings that would help.

A node wraps its heavy call in `reporting_oom(node, doing, advice)`. Any out-of-memory error
(torch.OutOfMemoryError on a GPU, the CPU allocator's RuntimeError, Python's MemoryError) is
re-raised as `torch.OutOfMemoryError` — the type ComfyUI's executor recognises, so that it still
unloads its models — with a message naming what was being done and what to change. The engine
has already rolled back an unfinished chunk, so the input stream is intact.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

import comfy.model_management as mm

from .types import log

__all__ = ["STREAM_ADVICE", "LOAD_ADVICE", "TRYOFF_ADVICE", "is_oom", "reporting_oom"]

_LOADER = "'Load FashionChameleon model'"
_LOWVRAM = "or start ComfyUI with --lowvram"
STREAM_ADVICE = (f"fewer 'frames' per node (continue the stream with another 'FashionChameleon stream generate'), "
                 f"a smaller reference image, dtype 'bf16' or 'fp16' in {_LOADER} (or device 'cpu' there), "
                 f"{_LOWVRAM}. The input stream is unchanged: change a setting and queue again")
LOAD_ADVICE = f"dtype 'bf16' or 'fp16' in {_LOADER}, device 'cpu' there, {_LOWVRAM}"
TRYOFF_ADVICE = (f"fewer person images per batch, smaller images, dtype 'bf16' or 'fp16' in {_LOADER} (or device "
                 f"'cpu' there), {_LOWVRAM}")
_CPU_MARKERS = ("out of memory", "can't allocate memory", "not enough memory")


def is_oom(exc: BaseException) -> bool:
    """An out-of-memory error of any device (CUDA, MPS, the CPU allocator) or of Python itself."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _CPU_MARKERS)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


@contextlib.contextmanager
def reporting_oom(node: str, doing: str, advice: str) -> Iterator[None]:
    """Re-raise an out-of-memory error inside the block with `doing` and `advice` in the message."""
    try:
        yield
    except Exception as exc:
        if not is_oom(exc):
            raise
        empty = getattr(mm, "soft_empty_cache", None)
        if empty is not None:
            empty()  # give the cached blocks back before ComfyUI reports the error
        log.warning("%s: out of memory while %s", node, doing)
        raise torch.OutOfMemoryError(f"{node}: out of memory while {doing} ({_first_line(exc)}). What helps: "
                                     f"{advice}.") from exc
