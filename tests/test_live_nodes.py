"""Stream generate live, at node level: the pack's route handlers from another thread, the panel's events, Stop,
refusals that leave the stream going, the 'schedule' output and its replay through 'switch_frames'."""
from __future__ import annotations

import importlib
import io
import sys
import threading
import types

import pytest
import torch

from node_harness import PER_CHUNK, SIZE, img, run, same, stream_state

NODE_ID = "12"


@pytest.fixture
def live(host):
    return importlib.import_module(f"{host.pack.__name__}.nodes.live")


@pytest.fixture
def server(monkeypatch):
    """A stand-in for ComfyUI's `server` module: PromptServer.instance records what the node sends."""
    sent = []
    instance = types.SimpleNamespace(send_sync=lambda event, data, sid=None: sent.append((event, data, sid)),
                                     client_id="client-1", last_prompt_id="prompt-1")
    module = types.ModuleType("server")
    module.PromptServer = types.SimpleNamespace(instance=instance)
    monkeypatch.setitem(sys.modules, "server", module)
    return sent


@pytest.fixture
def node(host, monkeypatch):
    monkeypatch.setattr(host.gen.StreamGenerate, "hidden", types.SimpleNamespace(unique_id=NODE_ID), raising=False)
    return host.gen.StreamGenerate


WARDROBE = img(30, batch=3)  # three garments [3, H, W, 3]


def _at_step(host, monkeypatch, step: int, action):
    """Run `action` on another thread at progress update `step` (the panel's request arriving mid-chunk)."""
    calls = {"n": 0}

    def hook(value, total, preview, node_id=None):
        calls["n"] += 1
        if calls["n"] == step:
            t = threading.Thread(target=action)
            t.start()
            t.join()
    monkeypatch.setattr(host.utils, "PROGRESS_BAR_HOOK", hook)


def _generate(node, model, frames=4 * PER_CHUNK, **extra):
    return run(node, model=model, reference=img(1), garment=img(2), garment_lower=img(3), prompt="a person walks",
               frames=frames, seed=4, wardrobe=WARDROBE, **extra)


STEPS = 4  # progress updates per chunk (the micro model's denoising steps)


def test_a_click_from_another_thread_is_worn_from_the_next_chunk_and_replays_bit_for_bit(host, live, server, node,
                                                                                       model, monkeypatch):
    answers = []
    _at_step(host, monkeypatch, STEPS + 1, lambda: answers.append(live.switch(
        {"node_id": NODE_ID, "prompt_id": "prompt-1", "index": 2, "slot": "upper", "policy": "refresh only"})))
    frames, stream, fps, *rest = _generate(node, model)
    schedule = rest[-1]
    assert answers[0]["request"] == 1 and answers[0]["policy"] == "refresh"
    assert schedule == f"{2 * PER_CHUNK}:upper:2:refresh"  # asked during chunk 1, worn from chunk 2

    monkeypatch.setattr(host.utils, "PROGRESS_BAR_HOOK", None)
    plain = _generate(node, model)[0]
    assert torch.equal(plain[:2 * PER_CHUNK], frames[:2 * PER_CHUNK])
    assert not torch.equal(plain[2 * PER_CHUNK:], frames[2 * PER_CHUNK:])
    replay = _generate(node, model, switch_frames=schedule)
    assert torch.equal(replay[0], frames) and replay[-1] == schedule
    assert same(stream_state(replay[1]), stream_state(stream))

    events = [e for e, _, _ in server]
    assert events[0] == "fashionchameleon.live_start" and events[-1] == "fashionchameleon.live_end"
    start, chunks = server[0][1], [d for e, d, _ in server if e == "fashionchameleon.live_chunk"]
    assert start["node"] == NODE_ID and start["prompt_id"] == "prompt-1" and len(start["wardrobe"]) == 3
    assert start["slots"] == ["upper", "lower"] and server[0][2] == "client-1"
    assert [c["first_frame"] for c in chunks[:4]] == [0, PER_CHUNK, 2 * PER_CHUNK, 3 * PER_CHUNK]
    assert [len(c["frames"]) for c in chunks[:4]] == [PER_CHUNK] * 4
    assert [[a["request"] for a in c["applied"]] for c in chunks[:4]] == [[], [], [1], []]
    assert chunks[0]["frames"][0].startswith("data:image/jpeg;base64,")


def test_stop_returns_the_frames_so_far_and_the_stream_at_that_point(host, live, server, node, model, monkeypatch):
    _at_step(host, monkeypatch, STEPS + 2, lambda: live.stop({"node_id": NODE_ID}))
    frames, stream, *_ = _generate(node, model, frames=20 * PER_CHUNK)
    assert frames.shape[0] == 2 * PER_CHUNK and stream.frames_generated == 2 * PER_CHUNK
    end = server[-1][1]
    assert server[-1][0] == "fashionchameleon.live_end" and end["stopped"] and end["frames_done"] == 2 * PER_CHUNK
    monkeypatch.setattr(host.utils, "PROGRESS_BAR_HOOK", None)
    assert torch.equal(_generate(node, model, frames=2 * PER_CHUNK)[0], frames)


@pytest.mark.parametrize("body, status, words", [
    ({"index": 7, "slot": "upper"}, 400, "no wardrobe garment #8"),
    ({"index": 0, "slot": "full"}, 400, "no 'full' slot; its slots are ['upper', 'lower']"),
    ({"index": 0, "slot": "upper", "policy": "slow"}, 400, "policy: unknown rescheduling policy"),
    ({"index": 0, "slot": "upper", "prompt_id": "an-older-prompt"}, 409, "not streaming"),
])
def test_a_refused_request_gets_a_clear_error_and_the_stream_goes_on(host, live, server, node, model, monkeypatch,
                                                                    body, status, words):
    errors = []

    def ask():
        try:
            live.switch({"node_id": NODE_ID, **body})
        except live.LiveError as exc:
            errors.append(exc)
    _at_step(host, monkeypatch, STEPS + 1, ask)
    frames, stream, *rest = _generate(node, model)
    assert [e.status for e in errors] == [status] and words in str(errors[0]) and rest[-1] == ""
    assert str(errors[0]).endswith("The stream goes on unchanged") == (status == 400 and "policy" not in words)
    monkeypatch.setattr(host.utils, "PROGRESS_BAR_HOOK", None)
    plain = _generate(node, model)
    assert torch.equal(plain[0], frames) and same(stream_state(plain[1]), stream_state(stream))


def test_requests_for_a_node_that_is_not_running_are_refused(live):
    for handler in (live.switch, live.stop):
        with pytest.raises(live.LiveError, match="node 99 is not streaming") as exc:
            handler({"node_id": "99", "index": 0, "slot": "full"})
        assert exc.value.status == 409
    with pytest.raises(live.LiveError, match="node_id"):
        live.switch({"index": 0})
    assert live.status({"node_id": "99"}) == {"running": False}


def test_a_dropped_garment_joins_the_running_wardrobe_and_the_next_run(host, live, server, node, model, monkeypatch,
                                                                       tmp_path):
    from PIL import Image

    monkeypatch.setattr(host.fp, "get_input_directory", lambda: str(tmp_path), raising=False)
    buf = io.BytesIO()
    Image.new("RGB", (24, 40), (200, 30, 30)).save(buf, format="PNG")
    answers = []

    def drop_and_wear():
        answers.append(live.add_garment(NODE_ID, buf.getvalue(), "red top.png", str(tmp_path)))
        answers.append(live.switch({"node_id": NODE_ID, "index": answers[0]["index"], "slot": "upper"}))
    _at_step(host, monkeypatch, STEPS + 1, drop_and_wear)
    frames, _, *rest = _generate(node, model)
    added, asked = answers
    assert added["index"] == 3 and added["running"] and added["file"].startswith("red_top_")
    assert (tmp_path / live.UPLOAD_FOLDER / added["file"]).is_file() and rest[-1] == f"{2 * PER_CHUNK}:upper:3"
    # the saved workflow lists the file in 'wardrobe_uploads': the schedule replays with it
    monkeypatch.setattr(host.utils, "PROGRESS_BAR_HOOK", None)
    again = _generate(node, model, switch_frames=rest[-1], wardrobe_uploads=added["file"])
    assert torch.equal(again[0], frames)
    with pytest.raises(ValueError, match="wardrobe_uploads: 'gone.png' is not in"):
        _generate(node, model, wardrobe_uploads="gone.png")
    with pytest.raises(live.LiveError, match="not an image"):
        live.add_garment(NODE_ID, b"not a png", "x.png", str(tmp_path))


@pytest.mark.parametrize("text, words", [
    ("12:upper:9", "wardrobe garment 9 but the wardrobe holds 3"),
    ("12:full:0", "names slot(s) ['full']"),
    ("12:hat:0", "unknown garment slot(s) ['hat'] in the wardrobe schedule"),
    ("12:upper", "frame:slot:index"),
    ("12:upper:0, 12:upper:1", "switch twice at frame 12"),
])
def test_a_bad_wardrobe_schedule_names_switch_frames(node, model, text, words):
    with pytest.raises(ValueError, match=r"switch_frames: .*" + words.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        _generate(node, model, switch_frames=text)
    assert node.validate_inputs(switch_frames="12:upper:0, 24:lower:1:refresh") is True
    assert node.validate_inputs(switch_frames="12:upper").startswith("switch_frames:")


def test_schedule_is_the_last_output_and_a_rerun_after_a_live_change_is_not_cached(host, live, node):
    outputs = [o.display_name for o in node.define_schema().outputs]
    assert outputs[-1] == "schedule" and outputs[:3] == ["frames", "stream", "fps"]
    before = node.fingerprint_inputs()  # node 12 (the `node` fixture's id)
    quiet = host.E.fc.LiveControl(("full",), (SIZE, SIZE))  # no wardrobe, no switch, no Stop: cacheable
    with live.running(NODE_ID, None, quiet):
        pass
    assert node.fingerprint_inputs() == before
    control = host.E.fc.LiveControl(("full",), (SIZE, SIZE), WARDROBE.movedim(-1, 1) * 2 - 1)
    with live.running(NODE_ID, None, control):
        pass
    assert node.fingerprint_inputs() == before + 1 and live.RUNS.changes("13") == 0
