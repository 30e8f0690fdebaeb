"""KV cache: segments, eviction, bounded memory, rolling positions, clone and rollback."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.runtime.stream.cache import CacheAttention, CacheError, CacheLayout, KVCache
from fashionchameleon.runtime.config import preset
from fashionchameleon.runtime.dit.rope import apply_rope, rope_cos_sin, shift_temporal

TINY = preset("tiny")


def _cache(rope="rolling", sink=3, window=18, slots=("full",), refs=1, layers=2, tokens=4):
    layout = CacheLayout(reference_views=refs, garment_slots=slots, sink_frames=sink, window_frames=window)
    return KVCache(layout, layers, 2, 8, tokens, rope=rope, chunk_frames=3)


def _fill(cache: KVCache, plan, value: float) -> None:
    """Write a constant into every layer for the plan's frames (a stand-in for a model pass)."""
    cache.begin_write(plan)
    n = len(plan.frames) * cache.tokens_per_frame
    shape = (cache.k.shape[1], cache.k.shape[2], n, cache.k.shape[4])
    for layer in range(cache.num_layers):
        cache.write(layer, plan, torch.full(shape, value), torch.full(shape, -value))
    cache.commit(plan)


def _prefill(cache: KVCache) -> None:
    for i, item in enumerate(cache.condition_items()):
        _fill(cache, cache.plan_conditions([item]), 100.0 + i)


def _frame_value(cache: KVCache, frame: int) -> float:
    s = cache.tokens_per_frame
    return cache.v[0, 0, 0, frame * s, 0].item()


def test_layout_matches_the_paper_numbers():
    layout = CacheLayout()
    assert layout.total_frames == 23
    assert list(layout.segments()) == ["reference", "garment:full", "sink", "window"]
    assert layout.segments()["sink"] == (2, 3) and layout.segments()["window"] == (5, 18)


def test_video_before_prefill_is_refused():
    cache = _cache()
    with pytest.raises(CacheError, match="prefill the conditions"):
        cache.plan_chunk(3)


def test_eviction_keeps_conditions_and_sink_and_is_fifo():
    cache = _cache(rope="absolute", window=9)
    _prefill(cache)
    for j in range(8):
        _fill(cache, cache.plan_chunk(3), float(j + 1))
    hist = cache.history_frames()
    values = [-_frame_value(cache, f) for f in hist]
    # sink = chunk 1; window keeps the newest (9 - 3) frames between chunks: chunks 7 and 8
    assert values == [1.0] * 3 + [7.0] * 3 + [8.0] * 3
    assert [_frame_value(cache, f) for f in range(2)] == [-100.0, -101.0]
    assert cache.filled("reference") == 1 and cache.filled("garment:full") == 1
    assert [cache.positions("sink")] == [[2, 3, 4]]


def test_two_hundred_chunks_keep_a_constant_cache_of_the_tiny_config():
    layout = CacheLayout()
    cache = KVCache(layout, TINY.num_layers, TINY.num_heads, TINY.head_dim, tokens_per_frame=64, rope="rolling")
    _prefill(cache)
    ptr, nbytes = cache.k.data_ptr(), cache.nbytes
    assert nbytes == 2 * TINY.num_layers * 23 * 64 * TINY.dim * 4  # K and V, 23 frames, fp32
    used, positions = [], set()
    for j in range(200):
        plan = cache.plan_chunk(3)
        positions.update(plan.positions)
        _fill(cache, plan, float(j))
        used.append(cache.used_bytes)
    assert cache.k.data_ptr() == ptr and cache.nbytes == nbytes
    assert max(used) <= nbytes and used[-1] == used[-50]  # steady state
    assert max(positions) == 2 + 3 + 18 - 1  # rolling: the newest chunk always sits at the top of the window
    assert len(cache.history_frames()) == 3 + 15


def test_absolute_positions_grow_and_rolling_stay_bounded():
    grow, roll = _cache(rope="absolute", window=6), _cache(rope="rolling", window=6)
    for c in (grow, roll):
        _prefill(c)
        for j in range(20):
            _fill(c, c.plan_chunk(3), float(j))
    assert grow.next_position == 2 + 60
    assert roll.next_position == 2 + 3 + 3  # conditions, sink, one window chunk of history
    assert [roll._state.position[f] for f in roll.history_frames()] == list(range(2, 8))


def test_shift_temporal_equals_rope_at_the_shifted_position():
    g = torch.Generator().manual_seed(0)
    head_dim = 24
    x = torch.randn(1, 2, 4 * 3, head_dim, generator=g, dtype=torch.float64)  # 3 frames of a 2x2 grid
    at = lambda pos: apply_rope(x, *rope_cos_sin(pos, (2, 2), head_dim, dtype=torch.float64))  # noqa: E731
    moved = at([40, 41, 42]).clone()
    shift_temporal(moved, -35, head_dim)
    assert (moved - at([5, 6, 7])).abs().max().item() < 1e-9
    assert (at([40, 41, 42]) - at([5, 6, 7])).abs().max().item() > 0.1


def test_rolling_renumbering_rotates_keys_exactly_like_fresh_rope():
    cache = _cache(rope="rolling", window=6, layers=1, tokens=1)
    _prefill(cache)
    g = torch.Generator().manual_seed(1)
    raw = {}
    for j in range(4):
        plan = cache.plan_chunk(3)
        k = torch.randn(1, 2, 3, 8, generator=g)
        raw[j] = (k, plan.positions)
        rotated = apply_rope(k, *rope_cos_sin(plan.positions, (1, 1), 8))
        cache.begin_write(plan)
        cache.write(0, plan, rotated, rotated)
        cache.commit(plan)
    # window holds chunk 3 only (chunk 0 is the sink); it now sits right after the sink
    newest = cache.history_frames()[-3:]
    assert [cache._state.position[f] for f in newest] == [5, 6, 7]
    expected = apply_rope(raw[3][0], *rope_cos_sin([5, 6, 7], (1, 1), 8))
    got = cache.k[0, :, :, newest[0]:newest[0] + 3]
    assert (got - expected).abs().max().item() < 1e-5


def test_withdraw_empties_exactly_the_history():
    cache = _cache(rope="absolute")
    _prefill(cache)
    for j in range(4):
        _fill(cache, cache.plan_chunk(3), float(j + 1))
    cond_k = cache.k[:, :, :, :2 * 4].clone()
    cache.withdraw(keep_last=0)
    assert cache.history_frames() == [] and cache.filled("sink") == 0
    assert torch.equal(cache.k[:, :, :, :2 * 4], cond_k)
    assert cache.plan_chunk(3).frames == [2, 3, 4]  # the next chunk becomes the new sink


def test_withdraw_keep_last_keeps_the_newest_frames_in_order():
    cache = _cache(rope="absolute")
    _prefill(cache)
    for j in range(5):
        _fill(cache, cache.plan_chunk(3), float(j + 1))
    cache.withdraw(keep_last=4)
    kept = cache.history_frames()
    assert [-_frame_value(cache, f) for f in kept] == [4.0, 5.0, 5.0, 5.0]
    assert [cache._state.position[f] for f in kept] == [2 + 11, 2 + 12, 2 + 13, 2 + 14]
    cache.restart_positions()
    assert [cache._state.position[f] for f in kept] == [2, 3, 4, 5] and cache.next_position == 6


def test_withdraw_keeping_the_sink():
    cache = _cache(rope="absolute")
    _prefill(cache)
    for j in range(3):
        _fill(cache, cache.plan_chunk(3), float(j + 1))
    cache.withdraw(keep_last=0, keep_sink=True)
    assert [-_frame_value(cache, f) for f in cache.history_frames()] == [1.0] * 3


def test_clone_shares_nothing_mutable():
    a = _cache()
    _prefill(a)
    _fill(a, a.plan_chunk(3), 1.0)
    b = a.clone()
    snap_b = (b.k.clone(), b.v.clone(), b.state_dict())
    _fill(a, a.plan_chunk(3), 2.0)
    a.withdraw()
    _fill(a, a.plan_conditions([("garment:full", 0)]), 7.0)
    assert torch.equal(b.k, snap_b[0]) and torch.equal(b.v, snap_b[1]) and b.state_dict() == snap_b[2]
    snap_a = (a.k.clone(), a.state_dict())
    _fill(b, b.plan_chunk(3), 3.0)
    b.restart_positions()
    assert torch.equal(a.k, snap_a[0]) and a.state_dict() == snap_a[1]


@pytest.mark.parametrize("fail_after_layer", [0, 1])
def test_transaction_rolls_back_bit_for_bit(fail_after_layer):
    cache = _cache(rope="rolling", window=6)
    _prefill(cache)
    for j in range(3):
        _fill(cache, cache.plan_chunk(3), float(j + 1))
    before = (cache.k.clone(), cache.v.clone(), cache.state_dict())
    with pytest.raises(KeyboardInterrupt):
        with cache.transaction():
            cache.withdraw(keep_last=2)
            cache.restart_positions()
            plan = cache.plan_chunk(3)
            attention = CacheAttention(cache, plan)
            for layer in range(fail_after_layer + 1):
                k = torch.randn(1, 2, 12, 8)
                attention(layer, k, k, k)
            raise KeyboardInterrupt
    assert torch.equal(cache.k, before[0]) and torch.equal(cache.v, before[1])
    assert cache.state_dict() == before[2]


def test_memory_accounting():
    cache = _cache(layers=3, tokens=5)
    assert cache.nbytes == 2 * 3 * 1 * 2 * (23 * 5) * 8 * 4
    assert cache.used_bytes == 0
    _prefill(cache)
    assert cache.used_bytes == cache.nbytes * 2 // 23


def test_a_kv_pass_writes_exactly_what_a_full_pass_writes():
    from conftest import MICRO
    from fashionchameleon.runtime.dit.model import FullSequence, WanDiT

    torch.manual_seed(0)
    model = WanDiT(MICRO).eval().requires_grad_(False)
    layout = CacheLayout(sink_frames=3, window_frames=6)
    caches = [KVCache(layout, MICRO.num_layers, MICRO.num_heads, MICRO.head_dim, 4, chunk_frames=3) for _ in range(2)]
    conditions = torch.randn(1, MICRO.in_dim, 2, 4, 4)
    chunk = torch.randn(1, MICRO.in_dim, 3, 4, 4)
    text = model.text_kv(torch.randn(1, MICRO.text_len, MICRO.text_dim))
    for cache, kv_only in zip(caches, (False, True)):
        for frames, items in ((conditions, cache.condition_items()), (chunk, None)):
            plan = cache.plan_conditions(items) if items else cache.plan_chunk(3)
            t = torch.zeros(1, frames.shape[2])
            run = model.write_kv if kv_only else model
            with torch.no_grad():  # as streamed: fused q/k/v in the full pass, k/v alone in the KV pass
                out = run(frames, t, text, plan.positions, CacheAttention(cache, plan))
            assert (out is None) == kv_only
            cache.commit(plan)
    torch.testing.assert_close(caches[1].k, caches[0].k, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(caches[1].v, caches[0].v, rtol=1e-6, atol=1e-6)
    assert caches[0].k.abs().sum() > 0
    assert caches[1].history_frames() == caches[0].history_frames()
    with pytest.raises(TypeError, match="needs a backend that keeps keys/values"):
        model.write_kv(chunk, torch.zeros(1, 3), text, [0, 1, 2], FullSequence())


def test_sliding_starts_with_the_first_eviction_and_a_withdraw_resets_it():
    c = _cache(sink=3, window=9)
    _prefill(c)
    seen = []
    for i in range(6):  # chunk 0: sink; 1-3 fill the window (the 3rd evicts at its commit); 4 on: sliding
        seen.append(c.sliding())
        _fill(c, c.plan_chunk(3), float(i))
    assert seen == [False, False, False, False, True, True]
    c.withdraw(keep_last=3)
    assert not c.sliding()
    with pytest.raises(RuntimeError):
        with c.transaction():
            for i in range(3):  # a new sink, then 2 chunks after the kept 3 frames fill the window
                _fill(c, c.plan_chunk(3), 10.0 + i)
            assert c.sliding()
            raise RuntimeError("cancelled")
    assert not c.sliding()  # rolled back with the rest of the bookkeeping
