"""Command line: `python -m fashionchameleon {info,demo,train}`."""
from __future__ import annotations

import argparse
import sys

from .config import PRESETS, StreamConfig


def _info(_: argparse.Namespace) -> int:
    stream = StreamConfig()
    print(f"{'preset':<16}{'params':>14}{'dim':>6}{'layers':>8}{'heads':>7}{'latent ch':>11}")
    for name, cfg in PRESETS.items():
        print(f"{name:<16}{cfg.num_parameters():>14,}{cfg.dim:>6}{cfg.num_layers:>8}{cfg.num_heads:>7}{cfg.in_dim:>11}")
    print(f"stream: chunk {stream.chunk_frames}, sink {stream.sink_frames}, window {stream.window_frames} latent frames "
          f"({stream.cache_frames(2)}-frame cache with 1 reference + 1 garment), steps {list(stream.steps)}, "
          f"rope {stream.rope}")
    return 0


def _demo(_: argparse.Namespace) -> int:
    print("The demo is coming with the embedded model (the training issue): the engine is in place, "
          "but no trained weights ship yet. Run `make test` to check the engine.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashionchameleon")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="list model presets and streaming defaults").set_defaults(fn=_info)
    sub.add_parser("demo", help="run the embedded demo (needs the trained embedded model)").set_defaults(fn=_demo)
    from .train.cli import add_parser as add_train

    add_train(sub)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
