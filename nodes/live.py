"""Live runs of stream generate, addressed by node id, and what the pack's live routes do with a request.

While 'FashionChameleon stream generate' runs, its `LiveControl` (engine) is registered here under
the node's id and the prompt's id. The handlers below are what the HTTP routes (live_routes.py)
call; they are plain functions of a JSON body that return a JSON answer or raise `LiveError`
(an HTTP status and a message for the panel), so they run without a server in tests.

    switch(body)   {node_id, prompt_id?, index, slot, policy?} -> the queued request
    stop(body)     {node_id, prompt_id?}                       -> Stop at the next chunk boundary
    status(body)   {node_id}                                   -> running?, wardrobe size, slots, pending
    add_garment(node_id, data, filename)                       -> the image saved to ComfyUI's input folder
                                                                  (for the node's 'wardrobe_uploads') and,
                                                                  when the node runs, its live wardrobe index

`stream_live(...)` is the node's side: it registers the run, yields the engine's chunks from
`LiveControl.run` and sends each one to the panel (live_events.py).

A refused request changes nothing: the engine checks it before queueing, and the stream goes on.
"""
from __future__ import annotations

import hashlib
import io as _io
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..fashionchameleon import Chunk, LiveControl, NAMED_POLICIES, load_image, policy_name
from .checks import rule_input
from .convert import fit_garment
from .live_events import LiveChannel, request_json
from .types import POLICIES

__all__ = ["LiveError", "LiveRun", "RUNS", "running", "stream_live", "switch", "stop", "status", "add_garment",
           "policy_key", "UPLOAD_FOLDER", "upload_path", "load_uploads"]

UPLOAD_FOLDER = "fashionchameleon_wardrobe"  # inside ComfyUI's input folder
_NAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_UPLOAD = 16 * 2 ** 20


class LiveError(Exception):
    """A live request that cannot be served: `status` (HTTP) and a message for the panel."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class LiveRun:
    """One running stream generate node."""

    node_id: str
    prompt_id: str | None
    control: LiveControl
    started: float = field(default_factory=time.perf_counter)
    frames_done: int = 0


class _Runs:
    """The running nodes, by node id (thread-safe: the prompt worker adds them, the server's loop reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, LiveRun] = {}
        self._changes: dict[str, int] = {}  # node id -> live runs so far (see `changes`)

    def add(self, run: LiveRun) -> None:
        with self._lock:
            self._runs[run.node_id] = run

    def remove(self, run: LiveRun) -> None:
        with self._lock:
            if self._runs.get(run.node_id) is run:
                del self._runs[run.node_id]
            c = run.control
            if c.wardrobe_size or c.schedule or c.stopped:
                self._changes[run.node_id] = self._changes.get(run.node_id, 0) + 1

    def changes(self, node_id: str | None) -> int:
        """How many runs of node `node_id` were live (a wardrobe to click, a live switch or a Stop): its
        fingerprint, so that queueing the same inputs again starts a new live run instead of reusing the output."""
        with self._lock:
            return self._changes.get(str(node_id), 0)

    def get(self, node_id: str) -> LiveRun | None:
        with self._lock:
            return self._runs.get(node_id)


RUNS = _Runs()


@contextmanager
def running(node_id: str | None, prompt_id: str | None, control: LiveControl) -> Iterator[LiveRun]:
    """Register `control` under `node_id` for the duration of the block (not addressable without an id)."""
    run = LiveRun(str(node_id) if node_id is not None else "", prompt_id, control)
    if node_id is None:
        yield run
        return
    RUNS.add(run)
    try:
        yield run
    finally:
        RUNS.remove(run)


def stream_live(node_id: str | None, control: LiveControl, session, frames: int, fps: float, progress=None,
                cancel=None) -> Iterator[Chunk]:
    """The chunks of a live run of `session` (engine: `LiveControl.run`), each sent to the panel as it is made."""
    channel = LiveChannel(node_id)
    start = session.frames_generated
    with running(node_id, channel.prompt_id, control) as run:
        channel.start(control, fps, frames)
        try:
            for live in control.run(session, frames, progress, cancel):
                run.frames_done = session.frames_generated - start
                channel.chunk(live, live.chunk.first_frame - start, run.frames_done, fps)
                yield live.chunk
        except BaseException:  # ComfyUI's interrupt is an Exception in 0.8 and a BaseException later
            channel.end(control, run.frames_done, cancelled=True)
            raise
        channel.end(control, run.frames_done)


def load_uploads(text: str | None, size: tuple[int, int]) -> list:
    """The garments named in 'wardrobe_uploads' (files the panel saved in the input folder), fitted to `size`."""
    import folder_paths

    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    out = []
    for name in names:
        path = upload_path(folder_paths.get_input_directory(), name)
        if not path.is_file():
            raise ValueError(f"wardrobe_uploads: {name!r} is not in {path.parent}; drop the garment into the live "
                             f"panel again, or remove its name from 'wardrobe_uploads'")
        out.append(fit_garment(load_image(path), size))
    return out


# ----------------------------------------------------------------------------------- handlers
def _node_id(body: dict[str, Any]) -> str:
    node = body.get("node_id")
    if node is None or str(node) == "":
        raise LiveError(400, "node_id: say which 'FashionChameleon stream generate' node the request is for")
    return str(node)


def _run(body: dict[str, Any]) -> LiveRun:
    node = _node_id(body)
    run = RUNS.get(node)
    prompt = body.get("prompt_id")
    if run is None or (prompt and run.prompt_id and prompt != run.prompt_id):
        raise LiveError(409, f"node {node} is not streaming right now: queue the workflow, then click a garment "
                             f"(or press Stop) while 'FashionChameleon stream generate' shows its live frames")
    return run


def policy_key(policy: str | None) -> str:
    """A policy as the panel names it (SwapGarment's labels or the engine's names) -> the engine's name."""
    if policy is None or policy == "":
        return next(iter(NAMED_POLICIES))
    if policy in POLICIES:
        return policy_name(POLICIES[policy])
    if policy in NAMED_POLICIES:
        return policy
    raise LiveError(400, f"policy: unknown rescheduling policy {policy!r}; choose one of {list(POLICIES)}")


def switch(body: dict[str, Any]) -> dict[str, Any]:
    """Queue a wardrobe garment for a slot of the running node; it is worn from the next chunk."""
    run = _run(body)
    index, slot = body.get("index"), body.get("slot")
    if isinstance(index, str) and index.isdigit():
        index = int(index)
    key = policy_key(body.get("policy"))
    with rule_input(REFUSALS, error=lambda text: LiveError(400, f"{text}. The stream goes on unchanged")):
        req = run.control.request(index, str(slot), key)
    return {**request_json(req), "frames_done": run.frames_done}


def _no_garment(f: dict[str, Any]) -> str:
    have = "the wardrobe is empty" if not f["size"] else f"the wardrobe holds garments 1 to {f['size']}"
    return (f"garment: there is no wardrobe garment #{_shown(f['index'])} ({have}); connect more images to "
            f"'wardrobe' or drop one into the panel")


# A refused switch request in the panel's words (engine rules: `LiveControl.request`).
REFUSALS = {
    "wardrobe_index": _no_garment,
    "stream_slot": lambda f: (f"slot: this stream has no {', '.join(map(repr, f['unknown']))} slot; its slots are "
                              f"{list(f['slots'])}: pick one in the slot selector"),
    None: lambda f: f["message"],
}


def _shown(index: Any) -> str:
    """Wardrobe garments are numbered from 1 in the panel (keys 1-9)."""
    return str(index + 1) if isinstance(index, int) and not isinstance(index, bool) else repr(index)


def stop(body: dict[str, Any]) -> dict[str, Any]:
    run = _run(body)
    run.control.stop()
    return {"stopping": True, "frames_done": run.frames_done}


def status(body: dict[str, Any]) -> dict[str, Any]:
    run = RUNS.get(_node_id(body))
    if run is None:
        return {"running": False}
    c = run.control
    return {"running": True, "prompt_id": run.prompt_id, "slots": list(c.slots), "wardrobe": c.wardrobe_size,
            "pending": [r.id for r in c.pending], "schedule": c.schedule_text, "frames_done": run.frames_done}


def upload_path(input_dir: str | Path, name: str) -> Path:
    """Where an uploaded wardrobe file `name` (as listed in 'wardrobe_uploads') lives; never outside the folder."""
    base = (Path(input_dir) / UPLOAD_FOLDER).resolve()
    path = (base / Path(name).name).resolve()
    if path.parent != base:
        raise ValueError(f"wardrobe_uploads: {name!r} is not a file name in {base}")
    return path


def add_garment(node_id: str, data: bytes, filename: str, input_dir: str | Path) -> dict[str, Any]:
    """Save an uploaded garment image under `input_dir` and, when the node is streaming, add it to its wardrobe.

    Returns {"file": name for 'wardrobe_uploads', "index": wardrobe index or None, "running": bool}.
    """
    if not data:
        raise LiveError(400, "garment: the upload is empty; drop an image file (PNG, JPEG, WebP)")
    if len(data) > MAX_UPLOAD:
        raise LiveError(413, f"garment: the file is {len(data) // 2 ** 20} MiB; upload a flat-lay under "
                             f"{MAX_UPLOAD // 2 ** 20} MiB")
    try:
        from PIL import Image

        with Image.open(_io.BytesIO(data)) as im:
            im.load()
            image = im.convert("RGBA")
    except Exception:  # noqa: BLE001 - any undecodable upload gets the same answer
        raise LiveError(400, f"garment: {filename!r} is not an image this server can read; drop a PNG, JPEG or "
                             f"WebP flat-lay") from None
    stem = _NAME.sub("_", Path(filename or "garment").stem)[:40] or "garment"
    name = f"{stem}_{hashlib.sha1(data).hexdigest()[:10]}.png"
    path = upload_path(input_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    run = RUNS.get(str(node_id))
    index = None
    if run is not None:
        garment = fit_garment(load_image(path), run.control.image_size)
        index = run.control.add_garment(garment)
    return {"file": name, "index": index, "running": run is not None}
