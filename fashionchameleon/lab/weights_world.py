"""Which world a weights folder was trained on, as its files record it (`trained_world` metadata).

A shipped part may carry `trained_world` = JSON `{"framing": ..., "height": H, "width": W}` (written
by `ship --world`, and by every `train` export of a world-trained teacher, forcing model, student
or try-off model, from its data config). The evaluation measures a folder on the world it records
unless told otherwise, so `python -m fashionchameleon eval` on the package's weights scores them on
their own test split.
A folder whose files record nothing is the square full-body world (every set shipped before the
key existed).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..runtime.embedded import PARTS
from ..runtime.files.checkpoint import read_header

__all__ = ["WORLD_KEY", "WORLD_FIELDS", "world_meta", "world_entry", "weights_world", "world_fields",
           "folder_world_fields"]

WORLD_KEY = "trained_world"
WORLD_FIELDS = ("framing", "height", "width")  # what a recorded world sets in a WorldConfig / EvalConfig
GENERATORS = ("student", "teacher", "tryoff")  # the parts that learned from the world, in the order asked


def world_meta(framing: str, height: int | None = None, width: int | None = None) -> str:
    """The metadata value for a world (`height` / `width` default to the framing's frame)."""
    from .synthetic import WorldConfig

    h, w = WorldConfig(framing=framing, height=height, width=width).frame_size
    return json.dumps({"framing": framing, "height": h, "width": w}, sort_keys=True)


def world_entry(world: str) -> dict[str, str]:
    """The export metadata entry for a `world_meta` value: `{WORLD_KEY: world}`, or {} when there is none."""
    return {WORLD_KEY: world} if world else {}


def weights_world(folder: str | Path) -> tuple[dict, str] | None:
    """({"framing", "height", "width"}, the file that says so) from the first generator part that records
    its world, or None when none does."""
    for part in GENERATORS:
        path = Path(folder) / PARTS[part]
        if not path.exists():
            continue
        raw = read_header(path).get("__metadata__", {}).get(WORLD_KEY)
        if raw:
            world = json.loads(raw)
            if not isinstance(world, dict) or "framing" not in world:
                raise ValueError(f"{path}: metadata {WORLD_KEY!r} must be a JSON object with a 'framing', got {raw!r}")
            return world, path.name
    return None


def world_fields(world: dict | None) -> dict:
    """The `WorldConfig` / `EvalConfig` fields a recorded world (`weights_world(...)[0]`) sets; {} for None."""
    return {k: world[k] for k in WORLD_FIELDS if k in world} if world else {}


def folder_world_fields(folder: str | Path) -> dict:
    """`world_fields` of the world a weights folder records ({} when it records none: the full-body world)."""
    recorded = weights_world(folder)
    return world_fields(recorded[0] if recorded else None)
