"""tools/workflow_stills.py: one row of frames per save node, from the newest video of each."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import workflow_stills  # noqa: E402


def _video(path: Path, colour: tuple[int, int, int], frames: int = 5) -> None:
    images = [Image.new("RGB", (16, 12), tuple(min(255, c + 20 * i) for c in colour)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], lossless=True)


def test_stills_take_the_newest_video_of_every_save_node(tmp_path):
    out = tmp_path / "output" / "FashionChameleon"
    out.mkdir(parents=True)
    _video(out / "branch_A_00001_.webp", (200, 0, 0))
    _video(out / "branch_A_00002_.webp", (0, 200, 0))  # newer: this one is used
    os.utime(out / "branch_A_00001_.webp", (1, 1))
    _video(out / "branch_B_00001_.webp", (0, 0, 200))
    prompt = {"10": {"class_type": "SaveAnimatedWEBP", "inputs": {"filename_prefix": "FashionChameleon/branch_B"}},
              "9": {"class_type": "SaveAnimatedWEBP", "inputs": {"filename_prefix": "FashionChameleon/branch_A"}},
              "3": {"class_type": "FashionChameleonStreamGenerate", "inputs": {}}}
    assert workflow_stills.save_prefixes(prompt) == ["FashionChameleon/branch_A", "FashionChameleon/branch_B"]
    sheet = workflow_stills.still(prompt, tmp_path / "output", count=4, columns=2)
    assert sheet.size == (2 * 16, 4 * 12)  # two 2x2 blocks, one per save node
    assert sheet.getpixel((0, 0))[1] > 150 and sheet.getpixel((0, 24))[2] > 150  # newest A on top, then B
    assert sheet.getpixel((16, 12))[1] > sheet.getpixel((0, 0))[1]  # the last frame, not the first again


def test_every_shipped_workflow_has_a_save_node():
    for path in (workflow_stills.WORKFLOWS / "api").glob("*.json"):
        assert workflow_stills.save_prefixes(json.loads(path.read_text())), path.name
