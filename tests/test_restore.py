"""The teacher's restoration objective: a clip with a region's texture averaged away (`flatten.py`) is the
noised input, the true clip stays the target (`DiffusionStageConfig.restore_prob`, `DataConfig.flatten_regions`)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from conftest import randomize
from fashionchameleon.lab.train.batch import LatentBatch
from fashionchameleon.lab.train.data import DataConfig, clip_batches
from fashionchameleon.lab.train.dit_stage import DiffusionStageConfig
from fashionchameleon.lab.train.flatten import flatten_inside, region_mask
from fashionchameleon.lab.train.teacher_stage import TeacherStage
from fashionchameleon.runtime.stream.seeding import generator_for

STAGE = dict(model=dict(dim=32, ffn_dim=64, num_heads=2, num_layers=2, in_dim=4, out_dim=4, text_dim=16, text_len=4,
                        freq_dim=32), text=dict(text_dim=16, text_len=4, width=16, layers=1, heads=2),
             lr=1e-2, text_dropout=0.0)


def _striped_clip():
    video = torch.full((2, 3, 24, 24), -1.0)  # a black background
    video[:, 0, 4:20, 4:20] = torch.tensor([1.0, -1.0]).repeat(8)[None, :, None]  # red stripes, period 2 px
    mask = torch.zeros(2, 24, 24)
    mask[:, 4:20, 4:20] = 1.0
    return video, mask


def test_flatten_averages_the_texture_inside_the_mask_only():
    video, mask = _striped_clip()
    flat = flatten_inside(video, mask, 5)
    inside = mask.bool()[:, None].expand_as(video)
    assert torch.equal(flat[~inside], video[~inside])  # outside the mask nothing moves
    red = flat[:, 0][mask.bool()]
    assert video[:, 0][mask.bool()].std() > 0.9 and red.std() < 0.25  # the stripes are gone
    # the box averages only the masked pixels, so the black background does not darken the edge
    assert abs(float(flat[0, 0, 4, 4]) - float(video[:, 0][mask.bool()].mean())) < 0.35
    assert torch.equal(flat[:, 1:][inside[:, 1:]], video[:, 1:][inside[:, 1:]])  # a flat channel stays flat
    with pytest.raises(ValueError, match="odd"):
        flatten_inside(video, mask, 4)


def test_region_mask_is_the_union_of_the_masks_a_clip_has_and_refuses_a_clip_without_them():
    a, b = torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)
    a[0, 0, 0], b[0, 1, 1] = 1, 1
    assert region_mask({"upper": a, "lower": b}, ("upper", "lower", "full")).sum() == 2
    with pytest.raises(ValueError, match=r"\['upper', 'full'\] name no mask.*\['head'\]"):
        region_mask({"head": a}, ("upper", "full"))


def _codec():
    return SimpleNamespace(spatial_factor=4, temporal_factor=4, causal_first_frame=True,
                           latent_frames=lambda t: 1 + (t - 1) // 4,
                           encode_video=lambda v: v[:, :, ::4, ::4, ::4].repeat(1, 2, 1, 1, 1)[:, :4].clone(),
                           encode_image=lambda x: x[:, :, None, ::4, ::4].repeat(1, 2, 1, 1, 1)[:, :4].clone())


def test_world_batches_carry_the_flattened_clips_when_asked():
    cfg = dict(source="world", framing="fashion", height=144, width=112, frames=5, batch_size=2, seed=1)
    plain = clip_batches(DataConfig(**cfg)).latents(0, _codec())
    assert plain.flat_video is None
    batch = clip_batches(DataConfig(**cfg, flatten_regions=["upper", "lower", "full"], flatten_px=9)).latents(0, _codec())
    assert torch.equal(batch.video, plain.video) and batch.flat_video.shape == batch.video.shape
    changed = (batch.flat_video != batch.video).any(1, keepdim=True)  # [B, 1, F, h, w]
    garment = sum(batch.regions[k] for k in ("upper", "lower", "full") if k in batch.regions)
    assert changed.any() and bool((garment[changed] > 0).all())  # only garment cells change
    with pytest.raises(ValueError, match="flatten_px"):
        DataConfig(**cfg, flatten_px=10)


def _batch(step: int) -> LatentBatch:
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 4, 6, 4, 4, generator=g)
    return LatentBatch(video, video[:, :, :1] + 0.1, torch.randn(2, 4, 1, 4, 4, generator=g), ["a", "b"],
                       flat_video=torch.zeros_like(video))


def _inputs_and_loss(stage: TeacherStage, step: int):
    seen = []
    hook = stage.model.register_forward_pre_hook(lambda m, args, kw: seen.append(args[0][:, :, 2:].clone()),
                                                 with_kwargs=True)
    loss = stage.loss(_batch(0), generator_for(3, step))
    hook.remove()
    return seen[0], loss


def test_restoration_noises_the_flattened_clip_and_aims_at_the_true_one():
    torch.manual_seed(0)
    plain = TeacherStage(DiffusionStageConfig(**STAGE), _batch)
    restore = TeacherStage(DiffusionStageConfig(**STAGE, restore_prob=1.0, restore_sigmas=(0.01, 1.0)), _batch)
    randomize(plain.model)
    restore.model.load_state_dict(plain.model.state_dict())
    restore.text.load_state_dict(plain.text.state_dict())
    x_plain, loss_plain = _inputs_and_loss(plain, 5)
    x_restore, loss_restore = _inputs_and_loss(restore, 5)
    # the same t and noise, from the true clip and from the flattened one (zeros here): x_t differs by (1 - sigma) x0
    delta = x_plain - x_restore
    video = _batch(0).video
    ratio = (delta / video).flatten(1)  # (1 - sigma) per clip
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-4) and bool((ratio > 0).all())
    assert not torch.isclose(loss_plain, loss_restore)
    # the target: a model that predicts the velocity from its input back to the true clip has zero loss
    # (with the plain target, noise - x0, that model would be off by x0 (1 / sigma - 1))
    def perfect(module, args, kw, output):
        x_t, ts = args[0][:, :, 2:], args[1][:, 2:]
        sigma = (ts / 1000.0)[:, None, :, None, None]
        v = (x_t - video) / sigma
        return torch.cat([output[:, :, :2], v.to(output.dtype)], dim=2)

    restore.model.register_forward_hook(perfect, with_kwargs=True)
    assert restore.loss(_batch(0), generator_for(3, 5)).item() < 1e-8


def test_restoration_needs_flattened_clips_and_a_valid_range():
    stage = TeacherStage(DiffusionStageConfig(**STAGE, restore_prob=1.0, restore_sigmas=(0.01, 1.0)), _batch)
    no_flat = _batch(0)
    no_flat.flat_video = None
    with pytest.raises(ValueError, match="flatten_regions"):
        stage.loss(no_flat, generator_for(3, 1))
    for bad in ((0.0, 0.5), (0.8, 0.3), (0.3, 1.5)):
        with pytest.raises(ValueError, match="restore_sigmas"):
            DiffusionStageConfig(restore_sigmas=bad)
    with pytest.raises(ValueError, match="restore_prob"):
        DiffusionStageConfig(restore_prob=1.5)
