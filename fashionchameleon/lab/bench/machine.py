"""What ran the benchmark: the CPU or GPU model, threads and torch version, for the report's header."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

__all__ = ["machine_name", "environment"]


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_name(device: str) -> str:
    """The GPU's name on cuda, else the CPU model (with its logical core count)."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{_cpu_model()} ({os.cpu_count()} logical cores)"


def environment(device: str) -> dict:
    return {"machine": machine_name(device), "threads": torch.get_num_threads(), "torch": torch.__version__}
