"""Garments: the `Garment` spec, its texture atlases, flat-lay product images, and sampling.

A garment is a kind (upper / lower), a shape (a template, see `templates`), a front and a back
texture, and for jackets the colour of the layer seen through the open front. Its front atlas
(`garment_atlas`) is RGBA: the texture with the inner layer painted in, and the template as
alpha. The flat-lay is that atlas over white, so the flat-lay shows exactly what the renderer
samples when it dresses a body. Flat-lays take the video's frame size: a square `size`, or
`(H, W)` for a portrait frame, where the square atlas fills the width and white pads the rest.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...runtime.garment_layout import lay_out
from .palette import Colour, contrast, sample_contrasting
from .shapes import area_resize, grid
from .templates import KINDS, LOWER_SHAPES, TEMPLATES, UPPER_SHAPES, template_alpha
from .textures import (GLYPHS, ImageTexture, Logo, Solid, Texture, render_texture, sample_texture, scale_pattern,
                       texture_colours)

__all__ = ["Garment", "FrameSize", "frame_hw", "garment_atlas", "flat_lay", "outfit_flat_lay", "laid_out",
           "sample_garment", "garments_differ", "restyle", "coarsened", "mosaic", "sample_atlas", "LOGO_CENTRES"]

# where a logo sits: the chest, the wearer's right chest of an open jacket, the wearer's right thigh
LOGO_CENTRES = {"upper": (0.0, -0.35), "jacket": (-0.34, -0.3), "lower": (-0.27, -0.1)}
_LOGO_SCALE = {"upper": 1.0, "jacket": 0.6, "lower": 0.7}


@dataclass(frozen=True)
class Garment:
    kind: str  # upper | lower
    shape: str  # upper: tshirt | longsleeve | tanktop | jacket; lower: trousers | shorts | skirt
    front: Texture
    back: Texture
    inner: Colour | None = None  # jackets: the layer seen through the open front

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        shapes = UPPER_SHAPES if self.kind == "upper" else LOWER_SHAPES
        if self.shape not in shapes:
            raise ValueError(f"a {self.kind} garment's shape must be one of {shapes}, got {self.shape!r}")

    @property
    def family(self) -> str:
        """Texture family of the front."""
        return self.front.family

    @property
    def colours(self) -> tuple[Colour, ...]:
        """Palette: front colours (the first is the dominant one), then back and inner extras."""
        out = list(texture_colours(self.front))
        for c in texture_colours(self.back) + ((self.inner,) if self.inner else ()):
            if c not in out:
                out.append(c)
        return tuple(out)

    def describe(self) -> dict:
        """JSON-able description (image textures are summarised by their mean colour)."""
        def tex(t: Texture) -> dict:
            if isinstance(t, ImageTexture):
                return {"family": "image", "mean": list(texture_colours(t)[0])}
            return {"family": t.family, **dataclasses.asdict(t)}
        return {"kind": self.kind, "shape": self.shape, "front": tex(self.front), "back": tex(self.back),
                "inner": self.inner}


def garment_atlas(garment: Garment, res: int, side: str = "front") -> Tensor:
    """RGBA atlas `[4, res, res]` of one side: texture (+ open-front inner layer), template alpha."""
    if side not in ("front", "back"):
        raise ValueError(f"side must be 'front' or 'back', got {side!r}")
    rgb = render_texture(garment.front if side == "front" else garment.back, res)
    template = TEMPLATES[garment.shape]
    opening = getattr(template, "open_front", 0.0)
    if side == "front" and garment.inner is not None and opening > 0:
        x, y = grid(res)
        # a V from the collar that narrows to a straight gap at the waist
        half = opening + 0.14 * ((-0.15 - y) / 0.75).clamp(0.0, 1.0)
        strip = (x.abs() <= half).expand(res, res)
        rgb = torch.where(strip[None], torch.tensor(garment.inner, dtype=torch.float32)[:, None, None], rgb)
    return torch.cat([rgb, template_alpha(garment.shape, res)[None]], dim=0)


def _over_white(rgba: Tensor) -> Tensor:
    """Composite `[4, h, w]` over white -> `[3, h, w]`."""
    a = rgba[3:4]
    return rgba[:3] * a + (1.0 - a)


FrameSize = Union[int, tuple[int, int]]  # S (square S x S) or (H, W)


def frame_hw(size: FrameSize) -> tuple[int, int]:
    """(H, W) of a frame size given as S or (H, W)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _centred_on_white(image: Tensor, height: int, width: int) -> Tensor:
    """`[3, h, w]` centred on a white `[3, height, width]` canvas (the image itself when it fits exactly)."""
    h, w = image.shape[-2:]
    if (h, w) == (height, width):
        return image
    out = torch.ones(3, height, width)
    top, left = (height - h) // 2, (width - w) // 2
    out[:, top:top + h, left:left + w] = image
    return out


def flat_lay(garment: Garment, size: FrameSize, side: str = "front") -> Tensor:
    """Product photo of the garment laid flat, centred on white: `[3, H, W]` in [0, 1].

    `size` is S (an S x S image) or (H, W); the square atlas spans min(H, W) pixels.
    """
    height, width = frame_hw(size)
    image = _over_white(garment_atlas(garment, min(height, width), side)).clamp(0.0, 1.0)
    return _centred_on_white(image, height, width)


def laid_out(garments: dict[str, Garment], slot: str, size: FrameSize, layout: str = "frame") -> Tensor:
    """The flat-lay image of a slot ("upper", "lower" or "full" = both on one sheet) in a garment layout
    (`runtime.garment_layout.lay_out`: "frame" as photographed, "body" where worn): `[3, H, W]` in [0, 1]."""
    image = outfit_flat_lay(garments["upper"], garments["lower"], size) if slot == "full" else \
        flat_lay(garments[slot], size)
    return image if layout == "frame" else (lay_out(image * 2.0 - 1.0, slot, layout) + 1.0) / 2.0


def outfit_flat_lay(upper: Garment, lower: Garment, size: FrameSize) -> Tensor:
    """Both garments on one white image, the upper above the lower: `[3, H, W]` in [0, 1]."""
    if upper.kind != "upper" or lower.kind != "lower":
        raise ValueError(f"outfit_flat_lay needs an upper and a lower garment, got {upper.kind} and {lower.kind}")
    height, width = frame_hw(size)
    half = min(height // 2, width)
    out = torch.ones(3, height, width)
    left = (width - half) // 2
    out[:, :half, left:left + half] = flat_lay(upper, half)
    out[:, height - half:, left:left + half] = flat_lay(lower, half)
    return out


def _back_texture(rng: np.random.Generator, kind: str, front: Texture, families: Sequence[str]) -> Texture:
    """A back that differs from the front: plain, a big back print, or another allowed pattern."""
    base = texture_colours(front)[0]
    choice = int(rng.integers(3))
    if choice == 0 and not isinstance(front, Solid):
        return Solid(base)
    if choice == 1 and kind == "upper":
        glyph = sorted(GLYPHS)[int(rng.integers(len(GLYPHS)))]
        return Logo((base, sample_contrasting(rng, base)), glyph, (0.0, -0.1), float(rng.uniform(0.36, 0.48)))
    family = families[int(rng.integers(len(families)))]
    return _sample_front(rng, kind, family, base)


def _sample_front(rng: np.random.Generator, place: str, family: str, base: Colour | None = None) -> Texture:
    """A texture for the front; `place` ("upper", "jacket" or "lower") positions a logo."""
    tex = sample_texture(rng, family, base=base, logo_centre=LOGO_CENTRES[place])
    if isinstance(tex, Logo):
        tex = dataclasses.replace(tex, scale=tex.scale * _LOGO_SCALE[place])
    return tex


def sample_garment(rng: np.random.Generator, kind: str, families: Sequence[str], shape: str | None = None) -> Garment:
    """A random garment of `kind` whose front uses one of `families` (and so does a distinct back)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not families:
        raise ValueError("families must not be empty")
    shapes = UPPER_SHAPES if kind == "upper" else LOWER_SHAPES
    shape = shapes[int(rng.integers(len(shapes)))] if shape is None else shape
    family = families[int(rng.integers(len(families)))]
    front = _sample_front(rng, "jacket" if shape == "jacket" else kind, family)
    back = _back_texture(rng, kind, front, families) if rng.random() < 0.3 else front
    inner = None
    if shape == "jacket":
        inner = sample_contrasting(rng, texture_colours(front)[0], min_contrast=0.5)
    return Garment(kind, shape, front, back, inner)


def restyle(garment: Garment, rng: np.random.Generator, family: str) -> Garment:
    """The same garment (kind, shape, dominant colour, jacket inner) with a `family` pattern front and back."""
    front = _sample_front(rng, "jacket" if garment.shape == "jacket" else garment.kind, family, garment.colours[0])
    return dataclasses.replace(garment, front=front, back=front)


def coarsened(garment: Garment, factor: float) -> Garment:
    """The garment with its front and back patterns `factor` times coarser (`textures.scale_pattern`)."""
    if factor == 1.0:
        return garment
    return dataclasses.replace(garment, front=scale_pattern(garment.front, factor),
                               back=scale_pattern(garment.back, factor))


def garments_differ(a: Garment, b: Garment, min_contrast: float = 0.3) -> bool:
    """True when b is clearly another garment than a: its dominant colour stands out."""
    return a != b and contrast(a.colours[0], b.colours[0]) >= min_contrast


def mosaic(upper: Garment, lower: Garment, res: int, size: int | None = None) -> Tensor:
    """The renderer's texture mosaic `[4, 2 res, 2 res]`: rows upper / lower, columns front / back.

    Each atlas is painted at `size` (the flat-lay resolution) and area-averaged to `res`, so fine
    patterns are pre-filtered before the body minifies them.
    """
    size = size or res
    tiles = [[area_resize(garment_atlas(g, size, side), res) for side in ("front", "back")] for g in (upper, lower)]
    return torch.cat([torch.cat(row, dim=2) for row in tiles], dim=1)


def sample_atlas(mosaic_rgba: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Bilinear RGBA samples `[N, 4]` of the mosaic at mosaic coordinates x, y `[N]` in [-1, 1]."""
    pts = torch.stack([x, y], dim=-1).view(1, 1, -1, 2)  # [1, 1, N, 2]
    out = F.grid_sample(mosaic_rgba[None], pts, mode="bilinear", padding_mode="border", align_corners=False)
    return out.view(4, -1).t()  # [1, 4, 1, N] -> [N, 4]
