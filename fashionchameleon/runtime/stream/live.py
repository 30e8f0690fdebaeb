"""Live control of a running stream: garment requests and Stop from another thread, applied at chunk boundaries.

A `LiveControl` sits beside one run of `StreamSession.generate` (the only generation loop) and
is the only object other threads touch while it runs:

    request(index, slot, policy)  checks the wardrobe index, the slot and the policy, and queues the
                                  request; a refused request raises `InputRuleError` and changes
                                  nothing (the session is never touched from the calling thread)
    add_garment(image)            appends a garment to the wardrobe; returns its index
    schedule_ahead(session, sw)   before the run: schedules recorded switches (a replay), checked the same way
    stop()                        ends the run at the next chunk boundary, keeping every chunk so far

`run(session, frames)` yields each chunk as it is made. Between two chunks it takes every queued
request, in arrival order, and hands it to `session.request_switch`, so a request made while
chunk k is generated is worn from chunk k + 1. Of several requests for one slot at one boundary
the last wins (the earlier ones would never be seen) and only it is recorded. Every applied
switch is recorded as a `WardrobeSwitch` (frame from the run's start, slot, wardrobe index,
policy): `schedule` / `schedule_text`. Requests still queued when the run ends go into the
output session as pending switches (recorded at the run's last frame), so a continuation wears
them from its first chunk. A cancelled or failed chunk raises through `run` as it does through
`generate`, and the session rolls it back.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ..rules import InputRuleError, check_stream_slots
from .live_schedule import NAMED_POLICIES, WardrobeSwitch, format_schedule
from .session import CancelFn, Chunk, ProgressFn, StreamSession

__all__ = ["LiveControl", "LiveRequest", "LiveChunk"]


@dataclass(frozen=True)
class LiveRequest:
    """One accepted garment request: wardrobe garment `index` into `slot` with policy `policy`."""

    id: int  # 1, 2, ... in arrival order, per control
    index: int
    slot: str
    policy: str


@dataclass(frozen=True)
class LiveChunk:
    """A chunk of a live run, and the requests it is the first chunk to wear."""

    chunk: Chunk
    applied: tuple[LiveRequest, ...] = ()  # switched right before this chunk
    superseded: tuple[LiveRequest, ...] = ()  # replaced at the same boundary by a later request for the slot


class LiveControl:
    """Thread-safe requests, Stop and the recorded schedule of one live run. See the module docstring."""

    def __init__(self, slots: Sequence[str], image_size: tuple[int, int],
                 wardrobe: torch.Tensor | Sequence[torch.Tensor] = ()) -> None:
        self.slots = tuple(slots)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self._lock = threading.Lock()
        self._wardrobe: list[torch.Tensor] = []
        self._queue: list[LiveRequest] = []
        self._schedule: list[WardrobeSwitch] = []  # applied live requests
        self._ahead: list[WardrobeSwitch] = []  # given to schedule_ahead
        self._carried: tuple[LiveRequest, ...] = ()
        self._next_id = 1
        self._stop = threading.Event()
        for garment in wardrobe:
            self.add_garment(garment)

    # ------------------------------------------------------------------ any thread
    def add_garment(self, garment: torch.Tensor) -> int:
        """Append a flat-lay `[3, H, W]` in [-1, 1] at the stream's size; returns its wardrobe index."""
        h, w = self.image_size
        if garment.ndim != 3 or tuple(garment.shape) != (3, h, w):
            raise InputRuleError(f"a wardrobe garment must be one image [3, {h}, {w}] (the stream's size), got "
                                 f"{list(garment.shape)}", "wardrobe_garment", shape=tuple(garment.shape),
                                 size=(h, w))
        image = garment.detach().to("cpu", torch.float32).clone()
        with self._lock:
            self._wardrobe.append(image)
            return len(self._wardrobe) - 1

    @property
    def wardrobe_size(self) -> int:
        with self._lock:
            return len(self._wardrobe)

    def garment(self, index: int) -> torch.Tensor:
        """Wardrobe garment `index` `[3, H, W]` (the stored tensor: do not write to it)."""
        with self._lock:
            return self._wardrobe[index]

    def request(self, index: int, slot: str, policy: str = "full") -> LiveRequest:
        """Queue a switch of `slot` to wardrobe garment `index` at the next chunk boundary.

        Refused with `InputRuleError`, and nothing queued, for: an index outside the wardrobe
        (rule "wardrobe_index", facts `index`, `size`), a slot the stream lacks (rule
        "stream_slot", facts `unknown`, `slots`), a policy that is not a preset (rule
        "policy_name", facts `policy`, `policies`).
        """
        with self._lock:
            self._check(index, slot, policy)
            req = LiveRequest(self._next_id, index, slot, policy)
            self._next_id += 1
            self._queue.append(req)
            return req

    def _check(self, index: int, slot: str, policy: str) -> None:
        """The request rules (see `request`); call with the lock held."""
        check_stream_slots((slot,), self.slots)
        if policy not in NAMED_POLICIES:
            raise InputRuleError(f"unknown rescheduling policy {policy!r}; choose one of {list(NAMED_POLICIES)}",
                                 "policy_name", policy=policy, policies=tuple(NAMED_POLICIES))
        size = len(self._wardrobe)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            what = "is empty" if size == 0 else f"holds garments 0 to {size - 1}"
            raise InputRuleError(f"unknown garment: wardrobe index {index!r}, and the wardrobe {what}",
                                 "wardrobe_index", index=index, size=size)

    def stop(self) -> None:
        """End the run at the next chunk boundary (the chunk being made is kept)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def pending(self) -> tuple[LiveRequest, ...]:
        """Requests queued and not yet applied."""
        with self._lock:
            return tuple(self._queue)

    @property
    def schedule(self) -> tuple[WardrobeSwitch, ...]:
        """Every switch of the run so far, frames ascending: those given to `schedule_ahead` and the live ones
        (a scheduled one replaced at its frame by a live request for its slot is left out: it is never seen)."""
        with self._lock:
            live = {(s.frame, s.slot) for s in self._schedule}
            ahead = [s for s in self._ahead if (s.frame, s.slot) not in live]
            return tuple(sorted(ahead + self._schedule, key=lambda s: s.frame))  # stable: ahead first

    @property
    def schedule_text(self) -> str:
        return format_schedule(self.schedule)

    @property
    def carried(self) -> tuple[LiveRequest, ...]:
        """Requests that arrived after the last chunk: pending switches of the output session."""
        return self._carried

    # ------------------------------------------------------------------ the generating thread
    def schedule_ahead(self, session: StreamSession, switches: Sequence[WardrobeSwitch]) -> None:
        """Schedule recorded switches on `session` before the run (frames from its current end), and record them.

        Every switch is checked first (the rules of `request`), so a refused schedule schedules nothing.
        This is how a schedule from `schedule_text` is replayed.
        """
        with self._lock:
            for s in switches:
                self._check(s.index, s.slot, s.policy)
            start = session.frames_generated
            for s in switches:
                session.schedule_switch(start + s.frame, s.slot, self._wardrobe[s.index], s.switch_policy)
            self._ahead.extend(switches)

    def _boundary(self, session: StreamSession, start: int) -> tuple[tuple[LiveRequest, ...], tuple[LiveRequest, ...]]:
        """Hand the queued requests to `session` (last per slot wins); returns (applied, superseded)."""
        with self._lock:
            queued, self._queue = self._queue, []
        last = {r.slot: r for r in queued}
        applied = tuple(r for r in queued if last[r.slot] is r)
        superseded = tuple(r for r in queued if last[r.slot] is not r)
        frame = session.frames_generated - start
        for r in applied:
            session.request_switch(r.slot, self.garment(r.index), NAMED_POLICIES[r.policy])
        with self._lock:
            self._schedule.extend(WardrobeSwitch(frame, r.slot, r.index, r.policy) for r in applied)
        return applied, superseded

    def run(self, session: StreamSession, num_frames: int, progress: ProgressFn | None = None,
            cancel: CancelFn | None = None) -> Iterator[LiveChunk]:
        """Yield the chunks of `session.generate(num_frames, ...)`, applying requests between chunks and
        ending after the chunk during which `stop()` was called."""
        start = session.frames_generated
        applied, superseded = self._boundary(session, start)
        for chunk in session.generate(num_frames, progress, cancel):
            yield LiveChunk(chunk, applied, superseded)
            applied, superseded = (), ()
            if self.stopped:
                break
            applied, superseded = self._boundary(session, start)
        # applied after the last chunk (or queued after Stop): pending in the output session
        more, _ = self._boundary(session, start)
        self._carried = applied + more
