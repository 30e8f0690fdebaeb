"""Live control of a running stream: requests from another thread at chunk boundaries, Stop, refusals, replay."""
from __future__ import annotations

import threading

import pytest
import torch

from fashionchameleon import (InputRuleError, LiveControl, format_schedule, parse_schedule, NAMED_POLICIES,
                              WardrobeSwitch)
from fashionchameleon.runtime.config import StreamConfig
from fashionchameleon.runtime.stream.session import Cancelled, StreamSession

SIZE, PER_CHUNK = 16, 6  # micro codec: 6 pixel frames per 3-latent-frame chunk
CFG = StreamConfig(sink_frames=3, window_frames=6)


def _images(seed: int, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1


WARDROBE = _images(40, 4)  # [4, 3, H, W]


def _session(parts, slots=("upper", "lower"), seed=5) -> StreamSession:
    model, codec, text = parts
    garments = {slot: _images(10 + i)[0] for i, slot in enumerate(slots)}
    return StreamSession(model, codec, text, _images(1), garments, "a person walks", seed=seed, config=CFG)


@pytest.fixture
def parts(micro_model, micro_codec, micro_text):
    return micro_model, micro_codec, micro_text


def _control(session: StreamSession) -> LiveControl:
    return LiveControl(session.layout.garment_slots, session.image_size, WARDROBE)


def _from_thread(fn) -> None:
    """Run `fn` on another thread and wait for it (a UI request arriving while a chunk is being made)."""
    t = threading.Thread(target=fn)
    t.start()
    t.join()


def _during(chunk: int, action):
    """A progress callback that runs `action` on another thread at the first denoising step of chunk `chunk`."""
    seen = set()

    def progress(info) -> None:
        if info.chunk == chunk and chunk not in seen:
            seen.add(chunk)
            _from_thread(action)
    return progress


def _state(s: StreamSession):
    f = s._f
    return [s.cache.k.clone(), s.cache.v.clone(), s.cache.state_dict(), f.chunk_index, f.frames_generated,
            [(e.slot, e.frame) for e in f.pending], f.references.clone(), {k: v.clone() for k, v in f.garments.items()}]


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def test_requests_from_another_thread_apply_at_the_next_boundary_in_arrival_order(parts):
    live_session = _session(parts)
    control = _control(live_session)
    asked = []
    progress = _during(1, lambda: asked.extend([control.request(2, "lower"), control.request(0, "upper", "refresh")]))
    out = list(control.run(live_session, 4 * PER_CHUNK, progress))
    assert [len(c.applied) for c in out] == [0, 0, 1 + 1, 0]  # made during chunk 1, worn from chunk 2
    assert out[2].applied == tuple(asked) and [r.id for r in asked] == [1, 2]
    assert control.schedule == (WardrobeSwitch(12, "lower", 2), WardrobeSwitch(12, "upper", 0, "refresh"))
    assert out[2].chunk.switches == ("lower", "upper") and control.pending == ()

    # the same switches handed to a session directly, in that order, give the same video bit for bit
    ref = _session(parts)
    plain = [ref.step() for _ in range(2)]
    ref.request_switch("lower", WARDROBE[2], NAMED_POLICIES["full"])
    ref.request_switch("upper", WARDROBE[0], NAMED_POLICIES["refresh"])
    plain += [ref.step() for _ in range(2)]
    assert all(torch.equal(a.chunk.frames, b.frames) for a, b in zip(out, plain))
    # and the switch changed the video: without it chunk 2 differs
    unswitched = list(_session(parts).generate(3 * PER_CHUNK))
    assert not torch.equal(unswitched[2].frames, out[2].chunk.frames)


def test_two_requests_for_one_slot_at_one_boundary_the_last_wins(parts):
    s = _session(parts)
    control = _control(s)
    asked = []
    progress = _during(0, lambda: asked.extend([control.request(1, "upper"), control.request(3, "upper")]))
    out = list(control.run(s, 2 * PER_CHUNK, progress))
    assert out[1].applied == (asked[1],) and out[1].superseded == (asked[0],)
    assert control.schedule == (WardrobeSwitch(6, "upper", 3),)
    ref = _session(parts)
    first = ref.step()
    ref.request_switch("upper", WARDROBE[3])
    assert torch.equal(first.frames, out[0].chunk.frames) and torch.equal(ref.step().frames, out[1].chunk.frames)


def test_stop_ends_at_the_next_boundary_and_returns_the_frames_so_far(parts):
    s = _session(parts)
    control = _control(s)
    out = list(control.run(s, 10 * PER_CHUNK, _during(2, control.stop)))
    assert len(out) == 3 and s.frames_generated == 3 * PER_CHUNK and control.stopped
    plain = list(_session(parts).generate(3 * PER_CHUNK))
    assert all(torch.equal(a.chunk.frames, b.frames) for a, b in zip(out, plain))
    # the stream goes on from where Stop left it, as if it had never stopped
    fresh = _session(parts)
    expected = list(fresh.generate(4 * PER_CHUNK))[3].frames
    assert torch.equal(s.step().frames, expected)


def test_a_request_after_the_last_chunk_stays_pending_in_the_output_stream(parts):
    s = _session(parts)
    control = _control(s)
    out = list(control.run(s, 2 * PER_CHUNK, _during(1, lambda: control.request(1, "lower"))))
    assert len(out) == 2 and [r.index for r in control.carried] == [1]
    assert [(e.slot, e.frame) for e in s.pending_switches] == [("lower", 2 * PER_CHUNK)]
    assert control.schedule == (WardrobeSwitch(2 * PER_CHUNK, "lower", 1),)


@pytest.mark.parametrize("ask, rule", [
    (lambda c: c.request(4, "upper"), "wardrobe_index"),  # the wardrobe holds 0..3
    (lambda c: c.request(-1, "upper"), "wardrobe_index"),
    (lambda c: c.request(True, "upper"), "wardrobe_index"),
    (lambda c: c.request(0, "full"), "stream_slot"),  # a two-slot stream has no 'full'
    (lambda c: c.request(0, "shoes"), "stream_slot"),
    (lambda c: c.request(0, "upper", "withdraw only"), "policy_name"),
])
def test_an_unknown_garment_slot_or_policy_is_refused_without_touching_the_stream(parts, ask, rule):
    s = _session(parts)
    s.step()
    control = _control(s)
    before = _state(s)
    errors = []

    def refused():
        try:
            ask(control)
        except InputRuleError as exc:
            errors.append(exc)
    out = list(control.run(s, 2 * PER_CHUNK, _during(1, refused)))
    assert [e.rule for e in errors] == [rule] and control.pending == () and control.schedule == ()
    assert all(not c.applied for c in out)
    ref = _session(parts)
    ref.step()
    assert _equal(before, _state(ref))
    assert all(torch.equal(a.chunk.frames, b.frames) for a, b in zip(out, ref.generate(2 * PER_CHUNK)))


def test_an_error_names_the_wardrobe_size():
    control = LiveControl(("full",), (SIZE, SIZE), WARDROBE[:2])
    with pytest.raises(InputRuleError, match="wardrobe index 5.*0 to 1") as exc:
        control.request(5, "full")
    assert exc.value.facts == {"index": 5, "size": 2}
    with pytest.raises(InputRuleError, match="wardrobe is empty"):
        LiveControl(("full",), (SIZE, SIZE)).request(0, "full")
    with pytest.raises(InputRuleError, match=r"\[3, 16, 16\]"):
        control.add_garment(torch.zeros(3, 8, 16))
    assert control.add_garment(WARDROBE[3]) == 2 and control.request(2, "full").index == 2


def test_a_recorded_schedule_replays_bit_identically(parts):
    s = _session(parts)
    s.step()  # a continued stream: frames count from this run's first frame
    control = _control(s)
    events = {1: lambda: control.request(3, "upper", "refresh+withdraw"), 3: lambda: control.request(1, "lower")}
    seen = set()

    def progress(info):
        if info.chunk - 1 in events and info.chunk not in seen:
            seen.add(info.chunk)
            _from_thread(events[info.chunk - 1])
    live = torch.cat([c.chunk.frames for c in control.run(s, 6 * PER_CHUNK, progress)], dim=2)
    text = control.schedule_text
    assert text == "12:upper:3:refresh+withdraw, 24:lower:1"

    replay = _session(parts)
    replay.step()
    again_control = _control(replay)
    again_control.schedule_ahead(replay, parse_schedule(text))
    again = torch.cat([c.chunk.frames for c in again_control.run(replay, 6 * PER_CHUNK)], dim=2)
    assert torch.equal(live, again) and again_control.schedule_text == text
    assert not torch.equal(live, torch.cat([c.frames for c in _session(parts).generate(7 * PER_CHUNK)][1:], dim=2))


def test_cancel_during_a_live_run_rolls_the_chunk_back(parts):
    s = _session(parts)
    control = _control(s)
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 9  # a few steps into chunk 1
    with pytest.raises(Cancelled):
        for _ in control.run(s, 4 * PER_CHUNK, cancel=cancel):
            pass
    ref = _session(parts)
    ref.step()
    assert _equal(_state(s), _state(ref))


@pytest.mark.parametrize("text, problem", [("12:upper", "frame:slot:index"), ("x:upper:1", "whole numbers"),
                                           ("12:upper:1:slow", "policy"), ("24:upper:1, 12:lower:0", "ascending")])
def test_schedule_text_errors_say_what_is_wrong(text, problem):
    with pytest.raises(InputRuleError, match=problem) as exc:
        parse_schedule(text)
    assert exc.value.rule == "wardrobe_schedule"
    with pytest.raises(InputRuleError) as slot:
        parse_schedule("12:shoes:1")
    assert slot.value.rule == "slot_name"


def test_schedule_text_round_trips():
    switches = [WardrobeSwitch(0, "full", 0), WardrobeSwitch(12, "upper", 7, "refresh")]
    assert format_schedule(switches) == "0:full:0, 12:upper:7:refresh"
    assert parse_schedule(format_schedule(switches)) == switches and parse_schedule("") == []


def test_a_refused_schedule_schedules_nothing(parts):
    s = _session(parts)
    control = _control(s)
    with pytest.raises(InputRuleError) as exc:
        control.schedule_ahead(s, parse_schedule("6:upper:1, 12:lower:9"))
    assert exc.value.rule == "wardrobe_index" and s.pending_switches == () and control.schedule == ()


def test_a_live_request_replaces_a_scheduled_switch_of_its_slot_at_the_same_frame(parts):
    s = _session(parts)
    control = _control(s)
    control.schedule_ahead(s, parse_schedule("6:upper:1, 6:lower:2"))
    list(control.run(s, 2 * PER_CHUNK, _during(0, lambda: control.request(3, "upper"))))
    assert control.schedule_text == "6:lower:2, 6:upper:3"
    live = torch.cat([c.frames for c in [s.step()]], dim=2)
    replay = _session(parts)
    again = _control(replay)
    again.schedule_ahead(replay, parse_schedule(control.schedule_text))
    frames = [c.chunk.frames for c in again.run(replay, 3 * PER_CHUNK)]
    assert torch.equal(frames[2], live)
