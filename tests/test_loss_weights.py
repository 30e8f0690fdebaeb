"""Foreground-weighted diffusion losses: the person's latent cells count more than the background."""
from __future__ import annotations

from types import SimpleNamespace

import torch

from fashionchameleon.lab.train.batch import LatentBatch
from fashionchameleon.lab.train.data import latent_cover
from fashionchameleon.lab.train.dit_stage import cell_weights, weighted_mean


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
