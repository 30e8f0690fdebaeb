"""Parsing of the small text widgets (switch frames, slot lists). No ComfyUI import."""
from __future__ import annotations

import re

from .types import SLOTS

__all__ = ["parse_frames", "check_slot_names", "parse_slots"]

_SPLIT = re.compile(r"[,\s;]+")


def _items(text: str | None) -> list[str]:
    return [t for t in _SPLIT.split(text or "") if t]


def parse_frames(text: str | None) -> list[int]:
    """"48, 96" -> [48, 96]: non-negative frame numbers, ascending."""
    frames = []
    for item in _items(text):
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"switch frames must be whole numbers separated by commas (e.g. '48, 96'); "
                             f"{item!r} is not one") from None
        if value < 0:
            raise ValueError(f"switch frames must be >= 0, got {value}")
        frames.append(value)
    if frames != sorted(frames):
        raise ValueError(f"switch frames must be in ascending order, got {frames}")
    return frames


def check_slot_names(text: str | None) -> list[str]:
    """The slot names in `text`; unknown names are an error."""
    slots = _items(text)
    bad = [s for s in slots if s not in SLOTS]
    if bad:
        raise ValueError(f"unknown garment slot(s) {bad}; slots are {list(SLOTS)}")
    return slots


def parse_slots(text: str | None, count: int, stream_slots: tuple[str, ...]) -> list[str]:
    """"upper, lower" -> one slot per scheduled garment.

    Empty text means the stream's only slot; one slot applies to every garment; otherwise give one
    per garment.
    """
    slots = check_slot_names(text)
    if not slots:
        if len(stream_slots) != 1:
            raise ValueError(f"this stream has the slots {list(stream_slots)}: say which slot each scheduled garment "
                             f"replaces in 'switch_slots' (e.g. 'upper, lower')")
        slots = [stream_slots[0]]
    if len(slots) == 1:
        slots = slots * count
    if len(slots) != count:
        raise ValueError(f"'switch_slots' names {len(slots)} slots for {count} scheduled garment(s); give one slot, or "
                         f"one per garment")
    return slots
