"""Deterministic seed mixing: one independent 63-bit seed per (seed, index)."""
from __future__ import annotations

import torch

__all__ = ["MASK64", "mix_seed", "generator_for"]

MASK64 = (1 << 64) - 1


def mix_seed(seed: int, index: int) -> int:
    """SplitMix64 finaliser of (seed, index); accepts any int (negative or >= 2**63 included)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + (int(index) + 1) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


def generator_for(seed: int, index: int) -> torch.Generator:
    """A CPU generator for step/chunk `index`: no RNG state to save, replays exactly after a resume."""
    return torch.Generator().manual_seed(mix_seed(seed, index))
