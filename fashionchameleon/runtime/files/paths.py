"""Where the pack's bundled files live: the shipped weights and the sample inputs of the workflows."""
from __future__ import annotations

from pathlib import Path

__all__ = ["PACK_ROOT", "WEIGHTS_DIR", "SAMPLES_DIR"]

PACK_ROOT = Path(__file__).resolve().parents[3]  # fashionchameleon/runtime/files/paths.py -> the pack
WEIGHTS_DIR = PACK_ROOT / "weights"
SAMPLES_DIR = PACK_ROOT / "workflows" / "samples"
