"""The embedded model's aligned garment input (`ModelConfig.garment_hint`, `dit/garment_hint.py`): grown onto a
trained model it changes nothing at first, it is trained, streamed and loaded like the rest of the model, and a
null garment switches it off."""
from __future__ import annotations

import pytest
import torch

from conftest import MICRO, randomize
from fashionchameleon.runtime.config import ConfigError, infer_config
from fashionchameleon.runtime.dit.attention import block_causal_mask
from fashionchameleon.runtime.dit.garment_hint import clip_hint, frame_hint, slot_hint
from fashionchameleon.runtime.dit.model import FullSequence, WanDiT
from fashionchameleon.runtime.files.checkpoint import save_checkpoint
from fashionchameleon.runtime.files.dit_loading import build_dit, load_dit_state
from fashionchameleon.runtime.stream.cache import CacheAttention, CacheLayout, KVCache
from fashionchameleon.runtime.stream.sampler import condition_pass
from fashionchameleon.runtime.stream.seeding import generator_for
from fashionchameleon.lab.train.batch import LatentBatch
from fashionchameleon.lab.train.dit_stage import DiffusionStageConfig
from fashionchameleon.lab.train.runner import RunConfig, run_stage
from fashionchameleon.lab.train.teacher_stage import TeacherStage

HINTED = MICRO.replace(garment_hint=2)
C, HW = 4, (4, 4)


def _inputs(g: torch.Generator, frames: int = 5, conds: int = 2):
    x = torch.randn(1, C, frames, *HW, generator=g)
    t = torch.cat([torch.zeros(1, conds), torch.full((1, frames - conds), 500.0)], dim=1)
    return x, t, torch.randn(1, 4, 16, generator=g)


def test_slot_hint_stacks_the_garment_frames_and_pads_missing_slots():
    conds = torch.arange(3 * C * 16, dtype=torch.float32).view(1, C, 3, *HW)  # reference, upper, lower
    two = slot_hint(2, conds, first_garment=1)
    assert two.shape == (1, 2 * C, 1, *HW)
    # channel c of slot m at c * slots + m (the layout trained weights expect)
    assert torch.equal(two[:, 0::2, 0], conds[:, :, 1]) and torch.equal(two[:, 1::2, 0], conds[:, :, 2])
    one = slot_hint(2, conds[:, :, :2], first_garment=1)  # one outfit: the second slot is empty
    assert torch.equal(one[:, 0::2, 0], conds[:, :, 1]) and not one[:, 1::2].any()
    assert slot_hint(0, conds, 1) is None  # a model without the input (every Wan preset)
    with pytest.raises(ValueError, match="at most 1"):
        slot_hint(1, conds, first_garment=1)
    laid = frame_hint(two, [(3, False), (4, True)])
    assert laid.shape == (1, 2 * C, 7, *HW) and not laid[:, :, :3].any()
    assert all(torch.equal(laid[:, :, k], two[:, :, 0]) for k in range(3, 7))
    assert frame_hint(None, [(1, True)]) is None
    assert torch.equal(clip_hint(2, conds, 1, 4), laid)  # conditions, then 4 video frames
    assert torch.equal(clip_hint(2, conds, 1, 4, copies=2), torch.cat([laid, laid], dim=2))  # teacher forcing
    assert clip_hint(0, conds, 1, 4) is None


def test_a_grown_model_computes_what_the_file_computed_until_the_hint_is_trained():
    g = torch.Generator().manual_seed(0)
    plain = randomize(WanDiT(MICRO)).eval()
    grown = load_dit_state(WanDiT(HINTED).eval(), plain.state_dict())  # an older file: no garment_embedding
    x, t, text = _inputs(g)
    hint = frame_hint(slot_hint(2, x[:, :, :2], 1), [(2, False), (3, True)])
    with torch.no_grad():
        before = plain(x, t, text, list(range(5)))
        assert torch.equal(grown(x, t, text, list(range(5)), hint=hint), before)
        grown.garment_embedding.weight.normal_(generator=g)
        after = grown(x, t, text, list(range(5)), hint=hint)
        zero = grown(x, t, text, list(range(5)), hint=torch.zeros_like(hint))
    assert (after - before).abs().mean() > 1e-2  # the trained input changes the video
    assert torch.equal(zero, before)  # no bias: a zero hint (a null garment) adds nothing
    with pytest.raises(ValueError, match="no garment hint input"):
        plain(x, t, text, list(range(5)), hint=hint)
    with pytest.raises(ValueError, match="garment hint must be"):
        grown(x, t, text, list(range(5)), hint=hint[:, :C])  # one slot's channels for a two-slot model


def test_files_record_the_hint_in_their_shapes(tmp_path):
    model = randomize(WanDiT(HINTED))
    assert infer_config(model.state_dict()).garment_hint == 2
    assert infer_config(WanDiT(MICRO).state_dict()).garment_hint == 0
    assert sum(p.numel() for p in model.parameters()) == HINTED.num_parameters()
    path = save_checkpoint(tmp_path / "teacher.safetensors", model.state_dict(), "teacher", HINTED)
    loaded = build_dit(path)
    assert loaded.cfg.garment_hint == 2 and torch.equal(loaded.garment_embedding.weight,
                                                        model.garment_embedding.weight)
    with pytest.raises(ConfigError, match="garment_hint"):
        MICRO.replace(garment_hint=-1)


def test_a_streamed_chunk_with_the_hint_equals_the_full_forward():
    """The streaming path (condition pass, cached history, current chunk) sees the hint as teacher forcing does."""
    model = randomize(WanDiT(HINTED)).eval()
    g = torch.Generator().manual_seed(3)
    conds, history, current = (torch.randn(1, C, k, *HW, generator=g) for k in (3, 6, 3))
    text = model.text_kv(torch.randn(1, 4, 16, generator=g))
    hint = slot_hint(2, conds, first_garment=1)
    layout = CacheLayout(reference_views=1, garment_slots=("upper", "lower"), sink_frames=3, window_frames=18)
    cache = KVCache(layout, 2, 2, 16, tokens_per_frame=4, rope="absolute", chunk_frames=3)
    with torch.no_grad():
        items = cache.condition_items()
        condition_pass(model, cache, text, {item: conds[:, :, i:i + 1] for i, item in enumerate(items)})
        for j in range(2):
            plan = cache.plan_chunk(3)
            model(history[:, :, 3 * j:3 * j + 3], torch.zeros(1, 3), text, plan.positions, CacheAttention(cache, plan),
                  hint=hint)
            cache.commit(plan)
        plan = cache.plan_chunk(3)
        streamed = model(current, torch.full((1, 3), 600.0), text, plan.positions, CacheAttention(cache, plan),
                         hint=hint)
        mask = block_causal_mask(3, 9, 3, sink_frames=3, window_frames=18)
        t = torch.cat([torch.zeros(1, 9), torch.full((1, 3), 600.0)], dim=1)
        full = model(torch.cat([conds, history, current], dim=2), t, text, list(range(12)),
                     FullSequence(mask, tokens_per_frame=4), hint=frame_hint(hint, [(3, False), (9, True)]))
        unhinted = model(current, torch.full((1, 3), 600.0), text, plan.positions, CacheAttention(cache, plan))
    assert (streamed - full[:, :, -3:]).abs().max().item() <= 1e-4
    assert (streamed - unhinted).abs().max().item() > 1e-3  # the hint is not a no-op here


STAGE = dict(model=dict(dim=32, ffn_dim=64, num_heads=2, num_layers=2, in_dim=4, out_dim=4, text_dim=16, text_len=4,
                        freq_dim=32, garment_hint=1), text=dict(text_dim=16, text_len=4, width=16, layers=1, heads=2),
             lr=1e-2, text_dropout=0.0)


def _batch(step: int) -> LatentBatch:
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 4, 6, 4, 4, generator=g)
    return LatentBatch(video, video[:, :, :1] + 0.1, torch.randn(2, 4, 1, 4, 4, generator=g), ["a", "b"])


def test_the_teacher_trains_the_hint_and_garment_dropout_drops_it():
    torch.manual_seed(0)
    stage = TeacherStage(DiffusionStageConfig(**STAGE, garment_dropout=0.5), _batch)
    with torch.no_grad():  # a trained model (a fresh one's zero head passes no gradient back), the hint not yet
        randomize(stage.model).garment_embedding.weight.zero_()
    hints = []
    stage.model.register_forward_pre_hook(lambda m, args, kw: hints.append(kw["hint"].clone()), with_kwargs=True)
    stage.train_step(1)
    assert stage.model.garment_embedding.weight.abs().sum() > 0  # moved by the first step
    for s in range(1, 12):
        stage.loss(_batch(0), generator_for(3, s))
    h = torch.stack(hints)  # [steps, B, C, 2 conditions + F, h, w]
    assert not h[:, :, :, :2].any()  # the condition frames (reference, garment) get no hint
    dropped = h[:, :, :, 2:].flatten(2).eq(0).all(-1)  # [steps, B]
    assert 0 < dropped.float().mean() < 1  # null garments drop the hint with the garment frame
    garments = _batch(0).garments[:, :, 0][None].expand(len(h), -1, -1, -1, -1)  # [steps, B, C, h, w]
    assert all(torch.equal(h[:, :, :, k][~dropped], garments[~dropped]) for k in range(2, 8))


def test_a_state_saved_before_the_hint_resumes_into_a_hinted_stage(tmp_path):
    torch.manual_seed(0)
    plain_cfg = DiffusionStageConfig(**{**STAGE, "model": {**STAGE["model"], "garment_hint": 0}}, ema_decay=0.99)
    plain = TeacherStage(plain_cfg, _batch)
    run_stage(plain, RunConfig(steps=2, save_every=1000), tmp_path, plain.cfg)
    grown = TeacherStage(DiffusionStageConfig(**STAGE, ema_decay=0.99), _batch)
    run_stage(grown, RunConfig(steps=2, save_every=1000), tmp_path, grown.cfg)  # loads, nothing left to train
    with torch.no_grad():
        a, b = (stage.loss(_batch(0), generator_for(5, 0)) for stage in (plain, grown))
    assert torch.allclose(a, b)  # the resumed weights, the hint still at its zeros
    assert not grown.model.garment_embedding.weight.any() and not grown.ema.shadow.garment_embedding.weight.any()


def test_the_stream_gives_every_chunk_its_current_garments_hint(micro_codec, micro_text, monkeypatch):
    from fashionchameleon.runtime.config import StreamConfig
    from fashionchameleon.runtime.stream import session as session_mod

    model = randomize(WanDiT(MICRO.replace(garment_hint=2))).eval()
    seen = []
    chunk = session_mod.denoise_chunk
    monkeypatch.setattr(session_mod, "denoise_chunk", lambda *a, **kw: seen.append(kw["hint"]) or chunk(*a, **kw))
    g = torch.Generator().manual_seed(0)
    image = lambda: torch.rand(3, 16, 16, generator=g) * 2 - 1  # noqa: E731
    s = session_mod.StreamSession(model, micro_codec, micro_text, image()[None], {"upper": image(), "lower": image()},
                                  "a person walks", config=StreamConfig(sink_frames=3, window_frames=6))
    s.step()
    s.request_switch("lower", image())
    s.step()
    now = s.garment_latents  # slot -> latent [1, C, 1, h, w]
    assert seen[0].shape == (1, 2 * C, 1, *HW)
    assert torch.equal(seen[1], slot_hint(2, torch.cat([now["upper"], now["lower"]], dim=2), 0))
    # the switched slot's new latent, the other slot's as it was
    assert torch.equal(seen[0][:, 0::2], seen[1][:, 0::2]) and not torch.equal(seen[0][:, 1::2], seen[1][:, 1::2])


def test_grown_lr_moves_the_grown_input_at_its_own_rate():
    def first_step(grown_lr: float) -> tuple[TeacherStage, float, float]:
        torch.manual_seed(0)
        stage = TeacherStage(DiffusionStageConfig(**STAGE, grown_lr=grown_lr), _batch)
        with torch.no_grad():
            randomize(stage.model).garment_embedding.weight.zero_()
        before = {k: p.detach().clone() for k, p in stage.model.named_parameters()}
        stage.train_step(1)
        moved = {k: (p.detach() - before[k]).abs().max().item() for k, p in stage.model.named_parameters()}
        return stage, moved["garment_embedding.weight"], moved["patch_embedding.weight"]

    full, hint_full, rest_full = first_step(1.0)
    slow, hint_slow, rest_slow = first_step(0.1)
    assert len(full.opt.param_groups) == 1 and len(slow.opt.param_groups) == 2
    assert hint_full > 0 and hint_slow == pytest.approx(0.1 * hint_full, rel=1e-3)  # Adam's first step: lr-sized
    assert rest_slow == pytest.approx(rest_full)  # the rest of the model trains as before
    with pytest.raises(ValueError, match="grown_lr"):
        DiffusionStageConfig(**STAGE, grown_lr=0)
