"""The stream session: one person, a garment schedule, and a video generated chunk by chunk.

A `StreamSession` owns the model, codec and prompt encoder (shared, read-only), the encoded
conditions, the KV cache, the decoder state and the RNG seed. `step()` produces one chunk:

    due switches -> rescheduling (refresh / withdraw / disentangle) -> 4 denoising steps + clean
    KV pass -> decode -> commit

Everything a chunk changes is committed only when the chunk is complete: the cache runs inside
a transaction and the session's own fields are assigned last, so a cancel (or any error) in the
middle of a chunk or a switch leaves the session exactly as it was, and running it again gives
the same chunk as a run that was never interrupted. Noise is drawn from a generator seeded by
(seed, chunk index), so a session is deterministic, and two snapshots that diverge (different
garments from the same moment) share the noise of every later chunk.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import partial
from typing import Callable, Iterator

import torch

from .cache import REFERENCE, CacheLayout, KVCache, garment_segment
from ..encoders.codec import LatentCodec
from ..config import StreamConfig
from ..garment_layout import lay_out
from ..cpu_memory import keep_freed_memory
from ..dit.model import WanDiT
from .reproject import check_reprojectable, codec_round_trip
from .rescheduling import SwitchPolicy, apply_switch
from .sampler import StepInfo, condition_pass, denoise_chunk
from ..dit.garment_hint import slot_hint
from .schedule import FlowMatchSchedule
from .seeding import MASK64, generator_for, mix_seed
from ..encoders.text import PromptEncoder
from ..rules import InputRuleError, check_image_size, check_stream_slots

__all__ = ["StreamSession", "Chunk", "SwitchEvent", "Cancelled", "StreamInputError", "chunk_seed"]

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised when the cancel callback fires; the session is unchanged."""


# An input to the stream does not fit (wrong size, unknown slot, bad frame number): the engine's input-rule error
StreamInputError = InputRuleError


def chunk_seed(seed: int, index: int) -> int:
    """The noise seed of chunk `index` of a stream seeded with `seed`."""
    return mix_seed(seed, index)


@dataclass(frozen=True)
class SwitchEvent:
    """A garment change: applied at the first chunk boundary at or after pixel frame `frame`."""

    slot: str
    garment: torch.Tensor | None  # flat garment image [3, H, W] in [-1, 1]; None = keep the slot's garment
    policy: SwitchPolicy = SwitchPolicy()
    frame: int = 0  # 0 for "at the next chunk boundary"


@dataclass(frozen=True)
class Chunk:
    index: int  # chunk number since the stream began
    first_frame: int  # index of its first pixel frame in the stream
    latents: torch.Tensor  # [1, C, c, h, w]
    frames: torch.Tensor  # [1, 3, T, H, W] in [-1, 1]
    switches: tuple[str, ...] = ()  # garment slots switched right before this chunk


ProgressFn = Callable[[StepInfo], None]
CancelFn = Callable[[], bool]


@dataclass
class _Fields:
    """The session's mutable fields, replaced as a whole when a chunk commits."""

    chunk_index: int = 0
    frames_generated: int = 0
    pending: list[SwitchEvent] = field(default_factory=list)
    garments: dict[str, torch.Tensor] = field(default_factory=dict)  # slot -> latent [1, C, 1, h, w]
    references: torch.Tensor | None = None  # [1, C, N, h, w]
    recent: torch.Tensor | None = None  # last latent frames [1, C, k, h, w]
    decoder_state: object = None
    segment_start: bool = True  # next decode starts a new decode segment (first-frame rule)


class StreamSession:
    """Streams one person through a garment schedule. See the module docstring."""

    def __init__(self, model: WanDiT, codec: LatentCodec, prompt_encoder: PromptEncoder, references: torch.Tensor,
                 garments: dict[str, torch.Tensor], prompt: str = "", seed: int = 0,
                 config: StreamConfig = StreamConfig()) -> None:
        self.model, self.codec, self.prompt_encoder, self.config = model, codec, prompt_encoder, config
        if model.device.type == "cpu":
            keep_freed_memory()  # per-pass activations reuse heap blocks instead of faulting in fresh pages
        self.seed = int(seed) & MASK64
        self.schedule = FlowMatchSchedule(shift=config.shift)
        self.timesteps = self.schedule.warp(config.steps)
        self.image_size = self._check_images(references, garments)
        if config.reproject:
            try:
                check_reprojectable(codec)
            except ValueError as e:
                raise StreamInputError(str(e)) from None
        self.prompt = prompt
        h, w = self.image_size
        s = codec.spatial_factor
        self.latent_hw = (h // s, w // s)
        self.layout = CacheLayout(reference_views=references.shape[0], garment_slots=tuple(garments),
                                  sink_frames=config.sink_frames, window_frames=config.window_frames)
        with torch.no_grad():
            context = prompt_encoder.encode([prompt]).to(model.device)
            self.text = model.text_kv(context)
            self.cache = KVCache(self.layout, model.cfg.num_layers, model.cfg.num_heads, model.cfg.head_dim,
                                 model.tokens_per_frame(self.latent_hw), dtype=model.dtype, device=model.device,
                                 rope=config.rope, chunk_frames=config.chunk_frames,
                                 rope_theta=model.cfg.rope_theta)
            refs = self._encode(references)  # [N, C, 1, h, w]
            state = _Fields(references=refs.permute(1, 2, 0, 3, 4).reshape(1, refs.shape[1], -1, *self.latent_hw),
                            garments={slot: self._encode_garment(slot, img) for slot, img in garments.items()})
            condition_pass(model, self.cache, self.text, self._condition_latents(state))
        self._f = state

    # ------------------------------------------------------------------ inputs
    def _check_images(self, references: torch.Tensor, garments: dict[str, torch.Tensor]) -> tuple[int, int]:
        if references.ndim != 4 or references.shape[0] < 1 or references.shape[1] != 3:
            raise StreamInputError(f"references must be a batch [N, 3, H, W] with N >= 1, got {list(references.shape)}")
        if not garments:
            raise StreamInputError("give at least one garment image (slot 'full', or 'upper' and 'lower')")
        h, w = references.shape[-2:]
        check_image_size((h, w), self.codec, self.model.cfg)
        for slot, g in garments.items():
            self._check_garment(slot, g, (h, w))
        return int(h), int(w)

    def _check_garment(self, slot: str, garment: torch.Tensor, size: tuple[int, int]) -> None:
        if garment.ndim != 3 or garment.shape[0] != 3:
            raise StreamInputError(f"garment {slot!r} must be one image [3, H, W], got {list(garment.shape)}")
        if tuple(garment.shape[-2:]) != tuple(size):
            raise StreamInputError(f"garment {slot!r} is {garment.shape[-2]}x{garment.shape[-1]} but the reference is "
                                   f"{size[0]}x{size[1]}; resize (pad flat-lays with white) to the same size")

    @torch.no_grad()
    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images `[N, 3, H, W]` in [-1, 1] -> standalone latents `[N, C, 1, h, w]` on the model's device."""
        return self.codec.encode_image(images.to(self.model.device, torch.float32)).float()

    def _encode_garment(self, slot: str, image: torch.Tensor) -> torch.Tensor:
        """One garment image `[3, H, W]` -> its latent `[1, C, 1, h, w]`, in the stream's garment layout."""
        return self._encode(lay_out(image, slot, self.config.garment_layout)[None])

    def _condition_latents(self, f: _Fields) -> dict[tuple[str, int], torch.Tensor]:
        out = {(REFERENCE, i): f.references[:, :, i:i + 1] for i in range(f.references.shape[2])}
        out.update({(garment_segment(slot), 0): lat for slot, lat in f.garments.items()})
        return out

    # ------------------------------------------------------------------ state
    @property
    def chunk_index(self) -> int:
        return self._f.chunk_index

    @property
    def frames_generated(self) -> int:
        return self._f.frames_generated

    @property
    def pending_switches(self) -> tuple[SwitchEvent, ...]:
        return tuple(self._f.pending)

    @property
    def garment_latents(self) -> dict[str, torch.Tensor]:
        return dict(self._f.garments)

    @property
    def reference_latents(self) -> torch.Tensor:
        return self._f.references

    def held_tensors(self) -> list[torch.Tensor]:
        """The tensors this session holds apart from its model's weights, for memory accounting.

        The KV cache, the prompt's cross-attention K/V, the condition latents, the recent latents,
        every tensor in the decoder state and the images of pending switches. Branches share their
        decoder state, so each lists it.
        """
        f = self._f
        out = [self.cache.k, self.cache.v, *self.text.k, *self.text.v, f.references, *f.garments.values(),
               *_tensors_in(f.decoder_state), *(e.garment for e in f.pending)]
        if f.recent is not None:
            out.append(f.recent)
        return [t for t in out if isinstance(t, torch.Tensor)]

    def snapshot(self) -> "StreamSession":
        """An independent copy for branching: its cache and fields share nothing mutable with this one
        (the decoder state is shared, as codecs never change a state)."""
        other = copy.copy(self)
        other.cache = self.cache.clone()
        # the decoder state is shared: codecs treat states as immutable (codec.py), and a real VAE's
        # causal cache is too large to copy per branch
        other._f = replace(self._f, pending=list(self._f.pending), garments=dict(self._f.garments))
        return other

    # ------------------------------------------------------------------ switches
    def schedule_switch(self, frame: int, slot: str, garment: torch.Tensor, policy: SwitchPolicy | None = None) -> None:
        """Switch `slot` to `garment` at the first chunk boundary at or after pixel frame `frame`."""
        check_stream_slots((slot,), self.layout.garment_slots)
        if frame < 0:
            raise StreamInputError(f"switch frame must be >= 0, got {frame}")
        self._check_garment(slot, garment, self.image_size)
        event = SwitchEvent(slot, garment.detach().clone(), policy or SwitchPolicy(), max(int(frame), 0))
        pending = sorted([*self._f.pending, event], key=lambda e: e.frame)  # stable: same frame keeps order
        self._f = replace(self._f, pending=pending)

    def request_switch(self, slot: str, garment: torch.Tensor, policy: SwitchPolicy | None = None) -> None:
        """Switch at the next chunk boundary."""
        self.schedule_switch(self._f.frames_generated, slot, garment, policy)

    def request_reschedule(self, policy: SwitchPolicy, slots: tuple[str, ...] = ()) -> None:
        """Apply rescheduling operations at the next chunk boundary without changing any garment.

        `slots` are the garment slots whose KV is recomputed (with `policy.refresh`); withdraw and
        disentangle follow `policy`. This is the paper's three operations, for experiments.
        """
        check_stream_slots(slots, self.layout.garment_slots)
        events = [SwitchEvent(slot, None, policy, self._f.frames_generated) for slot in slots]
        if not events:  # withdraw / disentangle only: an event that refreshes nothing
            events = [SwitchEvent(self.layout.garment_slots[0], None, replace(policy, refresh=False),
                                  self._f.frames_generated)]
        self._f = replace(self._f, pending=sorted([*self._f.pending, *events], key=lambda e: e.frame))

    def _due(self) -> tuple[list[SwitchEvent], list[SwitchEvent]]:
        due = [e for e in self._f.pending if e.frame <= self._f.frames_generated]
        return due, [e for e in self._f.pending if e.frame > self._f.frames_generated]

    # ------------------------------------------------------------------ generation
    def _noises(self, index: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
        g = generator_for(self.seed, index)
        return [torch.randn(shape, generator=g) for _ in range(len(self.timesteps))]

    def step(self, progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> Chunk:
        """Generate the next chunk (applying due switches first) and commit it."""
        f = self._f
        due, later = self._due()
        check = (lambda: None) if cancel is None else (lambda: _raise_if(cancel()))

        def on_step(info: StepInfo) -> None:
            if progress is not None:
                progress(info)
            check()

        check()
        c = self.config.chunk_frames
        shape = (1, self.model.cfg.in_dim, c, *self.latent_hw)
        garments, references, decoder_state, segment_start = dict(f.garments), f.references, f.decoder_state, \
            f.segment_start
        with torch.no_grad(), self.cache.transaction():
            if due:
                new = {e.slot: f.garments[e.slot] if e.garment is None else self._encode_garment(e.slot, e.garment)
                       for e in due if e.policy.refresh}
                policy = _merge_policies([e.policy for e in due])
                log.debug("chunk %d: switching %s with %s", f.chunk_index, [e.slot for e in due], policy)
                new_ref = apply_switch(policy, self.model, self.codec, self.cache, self.text, new, f.recent)
                garments.update(new)
                if new_ref is not None:
                    references = torch.cat([new_ref.float(), references[:, :, 1:]], dim=2)
                if policy.withdraw:  # a new decode segment, as the authors' prototype decodes per switch
                    decoder_state, segment_start = None, True
                check()
            project = partial(codec_round_trip, self.codec) if self.config.reproject else None
            hint = slot_hint(self.model.cfg.garment_hint,
                             torch.cat([garments[s] for s in self.layout.garment_slots], dim=2), 0)
            x0 = denoise_chunk(self.model, self.cache, self.text, self._noises(f.chunk_index, shape), self.timesteps,
                               self.schedule, f.chunk_index, float(self.config.context_noise), on_step,
                               self.config.phase_norm, project, hint=hint)
            check()
            frames, decoder_state = self.codec.decode(x0, decoder_state)
        keep = max(SwitchPolicy().decode_frames, *(e.policy.decode_frames for e in f.pending), 1)
        recent = x0 if f.recent is None or segment_start else torch.cat([f.recent, x0], dim=2)
        chunk = Chunk(f.chunk_index, f.frames_generated, x0, frames.float(),
                      tuple(e.slot for e in due if e.garment is not None))
        self._f = _Fields(chunk_index=f.chunk_index + 1, frames_generated=f.frames_generated + frames.shape[2],
                          pending=later, garments=garments, references=references, recent=recent[:, :, -keep:],
                          decoder_state=decoder_state, segment_start=False)
        return chunk

    def generate(self, num_frames: int, progress: ProgressFn | None = None,
                 cancel: CancelFn | None = None) -> Iterator[Chunk]:
        """Yield chunks until at least `num_frames` more pixel frames have been produced."""
        if num_frames < 1:
            raise StreamInputError(f"frame count must be >= 1, got {num_frames}")
        target = self.frames_generated + num_frames
        while self.frames_generated < target:
            yield self.step(progress, cancel)


def _raise_if(flag: bool) -> None:
    if flag:
        raise Cancelled("generation was cancelled; the stream is unchanged")


def _merge_policies(policies: list[SwitchPolicy]) -> SwitchPolicy:
    """Several switches at one boundary: apply each operation any of them asks for."""
    last = policies[-1]
    return replace(last, refresh=any(p.refresh for p in policies), withdraw=any(p.withdraw for p in policies),
                   disentangle=any(p.disentangle for p in policies),
                   keep_last=min(p.keep_last for p in policies))


def _tensors_in(value: object) -> list[torch.Tensor]:
    """Every tensor in a codec's decoder state: a tensor, or one inside (frozen) dataclasses, tuples and lists."""
    if isinstance(value, torch.Tensor):
        return [value]
    if is_dataclass(value) and not isinstance(value, type):
        return [t for name in (fl.name for fl in fields(value)) for t in _tensors_in(getattr(value, name))]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors_in(item)]
    return []
