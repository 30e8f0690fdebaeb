"""The whole training pipeline, wired through the CLI on micro configs: codec -> teacher -> forcing
-> dmd, and tryoff; each stage resumes from its own state and exports its checkpoint."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from fashionchameleon.__main__ import main
from fashionchameleon.runtime.files.checkpoint import load_checkpoint
from fashionchameleon.runtime.embedded import trained_stream_config
from fashionchameleon.lab.train.data import ClipBatches, DataConfig, clip_batches
from fashionchameleon.lab.train.dmd_stage import DMDStageConfig
from fashionchameleon.lab.weights_world import WORLD_KEY, folder_world_fields, weights_world

MICRO_MODEL = {"dim": 32, "ffn_dim": 64, "num_heads": 2, "num_layers": 2, "in_dim": 4, "out_dim": 4,
               "text_dim": 16, "text_len": 4, "freq_dim": 32}
MICRO_TEXT = {"text_dim": 16, "text_len": 4, "width": 16, "layers": 1, "heads": 2}
MICRO_CODEC = {"latent_channels": 4, "spatial_factor": 8, "temporal_factor": 4, "widths": [8, 8, 8]}
DATA = {"size": 64, "frames": 12, "batch_size": 2, "seed": 0}


def _write(path, stage: dict, codec: str = "", steps: int = 2, **data) -> str:
    path.write_text(json.dumps({"run": {"steps": steps, "log_every": 1, "save_every": 100}, "stage": stage,
                                "data": {**DATA, **data}, "codec": codec}))
    return str(path)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    codec_cfg = _write(root / "codec.json", {"codec": MICRO_CODEC, "stats_batches": 1}, frames=4)
    assert main(["train", "codec", "--config", codec_cfg, "--out", str(root / "codec"), "--device", "cpu"]) == 0
    codec = str(root / "codec" / "codec.safetensors")
    dit = {"model": MICRO_MODEL, "text": MICRO_TEXT}
    teacher_cfg = _write(root / "teacher.json", dit, codec)
    assert main(["train", "teacher", "--config", teacher_cfg, "--out", str(root / "teacher"), "--device", "cpu"]) == 0
    return root, codec, dit


def test_codec_and_teacher_export(pipeline):
    root, _, _ = pipeline
    assert load_checkpoint(root / "codec" / "codec.safetensors", "codec").config["widths"] == [8, 8, 8]
    assert load_checkpoint(root / "teacher" / "teacher.safetensors", "teacher").config["dim"] == 32
    rows = [json.loads(line) for line in (root / "teacher" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(r["loss"] > 0 for r in rows)


def test_forcing_dmd_and_tryoff_from_the_teacher(pipeline):
    root, codec, dit = pipeline
    teacher, text = str(root / "teacher" / "teacher.safetensors"), str(root / "teacher" / "text.safetensors")
    forcing_cfg = _write(root / "forcing.json", {**dit, "init_model": teacher, "init_text": text}, codec)
    assert main(["train", "forcing", "--config", forcing_cfg, "--out", str(root / "forcing"), "--device", "cpu"]) == 0
    dmd_cfg = _write(root / "dmd.json", {**dit, "init_generator": str(root / "forcing" / "forcing.safetensors"),
                                         "init_teacher": teacher, "init_text": text, "num_chunks": 1,
                                         "update_ratio": 1}, codec)
    assert main(["train", "dmd", "--config", dmd_cfg, "--out", str(root / "dmd"), "--device", "cpu"]) == 0
    student = load_checkpoint(root / "dmd" / "student.safetensors", "student")
    assert student.config["num_layers"] == 2
    # the student records the context its rollouts had (1 chunk here: no sink, a one-chunk window)
    trained = trained_stream_config(student.metadata)
    assert (trained.sink_frames, trained.window_frames, trained.steps) == (0, 3, DMDStageConfig().steps)
    assert trained.garment_layout == "frame"  # its data's flat-lays were as photographed
    # a snapshot export reads only the saved state: it works after the starting checkpoints are gone
    (root / "forcing" / "forcing.safetensors").rename(root / "forcing" / "moved.safetensors")
    assert main(["train", "dmd", "--config", dmd_cfg, "--out", str(root / "dmd"), "--export", str(root / "snap")]) == 0
    # and a resume too: the generator comes from the state (the frozen teacher and prompt encoder are still read)
    resumed = root / "dmd_resumed"
    shutil.copytree(root / "dmd", resumed)
    assert main(["train", "dmd", "--config", dmd_cfg, "--out", str(resumed), "--device", "cpu", "--steps", "3"]) == 0
    assert json.loads((resumed / "log.jsonl").read_text().splitlines()[-1])["step"] == 3
    (root / "forcing" / "moved.safetensors").rename(root / "forcing" / "forcing.safetensors")
    snap = load_checkpoint(root / "snap" / "student.safetensors", "student").tensors
    assert all(torch.equal(snap[k], v) for k, v in student.tensors.items())
    tryoff_cfg = _write(root / "tryoff.json", dit, codec, frames=4)
    assert main(["train", "tryoff", "--config", tryoff_cfg, "--out", str(root / "tryoff"), "--device", "cpu"]) == 0
    load_checkpoint(root / "tryoff" / "tryoff.safetensors", "tryoff")
    # every generator's export records the world its data came from, so `eval --weights` measures it there
    square = {"framing": "full_body", "height": 64, "width": 64}
    for part in ("teacher/teacher", "forcing/forcing", "dmd/student", "snap/student", "tryoff/tryoff"):
        assert json.loads(load_checkpoint(root / f"{part}.safetensors").metadata[WORLD_KEY]) == square, part
    assert weights_world(root / "dmd") == (square, "student.safetensors")
    assert folder_world_fields(root / "dmd") == square
    assert folder_world_fields(root / "codec") == {}  # a folder whose generators record nothing: the full-body world


def test_a_dmd_stage_streams_with_the_garment_layout_of_its_data(pipeline, tmp_path):
    from fashionchameleon.lab.train.cli import TrainFile, build_stage

    root, codec, dit = pipeline
    teacher, text = str(root / "teacher" / "teacher.safetensors"), str(root / "teacher" / "text.safetensors")
    cfg = _write(tmp_path / "dmd.json", {**dit, "init_generator": teacher, "init_teacher": teacher, "init_text": text,
                                         "num_chunks": 1}, codec, framing="fashion", height=64, width=64,
                 garment_layout="body")
    stage = build_stage("dmd", TrainFile.read(cfg), torch.device("cpu"))
    assert stage.cfg.garment_layout == "body" and stage.cfg.trained_stream.garment_layout == "body"
    stage.export(tmp_path / "w")
    assert weights_world(tmp_path / "w")[0] == {"framing": "fashion", "height": 64, "width": 64}


def test_a_teacher_records_the_garment_layout_of_its_data_and_the_eval_lays_out_its_conditions(pipeline, tmp_path):

    from fashionchameleon.lab.metrics.generators import teacher_inputs
    from fashionchameleon.lab.synthetic import WorldConfig, make_sample
    from fashionchameleon.lab.train.cli import TrainFile, build_stage
    from fashionchameleon.runtime.embedded import load_embedded
    from fashionchameleon.runtime.garment_layout import LAYOUT_KEY, lay_out

    root, codec, dit = pipeline
    assert LAYOUT_KEY not in load_checkpoint(root / "teacher" / "teacher.safetensors").metadata  # "frame" data
    cfg = _write(tmp_path / "t.json", dit, codec, framing="fashion", height=64, width=64, garment_layout="body")
    stage = build_stage("teacher", TrainFile.read(cfg), torch.device("cpu"))
    assert stage.cfg.garment_layout == "body"
    weights = tmp_path / "w"
    stage.export(weights)
    assert load_checkpoint(weights / "teacher.safetensors").metadata[LAYOUT_KEY] == "body"
    shutil.copy(codec, weights / "codec.safetensors")
    model = load_embedded(weights, parts=("teacher",))
    assert model.teacher_layout == "body"
    sample = make_sample(3, WorldConfig(size=64, frames=4))  # flat-lays as photographed
    conditions = teacher_inputs(model, sample)[0]  # [1, C, refs + slots, h, w]
    slot, image = next(iter(sample.garments.items()))
    expect = model.codec.encode_image(lay_out(image, slot, "body")[None]).float()[:, :, 0]
    assert torch.allclose(conditions[:, :, len(sample.references)], expect)
    assert not torch.allclose(lay_out(image, slot, "body"), image)
    with pytest.raises(ValueError, match="garment_layout"):
        build_stage("teacher", TrainFile.read(_write(tmp_path / "bad.json", {**dit, "garment_layout": "floor"},
                                                     codec)), torch.device("cpu"))


def test_resume_continues_the_step_count(pipeline, tmp_path):
    root, codec, dit = pipeline
    cfg = _write(tmp_path / "t.json", dit, codec, steps=1)
    main(["train", "teacher", "--config", cfg, "--out", str(tmp_path / "run"), "--device", "cpu"])
    main(["train", "teacher", "--config", cfg, "--out", str(tmp_path / "run"), "--device", "cpu", "--steps", "3"])
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_world_batches_are_deterministic_and_rank_disjoint():
    cfg = DataConfig(size=64, frames=4, batch_size=2, seed=3)
    a, b = clip_batches(cfg, 0, 2), clip_batches(cfg, 1, 2)
    va, va2, vb = a.videos(5), clip_batches(cfg, 0, 2).videos(5), b.videos(5)
    assert va.shape == (2, 3, 4, 64, 64) and torch.equal(va, va2) and not torch.equal(va, vb)


def test_manifest_source_feeds_the_same_batches(tmp_path):
    from fashionchameleon.runtime.encoders.codec import TinyCodec, TinyCodecConfig
    from fashionchameleon.runtime.files.images import save_png
    from fashionchameleon.lab.synthetic import WorldConfig, make_sample

    rows = ["video,prompt,width,height"]
    for i in range(2):
        s = make_sample(i, WorldConfig(size=64, frames=4, slots="full"))
        clip = tmp_path / f"clip{i}"
        clip.mkdir()
        for t in range(4):
            save_png(clip / f"{t:03d}.png", s.video[t])
        save_png(tmp_path / f"clip{i}_src.png", s.references[0])
        save_png(tmp_path / f"clip{i}_cloth.png", s.garments["full"])
        rows.append(f'clip{i},"{{""en_long"": [""a person walks"", ""static""]}}",64,64')
    (tmp_path / "meta.csv").write_text("\n".join(rows) + "\n")
    batches = clip_batches(DataConfig(source="manifest", manifest=str(tmp_path / "meta.csv"), size=64, frames=4,
                                      batch_size=2))
    assert isinstance(batches, ClipBatches)
    codec = TinyCodec(TinyCodecConfig(**{**MICRO_CODEC, "widths": (8, 8, 8)}))
    lat = batches.latents(0, codec)
    assert lat.video.shape == (2, 4, 1, 8, 8) and lat.garments.shape[2] == 1 and lat.slots == ("full",)
    assert lat.prompts[0] == "a person walks static"
