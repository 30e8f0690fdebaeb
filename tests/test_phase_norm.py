"""Patch-phase normalisation: what it removes, what it keeps, and the stream's use of it."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.runtime.config import StreamConfig
from fashionchameleon.runtime.embedded import trained_stream_config
from fashionchameleon.runtime.stream.phase_norm import patch_phase_norm
from fashionchameleon.runtime.stream.session import StreamSession

from test_stream import _images


def _phase_stats(x: torch.Tensor, patch=(2, 2)):
    b, c, f, h, w = x.shape
    p = x.reshape(b, c, f, h // patch[0], patch[0], w // patch[1], patch[1])
    return p.mean(dim=(2, 3, 5)), p.std(dim=(2, 3, 5))  # [B, C, ph, pw] each


def _row_phase_gap(x: torch.Tensor) -> torch.Tensor:
    """Per token row: mean of the bottom row of its patches minus the top row's `[B, C, F, rows]`."""
    return x[..., 1::2, :].mean(dim=-1) - x[..., 0::2, :].mean(dim=-1)


def test_a_patch_periodic_offset_and_gain_are_removed():
    g = torch.Generator().manual_seed(0)
    striped = torch.randn(1, 4, 3, 16, 16, generator=g)
    striped[..., 1::2, :] = striped[..., 1::2, :] * 1.8 + 0.7  # the bottom row of every 2x2 patch drifts
    out = patch_phase_norm(striped, (2, 2))
    spread = [(s.amax(dim=(-2, -1)) / s.amin(dim=(-2, -1))).max()
              for s in (_phase_stats(striped)[1], _phase_stats(out)[1])]
    assert spread[0] > 1.5 and spread[1] < 1.15  # per channel, the phases' std ratio
    assert _row_phase_gap(striped).abs().mean() > 0.5 and _row_phase_gap(out).abs().max() < 1e-5


def test_a_dark_line_along_one_token_row_is_removed():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 4, 3, 8, 8, generator=g)
    x[..., 7, :] -= 2.0  # the bottom latent row: how the collapse starts
    out = patch_phase_norm(x, (2, 2))
    assert _row_phase_gap(x)[..., 3].mean() < -1.5
    assert _row_phase_gap(out).abs().max() < 1e-5


def test_content_smooth_at_the_patch_scale_is_left_as_it_is():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(2, 3, 3, 4, 4, generator=g)
    x = v.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)  # every phase holds the same values
    assert torch.allclose(patch_phase_norm(x, (2, 2)), x, atol=1e-5)


def test_a_latent_size_off_the_patch_grid_is_named():
    with pytest.raises(ValueError, match="7x8 is not a multiple of the patch 2x2"):
        patch_phase_norm(torch.zeros(1, 1, 1, 7, 8), (2, 2))


def test_the_stream_normalises_chunks_once_its_window_slides(micro_model, micro_codec, micro_text):
    def chunks(cfg):
        s = StreamSession(micro_model, micro_codec, micro_text, _images(1), {"full": _images(10)[0]},
                          "a person walks", seed=3, config=cfg)
        return list(s.generate(30)), s
    cfg = StreamConfig(sink_frames=3, window_frames=6)  # chunk 0: sink, 1-2: window, 3 on: sliding
    plain, plain_session = chunks(cfg)
    normed, normed_session = chunks(cfg.replace(phase_norm=True))
    patch = tuple(micro_model.cfg.patch_size[1:])
    assert len(normed) == 5
    assert all(torch.equal(a.latents, b.latents) for a, b in zip(plain[:3], normed[:3]))  # inside the horizon
    assert torch.allclose(patch_phase_norm(plain[3].latents, patch), normed[3].latents, atol=1e-5)
    for c in normed[3:]:
        mean, _ = _phase_stats(c.latents, patch)
        assert torch.allclose(mean, mean[..., :1, :1].expand_as(mean), atol=1e-4)
    assert not torch.allclose(plain_session.cache.k, normed_session.cache.k)  # the KV pass saw the normalised chunk


def test_a_student_file_can_ask_for_it():
    meta = {"trained_stream": StreamConfig(sink_frames=3, window_frames=9, phase_norm=True).to_json()}
    assert trained_stream_config(meta).phase_norm is True
    assert StreamConfig().phase_norm is False
