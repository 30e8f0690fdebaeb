"""Held-out training loss of DiT-stage states on the test split: a low-noise A/B measure beside the eval.

    python tools/heldout_loss.py NAME=CONFIG:STATE [NAME=CONFIG:STATE ...] [--batches 8] [--draws 3]

STATE is a run folder (its `state.safetensors`) or a state file. For each arm the stage its config
names ("teacher" unless `--stage`) is built from the config, the state's weights' moving average
(the weights a teacher exports; the raw weights with `--raw`) are loaded, and its training loss
(timestep and person weighting included) is averaged over `--batches` test-split batches of the
config's data, each with `--draws` fixed draws of timestep, noise and prompt dropout. Every arm sees
the same batches and draws when the configs' data agree, so differences are the weights' alone.
The retrieval eval (`tools/ab_teachers.py`) counts cases of 24; this averages
batches x draws x batch size clips, and a 1 % difference is well above its noise.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fashionchameleon.lab.train.cli import build_stage, without_init_weights, TrainFile  # noqa: E402
from fashionchameleon.lab.train.data import ClipBatches, WorldSource  # noqa: E402
from fashionchameleon.lab.train.runner import STATE_FILE  # noqa: E402
from fashionchameleon.lab.train.state import load_state  # noqa: E402
from fashionchameleon.runtime.embedded import load_codec  # noqa: E402
from fashionchameleon.runtime.stream.seeding import generator_for  # noqa: E402

DRAW_SEED = 7_000  # the draws' generator seed (fixed: every arm gets the same t, noise and dropout)


def heldout_batches(spec: TrainFile, count: int) -> list:
    """`count` latent batches of the config's data from the world's test split."""
    if spec.data.source != "world":
        raise SystemExit(f"held-out batches come from the world's test split; this config's data is {spec.data.source!r}")
    codec = load_codec(spec.codec, "cpu")
    data = ClipBatches(spec.data, WorldSource(spec.data, split="test"))
    return [data.latents(step, codec) for step in range(count)]


@torch.no_grad()
def heldout_loss(stage, batches: list, draws: int, raw: bool) -> float:
    """Mean training loss of the stage's (averaged) model over `batches` x `draws` fixed draws."""
    if not raw and getattr(stage, "ema", None) is not None:
        stage.model = stage.ema.shadow
    stage.model.eval()
    stage.text.eval()
    losses = [float(stage.loss(b, generator_for(DRAW_SEED + d, i))) for i, b in enumerate(batches) for d in range(draws)]
    return sum(losses) / len(losses)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arms", nargs="+", help="NAME=CONFIG:STATE (a run folder or a state file)")
    p.add_argument("--stage", default="teacher", choices=("teacher", "forcing"))
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--raw", action="store_true", help="the raw weights instead of their moving average")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cache: dict[str, list] = {}
    rows = []
    for arm in args.arms:
        name, _, rest = arm.partition("=")
        config, _, state = rest.partition(":")
        spec = TrainFile.read(ROOT / config)
        spec = replace(spec, codec=str(ROOT / spec.codec))  # configs name the codec from the repository root
        key = json.dumps(vars(spec.data), sort_keys=True, default=str) + spec.codec
        if key not in cache:
            cache[key] = heldout_batches(spec, args.batches)
        path = Path(state) if Path(state).suffix == ".safetensors" else Path(state) / STATE_FILE
        stage = build_stage(args.stage, without_init_weights(spec), torch.device("cpu"))
        step, _ = load_state(ROOT / path if not path.is_absolute() else path, stage.modules(), {})
        rows.append({"arm": name, "step": step, "loss": heldout_loss(stage, cache[key], args.draws, args.raw)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n| arm | step | held-out loss ({args.batches} batches x {args.draws} draws) |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r['arm']} | {r['step']} | {r['loss']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
