"""Each DiT training stage runs a few steps on a fixed micro batch and its loss falls; the stages' options
(timestep weight, frozen prompt encoder, weights' moving average) do what they say."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fashionchameleon.runtime.files.checkpoint import load_checkpoint
from fashionchameleon.runtime.stream.schedule import training_weight
from fashionchameleon.runtime.stream.seeding import generator_for
from fashionchameleon.lab.train.batch import LatentBatch
from fashionchameleon.lab.train.dit_stage import DiffusionStageConfig
from fashionchameleon.lab.train.ema import EMA
from fashionchameleon.lab.train.forcing_stage import ForcingStage
from fashionchameleon.lab.train.runner import RunConfig, run_stage
from fashionchameleon.lab.train.state import compact_state
from fashionchameleon.lab.train.teacher_stage import TeacherStage

from conftest import MICRO_FIELDS as MICRO, MICRO_TEXT as TEXT, randomize


def _fixed(step: int) -> LatentBatch:
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 4, 6, 4, 4, generator=g)
    return LatentBatch(video, video[:, :, :1] + 0.1, torch.randn(2, 4, 1, 4, 4, generator=g),
                       ["a person walks", "a person waves"])


def _cfg(**kw) -> DiffusionStageConfig:
    return DiffusionStageConfig(model=MICRO, text=TEXT, lr=1e-2, text_dropout=0.0, **kw)


def _mean_loss(stage, fixed=_fixed, steps=range(100, 132)) -> float:
    """Loss on the fixed batch averaged over 32 noise draws that training never uses."""
    with torch.no_grad():
        return sum(stage.loss(fixed(0), generator_for(9, s)).item() for s in steps) / len(steps)


@pytest.mark.parametrize("stage_cls", [TeacherStage, ForcingStage])
def test_stage_loss_falls_on_a_fixed_batch(tmp_path, stage_cls):
    torch.manual_seed(0)
    stage = stage_cls(_cfg(), _fixed)
    before = _mean_loss(stage)
    run_stage(stage, RunConfig(steps=120, log_every=40, save_every=1000), tmp_path, stage.cfg)
    after = _mean_loss(stage)
    assert after < 0.8 * before, (before, after)
    exported = load_checkpoint(tmp_path / f"{stage.name}.safetensors", expect_stage=stage.export_stage)
    assert exported.config["dim"] == 32
    load_checkpoint(tmp_path / "text.safetensors", expect_stage="text")


def test_forcing_starts_from_the_teacher(tmp_path):
    torch.manual_seed(0)
    teacher = TeacherStage(_cfg(), _fixed)
    run_stage(teacher, RunConfig(steps=2, save_every=1000), tmp_path, teacher.cfg)
    forcing = ForcingStage(_cfg(init_model=str(tmp_path / "teacher.safetensors"),
                                init_text=str(tmp_path / "text.safetensors")), _fixed)
    for (k, a), (_, b) in zip(teacher.model.state_dict().items(), forcing.model.state_dict().items()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("train_text", [True, False])
def test_prompt_encoder_trains_only_when_asked(tmp_path, train_text):
    torch.manual_seed(0)
    stage = ForcingStage(_cfg(train_text=train_text), _fixed)
    before = {k: v.clone() for k, v in stage.text.state_dict().items()}
    run_stage(stage, RunConfig(steps=3, save_every=1000), tmp_path, stage.cfg)
    changed = [k for k, v in stage.text.state_dict().items() if not torch.equal(v, before[k])]
    assert bool(changed) == train_text, changed
    exported = load_checkpoint(tmp_path / "text.safetensors", expect_stage="text").tensors
    assert all(torch.equal(exported[k], v) for k, v in stage.text.state_dict().items())


def test_training_weight_is_a_bell_with_mean_one():
    t = torch.linspace(0, 1000, 1001)
    w = training_weight(t)
    assert abs(w.mean().item() - 1.0) < 1e-3 and w[0].item() < 1e-6 and w.argmax().item() == 500


def test_timestep_weight_choice_bell_or_uniform():
    t = torch.tensor([0.0, 500.0, 990.0])
    assert torch.allclose(DiffusionStageConfig().loss_weight(t), training_weight(t))
    uniform = DiffusionStageConfig.from_json({"timestep_weight": "uniform"}).loss_weight(t)
    assert uniform.tolist() == [1.0, 1.0, 1.0]  # the high-noise end counts fully (the bell gives 990 ~0.05)
    with pytest.raises(ValueError, match="timestep_weight must be one of"):
        DiffusionStageConfig(timestep_weight="cosine")


def test_tryoff_stage_loss_falls_and_sampler_runs(tmp_path):
    from fashionchameleon.runtime.encoders.codec import TinyCodec, TinyCodecConfig
    from fashionchameleon.lab.train.tryoff_stage import CanvasBatch, TryOffStage
    from fashionchameleon.runtime.tryoff import canvas_positions, try_off

    g = torch.Generator().manual_seed(0)
    person, garment, ref = (torch.randn(2, 4, 1, 4, 4, generator=g) for _ in range(3))
    fixed = lambda step: CanvasBatch(person, garment, ref, "upper")  # noqa: E731
    torch.manual_seed(0)
    stage = TryOffStage(_cfg(), fixed)
    before = _mean_loss(stage, fixed)
    run_stage(stage, RunConfig(steps=120, log_every=40, save_every=1000), tmp_path, stage.cfg)
    assert _mean_loss(stage, fixed) < 0.8 * before
    load_checkpoint(tmp_path / "tryoff.safetensors", expect_stage="tryoff")
    assert canvas_positions("tryoff", "upper") == [0, 2] and canvas_positions("tryon", "lower") == [4, 3, 0]
    codec = TinyCodec(TinyCodecConfig(latent_channels=4, spatial_factor=4, temporal_factor=2, widths=(8, 8)))
    out = try_off(stage.model.eval(), codec, torch.rand(1, 3, 16, 16) * 2 - 1, "upper", num_steps=3)
    assert out.shape == (1, 3, 16, 16) and out.abs().max() <= 1


def test_tryoff_prob_picks_the_direction_a_step_trains():
    from fashionchameleon.lab.train.tryoff_stage import CanvasBatch, TryOffStage

    g = torch.Generator().manual_seed(0)
    person, garment, ref, other = (torch.randn(2, 4, 1, 4, 4, generator=g) for _ in range(4))
    torch.manual_seed(0)

    def moved_by_reference(prob: float) -> int:
        """Of 16 steps' losses, how many change when only the try-on reference changes."""
        stage = TryOffStage(_cfg(tryoff_prob=prob), lambda step: None)
        randomize(stage.model)  # the output head starts at zero: give every input a say
        with torch.no_grad():
            return sum(stage.loss(CanvasBatch(person, garment, ref, "upper"), generator_for(3, s)).item() !=
                       stage.loss(CanvasBatch(person, garment, other, "upper"), generator_for(3, s)).item()
                       for s in range(16))

    assert moved_by_reference(1.0) == 0  # try-off only: the reference is never read
    assert moved_by_reference(0.0) == 16  # try-on only
    assert 0 < moved_by_reference(0.5) < 16
    with pytest.raises(ValueError, match="tryoff_prob must be in"):
        DiffusionStageConfig(tryoff_prob=1.5)


def test_ema_copies_first_then_averages_with_a_ramped_decay():
    model = nn.Linear(2, 1, bias=False)
    ema = EMA(model, decay=0.999)
    with torch.no_grad():
        model.weight.fill_(4.0)
    ema.update(model)  # first update copies
    assert torch.equal(ema.shadow.weight, model.weight)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema.update(model)  # n = 1: decay = 2/11
    assert torch.allclose(ema.shadow.weight, torch.full((1, 2), 4.0 * 2 / 11))
    assert int(ema.updates) == 2 and not any(p.requires_grad for p in ema.shadow.parameters())
    with pytest.raises(ValueError, match="EMA decay"):
        EMA(model, decay=1.0)


def test_export_writes_the_average_and_a_resume_can_switch_it_on(tmp_path):
    torch.manual_seed(0)
    plain = TeacherStage(_cfg(), _fixed)
    run_stage(plain, RunConfig(steps=3, save_every=1000), tmp_path, plain.cfg)

    resumed = TeacherStage(_cfg(ema_decay=0.99), _fixed)  # a state saved without an EMA
    row = run_stage(resumed, RunConfig(steps=5, log_every=1, save_every=1000), tmp_path, resumed.cfg)
    assert row["step"] == 5 and int(resumed.ema.updates) == 2  # started at the resumed weights (step 3)
    exported = load_checkpoint(tmp_path / "teacher.safetensors", expect_stage="teacher").tensors
    shadow, raw = resumed.ema.shadow.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(exported[k], v) for k, v in shadow.items())
    assert any(not torch.equal(shadow[k], raw[k]) for k in raw)  # the average is not the raw weights
    compact = compact_state(tmp_path / "state.safetensors", tmp_path / "small" / "state.safetensors")
    assert not any(k.startswith("module.ema.") for k in load_checkpoint(compact).tensors)  # one network's size
    again = TeacherStage(_cfg(ema_decay=0.99), _fixed)  # the average itself resumes
    run_stage(again, RunConfig(steps=5, save_every=1000), tmp_path, again.cfg)
    assert int(again.ema.updates) == 2 and all(torch.equal(again.ema.shadow.state_dict()[k], v)
                                               for k, v in shadow.items())
    small = tmp_path / "with_average"
    compact_state(tmp_path / "state.safetensors", small / "state.safetensors", keep_optional=True)
    kept = TeacherStage(_cfg(ema_decay=0.99), _fixed)  # a compact state that kept the average resumes it (fp16)
    run_stage(kept, RunConfig(steps=5, save_every=1000), small, kept.cfg)
    assert int(kept.ema.updates) == 2
    assert all(torch.allclose(kept.ema.shadow.state_dict()[k], v, atol=1e-3) for k, v in shadow.items())


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_garment_dropout_feeds_null_garments_to_some_clips(dropout):
    torch.manual_seed(0)
    stage = TeacherStage(_cfg(garment_dropout=dropout), _fixed)
    seen = []
    stage.model.register_forward_pre_hook(lambda m, args: seen.append(args[0][:, :, :2].clone()))
    for s in range(16):
        stage.loss(_fixed(0), generator_for(3, s))
    conds = torch.stack(seen)  # [16 steps, B, C, 2 conditions, h, w]
    dropped = conds[:, :, :, 1].flatten(2).eq(0).all(-1)  # [16, B]: the garment frame is the null garment
    assert torch.equal(conds[:, :, :, 0], _fixed(0).references[None, :, :, 0].expand_as(conds[:, :, :, 0]))
    if dropout == 0:
        assert not dropped.any()
    else:
        assert 0.25 < dropped.float().mean().item() < 0.75  # about half the clips, drawn per clip
        kept, garments = ~dropped, conds[:, :, :, 1]
        assert torch.equal(garments[kept], _fixed(0).garments[:, :, 0][None].expand_as(garments)[kept])


def test_garment_dropout_must_be_a_probability():
    with pytest.raises(ValueError, match="garment_dropout"):
        _cfg(garment_dropout=1.0)
