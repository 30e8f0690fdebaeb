"""Evaluate teachers trained from scratch at equal compute (the framing A/B) on the same held-out cases.

    python tools/ab_teachers.py ARM=CONFIG:RUN_DIR [ARM=CONFIG:RUN_DIR ...] [--samples 8] [--steps 30]

For each arm: export its saved state's EMA teacher and prompt encoder (`train teacher --export`),
pair them with the shipped codec, and run the teacher through the evaluation's garment, identity,
pattern and first-chunk person-error sections on `--samples` test-split cases of the arm's own world
(the framing its config trains on; the same seeds in every arm), sampling on the noise schedule its
config trains with (`stage.shift`, default 5). Prints one table row per arm,
with the step and the training FLOPs the state had (counted from the configs, `bench.flops`), and
writes `--json`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fashionchameleon.lab.metrics.config import EvalConfig  # noqa: E402
from fashionchameleon.lab.metrics.evaluate import run_eval  # noqa: E402
from fashionchameleon.lab.metrics.generators import TeacherGenerator  # noqa: E402
from fashionchameleon.runtime.stream.sampler import GUIDES  # noqa: E402
from fashionchameleon.lab.train.runner import read_log  # noqa: E402
from fashionchameleon.runtime.embedded import load_embedded  # noqa: E402

SECTIONS = ("garment", "identity", "pattern", "recon")


def export_arm(config: Path, run: Path, out: Path) -> int:
    """Export the run's saved teacher to `out` (teacher, text, the shipped codec); returns the saved step."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "fashionchameleon", "train", "teacher", "--config", str(config),
                    "--out", str(run), "--export", str(out)], cwd=ROOT, check=True, capture_output=True)
    shutil.copy(ROOT / "weights" / "codec.safetensors", out / "codec.safetensors")
    return logged_step(run)


def logged_step(run: Path) -> int:
    """The last step the run's log records (0 for none)."""
    steps = [r["step"] for r in read_log(run) if "step" in r]
    return max(steps) if steps else 0


def eval_config(config: Path, samples: int, steps: int, start: int = 0, cfg: float = 3.0) -> EvalConfig:
    data = json.loads(config.read_text()).get("data", {})
    world = {k: data[k] for k in ("framing", "height", "width", "garment_layout") if k in data}
    return EvalConfig(samples=samples, start=start, frames=48, sections=SECTIONS, teacher_steps=steps,
                      teacher_cfg=cfg, **world)


def train_shift(config: Path) -> float:
    """The schedule shift the arm's teacher trains with (its config's `stage.shift`, else the stage default)."""
    from fashionchameleon.lab.train.dit_stage import DiffusionStageConfig

    return float(json.loads(config.read_text()).get("stage", {}).get("shift", DiffusionStageConfig.shift))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arms", nargs="+", help="NAME=CONFIG:RUN_DIR")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--start", type=int, default=0, help="first test-split case (to add cases to an earlier run)")
    p.add_argument("--steps", type=int, default=30, help="teacher sampling steps")
    p.add_argument("--cfg", type=float, default=3.0, help="classifier-free guidance scale (1: none)")
    p.add_argument("--guide", default="text", choices=GUIDES,
                   help="what CFG's unconditional rows drop: the prompt, the garments (a teacher trained with "
                        "garment_dropout) or both")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="outputs/ab_teachers.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for arm in args.arms:
        name, _, rest = arm.partition("=")
        config, _, run = rest.partition(":")
        config, run = ROOT / config, ROOT / run
        folder = ROOT / "outputs" / "ab" / name
        step = export_arm(config, run, folder) if not (folder / "teacher.safetensors").exists() else logged_step(run)
        model = load_embedded(folder, parts=("teacher",))
        cfg = eval_config(config, args.samples, args.steps, args.start, args.cfg)
        shift = train_shift(config)
        teacher = TeacherGenerator(model, cfg.teacher_steps, cfg.teacher_cfg, shift, guide=args.guide)
        result = run_eval({"teacher": teacher}, cfg)
        metrics = result["rows"][0]["metrics"]
        rows.append({"arm": name, "step": step, "framing": cfg.framing, "shift": shift, "cfg": cfg.teacher_cfg,
                     "guide": args.guide, **{k: metrics.get(k) for k in SECTIONS}})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n| arm | step | {' | '.join(SECTIONS)} |\n|---|---:|" + "---:|" * len(SECTIONS))
    for r in rows:
        print(f"| {r['arm']} | {r['step']} | " + " | ".join(f"{r[k]:.2f}" for k in SECTIONS) + " |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
