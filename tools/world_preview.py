"""Write a preview of the procedural world: per test-split sample, the reference view, four video frames
and the flat-lays of what the video wears.

    python tools/world_preview.py [--framing fashion|full_body] [--out docs/world_fashion.jpg]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fashionchameleon.lab.contact_sheet import render_contact_sheet  # noqa: E402
from fashionchameleon.lab.synthetic import WorldConfig, make_sample  # noqa: E402

SEEDS = (2_000_000, 2_000_003, 2_000_007)  # test split
FRAMES = (0, 8, 16, 23)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--framing", default="fashion", choices=("fashion", "full_body"))
    p.add_argument("--out", default=str(ROOT / "docs" / "world_fashion.jpg"))
    args = p.parse_args()
    rows = []
    for seed in SEEDS:
        s = make_sample(seed, WorldConfig(framing=args.framing, frames=max(FRAMES) + 1))
        rows.append([s.references[0]] + [s.video[i] for i in FRAMES] + list(s.garments.values()))
    from PIL import Image

    Image.fromarray(render_contact_sheet(rows)).convert("RGB").save(args.out, quality=88)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
