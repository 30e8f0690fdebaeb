"""Garment retrieval along long streams, per 100-frame bin: where a student loses its garment.

    python tools/drift_curve.py                                   # the shipped student, 4 streams of 1,000 frames
    python tools/drift_curve.py new=outputs/students/x old=weights --streams 8
    python tools/drift_curve.py --stream '{"reproject": false}'   # change the stream's settings
    python tools/drift_curve.py --frames 240 --bin 48 --streams 1 # a smoke run

Each ARM is NAME=WEIGHTS_DIR (a folder with student, codec and text). Every arm streams the same
held-out cases of the world its weights record (`eval`'s test split and seeds), without a switch,
and each bin of `--bin` frames is scored as the evaluation's drift section scores its two windows
(`metrics.scores.drift_curve`: garment retrieval on 4 windows among 8 outfits; chance 0.125). Prints
one row per stream and the mean per arm, with the mean over the bins after the first; then per arm
and bin the motion amplitude over the ground truth's (summed over streams; about 0 when streams
freeze) and the mean stripe ratio over the ground truth's (well above 1 when streams collapse into
stripes), with how many streams are frozen (motion under 0.2 of the truth's) or striped (ratio above
1.5) in the last bin. Writes `--json`. Each 1,000-frame stream takes about a minute on one thread.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fashionchameleon.lab.metrics.cases import build_cases  # noqa: E402
from fashionchameleon.lab.metrics.config import EvalConfig  # noqa: E402
from fashionchameleon.lab.metrics.generators import StudentGenerator  # noqa: E402
from fashionchameleon.lab.metrics.scores import drift_curve  # noqa: E402
from fashionchameleon.lab.weights_world import folder_world_fields  # noqa: E402
from fashionchameleon.runtime.embedded import WEIGHTS_DIR, load_embedded  # noqa: E402


FROZEN = 0.2  # a stream is frozen in a bin where its motion amplitude is under this share of the truth's
STRIPED = 1.5  # and striped where its stripe ratio is above this many times the truth's


def _row(name: str, bins: list[float]) -> str:
    later = sum(bins[1:]) / max(len(bins) - 1, 1)
    return f"| {name} | " + " | ".join(f"{v:.2f}" for v in bins) + f" | {later:.2f} |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("arms", nargs="*", help=f"NAME=WEIGHTS_DIR (default: shipped={WEIGHTS_DIR})")
    p.add_argument("--streams", type=int, default=4, help="held-out streams (the eval's first cases)")
    p.add_argument("--frames", type=int, default=1000, help="frames per stream")
    p.add_argument("--bin", type=int, default=100, help="frames per bin")
    p.add_argument("--stream", default="{}", help="JSON of StreamConfig fields to change in every arm")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the curves here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    arms = [a.split("=", 1) for a in args.arms] or [["shipped", str(WEIGHTS_DIR)]]
    overrides = json.loads(args.stream)
    result, cases, world = {}, None, None
    for name, folder in arms:
        model = load_embedded(folder)
        fields = folder_world_fields(folder)
        if world is not None and fields != world:
            raise SystemExit(f"{name}'s weights record another world ({fields}) than the first arm's ({world})")
        world = fields
        cfg = EvalConfig(samples=args.streams, long_samples=args.streams, long_frames=args.frames,
                         long_window=args.bin, sections=("drift",), **fields)
        cases = cases or build_cases(cfg)
        stream = dataclasses.replace(model.stream_config, **overrides)
        t = time.perf_counter()
        result[name] = drift_curve(StudentGenerator(model, config=stream), cases, cfg)
        print(f"{name}: {len(result[name])} streams in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    width = len(next(iter(result.values()))[0]["bins"])
    heads = [f"{k * args.bin}–{min((k + 1) * args.bin, args.frames)}" for k in range(width)]
    print("| stream | " + " | ".join(heads) + " | after the first bin |")
    print("|---" * (width + 2) + "|")
    for name, curves in result.items():
        for c in curves:
            print(_row(f"{name} {c['seed']}", c["bins"]))
        mean = [sum(c["bins"][k] for c in curves) / len(curves) for k in range(width)]
        print(_row(f"**{name} mean**", mean))
    print()
    print("| arm | measure | " + " | ".join(heads) + " | last bin: streams collapsed |")
    print("|---" * (width + 3) + "|")
    for name, curves in result.items():
        motion = [sum(c["motion"][k] for c in curves) / max(sum(c["truth_motion"][k] for c in curves), 1e-6)
                  for k in range(width)]
        stripes = [sum(c["stripes"][k] for c in curves) / len(curves) for k in range(width)]
        frozen = sum(c["motion"][-1] < FROZEN * c["truth_motion"][-1] for c in curves)
        striped = sum(c["stripes"][-1] > STRIPED for c in curves)
        print(f"| {name} | motion / truth's | " + " | ".join(f"{v:.2f}" for v in motion) + f" | {frozen} frozen |")
        print(f"| {name} | stripes / truth's | " + " | ".join(f"{v:.2f}" for v in stripes) + f" | {striped} striped |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"frames": args.frames, "bin": args.bin, "stream": overrides,
                                               "curves": result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
