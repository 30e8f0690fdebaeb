"""Self-attention layouts as frame-level boolean masks, and the SDPA call they feed.

Masks are built per *latent frame* (`True` = may attend) and expanded to tokens, because every
rule in the paper is a rule about frames and chunks. Sequence layout everywhere:
`[condition frames (reference views, garment slots) | video frames]`.

- `bidirectional_mask` — the teacher: every frame sees every frame (plain full attention).
- `block_causal_mask` — the student: conditions see only conditions; video chunk j sees the
  conditions and chunks <= j (bidirectional inside a chunk). With `sink_frames`/`window_frames`
  it becomes the sink + sliding-window mask that a rolling KV cache realises.
- `teacher_forcing_mask` — in-context teacher forcing on `[clean copy | noisy copy]`
  (docs/method.md §2.2.1): clean conditions see each other; clean chunk j sees clean conditions and
  clean chunks <= j; noisy conditions see each other; noisy chunk j sees the clean conditions,
  clean chunks < j and itself; the diagonal is always allowed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bidirectional_mask", "block_causal_mask", "teacher_forcing_mask", "expand_mask", "attend"]


def bidirectional_mask(num_frames: int) -> torch.Tensor:
    return torch.ones(num_frames, num_frames, dtype=torch.bool)


def _chunk_index(num_video: int, chunk: int) -> torch.Tensor:
    return torch.arange(num_video) // chunk  # [Fv]


def block_causal_mask(num_cond: int, num_video: int, chunk: int, sink_frames: int | None = None,
                      window_frames: int | None = None) -> torch.Tensor:
    """Frame mask `[Fc+Fv, Fc+Fv]` of the causal student.

    `window_frames` counts the video frames a chunk may see *including itself*; frames in the
    first `sink_frames` video frames stay visible forever. Both None = unbounded history.
    """
    n = num_cond + num_video
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[:num_cond, :num_cond] = True  # conditions <-> conditions
    mask[num_cond:, :num_cond] = True  # every video frame sees the conditions
    ci = _chunk_index(num_video, chunk)
    q_chunk, k_chunk = ci[:, None], ci[None, :]  # [Fv, 1], [1, Fv]
    video = k_chunk <= q_chunk
    if window_frames is not None:
        k_frame = torch.arange(num_video)[None, :]
        q_end = (q_chunk + 1) * chunk  # one past the last frame of the query's chunk
        in_window = k_frame >= q_end - window_frames
        in_sink = k_frame < (sink_frames or 0)
        video = video & (in_window | in_sink)
    mask[num_cond:, num_cond:] = video
    return mask


def teacher_forcing_mask(num_cond: int, num_video: int, chunk: int) -> torch.Tensor:
    """Frame mask `[2n, 2n]` over `[clean: cond, video | noisy: cond, video]`, n = Fc + Fv."""
    n = num_cond + num_video
    causal = block_causal_mask(num_cond, num_video, chunk)  # clean half: block-causal
    mask = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
    mask[:n, :n] = causal
    mask[n:n + num_cond, n:n + num_cond] = True  # noisy-half conditions see each other only
    mask[n + num_cond:, :num_cond] = True  # noisy video sees the clean conditions
    ci = _chunk_index(num_video, chunk)
    mask[n + num_cond:, num_cond:n] = ci[None, :] < ci[:, None]  # ... and clean chunks strictly before
    mask[n + num_cond:, n + num_cond:] = ci[None, :] == ci[:, None]  # ... and its own noisy chunk
    mask |= torch.eye(2 * n, dtype=torch.bool)
    return mask


def expand_mask(frame_mask: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """`[Fq, Fk]` frame mask -> `[Fq*S, Fk*S]` token mask (tokens are frame-major)."""
    s = tokens_per_frame
    return frame_mask.repeat_interleave(s, dim=0).repeat_interleave(s, dim=1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scaled dot-product attention. q `[B, H, Lq, Dh]`, k/v `[B, H, Lk, Dh]`, mask `[Lq|1, Lk]` bool."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
