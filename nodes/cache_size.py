"""What ComfyUI's RAM-pressure cache counts for the pack's values (FC_MODEL, FC_STREAM).

The RAM-pressure cache (`comfy_execution/caching.py:RAMPressureCache`: the default cache of
ComfyUI 0.38, `--cache-ram` in 0.8) sizes every cached node output by the CPU tensors it finds in
it: tensors and lists, tuples and dicts of them, and for any other object the tensors its
`_comfy_cache_tensors()` method returns. An object without that method counts as a small
constant, so a loaded model or a stream would look tiny and be evicted last. Both values of the
pack answer it:

    FC_MODEL   the parameters and buffers of every part of the model (codec, prompt encoder, DiTs)
    FC_STREAM  what the stream session holds beyond the model (KV cache, prompt K/V, condition and
               recent latents, the decoder state, pending switch images): `StreamSession.held_tensors`

The host counts each storage of one entry once, and only tensors on the CPU.
"""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["HOOK", "model_tensors", "sized_model"]

HOOK = "_comfy_cache_tensors"  # the method ComfyUI's cache calls on an output it cannot size itself


def model_tensors(model) -> list[Tensor]:
    """The parameters and buffers of every part of an FC_MODEL value (an engine `EmbeddedModel`)."""
    parts = (getattr(model, name, None) for name in ("codec", "text", "student", "teacher", "tryoff"))
    return [t for part in parts if isinstance(part, nn.Module)
            for t in (*part.parameters(), *part.buffers())]


def sized_model(model):
    """`model` with the cache's sizing method (an FC_MODEL value, as the loader outputs it)."""
    setattr(model, HOOK, lambda: model_tensors(model))
    return model
