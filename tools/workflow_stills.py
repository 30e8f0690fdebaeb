"""Stills of the example workflows, from the videos a real ComfyUI wrote: template thumbnails + README gallery.

    python tools/run_workflows.py --fresh                      # on a running ComfyUI with the pack
    python tools/workflow_stills.py ~/ComfyUI/output            # -> workflows/<workflow>.jpg

For every API workflow in `workflows/api/`, the newest video (MP4, or animated WEBP) of each of its save nodes
(found by the node's `filename_prefix` under ComfyUI's output folder) gives `--frames` evenly
spaced frames in rows of `--columns`; a workflow with two save nodes (the branch) gets a block
per node. The JPEG goes next to the UI workflow under the same name, which is where ComfyUI's
Templates browser looks for a card's thumbnail. Needs Pillow, and imageio-ffmpeg or PyAV for MP4 (ComfyUI
ships Pillow and PyAV); run it with ComfyUI's Python or the pack's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
VIDEO_SUFFIXES = (".mp4", ".webp")  # what core's Save Video and Save Animated WEBP write
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from fashionchameleon.runtime.files.video_read import read_video_uint8  # noqa: E402  (Pillow; MP4: imageio-ffmpeg/PyAV)


def save_prefixes(prompt: dict) -> list[str]:
    """The `filename_prefix` of every save node of an API-format workflow, in node-id order."""
    nodes = sorted(prompt.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0])
    return [n["inputs"]["filename_prefix"] for _, n in nodes
            if n["class_type"].startswith("Save") and "filename_prefix" in n.get("inputs", {})]


def newest_output(output_dir: Path, prefix: str) -> Path:
    folder, stem = (output_dir / prefix).parent, Path(prefix).name
    found = sorted((p for p in folder.glob(f"{stem}_*") if p.suffix in VIDEO_SUFFIXES), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"no {stem}_*.mp4 or .webp in {folder}: run the workflow first (tools/run_workflows.py)")
    return found[-1]


def frame_grid(video: Path, count: int, columns: int) -> Image.Image:
    """`count` evenly spaced frames of `video`, first to last, in rows of `columns`."""
    frames = [Image.fromarray(f.numpy()) for f in read_video_uint8(video)[0]]
    picks = [frames[round(i * (len(frames) - 1) / max(count - 1, 1))] for i in range(count)]
    w, h = picks[0].size
    columns = min(columns, count)
    grid = Image.new("RGB", (w * columns, h * -(-count // columns)), "white")
    for i, frame in enumerate(picks):
        grid.paste(frame, ((i % columns) * w, (i // columns) * h))
    return grid


def still(prompt: dict, output_dir: Path, count: int, columns: int) -> Image.Image:
    rows = [frame_grid(newest_output(output_dir, p), count, columns) for p in save_prefixes(prompt)]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path, help="ComfyUI's output folder")
    parser.add_argument("--frames", type=int, default=8, help="frames per video")
    parser.add_argument("--columns", type=int, default=4, help="frames per row")
    parser.add_argument("--out", type=Path, default=WORKFLOWS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted((WORKFLOWS / "api").glob("*.json")):
        sheet = still(json.loads(path.read_text()), args.output_dir, args.frames, args.columns)
        target = args.out / f"{path.stem}.jpg"
        sheet.save(target, quality=88, optimize=True)  # a README still: a JPEG is a fifth of the PNG
        print(f"{target}  {sheet.width}x{sheet.height}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
