"""Reading videos: an image directory, a GIF / animated WebP (Pillow), or a video file (imageio-ffmpeg, else PyAV).

Frames come back as ``[T, 3, H, W]`` float in [-1, 1] (`read_video`) or ``uint8`` ``[T, H, W, 3]``
(`read_video_uint8`), with the source's frame rate.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import optional_deps  # its probes are looked up at call time (see optional_deps)
from .images import IMAGE_SUFFIXES, MediaError, from_uint8, pil_to_uint8, read_rgb
from .optional_deps import MissingDependency, last_line, require_pillow
from .video_write import GIF_TAG

__all__ = ["read_video", "read_video_uint8"]

_PILLOW_ANIMATIONS = (".gif", ".webp")  # read frame by frame with Pillow


def _natural_key(name: str) -> list:
    """'f2.png' < 'f10.png': digit runs compare as numbers (same as plain order for zero-padded names)."""
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", name)]


def _read_directory(path: Path, max_frames: int | None) -> list[np.ndarray]:
    files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.name.startswith(".")), key=lambda p: _natural_key(p.name))
    if not files:
        raise MediaError(f"{path} is a directory without image files ({', '.join(IMAGE_SUFFIXES)}); "
                         "a video directory holds one image per frame, in name order")
    frames = []
    for f in files[:max_frames]:
        a = read_rgb(f)
        if frames and a.shape != frames[0].shape:
            raise MediaError(f"frame {f} is {a.shape[1]}x{a.shape[0]} but {files[0].name} is "
                             f"{frames[0].shape[1]}x{frames[0].shape[0]}; all frames of {path} must share one size")
        frames.append(a)
    return frames


def _read_pillow_animation(path: Path, max_frames: int | None) -> tuple[list[np.ndarray], float | None]:
    Image = require_pillow(f"reading {path.suffix} animations")
    from PIL import ImageSequence

    frames, durations = [], []
    try:
        with Image.open(path) as img:
            comment = img.info.get("comment", b"")
            for frame in ImageSequence.Iterator(img):
                frames.append(pil_to_uint8(frame.copy()))
                durations.append(frame.info.get("duration") or 0)
                if comment == b"" and max_frames is not None and len(frames) >= max_frames:
                    break
    except (OSError, SyntaxError, ValueError) as e:
        raise MediaError(f"cannot read {path} as an animation ({e})") from e
    text = comment.decode("utf-8", "replace") if isinstance(comment, bytes) else str(comment)
    tag = re.match(rf"{GIF_TAG} fps=([0-9.eE+-]+) frames=(\d+) ms=(\d+)", text)
    if tag:  # ours: undo Pillow's merging of identical consecutive frames
        fps, total, ms = float(tag.group(1)), int(tag.group(2)), int(tag.group(3))
        repeats = [max(1, int(round(d / ms))) for d in durations]
        out = [f for f, k in zip(frames, repeats) for _ in range(k)][:total]
        out += [out[-1]] * (total - len(out))
        return out[:max_frames], fps
    positive = [d for d in durations if d > 0]
    return frames[:max_frames], (1000.0 / float(np.median(positive)) if positive else None)


def _read_imageio_ffmpeg(path: Path, max_frames: int | None) -> tuple[list[np.ndarray], float | None]:
    # Without passthrough, ffmpeg resamples to a constant rate and may duplicate or drop frames (a
    # clip whose timestamps start late gains a copy of its first frame); passthrough yields the
    # decoded frames as they are, as PyAV and decord (the official loader) do.
    iio = optional_deps.find_imageio_ffmpeg()
    try:
        reader = iio.read_frames(str(path), pix_fmt="rgb24", output_params=["-fps_mode", "passthrough"])
        meta = next(reader)
    except OSError as e:
        if "fps_mode" not in str(e):
            raise
        reader = iio.read_frames(str(path), pix_fmt="rgb24", output_params=["-vsync", "0"])  # ffmpeg < 5.1
        meta = next(reader)
    try:
        w, h = meta["size"]
        frames = []
        for raw in reader:
            if max_frames is not None and len(frames) >= max_frames:
                break
            frames.append(np.frombuffer(raw, np.uint8).reshape(h, w, 3))
    finally:
        reader.close()
    return frames, (float(meta.get("fps") or 0) or None)


def _read_av(path: Path, max_frames: int | None) -> tuple[list[np.ndarray], float | None]:
    av = optional_deps.find_av()
    frames = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise MediaError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        for frame in container.decode(stream):
            if max_frames is not None and len(frames) >= max_frames:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    return frames, (float(rate) if rate else None)


def read_video_uint8(path: str | Path, max_frames: int | None = None, *, backend: str = "auto",
                     default_fps: float = 16.0) -> tuple[Tensor, float]:
    """Like `read_video`, but frames stay ``uint8`` ``[T, H, W, 3]`` (a quarter of the memory)."""
    path = Path(path).expanduser()
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    if backend not in ("auto", "imageio-ffmpeg", "av"):
        raise ValueError(f"unknown video reader {backend!r}; choose 'auto', 'imageio-ffmpeg' or 'av'")
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    fps: float | None = None
    if path.is_dir():
        frames = _read_directory(path, max_frames)
    elif path.suffix.lower() in _PILLOW_ANIMATIONS and backend == "auto":
        frames, fps = _read_pillow_animation(path, max_frames)
    else:
        order = ("imageio-ffmpeg", "av") if backend == "auto" else (backend,)
        readers = {"imageio-ffmpeg": (optional_deps.find_imageio_ffmpeg, _read_imageio_ffmpeg),
                   "av": (optional_deps.find_av, _read_av)}
        usable = [name for name in order if readers[name][0]() is not None]
        if not usable:
            wanted = " or ".join(order)
            raise MissingDependency(f"reading the video file {path.name} needs {wanted}: run "
                                    "`pip install imageio-ffmpeg` (or `pip install av`); a directory of PNG "
                                    "frames or a GIF can be read with Pillow alone")
        try:
            frames, fps = readers[usable[0]][1](path, max_frames)
        except MediaError:
            raise
        except Exception as e:  # noqa: BLE001 - ffmpeg / PyAV raise their own types; say which file and which reader
            raise MediaError(f"cannot read {path} as a video with {usable[0]} ({last_line(e)})") from e
    if not frames:
        raise MediaError(f"{path} holds no frames")
    return torch.from_numpy(np.stack(frames)), float(fps or default_fps)  # [T, H, W, 3] uint8


def read_video(path: str | Path, max_frames: int | None = None, *, backend: str = "auto",
               default_fps: float = 16.0) -> tuple[Tensor, float]:
    """A video -> ``(frames [T, 3, H, W] float in [-1, 1], fps)``; at most the first ``max_frames`` frames.

    ``path`` is a directory of image files (one frame each, in natural name order: ``f2`` before
    ``f10``), a GIF / animated WebP (Pillow), or any other video file (imageio-ffmpeg, else PyAV).
    ``default_fps`` is returned where the source has no frame rate (an image directory).
    backend: "auto", "imageio-ffmpeg" or "av" (for video files; directories and GIFs use Pillow).
    """
    frames, fps = read_video_uint8(path, max_frames, backend=backend, default_fps=default_fps)
    return from_uint8(frames), fps
