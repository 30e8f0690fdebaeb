"""A wardrobe schedule: which wardrobe garment goes into which slot at which frame, as data and as text.

A live run records one `WardrobeSwitch` per garment change it applied; the same records, written
as text by `format_schedule`, can be given back to a stream (`parse_schedule`) to switch at the
same frames with the same garments and policies, which reproduces the live run bit for bit with
the same seed.

Text form: entries separated by commas, each `frame:slot:index` or `frame:slot:index:policy`
(policy one of `NAMED_POLICIES`; left out for "full"), e.g. `"24:upper:3, 48:lower:1:refresh"`.
`frame` counts pixel frames from the first frame of the run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..rules import InputRuleError, check_slot_names
from .rescheduling import SwitchPolicy

__all__ = ["NAMED_POLICIES", "DEFAULT_POLICY_NAME", "WardrobeSwitch", "policy_name", "format_schedule",
           "parse_schedule", "is_wardrobe_schedule"]

# The rescheduling presets a wardrobe switch can name (SwitchPolicy's named constructors).
NAMED_POLICIES: dict[str, SwitchPolicy] = {
    "full": SwitchPolicy.full(),
    "refresh+withdraw": SwitchPolicy.refresh_withdraw(),
    "refresh": SwitchPolicy.refresh_only(),
}
DEFAULT_POLICY_NAME = "full"
_SPLIT = re.compile(r"[,\s;]+")


@dataclass(frozen=True)
class WardrobeSwitch:
    """Wardrobe garment `index` replaces slot `slot` at the first chunk boundary at or after `frame`."""

    frame: int  # pixel frames from the run's first frame
    slot: str
    index: int  # position in the wardrobe
    policy: str = DEFAULT_POLICY_NAME  # a key of NAMED_POLICIES

    @property
    def switch_policy(self) -> SwitchPolicy:
        return NAMED_POLICIES[self.policy]

    def text(self) -> str:
        tail = "" if self.policy == DEFAULT_POLICY_NAME else f":{self.policy}"
        return f"{self.frame}:{self.slot}:{self.index}{tail}"


def policy_name(policy: SwitchPolicy) -> str:
    """The name of a preset policy. Facts of the error: `policies` (the names there are)."""
    for name, preset in NAMED_POLICIES.items():
        if preset == policy:
            return name
    raise InputRuleError(f"policy {policy} is not one of the named presets {list(NAMED_POLICIES)}; a wardrobe "
                         f"schedule can only record those", "policy_name", policies=tuple(NAMED_POLICIES))


def format_schedule(switches: list[WardrobeSwitch] | tuple[WardrobeSwitch, ...]) -> str:
    """The text form of `switches` (see the module docstring); "" for none."""
    return ", ".join(s.text() for s in switches)


def is_wardrobe_schedule(text: str | None) -> bool:
    """Does `text` use the wardrobe form (`frame:slot:index`) rather than plain frame numbers?"""
    return ":" in (text or "")


def parse_schedule(text: str | None) -> list[WardrobeSwitch]:
    """The switches written in `text` (module docstring), frames ascending.

    Raises `InputRuleError` with rule "wardrobe_schedule" and facts `entry` (the entry at fault) and
    `problem` (what is wrong with it, in words); slot names follow `check_slot_names`.
    """
    out: list[WardrobeSwitch] = []
    for entry in (t for t in _SPLIT.split(text or "") if t):
        parts = entry.split(":")
        problem = None
        if len(parts) not in (3, 4):
            problem = "write it as frame:slot:index or frame:slot:index:policy"
        elif not parts[0].isdigit() or not parts[2].isdigit():
            problem = "its frame and wardrobe index must be whole numbers >= 0"
        elif len(parts) == 4 and parts[3] not in NAMED_POLICIES:
            problem = f"its policy must be one of {list(NAMED_POLICIES)}"
        if problem is not None:
            raise InputRuleError(f"schedule entry {entry!r}: {problem}", "wardrobe_schedule", entry=entry,
                                 problem=problem)
        check_slot_names([parts[1]])
        out.append(WardrobeSwitch(int(parts[0]), parts[1], int(parts[2]),
                                  parts[3] if len(parts) == 4 else DEFAULT_POLICY_NAME))
    frames = [s.frame for s in out]
    if frames != sorted(frames):
        raise InputRuleError(f"schedule entries must be in ascending frame order, got frames {frames}",
                             "wardrobe_schedule", entry=format_schedule(out), problem="frames are not ascending")
    return out
