"""Garments a user brings: flat-lay image files loaded as world garments, their kind guessed from the silhouette."""
from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..synthetic import Garment, garment_from_image, segment_garment
from ..synthetic.shapes import grid
from ..synthetic.templates import KINDS, LOWER_SHAPES, UPPER_SHAPES, template_bbox, template_mask

__all__ = ["IMAGE_SUFFIXES", "guess_kind", "load_garments"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_COMPARE = 48


@functools.lru_cache(maxsize=None)
def _template_silhouettes() -> tuple[tuple[str, str, Tensor, float], ...]:
    """(kind, shape, bbox-normalised silhouette, height / width) of every template."""
    out = []
    for kind, shapes in (("upper", UPPER_SHAPES), ("lower", LOWER_SHAPES)):
        for shape in shapes:
            bx0, by0, bx1, by1 = template_bbox(shape)
            x, y = grid(_COMPARE)
            sil = template_mask(shape, bx0 + (x + 1.0) * 0.5 * (bx1 - bx0), by0 + (y + 1.0) * 0.5 * (by1 - by0))
            out.append((kind, shape, sil.expand(_COMPARE, _COMPARE), (by1 - by0) / (bx1 - bx0)))
    return tuple(out)


def guess_kind(image: Tensor) -> str:
    """"upper" or "lower" for a flat-lay `[3, H, W]` in [0, 1]: the template whose silhouette (bounding-box
    normalised, IoU) and aspect ratio fit the segmented garment best."""
    mask = segment_garment(image)
    if int(mask.sum()) < 16:
        raise ValueError("no garment found in the image (it looks like its border colour everywhere)")
    rows, cols = torch.nonzero(mask.any(1)).flatten(), torch.nonzero(mask.any(0)).flatten()
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = mask[y0:y1, x0:x1].float()[None, None]
    sil = F.interpolate(crop, size=(_COMPARE, _COMPARE), mode="area")[0, 0] > 0.5
    aspect = (y1 - y0) / max(1, x1 - x0)
    best, best_score = "upper", -math.inf
    for kind, _, tmpl, t_aspect in _template_silhouettes():
        iou = float((sil & tmpl).sum()) / max(1.0, float((sil | tmpl).sum()))
        score = iou - 0.5 * abs(math.log(aspect / t_aspect))
        if score > best_score:
            best, best_score = kind, score
    return best


def load_garments(directory: str | Path, kind: str | None = None, max_side: int = 256) -> list[tuple[str, Garment]]:
    """Every image file in `directory` as (file name, Garment); `kind` "upper"/"lower", or guessed per file."""
    from ...runtime.files.images import load_image

    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"garment folder not found: {root}")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out = []
    for path in files:
        image = ((load_image(path) + 1.0) / 2.0).clamp(0.0, 1.0)
        side = max(image.shape[-2:])
        if side > max_side:
            h, w = (round(d * max_side / side) for d in image.shape[-2:])
            image = F.interpolate(image[None], size=(h, w), mode="area")[0]
        g = garment_from_image(image, kind or guess_kind(image))
        out.append((path.name, g))
    return out
