"""The evaluation on the world framed like fashion video (portrait frames, a camera that follows the person):
cases, flat-lays and every re-render come out of the world's own camera, so the oracle reaches the ceiling."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.lab.metrics.cases import build_cases
from fashionchameleon.lab.metrics.config import EvalConfig
from fashionchameleon.lab.metrics.evaluate import run_eval
from fashionchameleon.lab.metrics.generators import (ModelTryOff, OracleGenerator, StudentGenerator, Switch, plan_of,
                                                     render_frames)
from fashionchameleon.lab.metrics.report import markdown_report
from fashionchameleon.lab.metrics.scores import garment_retrieval
from fashionchameleon.lab.synthetic import FRAMINGS, Dots, Stripes, WorldConfig, make_sample
from fashionchameleon.runtime.embedded import EmbeddedModel
from test_evaluate import ReferenceOutfitGenerator, one_thread  # noqa: F401 - one_thread: an autouse fixture

# portrait 112 x 144 clips of 24 frames in chunks of 6: switch at frame 12, windows [12, 18) and [18, 24)
CFG = EvalConfig(samples=3, frames=24, chunk=6, framing="fashion", long_frames=48, long_window=12, long_splits=2,
                 long_samples=1, sections=("garment", "identity", "pattern", "recon", "switch", "tryoff"))
SIZE = (144, 112)  # (H, W)


@pytest.fixture(scope="module")
def cases():
    return build_cases(CFG)


def test_cases_are_portrait_frames_of_the_fashion_world(cases):
    assert CFG.frame_size == SIZE and CFG.world().framing == "fashion" and CFG.world().frame_size == SIZE
    assert EvalConfig().world() == WorldConfig(size=128, frames=48) and EvalConfig().frame_size == (128, 128)
    for case in cases:
        s = case.sample
        assert s.video.shape == (CFG.frames, 3, *SIZE) and s.meta["framing"] == "fashion"
        assert all(g.shape == (3, *SIZE) for g in s.garments.values()) and s.background.shape == (3, *SIZE)
        assert case.switch.image.shape == (3, *SIZE) and all(f.shape == (3, *SIZE) for f in case.tryoff_flats)


def test_a_re_render_of_the_own_outfit_is_the_sample_through_the_camera(cases):
    for case in cases:
        s = case.sample
        assert torch.equal(render_frames(s.plan, s.world, 0, CFG.frames), s.video)
        assert torch.equal(render_frames(s.plan, s.world, 6, 10), s.video[6:16])  # a window: the same camera frames
        bare = make_sample(case.seed, CFG.world())  # no plan attached: world and plan from its meta and seed
        plan, world = plan_of(bare)
        assert world.framing == "fashion" and world.frame_size == SIZE
        assert torch.equal(render_frames(plan, world, 0, CFG.frames), s.video)
        assert torch.equal(OracleGenerator().generate(bare, CFG.frames), s.video)


def test_candidates_are_drawn_like_the_worlds_garments(cases):
    """The fashion world draws periodic patterns 1.5x coarser; so are the distractors (else the truth stands out)."""
    scale, seen = FRAMINGS["fashion"].pattern_scale, 0
    for case in cases:
        for outfit in case.outfits + case.pattern_outfits + case.switch_outfits:
            for g in outfit.values():
                if isinstance(g.front, Stripes):
                    assert g.front.period >= 0.22 * 0.92 * scale - 1e-9
                    seen += 1
                elif isinstance(g.front, Dots):
                    assert g.front.spacing >= 0.28 * scale - 1e-9
                    seen += 1
    assert seen > 0


def test_the_oracle_reaches_the_ceiling_on_the_fashion_world(cases):
    result = run_eval(None, CFG, oracle=True, cases=cases)
    (row,) = result["rows"]
    m = row["metrics"]
    assert m["garment"] == 1.0 and m["identity"] == 1.0 and m["pattern"] == 1.0 and m["recon"] == 0.0
    assert m["switch_first"] == 1.0 and m["switch_later"] == 1.0 and m["tryoff"] == 1.0
    assert result["config"]["framing"] == "fashion" and result["config"]["frame_size"] == list(SIZE)
    assert "112 x 144 px (fashion framing)" in markdown_report(result)


def test_a_wrong_outfit_fails_garment_retrieval(cases):
    assert garment_retrieval(ReferenceOutfitGenerator(), cases, CFG)["garment"] == 0.0


def test_config_checks_both_sides():
    with pytest.raises(ValueError, match="too small"):
        EvalConfig(framing="fashion", width=48)  # 48 / 2 = 24 px wide at the analysis scale
    with pytest.raises(ValueError, match="framing"):
        EvalConfig(framing="closeup")
    assert EvalConfig(framing="fashion", height=160, width=96).world().frame_size == (160, 96)


def test_model_adapters_on_portrait_frames(micro_model, micro_codec, micro_text):
    model = EmbeddedModel(micro_codec, micro_text, student=micro_model, tryoff=micro_model)
    sample = make_sample(2_000_000, CFG.world(slots="full").replace(frames=12))
    switch = Switch(6, "full", -sample.garments["full"])
    assert StudentGenerator(model).generate(sample, 10, [switch], seed=1).shape == (10, 3, *SIZE)
    assert ModelTryOff(model, steps=2).extract(sample, 3, "full").shape == (3, *SIZE)


def test_eval_cli_takes_the_framing(tmp_path, capsys):
    from fashionchameleon.__main__ import main
    from fashionchameleon.lab.metrics.report import read_json

    out = tmp_path / "eval"
    code = main(["eval", "--weights", str(tmp_path / "none"), "--oracle", "--framing", "fashion", "--samples", "1",
                 "--candidates", "3", "--sections", "garment", "--out", str(out)])
    assert code == 0 and "| oracle |" in capsys.readouterr().out
    result = read_json(out / "eval.json")
    assert result["config"]["framing"] == "fashion" and result["rows"][0]["metrics"]["garment"] == 1.0


def test_eval_start_measures_the_cases_a_longer_run_ends_with(tmp_path):
    from fashionchameleon.__main__ import main
    from fashionchameleon.lab.metrics.report import read_json

    base = dict(framing="fashion", candidates=3, sections=("garment",))
    tail, whole = build_cases(EvalConfig(samples=2, start=3, **base)), build_cases(EvalConfig(samples=5, **base))
    assert [c.seed for c in tail] == [c.seed for c in whole[3:]]
    assert [(c.target, c.person_target, c.switch_target) for c in tail] == \
        [(c.target, c.person_target, c.switch_target) for c in whole[3:]]  # the same candidates, not only people
    with pytest.raises(ValueError, match="--start"):
        EvalConfig(samples=2, start=9_999)
    out = tmp_path / "eval"
    code = main(["eval", "--weights", str(tmp_path / "none"), "--oracle", "--framing", "fashion", "--start", "3",
                 "--samples", "1", "--candidates", "3", "--sections", "garment", "--out", str(out)])
    assert code == 0 and "1 samples (from sample 3 on)" in (out / "eval.md").read_text()
    result = read_json(out / "eval.json")
    assert result["config"]["start"] == 3 and result["rows"][0]["details"]["garment"][0]["seed"] == whole[3].seed
