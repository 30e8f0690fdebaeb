"""The allocator setting a CPU stream applies: in effect on glibc, once, and the opt-out is honoured."""
from __future__ import annotations

import ctypes
import sys

import pytest

from fashionchameleon.runtime import cpu_memory


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    except OSError:
        return False


def test_opt_out_leaves_the_allocator_alone(monkeypatch):
    monkeypatch.setenv(cpu_memory.OPT_OUT_ENV, "1")
    assert cpu_memory._apply(64 << 20, 256 << 20) is False


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's")
def test_applied_once_on_glibc(monkeypatch):
    monkeypatch.delenv(cpu_memory.OPT_OUT_ENV, raising=False)
    monkeypatch.setattr(cpu_memory, "_applied", None)
    calls = []
    real = cpu_memory._apply
    monkeypatch.setattr(cpu_memory, "_apply", lambda *a: calls.append(a) or real(*a))
    assert cpu_memory.keep_freed_memory() is True
    assert cpu_memory.keep_freed_memory() is True and len(calls) == 1
