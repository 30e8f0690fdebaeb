"""Shipping a trained part into weights/: fp16 on disk, fp32 compute, provenance in the metadata."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.__main__ import main as cli
from fashionchameleon.runtime.files.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fashionchameleon.runtime.files.dit_loading import build_dit
from fashionchameleon.lab.ship import ship

from conftest import MICRO


def _inputs():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, MICRO.in_dim, 2, 4, 4, generator=g)
    return x, torch.full((1, 2), 500.0), torch.randn(1, MICRO.text_len, MICRO.text_dim, generator=g)


def test_shipped_fp16_file_is_half_the_size_and_computes_like_the_original(tmp_path, micro_model):
    src = save_checkpoint(tmp_path / "teacher.safetensors", micro_model.state_dict(), "teacher", MICRO,
                          {"command": "train teacher"})
    dst = ship(src, tmp_path / "weights" / "teacher.safetensors", torch.float16, note="seed 2")
    shipped = load_checkpoint(dst, "teacher")
    assert all(t.dtype == torch.float16 for t in shipped.tensors.values())
    assert shipped.config == load_checkpoint(src).config
    assert shipped.metadata["shipped_from"] == "teacher.safetensors" and shipped.metadata["note"] == "seed 2"
    assert shipped.metadata["command"] == "train teacher"  # the training file's own metadata is kept
    assert dst.stat().st_size < 0.6 * src.stat().st_size
    half = build_dit(dst, "teacher", dtype=torch.float32)
    x, t, ctx = _inputs()
    with torch.no_grad():
        ref, got = micro_model(x, t, ctx, [0, 1]), half(x, t, ctx, [0, 1])
    err = (got - ref).abs().max() / ref.abs().max()
    assert 0 < err < 5e-3  # rounding only; zero would mean nothing was cast


def test_a_weight_that_overflows_fp16_is_refused(tmp_path, micro_model):
    sd = micro_model.state_dict()
    sd["head.head.weight"] = sd["head.head.weight"] * 0 + 1e6
    src = save_checkpoint(tmp_path / "big.safetensors", sd, "student", MICRO)
    with pytest.raises(CheckpointError, match="does not fit"):
        ship(src, tmp_path / "out.safetensors", torch.float16)
    assert ship(src, tmp_path / "out.safetensors", torch.bfloat16).exists()


def test_ship_command(tmp_path, micro_model, capsys):
    src = save_checkpoint(tmp_path / "student.safetensors", micro_model.state_dict(), "student", MICRO)
    assert cli(["ship", str(src), str(tmp_path / "w" / "student.safetensors")]) == 0
    assert "MiB (fp16)" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "w" / "student.safetensors", "student").stage == "student"


def test_a_student_streams_with_the_context_it_was_trained_on(tmp_path, micro_model, monkeypatch):
    from fashionchameleon.runtime import embedded
    from fashionchameleon.runtime.config import TRAINED_STREAM_KEY, StreamConfig

    trained = StreamConfig.trained(3, 4)
    assert (trained.sink_frames, trained.window_frames) == (3, 9)  # the 4th chunk of a rollout saw 12 frames
    assert (StreamConfig.trained(3, 1).sink_frames, StreamConfig.trained(3, 1).window_frames) == (0, 3)
    src = save_checkpoint(tmp_path / "student.safetensors", micro_model.state_dict(), "student", MICRO)
    meta = {TRAINED_STREAM_KEY: trained.to_json()}
    assert cli(["ship", str(src), str(tmp_path / "w" / "student.safetensors"),
                "--meta", f"{TRAINED_STREAM_KEY}={meta[TRAINED_STREAM_KEY]}"]) == 0
    shipped = load_checkpoint(tmp_path / "w" / "student.safetensors", "student")
    assert embedded.trained_stream_config(shipped.metadata) == trained
    again = ship(tmp_path / "w" / "student.safetensors", tmp_path / "v" / "student.safetensors")  # kept on re-ship
    assert embedded.trained_stream_config(load_checkpoint(again).metadata) == trained
    assert embedded.trained_stream_config({}) is None  # older files: the default layout
    with pytest.raises(CheckpointError, match="trained_stream"):
        embedded.trained_stream_config({TRAINED_STREAM_KEY: '{"window_frames": 4}'}, "x.safetensors")
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        cli(["ship", str(src), str(tmp_path / "u.safetensors"), "--meta", "no-equals-sign"])


def test_a_shipped_part_records_its_world_and_the_eval_measures_the_folder_on_it(tmp_path, micro_model, capsys):
    import argparse
    import json

    from fashionchameleon.lab.metrics.cli import _config, add_parser
    from fashionchameleon.lab.weights_world import WORLD_KEY, weights_world

    src = save_checkpoint(tmp_path / "student.safetensors", micro_model.state_dict(), "student", MICRO)
    plain, portrait = tmp_path / "plain", tmp_path / "portrait"
    assert cli(["ship", str(src), str(plain / "student.safetensors")]) == 0
    assert cli(["ship", str(src), str(portrait / "student.safetensors"), "--world", "fashion"]) == 0
    assert weights_world(plain) is None  # nothing recorded: the full-body world
    world, where = weights_world(portrait)
    assert world == {"framing": "fashion", "height": 144, "width": 112} and where == "student.safetensors"
    assert json.loads(load_checkpoint(portrait / "student.safetensors").metadata[WORLD_KEY]) == world

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())  # the eval's own flags and defaults
    flags = parser.parse_args(["eval"])
    cfg = _config(flags, world)
    assert (cfg.framing, cfg.frame_size) == ("fashion", (144, 112))
    # any frame flag of the user's wins over the recorded world
    cfg = _config(parser.parse_args(["eval", "--size", "96"]), world)
    assert (cfg.framing, cfg.frame_size) == ("full_body", (96, 96))
    assert _config(flags, None).framing == "full_body"


def test_a_malformed_recorded_world_is_refused_with_the_file_named(tmp_path, micro_model):
    from fashionchameleon.lab.weights_world import weights_world

    src = save_checkpoint(tmp_path / "src.safetensors", micro_model.state_dict(), "student", MICRO)
    ship(src, tmp_path / "w" / "student.safetensors", meta={"trained_world": "[1, 2]"})
    with pytest.raises(ValueError, match="student.safetensors.*framing"):
        weights_world(tmp_path / "w")
