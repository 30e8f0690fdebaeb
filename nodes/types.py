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

import torch

from comfy_api.latest import io

from ..fashionchameleon import StreamSession, SwitchPolicy

__all__ = ["FC_MODEL", "FC_STREAM", "FCStream", "CATEGORY", "SLOTS", "POLICIES", "DEFAULT_POLICY",
           "DEFAULT_FPS", "log", "require_model", "require_stream", "require_same_model", "check_slot"]

log = logging.getLogger("fashionchameleon.nodes")

FC_MODEL = io.Custom("FC_MODEL")
FC_STREAM = io.Custom("FC_STREAM")

CATEGORY = "FashionChameleon"
SLOTS = ("full", "upper", "lower")
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


def require_model(model: object, node: str) -> None:
    """Fail with a readable message when something other than an FC_MODEL arrives."""
    if not all(hasattr(model, a) for a in ("codec", "text", "student", "tryoff", "session")):
        raise TypeError(f"{node}: 'model' must come from 'Load FashionChameleon model' (FC_MODEL), got "
                        f"{type(model).__name__}")


def require_stream(stream: object, node: str) -> FCStream:
    if not isinstance(stream, FCStream):
        raise TypeError(f"{node}: 'stream' must be an FC_STREAM from 'FashionChameleon stream generate', got "
                        f"{type(stream).__name__}")
    return stream


def check_slot(slot: str, slots: tuple[str, ...], name: str) -> str:
    """`slot` if the stream has it; else an error that names the input `name` and the stream's slots."""
    if slot not in slots:
        raise ValueError(f"{name}: garment slot {slot!r} is not in this stream; its slots are {list(slots)}. A stream "
                         f"started with one garment has 'full'; one started with 'garment_lower' too has 'upper' and "
                         f"'lower'")
    return slot


def _describe(dit) -> str:
    if dit is None:
        return "no causal student DiT"
    cfg = dit.cfg
    dtype = str(dit.dtype).replace("torch.", "")
    return f"DiT {cfg.name!r}: {cfg.num_layers} layers x {cfg.dim}, {dtype} on {dit.device}"


def _same_weights(a, b) -> bool:
    """Two DiTs with one config, dtype and device whose first and last weights are equal (e.g. one file loaded
    twice); comparing a few tensors is enough to tell different checkpoints apart."""
    if a.cfg != b.cfg or a.dtype != b.dtype or a.device != b.device:
        return False
    pa, pb = list(a.parameters()), list(b.parameters())
    return len(pa) == len(pb) and all(torch.equal(x, y) for x, y in zip(pa[:1] + pa[-2:], pb[:1] + pb[-2:]))


def require_same_model(stream: FCStream, model: object, node: str) -> None:
    """A continued stream keeps the DiT it was started with; refuse a connected model whose DiT is another one."""
    mine, connected = stream.session.model, getattr(model, "student", None)
    if connected is mine or (connected is not None and _same_weights(mine, connected)):
        return
    theirs = _describe(connected)
    if connected is not None and connected.cfg == mine.cfg:
        theirs += ", the same architecture with other weights"
    raise ValueError(f"{node}: model: this stream was started with another model (the stream's {_describe(mine)}; "
                     f"the connected model's {theirs}). A stream keeps the model it was started with: connect the "
                     f"'Load FashionChameleon model' node that started it, or start a new stream with this model "
                     f"(connect 'reference' and 'garment' instead of 'stream')")
