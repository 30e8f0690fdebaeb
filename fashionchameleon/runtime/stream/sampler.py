"""Samplers: the few-step causal chunk sampler (student) and the many-step teacher with CFG.

Student, per chunk (Self-Forcing's loop): start from noise at the first warped timestep; at each
step predict x0 from the cache plus the current noisy chunk; re-noise x0 to the next timestep
with fresh noise; after the last step run the clean x0 once more at t = `context_noise` (0) to
write the chunk's "clean-context" KV, then commit the chunk to the cache.

Teacher: a bidirectional flow-matching Euler ODE over the whole clip with CFG. The paper's teacher
guides on the text alone (its conditions are never dropped). A teacher trained with garment dropout
(`null_garments`: a dropped slot is an all-zero latent frame) can also be guided on its garments:
the unconditional rows then see the null garments (`negative_conditions`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .cache import CacheAttention, KVCache
from ..dit.garment_hint import clip_hint
from ..dit.model import TextKV, WanDiT
from .phase_norm import guard_chunk
from .schedule import FlowMatchSchedule, frame_timesteps

__all__ = ["StepInfo", "denoise_chunk", "condition_pass", "sample_teacher", "null_garments", "GUIDES",
           "check_guide", "unconditional"]

GUIDES = ("text", "garment", "all")  # what CFG's unconditional rows leave out


@dataclass(frozen=True)
class StepInfo:
    """What a progress callback sees after each denoising step."""

    chunk: int  # chunk index in the stream (or 0 for the teacher)
    step: int  # 0-based step within the chunk
    num_steps: int
    x0: torch.Tensor  # current clean prediction `[B, C, F, h, w]`


StepCallback = Callable[[StepInfo], None]


NoiseFn = Callable[[int], torch.Tensor]  # step index -> that step's noise `[B, C, c, h, w]` (0: the start)


def denoise_chunk(model: WanDiT, cache: KVCache, text: TextKV, noise: NoiseFn | Sequence[torch.Tensor],
                  timesteps: torch.Tensor, schedule: FlowMatchSchedule, chunk_index: int = 0,
                  context_noise: float = 0.0, on_step: StepCallback | None = None, phase_norm: bool = False,
                  project: Callable[[torch.Tensor], torch.Tensor] | None = None, exit_step: int | None = None,
                  grad: bool = False, hint: torch.Tensor | None = None) -> torch.Tensor:
    """Generate one chunk against the cache and commit it: the one chunk loop of streaming and of GR-DMD.

    `noise(i)` gives step i's noise (step 0: the starting noise; step i > 0: the re-noising before it),
    drawn in step order; a sequence works too (one `[B, C, c, h, w]` per step, the last also noising
    the clean pass when `context_noise` > 0). The steps run up to `exit_step` (default: all of
    `timesteps`); with `grad`, the exit step's pass carries gradient (a training rollout), every
    other pass and the clean KV pass run without.

    The cache is written in place; run it inside `cache.transaction()` so an exception from
    `on_step` (a cancel) rolls it back. Returns the clean chunk latents `[B, C, c, h, w]` (float32),
    patch-phase normalised first if `phase_norm` and the cache's window has slid (`guard_chunk`; the
    KV pass then writes the normalised chunk), and then mapped by `project` (e.g. the codec round trip
    of `reproject.py`) under the same condition. `hint` `[B, C*slots, 1, h, w]`: the current garments
    for a model with a garment hint (`garment_hint.slot_hint`), given to every pass of the chunk.
    """
    draw = noise if callable(noise) else lambda i: noise[i]
    last = len(timesteps) - 1 if exit_step is None else exit_step
    x = draw(0).to(model.device, torch.float32)
    b, _, c = x.shape[:3]
    plan = cache.plan_chunk(c)
    writer = CacheAttention(cache, plan)  # writes each pass's K/V into the plan's frames
    x0 = x
    for i in range(last + 1):
        t = float(timesteps[i])
        differentiable = grad and i == last
        with torch.set_grad_enabled(differentiable):
            attention = CacheAttention(cache, plan, differentiable=True) if differentiable else writer
            v = model(x, frame_timesteps(t, c, batch=b, device=model.device), text, plan.positions, attention,
                      hint=hint).float()
            x0 = schedule.x0_from_velocity(x, v, t)
        if on_step is not None:
            on_step(StepInfo(chunk_index, i, last + 1, x0))
        if i < last:
            x = schedule.add_noise(x0.detach(), draw(i + 1).to(model.device, torch.float32), float(timesteps[i + 1]))
    if phase_norm:  # (inside the gradient of a rollout)
        x0 = guard_chunk(x0, cache, model.cfg.patch_size[1:])
    if project is not None and cache.sliding():
        x0 = project(x0)
    with torch.no_grad():
        clean = x0.detach()
        if context_noise:
            clean = schedule.add_noise(clean, draw(last).to(model.device, torch.float32), context_noise)
        model.write_kv(clean, frame_timesteps(context_noise, c, batch=b, device=model.device), text, plan.positions,
                       writer, hint=hint)
    cache.commit(plan)
    return x0


def condition_pass(model: WanDiT, cache: KVCache, text: TextKV, latents: dict[tuple[str, int], torch.Tensor]) -> None:
    """Run condition frames (`[B, C, 1, h, w]` each, keyed by (segment, index)) at t = 0 into the cache."""
    items = list(latents)
    x = torch.cat([latents[i] for i in items], dim=2)  # [B, C, n, h, w]
    plan = cache.plan_conditions(items)
    model.write_kv(x, frame_timesteps(0.0, x.shape[2], batch=x.shape[0], device=model.device), text, plan.positions,
                   CacheAttention(cache, plan))
    cache.commit(plan)


def null_garments(conditions: torch.Tensor, first_garment: int, drop: torch.Tensor | None = None) -> torch.Tensor:
    """Conditions `[B, C, n, h, w]` with the garment frames (index `first_garment` on) set to the null
    garment, an all-zero latent frame; `drop` `[B]` bool picks the rows (None: every row). A copy."""
    out = conditions.clone()
    rows = slice(None) if drop is None else drop.to(out.device)
    out[rows, :, first_garment:] = 0.0
    return out


def check_guide(guide: str) -> None:
    """Raise ValueError unless `guide` is one of `GUIDES`."""
    if guide not in GUIDES:
        raise ValueError(f"guide must be one of {GUIDES}, got {guide!r}")


def unconditional(guide: str, conditions: torch.Tensor, first_garment: int, text, negative):
    """The unconditional rows' (prompt features, conditions) for a `guide` (`GUIDES`): "text" drops the
    prompt (the paper's teacher), "garment" the garments (a teacher trained with garment dropout), "all"
    both. `text` / `negative` are the prompt's and the empty prompt's features (or `TextKV`s)."""
    check_guide(guide)
    conds = conditions if guide == "text" else null_garments(conditions, first_garment)
    return (text if guide == "garment" else negative), conds


@torch.no_grad()
def sample_teacher(model: WanDiT, conditions: torch.Tensor, text: torch.Tensor, negative: torch.Tensor,
                   noise: torch.Tensor, schedule: FlowMatchSchedule, num_steps: int = 30, cfg: float = 3.0,
                   on_step: StepCallback | None = None,
                   negative_conditions: torch.Tensor | None = None, first_garment: int | None = None) -> torch.Tensor:
    """Bidirectional many-step sampling with CFG.

    conditions `[B, C, n, h, w]` (clean, t = 0), text/negative prompt features `[B, Lt, text_dim]`,
    noise `[B, C, F, h, w]`; the unconditional rows see `negative` and `negative_conditions` (default:
    the same conditions, i.e. text CFG). A model with a garment hint (`garment_hint.py`) needs
    `first_garment`, where the conditions' garment slots start. Returns clean video latents `[B, C, F, h, w]`.
    """
    b, _, n = conditions.shape[:3]
    f = noise.shape[2]
    positions = list(range(n + f))
    ts = schedule.sample_timesteps(num_steps)
    both = model.text_kv(torch.cat([text, negative]).to(model.device))  # cond rows first, then uncond
    uncond = conditions if negative_conditions is None else negative_conditions
    cond2 = torch.cat([conditions, uncond]).to(model.device, torch.float32)
    x = noise.to(model.device, torch.float32)
    if first_garment is None and model.cfg.garment_hint:
        raise ValueError("this model takes a garment hint: pass first_garment (where the garment slots start)")
    hint = clip_hint(model.cfg.garment_hint, cond2, first_garment or 0, f)
    for i in range(num_steps):
        t = float(ts[i])
        t_frames = frame_timesteps(t, f, n, batch=2 * b, device=model.device)  # [2B, n + F]
        v = model(torch.cat([cond2, torch.cat([x, x])], dim=2), t_frames, both, positions, hint=hint).float()[:, :, n:]
        v_cond, v_uncond = v[:b], v[b:]
        v = v_uncond + cfg * (v_cond - v_uncond)
        if on_step is not None:
            on_step(StepInfo(0, i, num_steps, schedule.x0_from_velocity(x, v, t)))
        x = schedule.euler_step(x, v, t, ts[i + 1])
    return x
