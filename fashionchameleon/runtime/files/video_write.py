"""Writing videos: H.264 MP4 through imageio-ffmpeg or PyAV, else an animated GIF with Pillow (`save_video`)."""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import optional_deps  # its probes are looked up at call time (see optional_deps)
from .images import MediaError
from .optional_deps import MissingDependency, last_line, require_pillow, video_backends

__all__ = ["VIDEO_SUFFIXES", "GIF_TAG", "save_video"]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")  # what `save_video` writes with H.264 (plus ".gif")
_BACKENDS = ("imageio-ffmpeg", "av", "gif")
GIF_TAG = "fashionchameleon"  # GIF comment written by `save_video`: exact fps and frame count


def _video_uint8(frames: Tensor | np.ndarray) -> np.ndarray:
    """``[T, 3, H, W]`` in [-1, 1] (or uint8) -> ``uint8`` ``[T, H, W, 3]``."""
    t = frames.detach().cpu() if isinstance(frames, Tensor) else torch.as_tensor(np.asarray(frames))
    if t.ndim != 4 or t.shape[1] != 3 or t.shape[0] < 1:
        raise ValueError(f"a video must be [T, 3, H, W] with T >= 1, got shape {list(t.shape)}")
    if t.dtype != torch.uint8:
        if not t.is_floating_point():
            raise ValueError(f"integer videos must be uint8 (0..255), got {t.dtype}; floats are read as [-1, 1]")
        t = ((t.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(t.permute(0, 2, 3, 1).numpy())  # [T, H, W, 3]


def _pad_even(video: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sizes: repeat the last row / column where odd."""
    _, h, w, _ = video.shape
    if h % 2 or w % 2:
        video = np.pad(video, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(video)


def _write_imageio_ffmpeg(path: Path, video: np.ndarray, fps: float, quality: float) -> None:
    iio = optional_deps.find_imageio_ffmpeg()
    video = _pad_even(video)
    _, h, w, _ = video.shape
    writer = iio.write_frames(str(path), (w, h), fps=fps, codec="libx264", pix_fmt_in="rgb24",
                              pix_fmt_out="yuv420p", quality=quality, macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)  # start ffmpeg
    try:
        for frame in video:
            writer.send(frame)
    finally:
        writer.close()


def _write_av(path: Path, video: np.ndarray, fps: float, quality: float) -> None:
    av = optional_deps.find_av()
    video = _pad_even(video)
    _, h, w, _ = video.shape
    codec = "libx264" if "libx264" in av.codecs_available else "h264"
    crf = str(int((1.0 - min(max(quality, 0.0), 10.0) / 10.0) * 51))  # imageio-ffmpeg's mapping: 8 -> crf 10
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": crf}
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):  # flush the encoder
            container.mux(packet)


def _write_gif(path: Path, video: np.ndarray, fps: float) -> None:
    Image = require_pillow("writing GIF videos")
    ms = max(10, int(round(1000.0 / fps)))
    images = [Image.fromarray(f, mode="RGB") for f in video]
    # Pillow merges identical consecutive frames; the comment lets `read_video` restore them exactly.
    comment = f"{GIF_TAG} fps={fps!r} frames={len(images)} ms={ms}"
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=ms, loop=0,
                   comment=comment)


def save_video(path: str | Path, frames: Tensor | np.ndarray, fps: float = 16.0, *, backend: str = "auto",
               quality: float = 8.0) -> Path:
    """Write frames ``[T, 3, H, W]`` in [-1, 1] (or uint8) as a video; returns the path written.

    An ``.mp4`` / ``.mov`` / ``.mkv`` path (or a path without suffix, which gets ``.mp4``) is H.264 in
    yuv420p, through imageio-ffmpeg or else PyAV; odd sizes are padded by one repeated row / column.
    Without either library the video is written as an animated GIF with Pillow **and the suffix of
    the returned path becomes ``.gif``** (a warning is logged) — always use the returned path.
    A ``.gif`` path, or ``backend="gif"``, writes a GIF directly (frame delays are whole
    milliseconds, stored in 10 ms steps; `read_video` restores the exact fps and frame count).

    backend: "auto" (as above), "imageio-ffmpeg", "av" or "gif"; a named backend that is not
    installed raises `MissingDependency`. quality: 0..10 (H.264 only), higher is better.
    """
    if backend not in ("auto",) + _BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose 'auto' or one of {list(_BACKENDS)}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    video = _video_uint8(frames)  # [T, H, W, 3]
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix == "":
        path, suffix = path.with_suffix(".mp4"), ".mp4"
    elif suffix not in VIDEO_SUFFIXES + (".gif",):
        raise ValueError(f"save_video writes {', '.join(VIDEO_SUFFIXES)} or .gif files, not {suffix!r} ({path})")
    if suffix == ".gif" and backend not in ("auto", "gif"):
        raise ValueError(f"{path} is a GIF; the {backend!r} backend writes H.264 (.mp4) only")

    if suffix == ".gif":
        chosen = "gif"
    elif backend != "auto":
        chosen = backend
    else:
        chosen = next((b for b in video_backends() if b != "gif"), "gif")
        if chosen == "gif":
            log.warning("neither imageio-ffmpeg nor av is installed: writing %s as an animated GIF instead; "
                        "`pip install imageio-ffmpeg` for MP4", path.name)
    if chosen == "imageio-ffmpeg" and optional_deps.find_imageio_ffmpeg() is None:
        raise MissingDependency("writing MP4 with backend 'imageio-ffmpeg' needs it installed: "
                                "run `pip install imageio-ffmpeg`")
    if chosen == "av" and optional_deps.find_av() is None:
        raise MissingDependency("writing MP4 with backend 'av' needs PyAV installed: run `pip install av`")
    if chosen == "gif":
        require_pillow("writing videos (no imageio-ffmpeg or av for MP4, so as a GIF)")
        path = path.with_suffix(".gif")

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if chosen == "imageio-ffmpeg":
            _write_imageio_ffmpeg(path, video, fps, quality)
        elif chosen == "av":
            _write_av(path, video, fps, quality)
        else:
            _write_gif(path, video, fps)
    except Exception as e:  # noqa: BLE001 - ffmpeg / PyAV raise their own types; say which file and which writer
        raise MediaError(f"writing {path} with {chosen} failed: {last_line(e)}") from e
    return path
