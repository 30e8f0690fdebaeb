"""The cached streaming forward equals one full forward under the equivalent mask (fp32, <= 1e-4)."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.runtime.dit.attention import block_causal_mask
from fashionchameleon.runtime.stream.cache import CacheAttention, CacheLayout, KVCache
from fashionchameleon.runtime.dit.model import FullSequence
from fashionchameleon.runtime.stream.sampler import condition_pass

C, HW, CHUNK = 4, (4, 4), 3  # micro latents: 4 channels, 4x4 -> 4 tokens per frame with patch 2


def _stream_vs_full(model, *, refs: int, slots: tuple[str, ...], history_chunks: int, sink: int, window: int,
                    rope: str = "absolute", t_current: float = 600.0):
    g = torch.Generator().manual_seed(3)
    n_cond = refs + len(slots)
    conds = torch.randn(1, C, n_cond, *HW, generator=g)
    history = torch.randn(1, C, history_chunks * CHUNK, *HW, generator=g)
    current = torch.randn(1, C, CHUNK, *HW, generator=g)
    text = model.text_kv(torch.randn(1, 4, 16, generator=g))

    layout = CacheLayout(reference_views=refs, garment_slots=slots, sink_frames=sink, window_frames=window)
    cache = KVCache(layout, model.cfg.num_layers, model.cfg.num_heads, model.cfg.head_dim, tokens_per_frame=4,
                    rope=rope, chunk_frames=CHUNK)
    items = cache.condition_items()
    condition_pass(model, cache, text, {item: conds[:, :, i:i + 1] for i, item in enumerate(items)})
    for j in range(history_chunks):  # clean history, each written at t = 0 like the clean KV pass
        plan = cache.plan_chunk(CHUNK)
        model(history[:, :, j * CHUNK:(j + 1) * CHUNK], torch.zeros(1, CHUNK), text, plan.positions,
              CacheAttention(cache, plan))
        cache.commit(plan)
    plan = cache.plan_chunk(CHUNK)
    streamed = model(current, torch.full((1, CHUNK), t_current), text, plan.positions, CacheAttention(cache, plan))

    n_video = (history_chunks + 1) * CHUNK
    mask = block_causal_mask(n_cond, n_video, CHUNK, sink_frames=sink, window_frames=window)
    full_x = torch.cat([conds, history, current], dim=2)
    t = torch.cat([torch.zeros(1, n_cond + history_chunks * CHUNK), torch.full((1, CHUNK), t_current)], dim=1)
    full = model(full_x, t, text, list(range(n_cond + n_video)), FullSequence(mask, tokens_per_frame=4))
    return streamed, full[:, :, -CHUNK:], plan


@pytest.mark.parametrize("refs,slots", [(1, ("full",)), (2, ("upper", "lower"))])
def test_cached_forward_equals_block_causal_full_forward(micro_model, refs, slots):
    with torch.no_grad():
        streamed, full, _ = _stream_vs_full(micro_model, refs=refs, slots=slots, history_chunks=3, sink=3, window=18)
    assert (streamed - full).abs().max().item() <= 1e-4
    assert full.abs().mean().item() > 1e-2  # the comparison is not between two zero tensors


@pytest.mark.parametrize("sink", [0, 3])
def test_cached_forward_equals_sink_sliding_window_full_forward(micro_model, sink):
    # window of 2 chunks (incl. the current one): after 5 history chunks most of them were evicted
    with torch.no_grad():
        streamed, full, plan = _stream_vs_full(micro_model, refs=1, slots=("full",), history_chunks=5, sink=sink,
                                               window=6)
    assert plan.positions == [2 + 15, 2 + 16, 2 + 17]  # absolute positions keep growing past the window
    assert (streamed - full).abs().max().item() <= 1e-4


def test_sliding_window_actually_forgets(micro_model):
    """Against the *unbounded* block-causal mask the windowed stream must differ (the test has teeth)."""
    with torch.no_grad():
        streamed, _, _ = _stream_vs_full(micro_model, refs=1, slots=("full",), history_chunks=5, sink=3, window=6)
        _, unbounded, _ = _stream_vs_full(micro_model, refs=1, slots=("full",), history_chunks=5, sink=3, window=48)
    assert (streamed - unbounded).abs().max().item() > 1e-3


def test_rolling_positions_equal_absolute_until_the_window_is_full(micro_model):
    with torch.no_grad():
        a, _, _ = _stream_vs_full(micro_model, refs=1, slots=("full",), history_chunks=2, sink=3, window=9,
                                  rope="absolute")
        r, _, plan = _stream_vs_full(micro_model, refs=1, slots=("full",), history_chunks=2, sink=3, window=9,
                                     rope="rolling")
    assert plan.positions == [8, 9, 10]
    assert torch.equal(a, r)


def test_teacher_forcing_noisy_half_equals_streaming_on_clean_history(micro_model):
    """In-context teacher forcing trains exactly what streaming runs: noisy chunk j given clean chunks < j."""
    from fashionchameleon.runtime.dit.attention import teacher_forcing_mask

    g = torch.Generator().manual_seed(11)
    n_cond, chunks = 2, 3
    n_video = chunks * CHUNK
    conds = torch.randn(1, C, n_cond, *HW, generator=g)
    clean = torch.randn(1, C, n_video, *HW, generator=g)
    noisy = torch.randn(1, C, n_video, *HW, generator=g)
    t_chunk = torch.tensor([900.0, 400.0, 150.0])  # per-chunk noise levels, diffusion-forcing style
    text = micro_model.text_kv(torch.randn(1, 4, 16, generator=g))
    n = n_cond + n_video
    x = torch.cat([conds, clean, conds, noisy], dim=2)
    t = torch.cat([torch.zeros(n + n_cond), t_chunk.repeat_interleave(CHUNK)])[None]
    positions = list(range(n)) * 2  # clean frame j and noisy frame j share a position
    with torch.no_grad():
        tf = micro_model(x, t, text, positions, FullSequence(teacher_forcing_mask(n_cond, n_video, CHUNK), 4))
        layout = CacheLayout(reference_views=1, garment_slots=("full",), sink_frames=3, window_frames=18)
        cache = KVCache(layout, micro_model.cfg.num_layers, micro_model.cfg.num_heads, micro_model.cfg.head_dim, 4,
                        rope="absolute")
        condition_pass(micro_model, cache, text, {it: conds[:, :, i:i + 1]
                                                  for i, it in enumerate(cache.condition_items())})
        for j in range(chunks):
            sl = slice(j * CHUNK, (j + 1) * CHUNK)
            plan = cache.plan_chunk(CHUNK)  # the noisy pass writes the chunk's slot without committing it ...
            out = micro_model(noisy[:, :, sl], torch.full((1, CHUNK), float(t_chunk[j])), text, plan.positions,
                              CacheAttention(cache, plan))
            ref = tf[:, :, n + n_cond + j * CHUNK:n + n_cond + (j + 1) * CHUNK]
            assert (out - ref).abs().max().item() <= 1e-4
            assert ref.abs().mean().item() > 1e-2
            # ... and the clean pass overwrites that slot and commits it as history
            micro_model(clean[:, :, sl], torch.zeros(1, CHUNK), text, plan.positions, CacheAttention(cache, plan))
            cache.commit(plan)
