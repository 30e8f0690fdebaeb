"""How much does the student's background cost its identity score? A counterfactual on held-out cases.

    python tools/background_check.py --weights weights --samples 72 --px 2 8

The metrics find the figure as the pixels that differ from the plate (`descriptors.foreground_mask`),
and identity reads the top 22 % of that figure's box. A student that paints blotches around the figure
moves that band onto the background. For each case this tool streams the student once and reports:

1. per identity hit and miss of the plain clip, over the frames the metrics judge (12-47), the share
   of background pixels (more than 8 px from anywhere the true person ever is in the clip) that the
   metric's foreground takes for the figure;
2. garment, identity and pattern of the same clips with every pixel more than `px` from anywhere the
   true person ever is replaced by the plate, for each `--px`: what a student with a clean background
   there would score. It uses the truth's silhouette, so it bounds the gain rather than measuring a model.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fashionchameleon.lab.metrics.cases import build_cases  # noqa: E402
from fashionchameleon.lab.metrics.config import EvalConfig  # noqa: E402
from fashionchameleon.lab.metrics.evaluate import run_eval  # noqa: E402
from fashionchameleon.lab.metrics.descriptors import foreground_mask  # noqa: E402
from fashionchameleon.lab.metrics.generators import KeptClips, StudentGenerator  # noqa: E402
from fashionchameleon.lab.train.background_term import away_from_person  # noqa: E402
from fashionchameleon.runtime.embedded import load_embedded  # noqa: E402

SECTIONS = ("garment", "identity", "pattern")


def away_from_true_person(sample, frames: int, px: int) -> torch.Tensor:
    """`[H, W]` bool: more than `px` from every pixel the true person covers in any of the first `frames`
    frames (the rule GR-DMD's background term reads the real clip's background with)."""
    return away_from_person(sample.masks["person"][:frames].any(0).float()[None, None], px)[0, 0]


class PlateBeyond:
    """A generator's clips with the plate pasted `px` beyond the true person."""

    supports_switches = False
    chunk_frames = None

    def __init__(self, inner, px: int):
        self.inner, self.px, self.name = inner, int(px), f"plate beyond {px} px"

    def generate(self, sample, frames: int, switches=(), seed: int = 0) -> torch.Tensor:
        clip = self.inner.generate(sample, frames, switches, seed)
        keep = ~away_from_true_person(sample, frames, self.px)[None, None]
        return torch.where(keep, clip, sample.background.float()[None])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="weights", help="folder with the student, prompt encoder and codec")
    p.add_argument("--samples", type=int, default=72)
    p.add_argument("--start", type=int, default=0, help="first test-split case")
    p.add_argument("--px", type=int, nargs="*", default=[2, 8], help="distances beyond which the plate is pasted")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = EvalConfig(samples=args.samples, frames=48, sections=SECTIONS, framing="fashion", start=args.start)
    cases = build_cases(cfg)
    student = KeptClips(StudentGenerator(load_embedded(Path(args.weights), parts=("student",))))
    gens = {student.name: student, **{g.name: g for g in (PlateBeyond(student, px) for px in args.px)}}
    result = run_eval(gens, cfg, cases=cases)
    print("| clips | garment | identity | pattern |\n|---|---:|---:|---:|")
    for row in result["rows"]:
        n = row["samples"]
        print(f"| {row['name']} | " + " | ".join(f"{round(row['metrics'][k] * n)} of {n}" for k in SECTIONS) + " |")
    hits = {d["seed"]: d["hit"] for d in result["rows"][0]["details"]["identity"]}
    blotched: dict[bool, list[float]] = {True: [], False: []}
    for case in cases:
        clip = student.generate(case.sample, cfg.frames, (), case.seed)[cfg.chunk:]
        far = away_from_true_person(case.sample, cfg.frames, 8)
        off = foreground_mask(clip, case.sample.background.float())  # [T, H, W]: off the plate, as the metric sees it
        blotched[hits[case.seed]].append(off[:, far].float().mean().item())
    for hit, shares in blotched.items():
        if shares:
            print(f"identity {'hits' if hit else 'misses'} ({len(shares)}): background off the plate "
                  f"{statistics.mean(shares):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
