"""`python -m fashionchameleon eval`: the evaluation of the embedded model, as a table against the bars.

    python -m fashionchameleon eval                     # held-out test split, default config (< 15 min, 2 cores)
    python -m fashionchameleon eval --quick             # smoke test (< 2 min)
    python -m fashionchameleon eval --garments DIR      # your flat-lay images on held-out people
    python -m fashionchameleon eval --oracle            # + ground-truth rows (the metric's ceiling)
    python -m fashionchameleon eval --framing fashion   # the world framed like fashion video (portrait 112 x 144)

Without --framing / --size / --height / --width the weights are measured on the world their files
record (`trained_world`, see `lab.weights_world`; none recorded: the square full-body world).
Prints the markdown table and writes `eval.json` and `eval.md` into `--out` (default outputs/eval).
Without trained weights it says so, and with `--oracle` still runs the oracle rows.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from ...runtime.cpu_memory import keep_freed_memory
from ..synthetic import FRAMINGS
from .config import SECTIONS, EvalConfig
from .evaluate import run_eval
from .report import markdown_table, write_report
from .user_garments import load_garments
from ..weights_world import WORLD_FIELDS, weights_world, world_fields

__all__ = ["add_parser", "main", "load_model"]

log = logging.getLogger(__name__)
GARMENT_SECTIONS = ("garment", "identity", "switch", "teacher", "tryoff")  # --garments default: no drift/ablation


def load_model(weights: str | Path, device: str = "cpu"):
    """(EmbeddedModel or None, notes): what the weights folder holds, and what is missing, in words."""
    from ...runtime.embedded import PARTS, load_embedded

    root = Path(weights)
    try:
        model = load_embedded(root, device)
    except FileNotFoundError as e:
        return None, [f"No trained weights: {e} (or point --weights at a folder that has them)."]
    notes = [f"{PARTS[p]} is not in {root}: its rows are skipped." for p in ("student", "teacher", "tryoff")
             if getattr(model, p) is None]
    if model.student is None and model.teacher is None and model.tryoff is None:
        notes.append(f"{root} holds only the codec and the prompt encoder: there is no trained generator to evaluate.")
    return model, notes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate the embedded model on held-out people (retrieval metrics vs the bars)")
    p.add_argument("--weights", help="folder of the embedded model's safetensors (default: the package's weights/)")
    p.add_argument("--samples", type=int, help="held-out samples (default 24; 4 with --quick)")
    p.add_argument("--start", type=int,
                   help="first held-out sample (default 0): --start 72 --samples 144 measures cases 72-215, the "
                        "same cases a --samples 216 run ends with, e.g. to confirm a 72-case result on cases not seen")
    p.add_argument("--quick", action="store_true", help="a smoke test: few samples, a short long stream")
    p.add_argument("--garments", metavar="DIR", help="evaluate flat-lay image files in DIR on held-out people")
    p.add_argument("--kind", choices=("upper", "lower"), help="kind of every garment in --garments (default: guessed)")
    p.add_argument("--out", default="outputs/eval", help="where eval.json and eval.md go (default outputs/eval)")
    p.add_argument("--oracle", action="store_true", help="also run the ground truth through the metrics (ceiling)")
    p.add_argument("--size", type=int, help="frame size in pixels (default 128)")
    p.add_argument("--framing", choices=tuple(FRAMINGS),
                   help="the world's framing (default: the one the weights record, else full_body: square frames, "
                        "fixed camera; fashion: portrait 112 x 144 frames, a camera that follows the person)")
    p.add_argument("--height", type=int, help="frame height in pixels (default: the framing's, or --size)")
    p.add_argument("--width", type=int, help="frame width in pixels (default: the framing's, or --size)")
    p.add_argument("--frames", type=int, help="frames per clip (default 48)")
    p.add_argument("--candidates", type=int, help="K, candidates per retrieval (default 8)")
    p.add_argument("--long-frames", type=int, help="length of the drift stream (default 1000)")
    p.add_argument("--seed", type=int, help="seed of the candidate draws and the generators (default 0)")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, help=f"what to run (default: all of {list(SECTIONS)})")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is faster when another job shares the CPU)")
    p.set_defaults(fn=main)


def _config(args: argparse.Namespace, world: dict | None = None) -> EvalConfig:
    """The evaluation the flags ask for; `world` (the weights' recorded framing) when no frame flag is given."""
    changes = {key: getattr(args, name) for name, key in (
        ("samples", "samples"), ("start", "start"), ("size", "size"), ("frames", "frames"),
        ("candidates", "candidates"), ("long_frames", "long_frames"), ("seed", "seed"), ("sections", "sections"),
        ("framing", "framing"), ("height", "height"), ("width", "width")) if getattr(args, name) is not None}
    if not any(k in changes for k in ("size", *WORLD_FIELDS)):
        changes.update(world_fields(world))
    if args.garments and "sections" not in changes:
        changes["sections"] = GARMENT_SECTIONS
    if "long_frames" in changes:  # keep the drift windows inside a shorter stream
        base = EvalConfig.quick() if args.quick else EvalConfig()
        changes.setdefault("long_window", min(base.long_window, changes["long_frames"] // 2))
    return EvalConfig.quick(**changes) if args.quick else EvalConfig(**changes)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    from ...runtime.embedded import WEIGHTS_DIR

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cpu":
        keep_freed_memory()  # teacher and student passes reuse heap blocks (see cpu_memory)
    weights = Path(args.weights) if args.weights else WEIGHTS_DIR
    recorded = weights_world(weights) if weights.is_dir() else None
    cfg = _config(args, recorded[0] if recorded else None)
    if recorded and cfg.framing == recorded[0]["framing"]:
        print(f"world: {cfg.framing} {cfg.height} x {cfg.width} (recorded in {recorded[1]})")
    model, notes = load_model(weights, device)
    for note in notes:
        print(note)
    has_rows = model is not None and any(getattr(model, p) is not None for p in ("student", "teacher", "tryoff"))
    if not has_rows and not args.oracle:
        print("Nothing to evaluate. Run with --oracle to check the metrics on ground truth (the ceiling rows).")
        return 1
    if not has_rows:
        notes.append("Only the oracle (ground truth) rows were run.")
        model = None
    garments = None
    if args.garments:
        garments = load_garments(args.garments, args.kind)
        print("garments: " + ", ".join(f"{name} ({g.kind} {g.shape})" for name, g in garments))
    result = run_eval(model, cfg, oracle=args.oracle, garments=garments, progress=log.info)
    result["notes"] = notes
    print()
    print(markdown_table(result))
    json_path, md_path = write_report(result, args.out)
    print(f"\nwrote {json_path} and {md_path}")
    return 0
