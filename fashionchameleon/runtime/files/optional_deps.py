"""The optional libraries of media I/O: imported lazily, inside the functions that need them, never at import.

=============================================  ===================================================
function                                       needs
=============================================  ===================================================
`images.load_image`, `images.save_png`         Pillow (``pip install pillow``; ComfyUI ships it)
`video_write.save_video`                       MP4: imageio-ffmpeg (``pip install imageio-ffmpeg``,
                                               which brings its own ffmpeg binary) or else PyAV
                                               (``pip install av``; recent ComfyUI ships it);
                                               without both it writes an animated GIF with Pillow
`video_read.read_video`                        an image directory, GIF or animated WebP: Pillow;
                                               any other video file: imageio-ffmpeg or else PyAV
`resize.resize_cover_crop`,                    torch only
`resize.fit_pad_white`
=============================================  ===================================================

A missing library raises `MissingDependency` (an ``ImportError``) that says what to install. The
video modules call `find_imageio_ffmpeg` / `find_av` through this module, so one stand-in here
(a test's monkeypatch) hides a library from every writer and reader at once.
"""
from __future__ import annotations

__all__ = ["MissingDependency", "require_pillow", "find_imageio_ffmpeg", "find_av", "video_backends", "last_line"]


class MissingDependency(ImportError):
    """An optional library is not installed; the message says which one and how to install it."""


def require_pillow(task: str):
    """PIL.Image, or `MissingDependency` naming `task` and how to install Pillow."""
    try:
        from PIL import Image
    except ImportError as e:
        raise MissingDependency(f"{task} needs Pillow, which is not installed: run `pip install pillow` in the "
                                "Python environment that runs this code (ComfyUI already ships it)") from e
    return Image


def find_imageio_ffmpeg():
    """The imageio_ffmpeg module, or None where it is not installed."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg


def find_av():
    """The av (PyAV) module, or None where it is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


def video_backends() -> tuple[str, ...]:
    """The video writers usable here, best first: a subset of ("imageio-ffmpeg", "av", "gif")."""
    out = []
    if find_imageio_ffmpeg() is not None:
        out.append("imageio-ffmpeg")
    if find_av() is not None:
        out.append("av")
    try:
        require_pillow("")
        out.append("gif")
    except MissingDependency:
        pass
    return tuple(out)


def last_line(e: Exception) -> str:
    """ffmpeg's errors carry its whole banner; the last non-empty line is the one that says what went wrong."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__
