"""Stage `forcing`: in-context teacher forcing — the teacher becomes a many-step causal model.

Input per clip (docs/method.md §2.2.1): `[clean: conditions, video | noisy: conditions, noised video]`,
both halves with the same RoPE positions; the clean half at t = 0, the noisy video at one t per
3-frame chunk (diffusion-forcing style). The teacher-forcing mask lets noisy chunk j see the
clean conditions, the clean chunks before j and itself — exactly what streaming shows it at
inference with a clean KV cache (tests/test_streaming_equivalence.py checks this equality).
Loss: flow matching on the noisy video outputs only, weighted per frame.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...runtime.dit.attention import teacher_forcing_mask
from ...runtime.dit.garment_hint import clip_hint
from ...runtime.dit.model import FullSequence
from .batch import LatentBatch
from ...runtime.stream.schedule import frame_timesteps
from .dit_stage import DiTStage, cell_weights, drop_prompts, sample_timesteps, weighted_mean

__all__ = ["ForcingStage"]


class ForcingStage(DiTStage):
    name = "forcing"
    export_stage = "student"
    chunk_frames = 3

    def loss(self, batch: LatentBatch, generator: torch.Generator) -> torch.Tensor:
        conds, video = batch.conditions, batch.video
        b, _, n = conds.shape[:3]
        f = video.shape[2]
        c = self.chunk_frames
        if f % c:
            raise ValueError(f"teacher forcing needs whole chunks: {f} latent frames is not a multiple of {c}")
        t = sample_timesteps(self.schedule, (b, f // c), generator).repeat_interleave(c, dim=1).to(self.device)  # [B, F]
        noise = torch.randn(video.shape, generator=generator).to(self.device)
        noisy = self.schedule.add_noise(video, noise, t[:, None, :, None, None])
        x = torch.cat([conds, video, conds, noisy], dim=2)  # [B, C, 2(n+F), h, w]
        t_frames = frame_timesteps(t, f, 2 * n + f)  # [B, 2(n+F)]: conditions and clean video at 0
        mask = teacher_forcing_mask(n, f, c)
        tokens = self.model.tokens_per_frame(tuple(video.shape[-2:]))
        context = self.text.encode(drop_prompts(batch.prompts, self.cfg.text_dropout, generator))
        hint = clip_hint(self.model_cfg.garment_hint, conds, batch.references.shape[2], f, copies=2)
        out = self.model(x, t_frames, context, list(range(n + f)) * 2, FullSequence(mask, tokens), hint=hint)
        v = out[:, :, 2 * n + f:].float()  # the noisy video half
        err = F.mse_loss(v, self.schedule.velocity_target(video, noise), reduction="none")
        weights = cell_weights(batch, self.cfg.foreground_weight, self.cfg.region_weights)
        per_frame = weighted_mean(err, weights, (1, 3, 4))  # [B, F]
        return (per_frame * self.cfg.loss_weight(t)).mean()  # [B, F] weighted per frame
