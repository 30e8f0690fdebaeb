"""Where does a teacher lose the garment's texture? Denoise partly noised ground truth and score it.

    python tools/pattern_by_noise.py --weights DIR [--framing fashion] [--garment-layout body] [--sigmas 0 0.3 0.6 1]

For each start noise level sigma0, every held-out case's ground-truth clip is encoded, noised to
sigma0 (`FlowMatchSchedule.add_noise`) and denoised by the teacher along the part of its 30-step
sampling schedule below sigma0 (text CFG `--cfg`), then decoded and scored by the evaluation's
garment, identity and pattern retrieval and first-chunk person error. sigma0 = 0 is the codec's
round trip (the ceiling); sigma0 = 1 is ordinary sampling from pure noise. The level at which
pattern retrieval falls to chance (1/K) is the noise level from which the teacher cannot bring the
texture back: texture lost only near sigma 1 means the model keeps texture it is shown but cannot
lay it out from the flat-lay; lost already at small sigma means it does not model texture at all.
Prints one table row per sigma0 and writes `--json`.

With `--flatten upper lower full head` the clip is first stripped of those regions' texture
(`lab/train/flatten.py`, the input of the teacher's restoration objective) and then noised: sigma0 = 0
scores the flattened clip itself (the floor), and a level where pattern or identity climbs back above
it is one from which the teacher puts the detail back from its conditions rather than from the input.

With `--from-student DIR` the clip that is noised is not the truth but the student's own stream of the
case (DIR's student, streamed as the eval streams it): sigma0 = 0 scores the student itself, and a teacher
that lifts garment, identity or pattern above it from sigma0 is one whose score, as GR-DMD's real score,
points the student's samples towards them.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fashionchameleon.lab.metrics.cases import build_cases  # noqa: E402
from fashionchameleon.lab.metrics.config import EvalConfig  # noqa: E402
from fashionchameleon.lab.metrics.evaluate import run_eval  # noqa: E402
from fashionchameleon.lab.metrics.generators import KeptClips, StudentGenerator, covering_frames, teacher_inputs  # noqa: E402
from fashionchameleon.lab.train.flatten import flatten_inside, region_mask  # noqa: E402
from fashionchameleon.runtime.embedded import load_embedded  # noqa: E402
from fashionchameleon.runtime.stream.sampler import sample_teacher  # noqa: E402
from fashionchameleon.runtime.stream.schedule import FlowMatchSchedule  # noqa: E402

SECTIONS = ("garment", "identity", "pattern", "recon")


@dataclasses.dataclass(frozen=True)
class TailSchedule(FlowMatchSchedule):
    """The `full_steps` sampling schedule cut to its steps below `start` (a timestep in [0, 1000]).

    `sample_timesteps` ignores its argument: the tail's length is `tail_steps()`.
    """

    start: float = 1000.0
    full_steps: int = 30

    def sample_timesteps(self, num_steps: int = 0) -> torch.Tensor:
        ts = super().sample_timesteps(self.full_steps)
        return torch.cat([ts.new_tensor([self.start]), ts[ts < self.start]])  # [k + 1], from start to 0

    def tail_steps(self) -> int:
        return len(self.sample_timesteps()) - 1


class NoisedTruthTeacher:
    """Teacher generator that starts from the case's ground truth noised to `sigma0` (0: codec round trip)."""

    supports_switches = False
    chunk_frames = None

    def __init__(self, model, sigma0: float, steps: int = 30, cfg: float = 1.0, shift: float = 5.0,
                 flatten: tuple[str, ...] = (), flatten_px: int = 25, source: KeptClips | None = None):
        self.model, self.sigma0, self.steps, self.cfg, self.shift = model, float(sigma0), int(steps), float(cfg), shift
        self.flatten, self.flatten_px, self.source = tuple(flatten), int(flatten_px), source
        self.name = f"sigma0={sigma0:g}"

    @torch.no_grad()
    def generate(self, sample, frames: int, switches=(), seed: int = 0) -> torch.Tensor:
        model, codec = self.model, self.model.codec
        n = covering_frames(codec, frames)
        video = sample.video[:n] if self.source is None else self.source.generate(sample, n, (), seed)
        if self.flatten:
            video = flatten_inside(video, region_mask({k: m[:n] for k, m in sample.masks.items()}, self.flatten),
                                   self.flatten_px)
        if video.shape[0] < n:  # pad by holding the last frame
            video = torch.cat([video, video[-1:].expand(n - video.shape[0], -1, -1, -1)])
        x0 = codec.encode_video(video.transpose(0, 1)[None].float()).float()  # [1, C, F, h, w]
        if self.sigma0 > 0:
            conditions, text, negative = teacher_inputs(model, sample)
            schedule = TailSchedule(shift=self.shift, start=1000.0 * self.sigma0, full_steps=self.steps)
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(int(seed)))
            start = schedule.add_noise(x0, noise, schedule.start)
            x0 = sample_teacher(model.teacher, conditions, text, negative, start, schedule, schedule.tail_steps(),
                                self.cfg, first_garment=sample.references.shape[0])
        out, _ = codec.decode(x0)
        return out[0].transpose(0, 1).float()[:frames].clamp(-1.0, 1.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="folder with codec, text and teacher safetensors")
    p.add_argument("--framing", default="fashion", choices=("full_body", "fashion"))
    p.add_argument("--garment-layout", default="frame", choices=("frame", "body"),
                   help="the conditions' flat-lays: as photographed, or laid where worn (the teacher's data config)")
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.3, 0.6, 1.0])
    p.add_argument("--samples", type=int, default=24)
    p.add_argument("--steps", type=int, default=30, help="steps of the full schedule (the tail is used)")
    p.add_argument("--cfg", type=float, default=1.0, help="text CFG scale (1: none)")
    p.add_argument("--shift", type=float, default=5.0, help="the sampling schedule's shift")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--flatten", nargs="*", default=[], metavar="MASK",
                   help="world masks whose texture is averaged away before noising (e.g. upper lower full head)")
    p.add_argument("--flatten-px", type=int, default=25, help="the box of that average, px (odd)")
    p.add_argument("--start", type=int, default=0, help="first test-split case")
    p.add_argument("--from-student", metavar="DIR", default="",
                   help="noise the student's stream of each case (DIR's student) instead of the ground truth")
    p.add_argument("--json", default="outputs/pattern_by_noise.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_embedded(Path(args.weights), parts=("teacher",))
    cfg = EvalConfig(samples=args.samples, frames=48, sections=SECTIONS, framing=args.framing,
                     garment_layout=args.garment_layout, start=args.start)
    cases = build_cases(cfg)  # built once: their candidate descriptors are memoised across the levels
    source = (KeptClips(StudentGenerator(load_embedded(Path(args.from_student), parts=("student",))))
              if args.from_student else None)  # one stream per case, kept for every noise level
    rows = []
    for sigma0 in args.sigmas:
        gen = NoisedTruthTeacher(model, sigma0, args.steps, args.cfg, args.shift, args.flatten, args.flatten_px,
                                 source)
        metrics = run_eval({gen.name: gen}, cfg, cases=cases)["rows"][0]["metrics"]
        rows.append({"sigma0": sigma0, **{k: metrics.get(k) for k in SECTIONS}})
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"weights": args.weights, "cfg": args.cfg, "flatten": args.flatten, "start": args.start,
                               "from_student": args.from_student,
                               "rows": rows}, indent=2) + "\n")
    print("\n| sigma0 | garment | identity | pattern | person L1 |\n|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['sigma0']:g} | {r['garment']:.2f} | {r['identity']:.2f} | {r['pattern']:.2f} | {r['recon']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
