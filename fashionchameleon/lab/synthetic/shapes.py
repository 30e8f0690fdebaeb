"""2-D primitives on pixel grids: coordinates, capsules, polygons, ellipses, area resampling.

Coordinates are normalised like `torch.nn.functional.grid_sample` with `align_corners=False`:
x runs left -> right and y top -> bottom over [-1, 1], and pixel i of n has its centre at
(i + 0.5) / n * 2 - 1. Every primitive broadcasts, so a row vector `x [1, w]` and a column
vector `y [h, 1]` (or per-frame parameters `[T, 1, 1]`) give a full mask without building it
pixel by pixel.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["pixel_centres", "grid", "frame_grid", "capsule", "inside_polygon", "ellipse", "piecewise_linear",
           "area_resize"]


def pixel_centres(n: int, lo: float = -1.0, hi: float = 1.0) -> Tensor:
    """Centres of `n` pixels spanning [lo, hi] (float32 `[n]`)."""
    return lo + (torch.arange(n, dtype=torch.float32) + 0.5) * ((hi - lo) / n)


def grid(h: int, w: int | None = None) -> tuple[Tensor, Tensor]:
    """Broadcastable pixel-centre coordinates: x `[1, w]`, y `[h, 1]` over [-1, 1]."""
    w = h if w is None else w
    return pixel_centres(w)[None, :], pixel_centres(h)[:, None]


def frame_grid(height: int, width: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates of a frame with square pixels: x `[1, W]`, y `[H, 1]`.

    y spans [-1, 1] over the height and x spans [-W/H, W/H] over the width, so one frame unit is
    H/2 pixels along both axes; a square frame gives exactly `grid(H)`.
    """
    half = width / height
    return pixel_centres(width, -half, half)[None, :], pixel_centres(height)[:, None]


def capsule(x: Tensor, y: Tensor, ax, ay, bx, by) -> tuple[Tensor, Tensor]:
    """Projection `h` in [0, 1] of (x, y) onto segment a->b, and squared distance to the segment."""
    dx, dy = x - ax, y - ay
    ex, ey = bx - ax, by - ay
    inv = 1.0 / (ex * ex + ey * ey + 1e-12)
    h = (dx * (ex * inv) + dy * (ey * inv)).clamp_(0.0, 1.0)
    rx, ry = dx - ex * h, dy - ey * h
    return h, rx * rx + ry * ry


def inside_polygon(x: Tensor, y: Tensor, points: Sequence[tuple[float, float]]) -> Tensor:
    """Even-odd point-in-polygon test for a fixed polygon (vertices in order)."""
    inside = torch.zeros(torch.broadcast_shapes(x.shape, y.shape), dtype=torch.bool)
    n = len(points)
    for i in range(n):
        (x0, y0), (x1, y1) = points[i], points[(i + 1) % n]
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        x_at = x0 + (y - y0) * ((x1 - x0) / (y1 - y0))
        inside ^= crosses & (x < x_at)
    return inside


def ellipse(x: Tensor, y: Tensor, cx, cy, rx, ry) -> Tensor:
    """Normalised squared radius ((x-cx)/rx)^2 + ((y-cy)/ry)^2 (inside where <= 1)."""
    u, v = (x - cx) / rx, (y - cy) / ry
    return u * u + v * v


def piecewise_linear(t: Tensor, knots: Sequence[tuple[float, float]]) -> Tensor:
    """Interpolate (knot_t, value) pairs at t (clamped to the end values); knots sorted by t."""
    out = torch.full_like(t, knots[0][1])
    for (t0, v0), (t1, v1) in zip(knots[:-1], knots[1:]):
        w = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0)
        out = out + w * (v1 - v0)
    return out


def area_resize(image: Tensor, size: int) -> Tensor:
    """Resize `[C, H, W]` to `[C, size, size]`, averaging areas when shrinking (no aliasing)."""
    if image.shape[-2:] == (size, size):
        return image
    h, w = image.shape[-2:]
    if h == w and h % size == 0 and h // size <= 4:  # small integer factor: sum of strided slices
        f = h // size
        total = sum(image[:, i::f, j::f] for i in range(f) for j in range(f))
        return total * (1.0 / (f * f))
    if h == w and h % size == 0:
        return F.avg_pool2d(image[None], h // size)[0]
    shrink = image.shape[-1] >= size and image.shape[-2] >= size
    mode = "area" if shrink else "bilinear"
    kwargs = {} if shrink else {"align_corners": False}
    return F.interpolate(image[None], size=(size, size), mode=mode, **kwargs)[0]
