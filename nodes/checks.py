"""Input checks shared by the nodes: every error starts with the input's name and says what to do.

Policy for IMAGE inputs (documented in the README, "Errors and what they mean"):

    accepted as is       RGB, 0..1, any batch size the node takes
    converted, logged    RGBA -> composited over white (flat-lays are shot on white);
                         1 channel (grayscale) -> repeated to RGB;
                         values at most `RANGE_TOLERANCE` outside 0..1 (resampling overshoot) -> clamped
    refused              an empty batch or a 0-pixel side; a rank or channel count that is no IMAGE
                         (a MASK or LATENT connected by mistake); NaN or infinite values; values far
                         outside 0..1 (a 0..255 or -1..1 image: converting it is a guess);
                         a video-size image with a side above `MAX_SIDE`

Garments are fitted to the reference size (resized, padded with white) whatever their size, so
they have no size limit of their own.

Input rules the engine owns (garment slots, image size, a student: `fashionchameleon.runtime.rules`)
are not written again here: the nodes call the engine's rule inside `rule_input(message)`, which
re-raises its `InputRuleError` in the node's words (the input's name and the fix) from the facts
the error carries. Also here: the FC_MODEL / FC_STREAM checks (`require_*`). No ComfyUI import of
its own (FCStream comes from types.py).
"""
from __future__ import annotations

import logging
import numbers
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from .. import fashionchameleon as fc
from ..fashionchameleon import MASK64, InputRuleError, check_stream_slots
from .types import FCStream

__all__ = ["RANGE_TOLERANCE", "MAX_SIDE", "MAX_SEED", "check_image", "check_int", "rule_input", "check_slot",
           "require_model", "require_student", "require_stream", "require_same_model"]

log = logging.getLogger("fashionchameleon.nodes")

RANGE_TOLERANCE = 0.25  # how far outside 0..1 pixel values may be and still be clamped (bicubic overshoot)
MAX_SIDE = 4096  # largest video side in pixels (Wan2.2 works at 1280; 4096 x 4096 is ~25x that area)
MAX_SEED = MASK64  # ComfyUI's seed widgets: 0 .. 2**64 - 1, the engine's seed range


def _shape_hint(image: Tensor) -> str:
    if image.ndim == 3 and image.shape[-1] not in (1, 3, 4):
        return " (a MASK [batch, height, width]? convert it with core's 'Convert Mask to Image')"
    if image.ndim == 5:
        return " (a video batch [batch, frames, height, width, channels]? flatten it to frames first)"
    return ""


def _check_layout(image: object, name: str) -> Tensor:
    """The image as `[B, H, W, C]` (one `[H, W, C]` gets a batch axis); errors for anything else."""
    if isinstance(image, dict) and "samples" in image:
        raise TypeError(f"{name}: got a LATENT; this input takes an IMAGE: decode the latent with core's "
                        f"'VAE Decode' first")
    if not isinstance(image, Tensor):
        raise TypeError(f"{name}: expected an IMAGE tensor [batch, height, width, channels], got "
                        f"{type(image).__name__}; connect an IMAGE output (e.g. 'Load Image')")
    x = image[None] if image.ndim == 3 and image.shape[-1] in (1, 3, 4) else image
    if x.ndim != 4:
        raise ValueError(f"{name}: expected an IMAGE [batch, height, width, channels], got a tensor of shape "
                         f"{list(image.shape)}{_shape_hint(image)}")
    if x.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name}: the image has {x.shape[-1]} channels (shape {list(image.shape)}); an IMAGE has 3 "
                         f"(RGB), 4 (RGBA, composited over white) or 1 (grayscale, repeated to RGB)"
                         f"{_shape_hint(image)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: the image batch is empty (0 images); connect a node that outputs at least one "
                         f"image (a filter or 'ImageFromBatch' upstream may have selected none)")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"{name}: the images are {x.shape[1]}x{x.shape[2]} pixels (height x width); connect images "
                         f"with pixels in them")
    return x


def _range_hint(lo: float, hi: float) -> str:
    if hi > 2.0 and lo >= -RANGE_TOLERANCE:
        return "this looks like a 0..255 image: divide it by 255 (ComfyUI IMAGEs hold 0..1)"
    if lo < -RANGE_TOLERANCE and lo >= -1.0 - RANGE_TOLERANCE and hi <= 1.0 + RANGE_TOLERANCE:
        return "this looks like a -1..1 image: map it to 0..1 with (x + 1) / 2"
    return "rescale it to 0..1 (ComfyUI IMAGEs hold 0..1)"


def _check_values(x: Tensor, name: str) -> None:
    """Refuse NaN / inf and values far outside 0..1; log the clamping of a small overshoot."""
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        nan = int(torch.isnan(x).sum())
        raise ValueError(f"{name}: the image holds {nan} NaN and {int((~finite).sum()) - nan} infinite pixel values; "
                         f"the node that made it failed (e.g. a VAE decode that overflowed in fp16: decode in fp32 or "
                         f"bf16); fix or replace that node")
    lo, hi = float(x.min()), float(x.max())
    if lo < -RANGE_TOLERANCE or hi > 1.0 + RANGE_TOLERANCE:
        raise ValueError(f"{name}: pixel values range from {lo:.4g} to {hi:.4g}, far outside 0..1; "
                         f"{_range_hint(lo, hi)}")
    if lo < 0.0 or hi > 1.0:
        log.warning("%s: pixel values %.4g..%.4g are slightly outside 0..1 (resampling overshoot); clamped", name,
                    lo, hi)


def check_image(image: object, name: str, max_side: int | None = None) -> Tensor:
    """A checked IMAGE as float32 `[B, H, W, C]` (C = 1, 3 or 4; a new tensor, values not yet clamped).

    `max_side`: the largest height / width accepted (for images that set the video size).
    """
    x = _check_layout(image, name)
    h, w = x.shape[1:3]
    if max_side is not None and max(h, w) > max_side:
        raise ValueError(f"{name}: the image is {h}x{w} pixels (height x width); the largest side this pack takes is "
                         f"{max_side} px: scale it down first (core's 'Upscale Image' node, e.g. to 112 x 144 "
                         f"px for the embedded model)")
    x = x.detach().float()
    _check_values(x, name)
    if x.shape[-1] == 4:
        log.info("%s: RGBA image composited over white (the alpha channel is dropped)", name)
    elif x.shape[-1] == 1:
        log.info("%s: one-channel image repeated to RGB", name)
    return x


def check_int(value: object, name: str, low: int, high: int, fix: str) -> int:
    """`value` as an int in [low, high]; the error names the input, the range and `fix`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a whole number, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}: must be from {low} to {high}, got {value}; {fix}")
    return int(value)


# ----------------------------------------------------------------------------------- the engine's rules, in node words
Wording = Callable[[dict[str, Any]], str]


@contextmanager
def rule_input(message: Wording | dict[str | None, Wording],
               error: Callable[[str], Exception] = ValueError) -> Iterator[None]:
    """Run an engine rule (`fashionchameleon.runtime.rules`) in this block; its `InputRuleError` becomes
    `error(text)` with the text worded by `message(facts)`, which names the node's input and the fix.

    `message` may be a dict from rule name to wording, with the key None for any other rule; each
    wording gets the error's facts plus "message", the engine's own sentence.
    """
    try:
        yield
    except InputRuleError as exc:
        word = message.get(exc.rule, message[None]) if isinstance(message, dict) else message
        raise error(word({**exc.facts, "message": str(exc)})) from None


def check_slot(slot: str, slots: tuple[str, ...], name: str) -> str:
    """`slot` if the stream has it (engine rule: `check_stream_slots`); else an error naming the input `name`."""
    with rule_input(lambda f: f"{name}: garment slot {slot!r} is not in this stream; its slots are {list(f['slots'])}. "
                              f"A stream started with one garment has 'full'; one started with 'garment_lower' too "
                              f"has 'upper' and 'lower'"):
        check_stream_slots((slot,), slots)
    return slot


# ----------------------------------------------------------------------------------- FC_MODEL and FC_STREAM inputs
def require_model(model: object, node: str) -> None:
    """Fail with a readable message when something other than an FC_MODEL arrives."""
    if not all(hasattr(model, a) for a in ("codec", "text", "student", "tryoff", "session")):
        raise TypeError(f"{node}: 'model' must come from 'Load FashionChameleon model' (FC_MODEL), got "
                        f"{type(model).__name__}")


def require_student(model: object, node: str):
    """The model's causal student DiT (engine rule: `require_student`); else an error that says what to load."""
    with rule_input(lambda f: f"{node}: this model has no causal student DiT, which streaming needs (it has: "
                              f"{', '.join(f['have']) or 'no DiT'}); load the embedded model or a student checkpoint"):
        return fc.require_student(model)


def require_stream(stream: object, node: str) -> FCStream:
    if not isinstance(stream, FCStream):
        raise TypeError(f"{node}: 'stream' must be an FC_STREAM from 'FashionChameleon stream generate', got "
                        f"{type(stream).__name__}")
    return stream


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
