"""Framings: the frame size of a world's clips and the camera that looks at the person.

World lengths are frame units of the original camera: a square frame spanning [-1, 1] on both
axes, fixed, with the floor near its bottom (`people`, `motion`). A `Camera` maps world points
into the frame of a clip, per frame t,

    p -> (p - centre[t]) * zoom        (x and y; depth scales by zoom too, so occlusions keep)

and the renderer draws in frame units where y spans [-1, 1] over the height and x spans
[-W/H, W/H] over the width (`shapes.frame_grid`). Applying a camera to a pose and scaling the
person's lengths by the same zoom (`Camera.view`, `Camera.person`) is exactly that similarity, so
the renderer needs no camera of its own.

- `full_body`: the world as first built, the fixed camera (centre 0, zoom 1) on square frames.
  A whole standing person of 1.62-1.8 units fills ~87 % of the height but ~14 % of the pixels;
  in a 128 x 128 frame the upper garment gets ~3 of the 64 tokens (16 x 16 px), the head < 1.
- `fashion`: framed like fashion video. A portrait 7:9 frame of 112 x 144 (7 x 9 = 63 tokens)
  and a camera that follows the person: each clip's zoom makes the frame `span` = 0.8 person
  heights tall (crown to the knees: a three-quarter shot), the crown sits `top` = 4 % of the
  height below the top edge in every frame (the camera tilts with a squat and the walking bob) and
  the person's root stays on the centre line (the camera pans with walks and side steps, so
  nobody walks out of the frame; only raised or waving arms reach past its edges). The plate stays
  as it is (see `background`). The person covers ~33 % of the pixels, the upper garment ~8.5
  tokens, the head ~400 px (`tools/world_stats.py`). Face marks are bolder (`FASHION_FACE`) and
  periodic patterns 1.5x coarser (`pattern_scale`), so that they span what the codec's 8x
  downsampling keeps (`tools/codec_textures.py`).

Why 112 x 144 rather than 96 x 160 (60 tokens), measured on 30 test clips: the same shot in the
narrower frame gives the upper garment ~22 % more tokens (10.4 vs 8.6), but its 0.48 person
heights of width are too few for the body: the person touches a side edge in 10 % of walking and
15 % of squatting frames (never in 112 x 144) and the waving hand is outside in 97 % of frames
(vs 82 %). Zoomed out to the same head size (0.9 person heights, to mid-shin) it gives the garment
fewer tokens (8.3) and a squat fills only 84 % of the height.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .motion import J, Pose
from .people import Person
from .render import FaceStyle

__all__ = ["Camera", "Framing", "FRAMINGS", "FASHION_FACE", "follow_camera"]


@dataclass(frozen=True, eq=False)
class Camera:
    """World -> frame units, per frame: `(p - centre[t]) * zoom`."""

    centre: np.ndarray  # [T, 2] world point (x, y) at the frame's centre
    zoom: float  # frame units per world unit

    @classmethod
    def fixed(cls, frames: int) -> "Camera":
        """The world's own camera: frame units are world units."""
        return cls(np.zeros((frames, 2)), 1.0)

    @property
    def frames(self) -> int:
        return self.centre.shape[0]

    def select(self, frames) -> "Camera":
        """The camera at a sub-sequence of frames (index, slice or index array; repeats allowed)."""
        idx = np.atleast_1d(np.arange(self.frames)[frames])
        return Camera(self.centre[idx], self.zoom)

    def view(self, pose: Pose) -> Pose:
        """`pose` in frame units (one camera frame per pose frame)."""
        if pose.frames != self.frames:
            raise ValueError(f"the pose has {pose.frames} frames but the camera {self.frames}")
        return Pose(pose.local * self.zoom, pose.facing, (pose.root - self.centre) * self.zoom)

    def person(self, person: Person) -> Person:
        """The person as the camera draws them: every body length (all scale with height) times zoom."""
        return replace(person, height=person.height * self.zoom)

    def atlas_res(self, height: int) -> int:
        """Garment atlas texels for frames `height` px tall: the renderer's default `max(16, H // 2)`
        at zoom 1, growing with the zoom so a garment keeps about one texel per pixel."""
        return max(16, int(height * self.zoom) // 2)


def follow_camera(person: Person, pose: Pose, span: float, top: float) -> Camera:
    """A camera whose frame is `span` person heights tall, with the crown `top` (a fraction of the
    frame height) below the top edge and the motion's root on the centre line, in every frame."""
    zoom = 2.0 / (span * person.height)
    crown = pose.joints[:, J["head"], 1] - person.dims().head_ry  # [T] y of the top of the head (y down)
    centre = np.stack([pose.root[:, 0], crown + (1.0 - 2.0 * top) / zoom], axis=-1)  # [T, 2]
    return Camera(centre, zoom)


# Marks drawn bolder for a head of ~18 x 22 px: the thin glasses rim, brows and the mole of the
# full-body world are 1 px wide there and vanish in an 8x codec; these are 2-4 px.
FASHION_FACE = FaceStyle(eye_r=0.22, brow_hh=0.1, mouth_hh=0.1, glasses=(0.19, 0.4), bridge_hh=0.09,
                         mole_r=0.2, mole_dy=0.25, bun_r=0.6)


@dataclass(frozen=True)
class Framing:
    """How a world frames its clips (see the module docstring)."""

    name: str
    frame: tuple[int, int] | None = None  # default (H, W); None: size x size
    span: float | None = None  # frame height in person heights (a following camera); None: the fixed camera
    top: float = 0.04  # following camera: the crown's distance below the top edge / the frame height
    face: FaceStyle = FaceStyle()
    pattern_scale: float = 1.0  # periodic garment patterns are drawn this much coarser (`garments.coarsened`)

    def frame_size(self, size: int, height: int | None = None, width: int | None = None) -> tuple[int, int]:
        """(H, W): `height` / `width` when given, else this framing's frame, else size x size."""
        default = self.frame or (size, size)
        return (default[0] if height is None else height, default[1] if width is None else width)

    def camera(self, person: Person, pose: Pose) -> Camera:
        """The camera of a clip of `person` in `pose` (world units)."""
        if self.span is None:
            return Camera.fixed(pose.frames)
        return follow_camera(person, pose, self.span, self.top)


FRAMINGS: dict[str, Framing] = {f.name: f for f in (
    Framing("full_body"),
    Framing("fashion", frame=(144, 112), span=0.8, top=0.04, face=FASHION_FACE, pattern_scale=1.5),
)}
