"""GR-DMD's background term: where it looks, what it costs, its pull, and its wiring."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.lab.train.background_term import away_from_person, background_loss
from fashionchameleon.lab.train.batch import LatentBatch
from fashionchameleon.lab.train.dmd_stage import DMDStage, DMDStageConfig

from conftest import MICRO_FIELDS, MICRO_TEXT


def _hull(b: int = 2, size: int = 16) -> torch.Tensor:
    """`[B, 1, size, size]` a person hull: a 4 x 2 block at rows 6-9, columns 7-8."""
    hull = torch.zeros(b, 1, size, size)
    hull[:, :, 6:10, 7:9] = 1.0
    return hull


def test_away_is_everything_more_than_px_from_the_hull():
    away = away_from_person(_hull(), 2)
    assert away.dtype == torch.bool and away.shape == (2, 1, 16, 16)
    assert not away[0, 0, 4:12, 5:11].any()  # the hull grown by 2 px each way: 8 x 6
    assert away[0, 0].sum() == 256 - 48
    assert away_from_person(_hull(), 0)[0, 0].sum() == 256 - 8  # px 0: only the hull itself is near
    with pytest.raises(ValueError, match="px must be >= 0"):
        away_from_person(_hull(), -1)


def test_only_a_blotch_away_from_the_person_costs_and_its_share_is_reported():
    target = torch.zeros(2, 3, 16, 16)
    away = away_from_person(_hull(), 2)
    clean = target[:, :, None].repeat(1, 1, 4, 1, 1)  # [B, 3, T, H, W]
    assert background_loss(clean, target, away)[0] == 0
    near = clean.clone()
    near[:, :, :, 5:11, 6:10] = 0.8  # painted on and beside the figure, within 2 px
    assert background_loss(near, target, away)[0] == 0
    blotch = clean.clone()
    blotch[:, :, :, 0:4, 0:4] = 0.8  # 16 away pixels in every frame
    loss, share = background_loss(blotch, target, away)
    assert torch.allclose(loss, torch.tensor(0.64 * 16 / (256 - 48)))
    assert torch.allclose(share, torch.full((2,), 16 / (256 - 48)))


def test_a_gradient_step_on_the_term_fades_the_blotch_and_leaves_the_figure():
    target = torch.zeros(1, 3, 16, 16)
    clip = torch.zeros(1, 3, 2, 16, 16)
    clip[:, :, :, 0:4, 0:4] = 0.8
    clip[:, :, :, 6:10, 7:9] = 0.5  # the figure
    clip.requires_grad_(True)
    loss, _ = background_loss(clip, target, away_from_person(_hull(1), 2))
    loss.backward()
    stepped = clip.detach() - 10.0 * clip.grad
    assert stepped[:, :, :, 0:4, 0:4].abs().max() < 0.8
    assert torch.equal(stepped[:, :, :, 6:10, 7:9], clip.detach()[:, :, :, 6:10, 7:9])


def _batch(step: int, hull: bool = True) -> LatentBatch:
    g = torch.Generator().manual_seed(step)
    return LatentBatch(torch.randn(2, 4, 6, 4, 4, generator=g), torch.randn(2, 4, 1, 4, 4, generator=g),
                       torch.randn(2, 4, 1, 4, 4, generator=g), ["a person walks", "a person waves"],
                       person_hull=_hull() if hull else None)


def test_the_stage_adds_the_term_on_generator_steps_only_through_the_frozen_decoder(micro_codec):
    kw = dict(model=MICRO_FIELDS, text=MICRO_TEXT, num_chunks=2, reweight=False, update_ratio=5, gen_lr=1e-3)
    torch.manual_seed(0)
    on = DMDStage(DMDStageConfig(**kw, background=1.0), _batch, codec=micro_codec)
    torch.manual_seed(0)
    off = DMDStage(DMDStageConfig(**kw), _batch, codec=micro_codec)
    metrics = on.train_step(5)
    assert {"background", "background_off"} <= metrics.keys() and metrics["background"] > 0
    assert 0 <= metrics["background_off"] <= 1
    assert "background" not in off.train_step(5)
    # same weights, same step, same draws: only the term's gradient tells the two updates apart
    assert any(not torch.equal(a, b) for a, b in zip(on.generator.parameters(), off.generator.parameters()))
    assert all(p.grad is None for p in micro_codec.parameters())  # the decoder only passes the gradient on
    assert "background" not in on.train_step(6)  # a critic-only step


def test_the_term_names_what_it_is_missing(micro_codec):
    kw = dict(model=MICRO_FIELDS, text=MICRO_TEXT, num_chunks=2, reweight=False, update_ratio=1, background=1.0)
    with pytest.raises(ValueError, match="background needs the stage's codec"):
        DMDStage(DMDStageConfig(**kw), _batch)
    stage = DMDStage(DMDStageConfig(**kw), lambda step: _batch(step, hull=False), codec=micro_codec)
    with pytest.raises(ValueError, match="background needs the batch's person_hull"):
        stage.train_step(1)
    with pytest.raises(ValueError, match="background must be >= 0"):
        DMDStageConfig(background=-1.0)
    with pytest.raises(ValueError, match="background_px must be >= 0"):
        DMDStageConfig(background_px=-1)
