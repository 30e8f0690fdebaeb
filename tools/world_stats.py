"""How the procedural world frames its person: share of the frame and DiT tokens per region (a check outside CI).

    OMP_NUM_THREADS=1 python tools/world_stats.py                     # full_body and fashion, 30 test clips
    OMP_NUM_THREADS=1 python tools/world_stats.py --frame 160x96      # + the fashion shot in another frame

For each framing, `--samples` test-split seeds are rendered (`--frames` pixel frames, the video
only matters) and measured with `fashionchameleon.lab.synthetic.stats.frame_stats`: the share of
the frame's pixels covered by the person, the upper and lower garment and the head; pixels per
frame; the token area per latent frame (pixels / 16^2: codec 8x times patch 2); and the tokens a
region covers at least half of. A second table checks the framing: the smallest share of the frame
height the person spans, the head's pixels, and how often the person touches a side edge (in
all clips, and in clips without the arm gestures, wave and raise_arms).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fashionchameleon.lab.synthetic import SPLITS, WorldConfig, make_sample  # noqa: E402
from fashionchameleon.lab.synthetic.stats import REGIONS, FrameStats, frame_stats, tokens_per_frame  # noqa: E402

GESTURES = ("wave", "raise_arms")  # motions whose arms may leave a tight frame


def _frame(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def measure(config: WorldConfig, samples: int) -> tuple[list[FrameStats], list[str]]:
    seeds = SPLITS["test"][:samples]
    out, motions = [], []
    for seed in seeds:
        s = make_sample(seed, config)
        out.append(frame_stats(s.masks))
        motions.append(s.meta["motion"])
    return out, motions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=30)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--frame", action="append", type=_frame, default=[], metavar="HxW",
                   help="also measure the fashion framing in this frame (repeatable)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    configs = [WorldConfig(frames=args.frames, max_reference_views=1),
               WorldConfig(frames=args.frames, max_reference_views=1, framing="fashion")]
    configs += [WorldConfig(frames=args.frames, max_reference_views=1, framing="fashion", height=h, width=w)
                for h, w in args.frame]
    print(f"{args.samples} test-split clips of {args.frames} frames; a token is 16 x 16 px, a latent frame 4 pixel frames\n")
    print(f"{'framing':<18} {'region':<7} {'share':>7} {'px/frame':>9} {'tokens':>7} {'tokens>=1/2':>12}")
    checks = []
    for cfg in configs:
        stats, motions = measure(cfg, args.samples)
        h, w = cfg.frame_size
        name = f"{cfg.framing} {w}x{h}"
        for region in REGIONS:
            share = np.mean([s.share[region] for s in stats])
            px = np.mean([s.pixels[region] for s in stats])
            tok = np.mean([s.tokens[region] for s in stats])
            half = np.mean([s.tokens_half[region] for s in stats])
            print(f"{name:<18} {region:<7} {share:>6.1%} {px:>9.0f} {tok:>7.2f} {half:>12.2f}")
        side = [s.edges["left"] | s.edges["right"] for s in stats]
        calm = [e for e, m in zip(side, motions) if m not in GESTURES]
        checks.append((name, tokens_per_frame(h, w), min(s.person_height.min() for s in stats),
                       np.mean([s.person_height.mean() for s in stats]), np.mean([s.pixels["head"] for s in stats]),
                       min(s.pixels["head"] for s in stats), np.mean([e.mean() for e in side]),
                       np.mean([e.mean() for e in calm]) if calm else float("nan"),
                       np.mean([s.head_whole.mean() for s in stats])))
    print(f"\n{'framing':<18} {'tokens':>6} {'height min':>10} {'height mean':>11} {'head px':>8} {'head min clip':>13} "
          f"{'side (all)':>10} {'side (no gesture)':>17} {'head whole':>10}")
    for name, tok, hmin, hmean, head, head_min, side, calm, whole in checks:
        print(f"{name:<18} {tok:>6} {hmin:>10.1%} {hmean:>11.1%} {head:>8.0f} {head_min:>13.0f} {side:>10.1%} "
              f"{calm:>17.1%} {whole:>10.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
