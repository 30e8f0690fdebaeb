"""The shared training runner: loss falls on a fixed batch, resume is exact, state files are safetensors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fashionchameleon.runtime.files.checkpoint import load_checkpoint
from fashionchameleon.lab.train.codec_stage import CodecStage, CodecStageConfig
from fashionchameleon.lab.train.ema import EMA
from fashionchameleon.lab.train.runner import RunConfig, export_snapshot, lr_factor, read_log, run_stage
from fashionchameleon.lab.train.state import OPTIMIZER_RESET, compact_state, load_state, save_state

MICRO_CODEC = {"latent_channels": 4, "spatial_factor": 4, "temporal_factor": 2, "widths": [8, 16]}


def _fixed_batch(step: int) -> torch.Tensor:
    """The same striped clip every step: [B=2, 3, T=4, 16, 16] in [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    x = torch.arange(16.0)
    stripes = torch.sin(x[None, :] * 0.8 + x[:, None] * 0.3)  # [16, 16]
    colour = torch.rand(2, 3, 1, 1, 1, generator=g) * 2 - 1
    return (colour * stripes).expand(2, 3, 4, 16, 16).clamp(-1, 1).contiguous()


def _stage(batches=_fixed_batch) -> CodecStage:
    torch.manual_seed(0)
    return CodecStage(CodecStageConfig(codec=MICRO_CODEC, lr=3e-3, stats_batches=2), batches)


def test_codec_loss_falls_on_a_fixed_batch(tmp_path):
    stage = _stage()
    first = stage.loss(_fixed_batch(0))[0].item()
    run_stage(stage, RunConfig(steps=40, log_every=10, save_every=1000), tmp_path, stage.cfg)
    last = stage.loss(_fixed_batch(0))[0].item()
    assert last < 0.5 * first
    rows = read_log(tmp_path)
    assert [r["step"] for r in rows] == [10, 20, 30, 40] and rows[-1]["loss"] < rows[0]["loss"]
    ckpt = load_checkpoint(tmp_path / "codec.safetensors", expect_stage="codec")
    assert ckpt.config["latent_channels"] == 4 and ckpt.tensors["latent_std"].min() > 0


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    whole = _stage()
    run_stage(whole, RunConfig(steps=12, save_every=1000), tmp_path / "whole", whole.cfg)
    part = _stage()
    run_stage(part, RunConfig(steps=6, save_every=1000), tmp_path / "split", part.cfg)
    resumed = _stage()  # a fresh process would build the stage from scratch, then resume
    run_stage(resumed, RunConfig(steps=12, save_every=1000), tmp_path / "split", resumed.cfg)
    for (name, a), (_, b) in zip(whole.codec.state_dict().items(), resumed.codec.state_dict().items()):
        assert torch.equal(a, b), name
    state = load_checkpoint(tmp_path / "split" / "state.safetensors", expect_stage="training")
    assert state.metadata["step"] == "12" and any(k.startswith("optim.codec.") for k in state.tensors)


def test_a_resume_trains_at_the_configured_learning_rate_not_the_saved_one(tmp_path):
    first = _stage()
    run_stage(first, RunConfig(steps=3, save_every=1000), tmp_path, first.cfg)
    torch.manual_seed(0)
    faster = CodecStage(CodecStageConfig(codec=MICRO_CODEC, lr=6e-3, stats_batches=2), _fixed_batch)
    lrs = []
    inner = faster.train_step
    faster.train_step = lambda s: lrs.append(faster.opt.param_groups[0]["lr"]) or inner(s)
    run_stage(faster, RunConfig(steps=5, save_every=1000), tmp_path, faster.cfg)
    assert lrs == [6e-3, 6e-3] and faster.opt.state  # the new rate, with the saved Adam moments


def test_time_limit_stops_early_and_saves(tmp_path):
    stage = _stage()
    run_stage(stage, RunConfig(steps=10_000, save_every=10_000, time_limit_s=0.0), tmp_path, stage.cfg)
    state = load_checkpoint(tmp_path / "state.safetensors", expect_stage="training")
    assert int(state.metadata["step"]) == 1
    assert not (tmp_path / "codec.safetensors").exists()  # not finished: nothing exported yet


def test_a_compact_state_resumes_with_fresh_optimizers_and_a_new_warm_up(tmp_path):
    first = _stage()
    run_stage(first, RunConfig(steps=6, warmup=2, save_every=1000), tmp_path / "run", first.cfg)
    full = tmp_path / "run" / "state.safetensors"
    small = compact_state(full, tmp_path / "small" / "state.safetensors")
    assert small.stat().st_size < 0.5 * full.stat().st_size
    ckpt = load_checkpoint(small, expect_stage="training")
    assert ckpt.metadata["step"] == "6" and not any(k.startswith("optim.") for k in ckpt.tensors)
    probe = _stage()
    step, extra = load_state(small, probe.modules(), probe.optimizers())
    assert step == 6 and extra[OPTIMIZER_RESET] and not probe.opt.state  # fresh Adam moments
    for (name, a), (_, b) in zip(first.codec.named_parameters(), probe.codec.named_parameters()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name  # the weights, rounded to fp16
    resumed = _stage()
    lrs = []
    inner = resumed.train_step
    resumed.train_step = lambda s: lrs.append(resumed.opt.param_groups[0]["lr"]) or inner(s)
    run_stage(resumed, RunConfig(steps=9, warmup=2, save_every=1000), tmp_path / "small", resumed.cfg)
    base = resumed.opt.param_groups[0]["base_lr"]
    assert lrs == [base / 2, base, base]  # the warm-up restarts at the resumed step


def test_cooldown_takes_the_rate_down_over_the_last_steps_and_resumes_on_the_same_schedule(tmp_path):
    run = RunConfig(steps=10, warmup=2, cooldown=4, save_every=1000)
    assert [lr_factor(run, s) for s in range(10)] == [0.5, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    assert lr_factor(RunConfig(steps=10, cooldown=4), 0) == 1.0  # a cool-down alone leaves the start alone
    stage = _stage()
    run_stage(stage, RunConfig(steps=7, save_every=1000), tmp_path, stage.cfg)  # the stable phase, saved
    resumed = _stage()
    lrs = []
    inner = resumed.train_step
    resumed.train_step = lambda s: lrs.append(resumed.opt.param_groups[0]["lr"]) or inner(s)
    run_stage(resumed, run, tmp_path, resumed.cfg)  # cooled down from the saved step
    base = resumed.opt.param_groups[0]["base_lr"]
    assert lrs == pytest.approx([0.75 * base, 0.5 * base, 0.25 * base])
    with pytest.raises(ValueError, match="cooldown"):
        RunConfig(steps=10, cooldown=-1)


def test_export_snapshot_writes_the_saved_weights_of_an_unfinished_run(tmp_path):
    stage = _stage()
    run_stage(stage, RunConfig(steps=10_000, save_every=10_000, time_limit_s=0.0), tmp_path / "run", stage.cfg)
    assert not (tmp_path / "run" / "codec.safetensors").exists()
    fresh = _stage()  # another process: its own stage, weights from the state file
    step, paths = export_snapshot(fresh, tmp_path / "run", tmp_path / "snap")
    assert step == 1 and paths == [tmp_path / "snap" / "codec.safetensors"]
    exported = load_checkpoint(paths[0], expect_stage="codec").tensors
    weights = {k: v for k, v in stage.codec.state_dict().items() if not k.startswith("latent_")}  # stats: at export
    assert weights and all(torch.equal(exported[k], v) for k, v in weights.items())
    with pytest.raises(FileNotFoundError, match="no training state"):
        export_snapshot(fresh, tmp_path / "nowhere", tmp_path / "snap")


def test_a_compact_state_drops_only_the_modules_a_resume_can_do_without(tmp_path):
    net = nn.Linear(4, 4)
    # "ema" here is a network a resume needs (as GR-DMD's exported generator); "average" is optional
    modules = {"model": net, "ema": nn.Linear(4, 4), "average": EMA(net, 0.99)}
    full = save_state(tmp_path / "full.safetensors", 3, modules, {}, {})
    kept = load_checkpoint(compact_state(full, tmp_path / "small.safetensors"), expect_stage="training").tensors
    assert any(k.startswith("module.ema.") for k in kept) and any(k.startswith("module.model.") for k in kept)
    assert not any(k.startswith("module.average.") for k in kept)
