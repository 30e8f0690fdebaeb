"""ComfyUI IMAGE <-> engine tensors, in one place (pure torch; no ComfyUI import).

    ComfyUI IMAGE   [B, H, W, C] float 0..1, channels last, C = 3 (sometimes 4 = RGBA, or 1)
    engine image    [B, 3, H, W] float32 in [-1, 1], channels first
    engine video    [1, 3, T, H, W] in [-1, 1]  ->  IMAGE [T, H, W, 3] (the batch axis is time)

Inputs are never written to: every function returns new tensors.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..fashionchameleon import fit_pad_white, to_uint8
from .checks import check_image

__all__ = ["image_to_engine", "engine_to_image", "video_to_image", "fit_garment", "single_image",
           "preview_image"]

WHITE = 1.0  # background that transparent pixels are composited onto (flat-lays are shot on white)


def image_to_engine(image: Tensor, name: str = "image", max_side: int | None = None) -> Tensor:
    """IMAGE `[B, H, W, C]` (or one `[H, W, C]`) in 0..1 -> `[B, 3, H, W]` float32 in [-1, 1].

    Checked first (`checks.check_image`: the errors name `name`); RGBA is composited over white,
    one channel is repeated to RGB, a small overshoot outside 0..1 is clamped.
    """
    x = check_image(image, name, max_side).clamp(0.0, 1.0)  # a new tensor: the input is never touched
    if x.shape[-1] == 4:
        rgb, alpha = x[..., :3], x[..., 3:]
        x = rgb * alpha + WHITE * (1.0 - alpha)  # [B, H, W, 3]
    elif x.shape[-1] == 1:
        x = x.expand(*x.shape[:-1], 3)
    return (x.movedim(-1, 1) * 2.0 - 1.0).contiguous()  # [B, 3, H, W] in [-1, 1]


def engine_to_image(images: Tensor, device: torch.device | str | None = None) -> Tensor:
    """`[B, 3, H, W]` in [-1, 1] -> IMAGE `[B, H, W, 3]` float32 0..1 (on `device`, default: where it is)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected engine images [B, 3, H, W], got shape {list(images.shape)}")
    out = ((images.detach().float().clamp(-1.0, 1.0) + 1.0) * 0.5).movedim(1, -1)  # [B, H, W, 3]
    return out.to(device).contiguous() if device is not None else out.contiguous()


def video_to_image(video: Tensor, device: torch.device | str | None = None) -> Tensor:
    """Engine video `[1, 3, T, H, W]` or `[3, T, H, W]` -> IMAGE frames `[T, H, W, 3]` 0..1."""
    v = video[0] if video.ndim == 5 else video
    if v.ndim != 4 or v.shape[0] != 3:
        raise ValueError(f"expected an engine video [1, 3, T, H, W], got shape {list(video.shape)}")
    return engine_to_image(v.movedim(1, 0), device)  # [T, 3, H, W] -> [T, H, W, 3]


def single_image(images: Tensor, name: str) -> Tensor:
    """`[1, 3, H, W]` -> `[3, H, W]`; a batch of several is an error (say what to do instead)."""
    if images.shape[0] != 1:
        raise ValueError(f"{name}: must be one image, got a batch of {images.shape[0]}; pick one (e.g. with "
                         f"core's ImageFromBatch node), or use the garment schedule of 'FashionChameleon stream "
                         f"generate' to switch through several garments")
    return images[0]


def fit_garment(garment: Tensor, size: tuple[int, int]) -> Tensor:
    """A flat-lay `[3, H, W]` or `[N, 3, H, W]` -> fitted inside `size` and padded with white (no-op at size)."""
    if tuple(garment.shape[-2:]) == tuple(size):
        return garment
    return fit_pad_white(garment, int(size[0]), int(size[1]))


def preview_image(frame: Tensor):
    """One engine frame `[3, H, W]` in [-1, 1] -> a PIL image (Pillow ships with ComfyUI)."""
    from PIL import Image

    return Image.fromarray(to_uint8(frame))
