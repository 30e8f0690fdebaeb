"""The live wardrobe panel (web/live_wardrobe.js) under node, on a hand-written DOM and ComfyUI stand-in.

tests/web_shim/ holds the stand-ins (scripts/app.js, scripts/api.js: record what the extension registers,
subscribes to and POSTs; dom.js: the few DOM calls the panel makes) and driver.js, which loads the extension
the way ComfyUI serves it (extensions/<pack>/live_wardrobe.js next to scripts/), plays one live run and writes
what the panel showed and sent. The run's websocket events are made here by the pack's own LiveChannel
(nodes/live_events.py), and the panel's POST bodies are fed back to the pack's route handlers (nodes/live.py),
so a change of payload on either side fails this test.
"""
from __future__ import annotations

import importlib
import io
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHIM = Path(__file__).resolve().parent / "web_shim"
NODE = shutil.which("node")
NODE_ID = "12"
PROMPT_ID = "prompt-1"
SLOTS = ("upper", "lower")
SIZE = 16
PER_CHUNK = 6
FPS = 16.0
CLICK = {"index": 1, "slot": "lower"}  # the driver picks slot 'lower', then clicks thumbnail 2
KEY = "1"  # then presses 1: garment 0 into the same slot
LATE = {"index": 2}  # later clicks thumbnail 3, whose POST is answered after the chunk that wears it

pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js) is not on PATH: the web extension test runs "
                                                     "web/live_wardrobe.js under node")


@pytest.fixture
def pack(host):
    name = host.pack.__name__
    return types.SimpleNamespace(live=importlib.import_module(f"{name}.nodes.live"),
                                 events=importlib.import_module(f"{name}.nodes.live_events"),
                                 types=importlib.import_module(f"{name}.nodes.types"), fc=host.E.fc)


@pytest.fixture
def server(monkeypatch):
    """ComfyUI's `server` module as the events see it: PromptServer.instance.send_sync records each event."""
    sent = []
    instance = types.SimpleNamespace(send_sync=lambda event, data, sid=None: sent.append((event, data)),
                                     client_id="client-1", last_prompt_id=PROMPT_ID)
    module = types.ModuleType("server")
    module.PromptServer = types.SimpleNamespace(instance=instance)
    monkeypatch.setitem(sys.modules, "server", module)
    return sent


def _images(seed: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1


def _chunk(index: int, seed: int):
    """A chunk as the engine yields it: `frames` [1, 3, T, H, W], each frame different."""
    return types.SimpleNamespace(index=index, first_frame=index * PER_CHUNK,
                                 frames=_images(seed, PER_CHUNK).permute(1, 0, 2, 3).unsqueeze(0))


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (20, 24), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _scenario(pack, server, tmp_path) -> dict:
    """One live run's events, made by the pack's LiveChannel, and the server's answer to a dropped garment."""
    fc, live, events = pack.fc, pack.live, pack.events
    control = fc.LiveControl(SLOTS, (SIZE, SIZE), list(_images(30, 3)))
    channel = events.LiveChannel(NODE_ID)
    with live.running(NODE_ID, channel.prompt_id, control):
        channel.start(control, FPS, 4 * PER_CHUNK)
        channel.chunk(fc.LiveChunk(_chunk(0, 1)), 0, PER_CHUNK, FPS)
        click = control.request(CLICK["index"], CLICK["slot"], "full")  # what the panel's click queues: id 1
        key = control.request(int(KEY) - 1, CLICK["slot"], "full")  # and its key press: id 2
        garment = live.add_garment(NODE_ID, _png(), "my shirt.png", tmp_path / "input")
        channel.chunk(fc.LiveChunk(_chunk(1, 2), applied=(click,)), PER_CHUNK, 2 * PER_CHUNK, FPS)
        late = control.request(LATE["index"], CLICK["slot"], "full")  # id 3: worn before its POST is answered
        channel.chunk(fc.LiveChunk(_chunk(2, 4), applied=(late,)), 2 * PER_CHUNK, 3 * PER_CHUNK, FPS)
        schedule = fc.format_schedule([fc.WardrobeSwitch(PER_CHUNK, click.slot, click.index, click.policy)])
        channel.end(types.SimpleNamespace(stopped=True, schedule_text=schedule, carried=(key,)), 2 * PER_CHUNK)
    events.LiveChannel("99").chunk(fc.LiveChunk(_chunk(0, 3)), 0, PER_CHUNK, FPS)  # another node's stream
    names = [e for e, _ in server]
    assert names == ["fashionchameleon.live_start"] + ["fashionchameleon.live_chunk"] * 3 + \
        ["fashionchameleon.live_end", "fashionchameleon.live_chunk"]
    start, chunk1, chunk2, chunk3, end, foreign = (d for _, d in server)
    assert garment["index"] == 3 and garment["running"]
    return {"node_id": NODE_ID, "other_class": "KSampler", "click": CLICK, "key": KEY, "late": LATE,
            "garment_answer": garment, "events": {"start": start, "chunk1": chunk1, "chunk2": chunk2, "chunk3": chunk3,
                                                  "end": end, "foreign_chunk": foreign}}


def _run_driver(tmp_path: Path, scenario: dict) -> dict:
    """Lay out ComfyUI's web root (scripts/, extensions/<pack>/) in `tmp_path` and run the driver there."""
    web = tmp_path / "web"
    shutil.copytree(SHIM, web)
    (web / "extensions" / "fashionchameleon").mkdir(parents=True)
    ext = web / "extensions" / "fashionchameleon" / "live_wardrobe.js"
    shutil.copy(ROOT / "web" / "live_wardrobe.js", ext)
    (web / "package.json").write_text(json.dumps({"type": "module"}))
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    report_path = tmp_path / "report.json"
    proc = subprocess.run([NODE, str(web / "driver.js"), str(tmp_path / "scenario.json"), str(ext), str(report_path)],
                          cwd=web, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"node exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert report_path.is_file(), f"the driver wrote no report\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(report_path.read_text())
    failed = [s for s in report["steps"] if "error" in s]
    assert not failed, f"step {failed[0]['name']!r} threw:\n{failed[0]['error']}"
    assert report.get("done"), report
    return {s["name"]: s for s in report["steps"]}


def _posts(step: dict) -> list[tuple[str, dict | None]]:
    out = []
    for c in step["calls"]:
        assert c["method"] == "POST", c
        body = json.loads(c["body"]) if isinstance(c["body"], str) else c["body"]
        if isinstance(c["body"], str):
            assert c["headers"] == {"Content-Type": "application/json"}, c
        out.append((c["path"], body))
    return out


def test_the_live_wardrobe_panel_follows_a_live_run_and_sends_what_the_routes_accept(pack, server, tmp_path):
    scenario = _scenario(pack, server, tmp_path)
    ev = scenario["events"]
    steps = _run_driver(tmp_path, scenario)
    policies = list(pack.types.POLICIES)

    # loaded, registered once, subscribed to the three events (and the 1-9 keys, in the capture phase)
    assert steps["load"]["extensions"] == [{"name": "FashionChameleon.LiveWardrobe", "hooks": ["setup", "nodeCreated"]}]
    assert sorted(steps["setup"]["api"]) == sorted(
        f"fashionchameleon.{e}" for e in ("live_start", "live_chunk", "live_end"))
    assert steps["setup"]["window"] == [["keydown", True]] and steps["setup"]["head"] == [["STYLE", True]]

    # only stream generate nodes get the panel
    assert steps["other node"] == {"name": "other node", "domWidgets": 0, "panel": False, "sizes": 0, "calls": []}
    node = steps["node"]
    assert node["domWidgets"] == 1 and node["widget"] == {"name": "live_wardrobe", "type": "fc_live", "root": "fc-live",
                                                          "isPanelRoot": True, "serialize": False, "height": 330,
                                                          "minHeight": 330}
    assert node["sizes"] == [[380, 260]] and node["rafQueued"] >= 1
    idle = node["panel"]
    assert idle["counter"] == "not running" and idle["stopDisabled"] and idle["thumbs"] == [] and not idle["running"]
    assert steps["key before start"]["calls"] == [] and not steps["key before start"]["prevented"]

    # live_start: the wardrobe's thumbnails with keys 1-3, the stream's slots and the policies, Stop enabled
    start = steps["start"]
    assert start["listeners"] == 1
    p = start["panel"]
    assert p["state"] == "running" and p["running"] and not p["stopDisabled"] and p["counter"] == "0 frames"
    assert [t["src"] for t in p["thumbs"]] == ev["start"]["wardrobe"] and len(p["thumbs"]) == 3
    assert [t["key"] for t in p["thumbs"]] == ["1", "2", "3"] and [t["index"] for t in p["thumbs"]] == ["0", "1", "2"]
    assert p["slots"] == list(SLOTS) and [v for v, _ in p["policies"]] == policies
    assert p["policies"][0][1] == "full" and "press 1-3" in p["status"]

    # live_chunk: the counter, the frames queued and played at the stream's rate
    c1 = steps["chunk1"]
    assert c1["listeners"] == 1
    assert c1["before"]["counter"].startswith(f"{PER_CHUNK} frames · ") and c1["before"]["counter"].endswith(" FPS")
    assert c1["before"]["counterFrames"] == str(PER_CHUNK) and c1["before"]["queued"] == PER_CHUNK
    assert c1["first"] == ev["chunk1"]["frames"][0] and c1["second"] == ev["chunk1"]["frames"][1]
    assert c1["after"]["queued"] == PER_CHUNK - 2

    # a click on thumbnail 2 with slot 'lower': one POST to /switch, the thumbnail pending
    click = steps["click thumb"]
    assert _posts(click) == [("/fashionchameleon/live/switch", {"node_id": NODE_ID, "prompt_id": PROMPT_ID,
                                                                 "index": 1, "slot": "lower", "policy": policies[0]})]
    t = click["panel"]["thumbs"][1]
    assert "fc-pending" in t["classes"].split() and t["badges"] == ["lower: next chunk"]

    # keys: ctrl+1, 'a', '0' and a 1 typed into an input are not switches; a plain 1 is garment 1
    assert steps["ignored keys"]["calls"] == [] and steps["ignored keys"]["prevented"] == [False] * 4
    key = steps["key"]
    assert key["prevented"] and _posts(key) == [("/fashionchameleon/live/switch", {
        "node_id": NODE_ID, "prompt_id": PROMPT_ID, "index": 0, "slot": "lower", "policy": policies[0]})]
    assert "fc-pending" in key["panel"]["thumbs"][0]["classes"].split()

    # another node's chunk leaves this panel alone
    assert steps["foreign chunk"]["unchanged"]

    # the chunk that wears request 1: thumbnail 2 worn in 'lower', request 2 still pending
    c2 = steps["chunk2"]["panel"]
    assert c2["counter"].startswith(f"{2 * PER_CHUNK} frames · ") and c2["counterFrames"] == str(2 * PER_CHUNK) and c2["queued"] == PER_CHUNK - 2 + PER_CHUNK
    assert c2["thumbs"][1]["classes"].split() == ["fc-thumb", "fc-worn"] and c2["thumbs"][1]["badges"] == ["lower"]
    assert "fc-pending" in c2["thumbs"][0]["classes"].split()
    assert c2["status"].startswith(f"Garment 2 in lower from frame {PER_CHUNK}")

    # a POST answered after the chunk that wears it: the thumbnail is worn, not left pending
    late = steps["late answer"]["panel"]["thumbs"][LATE["index"]]
    assert late["classes"].split() == ["fc-thumb", "fc-worn"] and late["badges"] == ["lower"]

    # a dropped garment: uploaded, listed in 'wardrobe_uploads', joins the wardrobe as garment 4
    drop = steps["drop garment"]
    [(path, body)] = _posts(drop)
    assert path == f"/fashionchameleon/live/garment?node_id={NODE_ID}&filename=my%20shirt.png" and body["blob"] == 4
    assert drop["calls"][0]["headers"] == {} and drop["prevented"]
    assert drop["uploads"] == f"coat_0123456789.png, {scenario['garment_answer']['file']}"
    assert len(drop["panel"]["thumbs"]) == 4 and drop["panel"]["thumbs"][3]["src"].startswith("blob:")

    # Stop: a POST to /stop, the button off
    stop = steps["stop"]
    assert _posts(stop) == [("/fashionchameleon/live/stop", {"node_id": NODE_ID, "prompt_id": PROMPT_ID})]
    assert stop["panel"]["stopDisabled"] and stop["panel"]["running"]

    # live_end: not running, nothing pending, the schedule offered for 'switch_frames'
    end = steps["end"]["panel"]
    assert steps["end"]["listeners"] == 1
    assert end["state"] == "stopped" and not end["running"] and end["stopDisabled"]
    assert end["schedule"] == ev["end"]["schedule"] != "" and not end["useScheduleDisabled"]
    assert not any("fc-pending" in t["classes"] for t in end["thumbs"])
    assert end["status"].startswith(f"Stopped after {2 * PER_CHUNK} frames.") and "waits in the output" in end["status"]
    after = steps["after end"]
    assert after["calls"] == [] and not after["prevented"] and after["panel"]["statusError"]
    assert after["panel"]["status"].startswith("Not streaming")
    assert steps["use schedule"]["switchFrames"] == ev["end"]["schedule"]
    assert steps["removed"]["rafQueued"] == 0  # playback stops with the node

    # the bodies the panel sent, fed to the pack's own handlers on a run like the one above
    live = pack.live
    control = pack.fc.LiveControl(SLOTS, (SIZE, SIZE), list(_images(30, 3)))
    with live.running(NODE_ID, PROMPT_ID, control):
        answers = [live.switch(body) for _, body in _posts(click) + _posts(key)]
        assert live.stop(_posts(stop)[0][1])["stopping"] and control.stopped
    assert [(a["request"], a["index"], a["slot"], a["policy"]) for a in answers] == [
        (1, 1, "lower", "full"), (2, 0, "lower", "full")]
    assert [(r.id, r.index, r.slot) for r in control.pending] == [(1, 1, "lower"), (2, 0, "lower")]
