"""Keep freed CPU memory for reuse: the allocator setting that makes small-model streaming fast.

glibc serves allocations above a (dynamic) threshold with fresh `mmap`s and gives them back on
free, so every activation of a streaming pass — the same few shapes, over and over — is a new
mapping whose pages fault in on first touch. For the embedded model on a 2-core CPU that
page-faulting was ~10-15 % of a chunk's time (measured with `bench`). `keep_freed_memory` asks
glibc (via `mallopt`) to serve blocks below 64 MiB from the heap and to keep up to 256 MiB of
freed heap for reuse. It changes the whole process (memory is returned to the OS less eagerly),
so it runs when a CPU stream starts, not at import, and `FASHIONCHAMELEON_KEEP_MALLOC=1` opts out.
Elsewhere (macOS, Windows, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory", "OPT_OUT_ENV"]

OPT_OUT_ENV = "FASHIONCHAMELEON_KEEP_MALLOC"  # set to 1: leave the allocator as the host configured it
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_applied: bool | None = None


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Apply the setting once per process; returns whether it is in effect (False where unsupported)."""
    global _applied
    if _applied is None:
        _applied = _apply(mmap_threshold, trim_threshold)
    return _applied


def _apply(mmap_threshold: int, trim_threshold: int) -> bool:
    if os.environ.get(OPT_OUT_ENV, "") not in ("", "0") or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the symbols already loaded (no library search: no subprocess)
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
