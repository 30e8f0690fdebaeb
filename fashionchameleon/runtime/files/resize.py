"""The two resizes of the FashionChameleon preprocessing, pure torch, on one image or a stack of frames.

As the official training data loader does it: video frames and reference images are resized to
*cover* the target and centre-cropped (`resize_cover_crop`); garment flat-lays are *fitted* inside
the target and padded with white (`fit_pad_white`). Both are bilinear and antialiased, on float
images in [-1, 1].
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["resize_cover_crop", "fit_pad_white"]


def _as_batch(img: Tensor) -> tuple[Tensor, bool]:
    if img.ndim not in (3, 4) or img.shape[-3] != 3:
        raise ValueError(f"expected an image [3, H, W] or frames [T, 3, H, W], got shape {list(img.shape)}")
    if not img.is_floating_point():
        raise TypeError(f"resize float images in [-1, 1] (got {img.dtype}); convert uint8 with `from_uint8`")
    return (img[None], True) if img.ndim == 3 else (img, False)


def _resize(x: Tensor, h: int, w: int) -> Tensor:
    """Bilinear, antialiased resize of ``[N, 3, H, W]`` in [-1, 1]; a no-op at the same size.

    The filter's weights are non-negative, so the result stays in range up to rounding, which the
    clamp removes (consumers may rely on [-1, 1] exactly).
    """
    if tuple(x.shape[-2:]) == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp_(-1.0, 1.0)


def resize_cover_crop(img: Tensor, h: int, w: int) -> Tensor:
    """Resize so the image covers ``h x w`` (aspect kept), then crop the centre: ``[..., 3, h, w]``.

    ``img`` is ``[3, H, W]`` or ``[T, 3, H, W]`` float. Used for video frames and reference images.
    """
    x, single = _as_batch(img)  # [N, 3, H, W]
    H, W = x.shape[-2:]
    scale = max(h / H, w / W)
    nh, nw = max(h, round(H * scale)), max(w, round(W * scale))  # never below the target by rounding
    x = _resize(x, nh, nw)
    top, left = int(round((nh - h) / 2.0)), int(round((nw - w) / 2.0))
    x = x[..., top:top + h, left:left + w]  # [N, 3, h, w]
    return x[0] if single else x


def fit_pad_white(img: Tensor, h: int, w: int, fill: float = 1.0) -> Tensor:
    """Resize so the image fits inside ``h x w`` (aspect kept), centre it on white: ``[..., 3, h, w]``.

    ``img`` is ``[3, H, W]`` or ``[T, 3, H, W]`` float in [-1, 1]; ``fill`` 1.0 is white. Used for
    garment flat-lays.
    """
    x, single = _as_batch(img)  # [N, 3, H, W]
    H, W = x.shape[-2:]
    scale = min(h / H, w / W)
    nh, nw = min(h, max(1, round(H * scale))), min(w, max(1, round(W * scale)))
    x = _resize(x, nh, nw)
    top, left = (h - nh) // 2, (w - nw) // 2
    out = x.new_full((x.shape[0], 3, h, w), fill)  # [N, 3, h, w]
    out[..., top:top + nh, left:left + nw] = x
    return out[0] if single else out
