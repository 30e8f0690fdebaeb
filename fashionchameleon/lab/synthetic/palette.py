"""Colour palettes of the procedural world and the small helpers that sample from them.

Colours are RGB tuples in [0, 1]. Garment colours avoid near-white so a flat-lay on a white
background can always be segmented; pattern colour pairs are drawn with a minimum contrast so
stripes, checks and dots stay visible at 64-128 px.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Colour", "GARMENT_COLOURS", "SKIN_TONES", "HAIR_COLOURS", "SHOE_COLOURS", "ACCENT_WHITE", "jitter",
           "sample_colour", "sample_contrasting", "contrast", "luminance"]

Colour = tuple[float, float, float]

GARMENT_COLOURS: dict[str, Colour] = {
    "black": (0.10, 0.10, 0.12), "charcoal": (0.28, 0.29, 0.32), "grey": (0.55, 0.56, 0.58),
    "offwhite": (0.88, 0.86, 0.80), "cream": (0.90, 0.82, 0.62), "beige": (0.76, 0.66, 0.50),
    "brown": (0.45, 0.28, 0.16), "navy": (0.10, 0.15, 0.38), "blue": (0.15, 0.35, 0.80),
    "sky": (0.45, 0.70, 0.92), "denim": (0.25, 0.38, 0.58), "teal": (0.05, 0.50, 0.50),
    "green": (0.15, 0.55, 0.25), "olive": (0.42, 0.45, 0.18), "mint": (0.60, 0.88, 0.72),
    "yellow": (0.95, 0.82, 0.15), "mustard": (0.80, 0.60, 0.10), "orange": (0.95, 0.48, 0.10),
    "red": (0.82, 0.12, 0.12), "burgundy": (0.45, 0.06, 0.15), "pink": (0.95, 0.55, 0.68),
    "magenta": (0.80, 0.15, 0.55), "purple": (0.42, 0.20, 0.62), "lavender": (0.70, 0.62, 0.88),
}

SKIN_TONES: tuple[Colour, ...] = (
    (0.98, 0.85, 0.74), (0.94, 0.76, 0.62), (0.87, 0.67, 0.50), (0.78, 0.56, 0.40),
    (0.66, 0.45, 0.30), (0.52, 0.34, 0.22), (0.40, 0.26, 0.17), (0.30, 0.19, 0.13),
)

HAIR_COLOURS: tuple[Colour, ...] = (
    (0.06, 0.05, 0.05), (0.22, 0.13, 0.07), (0.42, 0.26, 0.12), (0.82, 0.66, 0.35),
    (0.62, 0.22, 0.08), (0.70, 0.70, 0.72), (0.20, 0.30, 0.75), (0.85, 0.35, 0.60),
)

# Light enough to read as white, dark enough (>= 0.06 below the 1.0 background) to segment.
ACCENT_WHITE: Colour = (0.93, 0.93, 0.92)

SHOE_COLOURS: tuple[Colour, ...] = (
    (0.08, 0.08, 0.08), (0.35, 0.20, 0.10), (0.92, 0.92, 0.92), (0.60, 0.10, 0.10), (0.25, 0.30, 0.45),
)


def jitter(rng: np.random.Generator, colour: Colour, amount: float) -> Colour:
    """Add uniform noise of +-amount per channel, clipped to [0, 1]."""
    c = np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0.0, 1.0)
    return (float(c[0]), float(c[1]), float(c[2]))


def luminance(c: Colour) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def contrast(a: Colour, b: Colour) -> float:
    """Mean absolute channel difference plus luminance difference (0 = same colour)."""
    return float(np.abs(np.subtract(a, b)).mean()) + abs(luminance(a) - luminance(b))


def sample_colour(rng: np.random.Generator, exclude: tuple[Colour, ...] = (), min_contrast: float = 0.0) -> Colour:
    """A jittered garment colour that differs from every colour in `exclude` by `min_contrast`."""
    names = list(GARMENT_COLOURS)
    c = GARMENT_COLOURS[names[0]]
    for _ in range(64):
        c = jitter(rng, GARMENT_COLOURS[names[int(rng.integers(len(names)))]], 0.04)
        if all(contrast(c, e) >= min_contrast for e in exclude):
            return c
    return c


def sample_contrasting(rng: np.random.Generator, base: Colour, min_contrast: float = 0.45) -> Colour:
    """A second pattern colour that stands out against `base` (white is allowed as an accent)."""
    if rng.random() < 0.25 and contrast(base, ACCENT_WHITE) >= min_contrast:
        return ACCENT_WHITE
    return sample_colour(rng, exclude=(base,), min_contrast=min_contrast)
