"""Garments from images: segment a flat-lay on a light background and map it onto a template.

`garment_from_image` finds the garment (pixels that differ from the border colour, holes filled),
guesses the shape by silhouette overlap with the kind's templates (or takes the given shape),
and resamples the garment's bounding box onto the template's bounding box in the atlas. Pixels
around the garment are filled with nearby garment colours (push-pull), so the renderer never
samples the background. `outfit_from_image` splits a one-image outfit (upper above lower).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .garments import Garment
from .shapes import grid
from ...runtime.garment_layout import mask_box
from .templates import KINDS, LOWER_SHAPES, UPPER_SHAPES, template_bbox, template_mask
from .textures import ImageTexture

__all__ = ["garment_from_image", "outfit_from_image", "segment_garment", "guess_shape"]

_COMPARE = 48  # resolution of the silhouette comparison


def _check_image(image: Tensor) -> Tensor:
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W], got {list(image.shape)}")
    return image.detach().float().cpu().clamp(0.0, 1.0)


def _fill_holes(mask: Tensor) -> Tensor:
    """Add to `mask` [H, W] every pixel not reachable from the border through non-mask pixels."""
    free = ~mask
    reach = torch.zeros_like(mask)
    reach[0, :], reach[-1, :], reach[:, 0], reach[:, -1] = free[0, :], free[-1, :], free[:, 0], free[:, -1]
    while True:
        grown = reach
        for _ in range(8):
            grown = F.max_pool2d(grown[None, None].float(), 3, stride=1, padding=1)[0, 0].bool() & free
        if torch.equal(grown, reach):
            return ~reach
        reach = grown


def _background_colour(image: Tensor) -> Tensor:
    """Median colour of the image border `[3, 1, 1]`."""
    border = torch.cat([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], dim=1)  # [3, 2H + 2W]
    return border.median(dim=1).values[:, None, None]


def segment_garment(image: Tensor, tolerance: float = 0.06) -> Tensor:
    """Garment mask `[H, W]` bool: pixels farther than `tolerance` from the border's median colour."""
    image = _check_image(image)
    mask = (image - _background_colour(image)).abs().amax(dim=0) > tolerance
    return _fill_holes(mask)


def _bbox(mask: Tensor) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a non-empty mask `[H, W]`."""
    top, bottom, left, right = mask_box(mask)
    return left, top, right, bottom


def _normalised_silhouette(mask: Tensor) -> Tensor:
    x0, y0, x1, y1 = _bbox(mask)
    crop = mask[y0:y1, x0:x1].float()[None, None]
    return F.interpolate(crop, size=(_COMPARE, _COMPARE), mode="area")[0, 0] > 0.5


def _template_silhouette(shape: str) -> Tensor:
    bx0, by0, bx1, by1 = template_bbox(shape)
    x, y = grid(_COMPARE)
    return template_mask(shape, bx0 + (x + 1.0) * 0.5 * (bx1 - bx0), by0 + (y + 1.0) * 0.5 * (by1 - by0))


def guess_shape(mask: Tensor, kind: str) -> str:
    """The template of `kind` whose bounding-box-normalised silhouette overlaps `mask` best (IoU)."""
    shapes = UPPER_SHAPES if kind == "upper" else LOWER_SHAPES
    sil = _normalised_silhouette(mask)
    best, best_iou = shapes[0], -1.0
    for shape in shapes:
        t = _template_silhouette(shape)
        iou = float((sil & t).sum()) / max(1.0, float((sil | t).sum()))
        if iou > best_iou:
            best, best_iou = shape, iou
    return best


def _half(x: Tensor) -> Tensor:
    """2x2 box average `[1, C, H, W]` -> `[1, C, ceil(H/2), ceil(W/2)]`, zero-padding odd sizes."""
    _, c, h, w = x.shape
    x = F.pad(x, (0, w % 2, 0, h % 2))
    return x.view(1, c, (h + 1) // 2, 2, (w + 1) // 2, 2).mean(dim=(3, 5))  # [1, C, H/2, 2, W/2, 2] -> ...


def _push_pull(image: Tensor, mask: Tensor) -> Tensor:
    """Replace pixels outside `mask` by smoothly interpolated colours of nearby mask pixels."""
    weights = [mask.float()[None, None]]  # [1, 1, H, W]
    colours = [image[None] * weights[0]]  # [1, 3, H, W]
    while min(weights[-1].shape[-2:]) > 1:
        weights.append(_half(weights[-1]))
        colours.append(_half(colours[-1]))
    filled = colours[-1] / weights[-1].clamp(min=1e-6)
    for w, c in zip(reversed(weights[:-1]), reversed(colours[:-1])):
        up = F.interpolate(filled, size=w.shape[-2:], mode="bilinear", align_corners=False)
        own = c / w.clamp(min=1e-6)
        filled = torch.where(w > 0.999, own, own * w + up * (1.0 - w))
    return filled[0]


def garment_from_image(image: Tensor, kind: str, shape: str | None = None, *, res: int | None = None,
                       tolerance: float = 0.06) -> Garment:
    """A `Garment` of `kind` whose front and back are the garment in `image` `[3, H, W]` in [0, 1]."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    image = _check_image(image)
    mask = segment_garment(image, tolerance)
    if int(mask.sum()) < 16:
        raise ValueError("no garment found: the image looks like its border colour everywhere")
    shape = guess_shape(mask, kind) if shape is None else shape
    res = res or max(image.shape[-2:])
    filled = _push_pull(image, mask)  # [3, H, W]
    x0, y0, x1, y1 = _bbox(mask)
    h, w = image.shape[-2:]
    # atlas pixel -> position in the template's bbox -> position in the image's garment bbox
    bx0, by0, bx1, by1 = template_bbox(shape)
    ax, ay = grid(res)
    u = (ax - bx0) / (bx1 - bx0)  # [1, res] 0..1 across the template box
    v = (ay - by0) / (by1 - by0)  # [res, 1]
    sx = (x0 + u * (x1 - x0)) * (2.0 / w) - 1.0
    sy = (y0 + v * (y1 - y0)) * (2.0 / h) - 1.0
    pts = torch.stack(torch.broadcast_tensors(sx, sy), dim=-1)[None]  # [1, res, res, 2]
    atlas = F.grid_sample(filled[None], pts, mode="bilinear", padding_mode="border", align_corners=False)[0]
    texture = ImageTexture(atlas.clamp(0.0, 1.0).contiguous())
    return Garment(kind, shape, texture, texture, None)


def outfit_from_image(image: Tensor, *, tolerance: float = 0.06) -> tuple[Garment, Garment]:
    """Split a one-image outfit (upper garment above lower garment) into two garments."""
    image = _check_image(image)
    mask = segment_garment(image, tolerance)
    rows = mask.sum(dim=1).float()  # [H]
    h = image.shape[-2]
    band = rows[h // 4: 3 * h // 4]
    cut = h // 4 + int(torch.argmin(band))
    background = _background_colour(image)
    upper, lower = image.clone(), image.clone()
    upper[:, cut:] = background
    lower[:, :cut] = background
    return (garment_from_image(upper, "upper", tolerance=tolerance),
            garment_from_image(lower, "lower", tolerance=tolerance))
