"""The pack's socket types, the FC_STREAM value, and names shared by the nodes.

FC_MODEL carries an engine `EmbeddedModel` (codec, prompt encoder, student / teacher / try-off
DiTs) as loaded by "Load FashionChameleon model". FC_STREAM carries an `FCStream`: one engine
`StreamSession` frozen at a chunk boundary. ComfyUI hands the *same* output object to every
consumer and keeps it in its cache, so no node ever changes an input stream: a node that needs
to change one works on `FCStream.fork()`, a snapshot that shares nothing mutable with it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from comfy_api.latest import io

from ..fashionchameleon import SLOTS, StreamSession, SwitchPolicy  # SLOTS: the engine's, for the slot widgets

__all__ = ["FC_MODEL", "FC_STREAM", "FCStream", "CATEGORY", "SLOTS", "POLICIES", "DEFAULT_POLICY",
           "DEFAULT_FPS", "log"]

log = logging.getLogger("fashionchameleon.nodes")

FC_MODEL = io.Custom("FC_MODEL")
FC_STREAM = io.Custom("FC_STREAM")

CATEGORY = "FashionChameleon"
DEFAULT_FPS = 16.0  # the embedded model is trained on 16 fps clips (engine: synthetic.motion.FPS)

# Rescheduling presets a switch can use (engine: SwitchPolicy and its named constructors).
POLICIES: dict[str, SwitchPolicy] = {
    "full (refresh + withdraw + disentangle)": SwitchPolicy.full(),
    "refresh + withdraw": SwitchPolicy.refresh_withdraw(),
    "refresh only": SwitchPolicy.refresh_only(),
}
DEFAULT_POLICY = next(iter(POLICIES))


@dataclass(frozen=True)
class FCStream:
    """An FC_STREAM value: a stream session at a chunk boundary, plus its frame rate.

    Treat it as immutable. `fork()` returns an independent copy to continue, switch or reschedule.
    """

    session: StreamSession
    fps: float = DEFAULT_FPS

    def fork(self) -> "FCStream":
        return FCStream(self.session.snapshot(), self.fps)

    @property
    def frames_generated(self) -> int:
        return self.session.frames_generated

    def _comfy_cache_tensors(self) -> list:
        """What ComfyUI's RAM-pressure cache counts for this value (cache_size.py): the session's own tensors."""
        return self.session.held_tensors()

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(self.session.layout.garment_slots)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.session.image_size

    def __repr__(self) -> str:
        h, w = self.image_size
        pending = len(self.session.pending_switches)
        return (f"FCStream({self.frames_generated} frames, {h}x{w}, slots {list(self.slots)}, "
                f"{pending} pending switch(es), {self.fps:g} fps)")
