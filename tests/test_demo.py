"""The demo pipeline end to end with a randomly initialised embedded model (wiring, files, metrics keys).

The quality of the trained model is checked by the shipped-weights regression test instead.
"""
from __future__ import annotations

import json

import torch

from fashionchameleon.runtime.encoders.codec import TinyCodec
from fashionchameleon.runtime.config import preset
from fashionchameleon.lab.demo import DemoConfig, run_demo
from fashionchameleon.lab.samples import sample_set_of
from fashionchameleon.runtime.embedded import EmbeddedModel
from fashionchameleon.runtime.dit.model import WanDiT
from fashionchameleon.runtime.encoders.text import TinyPromptEncoder


def test_demo_writes_video_sheet_and_metrics(tmp_path):
    torch.manual_seed(0)
    model = EmbeddedModel(TinyCodec().eval(), TinyPromptEncoder().eval(),
                          student=WanDiT(preset("tiny").replace(num_layers=1)).eval())
    m = run_demo(DemoConfig(frames=36, switch_frames=(12, 24), out=tmp_path, sheet_every=3), model=model)
    assert m["frames"] == 36
    assert m["resolution"] == list(sample_set_of().world.frame_size)  # the bundled samples' frame
    assert [c["expected_outfit"] for c in m["chunks"]] == [1, 2, 3]
    assert 0.0 <= m["garment_retrieval"] <= 1.0 and len(m["switch_continuity"]) == 2
    assert json.loads((tmp_path / "metrics.json").read_text())["frames"] == 36
    assert (tmp_path / "contact_sheet.png").exists()
    assert any(p.name.startswith("demo.") for p in tmp_path.iterdir())
