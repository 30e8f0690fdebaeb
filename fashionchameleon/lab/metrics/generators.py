"""What the evaluation runs: clip generators (student, teacher, the world's own render) and try-off extractors.

A `ClipGenerator` turns one evaluation sample into a video, optionally with garment switches:

    clip = generator.generate(sample, frames, switches, seed)     # [T, 3, H, W] in [-1, 1]

where `switches` is a list of `(frame, slot, garment_image [3, H, W] in [-1, 1])` (a `Switch`, or
any 3-tuple). Adapters:
  - `StudentGenerator(model, policy)`: the causal student streaming chunk by chunk (`StreamSession`);
  - `TeacherGenerator(model, steps, cfg)`: the bidirectional teacher over the whole clip (no switches);
  - `OracleGenerator(world)`: the world's ground-truth render, switches rendered as segments of the
    same motion timeline. It scores ~1.0 through every metric: the metric's own ceiling.

A `TryOffExtractor` turns a frame of the sample into the flat garment of one slot:
`ModelTryOff(model)` (the try-off DiT) and `OracleTryOff()` (the true flat-lay).

Nothing here imports ComfyUI; the procedural world is imported because evaluation is defined on it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor

from ...runtime.garment_layout import lay_out
from ...runtime.stream.rescheduling import SwitchPolicy
from ...runtime.stream.sampler import check_guide, sample_teacher, unconditional
from ...runtime.stream.schedule import FlowMatchSchedule
from ..synthetic import Garment, Sample, SamplePlan, WorldConfig, garment_from_image, outfit_from_image, plan_sample
from ..synthetic.world import render_video

__all__ = ["Switch", "as_switch", "EvalSample", "ClipGenerator", "TryOffExtractor", "StudentGenerator",
           "KeptClips", "TeacherGenerator", "OracleGenerator", "CodecOracleGenerator", "ModelTryOff", "OracleTryOff", "render_frames",
           "switch_garments", "plan_of", "covering_frames"]


@dataclass(frozen=True)
class Switch:
    """A garment switch at pixel frame `frame` (a chunk boundary for the student).

    Unpacks as `(frame, slot, image)`; `garments` ({kind: Garment}) is the ground truth the world
    renders after the switch — only the oracle reads it (without it, it is rebuilt from the image).
    """

    frame: int
    slot: str  # "full", "upper" or "lower"
    image: Tensor  # flat-lay [3, H, W] in [-1, 1]
    garments: Mapping[str, Garment] | None = field(default=None, compare=False)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.frame, self.slot, self.image))


def as_switch(item: Switch | Sequence) -> Switch:
    """A `Switch` from a `Switch` or a `(frame, slot, image[, garments])` tuple."""
    return item if isinstance(item, Switch) else Switch(*item)


@dataclass
class EvalSample(Sample):
    """A world `Sample` that also carries its plan and world config (what the oracle re-renders)."""

    plan: SamplePlan | None = None
    world: WorldConfig | None = None

    @classmethod
    def of(cls, sample: Sample, plan: SamplePlan, world: WorldConfig) -> "EvalSample":
        fields = {f.name: getattr(sample, f.name) for f in dataclasses.fields(Sample)}
        return cls(**fields, plan=plan, world=world)


@runtime_checkable
class ClipGenerator(Protocol):
    """Anything that makes an evaluation clip. Optional attributes the evaluation reads:
    `supports_switches` (default True), `chunk_frames` (pixel frames per chunk, or None)."""

    def generate(self, sample: Sample, frames: int, switches: Sequence, seed: int) -> Tensor:
        """`[frames, 3, H, W]` in [-1, 1]."""
        ...


@runtime_checkable
class TryOffExtractor(Protocol):
    def extract(self, sample: Sample, frame: int, slot: str, seed: int) -> Tensor:
        """The flat garment of `slot` worn in `sample.video[frame]`: `[3, H, W]` in [-1, 1]."""
        ...


# ---------------------------------------------------------------------------------------------- world helpers
def plan_of(sample: Sample, world: WorldConfig | None = None) -> tuple[SamplePlan, WorldConfig]:
    """The plan and world config a sample was rendered from (re-planned from its seed if not attached).

    Without a world attached or given, it is read from the sample: framing, size, fps and slots from
    its meta, frame count and (H, W) from its video.
    """
    plan, own = getattr(sample, "plan", None), getattr(sample, "world", None)
    world = own or world or _world_of(sample)
    if plan is None:
        plan = plan_sample(int(sample.meta["seed"]), world)
    return plan, world


def _world_of(sample: Sample) -> WorldConfig:
    """The world config of a sample's meta and video `[T, 3, H, W]`."""
    meta, (frames, _, height, width) = sample.meta, sample.video.shape
    world = WorldConfig(size=int(meta.get("size", width)), frames=frames, slots=meta.get("slots", "random"),
                        fps=float(meta.get("fps", WorldConfig.fps)), framing=meta.get("framing", "full_body"),
                        garment_layout=meta.get("garment_layout", "frame"))
    if world.frame_size != (height, width):
        world = dataclasses.replace(world, height=height, width=width)
    return world


def render_frames(plan: SamplePlan, world: WorldConfig, start: int, count: int,
                  garments: Mapping[str, Garment] | None = None, person=None) -> Tensor:
    """Pixel frames `start .. start + count - 1` of the plan's video, `[count, 3, H, W]` in [-1, 1],
    `(H, W) = world.frame_size`, drawn by the world's own renderer (`world.render_video`: the
    framing's camera), so the plan's own garments and person give exactly the sample's frames.

    `garments` (kinds not given stay as planned) and `person` re-dress or replace the person while
    the motion timeline, staging and background stay those of the plan (a following camera follows
    the person it is given).
    """
    cast = dataclasses.replace(plan, garments={**plan.garments, **(garments or {})}, person=person or plan.person)
    return render_video(cast, world, start, count).video.mul_(2.0).sub_(1.0)


def switch_garments(switch: Switch) -> dict[str, Garment]:
    """The garments a switch puts on ({kind: Garment}); rebuilt from the flat-lay if not given."""
    if switch.garments is not None:
        return dict(switch.garments)
    image = ((switch.image.detach().float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0)
    if switch.slot == "full":
        upper, lower = outfit_from_image(image)
        return {"upper": upper, "lower": lower}
    return {switch.slot: garment_from_image(image, switch.slot)}


def _switches(switches: Iterable) -> list[Switch]:
    return sorted((as_switch(s) for s in switches), key=lambda s: s.frame)


def covering_frames(codec, frames: int) -> int:
    """The smallest clip length >= `frames` that the codec can hold (its latent frames cover whole groups)."""
    for n in range(frames, frames + 2 * codec.temporal_factor + 1):
        try:
            codec.latent_frames(n)
            return n
        except ValueError:
            continue
    raise ValueError(f"no valid clip length near {frames} frames for this codec")


# ---------------------------------------------------------------------------------------------- generators
class StudentGenerator:
    """The causal student through a `StreamSession`; switches use `policy` (the full scheme by default)."""

    supports_switches = True

    def __init__(self, model, policy: SwitchPolicy | None = None, config=None, dit=None, name: str = "student"):
        self.model, self.config, self.dit, self.name = model, config, dit, name
        self.policy = policy or SwitchPolicy.full()

    @property
    def chunk_frames(self) -> int:
        """Pixel frames per chunk after the first (what a switch boundary is a multiple of)."""
        stream = self.config or self.model.stream_config
        return int(self.model.codec.pixel_frames(stream.chunk_frames, first=False))

    @torch.no_grad()
    def generate(self, sample: Sample, frames: int, switches: Sequence = (), seed: int = 0) -> Tensor:
        session = self.model.session(sample.references, dict(sample.garments), sample.prompt, seed,
                                     config=self.config, model=self.dit)
        for s in _switches(switches):
            session.schedule_switch(s.frame, s.slot, s.image, self.policy)
        out = [chunk.frames[0].transpose(0, 1).float().cpu() for chunk in session.generate(frames)]
        return torch.cat(out)[:frames].clamp(-1.0, 1.0)


class KeptClips:
    """A generator's plain clips (no switch), each made once and kept: several measures, or several
    rows built on one clip (diagnostic tools), share one stream per case. Keyed by the case's world
    seed, the frame count and the generation seed."""

    supports_switches = False
    chunk_frames = None

    def __init__(self, inner: ClipGenerator, name: str | None = None):
        self.inner, self.name = inner, name or getattr(inner, "name", "kept")
        self.clips: dict[tuple[int, int, int], Tensor] = {}

    def generate(self, sample: Sample, frames: int, switches: Sequence = (), seed: int = 0) -> Tensor:
        if _switches(switches):
            raise ValueError("KeptClips keeps plain clips only: generate with no switches")
        key = (int(sample.meta["seed"]), int(frames), int(seed))
        if key not in self.clips:
            self.clips[key] = self.inner.generate(sample, frames, (), seed).float()
        return self.clips[key]


def teacher_inputs(model, sample: Sample) -> tuple[Tensor, Tensor, Tensor]:
    """What the teacher is conditioned on for `sample`, on its device: condition latents `[1, C, N, h, w]`
    (the reference views, then the garment slots in order, each in the teacher's garment layout), the
    prompt's and the empty prompt's features."""
    codec, device, layout = model.codec, model.teacher.device, model.teacher_layout
    enc = lambda images: codec.encode_image(images.to(device, torch.float32)).float()  # noqa: E731 [N,C,1,h,w]
    garments = [enc(lay_out(g, slot, layout)[None]) for slot, g in sample.garments.items()]
    conditions = torch.cat([enc(sample.references)] + garments)
    text, negative = model.text.encode([sample.prompt]), model.text.encode([""])
    return conditions.permute(2, 1, 0, 3, 4), text.to(device), negative.to(device)


class TeacherGenerator:
    """The bidirectional teacher (`sample_teacher`): the whole clip at once, CFG, no switches.

    `guide` is what CFG's unconditional rows drop: "text" (the empty prompt; the paper's teacher),
    "garment" (the null garments, same prompt; a teacher trained with `garment_dropout`) or "all"
    (both).
    """

    supports_switches = False
    chunk_frames = None

    # the teacher samples on the schedule it was trained on (the teacher stage's shift, the paper's 5), whatever
    # shift the student's file streams with
    def __init__(self, model, steps: int = 30, cfg: float = 3.0, shift: float = FlowMatchSchedule.shift,
                 name: str = "teacher", guide: str = "text"):
        if model.teacher is None:
            raise FileNotFoundError("the embedded teacher is not in the weights folder (teacher.safetensors)")
        check_guide(guide)
        self.model, self.steps, self.cfg, self.name = model, int(steps), float(cfg), name
        self.shift, self.guide = float(shift), guide

    @torch.no_grad()
    def generate(self, sample: Sample, frames: int, switches: Sequence = (), seed: int = 0) -> Tensor:
        if list(switches):
            raise ValueError("the bidirectional teacher generates whole clips and cannot switch garments")
        model, codec, dit = self.model, self.model.codec, self.model.teacher
        conditions, text, negative = teacher_inputs(model, sample)
        n = covering_frames(codec, frames)
        shape = (1, codec.latent_channels, codec.latent_frames(n), *conditions.shape[-2:])
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(int(seed)))
        negative, uncond = unconditional(self.guide, conditions, sample.references.shape[0], text, negative)
        latents = sample_teacher(dit, conditions, text, negative, noise, FlowMatchSchedule(shift=self.shift),
                                 self.steps, self.cfg, negative_conditions=uncond,
                                 first_garment=sample.references.shape[0])
        video, _ = codec.decode(latents)
        return video[0].transpose(0, 1).float().cpu()[:frames].clamp(-1.0, 1.0)


class OracleGenerator:
    """The world's own render of the sample (and of its switches): the metric's ceiling."""

    supports_switches = True
    chunk_frames = None

    def __init__(self, world: WorldConfig | None = None, name: str = "oracle"):
        self.world, self.name = world, name

    def generate(self, sample: Sample, frames: int, switches: Sequence = (), seed: int = 0) -> Tensor:
        plan, world = plan_of(sample, self.world)
        cuts = [s for s in _switches(switches) if 0 < s.frame < frames]
        garments = dict(plan.garments)
        for s in _switches(switches):
            if s.frame <= 0:
                garments.update(switch_garments(s))
        bounds = [0] + [s.frame for s in cuts] + [frames]
        parts = []
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            if i > 0:
                garments.update(switch_garments(cuts[i - 1]))
            if b > a:
                parts.append(render_frames(plan, world, a, b - a, garments))
        return torch.cat(parts)


class CodecOracleGenerator(OracleGenerator):
    """The world's render passed through a codec (encode, decode): the ceiling of any model that decodes
    with it, since whatever the codec blurs away (a face mark, a thin stripe) no generator can bring back."""

    def __init__(self, codec, world: WorldConfig | None = None, name: str = "oracle through the codec"):
        super().__init__(world, name)
        self.codec = codec

    @torch.no_grad()
    def generate(self, sample: Sample, frames: int, switches: Sequence = (), seed: int = 0) -> Tensor:
        video = super().generate(sample, frames, switches, seed)  # [T, 3, H, W]
        whole = covering_frames(self.codec, frames)
        video = torch.cat([video, video[-1:].expand(whole - frames, -1, -1, -1)])  # repeat the last frame
        latents = self.codec.encode_video(video.transpose(0, 1)[None])  # [1, C, F, h, w]
        decoded, _ = self.codec.decode(latents)
        return decoded[0].transpose(0, 1).float().cpu()[:frames].clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------------------------- try-off
class ModelTryOff:
    """The embedded try-off DiT: a dressed frame -> the flat garment of a slot."""

    def __init__(self, model, steps: int = 30, name: str = "tryoff"):
        if model.tryoff is None:
            raise FileNotFoundError("the embedded try-off model is not in the weights folder (tryoff.safetensors)")
        self.model, self.steps, self.name = model, int(steps), name

    @torch.no_grad()
    def extract(self, sample: Sample, frame: int, slot: str, seed: int = 0) -> Tensor:
        from ...runtime.tryoff import try_off

        out = try_off(self.model.tryoff, self.model.codec, sample.video[frame][None], slot, seed, self.steps)
        return out[0].float().cpu()


class OracleTryOff:
    """The true flat-lay of the slot (what a perfect try-off returns)."""

    name = "oracle"

    def extract(self, sample: Sample, frame: int, slot: str, seed: int = 0) -> Tensor:
        return sample.garments[slot].clone()
