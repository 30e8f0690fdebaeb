"""Try-off and try-on by partial diffusion on a joint canvas (OMFA-style), with one DiT.

The canvas is a short sequence of clean image latents at t = 0 plus one noised latent; only
the noised one is generated and carries the loss, exactly like FashionChameleon's clean
in-context conditions. Temporal RoPE positions say what each frame is:

    person wearing the garment -> 0 | garment of slot s -> 1 + index(s) | identity reference -> 4

- try-off: `[person (clean), garment (noised)]` -> the flat garment of the asked slot;
- try-on:  `[reference (clean), garment (clean), person (noised)]` -> the person wearing it.
No prompt is used (an all-zero context, the encoding of "").
"""
from __future__ import annotations

from typing import Callable

import torch

from .encoders.codec import LatentCodec
from .rules import SLOTS, check_slot_names
from .dit.model import WanDiT
from .stream.schedule import FlowMatchSchedule, frame_timesteps

__all__ = ["SLOTS", "PERSON_POS", "REFERENCE_POS", "garment_position", "canvas_positions", "generate_frame",
           "try_off"]

PERSON_POS, REFERENCE_POS = 0, 4


def garment_position(slot: str) -> int:
    check_slot_names([slot])
    return 1 + SLOTS.index(slot)


def canvas_positions(direction: str, slot: str) -> list[int]:
    """Positions of the canvas frames, the generated frame last."""
    if direction == "tryoff":
        return [PERSON_POS, garment_position(slot)]
    if direction == "tryon":
        return [REFERENCE_POS, garment_position(slot), PERSON_POS]
    raise ValueError(f"direction must be 'tryoff' or 'tryon', got {direction!r}")


def empty_context(model: WanDiT, batch: int) -> torch.Tensor:
    return torch.zeros(batch, model.cfg.text_len, model.cfg.text_dim, device=model.device)


@torch.no_grad()
def generate_frame(model: WanDiT, clean: torch.Tensor, positions: list[int], noise: torch.Tensor,
                   schedule: FlowMatchSchedule, num_steps: int = 30,
                   on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Euler-sample the last canvas frame. clean `[B, C, k, h, w]`, noise `[B, C, 1, h, w]` -> `[B, C, 1, h, w]`."""
    b, _, k = clean.shape[:3]
    ts = schedule.sample_timesteps(num_steps)
    context = empty_context(model, b)
    x = noise.to(model.device, torch.float32)
    clean = clean.to(model.device, torch.float32)
    for i in range(num_steps):
        t = float(ts[i])
        t_frames = frame_timesteps(t, 1, k, batch=b, device=model.device)  # [B, k + 1]
        v = model(torch.cat([clean, x], dim=2), t_frames, context, positions)[:, :, k:].float()
        if on_step is not None:
            on_step(i, schedule.x0_from_velocity(x, v, t))
        x = schedule.euler_step(x, v, t, ts[i + 1])
    return x


def try_off(model: WanDiT, codec: LatentCodec, person: torch.Tensor, slot: str = "full", seed: int = 0,
            num_steps: int = 30, shift: float = 5.0,
            on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """A dressed person image `[B, 3, H, W]` in [-1, 1] -> the flat garment of `slot`, `[B, 3, H, W]`.

    `on_step(step, x0)` runs after every denoising step (progress; raise from it to cancel).
    """
    latent = codec.encode_image(person.to(model.device, torch.float32))  # [B, C, 1, h, w]
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(latent.shape, generator=g)
    out = generate_frame(model, latent, canvas_positions("tryoff", slot), noise, FlowMatchSchedule(shift=shift),
                         num_steps, on_step)
    video, _ = codec.decode(out)
    return video[:, :, -1].clamp(-1, 1)
