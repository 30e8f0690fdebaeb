"""The dataset API of the procedural world: seeded samples, splits, and re-dressed renders.

A sample is a training triplet as in the paper (method.md §2.1): the video of a person wearing
an outfit, the flat-lay image(s) of that outfit, and a reference that is the video's first frame
(same person, pose and background) re-dressed in *different* garments of the same kinds; an
optional second reference view shows the person turned (side or back) in the re-dressed outfit.

Everything is a function of the seed: each component (person, motion, background, garments,
reference, slot layout, prompt) draws from its own generator seeded by (seed, component), so
`render_with(seed, garments)` keeps the person, motion, background, timing and references of
`make_sample(seed)` and changes only the clothes. Seeds are split by range; the train and val
splits never use `HELD_OUT_FAMILY`, the test split uses it for about half of its garments.

`WorldConfig.framing` picks the camera and frame size (`camera.FRAMINGS`): "full_body" (the
default) is the fixed camera on square frames, "fashion" a portrait frame whose camera follows the
person. Every framing draws the same plan from a seed (person, motion, background, garments,
prompt); the fashion framing only draws the garments' periodic patterns coarser, to keep them
within what the codec keeps at its scale.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np
from torch import Tensor

from ...runtime.config import JsonConfig
from ...runtime.garment_layout import check_layout
from .background import BackgroundSpec, render_background, sample_background_spec
from .camera import FRAMINGS, Camera
from .garments import Garment, coarsened, garments_differ, laid_out, sample_garment
from .motion import FPS, MOTION_NAMES, MotionParams, Pose, motion_prompt, pose_clip, sample_motion
from .people import Person, sample_person
from .render import Clip, render_pose
from .templates import KINDS
from .textures import HELD_OUT_FAMILY, TRAIN_FAMILIES

__all__ = ["WorldConfig", "SPLITS", "SLOT_LAYOUTS", "split_of", "Sample", "SamplePlan", "plan_sample",
           "make_sample", "render_with", "render_plan", "render_video", "iterate"]

SPLITS: dict[str, range] = {
    "train": range(0, 1_000_000),
    "val": range(1_000_000, 1_010_000),
    "test": range(2_000_000, 2_010_000),
}
SLOT_LAYOUTS = ("full", "upper_lower")
_STREAMS = {"person": 1, "motion": 2, "background": 3, "garments": 4, "reference": 5, "slots": 6, "prompt": 7}


@dataclass(frozen=True)
class WorldConfig(JsonConfig):
    """What `make_sample` renders (JSON round trip via `to_json` / `from_json`)."""

    size: int = 128  # frames are size x size unless the framing or height / width say otherwise
    frames: int = 48  # pixel frames per video
    slots: str = "random"  # full | upper_lower | random (per sample)
    max_reference_views: int = 2  # 1: the re-dressed first frame; 2: + the same outfit turned
    fps: float = FPS
    motions: tuple[str, ...] = MOTION_NAMES  # the motions samples draw from
    framing: str = "full_body"  # full_body (fixed camera, square) | fashion (portrait, following camera)
    height: int | None = None  # frame height in px; None: the framing's (fashion: 144) or size
    width: int | None = None  # frame width in px; None: the framing's (fashion: 112) or size
    garment_layout: str = "frame"  # flat-lays: "frame" (centred, filling the frame) | "body" (where worn, `laid_out`)

    def __post_init__(self) -> None:
        object.__setattr__(self, "motions", tuple(self.motions))
        if self.size < 32:
            raise ValueError(f"size must be >= 32, got {self.size}")
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {tuple(FRAMINGS)}, got {self.framing!r}")
        check_layout(self.garment_layout)
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and value < 32:
                raise ValueError(f"{name} must be >= 32 (or None), got {value}")
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if self.slots not in SLOT_LAYOUTS + ("random",):
            raise ValueError(f"slots must be one of {SLOT_LAYOUTS + ('random',)}, got {self.slots!r}")
        if self.max_reference_views not in (1, 2):
            raise ValueError(f"max_reference_views must be 1 or 2, got {self.max_reference_views}")
        unknown = sorted(set(self.motions) - set(MOTION_NAMES))
        if not self.motions or unknown:
            raise ValueError(f"motions must be a non-empty subset of {MOTION_NAMES}, got unknown {unknown}")

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every image of a sample."""
        return FRAMINGS[self.framing].frame_size(self.size, self.height, self.width)


def split_of(seed: int) -> str:
    """The split whose seed range holds `seed`."""
    for name, seeds in SPLITS.items():
        if seed in seeds:
            return name
    ranges = ", ".join(f"{k} {v.start}..{v.stop - 1}" for k, v in SPLITS.items())
    raise ValueError(f"seed {seed} is in no split: {ranges}")


@dataclass
class Sample:
    """One training triplet; images in [-1, 1], `(H, W) = config.frame_size` (S x S by default).

    video `[T, 3, H, W]`; references `[V, 3, H, W]` (view 0: frame 0 re-dressed, view 1: the same
    outfit turned); garments `{slot: [3, H, W]}` flat-lays of what the video wears (slot "full",
    or "upper" and "lower"); masks `{person, upper, lower, skin, hair, head: [T, H, W] bool}`;
    reference_masks the same keys `[V, H, W]`; background `[3, H, W]` (the plate); meta: JSON-able.
    """

    video: Tensor
    references: Tensor
    garments: dict[str, Tensor]
    prompt: str
    masks: dict[str, Tensor]
    background: Tensor
    meta: dict = field(default_factory=dict)
    reference_masks: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplePlan:
    """Everything a sample is made of, before rendering."""

    seed: int
    split: str
    person: Person
    motion: MotionParams
    background: BackgroundSpec
    garments: Mapping[str, Garment]  # worn in the video
    reference_garments: Mapping[str, Garment]  # worn in the reference views
    reference_turn: float  # facing change of reference view 1 (radians)
    slots: str  # full | upper_lower
    prompt: str


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[stream]])


def _families(rng: np.random.Generator, split: str) -> tuple[str, ...]:
    if split == "test" and rng.random() < 0.5:
        return (HELD_OUT_FAMILY,)
    return TRAIN_FAMILIES


def plan_sample(seed: int, config: WorldConfig = WorldConfig()) -> SamplePlan:
    """Draw the person, motion, background, garments, reference garments, slots and prompt of `seed`."""
    split = split_of(seed)
    person = sample_person(_rng(seed, "person"))
    rng = _rng(seed, "motion")
    motion = sample_motion(rng, config.motions[int(rng.integers(len(config.motions)))])
    background = sample_background_spec(_rng(seed, "background"))
    rng = _rng(seed, "garments")
    garments = {kind: sample_garment(rng, kind, _families(rng, split)) for kind in KINDS}
    rng = _rng(seed, "reference")
    reference = {}
    for kind in KINDS:
        families = _families(rng, split)
        for _ in range(32):
            candidate = sample_garment(rng, kind, families)
            if garments_differ(garments[kind], candidate):
                break
        reference[kind] = candidate
    turn = float(rng.choice((0.5 * math.pi, -0.5 * math.pi, math.pi)) + rng.uniform(-0.25, 0.25))
    scale = FRAMINGS[config.framing].pattern_scale  # after all draws: the same garments, coarser patterns
    garments = {k: coarsened(g, scale) for k, g in garments.items()}
    reference = {k: coarsened(g, scale) for k, g in reference.items()}
    slots = config.slots
    if slots == "random":
        slots = SLOT_LAYOUTS[int(_rng(seed, "slots").integers(len(SLOT_LAYOUTS)))]
    prompt = motion_prompt(_rng(seed, "prompt"), motion)
    return SamplePlan(seed, split, person, motion, background, garments, reference, turn, slots, prompt)


def _to_signed(x: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1], in place (only for tensors this module owns)."""
    return x.mul_(2.0).sub_(1.0)


def _shot(plan: SamplePlan, config: WorldConfig, start: int, frames: int) -> tuple[Pose, Camera]:
    """The plan's pose (world units) at pixel frames start .. start + frames - 1 and the framing's camera on it."""
    pose = pose_clip(plan.person, plan.motion, frames, config.fps, start)
    return pose, FRAMINGS[config.framing].camera(plan.person, pose)


def _draw(plan: SamplePlan, garments: Mapping[str, Garment], pose: Pose, camera: Camera, plate: Tensor,
          config: WorldConfig) -> Clip:
    """The plan's person in `garments` and `pose`, seen by `camera` over `plate` `[3, H, W]` in [0, 1]."""
    res = camera.atlas_res(plate.shape[-2])
    return render_pose(camera.person(plan.person), garments, camera.view(pose), plate, res,
                       FRAMINGS[config.framing].face)


def render_video(plan: SamplePlan, config: WorldConfig = WorldConfig(), start: int = 0,
                 frames: int | None = None) -> Clip:
    """Pixel frames start .. start + frames - 1 (default: the whole clip) of the plan's video, drawn as
    `render_plan` draws them (the framing's camera): `Clip.video` `[frames, 3, H, W]` in [0, 1] and masks.

    Re-dress or recast the clip by replacing the plan's garments or person (`dataclasses.replace`).
    """
    height, width = config.frame_size
    pose, camera = _shot(plan, config, start, config.frames if frames is None else frames)
    return _draw(plan, plan.garments, pose, camera, render_background(plan.background, height, width), config)


def render_plan(plan: SamplePlan, config: WorldConfig = WorldConfig()) -> Sample:
    """Render a plan into a `Sample` (the framing's camera looks at the plan's world-unit poses)."""
    height, width = config.frame_size
    plate = render_background(plan.background, height, width)
    pose, camera = _shot(plan, config, 0, config.frames)
    clip = _draw(plan, plan.garments, pose, camera, plate, config)
    first = pose.select(0)
    views = first
    if config.max_reference_views == 2:
        turned = first.turned(plan.reference_turn)
        views = Pose(np.concatenate([first.local, turned.local]), np.concatenate([first.facing, turned.facing]),
                     np.concatenate([first.root, turned.root]))
    # the reference views are frame 0, so they are seen by frame 0's camera
    refs = _draw(plan, plan.reference_garments, views, camera.select(np.zeros(views.frames, int)), plate, config)
    upper, lower = plan.garments["upper"], plan.garments["lower"]
    garments = {"upper": upper, "lower": lower}
    slots = ("full",) if plan.slots == "full" else ("upper", "lower")
    slot_images = {slot: laid_out(garments, slot, (height, width), config.garment_layout) for slot in slots}
    meta = {
        "seed": plan.seed, "split": plan.split, "slots": plan.slots, "motion": plan.motion.name,
        "motion_params": plan.motion.describe(), "person": plan.person.describe(),
        "background": plan.background.describe(),
        "garments": {k: g.describe() for k, g in plan.garments.items()},
        "reference_garments": {k: g.describe() for k, g in plan.reference_garments.items()},
        "families": {k: g.front.family for k, g in plan.garments.items()},
        "reference_families": {k: g.front.family for k, g in plan.reference_garments.items()},
        "reference_turn": plan.reference_turn, "facing": [float(f) for f in pose.facing],
        "size": config.size, "frames": config.frames, "fps": config.fps,
        "framing": config.framing, "height": height, "width": width,
    }
    if config.garment_layout != "frame":  # recorded only when not the default (default samples stay as they were)
        meta["garment_layout"] = config.garment_layout
    return Sample(
        video=_to_signed(clip.video), references=_to_signed(refs.video),
        garments={k: _to_signed(v) for k, v in slot_images.items()}, prompt=plan.prompt, masks=clip.masks,
        background=_to_signed(plate.clone()), meta=meta, reference_masks=refs.masks)


def make_sample(seed: int, config: WorldConfig = WorldConfig()) -> Sample:
    """The sample of `seed` (deterministic: the same seed gives bit-identical tensors)."""
    return render_plan(plan_sample(seed, config), config)


def render_with(seed: int, garments: Mapping[str, Garment], config: WorldConfig = WorldConfig()) -> Sample:
    """`make_sample(seed)` with the video dressed in `garments` (kinds not given stay as they were).

    Person, motion, background, timing, prompt, slot layout and references are unchanged; the
    garment slots show the new garments' flat-lays. Used for K-candidate evaluation on one person
    and for try-off pairs.
    """
    plan = plan_sample(seed, config)
    for kind, g in garments.items():
        if kind not in KINDS or g.kind != kind:
            raise ValueError(f"garments[{kind!r}] must be a garment of kind {kind!r}")
    return render_plan(dataclasses.replace(plan, garments={**plan.garments, **garments}), config)


def iterate(split: str, start: int = 0, count: int | None = None,
            config: WorldConfig = WorldConfig()) -> Iterator[Sample]:
    """Samples `start`, `start + 1`, ... of a split (`count` of them, or to the split's end)."""
    seeds = SPLITS[split]
    stop = len(seeds) if count is None else min(len(seeds), start + count)
    for i in range(start, stop):
        yield make_sample(seeds[i], config)
