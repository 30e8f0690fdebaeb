"""GR-DMD's adversarial term: the critic's features, the head's updates, the generator's gradient, resumes."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import MICRO, MICRO_FIELDS, MICRO_TEXT

from fashionchameleon.lab.train.batch import LatentBatch
from fashionchameleon.lab.train.dmd_stage import DMDStage, DMDStageConfig
from fashionchameleon.lab.train.state import load_state, save_state
from fashionchameleon.runtime.dit.model import WanDiT


def _batch(step: int) -> LatentBatch:
    g = torch.Generator().manual_seed(0)
    video = torch.zeros(2, 4, 6, 4, 4)
    video[:, :, :, ::2] = 2.0  # real clips are striped: something a head can tell from a rollout
    return LatentBatch(video, torch.randn(2, 4, 1, 4, 4, generator=g), torch.randn(2, 4, 1, 4, 4, generator=g),
                       ["a person walks", "a person waves"])


def _stage(**kw) -> DMDStage:
    torch.manual_seed(0)
    return DMDStage(DMDStageConfig(model=MICRO_FIELDS, text=MICRO_TEXT, num_chunks=2, reweight=False, **kw), _batch)


def test_features_are_the_tokens_after_the_block_and_skip_the_rest():
    torch.manual_seed(0)
    model = WanDiT(MICRO)
    x, t = torch.randn(1, 4, 3, 4, 4), torch.rand(1, 3) * 1000
    text = torch.randn(1, 4, 16)
    seen = []
    handle = model.blocks[0].register_forward_hook(lambda _m, _i, out: seen.append(out))
    model(x, t, text, [0, 1, 2])
    handle.remove()
    calls = []
    handle = model.blocks[1].register_forward_hook(lambda *_: calls.append(1))
    feats = model.features(x, t, text, [0, 1, 2], layer=0)
    handle.remove()
    assert feats.shape == (1, 3, 4, 32) and torch.allclose(feats, seen[0], atol=1e-6) and not calls
    with pytest.raises(ValueError, match="layer must be in"):
        model.features(x, t, text, [0, 1, 2], layer=2)


def test_config_and_stage_refuse_bad_adversarial_settings():
    with pytest.raises(ValueError, match="gan must be >= 0"):
        DMDStageConfig(gan=-1.0)
    with pytest.raises(ValueError, match="gan_layer must be in"):
        _stage(gan=1.0, gan_layer=2)
    plain = _stage()
    assert plain.head is None and "discriminator" not in plain.modules() and "discriminator" not in plain.optimizers()


def test_the_head_learns_real_from_rollout_without_moving_the_critic():
    stage = _stage(gan=1.0, gan_layer=1, gan_lr=3e-3)
    batch, g = _batch(0), torch.Generator().manual_seed(1)
    text = stage.generator.text_kv(stage.text.encode(batch.prompts))
    with torch.no_grad():
        video = stage.rollout(batch, text, exit_step=3, g=g, grad=False)
    critic0 = [p.clone() for p in stage.critic.parameters()]
    prompt = stage.text.encode(batch.prompts)
    first = stage.discriminator_step(video, batch, prompt, g)
    assert abs(float(first["disc"]) - 2 * math.log(2)) < 0.3  # an untrained head: about chance
    for _ in range(60):
        last = stage.discriminator_step(video, batch, prompt, g)
    assert float(last["disc"]) < 0.5 * float(first["disc"]) and float(last["d_real"]) > float(last["d_fake"])
    assert all(torch.equal(a, b) for a, b in zip(critic0, stage.critic.parameters()))
    assert all(p.grad is None for p in stage.critic.parameters())
    assert all(p.requires_grad for p in stage.critic.parameters())  # unfrozen again afterwards


def test_the_adversarial_term_reaches_the_generator_through_the_frozen_critic():
    stage = _stage(gan=1.0, gan_layer=0)
    batch = _batch(0)
    text = stage.generator.text_kv(stage.text.encode(batch.prompts))
    video = stage.rollout(batch, text, exit_step=1, g=torch.Generator().manual_seed(2), grad=True)
    loss = stage.adversarial_loss(video, batch, stage.text.encode(batch.prompts), torch.Generator().manual_seed(3))
    loss.backward()
    assert stage.generator.head.head.weight.grad.abs().sum() > 0  # (a fresh model's output head starts at zero)
    assert all(p.grad is None for p in stage.critic.parameters()) and all(p.grad is None for p in stage.head.parameters())


def test_a_generator_step_with_the_term_differs_from_plain_dmd_and_logs_it():
    plain, adv = _stage(gen_lr=1e-3), _stage(gen_lr=1e-3, gan=1.0, gan_layer=1)
    plain_row, adv_row = plain.train_step(5), adv.train_step(5)  # generator steps, the same draws
    assert "adv" in adv_row and "disc" in adv_row and "adv" not in plain_row
    assert torch.equal(plain_row["dmd"], adv_row["dmd"])
    assert any(not torch.equal(a, b) for a, b in zip(plain.generator.parameters(), adv.generator.parameters()))


def test_a_plain_state_resumes_with_a_fresh_head(tmp_path):
    plain = _stage()
    path = save_state(tmp_path / "state.safetensors", 7, plain.modules(), plain.optimizers(), {})
    adv = _stage(gan=1.0, gan_layer=1)
    step, extra = load_state(path, adv.modules(), adv.optimizers())
    assert step == 7 and extra.get("optimizer_reset", True)
    assert all(torch.equal(a, b) for a, b in zip(plain.generator.parameters(), adv.generator.parameters()))
    saved = save_state(tmp_path / "again.safetensors", 8, adv.modules(), adv.optimizers(), {})
    again = _stage(gan=1.0, gan_layer=1)
    load_state(saved, again.modules(), again.optimizers())
    assert all(torch.equal(a, b) for a, b in zip(adv.head.parameters(), again.head.parameters()))
