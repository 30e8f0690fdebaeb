"""The embedded model's aligned garment input: the garment slots, laid where they are worn, per video frame.

The paper conditions on the garment in context only (a garment latent frame the video attends to;
its Table 2 finds that better than channel concatenation at 5B). A tiny DiT sampled from noise
does not carry a garment's texture from that frame onto the body (training-log 2026-12-07). With
flat-lays laid where they are worn (`garment_layout.lay_out`, layout "body") each garment latent
cell sits over the body cell that wears it, so the model can also take the slots as an input of
every video frame's tokens (`ModelConfig.garment_hint` slots, `WanDiT.garment_embedding`): a local
path for the texture, beside the in-context frames that stay. Wan presets keep 0 (no such input).

A hint is `[B, C*slots, F|1, h, w]`: the conditions' garment frames folded into the channel axis
(channel c of slot m at c*slots + m; missing slots zero), one frame broadcast to all, or per frame
with zeros on condition frames (`clip_hint`). A null garment (`sampler.null_garments`, all zero)
gives a zero hint, and `garment_embedding` has no bias, so a zero hint adds nothing: guiding away
from the garments drops both paths at once.
"""
from __future__ import annotations

from typing import Sequence

import torch
from einops import rearrange

__all__ = ["slot_hint", "frame_hint", "clip_hint"]


def slot_hint(slots: int, conditions: torch.Tensor, first_garment: int) -> torch.Tensor | None:
    """The hint of a model taking `slots` garment slots (`ModelConfig.garment_hint`) from conditions
    `[B, C, n, h, w]` whose garment slots start at `first_garment`: `[B, C*slots, 1, h, w]`, or None
    when `slots` is 0 (a model without the input)."""
    if not slots:
        return None
    garments = conditions[:, :, first_garment:]  # [B, C, M, h, w]
    b, c, m, h, w = garments.shape
    if m > slots:
        raise ValueError(f"{m} garment slots, but the model's garment hint takes at most {slots}")
    pad = garments.new_zeros(b, c, slots - m, h, w)
    return rearrange(torch.cat([garments, pad], dim=2), "b c m h w -> b (c m) 1 h w")


def frame_hint(hint: torch.Tensor | None, segments: Sequence[tuple[int, bool]]) -> torch.Tensor | None:
    """A one-frame hint spread over a sequence of frames: `segments` = (frames, hinted) in order, e.g.
    `[(n, False), (f, True)]` for conditions then video. Returns `[B, Ch, sum(frames), h, w]` or None."""
    if hint is None:
        return None
    parts = [hint.expand(-1, -1, k, -1, -1) if hinted else torch.zeros_like(hint).expand(-1, -1, k, -1, -1)
             for k, hinted in segments if k]
    return torch.cat(parts, dim=2)


def clip_hint(slots: int, conditions: torch.Tensor, first_garment: int, frames: int,
              copies: int = 1) -> torch.Tensor | None:
    """The per-frame hint of a sequence `[conditions, frames video frames]` (`copies` times over, as teacher
    forcing's clean and noisy halves): `[B, C*slots, copies*(n + frames), h, w]`, or None when `slots` is 0."""
    n = conditions.shape[2]
    return frame_hint(slot_hint(slots, conditions, first_garment), [(n, False), (frames, True)] * copies)
