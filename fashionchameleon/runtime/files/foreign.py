"""Foreign checkpoints: the key layouts other code writes, mapped onto the plain Wan layout of `WanDiT`.

`normalize_dit_keys` unwraps training-checkpoint nesting and strips wrapper prefixes and infixes;
`load_official_generator` reads an official FashionChameleon / Self-Forcing training checkpoint,
the only place in the pack that calls ``torch.load``, and only with ``weights_only=True``
(PyTorch's restricted unpickler, which rebuilds tensors and plain containers only). The layouts
handled here, and where they come from: docs/checkpoint-formats.md.
"""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch

from .checkpoint import PICKLE_EXTENSIONS, CheckpointError, load_checkpoint, pickle_advice, pickle_kind, probe_file

__all__ = ["unwrap_state_dict", "normalize_dit_keys", "load_official_generator"]

logger = logging.getLogger(__name__)

_DIT_ROOTS = frozenset({"patch_embedding", "text_embedding", "time_embedding", "time_projection", "blocks", "head"})
_INFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
_SELECT_PREFIXES = ("model.diffusion_model.", "diffusion_model.")  # ComfyUI / LDM-style full checkpoints
_UNWRAP_KEYS = ("model", "state_dict", "module")


def _torch_reason(exc: Exception) -> str:
    """The informative line of a torch.load error (its full text advises weights_only=False, which we never do)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    key = next((ln for ln in lines if "Unsupported global" in ln or "WeightsUnpickler error" in ln), None)
    return f"{exc.__class__.__name__}: {(key or (lines[0] if lines else ''))[:300]}"


def unwrap_state_dict(obj: Any, prefer_ema: bool = True, path: str = "<state dict>") -> dict[str, torch.Tensor]:
    """Find the tensor state dict inside training-checkpoint nesting.

    A mapping holding tensors is the state dict (non-tensor entries are dropped). Otherwise descend
    into ``generator_ema`` / ``generator`` (order set by `prefer_ema`), then ``model``,
    ``state_dict``, ``module`` — whichever exists first.
    """
    order = ("generator_ema", "generator") if prefer_ema else ("generator", "generator_ema")
    order += _UNWRAP_KEYS
    cur, trail = obj, []
    for _ in range(8):
        if not isinstance(cur, Mapping):
            raise CheckpointError(f"{path}: expected a dict of tensors at {'/'.join(trail) or 'the top level'}, found "
                                  f"{type(cur).__name__}. Is this a model checkpoint?")
        tensors = {k: v for k, v in cur.items() if isinstance(v, torch.Tensor)}
        if tensors:
            if trail:
                logger.info("%s: using the state dict under %s", path, "/".join(trail))
            return tensors
        key = next((k for k in order if isinstance(cur.get(k), Mapping)), None)
        if key is None:
            raise CheckpointError(f"{path}: no tensors found at {'/'.join(trail) or 'the top level'} (keys: "
                                  f"{sorted(map(str, cur))[:10]}); expected a state dict or one nested under "
                                  f"{list(order)}.")
        trail.append(key)
        cur = cur[key]
    raise CheckpointError(f"{path}: state dict nesting is deeper than expected ({'/'.join(trail)}).")


def _is_dit_key(key: str) -> bool:
    return key.split(".", 1)[0] in _DIT_ROOTS


def normalize_dit_keys(state_dict: Mapping[str, Any], prefer_ema: bool = True,
                       path: str = "<state dict>") -> dict[str, torch.Tensor]:
    """Map the key layouts users bring to the plain Wan layout of `WanDiT`.

    - unwraps ``{"generator_ema"|"generator"|"model"|"state_dict"|"module": sd}`` nesting;
    - removes ``_fsdp_wrapped_module.``, ``_checkpoint_wrapped_module.``, ``_orig_mod.`` anywhere;
    - strips ``module.`` (DDP) when every key has it;
    - keeps only the ``model.diffusion_model.`` / ``diffusion_model.`` keys of a ComfyUI / LDM-style
      full checkpoint, without the prefix;
    - strips ``model.`` (the official ``WanDiffusionWrapper.model``) when every DiT key has it and
      none lacks it (or when every key has it); other keys are left alone and show up as
      unexpected when loading.
    """
    sd = unwrap_state_dict(state_dict, prefer_ema, path)
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        new = k
        for infix in _INFIXES:
            new = new.replace(infix, "")
        if new in out:
            raise CheckpointError(f"{path}: key {k!r} and another key both become {new!r} once wrapper infixes are "
                                  f"removed; the state dict holds two copies of the model. Save one of them alone.")
        out[new] = v
    for _ in range(8):  # peel prefixes until nothing changes (e.g. module.model.blocks...)
        changed = False
        if out and all(k.startswith("module.") for k in out):
            out, changed = {k[len("module."):]: v for k, v in out.items()}, True
        for prefix in _SELECT_PREFIXES:
            chosen = {k[len(prefix):]: v for k, v in out.items() if k.startswith(prefix)}
            if any(_is_dit_key(k) for k in chosen):
                if len(chosen) != len(out):
                    logger.info("%s: kept the %d '%s*' keys, dropped %d others", path, len(chosen), prefix,
                                len(out) - len(chosen))
                out, changed = chosen, True
                break
        wrapped = any(k.startswith("model.") and _is_dit_key(k[len("model."):]) for k in out)
        bare = any(_is_dit_key(k) for k in out)
        if (wrapped and not bare) or (out and all(k.startswith("model.") for k in out)):
            out = {(k[len("model."):] if k.startswith("model.") else k): v for k, v in out.items()}
            changed = True
        if not changed:
            break
    return out


def load_official_generator(path: str | os.PathLike, prefer_ema: bool = True) -> dict[str, torch.Tensor]:
    """The DiT state dict (plain Wan names) of an official FashionChameleon / Self-Forcing checkpoint.

    safetensors files go through our header check; ``torch.save`` files (``model.pt``) are read
    ONLY with ``torch.load(weights_only=True)``, never with a full pickle load. Nesting is unwrapped
    (``generator_ema`` preferred over ``generator`` when `prefer_ema`) and keys normalised.
    """
    path = Path(path)
    probe = probe_file(path)
    if probe.looks_safetensors or (pickle_kind(probe.head) is None and path.suffix.lower() not in PICKLE_EXTENSIONS):
        return normalize_dit_keys(load_checkpoint(path, allow_foreign=True).tensors, prefer_ema, str(path))
    if pickle_kind(probe.head) is None:
        raise CheckpointError(f"{path}: neither a safetensors file nor a torch.save file (unrecognised first bytes "
                              f"{probe.head!r}). Fetch the file again.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc).lower():
            raise CheckpointError(f"{path}: torch.load(weights_only=True) refused the file: it holds objects other "
                                  f"than tensors and plain containers ({_torch_reason(exc)}). A full pickle load is "
                                  f"never attempted. {pickle_advice(path, mention_official=False)}") from None
        raise CheckpointError(f"{path}: the torch.save file could not be read ({_torch_reason(exc)}); it is probably "
                              f"truncated or damaged. Fetch it again.") from None
    return normalize_dit_keys(obj, prefer_ema, str(path))
