"""Building a `WanDiT` from a checkpoint file: config from the metadata or the tensor shapes, strict loading.

Keys are normalised first (`foreign.normalize_dit_keys`), then checked against the model with a
report of missing, unexpected and mis-shaped keys; metadata that disagrees with the shapes is an error.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ..config import ConfigError, ModelConfig, infer_config
from ..dit.model import WanDiT, grown_keys
from .checkpoint import Checkpoint, CheckpointError, check_stage, load_checkpoint
from .foreign import normalize_dit_keys

__all__ = ["load_dit_state", "build_dit"]

logger = logging.getLogger(__name__)

_LIST = 5  # how many offending keys a message names


def _first(items: list[str]) -> str:
    return ", ".join(items[:_LIST]) + (", ..." if len(items) > _LIST else "")


def load_dit_state(model: torch.nn.Module, state_dict: Mapping[str, Any], path: str = "<memory>") -> torch.nn.Module:
    """Normalise keys, check them against the model with a readable report, then load strictly.

    Tensors are cast to the model's dtypes. A model whose parameters are on the meta device (built
    without memory) receives the tensors by assignment.
    """
    sd = normalize_dit_keys(state_dict, path=path)
    target = model.state_dict()
    grown = grown_keys(sd, target)
    if grown:  # an older file: the model keeps its zero-initialised input (`model.GROWN_PARAMETERS`)
        logger.info("%s has no %s: kept at the model's initial zeros", path, ", ".join(grown))
        sd = {**sd, **grown}
    missing = [k for k in target if k not in sd]
    unexpected = [k for k in sd if k not in target]
    shapes = [f"{k}: file {list(sd[k].shape)} vs model {list(target[k].shape)}"
              for k in target if k in sd and tuple(sd[k].shape) != tuple(target[k].shape)]
    if missing or unexpected or shapes:
        cfg = getattr(model, "cfg", None)
        what = (f"{type(model).__name__}(dim={cfg.dim}, ffn_dim={cfg.ffn_dim}, layers={cfg.num_layers}, "
                f"in={cfg.in_dim}, out={cfg.out_dim}, text_dim={cfg.text_dim})" if cfg else type(model).__name__)
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (first: {_first(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) (first: {_first(unexpected)})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) (first: {_first(shapes)})")
        raise CheckpointError(f"{path}: the weights do not fit {what}: " + "; ".join(parts) + ". Check that the file "
                              "is a Wan-layout DiT made for this config (build_dit infers the config from the "
                              "file), not a LoRA, VAE or text-encoder file.")
    assign = any(t.is_meta for t in target.values())
    cast = {}
    for k, v in sd.items():
        ref = target[k]
        v = v.to(dtype=ref.dtype) if v.dtype != ref.dtype else v
        if not assign and v.device != ref.device:
            v = v.to(ref.device)
        cast[k] = v.contiguous()
    model.load_state_dict(cast, strict=True, assign=assign)
    return model


# config field -> the tensor whose shape (or presence) fixes it, for disagreement messages
_SHAPE_FIELDS = {
    "dim": "patch_embedding.weight",
    "in_dim": "patch_embedding.weight",
    "patch_size": "patch_embedding.weight",
    "ffn_dim": "blocks.0.ffn.0.weight",
    "num_layers": "blocks.N",
    "text_dim": "text_embedding.0.weight",
    "freq_dim": "time_embedding.0.weight",
    "out_dim": "head.head.weight",
    "qk_norm": "blocks.0.self_attn.norm_q.weight",
    "cross_attn_norm": "blocks.0.norm3.weight",
    "garment_hint": "garment_embedding.weight",
}


def _config_conflicts(meta_cfg: ModelConfig, inferred: ModelConfig) -> list[str]:
    out = []
    for name, key in _SHAPE_FIELDS.items():
        said, found = getattr(meta_cfg, name), getattr(inferred, name)
        if said == found:
            continue
        if name == "num_layers":
            out.append(f"metadata says num_layers={said} but the file has {found} blocks")
        elif isinstance(said, bool):
            out.append(f"metadata says {name}={said} but {key} is {'present' if found else 'absent'}")
        else:
            out.append(f"metadata says {name}={list(said) if isinstance(said, tuple) else said} but {key} has "
                       f"{name} {list(found) if isinstance(found, tuple) else found}")
    return out


@torch.inference_mode(False)
def build_dit(ckpt_or_path: Checkpoint | str | os.PathLike, expect_stage: str | tuple[str, ...] | None = ("teacher", "student"),
              dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> WanDiT:
    """Build a `WanDiT` from a checkpoint (ours or a foreign Wan-layout file) and load it strictly.

    The config comes from the ``fc_config`` metadata when present, else from the tensor shapes;
    metadata that disagrees with the shapes is an error. `dtype` None keeps the stored dtype of
    the weights. The model is built on the meta device and receives the tensors by assignment (no
    second copy of the weights), so when a `Checkpoint` is passed and no cast or move is needed the
    model's parameters share storage with ``ckpt.tensors``. Returned in eval mode.

    Built outside `torch.inference_mode` even when called inside it (ComfyUI runs every node so):
    inference tensors have no version counter, so the model's fused q/k/v weights could not be
    cached and would be rebuilt every pass.
    """
    if isinstance(ckpt_or_path, Checkpoint):
        ckpt = ckpt_or_path
        check_stage(ckpt.path, ckpt.stage, expect_stage, allow_foreign=True)
    else:
        ckpt = load_checkpoint(ckpt_or_path, expect_stage=expect_stage, device="cpu", allow_foreign=True)
    path = ckpt.path
    tensors = normalize_dit_keys(ckpt.tensors, path=path)
    try:
        inferred = infer_config(tensors, name=Path(path).stem)
    except (ConfigError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{path}: cannot read a Wan-layout DiT from this file ({exc}). Keys look like: "
                              f"{_first(list(tensors))}.") from None
    if ckpt.config is not None:
        try:
            cfg = ModelConfig.from_json(ckpt.config)
        except (ConfigError, TypeError) as exc:
            raise CheckpointError(f"{path}: the config in the metadata is not a valid model config ({exc}). Re-save "
                                  f"the file with the right config, or strip fc_config to infer it.") from None
        conflicts = _config_conflicts(cfg, inferred)
        if conflicts:
            raise CheckpointError(f"{path}: the config in the metadata disagrees with the tensors: "
                                  + "; ".join(conflicts) + ". The file was saved with the wrong config or edited; "
                                  "re-save it with the right config.")
    else:
        cfg = inferred
        logger.info("%s: no config in the metadata; inferred %s", path, cfg)
    if dtype is None:
        stored = tensors["patch_embedding.weight"].dtype
        dtype = stored if stored.is_floating_point else torch.float32
    with torch.device("meta"):
        model = WanDiT(cfg)
    if any(True for _ in model.buffers()):  # buffers are not in the file: build them for real
        model = WanDiT(cfg)
        model.to(device=device, dtype=dtype)
    else:
        model.to(dtype=dtype)
    tensors = {k: v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device) for k, v in tensors.items()}
    load_dit_state(model, tensors, path)
    return model.eval()
