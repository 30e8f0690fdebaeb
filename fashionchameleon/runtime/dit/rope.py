"""3-D rotary position embedding in Wan's layout, with real arithmetic.

Wan splits each head's channel pairs into a temporal, a height and a width group
(c - 2*(c//3), c//3, c//3 pairs, c = head_dim/2) and rotates adjacent channel pairs
(2i, 2i+1) by position * frequency. We compute the same rotation with cos/sin tables instead of
complex numbers, which works in every dtype and on every device.

Because a rotation by p then by d equals a rotation by p + d, keys that were stored after RoPE
can be moved to another temporal position in place (`shift_temporal`): that is how the KV cache
keeps positions bounded in "rolling" mode and restarts positions after a garment switch.
"""
from __future__ import annotations

import functools

import torch

__all__ = ["axis_pairs", "inv_freqs", "rope_cos_sin", "apply_rope", "shift_temporal"]


def axis_pairs(head_dim: int) -> tuple[int, int, int]:
    """Number of rotated channel pairs for (time, height, width)."""
    c = head_dim // 2
    return c - 2 * (c // 3), c // 3, c // 3


@functools.lru_cache(maxsize=32)
def inv_freqs(head_dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-axis inverse frequencies (float64, CPU) as Wan's `rope_params` computes them."""
    out = []
    for pairs in axis_pairs(head_dim):
        dim = 2 * pairs  # the real width of this axis' channel group
        out.append(1.0 / torch.pow(theta, torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    return tuple(out)  # type: ignore[return-value]


@functools.lru_cache(maxsize=256)
def _cos_sin_cached(positions: tuple[int, ...], h: int, w: int, head_dim: int, theta: float,
                    device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    ft, fh, fw = inv_freqs(head_dim, theta)
    t = torch.tensor(positions, dtype=torch.float64)
    ang_t = torch.outer(t, ft)  # [F, pt]
    ang_h = torch.outer(torch.arange(h, dtype=torch.float64), fh)  # [h, ph]
    ang_w = torch.outer(torch.arange(w, dtype=torch.float64), fw)  # [w, pw]
    n_f = len(positions)
    ang = torch.cat([
        ang_t[:, None, None, :].expand(n_f, h, w, -1),
        ang_h[None, :, None, :].expand(n_f, h, w, -1),
        ang_w[None, None, :, :].expand(n_f, h, w, -1),
    ], dim=-1).reshape(n_f * h * w, -1)  # [F*h*w, head_dim/2], frame-major like the tokens
    return ang.cos().to(device=device, dtype=dtype), ang.sin().to(device=device, dtype=dtype)


def rope_cos_sin(positions: torch.Tensor | list[int] | tuple[int, ...], grid: tuple[int, int], head_dim: int,
                 theta: float = 10000.0, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables `[F*h*w, head_dim/2]` for frames at temporal `positions` on an h x w grid.

    Tables are memoised: a stream asks for the same few position sets over and over.
    """
    if isinstance(positions, torch.Tensor):
        positions = positions.tolist()
    return _cos_sin_cached(tuple(int(p) for p in positions), int(grid[0]), int(grid[1]), head_dim, float(theta),
                           str(device), dtype)


def _as_pairs(x: torch.Tensor) -> torch.Tensor:
    """`x` `[..., Dh]` as complex `[..., Dh/2]` (channel 2i real, 2i+1 imaginary), a view when strides allow."""
    if x.stride(-1) != 1 or x.storage_offset() % 2 or any(st % 2 for st in x.stride()[:-1]):
        x = x.clone(memory_format=torch.contiguous_format)  # (contiguous() keeps an odd storage offset)
    return torch.view_as_complex(x.unflatten(-1, (-1, 2)))


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of `x` `[B, H, L, Dh]` by the angles behind `cos/sin` `[L, Dh/2]`.

    One complex multiplication per pair (the pair as a complex number times cos + i sin): the same
    arithmetic as rotating by hand, in one kernel instead of six element-wise ops and a stack.
    """
    work = torch.promote_types(x.dtype, torch.float32)  # at least fp32, fp64 stays fp64
    turn = torch.complex(cos.to(work), sin.to(work))  # [L, Dh/2]
    return torch.view_as_real(_as_pairs(x.to(work)) * turn).flatten(-2).to(x.dtype)  # [B, H, L, Dh]


def shift_temporal(keys: torch.Tensor, delta: int, head_dim: int, theta: float = 10000.0) -> None:
    """Move post-RoPE `keys` `[..., Dh]` by `delta` temporal positions, in place.

    Only the temporal channel pairs rotate; height/width pairs keep their angles.
    """
    if delta == 0 or keys.numel() == 0:
        return
    ft, _, _ = inv_freqs(head_dim, theta)
    pt = ft.numel()
    ang = ft * float(delta)  # [pt], float64
    work = torch.promote_types(keys.dtype, torch.float32)
    turn = torch.complex(ang.cos(), ang.sin()).to(device=keys.device, dtype=work.to_complex())  # [pt]
    temporal = keys[..., : 2 * pt]  # a view: the temporal channel group
    temporal.copy_(torch.view_as_real(_as_pairs(temporal.to(work)) * turn).flatten(-2).to(keys.dtype))
