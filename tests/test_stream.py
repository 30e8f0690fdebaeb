"""Stream session: determinism, cancel/rollback, switches at chunk boundaries, snapshots."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.runtime.config import StreamConfig
from fashionchameleon.runtime.stream.rescheduling import SwitchPolicy
from fashionchameleon.runtime.stream.session import Cancelled, StreamInputError, StreamSession, chunk_seed

SIZE = 16  # micro codec: 4x spatial, 2x temporal -> 4x4 latents, 6 pixel frames per 3-frame chunk
CFG = StreamConfig(sink_frames=3, window_frames=6)


def _images(seed: int, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1


def _session(model, codec, text, seed=7, slots=("full",)) -> StreamSession:
    garments = {slot: _images(10 + i)[0] for i, slot in enumerate(slots)}
    return StreamSession(model, codec, text, _images(1), garments, "a person walks", seed=seed, config=CFG)


def _state(s: StreamSession):
    f = s._f
    return (s.cache.k.clone(), s.cache.v.clone(), s.cache.state_dict(), f.chunk_index, f.frames_generated,
            len(f.pending), None if f.recent is None else f.recent.clone(), f.references.clone(),
            {k: v.clone() for k, v in f.garments.items()})


def _same_state(a, b) -> bool:
    return all(
        (torch.equal(x, y) if isinstance(x, torch.Tensor) else
         (x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)) if isinstance(x, dict) and x and
         isinstance(next(iter(x.values())), torch.Tensor) else x == y)
        for x, y in zip(a, b))


def test_same_seed_gives_bit_identical_chunks(micro_model, micro_codec, micro_text):
    a = [c.frames for c in _session(micro_model, micro_codec, micro_text).generate(24)]
    b = [c.frames for c in _session(micro_model, micro_codec, micro_text).generate(24)]
    c = [c.frames for c in _session(micro_model, micro_codec, micro_text, seed=8).generate(24)]
    assert len(a) == 4 and all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_chunks_have_the_codec_frame_count_and_range(micro_model, micro_codec, micro_text):
    s = _session(micro_model, micro_codec, micro_text)
    chunks = list(s.generate(13))
    assert [c.first_frame for c in chunks] == [0, 6, 12] and s.frames_generated == 18
    assert chunks[0].frames.shape == (1, 3, 6, SIZE, SIZE) and chunks[0].latents.shape == (1, 4, 3, 4, 4)
    assert chunks[0].frames.abs().max() <= 1.0


@pytest.mark.parametrize("cancel_at", [0, 1, 2, 3])
def test_cancel_mid_chunk_leaves_the_session_unchanged(micro_model, micro_codec, micro_text, cancel_at):
    s = _session(micro_model, micro_codec, micro_text)
    s.step()
    s.request_switch("full", _images(33)[0])  # the cancel also hits the switch applied before the chunk
    before = _state(s)
    reference = s.snapshot().step()
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > cancel_at + 1  # the first call happens before any work

    with pytest.raises(Cancelled):
        s.step(cancel=cancel)
    assert _same_state(before, _state(s))
    again = s.step()
    assert torch.equal(again.frames, reference.frames) and again.switches == ("full",)


def test_failure_inside_a_chunk_leaves_the_session_usable(micro_model, micro_codec, micro_text):
    s = _session(micro_model, micro_codec, micro_text)
    s.step()
    before = _state(s)
    expected = s.snapshot().step()

    def boom(info) -> None:
        if info.step == 2:
            raise RuntimeError("simulated failure")

    with pytest.raises(RuntimeError, match="simulated"):
        s.step(progress=boom)
    assert _same_state(before, _state(s))
    assert torch.equal(s.step().frames, expected.frames)


def test_progress_is_reported_every_step(micro_model, micro_codec, micro_text):
    seen = []
    _session(micro_model, micro_codec, micro_text).step(progress=lambda i: seen.append((i.step, i.num_steps)))
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_snapshots_branch_independently(micro_model, micro_codec, micro_text):
    s = _session(micro_model, micro_codec, micro_text)
    s.step()
    a, b = s.snapshot(), s.snapshot()
    a.request_switch("full", _images(40)[0])
    b.request_switch("full", _images(41)[0])
    before = _state(s)
    fa, fb = a.step().frames, b.step().frames
    assert _same_state(before, _state(s))  # the parent is untouched by both branches
    assert not torch.equal(fa, fb)
    # the same branch replayed from the parent gives the same frames (shared noise per chunk index)
    c = s.snapshot()
    c.request_switch("full", _images(40)[0])
    assert torch.equal(c.step().frames, fa)


def test_garment_schedule_applies_at_chunk_boundaries(micro_model, micro_codec, micro_text):
    s = _session(micro_model, micro_codec, micro_text, slots=("upper", "lower"))
    s.schedule_switch(7, "upper", _images(50)[0])  # mid-chunk -> applied before the chunk starting at frame 12
    s.schedule_switch(12, "lower", _images(51)[0], SwitchPolicy.refresh_only())
    s.schedule_switch(18, "upper", _images(52)[0])
    lower_before = s.garment_latents["lower"]
    chunks = list(s.generate(24))
    assert [c.switches for c in chunks] == [(), (), ("upper", "lower"), ("upper",)]
    assert s.pending_switches == ()
    assert not torch.equal(s.garment_latents["lower"], lower_before)


def test_upper_only_switch_keeps_the_lower_slot(micro_model, micro_codec, micro_text):
    s = _session(micro_model, micro_codec, micro_text, slots=("upper", "lower"))
    s.step()
    lower0 = s.cache.segment_kv("garment:lower")[0].clone()
    lat0 = s.garment_latents["lower"]
    s.request_switch("upper", _images(60)[0])
    s.step()
    assert torch.equal(s.cache.segment_kv("garment:lower")[0], lower0)
    assert s.garment_latents["lower"] is lat0


def test_full_switch_restarts_positions_and_the_sink(micro_model, micro_codec, micro_text):
    s = _session(micro_model, micro_codec, micro_text)
    for _ in range(4):
        s.step()
    s.request_switch("full", _images(70)[0])
    s.step()
    assert s.cache.positions("sink") == [2, 3, 4]  # the first post-switch chunk is the new sink
    assert s.cache.next_position == 5


def test_bad_inputs_have_clear_messages(micro_model, micro_codec, micro_text):
    with pytest.raises(StreamInputError, match="multiple of 8"):
        StreamSession(micro_model, micro_codec, micro_text, torch.zeros(1, 3, 12, 12), {"full": torch.zeros(3, 12, 12)})
    with pytest.raises(StreamInputError, match="same size"):
        StreamSession(micro_model, micro_codec, micro_text, _images(1), {"full": torch.zeros(3, 8, 8)})
    s = _session(micro_model, micro_codec, micro_text)
    with pytest.raises(StreamInputError, match="slot 'upper' is not in this stream"):
        s.request_switch("upper", _images(2)[0])
    with pytest.raises(StreamInputError, match=">= 0"):
        s.schedule_switch(-1, "full", _images(2)[0])
    with pytest.raises(StreamInputError, match=">= 1"):
        next(s.generate(0))


def test_chunk_seed_is_stable_and_handles_int_extremes():
    assert chunk_seed(0, 0) == chunk_seed(0, 0) != chunk_seed(0, 1)
    for seed in (0, 2**63 - 1, 2**64 - 1, -1):
        assert 0 <= chunk_seed(seed, 5) < 2**63


def test_reschedule_without_a_new_garment(micro_model, micro_codec, micro_text):
    s = _session(micro_model, micro_codec, micro_text, slots=("upper", "lower"))
    for _ in range(3):
        s.step()
    upper_kv = s.cache.segment_kv("garment:upper")[0].clone()
    s.request_reschedule(SwitchPolicy(refresh=False, withdraw=True, keep_last=3, disentangle=False))
    chunk = s.step()
    assert chunk.switches == () and torch.equal(s.cache.segment_kv("garment:upper")[0], upper_kv)
    # withdraw kept the newest 3 frames; then this chunk became the new sink: 3 + 3 history frames
    assert len(s.cache.history_frames()) == 6
    with pytest.raises(StreamInputError, match="not in this stream"):
        s.request_reschedule(SwitchPolicy(), slots=("full",))
