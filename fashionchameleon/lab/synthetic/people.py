"""People of the procedural world: an identity (colours, hair, face marks, proportions) and the
body dimensions derived from it.

Lengths are in world units, the frame units of the fixed full-body camera: its frame spans 2
units from top to bottom (the [-1, 1] grid of `shapes`), so a person of `height` 1.6 fills 80 %
of that frame's height at any resolution (other framings zoom, see `camera`).
Identities differ in the colour and shape statistics of the head and skin (skin tone, hair
colour and style, glasses, beard, a mole) and in build (height, shoulders, hips, head, legs).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .palette import HAIR_COLOURS, SHOE_COLOURS, SKIN_TONES, Colour, jitter

__all__ = ["Person", "BodyDims", "HAIR_STYLES", "sample_person"]

HAIR_STYLES = ("short", "long", "bun", "bald")


@dataclass(frozen=True)
class BodyDims:
    """Segment lengths, radii and widths in frame units (derived from a `Person`)."""

    height: float
    head_rx: float
    head_ry: float
    neck_len: float
    neck_r: float
    torso_len: float  # neck base -> hip line
    shoulder_hw: float
    waist_hw: float
    hip_hw: float
    chest_d: float  # half depths of the torso cross-section (for side views)
    waist_d: float
    hip_d: float
    shoulder_x: float  # lateral offset of the shoulder joints
    hip_x: float  # lateral offset of the hip joints
    upper_arm: float
    forearm: float
    arm_r: float
    forearm_r: float
    hand_r: float
    thigh: float
    shin: float
    thigh_r: float
    shin_r: float
    foot_h: float  # ankle height above the floor
    foot_len: float
    foot_r: float

    @property
    def leg_len(self) -> float:
        return self.thigh + self.shin

    @property
    def arm_len(self) -> float:
        return self.upper_arm + self.forearm


@dataclass(frozen=True)
class Person:
    skin: Colour
    hair: Colour
    hair_style: str  # short | long | bun | bald
    eyes: Colour
    shoes: Colour
    glasses: bool
    beard: bool
    mole: tuple[float, float] | None  # head-local (x, y) on the unit head sphere, y down; None: no mole
    height: float  # feet -> crown, frame units (the frame is 2 units tall)
    shoulder: float  # shoulder half width / height
    hip: float  # hip half width / height
    head: float  # head height / height
    legs: float  # hip joint -> ankle / height

    def __post_init__(self) -> None:
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"hair_style must be one of {HAIR_STYLES}, got {self.hair_style!r}")

    def dims(self) -> BodyDims:
        h = self.height
        head_ry = 0.5 * self.head * h
        neck_len, foot_h = 0.035 * h, 0.03 * h
        leg = self.legs * h
        shoulder_hw, hip_hw = self.shoulder * h, self.hip * h
        thigh_r = 0.48 * hip_hw
        arm_r = 0.03 * h
        return BodyDims(
            height=h, head_rx=0.8 * head_ry, head_ry=head_ry, neck_len=neck_len, neck_r=0.36 * 0.8 * head_ry,
            torso_len=h - 2.0 * head_ry - neck_len - leg - foot_h,
            shoulder_hw=shoulder_hw, waist_hw=0.84 * min(shoulder_hw, hip_hw), hip_hw=hip_hw,
            chest_d=0.58 * shoulder_hw, waist_d=0.6 * hip_hw, hip_d=0.62 * hip_hw,
            shoulder_x=shoulder_hw - 0.8 * arm_r, hip_x=hip_hw - 0.95 * thigh_r,
            upper_arm=0.18 * h, forearm=0.16 * h, arm_r=arm_r, forearm_r=0.025 * h, hand_r=0.028 * h,
            thigh=0.5 * leg, shin=0.5 * leg, thigh_r=thigh_r, shin_r=0.034 * h,
            foot_h=foot_h, foot_len=0.07 * h, foot_r=0.024 * h,
        )

    def describe(self) -> dict:
        """JSON-able parameters."""
        return dataclasses.asdict(self)


def sample_person(rng: np.random.Generator) -> Person:
    """A random identity and build."""
    style = HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=(0.35, 0.3, 0.2, 0.15)))]
    beard = bool(rng.random() < 0.25) and style != "long"
    mole = None
    if rng.random() < 0.45:
        mole = (float(rng.choice((-1.0, 1.0)) * rng.uniform(0.3, 0.55)), float(rng.uniform(0.05, 0.35)))
    return Person(
        skin=jitter(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 0.03),
        hair=jitter(rng, HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))], 0.04),
        hair_style=style,
        eyes=jitter(rng, (0.12, 0.09, 0.08) if rng.random() < 0.7 else (0.15, 0.35, 0.55), 0.03),
        shoes=jitter(rng, SHOE_COLOURS[int(rng.integers(len(SHOE_COLOURS)))], 0.03),
        glasses=bool(rng.random() < 0.3),
        beard=beard,
        mole=mole,
        height=float(rng.uniform(1.62, 1.8)),
        shoulder=float(rng.uniform(0.115, 0.145)),
        hip=float(rng.uniform(0.092, 0.12)),
        head=float(rng.uniform(0.12, 0.145)),
        legs=float(rng.uniform(0.43, 0.49)),
    )
