"""Samplers: the few-step causal chunk sampler (student) and the many-step teacher with CFG.

Student, per chunk (Self-Forcing's loop): start from noise at the first warped timestep; at each
step predict x0 from the cache plus the current noisy chunk; re-noise x0 to the next timestep
with fresh noise; after the last step run the clean x0 once more at t = `context_noise` (0) to
write the chunk's "clean-context" KV, then commit the chunk to the cache.

Teacher: a bidirectional flow-matching Euler ODE over the whole clip with text-only CFG
(conditions are never dropped, as in the paper).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .cache import CacheAttention, KVCache
from ..dit.model import TextKV, WanDiT
from .phase_norm import guard_chunk
from .schedule import FlowMatchSchedule

__all__ = ["StepInfo", "denoise_chunk", "condition_pass", "sample_teacher"]


@dataclass(frozen=True)
class StepInfo:
    """What a progress callback sees after each denoising step."""

    chunk: int  # chunk index in the stream (or 0 for the teacher)
    step: int  # 0-based step within the chunk
    num_steps: int
    x0: torch.Tensor  # current clean prediction `[B, C, F, h, w]`


StepCallback = Callable[[StepInfo], None]


def _timesteps(t: float, batch: int, frames: int, device: torch.device) -> torch.Tensor:
    return torch.full((batch, frames), float(t), device=device)


def denoise_chunk(model: WanDiT, cache: KVCache, text: TextKV, noises: Sequence[torch.Tensor], timesteps: torch.Tensor,
                  schedule: FlowMatchSchedule, chunk_index: int = 0, context_noise: float = 0.0,
                  on_step: StepCallback | None = None, phase_norm: bool = False,
                  project: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Generate one chunk against the cache and commit it. noises: one `[B, C, c, h, w]` per step.

    The cache is written in place; run it inside `cache.transaction()` so an exception from
    `on_step` (a cancel) rolls it back. Returns the clean chunk latents `[B, C, c, h, w]` (float32),
    patch-phase normalised first if `phase_norm` and the cache's window has slid (`guard_chunk`; the
    KV pass then writes the normalised chunk), and then mapped by `project` (e.g. the codec round trip
    of `reproject.py`) under the same condition.
    """
    b, _, c = noises[0].shape[:3]
    plan = cache.plan_chunk(c)
    attention = CacheAttention(cache, plan)
    x = noises[0].to(model.device, torch.float32)
    x0 = x
    n = len(timesteps)
    for i in range(n):
        t = float(timesteps[i])
        v = model(x, _timesteps(t, b, c, model.device), text, plan.positions, attention).float()
        x0 = schedule.x0_from_velocity(x, v, t)
        if on_step is not None:
            on_step(StepInfo(chunk_index, i, n, x0))
        if i + 1 < n:
            x = schedule.add_noise(x0, noises[i + 1].to(model.device, torch.float32), float(timesteps[i + 1]))
    if phase_norm:
        x0 = guard_chunk(x0, cache, model.cfg.patch_size[1:])
    if project is not None and cache.sliding():
        x0 = project(x0)
    clean = schedule.add_noise(x0, noises[-1].to(model.device, torch.float32), context_noise) if context_noise else x0
    model.write_kv(clean, _timesteps(context_noise, b, c, model.device), text, plan.positions, attention)
    cache.commit(plan)
    return x0


def condition_pass(model: WanDiT, cache: KVCache, text: TextKV, latents: dict[tuple[str, int], torch.Tensor]) -> None:
    """Run condition frames (`[B, C, 1, h, w]` each, keyed by (segment, index)) at t = 0 into the cache."""
    items = list(latents)
    x = torch.cat([latents[i] for i in items], dim=2)  # [B, C, n, h, w]
    plan = cache.plan_conditions(items)
    model.write_kv(x, _timesteps(0.0, x.shape[0], x.shape[2], model.device), text, plan.positions,
                   CacheAttention(cache, plan))
    cache.commit(plan)


@torch.no_grad()
def sample_teacher(model: WanDiT, conditions: torch.Tensor, text: torch.Tensor, negative: torch.Tensor,
                   noise: torch.Tensor, schedule: FlowMatchSchedule, num_steps: int = 30, cfg: float = 3.0,
                   on_step: StepCallback | None = None) -> torch.Tensor:
    """Bidirectional many-step sampling with text CFG.

    conditions `[B, C, n, h, w]` (clean, t = 0), text/negative prompt features `[B, Lt, text_dim]`,
    noise `[B, C, F, h, w]`. Returns clean video latents `[B, C, F, h, w]`.
    """
    b, _, n = conditions.shape[:3]
    f = noise.shape[2]
    positions = list(range(n + f))
    ts = schedule.sample_timesteps(num_steps)
    both = model.text_kv(torch.cat([text, negative]).to(model.device))  # cond rows first, then uncond
    cond2 = torch.cat([conditions, conditions]).to(model.device, torch.float32)
    x = noise.to(model.device, torch.float32)
    for i in range(num_steps):
        t = float(ts[i])
        t_frames = torch.cat([torch.zeros(2 * b, n), torch.full((2 * b, f), t)], dim=1).to(model.device)
        v = model(torch.cat([cond2, torch.cat([x, x])], dim=2), t_frames, both, positions).float()[:, :, n:]
        v_cond, v_uncond = v[:b], v[b:]
        v = v_uncond + cfg * (v_cond - v_uncond)
        if on_step is not None:
            on_step(StepInfo(0, i, num_steps, schedule.x0_from_velocity(x, v, t)))
        x = x + (float(ts[i + 1]) - t) / schedule.num_train_timesteps * v  # Euler step in sigma
    return x
