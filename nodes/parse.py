"""Parsing of the small text widgets (switch frames, slot lists). No ComfyUI import.

Every error starts with the widget's name ('switch_frames: ...', 'switch_slots: ...'): ComfyUI
shows a validation error for the whole node, so the message has to say which input it is about.
"""
from __future__ import annotations

import re

from ..fashionchameleon import is_wardrobe_schedule, parse_schedule
from ..fashionchameleon import check_slot_names as known_slots
from .checks import check_slot, rule_input

__all__ = ["parse_frames", "check_slot_names", "parse_slots", "pair_switches", "parse_wardrobe_schedule",
           "check_switch_frames"]

_SPLIT = re.compile(r"[,\s;]+")


def _items(text: str | None) -> list[str]:
    return [t for t in _SPLIT.split(text or "") if t]


def parse_frames(text: str | None) -> list[int]:
    """"48, 96" -> [48, 96]: non-negative frame numbers, ascending (a frame may repeat for different slots)."""
    frames = []
    for item in _items(text):
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"switch_frames: switch frames must be whole numbers separated by commas (e.g. '48, 96'); "
                             f"{item!r} is not one") from None
        if value < 0:
            raise ValueError(f"switch_frames: switch frames must be >= 0 (counted from this node's first frame), got "
                             f"{value}")
        frames.append(value)
    if frames != sorted(frames):
        raise ValueError(f"switch_frames: switch frames must be in ascending order, got {frames}; list them in the "
                         f"order of the scheduled garments, earliest first")
    return frames


def check_slot_names(text: str | None) -> list[str]:
    """The slot names in `text`; unknown names are an error."""
    with rule_input(lambda f: f"switch_slots: unknown garment slot(s) {f['unknown']}; slots are {list(f['slots'])}"):
        return known_slots(_items(text))


def parse_slots(text: str | None, count: int, stream_slots: tuple[str, ...]) -> list[str]:
    """"upper, lower" -> one slot per scheduled garment, each one the stream has.

    Empty text means the stream's only slot; one slot applies to every garment; otherwise give one
    per garment.
    """
    slots = check_slot_names(text)
    if not slots:
        if len(stream_slots) != 1:
            raise ValueError(f"switch_slots: this stream has the slots {list(stream_slots)}: say which slot each "
                             f"scheduled garment replaces (e.g. 'upper, lower')")
        slots = [stream_slots[0]]
    if len(slots) == 1:
        slots = slots * count
    if len(slots) != count:
        raise ValueError(f"switch_slots: names {len(slots)} slots for {count} scheduled garment(s); give one slot, or "
                         f"one per garment")
    for slot in slots:
        check_slot(slot, stream_slots, "switch_slots")
    return slots


def pair_switches(frames: list[int], slots: list[str]) -> list[tuple[int, str]]:
    """(frame, slot) per scheduled garment; one slot switching twice at one frame is an error."""
    pairs = list(zip(frames, slots))
    twice = sorted({p for p in pairs if pairs.count(p) > 1})
    if twice:
        frame, slot = twice[0]
        raise ValueError(f"switch_frames: slot {slot!r} would switch twice at frame {frame}, so the first of those "
                         f"garments would never be seen; give each garment of one slot its own frame")
    return pairs


def parse_wardrobe_schedule(text: str | None) -> list:
    """"24:upper:3, 48:lower:1" (the 'schedule' output of a live run) -> the engine's `WardrobeSwitch`es."""
    with rule_input({
        "slot_name": lambda f: f"switch_frames: unknown garment slot(s) {f['unknown']} in the wardrobe schedule; "
                               f"slots are {list(f['slots'])}",
        None: lambda f: f"switch_frames: {f['message']}; paste the 'schedule' output of a live run unchanged "
                        f"(entries frame:slot:index[:policy], e.g. '24:upper:3, 48:lower:1')"}):
        switches = parse_schedule(text)
    pair_switches([s.frame for s in switches], [s.slot for s in switches])
    return switches


def check_switch_frames(text: str | None) -> None:
    """Either form 'switch_frames' takes: frame numbers, or a wardrobe schedule."""
    if is_wardrobe_schedule(text):
        parse_wardrobe_schedule(text)
    else:
        parse_frames(text)
