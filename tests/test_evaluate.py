"""The evaluation: the oracle reaches the ceiling, broken generators fail where they should, reports and CLI work."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from fashionchameleon.runtime.embedded import EmbeddedModel
from fashionchameleon.runtime.files.images import save_png
from fashionchameleon.lab.metrics.cases import build_cases
from fashionchameleon.lab.metrics.config import BARS, EvalConfig
from fashionchameleon.lab.metrics.evaluate import run_eval
from fashionchameleon.lab.metrics.generators import (ModelTryOff, OracleGenerator, OracleTryOff, StudentGenerator,
                                                 Switch, TeacherGenerator, plan_of, render_frames)
from fashionchameleon.lab.metrics.report import markdown_table, read_json, write_report
from fashionchameleon.lab.metrics.scores import drift_curve, garment_retrieval, switch_metrics, tryoff_retrieval
from fashionchameleon.lab.metrics.user_garments import guess_kind, load_garments
from fashionchameleon.lab.synthetic import (TEXTURE_FAMILIES, WorldConfig, flat_lay, make_sample, outfit_flat_lay,
                                        sample_garment)

# 64 px, 24-frame clips in chunks of 6: switch at frame 12, windows [12, 18) and [18, 24)
CFG = EvalConfig(samples=4, size=64, frames=24, chunk=6, long_frames=48, long_window=12, long_splits=2,
                 long_samples=1, teacher_samples=1, teacher_steps=2, tryoff_steps=2)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The metrics are many small tensor ops: one thread is as fast, and much faster on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cases():
    return build_cases(CFG)  # shared: candidate renders and descriptors are cached in the cases


class FrozenGenerator:
    """Repeats the first reference view: no motion, never the asked garment."""

    def generate(self, sample, frames, switches=(), seed=0):
        return sample.references[0][None].repeat(frames, 1, 1, 1)


class ReferenceOutfitGenerator(OracleGenerator):
    """The world's render in the reference's outfit (copies the reference instead of the garment)."""

    def generate(self, sample, frames, switches=(), seed=0):
        plan, world = plan_of(sample)
        return render_frames(plan, world, 0, frames, garments=plan.reference_garments)


class IgnoresSwitchGenerator(OracleGenerator):
    def generate(self, sample, frames, switches=(), seed=0):
        return super().generate(sample, frames, [], seed)


class ReferenceTryOff:
    """Returns the flat-lay of a garment the person is not wearing in the frame (the reference's)."""

    def extract(self, sample, frame, slot, seed=0):
        g = sample.plan.reference_garments
        img = outfit_flat_lay(g["upper"], g["lower"], CFG.size) if slot == "full" else flat_lay(g[slot], CFG.size)
        return img * 2 - 1


def test_oracle_reaches_the_ceiling(cases):
    result = run_eval(None, CFG, oracle=True, cases=cases)
    (row,) = result["rows"]
    m = row["metrics"]
    assert row["name"] == "oracle"
    assert m["garment"] >= 0.95 and m["identity"] >= 0.9
    assert m["switch_first"] == 1.0 and m["switch_later"] == 1.0 and m["stuck_first"] == 0.0
    assert m["continuity"] >= 0.9 and abs(m["amplitude"] - 1.0) < 0.05
    assert m["drift_early"] == 1.0 and m["drift_late"] == 1.0 and m["tryoff"] == 1.0 and m["pattern"] == 1.0
    assert all(row["passed"].values()) and set(row["passed"]) == set(BARS)
    json.dumps(result, allow_nan=False)  # strict JSON


def test_switch_slots_follow_the_sample_layout(cases):
    for case in cases:
        layout = case.switch_sample.meta["slots"]
        assert (case.switch.slot == "full") == (layout == "full")
        assert case.switch.slot in case.switch_sample.garments and case.switch.frame == CFG.switch_frame
        assert case.switch_target != case.switch_old and len(case.switch_outfits) == CFG.candidates


def test_frozen_figure_fails_motion_and_switch(cases):
    r = switch_metrics(FrozenGenerator(), cases, CFG)
    assert r["amplitude"] < 0.2
    assert r["switch_first"] == 0.0 and r["switch_later"] == 0.0


class LosesTheGarmentGenerator(OracleGenerator):
    """The true garments for the first `keep` frames, then the reference's outfit (a stream that drifts)."""

    keep = 24

    def generate(self, sample, frames, switches=(), seed=0):
        plan, world = plan_of(sample)
        return torch.cat([render_frames(plan, world, 0, self.keep),
                          render_frames(plan, world, self.keep, frames - self.keep, garments=plan.reference_garments)])


def test_drift_curve_follows_the_garment_along_the_stream(cases):
    """Bins of `long_window` frames (48 frames, bins of 12): the oracle keeps its garment in every bin, a
    stream that loses it at frame 24 keeps it in the first two bins only."""
    (oracle,) = drift_curve(OracleGenerator(), cases, CFG)
    assert oracle["bins"] == [1.0] * 4 and oracle["motion"] == oracle["truth_motion"] and oracle["stripes"] == [1.0] * 4
    (lost,) = drift_curve(LosesTheGarmentGenerator(), cases, CFG)
    assert lost["bins"][:2] == [1.0, 1.0] and max(lost["bins"][2:]) <= 0.5 and lost["seed"] == cases[0].seed


class StripedFrozenGenerator(OracleGenerator):
    """The first frame held still, every other row darkened: a stream collapsed into stripes."""

    def generate(self, sample, frames, switches=(), seed=0):
        still = super().generate(sample, 1)[0].clone()
        still[:, 1::2] = (still[:, 1::2] - 1.0).clamp(-1, 1)
        return still[None].repeat(frames, 1, 1, 1)


def test_drift_curve_tells_a_frozen_striped_stream(cases):
    (row,) = drift_curve(StripedFrozenGenerator(), cases, CFG)
    assert max(row["motion"]) < 0.05 < min(row["truth_motion"]) and min(row["stripes"]) > 1.5


def test_wrong_garment_is_not_retrieved(cases):
    assert garment_retrieval(ReferenceOutfitGenerator(), cases, CFG)["garment"] <= 0.2
    r = switch_metrics(IgnoresSwitchGenerator(), cases, CFG)
    assert r["switch_first"] == 0.0 and r["switch_later"] == 0.0 and r["stuck_later"] == 1.0
    assert r["continuity"] >= 0.9  # a smooth clip, just the wrong clothes


class WrongPatternGenerator(OracleGenerator):
    """The world's render in the right shapes and colours but another pattern (a pattern-diagnostic distractor)."""

    def __init__(self, cases):
        super().__init__()
        self.by_sample = {id(c.sample): c for c in cases}

    def generate(self, sample, frames, switches=(), seed=0):
        case = self.by_sample[id(sample)]
        plan, world = plan_of(sample)
        wrong = case.pattern_outfits[(case.pattern_target + 1) % len(case.pattern_outfits)]
        return render_frames(plan, world, 0, frames, garments=wrong)


def test_pattern_candidates_differ_in_their_pattern_only(cases):
    for case in cases:
        true = case.pattern_outfits[case.pattern_target]
        assert true == dict(case.sample.plan.garments) and len(case.pattern_outfits) == CFG.candidates
        for j, outfit in enumerate(case.pattern_outfits):
            for kind, g in outfit.items():
                same = (g.shape, g.colours[0], g.inner) == (true[kind].shape, true[kind].colours[0], true[kind].inner)
                assert same and (j == case.pattern_target or g.family != true[kind].family)


def test_right_colours_wrong_pattern_fails_the_pattern_diagnostic(cases):
    sections = dataclasses.replace(CFG, sections=("garment", "pattern"))
    m = run_eval({"wrong pattern": WrongPatternGenerator(cases)}, sections, cases=cases)["rows"][0]["metrics"]
    assert m["pattern"] == 0.0  # while garment retrieval, which colour and placement can carry, gave 0.75 here


def test_tryoff_metric(cases):
    assert tryoff_retrieval(OracleTryOff(), cases, CFG)["tryoff"] == 1.0
    assert tryoff_retrieval(ReferenceTryOff(), cases, CFG)["tryoff"] <= 0.25


def test_report_table_and_json_round_trip(cases, tmp_path):
    result = run_eval({"oracle": OracleGenerator(), "frozen": FrozenGenerator()},
                      dataclasses.replace(CFG, sections=("garment", "switch")), cases=cases)
    table = markdown_table(result)
    lines = table.splitlines()
    assert lines[0].startswith("| row |") and "garment ≥0.90" in lines[0] and "switch 1st chunk ≥0.80" in lines[0]
    assert "motion ampl. ≥0.50" in lines[0] and "identity" not in lines[0]  # only measured columns
    assert len(lines) == 2 + 2 and lines[2].startswith("| oracle |") and lines[3].startswith("| frozen |")
    assert "1.00 ✓" in lines[2] and "✗" in lines[3]
    json_path, md_path = write_report(result, tmp_path / "out")
    assert read_json(json_path) == json.loads(json.dumps(result))
    assert table in md_path.read_text()


@pytest.fixture
def micro_embedded(micro_model, micro_codec, micro_text):
    return EmbeddedModel(micro_codec, micro_text, student=micro_model, teacher=micro_model, tryoff=micro_model)


def test_model_adapters_return_clips_of_the_asked_length(micro_embedded):
    for slots in ("full", "upper_lower"):
        sample = make_sample(2_000_000, WorldConfig(size=64, frames=12, slots=slots))
        slot = next(iter(sample.garments))
        switch = Switch(6, slot, -sample.garments[slot])
        student = StudentGenerator(micro_embedded)
        assert student.chunk_frames == 6
        clip = student.generate(sample, 10, [switch], seed=1)
        assert clip.shape == (10, 3, 64, 64) and clip.abs().max() <= 1.0
        assert student.generate(sample, 10, [(6, slot, sample.garments[slot])]).shape == (10, 3, 64, 64)
        teacher = TeacherGenerator(micro_embedded, steps=2)
        assert teacher.generate(sample, 9, [], seed=1).shape == (9, 3, 64, 64)  # 9 -> 10 frames, trimmed
        with pytest.raises(ValueError):
            teacher.generate(sample, 10, [switch])
        assert ModelTryOff(micro_embedded, steps=2).extract(sample, 3, slot).shape == (3, 64, 64)


def test_the_teacher_samples_on_its_own_shift_not_the_students(micro_embedded, monkeypatch):
    """A student file may stream at another shift (e.g. 1.35); the teacher was trained on
    the shift-5 table and samples on it unless asked otherwise."""
    import dataclasses

    from fashionchameleon.lab.metrics import generators

    monkeypatch.setattr(micro_embedded, "stream_config", dataclasses.replace(micro_embedded.stream_config, shift=1.35))
    used = []
    real = generators.sample_teacher
    monkeypatch.setattr(generators, "sample_teacher", lambda *a, **k: used.append(a[5].shift) or real(*a, **k))
    sample = make_sample(2_000_000, WorldConfig(size=64, frames=12))
    TeacherGenerator(micro_embedded, steps=1).generate(sample, 4)
    TeacherGenerator(micro_embedded, steps=1, shift=2.0).generate(sample, 4)
    assert used == [5.0, 2.0]


@pytest.mark.parametrize("guide", ["text", "garment", "all"])
def test_the_teachers_guide_picks_what_the_unconditional_rows_drop(micro_embedded, monkeypatch, guide):
    from fashionchameleon.lab.metrics import generators

    seen = {}
    real = generators.sample_teacher
    monkeypatch.setattr(generators, "sample_teacher",
                        lambda *a, **k: seen.update(args=a, kw=k) or real(*a, **k))
    sample = make_sample(2_000_000, WorldConfig(size=64, frames=12))
    TeacherGenerator(micro_embedded, steps=1, guide=guide).generate(sample, 4)
    conditions, text, negative = seen["args"][1:4]
    uncond = seen["kw"]["negative_conditions"]
    views = sample.references.shape[0]
    assert torch.equal(uncond[:, :, :views], conditions[:, :, :views])  # the reference views are always kept
    assert bool(uncond[:, :, views:].eq(0).all()) == (guide != "text")  # null garments unless text CFG
    assert torch.equal(negative, text) == (guide == "garment")  # the prompt is kept only by garment CFG
    with pytest.raises(ValueError, match="guide"):
        TeacherGenerator(micro_embedded, guide="reference")


def test_run_eval_with_a_micro_model_fills_every_row(micro_embedded):
    cfg = EvalConfig(samples=1, size=64, frames=24, chunk=6, candidates=3, long_frames=24, long_window=6,
                     long_splits=2, long_samples=1, teacher_samples=1, teacher_steps=2, tryoff_steps=2)
    result = run_eval(micro_embedded, cfg, oracle=True)
    names = [r["name"] for r in result["rows"]]
    assert names == ["oracle", "oracle through the codec", "student", "teacher", "ablation: refresh only",
                     "ablation: refresh + withdraw", "ablation: full (+ disentangle)"]
    rows = {r["name"]: r for r in result["rows"]}
    assert set(rows["student"]["metrics"]) >= {"garment", "identity", "switch_first", "drift_late", "tryoff"}
    assert set(rows["teacher"]["metrics"]) == {"garment", "identity", "pattern", "recon"}
    assert set(rows["oracle through the codec"]["metrics"]) == {"garment", "identity", "pattern", "recon"}
    assert rows["oracle"]["metrics"]["recon"] == 0.0 < rows["oracle through the codec"]["metrics"]["recon"]
    assert rows["ablation: full (+ disentangle)"]["metrics"]["switch_first"] == \
        rows["student"]["metrics"]["switch_first"]
    assert "teacher_vs_student" in result["comparisons"]
    assert result["config"]["chunk"] == 6


def test_eval_cli_on_a_folder_of_flat_lays(tmp_path, capsys):
    from fashionchameleon.__main__ import main

    rng = np.random.default_rng(5)
    folder = tmp_path / "garments"
    kinds = ("upper", "lower", "upper")
    for i, kind in enumerate(kinds):
        save_png(folder / f"g{i}.png", flat_lay(sample_garment(rng, kind, TEXTURE_FAMILIES), 96) * 2 - 1)
    loaded = load_garments(folder)
    assert [g.kind for _, g in loaded] == list(kinds) and [n for n, _ in loaded] == ["g0.png", "g1.png", "g2.png"]
    assert guess_kind(flat_lay(sample_garment(rng, "lower", TEXTURE_FAMILIES), 64)) == "lower"

    assert main(["eval", "--weights", str(tmp_path / "none"), "--garments", str(folder)]) == 1  # nothing to run
    out = tmp_path / "eval"
    code = main(["eval", "--weights", str(tmp_path / "none"), "--garments", str(folder), "--oracle", "--samples", "3",
                 "--size", "64", "--sections", "garment", "switch", "tryoff", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "No trained weights" in printed and "| oracle |" in printed
    result = read_json(out / "eval.json")
    assert result["mode"] == "garments" and result["garments"] == ["g0.png", "g1.png", "g2.png"]
    m = result["rows"][0]["metrics"]
    assert m["garment"] == 1.0 and m["switch_first"] == 1.0 and m["switch_later"] == 1.0 and m["tryoff"] == 1.0
    assert (out / "eval.md").read_text().startswith("# FashionChameleon evaluation")


class ColourBlobGenerator(OracleGenerator):
    """The true render with each garment painted in its own mean colour, frame by frame: the right shapes,
    colours and motion, no pattern (what a model that learned only colour paints)."""

    def generate(self, sample, frames, switches=(), seed=0):
        video = sample.video[:frames].clone()  # [T, 3, H, W]
        for key in ("upper", "lower"):
            for t, mask in enumerate(sample.masks[key][:frames]):
                if mask.any():
                    video[t][:, mask] = video[t][:, mask].mean(1, keepdim=True)
        return video


BLOB_CFG = EvalConfig(samples=6, frames=24, chunk=6, sections=("garment", "pattern", "recon"))


@pytest.fixture(scope="module")
def blob_cases():
    return build_cases(BLOB_CFG)  # 128 px: the size the bars are measured at


def test_a_figure_painted_in_its_garments_colours_fails_the_pattern_bar(blob_cases):
    rows = run_eval({"oracle": OracleGenerator(BLOB_CFG.world()), "blob": ColourBlobGenerator(BLOB_CFG.world())},
                    BLOB_CFG, cases=blob_cases)["rows"]
    oracle, blob = (r["metrics"] for r in rows)
    assert oracle["pattern"] == 1.0 and oracle["recon"] == 0.0
    assert blob["garment"] >= 0.8  # colour and placement carry garment retrieval ...
    assert blob["pattern"] < BARS["pattern"] - 0.3  # ... but not the pattern score
    assert blob["recon"] > 0.1  # and the first chunk's person pixels are off


def test_kept_clips_streams_each_case_once_and_refuses_switches():
    """`KeptClips`: one call of the wrapped generator per (case, frames, seed); other keys stream anew."""
    from types import SimpleNamespace

    from fashionchameleon.lab.metrics.generators import KeptClips

    calls = []

    class Counting:
        name = "counting"

        def generate(self, sample, frames, switches=(), seed=0):
            calls.append((sample.meta["seed"], frames, seed))
            return torch.full((frames, 3, 2, 2), float(len(calls)))

    kept = KeptClips(Counting())
    a, b = SimpleNamespace(meta={"seed": 7}), SimpleNamespace(meta={"seed": 8})
    first = kept.generate(a, 4, (), 0)
    assert kept.generate(a, 4, (), 0) is first and calls == [(7, 4, 0)]
    kept.generate(a, 4, (), 1), kept.generate(b, 4, (), 0), kept.generate(a, 5, (), 0)
    assert calls == [(7, 4, 0), (7, 4, 1), (8, 4, 0), (7, 5, 0)] and kept.name == "counting"
    with pytest.raises(ValueError, match="plain clips only"):
        kept.generate(a, 4, [Switch(2, "upper", torch.zeros(3, 2, 2))], 0)
