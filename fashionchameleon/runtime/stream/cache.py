"""The streaming KV cache: named segments, pre-allocated, written in place, bounded.

Layout in latent frames (one buffer per K and V for all layers, `[L, B, H, frames*S, Dh]`):

    | reference view(s) | garment slot(s) | sink | FIFO window (ring) |

- condition segments (`reference`, `garment:<slot>`) are written by a prefill and by the
  rescheduling operations; video chunks never touch them;
- `sink` holds the first video frames after a (re)start and is never evicted;
- `window` is a ring of recent video frames that includes the chunk being generated; a chunk
  overwrites the oldest frames in place, so memory never grows.

Keys are stored after RoPE. Attention order does not matter to softmax, so a query sees the
valid frames of the buffer as one contiguous view (`[:key_end]`), with a key mask only in the
rare layouts that leave holes. Every data write goes through `_touch`, which journals the old
contents while a `transaction()` is open: a cancelled or failed chunk or switch rolls the cache
back bit for bit.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Iterator

import torch

from ..dit.attention import attend
from ..dit.rope import shift_temporal

__all__ = ["CacheLayout", "KVCache", "WritePlan", "CacheAttention", "CacheError"]

REFERENCE = "reference"
SINK = "sink"
WINDOW = "window"


class CacheError(RuntimeError):
    """The cache cannot do what was asked (a layout or state error, never a numerical one)."""


def garment_segment(slot: str) -> str:
    return f"garment:{slot}"


@dataclass(frozen=True)
class CacheLayout:
    """Segment sizes in latent frames. Buffer order: reference, garment slots, sink, window."""

    reference_views: int = 1
    garment_slots: tuple[str, ...] = ("full",)
    sink_frames: int = 3
    window_frames: int = 18

    def __post_init__(self) -> None:
        object.__setattr__(self, "garment_slots", tuple(self.garment_slots))
        if self.reference_views < 1:
            raise CacheError(f"need at least one reference view, got {self.reference_views}")
        if not self.garment_slots or len(set(self.garment_slots)) != len(self.garment_slots):
            raise CacheError(f"garment slots must be non-empty and unique, got {self.garment_slots}")
        if self.sink_frames < 0 or self.window_frames < 1:
            raise CacheError(f"bad sink/window sizes {self.sink_frames}/{self.window_frames}")

    @property
    def num_conditions(self) -> int:
        return self.reference_views + len(self.garment_slots)

    @property
    def total_frames(self) -> int:
        return self.num_conditions + self.sink_frames + self.window_frames

    def segments(self) -> dict[str, tuple[int, int]]:
        """name -> (first buffer frame, capacity in frames)."""
        out, start = {REFERENCE: (0, self.reference_views)}, self.reference_views
        for slot in self.garment_slots:
            out[garment_segment(slot)] = (start, 1)
            start += 1
        out[SINK] = (start, self.sink_frames)
        out[WINDOW] = (start + self.sink_frames, self.window_frames)
        return out

    def condition_position(self, segment: str, index: int = 0) -> int:
        """Temporal RoPE index of a condition frame: references 0..N-1, then the garment slots."""
        start, cap = self.segments()[segment]
        if segment == REFERENCE or segment.startswith("garment:"):
            return start + index
        raise CacheError(f"{segment!r} is not a condition segment")


@dataclass
class WritePlan:
    """Where the frames of one forward pass go, and which keys they see."""

    frames: list[int]  # buffer frame of each input frame, in input order
    positions: list[int]  # temporal RoPE index of each input frame
    key_end: int  # keys are buffer frames [0, key_end)
    key_mask: torch.Tensor | None  # [1, key_end*S] bool per key token, None when all are visible
    kind: str  # "conditions" or "video"
    runs: list[tuple[int, int]] = field(default_factory=list)  # `frames` as (first frame, length) runs


@dataclass
class _State:
    """Everything about the cache that is not tensor data (cheap to copy and to journal)."""

    valid: list[bool]
    position: list[int]
    sink_filled: int = 0
    window_fill: int = 0
    window_head: int = 0
    next_position: int = 0
    evictions: int = 0  # window chunks evicted since the last withdraw


@dataclass
class _Journal:
    state: _State
    saved: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # frame -> (k, v) copies


class KVCache:
    """Per-layer K/V buffers `[L, B, H, T*S, Dh]` with named segments and transactional writes."""

    def __init__(self, layout: CacheLayout, num_layers: int, num_heads: int, head_dim: int, tokens_per_frame: int,
                 batch: int = 1, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                 rope: str = "rolling", chunk_frames: int = 3, rope_theta: float = 10000.0) -> None:
        if rope not in ("absolute", "rolling"):
            raise CacheError(f"rope must be 'absolute' or 'rolling', got {rope!r}")
        if layout.sink_frames % chunk_frames or layout.window_frames % chunk_frames:
            raise CacheError(f"sink ({layout.sink_frames}) and window ({layout.window_frames}) must be multiples "
                             f"of the chunk ({chunk_frames})")
        self.layout, self.rope, self.chunk_frames, self.rope_theta = layout, rope, chunk_frames, rope_theta
        self.head_dim, self.tokens_per_frame = head_dim, tokens_per_frame
        self._segments = layout.segments()
        shape = (num_layers, batch, num_heads, layout.total_frames * tokens_per_frame, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        t = layout.total_frames
        self._state = _State(valid=[False] * t, position=[0] * t, next_position=layout.num_conditions)
        self._journal: _Journal | None = None

    # ------------------------------------------------------------------ introspection
    @property
    def num_layers(self) -> int:
        return self.k.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes allocated for keys and values (constant for the cache's lifetime)."""
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()

    @property
    def used_bytes(self) -> int:
        return self.nbytes * sum(self._state.valid) // len(self._state.valid)

    @property
    def next_position(self) -> int:
        return self._state.next_position

    def segment(self, name: str) -> tuple[int, int]:
        try:
            return self._segments[name]
        except KeyError:
            raise CacheError(f"no cache segment {name!r}; segments are {list(self._segments)}") from None

    def filled(self, name: str) -> int:
        """Valid frames in a segment."""
        start, cap = self.segment(name)
        return sum(self._state.valid[start:start + cap])

    def sliding(self) -> bool:
        """True once the window has evicted a chunk since the last withdraw (or the start): the
        next chunk no longer sees the whole history, as no chunk of a rollout that fits the cache did."""
        return self._state.evictions > 0

    def positions(self, name: str) -> list[int | None]:
        start, cap = self.segment(name)
        s = self._state
        return [s.position[i] if s.valid[i] else None for i in range(start, start + cap)]

    def history_frames(self) -> list[int]:
        """Buffer frames of the valid video history in time order (= temporal position order)."""
        s = self._state
        sink0, _ = self.segment(SINK)
        return sorted((f for f in range(sink0, self.layout.total_frames) if s.valid[f]), key=s.position.__getitem__)

    def segment_kv(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Views `[L, B, H, cap*S, Dh]` of a segment's keys and values (read-only use)."""
        start, cap = self.segment(name)
        sl = self._token_slice(start, cap)
        return self.k[:, :, :, sl], self.v[:, :, :, sl]

    def _token_slice(self, frame: int, n: int = 1) -> slice:
        s = self.tokens_per_frame
        return slice(frame * s, (frame + n) * s)

    # ------------------------------------------------------------------ planning
    def _plan(self, frames: list[int], positions: list[int], kind: str, key_frames: list[bool]) -> WritePlan:
        visible = list(key_frames)
        for f in frames:
            visible[f] = True
        end = max(i for i, v in enumerate(visible) if v) + 1
        mask = None
        if not all(visible[:end]):
            per_frame = torch.tensor(visible[:end], device=self.k.device)
            mask = per_frame.repeat_interleave(self.tokens_per_frame)[None, :]  # [1, end*S]
        return WritePlan(frames, positions, end, mask, kind, _runs(frames))

    def plan_conditions(self, items: list[tuple[str, int]]) -> WritePlan:
        """Write condition frames, given as (segment, index) pairs; queries see only condition frames."""
        frames, positions = [], []
        for name, index in items:
            if name in (SINK, WINDOW):
                raise CacheError(f"{name!r} is not a condition segment")
            start, cap = self.segment(name)
            if not 0 <= index < cap:
                raise CacheError(f"segment {name!r} has {cap} frame(s); index {index} is out of range")
            frames.append(start + index)
            positions.append(self.layout.condition_position(name, index))
        n_cond = self.layout.num_conditions
        key_frames = self._state.valid[:n_cond] + [False] * (self.layout.total_frames - n_cond)
        return self._plan(frames, positions, "conditions", key_frames)

    def condition_items(self) -> list[tuple[str, int]]:
        """Every condition frame as a (segment, index) pair, in buffer order."""
        return [(name, i) for name, (_, cap) in self._segments.items() if name not in (SINK, WINDOW)
                for i in range(cap)]

    def plan_chunk(self, n: int) -> WritePlan:
        """Where the next `n` video frames go: the sink until it is full, then the window ring."""
        s = self._state
        n_cond = self.layout.num_conditions
        if not all(s.valid[:n_cond]):
            missing = [k for k in self._segments if k not in (SINK, WINDOW) and self.filled(k) == 0]
            raise CacheError(f"prefill the conditions before generating video (empty: {missing})")
        if n != self.chunk_frames:
            raise CacheError(f"chunks are {self.chunk_frames} latent frames, got {n}")
        sink0, sink_cap = self.segment(SINK)
        if s.sink_filled < sink_cap:
            frames = list(range(sink0 + s.sink_filled, sink0 + s.sink_filled + n))
        else:
            w0, cap = self.segment(WINDOW)
            frames = [w0 + (s.window_head + i) % cap for i in range(n)]
        positions = [s.next_position + i for i in range(n)]
        return self._plan(frames, positions, "video", s.valid)

    # ------------------------------------------------------------------ writes
    def _touch(self, frames: list[int] | range) -> None:
        """Journal the current contents of `frames` before they change (inside a transaction)."""
        j = self._journal
        if j is None:
            return
        for f in frames:
            if f not in j.saved:
                sl = self._token_slice(f)
                j.saved[f] = (self.k[:, :, :, sl].clone(), self.v[:, :, :, sl].clone())

    def begin_write(self, plan: WritePlan) -> None:
        """Call once before the per-layer writes of a plan (journals the frames it overwrites)."""
        self._touch(plan.frames)

    def write(self, layer: int, plan: WritePlan, k: torch.Tensor, v: torch.Tensor) -> None:
        """Copy a layer's new keys/values `[B, H, n*S, Dh]` into the plan's frames, in place."""
        s = self.tokens_per_frame
        src = 0
        for start, length in plan.runs:
            dst = self._token_slice(start, length)
            self.k[layer, :, :, dst].copy_(k[:, :, src * s:(src + length) * s])
            self.v[layer, :, :, dst].copy_(v[:, :, src * s:(src + length) * s])
            src += length

    def keys(self, layer: int, plan: WritePlan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Views of the keys/values a plan's queries see, and the token key mask (or None)."""
        end = plan.key_end * self.tokens_per_frame
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end], plan.key_mask

    def commit(self, plan: WritePlan) -> None:
        """Mark a plan's frames valid and advance the stream bookkeeping.

        When the window is full after a chunk, its oldest chunk is evicted right away, so that
        between chunks the window holds at most `window - chunk` frames and the next chunk's
        slot is free (a chunk never overwrites live history, which keeps rollback simple).
        """
        s = self._state
        for f, p in zip(plan.frames, plan.positions):
            s.valid[f], s.position[f] = True, p
        if plan.kind != "video":
            return
        n = len(plan.frames)
        sink0, sink_cap = self.segment(SINK)
        w0, cap = self.segment(WINDOW)
        if plan.frames[0] < sink0 + sink_cap:
            s.sink_filled += n
        else:
            s.window_head = (s.window_head + n) % cap
            s.window_fill += n
        s.next_position += n
        if s.window_fill == cap:  # evict the oldest chunk of the window (FIFO)
            for i in range(self.chunk_frames):
                s.valid[w0 + (s.window_head + i) % cap] = False
            s.window_fill -= self.chunk_frames
            s.evictions += 1
        if self.rope == "rolling":
            self._renumber()

    def _renumber(self) -> None:
        """Give the history consecutive positions right after the conditions, in time order."""
        history = self.history_frames()
        n_cond = self.layout.num_conditions
        deltas: dict[int, list[int]] = {}
        for rank, f in enumerate(history):
            deltas.setdefault(n_cond + rank - self._state.position[f], []).append(f)
        for delta, frames in deltas.items():
            self._shift_frames(frames, delta)
        self._state.next_position = n_cond + len(history)

    def _shift_frames(self, frames: list[int], delta: int) -> None:
        """Move post-RoPE keys of `frames` by `delta` temporal positions (in place, journaled)."""
        if delta == 0 or not frames:
            return
        self._touch(frames)
        for start, length in _runs(sorted(frames)):
            shift_temporal(self.k[:, :, :, self._token_slice(start, length)], delta, self.head_dim, self.rope_theta)
        for f in frames:
            self._state.position[f] += delta

    # ------------------------------------------------------------------ rescheduling primitives
    def withdraw(self, keep_last: int = 0, keep_sink: bool = False) -> None:
        """Drop video history, keeping its newest `keep_last` frames (moved to the window's start).

        With `keep_sink=False` the sink is emptied too and the next chunk becomes the new sink.
        At most `window - chunk` frames can be kept (one chunk slot stays free for generation).
        """
        if keep_last < 0:
            raise CacheError(f"keep_last must be >= 0, got {keep_last}")
        s = self._state
        sink0, sink_cap = self.segment(SINK)
        w0, cap = self.segment(WINDOW)
        history = self.history_frames()
        pool = [f for f in history if f >= w0] if keep_sink else history
        keep = pool[len(pool) - min(keep_last, len(pool), cap - self.chunk_frames):]
        self._touch(range(w0, w0 + len(keep)))
        if keep:
            tok = torch.cat([torch.arange(f * self.tokens_per_frame, (f + 1) * self.tokens_per_frame) for f in keep])
            dst = self._token_slice(w0, len(keep))
            for buf in (self.k, self.v):
                buf[:, :, :, dst] = buf.index_select(3, tok.to(buf.device))  # gather, then write: overlap-safe
        kept_pos = [s.position[f] for f in keep]
        for f in range(w0, w0 + cap):
            s.valid[f] = False
        for i, p in enumerate(kept_pos):
            s.valid[w0 + i], s.position[w0 + i] = True, p
        s.window_fill, s.window_head, s.evictions = len(keep), len(keep) % cap, 0
        if not keep_sink:
            for f in range(sink0, sink0 + sink_cap):
                s.valid[f] = False
            s.sink_filled = 0
        if self.rope == "rolling":
            self._renumber()

    def restart_positions(self) -> None:
        """Renumber the kept history to follow the conditions, as a fresh generation would."""
        self._renumber()

    # ------------------------------------------------------------------ copies and transactions
    def clone(self) -> "KVCache":
        """An independent copy: no tensor, list or journal is shared with the original."""
        if self._journal is not None:
            raise CacheError("cannot clone a cache inside an open transaction")
        other = copy.copy(self)
        other.k, other.v = self.k.clone(), self.v.clone()
        other._segments = dict(self._segments)
        other._state = copy.deepcopy(self._state)
        return other

    @contextlib.contextmanager
    def transaction(self) -> Iterator["KVCache"]:
        """Group writes so that an exception (cancel, failure) restores the cache bit for bit."""
        if self._journal is not None:
            yield self  # nested: the outer transaction owns the rollback
            return
        self._journal = _Journal(copy.deepcopy(self._state))
        try:
            yield self
        except BaseException:
            j = self._journal
            for f, (k, v) in j.saved.items():
                sl = self._token_slice(f)
                self.k[:, :, :, sl].copy_(k)
                self.v[:, :, :, sl].copy_(v)
            self._state = j.state
            raise
        finally:
            self._journal = None

    def state_dict(self) -> dict:
        """Bookkeeping as plain data (for tests and debugging)."""
        return copy.deepcopy(vars(self._state))


def _runs(frames: list[int]) -> list[tuple[int, int]]:
    """Split a frame list into runs of consecutive frames: [5,6,7,0,1] -> [(5,3),(0,2)]."""
    runs: list[tuple[int, int]] = []
    for f in frames:
        if runs and runs[-1][0] + runs[-1][1] == f:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((f, 1))
    return runs


@dataclass
class CacheAttention:
    """Self-attention backend for streaming: write this pass's K/V into the cache, attend over it.

    With `differentiable=True` (training rollouts, e.g. DMD's exit step) the cache is not
    written: the pass's K/V replace the plan's slots in an out-of-place copy of the visible keys,
    so gradients flow into this pass while the cached history stays detached.
    """

    cache: KVCache
    plan: WritePlan
    differentiable: bool = False

    def __post_init__(self) -> None:
        if self.differentiable:
            s = self.cache.tokens_per_frame
            self._tokens = torch.cat([torch.arange(f * s, (f + 1) * s) for f in self.plan.frames]).to(self.cache.k.device)
        else:
            self.cache.begin_write(self.plan)

    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.differentiable:
            keys, values, mask = self.cache.keys(layer, self.plan)
            keys = keys.index_copy(2, self._tokens, k.to(keys.dtype))  # [B, H, Lk, Dh], a new tensor
            values = values.index_copy(2, self._tokens, v.to(values.dtype))
            return attend(q, keys, values, mask)
        self.cache.write(layer, self.plan, k, v)
        keys, values, mask = self.cache.keys(layer, self.plan)
        return attend(q, keys, values, mask)

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Only write this pass's K/V `[B, H, L, Dh]` (a KV pass's last layer; `WanDiT.write_kv`)."""
        if self.differentiable:
            raise RuntimeError("a differentiable pass does not write the cache")
        self.cache.write(layer, self.plan, k, v)
