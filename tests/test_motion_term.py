"""GR-DMD's motion-matching term: the number it compares, its symmetry, its pull, and its wiring."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.lab.train.batch import LatentBatch
from fashionchameleon.lab.train.dmd_stage import DMDStage, DMDStageConfig
from fashionchameleon.lab.train.motion_term import latent_motion, motion_loss

from conftest import MICRO_FIELDS, MICRO_TEXT


def _moving(b: int = 2, frames: int = 6, speed: float = 1.0) -> torch.Tensor:
    """`[B, 4, F, 4, 4]` latents whose frames drift by `speed` per frame on a fixed random pattern."""
    g = torch.Generator().manual_seed(0)
    base, step = torch.randn(b, 4, 1, 4, 4, generator=g), torch.randn(b, 4, 1, 4, 4, generator=g)
    return base + speed * step * torch.arange(frames).view(1, 1, frames, 1, 1)


def test_latent_motion_is_zero_for_a_frozen_clip_and_scales_with_speed():
    still = _moving(speed=0.0)
    assert torch.allclose(latent_motion(still), torch.full((2,), 1e-4))
    assert torch.allclose(latent_motion(_moving(speed=3.0)) / latent_motion(_moving(speed=1.0)),
                          torch.full((2,), 3.0), rtol=1e-3)
    with pytest.raises(ValueError, match="2 latent frames"):
        latent_motion(still[:, :, :1])


def test_too_little_and_too_much_motion_cost_the_same_and_matching_costs_nothing():
    real = _moving(speed=1.0)
    slow, fast = motion_loss(_moving(speed=0.1), real), motion_loss(_moving(speed=10.0), real)
    assert torch.allclose(slow[1], torch.full((2,), 0.1), rtol=1e-2)
    assert torch.allclose(fast[1], torch.full((2,), 10.0), rtol=1e-2)
    assert abs(slow[0].item() - fast[0].item()) < 0.01 * fast[0].item() and fast[0] > 5.0  # log(10)^2 = 5.3
    assert motion_loss(real, real)[0].item() < 1e-8


def test_a_gradient_step_on_the_term_makes_a_nearly_frozen_clip_move_and_a_restless_one_calm_down():
    real = _moving(speed=1.0)
    for speed, moves_more in ((0.05, True), (5.0, False)):
        clip = (_moving(speed=speed) + 0.01 * torch.randn(2, 4, 6, 4, 4)).requires_grad_(True)
        loss, _ = motion_loss(clip, real)
        loss.backward()
        stepped = clip.detach() - 0.01 * clip.grad / clip.grad.abs().mean()
        before, after = latent_motion(clip.detach()), latent_motion(stepped)
        assert ((after > before) if moves_more else (after < before)).all()


def _batch(step: int) -> LatentBatch:
    g = torch.Generator().manual_seed(step)
    return LatentBatch(_moving(frames=6), torch.randn(2, 4, 1, 4, 4, generator=g),
                       torch.randn(2, 4, 1, 4, 4, generator=g), ["a person walks", "a person waves"])


def test_the_stage_adds_the_term_on_generator_steps_only_when_asked():
    kw = dict(model=MICRO_FIELDS, text=MICRO_TEXT, num_chunks=2, reweight=False, update_ratio=5, gen_lr=1e-3)
    torch.manual_seed(0)
    on = DMDStage(DMDStageConfig(**kw, motion=0.1), _batch)
    torch.manual_seed(0)
    off = DMDStage(DMDStageConfig(**kw), _batch)
    metrics = on.train_step(5)
    assert {"motion", "motion_ratio"} <= metrics.keys() and metrics["motion"] > 0 and metrics["motion_ratio"] > 0
    assert "motion" not in off.train_step(5)
    # same weights, same step, same draws: only the term's gradient tells the two updates apart
    assert any(not torch.equal(a, b) for a, b in zip(on.generator.parameters(), off.generator.parameters()))
    assert "motion" not in on.train_step(6)  # a critic-only step
    with pytest.raises(ValueError, match="motion must be >= 0"):
        DMDStageConfig(motion=-1.0)


def test_a_region_measures_the_motion_of_its_cells_alone():
    """Two arms' worth of cells move and the rest holds still: over the whole frame the clip looks nearly
    frozen, over the region it moves as fast as its cells do."""
    still = _moving(speed=0.0)
    arms = torch.zeros(2, 1, 1, 4, 4)
    arms[..., 1, 0] = arms[..., 1, 3] = 1.0  # 2 of 16 cells
    clip = still + arms * 0.5 * torch.arange(6).view(1, 1, 6, 1, 1)  # the arm cells drift by 0.5 a frame
    whole, region = latent_motion(clip), latent_motion(clip, arms)
    assert torch.allclose(region, torch.full((2,), 0.5 + 1e-4), atol=1e-5)
    assert torch.allclose(whole, torch.full((2,), 0.5 * 2 / 16 + 1e-4), atol=1e-5)
    # a rollout whose arms freeze costs a lot on the region, little over the frame
    frozen_arms, _ = motion_loss(still + 0.01 * arms, clip, arms)
    assert frozen_arms > 4 * motion_loss(still + 0.01 * arms + 0.05 * torch.randn_like(still), clip)[0]


def test_the_stage_reads_the_region_from_the_batch_and_names_a_missing_one():
    kw = dict(model=MICRO_FIELDS, text=MICRO_TEXT, num_chunks=2, reweight=False, update_ratio=1, motion=0.1)
    skin = torch.zeros(2, 1, 6, 4, 4)
    skin[:, :, :3, 0, 0] = 1.0  # covered in half the frames

    def with_skin(step: int) -> LatentBatch:
        batch = _batch(step)
        batch.regions = {"skin": skin}
        return batch

    cells = DMDStage(DMDStageConfig(**kw, motion_region="skin"), with_skin).motion_cells(with_skin(0))
    assert cells.shape == (2, 1, 1, 4, 4) and cells[0, 0, 0, 0, 0] == 0.5 and cells.sum() == 1.0
    assert "motion" in DMDStage(DMDStageConfig(**kw, motion_region="skin"), with_skin).train_step(1)
    with pytest.raises(ValueError, match="motion_region 'skin' needs the batch's skin mask"):
        DMDStage(DMDStageConfig(**kw, motion_region="skin"), _batch).train_step(1)
    with pytest.raises(ValueError, match="motion_region 'skin' is read only by the motion term"):
        DMDStageConfig(**{**kw, "motion": 0.0}, motion_region="skin")
