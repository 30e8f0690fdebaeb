"""Motions: per-clip parameters, prompts, and the pose of a person at each frame.

A motion is a function of time that sets joint angles (and the facing angle); forward
kinematics on the person's body dimensions gives 3-D joints in a body frame (x to the
wearer's left, y down, z forward), which are turned about the vertical axis by `facing`
(0 = facing the camera, pi = back to the camera; a positive facing turns the front toward
image-right) and placed on the floor. Orthographic projection keeps x and y, so `Pose.xy`
is the 2-D pose and z only orders depth.

Prompts use only words of `fashionchameleon.runtime.encoders.text.MOTION_VOCAB` and never name garments or
colours; "left"/"right" in prompts mean image left/right.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .people import BodyDims, Person

__all__ = ["JOINTS", "MotionParams", "Pose", "MotionSpec", "MOTIONS", "MOTION_NAMES", "sample_motion",
           "pose_clip", "motion_prompt", "FPS"]

FPS = 16.0  # pixel frames per second of the world's clips

JOINTS = ("head", "neck", "shoulder_r", "shoulder_l", "elbow_r", "elbow_l", "wrist_r", "wrist_l",
          "pelvis", "hip_r", "hip_l", "knee_r", "knee_l", "ankle_r", "ankle_l", "toe_r", "toe_l",
          "hair_top", "hair_bottom", "bun")
J = {name: i for i, name in enumerate(JOINTS)}


@dataclass(frozen=True)
class MotionParams:
    """One clip's motion: the motion name, its random parameters and the staging."""

    name: str
    speed: float = 0.5  # cycles per second (turns per second for `turn`)
    amplitude: float = 1.0  # multiplier of the motion's angles
    phase: float = 0.0  # radians into the cycle at t = 0
    side: int = 1  # +1 / -1: image side of travel, turning, or the waving arm
    facing: float = 0.0  # base facing angle (radians)
    travel: float = 0.0  # horizontal speed, frame units per second (walk)
    onset: float = 0.0  # seconds until a gesture is fully raised (wave); <= 0: raised from the start
    x0: float = 0.0  # horizontal position of the pelvis at t = 0
    floor: float = 0.9  # y of the floor (where the soles are)

    def describe(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Pose:
    """Joints of `T` frames: body-frame joints, facing and root (all numpy float64)."""

    local: np.ndarray  # [T, J, 3] body frame: x wearer's left, y down, z forward; pelvis at x = shift
    facing: np.ndarray  # [T] radians
    root: np.ndarray  # [T, 2] view-space translation (x, y)

    @property
    def frames(self) -> int:
        return self.local.shape[0]

    @property
    def joints(self) -> np.ndarray:
        """View-space joints `[T, J, 3]`: x right, y down, z toward the camera (frame units)."""
        c, s = np.cos(self.facing)[:, None], np.sin(self.facing)[:, None]  # [T, 1]
        x, y, z = self.local[..., 0], self.local[..., 1], self.local[..., 2]  # [T, J] each
        out = np.stack([x * c + z * s + self.root[:, :1], y + self.root[:, 1:], -x * s + z * c], axis=-1)
        return out  # [T, J, 3]

    @property
    def xy(self) -> np.ndarray:
        """The 2-D pose `[T, J, 2]`."""
        return self.joints[..., :2]

    def select(self, frames) -> "Pose":
        """A sub-sequence (index, slice or index array)."""
        idx = np.atleast_1d(np.arange(self.frames)[frames])
        return Pose(self.local[idx], self.facing[idx], self.root[idx])

    def turned(self, delta: float) -> "Pose":
        """The same pose seen after the person turned by `delta` radians (feet stay on the floor)."""
        return Pose(self.local, np.mod(self.facing + delta, 2.0 * math.pi), self.root)


# ---- joint angles -> body-frame joints ----

_REST = {
    "lean_x": 0.0, "lean_z": 0.02, "shift_x": 0.0, "breath": 0.0,
    "arm_abd_r": 0.1, "arm_flex_r": 0.0, "fore_abd_r": 0.08, "fore_flex_r": 0.12,
    "arm_abd_l": 0.1, "arm_flex_l": 0.0, "fore_abd_l": 0.08, "fore_flex_l": 0.12,
    "leg_abd_r": 0.03, "leg_flex_r": 0.0, "shin_abd_r": 0.0, "shin_flex_r": 0.0,
    "leg_abd_l": 0.03, "leg_flex_l": 0.0, "shin_abd_l": 0.0, "shin_flex_l": 0.0,
    "facing": 0.0, "root_x": 0.0,
}


def _direction(abd, flex, side: float) -> np.ndarray:
    """Unit limb direction `[T, 3]` from abduction (0 = down, pi = up, in the frontal plane,
    outward on `side`) and flexion (toward +z, forward)."""
    return np.stack([side * np.sin(abd) * np.cos(flex), np.cos(abd) * np.cos(flex), np.sin(flex)], axis=-1)


def _forward_kinematics(ch: dict[str, np.ndarray], d: BodyDims) -> np.ndarray:
    """Joint-angle channels (each `[T]`) -> body-frame joints `[T, J, 3]` (pelvis at y = 0)."""
    n = len(ch["facing"])
    joints = np.zeros((n, len(JOINTS), 3))
    lx, lz = ch["lean_x"], ch["lean_z"]
    up = np.stack([np.sin(lx) * np.cos(lz), -np.cos(lx) * np.cos(lz), np.sin(lz)], axis=-1)  # [T, 3] spine
    lateral = np.stack([np.cos(lx), np.sin(lx), np.zeros(n)], axis=-1)  # [T, 3] shoulder line
    pelvis = np.stack([ch["shift_x"], np.zeros(n), np.zeros(n)], axis=-1)
    neck = pelvis + d.torso_len * up
    joints[:, J["pelvis"]] = pelvis
    joints[:, J["neck"]] = neck
    head = neck + (d.neck_len + d.head_ry) * up
    joints[:, J["head"]] = head
    # hair anchors: long hair hangs behind the torso, a bun sits on the back of the crown
    back = np.array([0.0, 0.0, -1.0])
    joints[:, J["hair_top"]] = head + 0.25 * d.head_ry * np.array([0.0, 1.0, 0.0]) + 0.45 * d.head_rx * back
    joints[:, J["hair_bottom"]] = neck - 0.42 * d.torso_len * up + (d.chest_d + 0.25 * d.head_rx) * back
    joints[:, J["bun"]] = head + 0.78 * d.head_ry * -up + 0.55 * d.head_rx * back
    shoulder_base = neck - 0.12 * d.torso_len * up + np.stack(
        [np.zeros(n), -ch["breath"], np.full(n, 0.25 * d.chest_d)], axis=-1)
    for side, s in (("r", -1.0), ("l", 1.0)):
        shoulder = shoulder_base + s * d.shoulder_x * lateral
        elbow = shoulder + d.upper_arm * _direction(ch[f"arm_abd_{side}"] + s * lx, ch[f"arm_flex_{side}"], s)
        wrist = elbow + d.forearm * _direction(ch[f"fore_abd_{side}"] + s * lx, ch[f"fore_flex_{side}"], s)
        hip = pelvis + np.array([s * d.hip_x, 0.0, 0.0])
        knee = hip + d.thigh * _direction(ch[f"leg_abd_{side}"], ch[f"leg_flex_{side}"], s)
        ankle = knee + d.shin * _direction(ch[f"shin_abd_{side}"], ch[f"shin_flex_{side}"], s)
        toe = ankle + np.array([0.0, d.foot_h, d.foot_len])
        for name, value in (("shoulder", shoulder), ("elbow", elbow), ("wrist", wrist), ("hip", hip),
                            ("knee", knee), ("ankle", ankle), ("toe", toe)):
            joints[:, J[f"{name}_{side}"]] = value
    return joints


# ---- the motions (each sets channels from time t [T] seconds and the params) ----

def _walk(t, p: MotionParams, ch) -> None:
    a = p.amplitude
    ph = 2.0 * math.pi * p.speed * t + p.phase
    swing = 0.42 * a * np.sin(ph)
    ch["leg_flex_r"], ch["leg_flex_l"] = swing, -swing
    ch["shin_flex_r"] = swing - 0.8 * a * np.maximum(0.0, np.cos(ph))
    ch["shin_flex_l"] = -swing - 0.8 * a * np.maximum(0.0, -np.cos(ph))
    ch["arm_flex_r"], ch["arm_flex_l"] = -0.8 * swing, 0.8 * swing
    ch["fore_flex_r"], ch["fore_flex_l"] = 0.25 - 0.8 * swing, 0.25 + 0.8 * swing
    ch["lean_z"] = np.full_like(t, 0.05)
    ch["root_x"] = np.clip(p.x0 + p.travel * t, -0.6, 0.6)


def _turn(t, p: MotionParams, ch) -> None:
    ch["facing"] = p.facing + p.side * 2.0 * math.pi * p.speed * t
    step = 2.0 * math.pi * 2.0 * p.speed * t + p.phase
    lift = 0.18 * p.amplitude
    ch["leg_flex_r"] = lift * np.maximum(0.0, np.sin(step))
    ch["leg_flex_l"] = lift * np.maximum(0.0, -np.sin(step))
    ch["shin_flex_r"] = -ch["leg_flex_r"]
    ch["shin_flex_l"] = -ch["leg_flex_l"]
    ch["arm_abd_r"] = ch["arm_abd_l"] = 0.14 + 0.05 * np.sin(step)


def _wave(t, p: MotionParams, ch) -> None:
    s = "l" if p.side > 0 else "r"  # image-right arm is the wearer's left when facing the camera
    raise_ = np.clip((t - p.onset) / 0.5 + 1.0, 0.0, 1.0)
    raise_ = raise_ * raise_ * (3.0 - 2.0 * raise_)
    wave = np.pi - 0.35 + 0.45 * p.amplitude * np.sin(2.0 * math.pi * p.speed * t + p.phase)
    ch[f"arm_abd_{s}"] = 0.1 + (1.95 - 0.1) * raise_
    ch[f"arm_flex_{s}"] = 0.15 * raise_
    ch[f"fore_abd_{s}"] = 0.08 + (wave - 0.08) * raise_
    ch["lean_x"] = 0.02 * np.sin(math.pi * p.speed * t)


def _sway(t, p: MotionParams, ch) -> None:
    ph = 2.0 * math.pi * p.speed * t + p.phase
    ch["lean_x"] = 0.1 * p.amplitude * np.sin(ph)
    ch["shift_x"] = -0.035 * p.amplitude * np.sin(ph)
    ch["arm_abd_r"] = 0.12 - 0.08 * np.sin(ph)
    ch["arm_abd_l"] = 0.12 + 0.08 * np.sin(ph)
    ch["leg_abd_r"] = ch["leg_abd_l"] = np.full_like(t, 0.07)
    ch["shin_abd_r"] = ch["shin_abd_l"] = np.full_like(t, -0.04)


def _squat(t, p: MotionParams, ch) -> None:
    depth = p.amplitude * (0.5 - 0.5 * np.cos(2.0 * math.pi * p.speed * t + p.phase))
    for s in ("r", "l"):
        ch[f"leg_flex_{s}"] = 1.25 * depth
        ch[f"shin_flex_{s}"] = -1.05 * depth
        ch[f"leg_abd_{s}"] = 0.05 + 0.15 * depth
        ch[f"shin_abd_{s}"] = 0.02 + 0.05 * depth
        ch[f"arm_flex_{s}"] = 1.35 * depth
        ch[f"fore_flex_{s}"] = 0.12 + 1.4 * depth
    ch["lean_z"] = 0.02 + 0.5 * depth


def _idle(t, p: MotionParams, ch) -> None:
    ph = 2.0 * math.pi * p.speed * t + p.phase
    ch["breath"] = 0.004 * p.amplitude * (1.0 + np.sin(ph))
    ch["lean_x"] = 0.012 * p.amplitude * np.sin(0.5 * ph)
    ch["arm_abd_r"] = ch["arm_abd_l"] = 0.1 + 0.01 * np.sin(ph)


def _raise_arms(t, p: MotionParams, ch) -> None:
    up = p.amplitude * (0.5 - 0.5 * np.cos(2.0 * math.pi * p.speed * t + p.phase))
    for s in ("r", "l"):
        ch[f"arm_abd_{s}"] = 0.1 + (math.pi - 0.45) * up
        ch[f"fore_abd_{s}"] = 0.08 + (math.pi - 0.4) * up
        ch[f"fore_flex_{s}"] = 0.12 * (1.0 - up)


def _step_side(t, p: MotionParams, ch) -> None:
    ph = 2.0 * math.pi * p.speed * t + p.phase
    ch["root_x"] = p.x0 + 0.13 * p.amplitude * np.sin(ph)
    wide = np.abs(np.cos(ph))  # legs apart while moving, together at the ends
    ch["leg_abd_r"] = ch["leg_abd_l"] = 0.04 + 0.16 * p.amplitude * wide
    ch["shin_abd_r"] = ch["shin_abd_l"] = -0.04 * p.amplitude * wide
    lift = np.maximum(0.0, np.sin(2.0 * ph))
    ch["leg_flex_r"], ch["shin_flex_r"] = 0.15 * lift, -0.2 * lift
    ch["arm_abd_r"] = ch["arm_abd_l"] = 0.1 + 0.18 * p.amplitude * wide


@dataclass(frozen=True)
class MotionSpec:
    """A motion: its pose function, parameter ranges and prompt phrasings.

    Prompt templates may use {dir} (image side: "left"/"right") and {pace} (" slowly",
    " quickly" or ""), filled by `motion_prompt`.
    """

    name: str
    pose: Callable
    speed: tuple[float, float]
    amplitude: tuple[float, float]
    prompts: tuple[str, ...]


MOTIONS: dict[str, MotionSpec] = {m.name: m for m in (
    MotionSpec("walk", _walk, (0.75, 1.15), (0.75, 1.15), (
        "a person walks{pace} to the {dir}", "the model walking to the {dir}", "a figure walks{pace} in place",
        "a person walking toward the camera", "the model walks forward{pace}")),
    MotionSpec("turn", _turn, (0.26, 0.4), (0.6, 1.2), (
        "a person turns around{pace}", "the model spins around to the {dir}", "a figure turning around",
        "a person turns around and shows the back", "the model turns{pace} and shows the back and front")),
    MotionSpec("wave", _wave, (1.2, 2.0), (0.7, 1.2), (
        "a person waves{pace}", "the model waves a hand", "a figure waving with the {dir} hand",
        "a person raises a hand and waves to the camera", "the model waving at the camera")),
    MotionSpec("sway", _sway, (0.35, 0.7), (0.7, 1.2), (
        "a person sways{pace}", "the model sways left and right", "a figure swaying in place",
        "a person stands and sways the body")),
    MotionSpec("squat", _squat, (0.3, 0.5), (0.7, 1.0), (
        "a person squats{pace}", "the model squats and stands", "a figure squatting in place",
        "a person squats then stands")),
    MotionSpec("idle", _idle, (0.2, 0.35), (0.6, 1.2), (
        "a person stands still", "the model standing still", "a figure idle in place",
        "a person poses standing still", "the model stands facing the camera")),
    MotionSpec("raise_arms", _raise_arms, (0.25, 0.45), (0.8, 1.0), (
        "a person raises the arms{pace}", "the model raises and lowers the arms", "a figure raising the arms",
        "a person raises the hands then lowers the hands")),
    MotionSpec("step_side", _step_side, (0.35, 0.6), (0.7, 1.1), (
        "a person steps sideways{pace}", "the model steps to the left and right", "a figure stepping sideways",
        "a person stepping side to side")),
)}
MOTION_NAMES = tuple(MOTIONS)

# walk prompts that fit a walk in place (the others name the direction of travel)
_IN_PLACE_WALK = ("in place", "toward the camera", "forward")


def sample_motion(rng: np.random.Generator, name: str | None = None) -> MotionParams:
    """Random parameters (and staging) for motion `name` (uniform over MOTIONS when None)."""
    name = MOTION_NAMES[int(rng.integers(len(MOTION_NAMES)))] if name is None else name
    spec = MOTIONS[name]
    side = int(rng.choice((-1, 1)))
    facing = float(rng.normal(0.0, 0.15))
    travel = 0.0
    x0 = float(rng.uniform(-0.15, 0.15))
    if name == "walk" and rng.random() < 0.5:  # walk across: profile-ish view toward the travel side
        travel = side * float(rng.uniform(0.08, 0.16))
        facing = side * float(rng.uniform(0.5, 1.3))
        x0 = -side * float(rng.uniform(0.1, 0.3))
    if name == "turn":
        facing = float(rng.uniform(-0.3, 0.3))
    return MotionParams(
        name=name, speed=float(rng.uniform(*spec.speed)), amplitude=float(rng.uniform(*spec.amplitude)),
        phase=float(rng.uniform(0.0, 2.0 * math.pi)), side=side, facing=facing, travel=travel,
        onset=float(rng.uniform(-0.6, 0.5)), x0=x0, floor=float(rng.uniform(0.9, 0.96)))


def motion_prompt(rng: np.random.Generator, params: MotionParams) -> str:
    """A prompt phrasing that fits the clip (its direction and pace)."""
    spec = MOTIONS[params.name]
    options = list(spec.prompts)
    if params.name == "walk":
        across = params.travel != 0.0
        options = [o for o in options if ("{dir}" in o) == across and (across or any(w in o for w in _IN_PLACE_WALK))]
    lo, hi = spec.speed
    frac = (params.speed - lo) / (hi - lo)
    pace = " slowly" if frac < 0.3 else " quickly" if frac > 0.7 else ""
    side = "right" if params.side > 0 else "left"
    return options[int(rng.integers(len(options)))].format(dir=side, pace=pace)


def pose_clip(person: Person, motion: MotionParams, frames: int, fps: float = FPS, start: int = 0) -> Pose:
    """The pose of `person` doing `motion` at pixel frames start .. start + frames - 1."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    d = person.dims()
    t = (start + np.arange(frames, dtype=np.float64)) / fps  # [T] seconds
    ch = {k: np.full(frames, v, dtype=np.float64) for k, v in _REST.items()}
    ch["facing"] = np.full(frames, motion.facing)
    ch["root_x"] = np.full(frames, motion.x0)
    MOTIONS[motion.name].pose(t, motion, ch)
    local = _forward_kinematics(ch, d)  # [T, J, 3]
    lowest = np.maximum(local[:, J["ankle_r"], 1], local[:, J["ankle_l"], 1])  # [T]; y grows downward
    root = np.stack([ch["root_x"], motion.floor - d.foot_h - lowest], axis=-1)  # [T, 2]
    return Pose(local, np.mod(ch["facing"], 2.0 * math.pi), root)
