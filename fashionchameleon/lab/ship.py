"""`python -m fashionchameleon ship`: copy a trained part into `weights/` at shipping precision.

Training exports fp32 files; the embedded model ships its DiTs in fp16 (half the bytes, within
the 50 MB budget) and `load_embedded` computes in fp32 unless told otherwise. fp16 keeps 10
mantissa bits (bf16 keeps 7), so the round trip changes a weight by at most 2^-11 relative.
The shipped file records where it came from in its metadata.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping

import torch

from ..runtime.files.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..runtime.config import DTYPE_NAMES
from .synthetic import FRAMINGS
from .weights_world import WORLD_KEY, world_meta

__all__ = ["ship", "add_parser"]


def ship(src: str | Path, dst: str | Path, dtype: torch.dtype = torch.float16, note: str = "",
         meta: Mapping[str, str] | None = None) -> Path:
    """Write `src` (any stage) to `dst` with floating tensors cast to `dtype`; refuses a lossy overflow."""
    ckpt = load_checkpoint(src)
    tensors: dict[str, torch.Tensor] = {}
    for name, t in ckpt.tensors.items():
        cast = t.to(dtype) if t.is_floating_point() else t
        if t.is_floating_point() and not torch.isfinite(cast).all():
            raise CheckpointError(f"{src}: tensor {name!r} does not fit {dtype} (max |x| = "
                                  f"{float(t.abs().max()):.3g}); ship it in fp32 or bf16")
        tensors[name] = cast
    extra = {k: v for k, v in ckpt.metadata.items() if not k.startswith("fc_")}
    extra.update(shipped_from=Path(src).name, shipped_dtype=str(dtype).removeprefix("torch."))
    if note:
        extra["note"] = note
    extra.update(meta or {})
    return save_checkpoint(dst, tensors, ckpt.stage, ckpt.config, extra)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ship", help="copy a trained checkpoint into weights/ at shipping precision")
    p.add_argument("src", help="a checkpoint written by `train` (e.g. runs/teacher/teacher.safetensors)")
    p.add_argument("dst", help="where to write it (e.g. weights/teacher.safetensors)")
    p.add_argument("--dtype", default="fp16", choices=tuple(DTYPE_NAMES))
    p.add_argument("--world", choices=tuple(FRAMINGS), help="record the world the part was trained on "
                   "(its framing, at the framing's frame size): the evaluation measures the folder on it")
    p.add_argument("--note", default="", help="free text stored in the metadata (e.g. the training command)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="set a metadata entry (repeatable), e.g. trained_stream='{\"window_frames\": 9}' for a "
                        "student trained before the DMD export recorded its stream")
    p.set_defaults(fn=main)


def main(args: argparse.Namespace) -> int:
    meta = {}
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--meta takes KEY=VALUE, got {item!r}")
        meta[key] = value
    if args.world:
        meta[WORLD_KEY] = world_meta(args.world)
    out = ship(args.src, args.dst, DTYPE_NAMES[args.dtype], args.note, meta)
    print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB ({args.dtype})")
    return 0

