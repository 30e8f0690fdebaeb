"""Stage `teacher`: in-context SFT of the bidirectional DiT (and the tiny prompt encoder).

Per step: clean condition latents (reference view(s), garment slot(s)) at t = 0 before the
noisy video latents at one sampled t; flow-matching loss on the video frames only, weighted per
timestep (`timestep_weight`: bell or uniform) and per latent cell by the person's cover
(`foreground_weight`) and by named regions' covers (`region_weights`: a garment slot, the head);
the prompt is dropped to "" with probability `text_dropout` so the teacher supports text CFG.
The paper never drops conditions (docs/method.md §2.1); with `garment_dropout` a clip's garment slots
are replaced by the null garment with that probability, so the teacher can also be guided on its
garments (`sample_teacher`'s `negative_conditions`). With `restore_prob` a clip whose sigma lies in
`restore_sigmas` is noised from its flattened copy (`LatentBatch.flat_video`, the garments' or the
head's texture averaged away) and its target is still the true clip: the velocity that leads back to
it, (x_t - x0) / sigma, so the model learns to restore that detail from its conditions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .batch import LatentBatch
from ...runtime.dit.garment_hint import clip_hint
from ...runtime.stream.sampler import null_garments
from ...runtime.stream.schedule import frame_timesteps
from .dit_stage import DiTStage, cell_weights, drop_prompts, sample_timesteps, weighted_mean

__all__ = ["TeacherStage"]


class TeacherStage(DiTStage):
    name = "teacher"
    export_stage = "teacher"

    def loss(self, batch: LatentBatch, generator: torch.Generator) -> torch.Tensor:
        conds = batch.conditions
        b, _, n = conds.shape[:3]
        if self.cfg.garment_dropout > 0:
            drop = torch.rand(b, generator=generator) < self.cfg.garment_dropout  # [B]
            conds = null_garments(conds, batch.references.shape[2], drop)
        f = batch.video.shape[2]
        t = sample_timesteps(self.schedule, (b,), generator).to(self.device)  # one t per clip
        noise = torch.randn(batch.video.shape, generator=generator).to(self.device)
        context = self.text.encode(drop_prompts(batch.prompts, self.cfg.text_dropout, generator))
        restore = self._restored(batch, t, generator)  # [B, 1, 1, 1, 1] bool
        clean = batch.video if restore is None else torch.where(restore, batch.flat_video, batch.video)
        x_t = self.schedule.add_noise(clean, noise, t[:, None, None, None, None])
        t_frames = frame_timesteps(t, f, n)  # [B, n + F]
        hint = clip_hint(self.model_cfg.garment_hint, conds, batch.references.shape[2], f)
        v = self.model(torch.cat([conds, x_t], dim=2), t_frames, context, list(range(n + f)),
                       hint=hint)[:, :, n:].float()
        target = self.schedule.velocity_target(batch.video, noise)
        if restore is not None:  # the velocity that leads from the flattened input back to the true clip
            target = torch.where(restore, self.schedule.velocity_from_x0(x_t, batch.video, t[:, None, None, None, None]),
                                 target)
        err = F.mse_loss(v, target, reduction="none")
        weights = cell_weights(batch, self.cfg.foreground_weight, self.cfg.region_weights)
        per_clip = weighted_mean(err, weights, (1, 2, 3, 4))
        return (per_clip * self.cfg.loss_weight(t)).mean()

    def _restored(self, batch: LatentBatch, t: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        """Which clips are noised from their flattened copy `[B, 1, 1, 1, 1]` (bool), or None with
        `restore_prob` 0: drawn with `restore_prob` among those whose sigma lies in `restore_sigmas`."""
        if self.cfg.restore_prob <= 0:
            return None
        if batch.flat_video is None:
            raise ValueError("restore_prob > 0 needs flattened clips: set data.flatten_regions "
                             "(e.g. [\"upper\", \"lower\", \"full\"]) in the config")
        sigma = self.schedule.sigma(t.float().cpu())
        lo, hi = self.cfg.restore_sigmas
        use = (torch.rand(t.shape[0], generator=generator) < self.cfg.restore_prob) & (sigma >= lo) & (sigma <= hi)
        return use.to(batch.video.device)[:, None, None, None, None]
