"""GR-DMD: reweighting weights, the default reward, and a few micro DMD steps."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.lab.train.batch import LatentBatch
from fashionchameleon.lab.train.dmd_stage import DMDStage, DMDStageConfig
from fashionchameleon.lab.train.reward import GarmentFidelityReward, gr_weights
from fashionchameleon.lab.train.runner import RunConfig, read_log, run_stage

from conftest import MICRO_FIELDS as MICRO, MICRO_TEXT as TEXT


def test_equal_rewards_give_uniform_weights():
    w = gr_weights(torch.full((2, 4), 0.7), frames_per_chunk=3)
    assert w.shape == (2, 12) and torch.allclose(w, torch.full((2, 12), 1 / 12))


def test_weights_favour_the_worst_chunk():
    w = gr_weights(torch.tensor([[0.9, 0.2, 0.8]]), frames_per_chunk=3, tau=0.2)
    per_chunk = w.view(3, 3).sum(1)
    assert per_chunk.argmax().item() == 1 and abs(w.sum().item() - 1) < 1e-6
    assert per_chunk[1] > 0.9  # exp(-0.2/0.2) vs exp(-0.9/0.2): temperature 0.2 is sharp
    softer = gr_weights(torch.tensor([[0.9, 0.2, 0.8]]), frames_per_chunk=3, tau=2.0).view(3, 3).sum(1)
    assert softer[1] < per_chunk[1]


def test_default_reward_prefers_the_garment_colour_and_sharpness():
    ref = torch.zeros(1, 3, 16, 16) - 0.5  # a grey scene
    garment = torch.ones(1, 3, 16, 16)
    garment[:, :, 4:12, 4:12] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]  # a red garment on white
    good = ref[:, :, None].repeat(1, 1, 4, 1, 1)
    good[:, :, :, 4:12, 4:12] = torch.tensor([1.0, -1.0, -1.0])[:, None, None, None]
    bad = good.clone()
    bad[:, :, :, 4:12, 4:12] = torch.tensor([-1.0, -1.0, 1.0])[:, None, None, None]  # blue instead
    video = torch.cat([good, bad], dim=2)  # [1, 3, 8, 16, 16]: chunk 0 good, chunk 1 bad
    r = GarmentFidelityReward()(video, ref, garment, frames_per_chunk=4)
    assert r.shape == (1, 2) and 0 <= r.min() and r.max() <= 1 and r[0, 0] > r[0, 1] + 0.3


def _batch(step: int) -> LatentBatch:
    g = torch.Generator().manual_seed(0)
    return LatentBatch(torch.zeros(2, 4, 6, 4, 4), torch.randn(2, 4, 1, 4, 4, generator=g),
                       torch.randn(2, 4, 1, 4, 4, generator=g), ["a person walks", "a person waves"])


def test_dmd_steps_update_generator_every_fifth_step_and_train_the_critic(tmp_path):
    torch.manual_seed(0)
    cfg = DMDStageConfig(model=MICRO, text=TEXT, num_chunks=2, reweight=False, gen_lr=1e-3, critic_lr=3e-3,
                         update_ratio=5)
    stage = DMDStage(cfg, _batch)
    gen0 = [p.clone() for p in stage.generator.parameters()]
    stage.train_step(1)  # a critic-only step
    assert all(torch.equal(a, b) for a, b in zip(gen0, stage.generator.parameters()))
    stage.train_step(5)  # a generator step: the exit step's gradient reaches the generator
    assert any(not torch.equal(a, b) for a, b in zip(gen0, stage.generator.parameters()))
    run_stage(stage, RunConfig(steps=40, log_every=10, save_every=1000), tmp_path, cfg)
    rows = read_log(tmp_path)
    assert rows[-1]["critic"] < rows[0]["critic"]
    assert "dmd" in rows[0] and all(r["gen_step"] == 0.2 for r in rows)  # 1:5 ratio
    assert (tmp_path / "student.safetensors").exists()


def test_rollout_shapes_and_exit_step_gradient():
    torch.manual_seed(0)
    stage = DMDStage(DMDStageConfig(model=MICRO, text=TEXT, num_chunks=3, reweight=False), _batch)
    batch = _batch(0)
    text = stage.generator.text_kv(stage.text.encode(batch.prompts))
    video = stage.rollout(batch, text, exit_step=2, g=torch.Generator().manual_seed(1), grad=True)
    assert video.shape == (2, 4, 9, 4, 4) and video.requires_grad
    video.sum().backward()
    assert stage.generator.patch_embedding.weight.grad is not None


def test_long_rollout_streams_context_through_the_rolling_window_and_scores_the_newest_chunks(monkeypatch):
    """num_chunks 4, score_chunks 2: two context chunks fully denoised without gradient, then two scored
    chunks; each chunk sees the one-chunk sink and itself (chunk 1 is evicted before chunk 2 runs), at the
    same rolling positions, so the visible keys stay bounded; the export streams with the same layout."""
    torch.manual_seed(0)
    cfg = DMDStageConfig(model=MICRO, text=TEXT, num_chunks=4, score_chunks=2, reweight=False)
    stage = DMDStage(cfg, _batch)
    seen: list[tuple[bool, int, list[int]]] = []  # (grad enabled, visible key frames, positions) per video pass
    chunk = stage._chunk

    def spy(cache, text, shape, exit_step, g, grad, hint):
        seen.append((grad, exit_step))
        return chunk(cache, text, shape, exit_step, g, grad, hint)

    monkeypatch.setattr(stage, "_chunk", spy)
    plans = []
    from fashionchameleon.runtime.stream import cache as cache_mod
    original = cache_mod.KVCache.plan_chunk

    def record(self, frames):
        plan = original(self, frames)
        plans.append((int(plan.key_mask.sum()) // self.tokens_per_frame if plan.key_mask is not None
                      else plan.key_end, list(plan.positions)))
        return plan

    monkeypatch.setattr(cache_mod.KVCache, "plan_chunk", record)
    batch = _batch(0)
    text = stage.generator.text_kv(stage.text.encode(batch.prompts))
    video = stage.rollout(batch, text, exit_step=1, g=torch.Generator().manual_seed(1), grad=True)
    assert video.shape == (2, 4, 6, 4, 4) and video.requires_grad  # the 2 scored chunks only
    assert seen == [(False, 3), (False, 3), (True, 1), (True, 1)]  # context: all 4 steps, no gradient
    n_cond = 2
    visible = [v for v, _ in plans]
    assert visible[0] == n_cond + 3 and visible[-1] == visible[-2] == n_cond + 6  # sink + one chunk + itself
    assert plans[-1][1] == plans[-2][1] == [n_cond + 3, n_cond + 4, n_cond + 5]  # rolling RoPE: same positions
    trained = cfg.trained_stream
    assert (trained.sink_frames, trained.window_frames, trained.steps) == (3, 3, cfg.steps)
    with pytest.raises(ValueError, match="score_chunks"):
        DMDStageConfig(num_chunks=2, score_chunks=3)


def test_random_context_draws_the_context_length_per_step_and_fixed_keeps_the_longest():
    """Self-Forcing++'s random window: the scored chunks start anywhere from the stream's first chunk to
    the deepest the rollout reaches; without `random_context` every rollout streams all context chunks."""
    kw = dict(model=MICRO, text=TEXT, num_chunks=5, score_chunks=2, reweight=False)
    fixed = DMDStage(DMDStageConfig(**kw), _batch)
    drawn = DMDStage(DMDStageConfig(**kw, random_context=True), _batch)
    gens = [torch.Generator().manual_seed(s) for s in range(60)]
    assert {fixed.context_chunks(g) for g in gens} == {3}
    assert {drawn.context_chunks(g) for g in gens} == {0, 1, 2, 3}
    calls = []
    chunk = drawn._chunk
    drawn._chunk = lambda cache, text, shape, exit_step, g, grad, hint: calls.append(grad) or chunk(  # noqa: E731
        cache, text, shape, exit_step, g, grad, hint)
    batch = _batch(0)
    text = drawn.generator.text_kv(drawn.text.encode(batch.prompts))
    video = drawn.rollout(batch, text, exit_step=0, g=torch.Generator().manual_seed(1), grad=True, context=0)
    assert video.shape == (2, 4, 6, 4, 4) and calls == [True, True]  # the stream's first two chunks are scored


def _eviction_rollouts(stage: DMDStage, plain_cfg: DMDStageConfig, changed_cfg: DMDStageConfig):
    """Scored rollouts of `stage` under both configs: equal at context 0 (nothing evicted yet, asserted),
    then (plain, changed) at context 2, where chunk 2 is the first made after an eviction."""
    batch = _batch(0)
    text = stage.generator.text_kv(stage.text.encode(batch.prompts))

    def roll(cfg, context):
        stage.cfg = cfg
        return stage.rollout(batch, text, exit_step=3, g=torch.Generator().manual_seed(1), grad=True, context=context)

    assert torch.equal(roll(plain_cfg, 0), roll(changed_cfg, 0))
    return roll(plain_cfg, 2), roll(changed_cfg, 2)


def test_rollouts_can_apply_the_streams_patch_phase_guard_once_the_window_slides():
    """With `phase_norm` the rollout does what the stream does: chunks before the first eviction are the
    model's, the first chunk after it is the model's chunk normalised (gradient through it), and the
    exported student asks for the guard."""
    import dataclasses

    from fashionchameleon.runtime.stream.phase_norm import patch_phase_norm

    torch.manual_seed(0)
    plain_cfg = DMDStageConfig(model=MICRO, text=TEXT, num_chunks=4, score_chunks=2, reweight=False)
    guarded_cfg = dataclasses.replace(plain_cfg, phase_norm=True)
    plain, guarded = _eviction_rollouts(DMDStage(plain_cfg, _batch), plain_cfg, guarded_cfg)
    assert guarded.requires_grad
    torch.testing.assert_close(guarded[:, :, :3], patch_phase_norm(plain[:, :, :3].detach(), (2, 2)))
    assert not torch.allclose(guarded[:, :, :3], plain[:, :, :3], atol=1e-3)
    assert not torch.allclose(guarded[:, :, 3:], plain[:, :, 3:], atol=1e-3)  # its KV carried the guard on
    assert guarded_cfg.trained_stream.phase_norm and not plain_cfg.trained_stream.phase_norm


def test_rollouts_can_apply_the_streams_codec_reprojection_once_the_window_slides(micro_codec):
    """With `reproject` the rollout does what the stream does: chunks before the first eviction are the
    model's; the first chunk after it is the codec's round trip of the model's chunk, with the gradient
    passing straight through; the exported student asks for re-projection."""
    import dataclasses

    from fashionchameleon.runtime.stream.reproject import codec_round_trip

    torch.manual_seed(0)
    plain_cfg = DMDStageConfig(model=MICRO, text=TEXT, num_chunks=4, score_chunks=2, reweight=False)
    stage = DMDStage(plain_cfg, _batch, codec=micro_codec)
    projected_cfg = dataclasses.replace(plain_cfg, reproject=True)
    plain, projected = _eviction_rollouts(stage, plain_cfg, projected_cfg)
    torch.testing.assert_close(projected[:, :, :3], codec_round_trip(micro_codec, plain[:, :, :3].detach()))
    assert not torch.allclose(projected[:, :, :3], plain[:, :, :3], atol=1e-3)
    assert not torch.allclose(projected[:, :, 3:], plain[:, :, 3:], atol=1e-3)  # its KV held the round trip
    assert projected.requires_grad
    projected[:, :, :3].sum().backward()  # the re-projected chunk: straight through the round trip
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in stage.generator.parameters())
    assert projected_cfg.trained_stream.reproject and not plain_cfg.trained_stream.reproject
    with pytest.raises(ValueError, match="reproject needs the stage's codec"):
        DMDStage(projected_cfg, _batch)


def test_streaming_long_tuning_carries_a_stream_across_steps_and_restarts_it_at_its_depth():
    """With `carry_chunks` each step's scored chunks continue the previous step's stream (same batch, same
    cache, deeper in it) until the next step would pass `carry_chunks`; then a new batch starts a new
    stream. Off (0), every step draws its batch and starts over."""
    drawn = []

    def batches(step):
        drawn.append(step)
        return _batch(step)

    kw = dict(model=MICRO, text=TEXT, num_chunks=3, score_chunks=2, reweight=False, update_ratio=1)
    stage = DMDStage(DMDStageConfig(**kw, carry_chunks=7), batches)
    depths, caches = [], []
    for step in range(1, 6):
        stage.train_step(step)
        depths.append(stage.carried.chunks if stage.carried else None)
        caches.append(stage.carried.cache if stage.carried else None)
    # step 1: new stream, 1 context chunk (fixed context) + 2 scored = 3; step 2: 5; step 3: 7, and a fourth
    # step would pass 7
    assert depths == [3, 5, None, 3, 5] and drawn == [1, 4]
    assert caches[0] is caches[1] and caches[3] is not caches[0]
    plain = DMDStage(DMDStageConfig(**kw), batches)
    drawn.clear()
    for step in range(1, 4):
        plain.train_step(step)
        assert plain.carried is None
    assert drawn == [1, 2, 3]
    with pytest.raises(ValueError, match="carry_chunks"):
        DMDStageConfig(num_chunks=4, carry_chunks=2)


def test_carry_every_interleaves_new_streams_with_the_carried_one():
    """`carry_every=2`: odd steps roll out new streams from new batches and leave the carried stream
    alone; even steps continue it."""
    drawn = []

    def batches(step):
        drawn.append(step)
        return _batch(step)

    stage = DMDStage(DMDStageConfig(model=MICRO, text=TEXT, num_chunks=2, score_chunks=2, reweight=False,
                                    carry_chunks=8, carry_every=2), batches)
    depths = []
    for step in range(1, 8):
        stage.train_step(step)
        depths.append(stage.carried.chunks if stage.carried else None)
    assert depths == [None, 2, 2, 4, 4, 6, 6] and drawn == [1, 2, 3, 5, 7]
    with pytest.raises(ValueError, match="carry_every"):
        DMDStageConfig(carry_every=0)


@pytest.mark.parametrize("guide", ["text", "garment"])
def test_the_real_scores_unconditional_pass_drops_what_the_guide_says(guide):
    torch.manual_seed(0)
    stage = DMDStage(DMDStageConfig(model=MICRO, text=TEXT, num_chunks=2, reweight=False, guide=guide), _batch)
    batch = _batch(0)
    passes = []
    stage.teacher.register_forward_pre_hook(lambda m, args: passes.append((args[0][:, :, :2].clone(), args[2])))
    text_c = stage.teacher.text_kv(stage.text.encode(batch.prompts))
    text_u = stage.teacher.text_kv(stage.text.encode([""] * 2))
    stage.dmd_loss(torch.randn(2, 4, 6, 4, 4), batch, text_c, text_u, torch.Generator().manual_seed(1))
    (cond_in, cond_text), (uncond_in, uncond_text) = passes  # the real score's two teacher passes
    assert torch.equal(cond_in, batch.conditions) and cond_text is text_c
    assert torch.equal(uncond_in[:, :, :1], batch.references)  # the reference is always kept
    assert bool(uncond_in[:, :, 1:].eq(0).all()) == (guide == "garment")
    assert uncond_text is (text_c if guide == "garment" else text_u)


def test_dmd_refuses_an_unknown_guide():
    with pytest.raises(ValueError, match="guide"):
        DMDStageConfig(guide="reference")


def test_the_fake_score_reads_the_prompt_through_the_critics_own_projection():
    """The critic's flow-matching loss trains its own text projection, so the fake score must use that one,
    not the frozen teacher's (they start equal and drift apart as the critic learns)."""
    torch.manual_seed(0)
    stage = DMDStage(DMDStageConfig(model=MICRO, text=TEXT, num_chunks=2, reweight=False), _batch)
    with torch.no_grad():
        for blk in stage.critic.blocks:
            blk.cross_attn.k.weight.add_(0.5)  # the critic's projection has moved away from the teacher's
    seen = []
    stage.critic.register_forward_pre_hook(lambda m, args: seen.append(args[2]))
    stage.train_step(5)  # a generator step: the fake score's pass, then the critic's own loss
    own = stage.critic.text_kv(stage.text.encode(_batch(5).prompts))
    assert len(seen) == 2 and all(torch.allclose(text.k[0], own.k[0]) for text in seen)


def test_a_real_score_with_its_own_prompt_encoder_reads_the_prompt_through_it(tmp_path):
    """`real_text`: the real score (a teacher continued past the student's) reads the prompt through the
    encoder it was trained with, while the generator and critic keep `init_text`'s features."""
    from fashionchameleon.runtime.encoders.text import TinyPromptEncoder, TinyTextConfig
    from fashionchameleon.runtime.files.checkpoint import save_checkpoint

    def encoder(seed: int) -> str:
        torch.manual_seed(seed)
        enc = TinyPromptEncoder(TinyTextConfig.from_json(TEXT))
        return str(save_checkpoint(tmp_path / f"text{seed}.safetensors", enc.state_dict(), "text", enc.config))

    student_text, real_text = encoder(1), encoder(2)
    torch.manual_seed(0)
    stage = DMDStage(DMDStageConfig(model=MICRO, text=TEXT, num_chunks=2, reweight=False, guide="text",
                                    init_text=student_text, real_text=real_text), _batch)
    prompts = _batch(5).prompts
    real_c = stage.teacher.text_kv(stage.real_text.encode(prompts))
    real_u = stage.teacher.text_kv(stage.real_text.encode([""] * len(prompts)))
    own_c = stage.teacher.text_kv(stage.text.encode(prompts))
    assert not torch.allclose(real_c.k[0], own_c.k[0])  # the two encoders disagree: the test can tell them apart
    seen = []
    stage.teacher.register_forward_pre_hook(lambda m, args: seen.append(args[2]))
    stage.train_step(5)  # a generator step: the real score's conditional and unconditional passes
    assert len(seen) == 2
    assert torch.allclose(seen[0].k[0], real_c.k[0]) and torch.allclose(seen[1].k[0], real_u.k[0])
    plain = DMDStage(DMDStageConfig(model=MICRO, text=TEXT, num_chunks=2, reweight=False, init_text=student_text),
                     _batch)
    assert plain.real_text is plain.text  # without it, one encoder for all
