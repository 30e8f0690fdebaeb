"""Contact sheets: a grid of frames as one image, with row labels and framed cells (the demo's figures).

`render_contact_sheet` needs Pillow only for ``labels``; `save_contact_sheet` always needs it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from torch import Tensor

from ..runtime.files.images import from_uint8, save_png, to_uint8
from ..runtime.files.optional_deps import require_pillow
from ..runtime.files.resize import fit_pad_white

__all__ = ["Cell", "Colour", "render_contact_sheet", "save_contact_sheet"]

Cell = tuple[int, int]
Colour = tuple[int, int, int]


def render_contact_sheet(rows: Sequence[Sequence[Tensor | None]], labels: Sequence[str] | None = None,
                         marked: Iterable[Cell] | Mapping[Cell, Colour] | None = None, *, gap: int = 0,
                         label_height: int = 14, mark_color: Colour = (255, 0, 0),
                         mark_width: int | None = None) -> np.ndarray:
    """A grid of frames -> ``uint8`` ``[H, W, 3]``.

    rows:   each row a list of frames ``[3, h, w]`` in [-1, 1] (or ``uint8``); ``None`` leaves a white
            cell, and rows shorter than the longest are padded with white cells. The cell size is the
            first frame's; frames of another size are fitted into it with white padding.
    labels: one text per row, written in a white strip of ``label_height`` pixels above the row.
    marked: cells ``(row, column)`` to frame with a border of ``mark_color`` (or a mapping cell ->
            colour), drawn inside the cell so the sheet's size does not change; the width defaults to
            ``max(2, min(h, w) // 32)``.

    Size: ``H = R * (h + strip) + (R - 1) * gap`` with ``strip = label_height`` if labels else 0,
    ``W = C * w + (C - 1) * gap`` for R rows and C columns.
    """
    frames = [f for row in rows for f in row if f is not None]
    if not rows or not frames:
        raise ValueError("a contact sheet needs at least one row with one frame")
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"got {len(labels)} labels for {len(rows)} rows; give one label per row (or None)")
    h, w = to_uint8(frames[0]).shape[:2]
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    strip = label_height if labels is not None else 0
    sheet = np.full((n_rows * (h + strip) + (n_rows - 1) * gap, n_cols * w + (n_cols - 1) * gap, 3), 255, np.uint8)

    def cell_origin(r: int, c: int) -> tuple[int, int]:
        return r * (h + strip + gap) + strip, c * (w + gap)

    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            if frame is None:
                continue
            px = to_uint8(frame)  # [h', w', 3]
            if px.shape[:2] != (h, w):
                px = to_uint8(fit_pad_white(from_uint8(px), h, w))
            y, x = cell_origin(r, c)
            sheet[y:y + h, x:x + w] = px

    colours = dict(marked) if isinstance(marked, Mapping) else {tuple(m): mark_color for m in (marked or ())}
    bw = mark_width if mark_width is not None else max(2, min(h, w) // 32)
    for (r, c), colour in colours.items():
        if not (0 <= r < n_rows and 0 <= c < n_cols):
            raise ValueError(f"marked cell {(r, c)} is outside the sheet ({n_rows} rows x {n_cols} columns)")
        y, x = cell_origin(r, c)
        box = sheet[y:y + h, x:x + w]  # a view: painting it paints the sheet
        box[:bw], box[-bw:], box[:, :bw], box[:, -bw:] = colour, colour, colour, colour

    if labels is not None:
        sheet = _draw_labels(sheet, labels, [cell_origin(r, 0)[0] - strip for r in range(n_rows)], strip)
    return sheet


def _draw_labels(sheet: np.ndarray, labels: Sequence[str], tops: list[int], strip: int) -> np.ndarray:
    Image = require_pillow("writing contact-sheet labels")
    from PIL import ImageDraw, ImageFont

    img = Image.fromarray(sheet, mode="RGB")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for top, text in zip(tops, labels):
        text = str(text)
        try:
            draw.text((2, top + max(0, (strip - 11) // 2)), text, fill=(0, 0, 0), font=font)
        except UnicodeError:  # the bitmap fallback font only has Latin-1
            draw.text((2, top), text.encode("latin-1", "replace").decode("latin-1"), fill=(0, 0, 0), font=font)
    return np.array(img, dtype=np.uint8)


def save_contact_sheet(path: str | Path, rows: Sequence[Sequence[Tensor | None]],
                       labels: Sequence[str] | None = None,
                       marked: Iterable[Cell] | Mapping[Cell, Colour] | None = None, **kwargs) -> Path:
    """Write `render_contact_sheet` (same arguments) as a PNG; returns the path."""
    return save_png(path, render_contact_sheet(rows, labels, marked, **kwargs))
