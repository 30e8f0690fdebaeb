"""The VIDEO output of a stream: its frames and frame rate as ComfyUI's own video value.

    to_video(frames, fps)   IMAGE `[T, H, W, 3]` + fps -> a VIDEO (`InputImpl.VideoFromComponents`)

The value holds the IMAGE tensor itself (no copy) and no audio; core's *Save Video* encodes it
(H.264 MP4 at the frame rate given here) and shows it in its own video preview.
"""
from __future__ import annotations

from fractions import Fraction

from torch import Tensor

from comfy_api.latest import InputImpl, Types

__all__ = ["to_video"]


def to_video(frames: Tensor, fps: float):
    """`frames` `[T, H, W, 3]` in 0..1 at `fps` frames per second -> a VIDEO without audio."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"a VIDEO is made from frames [T, H, W, 3], got shape {list(frames.shape)}")
    if not fps > 0:
        raise ValueError(f"a VIDEO needs a frame rate above 0, got {fps}")
    rate = Fraction(fps).limit_denominator(1001)  # a float NTSC rate 24000 / 1001 -> 24000/1001, 16.0 -> 16
    return InputImpl.VideoFromComponents(Types.VideoComponents(images=frames, frame_rate=rate, audio=None))
