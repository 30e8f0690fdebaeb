"""`python -m fashionchameleon train STAGE --config FILE --out DIR`: one entry point for every stage.

A config file is JSON with four parts:

    {"run":   {"steps": ..., "warmup": ..., "log_every": ..., "save_every": ...},
     "stage": {... fields of the stage's config dataclass ...},
     "data":  {... DataConfig fields ...},
     "codec": "path/to/codec.safetensors"}          # the frozen codec (all stages but `codec`)

The run resumes from DIR/state.safetensors unless --fresh; under `torchrun` every rank reads
its own slice of the data and the networks are wrapped in DDP.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ...runtime.cpu_memory import keep_freed_memory
from ...runtime.embedded import load_codec
from ..weights_world import world_meta
from .codec_stage import CodecStage, CodecStageConfig
from .data import DataConfig, clip_batches
from .distributed import DistInfo, init_distributed
from .dit_stage import DiffusionStageConfig
from .dmd_stage import DMDStage, DMDStageConfig
from .forcing_stage import ForcingStage
from .reward import GarmentFidelityReward
from .runner import STATE_FILE, RunConfig, export_snapshot, run_stage
from .state import compact_state
from .teacher_stage import TeacherStage
from .tryoff_stage import TryOffStage

__all__ = ["TrainFile", "STAGE_NAMES", "build_stage", "without_init_weights", "add_parser", "main"]

STAGE_NAMES = ("codec", "teacher", "forcing", "dmd", "tryoff")
CONFIG_DIR = Path(__file__).parent / "configs"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainFile:
    run: RunConfig
    stage: dict = field(default_factory=dict)
    data: DataConfig = DataConfig()
    codec: str = ""

    @classmethod
    def read(cls, path: str | Path) -> "TrainFile":
        raw = json.loads(Path(path).read_text())
        unknown = sorted(set(raw) - {"run", "stage", "data", "codec"})
        if unknown:
            raise ValueError(f"{path}: unknown sections {unknown}; a config has run, stage, data and codec")
        return cls(RunConfig(**raw.get("run", {"steps": 1000})), raw.get("stage", {}),
                   DataConfig.from_json(raw.get("data", {})), raw.get("codec", ""))


def without_init_weights(spec: TrainFile, keys: tuple[str, ...] | None = None) -> TrainFile:
    """`spec` with the stage's starting checkpoints cleared: `keys`, or every `init_*`."""
    drop = (lambda k: k.startswith("init_")) if keys is None else (lambda k: k in keys)
    return replace(spec, stage={k: "" if drop(k) else v for k, v in spec.stage.items()})


# the class of each DiT stage, for what a resumed state replaces (`restored_inits`)
STAGE_CLASSES = {"teacher": TeacherStage, "forcing": ForcingStage, "tryoff": TryOffStage, "dmd": DMDStage}


def _load_codec_for_training(path: str, device: torch.device):
    if not path:
        raise ValueError("this stage trains on latents: set \"codec\" in the config to a trained codec checkpoint "
                         "(train it first with `python -m fashionchameleon train codec`)")
    return load_codec(path, device)


def build_stage(name: str, spec: TrainFile, device: torch.device, info: DistInfo = DistInfo()):
    data = clip_batches(spec.data, info.rank, info.world_size)
    # what a generator's export records of its data: the world (world sources) and the flat-lays' layout
    world = world_meta(spec.data.framing, *spec.data.frame_size) if spec.data.source == "world" else ""
    recorded = dict(garment_layout=spec.data.garment_layout, world=world)
    if name == "codec":
        return CodecStage(CodecStageConfig.from_json(spec.stage), data.videos, device, info)
    codec = _load_codec_for_training(spec.codec, device)
    if name in ("teacher", "forcing"):
        cls = STAGE_CLASSES[name]
        stage_cfg = replace(DiffusionStageConfig.from_json(spec.stage), **recorded)
        return cls(stage_cfg, lambda step: data.latents(step, codec), device, info)
    if name == "tryoff":
        return TryOffStage(replace(DiffusionStageConfig.from_json(spec.stage), world=world),
                           lambda step: data.canvas(step, codec), device, info)
    if name == "dmd":
        stage_cfg = replace(DMDStageConfig.from_json(spec.stage), **recorded)
        return DMDStage(stage_cfg, lambda step: data.latents(step, codec), device,
                        codec=codec, reward=GarmentFidelityReward(), dist=info)
    raise ValueError(f"unknown stage {name!r}; stages are {list(STAGE_NAMES)}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one stage (codec, teacher, forcing, dmd, tryoff), resumably")
    p.add_argument("stage", choices=STAGE_NAMES)
    p.add_argument("--config", help=f"JSON config (default: the embedded model's, {CONFIG_DIR}/<stage>.json)")
    p.add_argument("--out", required=True, help="run directory: state.safetensors, log.jsonl, exported weights")
    p.add_argument("--steps", type=int, help="override run.steps")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--time-limit", type=float, help="stop (and save for resuming) after this many seconds")
    p.add_argument("--fresh", action="store_true", help="ignore an existing state.safetensors in --out")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--compact", metavar="DIR", help="instead of training: write a small copy of --out's state "
                   "(fp16 weights, no optimizer moments) to DIR, to commit between sessions; resume there with "
                   "--out DIR")
    p.add_argument("--keep-average", action="store_true", help="with --compact: keep the weights' moving average "
                   "too (twice the size), so a resume goes on with it")
    p.add_argument("--export", metavar="DIR", help="instead of training: export the weights of --out's saved state "
                   "(e.g. a snapshot of a run that is still training) to DIR")
    p.set_defaults(fn=main)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compact:
        out = compact_state(Path(args.out) / STATE_FILE, Path(args.compact) / STATE_FILE,
                            keep_optional=args.keep_average)
        log.info("wrote %s (%.1f MiB)", out, out.stat().st_size / 2**20)
        return 0
    spec = TrainFile.read(args.config or CONFIG_DIR / f"{args.stage}.json")
    run = spec.run
    if args.steps is not None:
        run = replace(run, steps=args.steps)
    if args.time_limit is not None:
        run = replace(run, time_limit_s=args.time_limit)
    info, device = init_distributed(args.device)
    if device.type == "cpu":
        keep_freed_memory()  # per-step activations reuse heap blocks (see cpu_memory)
    if args.export:  # the saved state holds every trained weight: starting checkpoints are not read
        stage = build_stage(args.stage, without_init_weights(spec), device, info)
        step, paths = export_snapshot(stage, args.out, args.export)
        log.info("exported step %d: %s", step, ", ".join(map(str, paths)))
        return 0
    if not args.fresh and (Path(args.out) / STATE_FILE).exists() and args.stage in STAGE_CLASSES:
        # a resume: the checkpoints the state replaces need not exist any more (a clone holds the state alone)
        spec = without_init_weights(spec, STAGE_CLASSES[args.stage].restored_inits)
    stage = build_stage(args.stage, spec, device, info)
    row = run_stage(stage, run, args.out, {"stage": args.stage, "spec": json.loads(json.dumps(spec, default=vars))},
                    info, device, resume=not args.fresh,
                    on_log=lambda r: log.info("%s", json.dumps(r)) if info.is_main else None)
    log.info("done: %s", row)
    return 0
