"""Reading and writing images and videos, and the two resizes of the FashionChameleon preprocessing.

Tensor convention (the engine's): an image is ``[3, H, W]`` float in [-1, 1], a video ``[T, 3, H, W]``
float in [-1, 1], RGB. Arrays handed to or received from files are ``uint8`` ``[H, W, 3]``.

Preprocessing (as the official FashionChameleon training data loader does it): video frames and
reference images are resized to *cover* the target and centre-cropped (`resize_cover_crop`);
garment flat-lays are *fitted* inside the target and padded with white (`fit_pad_white`). Both are
pure torch (bilinear, antialiased) and work on one image or a stack of frames.

Optional libraries — imported lazily, inside the functions that need them, never at import time:

=========================  ===============================================================
function                   needs
=========================  ===============================================================
`load_image`, `save_png`   Pillow (``pip install pillow``; ComfyUI ships it)
`save_contact_sheet`       Pillow (`render_contact_sheet` needs it only for ``labels``)
`save_video`               MP4: imageio-ffmpeg (``pip install imageio-ffmpeg``, which brings its
                           own ffmpeg binary) or else PyAV (``pip install av``; recent ComfyUI
                           ships it); without both it writes an animated GIF with Pillow
`read_video`               an image directory, GIF or animated WebP: Pillow; any other video
                           file: imageio-ffmpeg or else PyAV
`resize_cover_crop`,       torch only
`fit_pad_white`
=========================  ===============================================================

A missing library raises `MissingDependency` (an ``ImportError``) that says what to install.
"""
from __future__ import annotations

import logging
import re
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MissingDependency", "MediaError", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "to_uint8", "from_uint8",
           "load_image", "save_png", "render_contact_sheet", "save_contact_sheet", "video_backends",
           "save_video", "read_video", "read_video_uint8", "resize_cover_crop", "fit_pad_white"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")  # what `save_video` writes with H.264 (plus ".gif")
_PILLOW_ANIMATIONS = (".gif", ".webp")  # read frame by frame with Pillow
_BACKENDS = ("imageio-ffmpeg", "av", "gif")
_GIF_TAG = "fashionchameleon"  # GIF comment written by `save_video`: exact fps and frame count


class MissingDependency(ImportError):
    """An optional library is not installed; the message says which one and how to install it."""


class MediaError(ValueError):
    """A file or directory could not be read or written as an image or a video."""


# ----------------------------------------------------------------------------- optional imports
def _pillow(task: str):
    try:
        from PIL import Image
    except ImportError as e:
        raise MissingDependency(f"{task} needs Pillow, which is not installed: run `pip install pillow` in the "
                                "Python environment that runs this code (ComfyUI already ships it)") from e
    return Image


def _imageio_ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg


def _av():
    try:
        import av
    except ImportError:
        return None
    return av


def video_backends() -> tuple[str, ...]:
    """The video writers usable here, best first: a subset of ("imageio-ffmpeg", "av", "gif")."""
    out = []
    if _imageio_ffmpeg() is not None:
        out.append("imageio-ffmpeg")
    if _av() is not None:
        out.append("av")
    try:
        _pillow("")
        out.append("gif")
    except MissingDependency:
        pass
    return tuple(out)


# ----------------------------------------------------------------------------- tensors <-> arrays
def to_uint8(image: Tensor | np.ndarray) -> np.ndarray:
    """One image -> ``uint8`` ``[H, W, 3]``.

    Accepts ``[3, H, W]``, ``[H, W, 3]``, ``[1, H, W]``, ``[H, W, 1]`` or ``[H, W]``, as a tensor or an
    array; ``uint8`` values are taken as 0..255, floating values as the engine's [-1, 1] (clamped).
    A leading axis of 1 or 3 means channels-first.
    """
    if isinstance(image, Tensor):
        image = image.detach().cpu()
        a = (image.float() if image.is_floating_point() else image).numpy()  # bfloat16 has no numpy dtype
    else:
        a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]  # [H, W, 1]
    elif a.ndim != 3:
        raise ValueError(f"an image must be [3, H, W] or [H, W, 3], got shape {list(a.shape)}")
    elif a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)  # [C, H, W] -> [H, W, C]
    if a.shape[-1] == 4:
        a = a[..., :3]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    if a.shape[-1] != 3:
        raise ValueError(f"an image must have 1 or 3 channels, got shape {list(a.shape)}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind in "biu":
        raise ValueError(f"integer images must be uint8 (0..255), got {a.dtype}; floats are read as [-1, 1]")
    a = (np.clip(a.astype(np.float32), -1.0, 1.0) + 1.0) * 127.5  # [-1, 1] -> [0, 255]
    return np.ascontiguousarray(np.rint(a).astype(np.uint8))


def from_uint8(array: np.ndarray | Tensor) -> Tensor:
    """``uint8`` ``[H, W, 3]`` -> ``[3, H, W]``, or ``[T, H, W, 3]`` -> ``[T, 3, H, W]``; float32 in [-1, 1]."""
    t = torch.as_tensor(np.asarray(array) if not isinstance(array, Tensor) else array)
    if t.dtype != torch.uint8 or t.ndim not in (3, 4) or t.shape[-1] != 3:
        raise ValueError(f"expected uint8 [H, W, 3] or [T, H, W, 3], got {t.dtype} {list(t.shape)}")
    return t.movedim(-1, -3).float().div_(127.5).sub_(1.0)  # [..., 3, H, W] in [-1, 1]


# ----------------------------------------------------------------------------- images
def _pil_to_uint8(img) -> np.ndarray:
    """A Pillow image -> ``uint8`` RGB ``[H, W, 3]``: EXIF rotation applied, alpha composited on white."""
    Image = _pillow("reading images")
    from PIL import ImageOps

    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grayscale
        a = np.asarray(img, dtype=np.float64)
        a = a / 65535.0 if a.max(initial=0) > 255 else a / 255.0
        g = np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if img.mode == "F":
        g = np.rint(np.clip(np.asarray(img, dtype=np.float64), 0, 1) * 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.array(img.convert("RGB"), dtype=np.uint8)


def _read_rgb(path: Path) -> np.ndarray:
    Image = _pillow("reading images")
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            return _pil_to_uint8(img)
    except (OSError, SyntaxError, ValueError) as e:
        raise MediaError(f"cannot read {path} as an image ({e}); is it a PNG/JPEG/WebP file?") from e


def load_image(path: str | Path) -> Tensor:
    """An image file -> ``[3, H, W]`` float in [-1, 1], RGB.

    Transparency is composited on white (flat-lays with alpha look as on a white sheet); grayscale,
    palette and 16-bit images are expanded to RGB; the EXIF orientation of photos is applied.
    """
    return from_uint8(_read_rgb(Path(path).expanduser()))


def save_png(path: str | Path, image: Tensor | np.ndarray) -> Path:
    """Write one image as PNG; see `to_uint8` for the accepted layouts. Creates parent folders."""
    Image = _pillow("writing PNG images")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image), mode="RGB").save(path, format="PNG")
    return path


# ----------------------------------------------------------------------------- contact sheets
Cell = tuple[int, int]
Colour = tuple[int, int, int]


def render_contact_sheet(rows: Sequence[Sequence[Tensor | None]], labels: Sequence[str] | None = None,
                         marked: Iterable[Cell] | Mapping[Cell, Colour] | None = None, *, gap: int = 0,
                         label_height: int = 14, mark_color: Colour = (255, 0, 0),
                         mark_width: int | None = None) -> np.ndarray:
    """A grid of frames -> ``uint8`` ``[H, W, 3]``.

    rows:   each row a list of frames ``[3, h, w]`` in [-1, 1] (or ``uint8``); ``None`` leaves a white
            cell, and rows shorter than the longest are padded with white cells. The cell size is the
            first frame's; frames of another size are fitted into it with white padding.
    labels: one text per row, written in a white strip of ``label_height`` pixels above the row.
    marked: cells ``(row, column)`` to frame with a border of ``mark_color`` (or a mapping cell ->
            colour), drawn inside the cell so the sheet's size does not change; the width defaults to
            ``max(2, min(h, w) // 32)``.

    Size: ``H = R * (h + strip) + (R - 1) * gap`` with ``strip = label_height`` if labels else 0,
    ``W = C * w + (C - 1) * gap`` for R rows and C columns.
    """
    frames = [f for row in rows for f in row if f is not None]
    if not rows or not frames:
        raise ValueError("a contact sheet needs at least one row with one frame")
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"got {len(labels)} labels for {len(rows)} rows; give one label per row (or None)")
    h, w = to_uint8(frames[0]).shape[:2]
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    strip = label_height if labels is not None else 0
    sheet = np.full((n_rows * (h + strip) + (n_rows - 1) * gap, n_cols * w + (n_cols - 1) * gap, 3), 255, np.uint8)

    def cell_origin(r: int, c: int) -> tuple[int, int]:
        return r * (h + strip + gap) + strip, c * (w + gap)

    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            if frame is None:
                continue
            px = to_uint8(frame)  # [h', w', 3]
            if px.shape[:2] != (h, w):
                px = to_uint8(fit_pad_white(from_uint8(px), h, w))
            y, x = cell_origin(r, c)
            sheet[y:y + h, x:x + w] = px

    colours = dict(marked) if isinstance(marked, Mapping) else {tuple(m): mark_color for m in (marked or ())}
    bw = mark_width if mark_width is not None else max(2, min(h, w) // 32)
    for (r, c), colour in colours.items():
        if not (0 <= r < n_rows and 0 <= c < n_cols):
            raise ValueError(f"marked cell {(r, c)} is outside the sheet ({n_rows} rows x {n_cols} columns)")
        y, x = cell_origin(r, c)
        box = sheet[y:y + h, x:x + w]  # a view: painting it paints the sheet
        box[:bw], box[-bw:], box[:, :bw], box[:, -bw:] = colour, colour, colour, colour

    if labels is not None:
        sheet = _draw_labels(sheet, labels, [cell_origin(r, 0)[0] - strip for r in range(n_rows)], strip)
    return sheet


def _draw_labels(sheet: np.ndarray, labels: Sequence[str], tops: list[int], strip: int) -> np.ndarray:
    Image = _pillow("writing contact-sheet labels")
    from PIL import ImageDraw, ImageFont

    img = Image.fromarray(sheet, mode="RGB")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for top, text in zip(tops, labels):
        text = str(text)
        try:
            draw.text((2, top + max(0, (strip - 11) // 2)), text, fill=(0, 0, 0), font=font)
        except UnicodeError:  # the bitmap fallback font only has Latin-1
            draw.text((2, top), text.encode("latin-1", "replace").decode("latin-1"), fill=(0, 0, 0), font=font)
    return np.array(img, dtype=np.uint8)


def save_contact_sheet(path: str | Path, rows: Sequence[Sequence[Tensor | None]],
                       labels: Sequence[str] | None = None,
                       marked: Iterable[Cell] | Mapping[Cell, Colour] | None = None, **kwargs) -> Path:
    """Write `render_contact_sheet` (same arguments) as a PNG; returns the path."""
    return save_png(path, render_contact_sheet(rows, labels, marked, **kwargs))


# ----------------------------------------------------------------------------- video writing
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
    iio = _imageio_ffmpeg()
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
    av = _av()
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
    Image = _pillow("writing GIF videos")
    ms = max(10, int(round(1000.0 / fps)))
    images = [Image.fromarray(f, mode="RGB") for f in video]
    # Pillow merges identical consecutive frames; the comment lets `read_video` restore them exactly.
    comment = f"{_GIF_TAG} fps={fps!r} frames={len(images)} ms={ms}"
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
    if chosen == "imageio-ffmpeg" and _imageio_ffmpeg() is None:
        raise MissingDependency("writing MP4 with backend 'imageio-ffmpeg' needs it installed: "
                                "run `pip install imageio-ffmpeg`")
    if chosen == "av" and _av() is None:
        raise MissingDependency("writing MP4 with backend 'av' needs PyAV installed: run `pip install av`")
    if chosen == "gif":
        _pillow("writing videos (no imageio-ffmpeg or av for MP4, so as a GIF)")
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
        raise MediaError(f"writing {path} with {chosen} failed: {_last_line(e)}") from e
    return path


# ----------------------------------------------------------------------------- video reading
def _last_line(e: Exception) -> str:
    """ffmpeg's errors carry its whole banner; the last non-empty line is the one that says what went wrong."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


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
        a = _read_rgb(f)
        if frames and a.shape != frames[0].shape:
            raise MediaError(f"frame {f} is {a.shape[1]}x{a.shape[0]} but {files[0].name} is "
                             f"{frames[0].shape[1]}x{frames[0].shape[0]}; all frames of {path} must share one size")
        frames.append(a)
    return frames


def _read_pillow_animation(path: Path, max_frames: int | None) -> tuple[list[np.ndarray], float | None]:
    Image = _pillow(f"reading {path.suffix} animations")
    from PIL import ImageSequence

    frames, durations = [], []
    try:
        with Image.open(path) as img:
            comment = img.info.get("comment", b"")
            for frame in ImageSequence.Iterator(img):
                frames.append(_pil_to_uint8(frame.copy()))
                durations.append(frame.info.get("duration") or 0)
                if comment == b"" and max_frames is not None and len(frames) >= max_frames:
                    break
    except (OSError, SyntaxError, ValueError) as e:
        raise MediaError(f"cannot read {path} as an animation ({e})") from e
    text = comment.decode("utf-8", "replace") if isinstance(comment, bytes) else str(comment)
    tag = re.match(rf"{_GIF_TAG} fps=([0-9.eE+-]+) frames=(\d+) ms=(\d+)", text)
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
    iio = _imageio_ffmpeg()
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
    av = _av()
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
        readers = {"imageio-ffmpeg": (_imageio_ffmpeg, _read_imageio_ffmpeg), "av": (_av, _read_av)}
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
            raise MediaError(f"cannot read {path} as a video with {usable[0]} ({_last_line(e)})") from e
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


# ----------------------------------------------------------------------------- resizing
def _as_batch(img: Tensor) -> tuple[Tensor, bool]:
    if img.ndim not in (3, 4) or img.shape[-3] != 3:
        raise ValueError(f"expected an image [3, H, W] or frames [T, 3, H, W], got shape {list(img.shape)}")
    if not img.is_floating_point():
        raise TypeError(f"resize float images in [-1, 1] (got {img.dtype}); convert uint8 with `from_uint8`")
    return (img[None], True) if img.ndim == 3 else (img, False)


def _resize(x: Tensor, h: int, w: int) -> Tensor:
    """Bilinear, antialiased resize of ``[N, 3, H, W]`` in [-1, 1]; a no-op at the same size.

    The filter's weights are non-negative, so the result stays in range up to rounding, which the
    clamp removes (consumers may rely on [-1, 1] exactly).
    """
    if tuple(x.shape[-2:]) == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp_(-1.0, 1.0)


def resize_cover_crop(img: Tensor, h: int, w: int) -> Tensor:
    """Resize so the image covers ``h x w`` (aspect kept), then crop the centre: ``[..., 3, h, w]``.

    ``img`` is ``[3, H, W]`` or ``[T, 3, H, W]`` float. Used for video frames and reference images.
    """
    x, single = _as_batch(img)  # [N, 3, H, W]
    H, W = x.shape[-2:]
    scale = max(h / H, w / W)
    nh, nw = max(h, round(H * scale)), max(w, round(W * scale))  # never below the target by rounding
    x = _resize(x, nh, nw)
    top, left = int(round((nh - h) / 2.0)), int(round((nw - w) / 2.0))
    x = x[..., top:top + h, left:left + w]  # [N, 3, h, w]
    return x[0] if single else x


def fit_pad_white(img: Tensor, h: int, w: int, fill: float = 1.0) -> Tensor:
    """Resize so the image fits inside ``h x w`` (aspect kept), centre it on white: ``[..., 3, h, w]``.

    ``img`` is ``[3, H, W]`` or ``[T, 3, H, W]`` float in [-1, 1]; ``fill`` 1.0 is white. Used for
    garment flat-lays.
    """
    x, single = _as_batch(img)  # [N, 3, H, W]
    H, W = x.shape[-2:]
    scale = min(h / H, w / W)
    nh, nw = min(h, max(1, round(H * scale))), min(w, max(1, round(W * scale)))
    x = _resize(x, nh, nw)
    top, left = (h - nh) // 2, (w - nw) // 2
    out = x.new_full((x.shape[0], 3, h, w), fill)  # [N, 3, h, w]
    out[..., top:top + nh, left:left + nw] = x
    return out[0] if single else out
