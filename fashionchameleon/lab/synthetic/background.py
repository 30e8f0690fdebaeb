"""Background plates: a fixed camera looking at a solid wall, a gradient, a wall over a floor,
or soft blurred shapes. Plates are `[3, H, W]` in [0, 1] (square `[3, size, size]` unless a width
is given) and never depend on the person.

The plate is the same in every frame of a clip. The solid, gradient and wall-over-floor plates
do not change along x, so for them a camera that pans with the person (`camera`) would see
exactly this plate in every frame, as on a studio sweep.
"""
from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .palette import Colour
from .shapes import frame_grid

__all__ = ["BackgroundSpec", "BACKGROUND_STYLES", "sample_background_spec", "render_background",
           "sample_background"]

BACKGROUND_STYLES = ("solid", "gradient", "floor_wall", "shapes")


@dataclass(frozen=True)
class BackgroundSpec:
    style: str  # solid | gradient | floor_wall | shapes
    colours: tuple[Colour, Colour]  # wall / top colour, floor / bottom / shape colour
    horizon: float = 0.5  # y of the wall-floor line (floor_wall)
    shapes: tuple[tuple[float, float, float, float, float], ...] = ()  # soft ellipses: cx, cy, rx, ry, weight

    def describe(self) -> dict:
        return dataclasses.asdict(self)


def _muted(rng: np.random.Generator, value: tuple[float, float]) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(float(rng.random()), float(rng.uniform(0.05, 0.45)), float(rng.uniform(*value)))
    return (r, g, b)


def sample_background_spec(rng: np.random.Generator) -> BackgroundSpec:
    style = BACKGROUND_STYLES[int(rng.integers(len(BACKGROUND_STYLES)))]
    wall = _muted(rng, (0.45, 0.92))
    other = _muted(rng, (0.25, 0.8))
    shapes: tuple = ()
    if style == "shapes":
        shapes = tuple((float(rng.uniform(-1, 1)), float(rng.uniform(-1, 0.6)), float(rng.uniform(0.15, 0.5)),
                        float(rng.uniform(0.15, 0.5)), float(rng.uniform(0.3, 0.7)))
                       for _ in range(int(rng.integers(2, 5))))
    return BackgroundSpec(style, (wall, other), float(rng.uniform(0.3, 0.7)), shapes)


def render_background(spec: BackgroundSpec, size: int, width: int | None = None) -> Tensor:
    """The plate `[3, size, width]` in [0, 1] (`width` defaults to `size`: a square plate).

    Coordinates follow `shapes.frame_grid`: y over [-1, 1] down the frame, x over [-W/H, W/H].
    """
    width = size if width is None else width
    x, y = frame_grid(size, width)  # [1, W], [H, 1]
    c0 = torch.tensor(spec.colours[0], dtype=torch.float32)[:, None, None]
    c1 = torch.tensor(spec.colours[1], dtype=torch.float32)[:, None, None]
    if spec.style == "solid":
        w = torch.zeros(size, width)
    elif spec.style == "gradient":
        w = ((y + 1.0) * 0.5).expand(size, width)
    elif spec.style == "floor_wall":
        # the floor darkens slightly toward the camera; a thin skirting line marks the horizon
        below = (y >= spec.horizon).float()
        w = below * (0.85 + 0.15 * (y - spec.horizon).clamp(0, 1))
        w = w.expand(size, width).clone()
        w[((y - spec.horizon).abs() < 1.5 / size).expand(size, width)] = 1.15
    elif spec.style == "shapes":
        w = torch.zeros(size, width)
        for cx, cy, rx, ry, weight in spec.shapes:
            r2 = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
            w = torch.maximum(w, weight * torch.exp(-2.0 * r2))
    else:
        raise ValueError(f"unknown background style {spec.style!r}; known: {BACKGROUND_STYLES}")
    return (c0 + (c1 - c0) * w[None]).clamp(0.0, 1.0).contiguous()


def sample_background(rng: np.random.Generator, size: int, width: int | None = None) -> Tensor:
    """A random plate `[3, size, width]` in [0, 1] (square by default)."""
    return render_background(sample_background_spec(rng), size, width)
