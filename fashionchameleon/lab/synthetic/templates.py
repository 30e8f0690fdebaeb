"""Garment templates: each shape's silhouette in its texture atlas and the body -> atlas UV maps.

A garment's texture atlas is the square [-1, 1]^2 (x right, y down) seen exactly as the garment
lies on a flat-lay: the front atlas is the garment seen from the front, the back atlas the garment
seen from behind. The template of a shape says which atlas points are cloth (its alpha) and
where each body part samples:

- upper garments: the torso between the neck base (axis fraction b = 0) and the hem (`hem_b`)
  maps row by row onto the body outline, the arms (arm-length fraction t <= `sleeve_t`) map
  along the sleeve quads;
- lower garments: the torso from the waist (`WAIST_B`) to the crotch maps onto the hip band,
  the legs (leg-length fraction t <= `leg_t`) onto the leg quads, a skirt onto its trapezoid.

Cut-outs (necklines, tank-top armholes) are holes in the alpha, so wherever a body point maps
onto a hole, skin shows. Because the UV maps only need the atlas, a user's flat-lay image
resampled onto the template's bounding box dresses the body the same way as a procedural one.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor

from .shapes import grid, piecewise_linear

__all__ = ["UpperTemplate", "LowerTemplate", "Template", "TEMPLATES", "UPPER_SHAPES", "LOWER_SHAPES",
           "KINDS", "WAIST_B", "TORSO_END_B", "template_mask", "template_alpha", "template_bbox",
           "torso_upper_uv", "torso_lower_uv", "limb_map", "skirt_uv", "skirt_length"]

KINDS = ("upper", "lower")
# Body points map slightly inside the template outline, so bilinear samples at the silhouette,
# hem and cuffs read cloth (alpha 1), not the half-transparent edge of the atlas.
_INSET_X = 0.9  # lateral scale
_INSET_Y = 0.035  # atlas units kept free at the ends of a span
WAIST_B = 0.62  # torso-axis fraction where lower garments start (0 = neck base, 1 = hip line)
TORSO_END_B = 1.1  # the torso primitive ends a little below the hip line (crotch)


@dataclass(frozen=True)
class UpperTemplate:
    kind = "upper"
    y_top: float
    y_hem: float
    body: tuple[tuple[float, float], ...]  # (atlas y, half width) knots of the body outline
    neck: tuple[float, float, float]  # neckline cut: ellipse centre y, rx, ry (centred at x = 0)
    hem_b: float  # torso-axis fraction of the hem
    sleeve: tuple[float, float, float, float, float] | None = None  # ax, ay, bx, by, half width (atlas-left)
    sleeve_t: float = 0.0  # fraction of the arm length that the sleeve covers
    armhole: tuple[float, float, float] | None = None  # circle x (atlas-left), y, radius cut at each side
    open_front: float = 0.0  # half width of the open front (jackets show an inner layer there)


@dataclass(frozen=True)
class LowerTemplate:
    kind = "lower"
    y_w: float  # waist
    y_c: float  # crotch (end of the hip band)
    hip_hw: float
    leg: tuple[float, float, float, float, float, float] | None = None  # top x, top y, bottom x, bottom y,
    #   top and bottom half widths (atlas-left leg)
    leg_t: float = 0.0  # fraction of the leg length covered
    skirt: tuple[float, float, float] | None = None  # top half width, hem half width, hem y
    skirt_t: float = 0.0  # skirt length below the hip line, as a fraction of the leg length


Template = Union[UpperTemplate, LowerTemplate]

TEMPLATES: dict[str, Template] = {
    "tshirt": UpperTemplate(y_top=-0.86, y_hem=0.88, body=((-0.86, 0.22), (-0.74, 0.5), (0.88, 0.5)),
                            neck=(-0.86, 0.2, 0.12), hem_b=0.9, sleeve=(-0.5, -0.62, -0.84, -0.3, 0.16),
                            sleeve_t=0.34),
    "longsleeve": UpperTemplate(y_top=-0.86, y_hem=0.84, body=((-0.86, 0.22), (-0.74, 0.48), (0.84, 0.48)),
                                neck=(-0.86, 0.19, 0.11), hem_b=0.92, sleeve=(-0.58, -0.64, -0.86, 0.62, 0.1),
                                sleeve_t=0.97),
    "tanktop": UpperTemplate(y_top=-0.86, y_hem=0.84, body=((-0.86, 0.22), (-0.74, 0.42), (-0.3, 0.46),
                                                            (0.84, 0.48)),
                             neck=(-0.86, 0.16, 0.24), hem_b=0.86, armhole=(-0.5, -0.72, 0.26)),
    "jacket": UpperTemplate(y_top=-0.9, y_hem=0.94, body=((-0.9, 0.24), (-0.77, 0.55), (0.94, 0.6)),
                            neck=(-0.9, 0.14, 0.08), hem_b=1.04, sleeve=(-0.6, -0.66, -0.84, 0.44, 0.12),
                            sleeve_t=0.96, open_front=0.14),
    "trousers": LowerTemplate(y_w=-0.94, y_c=-0.42, hip_hw=0.46, leg=(-0.24, -0.5, -0.3, 0.94, 0.22, 0.16),
                              leg_t=1.0),
    "shorts": LowerTemplate(y_w=-0.7, y_c=-0.15, hip_hw=0.56, leg=(-0.3, -0.2, -0.4, 0.55, 0.26, 0.26),
                            leg_t=0.42),
    "skirt": LowerTemplate(y_w=-0.84, y_c=-0.5, hip_hw=0.42, skirt=(0.42, 0.86, 0.8), skirt_t=0.42),
}
UPPER_SHAPES = tuple(k for k, t in TEMPLATES.items() if t.kind == "upper")
LOWER_SHAPES = tuple(k for k, t in TEMPLATES.items() if t.kind == "lower")


def _quad(x: Tensor, y: Tensor, ax: float, ay: float, bx: float, by: float, hw0: float, hw1: float) -> Tensor:
    """Points whose projection on a->b lies on the segment, within a half width hw0 -> hw1."""
    ex, ey = bx - ax, by - ay
    length2 = ex * ex + ey * ey
    h = ((x - ax) * ex + (y - ay) * ey) / length2
    lateral = ((x - ax) * ey - (y - ay) * ex) / length2 ** 0.5
    return (h >= 0) & (h <= 1) & (lateral.abs() <= hw0 + (hw1 - hw0) * h)


def template_mask(shape: str, x: Tensor, y: Tensor) -> Tensor:
    """True where the atlas point (x, y) is cloth for `shape` (broadcasting)."""
    t = TEMPLATES[shape]
    if isinstance(t, UpperTemplate):
        inside = (y >= t.y_top) & (y <= t.y_hem) & (x.abs() <= piecewise_linear(y + 0.0 * x, t.body))
        cy, rx, ry = t.neck
        inside &= ((x / rx) ** 2 + ((y - cy) / ry) ** 2) > 1.0
        if t.armhole is not None:
            hx, hy, r = t.armhole
            inside &= ((x.abs() + hx) ** 2 + (y - hy) ** 2) > r * r
        if t.sleeve is not None:
            ax, ay, bx, by, hw = t.sleeve
            # the atlas-left sleeve is given; the right one is its mirror image
            inside |= _quad(x, y, ax, ay, bx, by, hw, hw) | _quad(-x, y, ax, ay, bx, by, hw, hw)
        return inside
    inside = (y >= t.y_w) & (y <= t.y_c) & (x.abs() <= t.hip_hw)
    if t.leg is not None:
        ax, ay, bx, by, hw0, hw1 = t.leg
        inside |= _quad(x, y, ax, ay, bx, by, hw0, hw1) | _quad(-x, y, ax, ay, bx, by, hw0, hw1)
    if t.skirt is not None:
        hw0, hw1, y_hem = t.skirt
        hw = hw0 + (hw1 - hw0) * ((y - t.y_w) / (y_hem - t.y_w))
        inside |= (y >= t.y_w) & (y <= y_hem) & (x.abs() <= hw)
    return inside


@functools.lru_cache(maxsize=64)
def _alpha(shape: str, res: int) -> Tensor:
    x, y = grid(res)
    return template_mask(shape, x, y).float()


def template_alpha(shape: str, res: int) -> Tensor:
    """The template as a float mask `[res, res]` (1 = cloth), x and y over [-1, 1]."""
    return _alpha(shape, res).clone()


@functools.lru_cache(maxsize=16)
def template_bbox(shape: str) -> tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) of the template in atlas coordinates."""
    res = 512
    mask = _alpha(shape, res) > 0.5
    cols = torch.nonzero(mask.any(0)).flatten()
    rows = torch.nonzero(mask.any(1)).flatten()
    step = 2.0 / res
    return (-1.0 + step * float(cols[0]), -1.0 + step * float(rows[0]),
            -1.0 + step * float(cols[-1] + 1), -1.0 + step * float(rows[-1] + 1))


# ---- body -> atlas UV maps (all tensors broadcast; `a` is the lateral unit in [-1, 1]) ----

def torso_upper_uv(t: UpperTemplate, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Torso point (a, axis fraction b) -> atlas (x, y) and whether the upper garment reaches it."""
    y = t.y_top + (b / t.hem_b) * (t.y_hem - _INSET_Y - t.y_top)
    x = (_INSET_X * a) * piecewise_linear(y, t.body)
    return x, y, (b >= 0) & (b <= t.hem_b)


def skirt_length(t: LowerTemplate, torso_len, leg_len):
    """Length of a skirt along the torso axis, from the waist to the hem (broadcasts)."""
    return (TORSO_END_B - WAIST_B) * torso_len + t.skirt_t * leg_len


def torso_lower_uv(t: LowerTemplate, a: Tensor, b: Tensor, torso_len, leg_len) -> tuple[Tensor, Tensor, Tensor]:
    """Torso point (a, b) -> atlas (x, y) for the lower garment (hip band, or the skirt's top)."""
    if t.skirt is not None:
        frac = (b - WAIST_B) * torso_len / skirt_length(t, torso_len, leg_len)
        x, y = skirt_uv(t, a, frac)
    else:
        y = t.y_w + _INSET_Y + ((b - WAIST_B) / (TORSO_END_B - WAIST_B)) * (t.y_c - t.y_w - _INSET_Y)
        x = (_INSET_X * t.hip_hw) * a
    return x, y, b >= WAIST_B


def skirt_uv(t: LowerTemplate, a: Tensor, frac: Tensor) -> tuple[Tensor, Tensor]:
    """Skirt point (lateral unit a, fraction frac from waist to hem) -> atlas (x, y)."""
    hw0, hw1, y_hem = t.skirt
    return (_INSET_X * a) * (hw0 + (hw1 - hw0) * frac), t.y_w + _INSET_Y + frac * (y_hem - t.y_w - 2 * _INSET_Y)


def limb_map(t: Template, atlas_side: Tensor, along0: float, along1: float):
    """Affine map of one limb segment into the atlas, or None when the garment has no sleeve/leg.

    The segment spans `along0..along1` of the arm (upper garments) or leg (lower garments) from
    the shoulder/hip; `atlas_side` (`[T, 1, 1]`, -1 or +1) picks the atlas-left or atlas-right
    sleeve/leg. With h in [0, 1] the fraction along the segment and `lat` in [-1, 1] the signed
    distance from its axis in limb radii (positive to the right of the axis direction), the
    atlas point is

        x = px + h * qx + lat * (rx + h * ux),   y = py + h * qy + lat * (ry + h * uy)

    and the garment covers the segment where h <= h_max. Returns ((px, qx, rx, ux), (py, qy,
    ry, uy), h_max); coefficients broadcast like `atlas_side`.
    """
    if isinstance(t, UpperTemplate):
        if t.sleeve is None:
            return None
        ax, ay, bx, by, hw0 = t.sleeve
        hw1, cover = hw0, t.sleeve_t
    else:
        if t.leg is None:
            return None
        ax, ay, bx, by, hw0, hw1 = t.leg
        cover = t.leg_t
    length = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
    k_in = 1.0 - _INSET_Y / length  # stop short of the cuff edge
    f0, f1 = along0 / cover, (along1 - along0) / cover  # template fraction = f0 + f1 * h
    # the atlas-left limb is given; the right one is its mirror image (x -> -x)
    flip = -atlas_side
    ex, ey = (bx - ax) * flip, by - ay + 0.0 * flip
    # offset n = (ey, -ex) / |e| has cross(n, e) = n_x e_y - n_y e_x > 0, the same sign convention
    # as the renderer's `lat`, so the map keeps orientation (no mirroring)
    w0 = _INSET_X * (hw0 + (hw1 - hw0) * f0) / length  # half width at h = 0, per unit of |e|
    w1 = _INSET_X * (hw1 - hw0) * f1 / length
    xs = (ax * flip + f0 * k_in * ex, f1 * k_in * ex, w0 * ey, w1 * ey)
    ys = (ay + f0 * k_in * ey, f1 * k_in * ey, -w0 * ex, -w1 * ex)
    h_max = (1.0 - f0) / f1
    return xs, ys, h_max
