"""Texture families: small frozen parameter dataclasses and the RGB images they paint.

A texture is painted in garment-atlas coordinates (x, y in [-1, 1], y down; see `templates`),
so the same pattern appears on the flat-lay and, through UV mapping, on the dressed body.
Scales are in atlas units: the torso of an upper garment spans about one unit across, which
is roughly 25-30 px in a 128 px video, so the smallest periods below still span >= 5 px there.
`scale_pattern` coarsens the periodic families (stripes, checks, dots) for a framing whose
codec-kept detail asks for it (the fashion framing: >= 2 latent cells, 16 px, a period).

`render_texture(spec, res) -> [3, res, res]` in [0, 1] paints any spec; `ImageTexture` wraps an
already atlas-aligned image (a user's flat-lay) so it can stand in for a procedural texture.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar, Union

import numpy as np
import torch
from torch import Tensor

from .palette import Colour, sample_colour, sample_contrasting
from .shapes import area_resize, capsule, grid, inside_polygon

__all__ = ["Solid", "Stripes", "Checks", "Dots", "ColourBlocks", "Logo", "ImageTexture", "Texture",
           "TEXTURE_FAMILIES", "HELD_OUT_FAMILY", "TRAIN_FAMILIES", "GLYPHS", "render_texture",
           "sample_texture", "texture_colours", "scale_pattern"]


@dataclass(frozen=True)
class Solid:
    family: ClassVar[str] = "solid"
    colour: Colour


@dataclass(frozen=True)
class Stripes:
    family: ClassVar[str] = "stripes"
    colours: tuple[Colour, Colour]
    orientation: str = "horizontal"  # horizontal | vertical | diagonal
    period: float = 0.3  # atlas units per stripe pair
    duty: float = 0.5  # fraction of the period in colours[1]
    offset: float = 0.0  # phase, in periods


@dataclass(frozen=True)
class Checks:
    family: ClassVar[str] = "checks"
    colours: tuple[Colour, Colour]
    period: float = 0.4  # size of two squares
    offset: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Dots:
    family: ClassVar[str] = "dots"
    colours: tuple[Colour, Colour]  # (base, dot)
    spacing: float = 0.32
    radius: float = 0.09
    stagger: bool = True  # every other row shifted by half a spacing


@dataclass(frozen=True)
class ColourBlocks:
    family: ClassVar[str] = "colour_blocks"
    colours: tuple[Colour, ...]  # 2 or 3 blocks
    orientation: str = "horizontal"  # horizontal | vertical | diagonal
    splits: tuple[float, ...] = (0.0,)  # len(colours) - 1 boundaries in atlas units


@dataclass(frozen=True)
class Logo:
    family: ClassVar[str] = "logo"
    colours: tuple[Colour, Colour]  # (base, glyph)
    glyph: str = "star"
    centre: tuple[float, float] = (0.0, -0.3)
    scale: float = 0.3  # glyph half-size in atlas units


@dataclass(frozen=True, eq=False)
class ImageTexture:
    """An atlas-aligned RGB image `[3, h, w]` in [0, 1] (e.g. built from a user's flat-lay)."""

    family: ClassVar[str] = "image"
    image: Tensor = field(repr=False)


Texture = Union[Solid, Stripes, Checks, Dots, ColourBlocks, Logo, ImageTexture]

TEXTURE_FAMILIES: tuple[str, ...] = ("solid", "stripes", "checks", "dots", "colour_blocks", "logo")
HELD_OUT_FAMILY = "dots"  # never used by the train and val splits
TRAIN_FAMILIES: tuple[str, ...] = tuple(f for f in TEXTURE_FAMILIES if f != HELD_OUT_FAMILY)

# Glyphs in glyph coordinates [-1, 1]^2 (y down): ("poly", vertices) or ("strokes", segments).
_STAR = tuple((0.95 * math.sin(k * math.pi / 5) * (1.0 if k % 2 == 0 else 0.42),
               -0.95 * math.cos(k * math.pi / 5) * (1.0 if k % 2 == 0 else 0.42) + 0.08) for k in range(10))
GLYPHS: dict[str, tuple[str, tuple]] = {
    "star": ("poly", _STAR),
    "diamond": ("poly", ((0.0, -1.0), (0.75, 0.0), (0.0, 1.0), (-0.75, 0.0))),
    "heart": ("poly", ((0.0, 0.9), (-0.9, -0.05), (-0.85, -0.6), (-0.45, -0.85), (0.0, -0.5),
                       (0.45, -0.85), (0.85, -0.6), (0.9, -0.05))),
    "x": ("strokes", (((-0.8, -0.8), (0.8, 0.8)), ((-0.8, 0.8), (0.8, -0.8)))),
    "t": ("strokes", (((-0.8, -0.8), (0.8, -0.8)), ((0.0, -0.8), (0.0, 0.85)))),
    "a": ("strokes", (((-0.75, 0.85), (0.0, -0.85)), ((0.0, -0.85), (0.75, 0.85)), ((-0.4, 0.2), (0.4, 0.2)))),
    "z": ("strokes", (((-0.75, -0.8), (0.75, -0.8)), ((0.75, -0.8), (-0.75, 0.8)), ((-0.75, 0.8), (0.75, 0.8)))),
    "h": ("strokes", (((-0.7, -0.85), (-0.7, 0.85)), ((0.7, -0.85), (0.7, 0.85)), ((-0.7, 0.0), (0.7, 0.0)))),
}
_STROKE_HALF_WIDTH = 0.2  # glyph units


def _fill(mask: Tensor, a: Colour, b: Colour) -> Tensor:
    """[h, w] bool (True -> b) -> [3, h, w]."""
    ca = torch.tensor(a, dtype=torch.float32)[:, None, None]
    cb = torch.tensor(b, dtype=torch.float32)[:, None, None]
    return torch.where(mask[None], cb, ca)


def _coord(x: Tensor, y: Tensor, orientation: str) -> Tensor:
    """The coordinate that changes across bands of the given orientation ([h, w])."""
    if orientation == "horizontal":
        return y + 0.0 * x
    if orientation == "vertical":
        return x + 0.0 * y
    if orientation == "diagonal":
        return (x + y) * (1.0 / math.sqrt(2.0))
    raise ValueError(f"unknown orientation {orientation!r}; use horizontal, vertical or diagonal")


def _glyph_mask(x: Tensor, y: Tensor, glyph: str) -> Tensor:
    if glyph not in GLYPHS:
        raise ValueError(f"unknown glyph {glyph!r}; known: {sorted(GLYPHS)}")
    kind, data = GLYPHS[glyph]
    if kind == "poly":
        return inside_polygon(x, y, data)
    mask = torch.zeros(torch.broadcast_shapes(x.shape, y.shape), dtype=torch.bool)
    for (ax, ay), (bx, by) in data:
        mask |= capsule(x, y, ax, ay, bx, by)[1] <= _STROKE_HALF_WIDTH ** 2
    return mask


def _paint(spec: Texture, x: Tensor, y: Tensor) -> Tensor:
    """Paint `spec` at atlas coordinates x `[1, w]`, y `[h, 1]` -> `[3, h, w]`."""
    if isinstance(spec, Solid):
        return _fill(torch.zeros(y.shape[0], x.shape[1], dtype=torch.bool), spec.colour, spec.colour)
    if isinstance(spec, Stripes):
        phase = torch.remainder(_coord(x, y, spec.orientation) / spec.period + spec.offset, 1.0)
        return _fill(phase < spec.duty, *spec.colours)
    if isinstance(spec, Checks):
        i = torch.floor((x + spec.offset[0]) * (2.0 / spec.period))
        j = torch.floor((y + spec.offset[1]) * (2.0 / spec.period))
        return _fill(torch.remainder(i + j, 2.0) > 0.5, *spec.colours)
    if isinstance(spec, Dots):
        row = torch.floor(y / spec.spacing + 0.5)
        shift = 0.5 * spec.spacing * torch.remainder(row, 2.0) if spec.stagger else 0.0
        fx = torch.remainder(x + shift, spec.spacing) - 0.5 * spec.spacing
        fy = y - row * spec.spacing
        return _fill(fx * fx + fy * fy <= spec.radius ** 2, *spec.colours)
    if isinstance(spec, ColourBlocks):
        c = _coord(x, y, spec.orientation)
        out = _fill(torch.zeros_like(c, dtype=torch.bool), spec.colours[0], spec.colours[0])
        for split, colour in zip(spec.splits, spec.colours[1:]):
            out = torch.where((c >= split)[None], torch.tensor(colour)[:, None, None], out)
        return out
    if isinstance(spec, Logo):
        gx = (x - spec.centre[0]) / spec.scale
        gy = (y - spec.centre[1]) / spec.scale
        return _fill(_glyph_mask(gx, gy, spec.glyph), *spec.colours)
    raise TypeError(f"not a texture spec: {type(spec).__name__}")


def render_texture(spec: Texture, res: int) -> Tensor:
    """The texture as an atlas image `[3, res, res]` in [0, 1] (x, y over [-1, 1])."""
    if isinstance(spec, ImageTexture):
        return area_resize(spec.image.float().clamp(0.0, 1.0), res)
    x, y = grid(res)
    return _paint(spec, x, y).contiguous()


def texture_colours(spec: Texture) -> tuple[Colour, ...]:
    """The palette of a procedural spec (the mean colour for an image texture)."""
    if isinstance(spec, Solid):
        return (spec.colour,)
    if isinstance(spec, ImageTexture):
        m = spec.image.float().mean(dim=(1, 2))
        return ((float(m[0]), float(m[1]), float(m[2])),)
    return tuple(spec.colours)


def scale_pattern(spec: Texture, factor: float) -> Texture:
    """The same texture with its period `factor` times longer (stripes, checks, dots; others as they are)."""
    if factor == 1.0:
        return spec
    if isinstance(spec, (Stripes, Checks)):
        return dataclasses.replace(spec, period=spec.period * factor)
    if isinstance(spec, Dots):
        return dataclasses.replace(spec, spacing=spec.spacing * factor, radius=spec.radius * factor)
    return spec


def sample_texture(rng: np.random.Generator, family: str, *, base: Colour | None = None,
                   logo_centre: tuple[float, float] = (0.0, -0.3)) -> Texture:
    """A random texture of `family`; `base` fixes the dominant colour (e.g. to match a front)."""
    c0 = base if base is not None else sample_colour(rng)
    if family == "solid":
        return Solid(c0)
    c1 = sample_contrasting(rng, c0)
    if family == "stripes":
        orientation = ("horizontal", "vertical", "diagonal")[int(rng.integers(3))]
        period = float(rng.choice((0.22, 0.3, 0.42)) * rng.uniform(0.92, 1.08))
        return Stripes((c0, c1), orientation, period, float(rng.uniform(0.35, 0.55)), float(rng.random()))
    if family == "checks":
        return Checks((c0, c1), float(rng.choice((0.3, 0.42, 0.56))), (float(rng.random()), float(rng.random())))
    if family == "dots":
        spacing = float(rng.uniform(0.28, 0.4))
        return Dots((c0, c1), spacing, float(spacing * rng.uniform(0.26, 0.34)), bool(rng.random() < 0.6))
    if family == "colour_blocks":
        n = int(rng.integers(2, 4))
        colours = [c0, c1]
        if n == 3:
            colours.append(sample_colour(rng, exclude=(c1,), min_contrast=0.45))
        orientation = ("horizontal", "vertical", "diagonal")[int(rng.integers(3))]
        splits = (float(rng.uniform(-0.25, 0.25)),) if n == 2 else (float(rng.uniform(-0.45, -0.15)),
                                                                     float(rng.uniform(0.15, 0.45)))
        return ColourBlocks(tuple(colours), orientation, splits)
    if family == "logo":
        glyph = sorted(GLYPHS)[int(rng.integers(len(GLYPHS)))]
        return Logo((c0, c1), glyph, logo_centre, float(rng.uniform(0.24, 0.34)))
    raise ValueError(f"unknown texture family {family!r}; known: {TEXTURE_FAMILIES}")
