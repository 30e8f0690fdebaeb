"""The short CI version of tools/long_run.py: 240 frames of a micro model, a garment switch every 48 frames.

Every chunk must be finite, the KV cache must keep its storage (same pointers, same bytes) and
temporal positions must stay within the cache; the checks must also catch a stream that goes
bad. The full 10,000-frame run of the embedded model is `python tools/long_run.py`.
"""
from __future__ import annotations

import sys

import pytest
import torch

from fashionchameleon.runtime.config import StreamConfig
from fashionchameleon.runtime.stream.session import StreamSession
from node_harness import PER_CHUNK, ROOT, SIZE

sys.path.insert(0, str(ROOT / "tools"))

import long_run  # noqa: E402

FRAMES, EVERY = 240, 48


def _images(seed: int, n: int) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture
def session(micro_model, micro_codec, micro_text) -> StreamSession:
    torch.set_num_threads(1)
    garments = _images(2, 4)
    outfits = [{"upper": garments[0], "lower": garments[1]}, {"upper": garments[2], "lower": garments[3]}]
    s = StreamSession(micro_model, micro_codec, micro_text, _images(1, 2), outfits[0], "a person walks", seed=3,
                      config=StreamConfig(sink_frames=3, window_frames=6))
    s.outfits = outfits
    return s


def test_a_long_stream_with_a_switch_every_48_frames_stays_finite_and_bounded(session):
    at = long_run.schedule_alternating(session, session.outfits, FRAMES, EVERY)
    assert at == [48, 96, 144, 192] and len(session.pending_switches) == 2 * len(at)  # both slots each time
    rows = []
    with torch.inference_mode():
        result = long_run.run_long(session, FRAMES, report_every=EVERY, tail=2 * PER_CHUNK, on_row=rows.append)
    assert result.ok and result.first_bad_frame is None and result.cache_fixed
    assert result.frames == FRAMES and result.switches == len(at) and session.pending_switches == ()
    assert result.position_bound == session.layout.total_frames == 2 + 2 + 3 + 6
    assert result.max_position <= result.position_bound
    assert [r.frame for r in rows] == [48, 96, 144, 192, 240] and rows == result.rows
    assert len({r.cache_mb for r in rows}) == 1 and rows[-1].switches == len(at)
    assert rows[0].rss_mb > 0 and rows[-1].rss_mb < rows[0].rss_mb + 256  # no growth with the stream's length
    assert result.tail.shape == (2 * PER_CHUNK, 3, SIZE, SIZE)
    summary = result.summary()
    assert summary["ok"] and len(summary["rows"]) == 5 and "tail" not in summary


def test_the_long_run_checks_catch_a_stream_that_goes_bad(session, micro_model):
    calls = []

    def poison(module, args, output):  # from the 20th DiT call on, the model outputs NaN
        calls.append(1)
        return output * float("nan") if len(calls) >= 20 and output is not None else output  # (KV passes: None)

    handle = micro_model.register_forward_hook(poison)
    try:
        with torch.inference_mode():
            result = long_run.run_long(session, 60, report_every=30, tail=6)
    finally:
        handle.remove()
    assert not result.ok and result.first_bad_frame is not None and 0 < result.first_bad_frame < 60


def test_garment_retrieval_on_the_tail_names_the_outfit_shown():
    renders, _ = long_run.worn_outfit_renders(3)
    for expected in (0, 1):
        got = long_run.tail_retrieval(renders[expected], expected)
        assert got == {"frames": 3, "candidates": 3, "expected_outfit": expected + 1,
                       "retrieved_outfit": expected + 1, "hit": True}


def test_without_the_embedded_student_the_tool_says_so_and_exits_2(tmp_path, capsys):
    assert long_run.main(["--weights", str(tmp_path), "--frames", "12"]) == 2
    err = capsys.readouterr().err
    assert "embedded student is missing" in err and "student.safetensors" in err and "--random-weights" in err
