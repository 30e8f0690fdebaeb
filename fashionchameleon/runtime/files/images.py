"""Images: tensors <-> ``uint8`` arrays, and image files read and written with Pillow.

Tensor convention (the engine's): an image is ``[3, H, W]`` float in [-1, 1], a video ``[T, 3, H, W]``
float in [-1, 1], RGB. Arrays handed to or received from files are ``uint8`` ``[H, W, 3]``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .optional_deps import require_pillow

__all__ = ["MediaError", "IMAGE_SUFFIXES", "to_uint8", "from_uint8", "pil_to_uint8", "read_rgb", "load_image",
           "save_png"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class MediaError(ValueError):
    """A file or directory could not be read or written as an image or a video."""


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


def pil_to_uint8(img) -> np.ndarray:
    """A Pillow image -> ``uint8`` RGB ``[H, W, 3]``: EXIF rotation applied, alpha composited on white."""
    Image = require_pillow("reading images")
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


def read_rgb(path: Path) -> np.ndarray:
    """An image file -> ``uint8`` RGB ``[H, W, 3]`` (`pil_to_uint8`); unreadable files raise `MediaError`."""
    Image = require_pillow("reading images")
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            return pil_to_uint8(img)
    except (OSError, SyntaxError, ValueError) as e:
        raise MediaError(f"cannot read {path} as an image ({e}); is it a PNG/JPEG/WebP file?") from e


def load_image(path: str | Path) -> Tensor:
    """An image file -> ``[3, H, W]`` float in [-1, 1], RGB.

    Transparency is composited on white (flat-lays with alpha look as on a white sheet); grayscale,
    palette and 16-bit images are expanded to RGB; the EXIF orientation of photos is applied.
    """
    return from_uint8(read_rgb(Path(path).expanduser()))


def save_png(path: str | Path, image: Tensor | np.ndarray) -> Path:
    """Write one image as PNG; see `to_uint8` for the accepted layouts. Creates parent folders."""
    Image = require_pillow("writing PNG images")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image), mode="RGB").save(path, format="PNG")
    return path
