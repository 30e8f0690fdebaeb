"""The live panel's websocket events: a run's start (wardrobe thumbnails), each chunk's frames, its end.

Events go through `PromptServer.instance.send_sync` (thread-safe; the prompt worker calls it) to the
client that queued the prompt:

    fashionchameleon.live_start  {node, prompt_id, slots, policies, wardrobe: [JPEG data URL], fps, frames}
    fashionchameleon.live_chunk  {node, prompt_id, chunk, first_frame, frames: [JPEG data URL], fps,
                                  frames_done, elapsed_s, chunk_s, applied: [request...], superseded: [id]}
    fashionchameleon.live_end    {node, prompt_id, frames_done, stopped, cancelled, schedule, carried: [id]}

One message carries a whole chunk, so the panel receives the frames together with their frame
numbers and the switches they wear, and plays them at the stream's rate from its own clock:
ComfyUI's progress-preview channel shows only the latest image per node, is off unless the server
runs with --preview-method, and would need the server to pace frames one by one. Without a server
(tests, scripts) every send is a no-op and no image is encoded.
"""
from __future__ import annotations

import base64
import io
import time
from typing import Any, Callable

import torch

from .convert import preview_image
from .types import POLICIES

__all__ = ["LiveChannel", "data_url", "request_json"]

JPEG_QUALITY = 85


def data_url(frame: torch.Tensor) -> str:
    """One engine frame `[3, H, W]` in [-1, 1] -> a JPEG data URL."""
    buf = io.BytesIO()
    preview_image(frame.detach().float().cpu()).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def request_json(req) -> dict[str, Any]:
    return {"request": req.id, "index": req.index, "slot": req.slot, "policy": req.policy}


def _server_send() -> tuple[Callable[[str, dict, Any], None] | None, Any, Any]:
    """(send_sync, the prompt's client id, the prompt id) of ComfyUI's server, or (None, None, None) without one."""
    try:
        from server import PromptServer
    except ImportError:
        return None, None, None
    server = getattr(PromptServer, "instance", None)
    if server is None:
        return None, None, None
    return server.send_sync, getattr(server, "client_id", None), getattr(server, "last_prompt_id", None)


class LiveChannel:
    """The events of one live run of node `node_id`."""

    def __init__(self, node_id: str | None) -> None:
        send, self.client, self.prompt_id = _server_send() if node_id is not None else (None, None, None)
        self._send, self.node = send, None if node_id is None else str(node_id)
        self.t0 = time.perf_counter()
        self.last = self.t0

    @property
    def on(self) -> bool:
        return self._send is not None

    def send(self, event: str, data: dict[str, Any]) -> None:
        if self._send is not None:
            self._send(f"fashionchameleon.{event}", {"node": self.node, "prompt_id": self.prompt_id, **data},
                       self.client)

    def start(self, control, fps: float, frames: int) -> None:
        if self.on:
            thumbs = [data_url(control.garment(i)) for i in range(control.wardrobe_size)]
            self.send("live_start", {"slots": list(control.slots), "policies": list(POLICIES), "wardrobe": thumbs,
                                     "fps": fps, "frames": frames})
        self.t0 = self.last = time.perf_counter()

    def chunk(self, live_chunk, first_frame: int, frames_done: int, fps: float) -> None:
        now = time.perf_counter()
        if self.on:
            video = live_chunk.chunk.frames[0]  # [3, T, H, W]
            self.send("live_chunk", {
                "chunk": live_chunk.chunk.index, "first_frame": first_frame, "fps": fps,
                "frames": [data_url(video[:, t]) for t in range(video.shape[1])], "frames_done": frames_done,
                "elapsed_s": round(now - self.t0, 4), "chunk_s": round(now - self.last, 4),
                "applied": [request_json(r) for r in live_chunk.applied],
                "superseded": [r.id for r in live_chunk.superseded]})
        self.last = now

    def end(self, control, frames_done: int, cancelled: bool = False) -> None:
        self.send("live_end", {"frames_done": frames_done, "stopped": control.stopped, "cancelled": cancelled,
                               "schedule": control.schedule_text, "carried": [r.id for r in control.carried]})
