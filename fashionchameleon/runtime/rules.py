"""The engine's input rules, each written once.

A rule is a small function that returns the checked value or raises `InputRuleError`. The error's
message says what is wrong in the engine's words; its `rule` names the rule and its `facts` hold
the values a caller needs to say it in its own words (the node layer names its input and the fix).

    SLOTS                                the garment slots the engine knows: full | upper | lower
    check_slot_names(names)              every name is one of SLOTS
    check_stream_slots(names, slots)     every name is a slot of the stream (its garment slots `slots`)
    check_image_size(size, codec, cfg)   height and width are multiples of codec spatial factor x DiT patch
    require_student(model)               the model's causal student DiT, which streaming needs
"""
from __future__ import annotations

from typing import Any, Sequence

__all__ = ["SLOTS", "InputRuleError", "check_slot_names", "check_stream_slots", "size_unit", "check_image_size",
           "require_student"]

SLOTS = ("full", "upper", "lower")  # one garment: 'full'; an upper and a lower garment: 'upper', 'lower'
DIT_PARTS = ("student", "teacher", "tryoff")  # the DiTs a model may hold (EmbeddedModel)


class InputRuleError(ValueError):
    """An input breaks one of the engine's rules.

    `rule`: which one ("slot_name", "stream_slot", "image_size", "student"); `facts`: the values it
    was checked with and what would have fitted (see each rule for its keys).
    """

    def __init__(self, message: str, rule: str = "", **facts: Any) -> None:
        super().__init__(message)
        self.rule = rule
        self.facts = facts


def _unknown(names: Sequence[str], known: Sequence[str]) -> list[str]:
    return [n for n in names if n not in known]


def check_slot_names(names: Sequence[str]) -> list[str]:
    """`names` as a list if each is one of `SLOTS`. Facts: `unknown` (the names that are not), `slots`."""
    names = list(names)
    unknown = _unknown(names, SLOTS)
    if unknown:
        what = f"slot {unknown[0]!r}" if len(unknown) == 1 else f"slots {unknown}"
        raise InputRuleError(f"unknown garment {what}; choose one of {list(SLOTS)}", "slot_name", unknown=unknown,
                             slots=SLOTS)
    return names


def check_stream_slots(names: Sequence[str], slots: Sequence[str]) -> list[str]:
    """`names` as a list if the stream has each of them (`slots`: its garment slots).

    Facts: `unknown` (the names it lacks), `slots` (the stream's slots, a tuple).
    """
    names, slots = list(names), tuple(slots)
    unknown = _unknown(names, slots)
    if unknown:
        what = f"slot {unknown[0]!r} is" if len(unknown) == 1 else f"slots {unknown} are"
        raise InputRuleError(f"garment {what} not in this stream; its slots are {list(slots)}", "stream_slot",
                             unknown=unknown, slots=slots)
    return names


def size_unit(codec: Any, cfg: Any) -> int:
    """The pixel size both image sides must be a multiple of: the codec's spatial factor x the DiT's patch."""
    return int(codec.spatial_factor) * int(cfg.patch_size[1])


def check_image_size(size: Sequence[int], codec: Any, cfg: Any) -> tuple[int, int]:
    """`(height, width)` if both are multiples of `size_unit(codec, cfg)` (codec: a `LatentCodec`, cfg: the DiT's
    `ModelConfig`).

    Facts: `size`, `unit`, `spatial_factor`, `patch`, and `nearest`: the nearest size that fits.
    """
    h, w = (int(v) for v in size)
    unit = size_unit(codec, cfg)
    if h % unit or w % unit:
        nearest = tuple(max(1, int(v / unit + 0.5)) * unit for v in (h, w))
        spatial, patch = int(codec.spatial_factor), int(cfg.patch_size[1])
        raise InputRuleError(f"image size {h}x{w} must be a multiple of {unit} (codec {spatial}x times patch {patch}); "
                             f"resize or crop the images", "image_size", size=(h, w), unit=unit,
                             spatial_factor=spatial, patch=patch, nearest=nearest)
    return h, w


def require_student(model: Any) -> Any:
    """The model's causal student DiT (`model.student`, e.g. of an `EmbeddedModel`): streaming needs one.

    Facts: `have`, the other DiTs the model holds (e.g. ("teacher",)).
    """
    student = getattr(model, "student", None)
    if student is None:
        have = tuple(p for p in DIT_PARTS if getattr(model, p, None) is not None)
        raise InputRuleError(f"this model has no causal student DiT, which streaming needs (it has: "
                             f"{', '.join(have) or 'no DiT'}); train it (python -m fashionchameleon train dmd) or copy "
                             f"student.safetensors into the weights folder", "student", have=have)
    return student
