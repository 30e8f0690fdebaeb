"""Flow-matching noise schedule with shift, as Wan / Self-Forcing use it.

Convention: `sigma` in [0, 1], timestep `t = 1000 * sigma`;
`x_t = (1 - sigma) * x0 + sigma * noise`, velocity `v = noise - x0`, so `x0 = x_t - sigma * v`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["FlowMatchSchedule", "shift_sigma", "frame_timesteps"]


def shift_sigma(sigma: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    """Shifted sigma: shift*s / (1 + (shift - 1)*s)."""
    return shift * sigma / (1 + (shift - 1) * sigma)


def frame_timesteps(t: torch.Tensor | float, frames: int, conditions: int = 0, batch: int | None = None,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The DiT's per-frame timesteps `[B, conditions + frames]`: 0 for the clean condition frames first,
    then `t` for each of the `frames` video frames.

    `t` is a float (then `batch` is required), one timestep per clip `[B]`, or one per video frame
    `[B, frames]`.
    """
    if isinstance(t, torch.Tensor):
        t = t.to(device if device is not None else t.device, torch.float32)
        video = t[:, None].expand(-1, frames) if t.dim() == 1 else t  # [B, frames]
    else:
        if batch is None:
            raise ValueError("frame_timesteps: a float timestep needs the batch size")
        video = torch.full((batch, frames), float(t), device=device)
    if not conditions:
        return video
    return torch.cat([torch.zeros(video.shape[0], conditions, device=video.device), video], dim=1)


@dataclass(frozen=True)
class FlowMatchSchedule:
    """The 1000-entry shifted training table and the few-step / many-step lists drawn from it."""

    shift: float = 5.0
    num_train_timesteps: int = 1000
    sigma_min: float = 0.0

    def training_sigmas(self) -> torch.Tensor:
        """`[1000]` shifted sigmas, from 1 down (the last unshifted entry is 1/1000 above sigma_min)."""
        n = self.num_train_timesteps
        s = torch.linspace(1.0, self.sigma_min, n + 1, dtype=torch.float64)[:-1]  # "extra one step"
        return shift_sigma(s, self.shift)

    def training_timesteps(self) -> torch.Tensor:
        return self.training_sigmas() * self.num_train_timesteps

    def warp(self, steps: tuple[int, ...] | list[int]) -> torch.Tensor:
        """Map a few-step list such as [1000, 750, 500, 250] onto the shifted table (Self-Forcing's warp).

        With shift 5 this gives t = 1000, 937.5, 833.3, 625.
        """
        table = torch.cat([self.training_timesteps(), torch.zeros(1, dtype=torch.float64)])
        idx = torch.tensor([self.num_train_timesteps - int(s) for s in steps])
        return table[idx]

    def sample_timesteps(self, num_steps: int) -> torch.Tensor:
        """`num_steps + 1` timesteps from 1000 to 0 for a many-step ODE sampler (shifted spacing)."""
        s = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
        return shift_sigma(s, self.shift) * self.num_train_timesteps

    def sigma(self, t: torch.Tensor | float) -> torch.Tensor | float:
        return t / self.num_train_timesteps

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Forward diffusion to timestep t (a float or a tensor broadcastable against x0)."""
        s = self._as(t, x0)
        return (1 - s) * x0 + s * noise

    def x0_from_velocity(self, x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return x_t - self._as(t, x_t) * v

    def velocity_from_x0(self, x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        s = self._as(t, x_t)
        return (x_t - x0) / s.clamp_min(1e-6) if isinstance(s, torch.Tensor) else (x_t - x0) / max(s, 1e-6)

    def velocity_target(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise - x0

    def euler_step(self, x_t: torch.Tensor, v: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
        """One Euler step of the flow ODE in sigma, from timestep `t` to `t_next` (many-step samplers)."""
        return x_t + (float(t_next) - float(t)) / self.num_train_timesteps * v

    def _as(self, t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor | float:
        if isinstance(t, torch.Tensor):
            return (t.to(like.device, torch.float32) / self.num_train_timesteps).to(like.dtype)
        return float(t) / self.num_train_timesteps


def training_weight(t: torch.Tensor, num_train_timesteps: int = 1000) -> torch.Tensor:
    """Gaussian-shaped loss weight over timesteps ("bsmntw" in DiffSynth / Self-Forcing), mean ~1.

    w(t) = exp(-2 ((t - T/2) / T)^2), shifted so its minimum over [0, T] is 0 and normalised so
    its mean over a uniform grid is 1: mid-range timesteps count most, the extremes least.
    """
    grid = torch.linspace(0, num_train_timesteps, num_train_timesteps + 1, dtype=torch.float64)
    bell = lambda x: torch.exp(-2 * ((x - num_train_timesteps / 2) / num_train_timesteps) ** 2)  # noqa: E731
    base = bell(grid)
    lo, mean = base.min(), (base - base.min()).mean()
    return ((bell(t.to(torch.float64)) - lo) / mean).to(t.dtype if t.is_floating_point() else torch.float32)
