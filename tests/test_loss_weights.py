"""Foreground-weighted diffusion losses: the person's latent cells count more than the background."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from fashionchameleon.lab.train.batch import LatentBatch
from fashionchameleon.lab.train.data import latent_cover
from fashionchameleon.lab.train.dit_stage import DiffusionStageConfig, cell_weights, weighted_mean


def _codec(causal: bool):
    tf = 4
    frames = (lambda t: 1 + (t - 1) // tf) if causal else (lambda t: t // tf)
    return SimpleNamespace(spatial_factor=4, temporal_factor=tf, causal_first_frame=causal, latent_frames=frames)


def test_latent_cover_follows_the_codec_layout():
    masks = torch.zeros(1, 8, 8, 8, dtype=torch.bool)
    masks[0, 5, :4, :4] = True  # one pixel frame, the top-left 4x4 cell
    grouped = latent_cover(masks, _codec(False))  # frames 0-3 -> latent 0, 4-7 -> latent 1
    assert grouped.shape == (1, 1, 2, 2, 2)
    assert grouped[0, 0, 1, 0, 0] == 1 and grouped.sum() == 1
    masks9 = torch.zeros(1, 9, 8, 8, dtype=torch.bool)
    masks9[0, 0, :2, :4] = True  # causal: frame 0 alone is latent 0; half the cell covered
    causal = latent_cover(masks9, _codec(True))
    assert causal.shape == (1, 1, 3, 2, 2) and causal[0, 0, 0, 0, 0] == 0.5 and causal.sum() == 0.5


def test_weighted_mean_moves_the_loss_towards_the_person():
    err = torch.ones(1, 2, 1, 2, 2)
    err[..., 0, 0] = 5.0  # the error sits on the person's cell
    cover = torch.zeros(1, 1, 1, 2, 2)
    cover[..., 0, 0] = 1.0
    batch = LatentBatch(err, err[:, :, :1], err[:, :, :1], ["p"], foreground=cover)
    assert cell_weights(batch, 0.0) is None and weighted_mean(err, None, (1, 2, 3, 4)).item() == 2.0
    w = cell_weights(batch, 6.0)
    assert torch.allclose(weighted_mean(err, w, (1, 2, 3, 4)), torch.tensor([(7 * 5 + 3) / 10]))
    no_masks = LatentBatch(err, err, err, ["p"])  # user clips without masks: uniform
    assert cell_weights(no_masks, 6.0) is None


def test_region_weights_add_onto_the_person_weight():
    err = torch.ones(1, 2, 1, 2, 2)
    person = torch.zeros(1, 1, 1, 2, 2)
    person[..., 0, :] = 1.0  # the person fills the top row
    upper = torch.zeros(1, 1, 1, 2, 2)
    upper[..., 0, 0] = 0.5  # the top covers half of one of its cells
    batch = LatentBatch(err, err[:, :, :1], err[:, :, :1], ["p"], foreground=person, regions={"upper": upper})
    w = cell_weights(batch, 6.0, {"upper": 4.0})
    assert w[0, 0, 0].tolist() == [[9.0, 7.0], [1.0, 1.0]]
    assert torch.equal(cell_weights(batch, 6.0, {"upper": 0.0}), cell_weights(batch, 6.0))
    only_region = cell_weights(batch, 0.0, {"upper": 4.0})  # a region weight alone still weights
    assert only_region[0, 0, 0].tolist() == [[3.0, 1.0], [1.0, 1.0]]
    with pytest.raises(ValueError, match=r"\['sleeve'\].*upper"):
        cell_weights(batch, 6.0, {"sleeve": 1.0})


def test_region_weights_config_refuses_negative_weights():
    with pytest.raises(ValueError, match="region_weights"):
        DiffusionStageConfig(region_weights={"upper": -1.0})


def test_world_batches_carry_every_mask_cover():
    from fashionchameleon.lab.train.data import DataConfig, clip_batches
    pytest_codec = _codec(True)
    pytest_codec.encode_video = lambda v: torch.zeros(v.shape[0], 4, 1 + (v.shape[2] - 1) // 4,
                                                        v.shape[3] // 4, v.shape[4] // 4)
    pytest_codec.encode_image = lambda x: torch.zeros(x.shape[0], 4, 1, x.shape[2] // 4, x.shape[3] // 4)
    batch = clip_batches(DataConfig(source="world", framing="fashion", height=144, width=112, frames=5,
                                    batch_size=2, seed=1)).latents(0, pytest_codec)
    assert batch.foreground is not None and "person" not in batch.regions
    assert {"head", "hair", "skin"} <= set(batch.regions)
    for name, cover in batch.regions.items():
        assert cover.shape == batch.foreground.shape
        assert bool((cover <= batch.foreground + 1e-6).all()), name  # every region lies inside the person
    assert float(batch.regions["head"].sum()) > 0
    # the person's pixel hull over the clip (the background term's): inside the frame, some but not all of it
    hull = batch.person_hull
    assert hull.shape == (2, 1, 144, 112) and set(hull.unique().tolist()) == {0.0, 1.0}
    assert 0.05 < float(hull.mean()) < 0.6
