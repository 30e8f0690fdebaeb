"""Command line: `python -m fashionchameleon {info,demo,train,eval,bench,ship}`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .runtime.config import PRESETS, StreamConfig
from .runtime.embedded import WEIGHTS_DIR


def _info(_: argparse.Namespace) -> int:
    stream = StreamConfig()
    print(f"{'preset':<16}{'params':>14}{'dim':>6}{'layers':>8}{'heads':>7}{'latent ch':>11}")
    for name, cfg in PRESETS.items():
        print(f"{name:<16}{cfg.num_parameters():>14,}{cfg.dim:>6}{cfg.num_layers:>8}{cfg.num_heads:>7}{cfg.in_dim:>11}")
    print(f"stream: chunk {stream.chunk_frames}, sink {stream.sink_frames}, window {stream.window_frames} latent frames "
          f"({stream.cache_frames(2)}-frame cache with 1 reference + 1 garment), steps {list(stream.steps)}, "
          f"rope {stream.rope}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .lab.demo import DemoConfig, run_demo
    from .runtime.embedded import PARTS

    weights = Path(args.weights)
    if not (weights / PARTS["student"]).exists():
        print(f"The demo needs the trained embedded model ({weights / PARTS['student']} is missing). The pack ships "
              f"it in weights/ (see weights/README.md): reinstall the pack, or point --weights at a folder that holds "
              f"its five files.")
        return 0
    m = run_demo(DemoConfig(frames=args.frames, seed=args.seed, out=Path(args.out), threads=args.threads),
                 weights=weights)
    print(json.dumps({k: m[k] for k in ("frames", "resolution", "fps_end_to_end", "garment_retrieval",
                                        "switch_continuity", "motion_amplitude_ratio", "video", "contact_sheet")},
                     indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashionchameleon")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="list model presets and streaming defaults").set_defaults(fn=_info)
    demo = sub.add_parser("demo", help="stream the bundled sample person through two garment switches")
    demo.add_argument("--weights", default=str(WEIGHTS_DIR), help="folder with the embedded model's safetensors")
    demo.add_argument("--out", default="outputs/demo", help="where the video, contact sheet and metrics go")
    demo.add_argument("--frames", type=int, default=144)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    demo.set_defaults(fn=_demo)
    from .lab.train.cli import add_parser as add_train

    add_train(sub)
    from .lab.metrics.cli import add_parser as add_eval

    add_eval(sub)
    from .lab.bench.cli import add_parser as add_bench

    add_bench(sub)
    from .lab.ship import add_parser as add_ship

    add_ship(sub)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
