"""Where a garment image sits in the frame a DiT is conditioned with: its garment layout.

    GARMENT_LAYOUTS             "frame": the product photo as given (centred, filling the frame);
                                "body": the photo's garment moved and scaled to where it is worn on a
                                standing person who fills a portrait frame (the fashion framing)
    BODY_BOXES                  per slot, (top, bottom, left, right) as shares of the frame
    ink_box(image)              the pixel box of what is not white in a flat-lay
    lay_out(image, slot, name)  the image in a layout (`[3, H, W]` in [-1, 1] -> the same shape)
    recorded_layout(metadata)   the layout a DiT checkpoint says it was trained with (LAYOUT_KEY)

With the "body" layout an image token of the garment and a token of the video at the same grid
position show the same part of the garment, so a small DiT can carry the texture across by
position instead of learning to find, scale and move it. The one function serves training (the
world's flat-lays), evaluation and the stream (a user's photos), so all three see the same rule.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from .files.checkpoint import CheckpointError

__all__ = ["GARMENT_LAYOUTS", "BODY_BOXES", "LAYOUT_KEY", "mask_box", "ink_box", "check_layout", "lay_out",
           "recorded_layout"]

GARMENT_LAYOUTS = ("frame", "body")
# the mean box of the garment's mask on the first frame of 40 train-split samples of the portrait world
# (tests/test_garment_layout.py measures it again); "full" (both pieces on one sheet) spans both
BODY_BOXES = {"upper": (0.24, 0.64, 0.25, 0.75), "lower": (0.60, 0.96, 0.29, 0.72),
              "full": (0.24, 0.96, 0.25, 0.75)}
# a teacher or forcing checkpoint's metadata entry naming the layout of the flat-lays it was trained on
# (absent: "frame"); a student records it inside its `trained_stream` instead
LAYOUT_KEY = "garment_layout"
WHITE = 0.96  # a pixel brighter than this in every channel ([-1, 1] scale) is the sheet, not the garment


def mask_box(mask: Tensor) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) pixel box of a bool mask `[H, W]`; None when it is empty."""
    rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
    if len(rows) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def ink_box(image: Tensor, white: float = WHITE) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel box of what is not white in `[3, H, W]` in [-1, 1] (all of it if blank)."""
    return mask_box((image < white).any(dim=0)) or (0, image.shape[-2], 0, image.shape[-1])


def check_layout(layout: str, error: type[Exception] = ValueError, name: str = "garment_layout") -> None:
    """Raise `error` naming `name` unless `layout` is one of `GARMENT_LAYOUTS`."""
    if layout not in GARMENT_LAYOUTS:
        raise error(f"{name} must be one of {GARMENT_LAYOUTS}, got {layout!r}")


def lay_out(image: Tensor, slot: str, layout: str = "frame") -> Tensor:
    """`image` `[3, H, W]` in [-1, 1] (a garment on white) in `layout`; "frame" returns it unchanged.

    "body": the garment is cut out by its ink box, scaled (antialiased) to the height of the slot's
    body box, keeping its aspect (spread sleeves reach past the box, as arms do), centred on the box
    and pasted on white; what would leave the frame is cut off.
    """
    check_layout(layout, name="garment layout")
    if layout == "frame":
        return image
    if slot not in BODY_BOXES:
        raise ValueError(f"slot must be one of {tuple(BODY_BOXES)}, got {slot!r}")
    h, w = image.shape[-2:]
    top, bottom, left, right = BODY_BOXES[slot]
    t, b, l, r = ink_box(image)
    piece = image[:, t:b, l:r]  # [3, ih, iw]
    ph = max(1, int(round((bottom - top) * h)))
    pw = max(1, int(round(piece.shape[-1] * ph / piece.shape[-2])))
    piece = F.interpolate(piece[None].float(), size=(ph, pw), mode="bilinear", align_corners=False,
                          antialias=True)[0].clamp(-1.0, 1.0)
    y0 = int(round(top * h))
    x0 = int(round((left + right) / 2 * w - pw / 2))
    out = torch.ones(3, h, w, dtype=image.dtype)
    ys, xs = slice(max(0, y0), min(h, y0 + ph)), slice(max(0, x0), min(w, x0 + pw))
    out[:, ys, xs] = piece[:, ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0].to(image.dtype)
    return out


def recorded_layout(metadata: Mapping[str, str], path: object = "") -> str:
    """The garment layout a checkpoint's `metadata` records (`LAYOUT_KEY`; "frame" when it records none)."""
    layout = metadata.get(LAYOUT_KEY, "frame")
    if layout not in GARMENT_LAYOUTS:
        raise CheckpointError(f"{path}: metadata {LAYOUT_KEY!r} is {layout!r}, not one of {GARMENT_LAYOUTS}; "
                              f"re-ship the file with `python -m fashionchameleon ship --meta {LAYOUT_KEY}=frame` "
                              f"(or body)")
    return layout
