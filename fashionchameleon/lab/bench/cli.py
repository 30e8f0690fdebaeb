"""`python -m fashionchameleon bench`: print the benchmark table, optionally write the JSON.

    python -m fashionchameleon bench                                   # embedded model (or random tiny)
    python -m fashionchameleon bench --random-weights --preset tiny --size 128x128 --long-frames 600
    python -m fashionchameleon bench --device cuda --preset wan2.2-ti2v-5b --random-weights --size 704x1280
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ...runtime.config import PRESETS
from ...runtime.embedded import WEIGHTS_DIR
from .config import DTYPES, BenchConfig, parse_size

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure streaming speed, latency, switch cost, cost growth, teacher ratio "
                                     "and efficiency in one run; print a table")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--dtype", choices=sorted(DTYPES), help="model dtype (default: bf16 on cuda, fp32 on cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model preset for --random-weights")
    p.add_argument("--random-weights", action="store_true",
                   help="random weights of --preset with a decode stand-in codec and a random prompt encoder "
                        "(also used when weights/ has no student)")
    p.add_argument("--layers", type=int, help="override the preset's layer count (random weights)")
    p.add_argument("--size", type=parse_size, help="HxW in pixels (default: the preset's usual size)")
    p.add_argument("--weights", default=str(WEIGHTS_DIR), help="folder with the embedded model's safetensors")
    p.add_argument("--chunks", type=int, default=BenchConfig.chunks, help="steady-state chunks timed for FPS")
    p.add_argument("--warmup-chunks", type=int, default=BenchConfig.warmup_chunks)
    p.add_argument("--long-frames", type=int, default=BenchConfig.long_frames,
                   help="length of the long stream for cost growth (pixel frames)")
    p.add_argument("--teacher-steps", type=int, default=BenchConfig.teacher_steps)
    p.add_argument("--teacher-chunks", type=int, default=BenchConfig.teacher_chunks,
                   help="teacher clip length in student chunks (7 = 21 latent frames)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    p.set_defaults(fn=main)


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(device=args.device, dtype=args.dtype, threads=args.threads, preset=args.preset,
                       random_weights=args.random_weights, layers=args.layers, size=args.size,
                       weights=Path(args.weights), seed=args.seed, warmup_chunks=args.warmup_chunks,
                       chunks=args.chunks, long_frames=args.long_frames, teacher_steps=args.teacher_steps,
                       teacher_chunks=args.teacher_chunks)


def main(args: argparse.Namespace) -> int:
    from .report import format_table, write_json
    from .suite import run_bench

    result = run_bench(config_from_args(args))
    print(format_table(result))
    if args.json:
        print(f"JSON: {write_json(result, args.json)}")
    return 0
