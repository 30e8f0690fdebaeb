"""Stage `dmd`: Self-Forcing-style distribution matching with gradient reweighting (GR-DMD).

Per step (docs/method.md §2.2.2):
1. self-rollout of the causal generator with the KV cache: every chunk is denoised with the
   4-step warped list up to a random exit step (the same for all chunks); only the exit step
   carries gradient; each chunk's clean KV is then written at t = 0 without gradient;
2. on generator steps (every `update_ratio`-th): noise the rollout at one t (shifted, clamped to
   [20, 980]); real score = the frozen teacher with text CFG, fake score = the critic;
   grad = fake - real, normalised by mean|x - real| per clip; loss = 0.5 * sum_f A_f *
   mean((x_f - sg(x_f - grad_f))^2) with A = softmax(-R / tau) of per-chunk rewards
   (uniform A = plain DMD);
3. every step: the critic learns flow matching on the detached rollout.

Long rollouts (`score_chunks` < `num_chunks`, as Self-Forcing++ extends Self-Forcing): the rollout
streams `num_chunks` chunks through the same rolling cache the engine streams with (a one-chunk
sink and a window of `score_chunks` chunks in all, oldest chunk evicted, RoPE renumbered); the
chunks before the last `score_chunks` are the context, fully denoised without gradient as at
inference, and the losses see only the last `score_chunks` chunks, a clip of the length the
teacher scores well. The student then learns from contexts it made itself after evictions: the
regime of a long stream. With `random_context` each step draws how many context chunks come
first (0 to `num_chunks - score_chunks`, uniformly), so the scored window is sometimes the start
of a stream (what a stream's first chunks and every withdraw-switch need) and sometimes deep in
it; with a fixed `num_chunks` the first chunks of a stream are never scored. With `phase_norm` the
rollout applies the engine's patch-phase guard (`runtime/stream/phase_norm.py`) where a stream
would, to each chunk made once the window has slid, gradient included, and the exported student
asks for it: training then sees the streams it will make. With `reproject` the rollout applies the
stream's codec re-projection (`runtime/stream/reproject.py`) under the same condition: the chunk
is decoded and encoded again before its clean KV pass, and a scored chunk's value is the
re-projected one while its gradient passes straight through (the round trip has none); the
exported student streams with it.

Streaming long tuning (`carry_chunks`, as LongLive trains for long videos): a step's stream carries on
from the previous step's cache and batch, so its scored chunks sit deeper in a stream every step, up
to `carry_chunks` chunks, after which a new batch starts a new stream (with its random context). The
rollout stays `scored_chunks` chunks a step, yet the student is scored at the depths a 1,000-frame
stream reaches. With `carry_every` = k only every k-th step continues the carried stream; the other
steps roll out new streams as without carrying (and leave the carried one as it is), so a share
(k - 1) / k of the steps keeps scoring the first chunks of streams, which short clips and switches
need. The carried cache was written by earlier steps' weights (as a stream's cache is written by
the chunks before it); it is not part of the resumable state, so a resume starts a new stream.

Adversarial term (`gan` > 0, as DMD2 adds one to DMD; `adversarial.py`): a patch discriminator head on
the critic's tokens after block `gan_layer` learns every step to tell the batch's real clip (a window
of the rollout's length) from the rollout, both noised to one unshifted uniform t, and the generator's
loss on its update steps gains `gan` x softplus(-D(rollout)), its gradient passing through the frozen
critic. Real clips reach the student this way, so it is not bound to what its teacher samples.

Motion term (`motion` > 0; `motion_term.py`): the generator's loss on its update steps gains `motion` x
log(m(rollout) / m(real clip))^2, m being a clip's mean absolute difference between consecutive latent
frames (over the whole frame, or over a region of the real clip with `motion_region`), so a carried
stream that freezes deep in (or sways far more than its prompt) is pulled back to the real clips'
amount of motion.

Background term (`background` > 0; `background_term.py`): the generator's loss on its update steps gains
`background` x the mean squared error, over the pixels more than `background_px` from anywhere the batch's
real person is in its clip, between the decoded rollout and the codec's rendering of the real clip there
(its static plate), its gradient passing through the frozen decoder: blotches painted around the figure,
which the metrics take for the figure, cost what they cost the identity score.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ...runtime.stream.cache import CacheLayout, KVCache
from ...runtime.files.checkpoint import save_checkpoint
from ...runtime.encoders.codec import LatentCodec
from ...runtime.config import TRAINED_STREAM_KEY, JsonConfig, StreamConfig
from ...runtime.dit.garment_hint import clip_hint, slot_hint
from ...runtime.dit.model import TextKV, WanDiT
from ...runtime.stream.reproject import check_reprojectable, codec_round_trip
from ...runtime.stream.sampler import check_guide, condition_pass, denoise_chunk, unconditional
from ...runtime.stream.schedule import FlowMatchSchedule, frame_timesteps, shift_sigma
from ...runtime.stream.seeding import generator_for
from ..weights_world import world_entry
from .batch import LatentBatch, LatentBatchFn
from .distributed import DistInfo, sync_gradients
from .adversarial import PatchHead, frozen, generator_loss, head_loss
from .dit_stage import DiffusionStageConfig, build_model_config, build_text, init_weights
from .ema import lerp_parameters
from .motion_term import motion_loss
from .background_term import away_from_person, background_loss
from .reward import ChunkReward, gr_weights

__all__ = ["CarriedStream", "DMDStageConfig", "DMDStage"]


@dataclass
class CarriedStream:
    """A rollout's stream kept for the next step (`carry_chunks`): its batch, its cache, chunks streamed."""

    batch: LatentBatch
    cache: KVCache
    chunks: int


@dataclass(frozen=True)
class DMDStageConfig(JsonConfig):
    preset: str = "tiny"
    model: dict = field(default_factory=dict)
    text: dict = field(default_factory=dict)
    init_generator: str = ""  # the forcing (causal) checkpoint
    init_teacher: str = ""  # the SFT teacher: frozen real score, and the critic's starting point
    init_text: str = ""  # the prompt encoder the generator and critic read (the student streams with it)
    real_text: str = ""  # the real score's own prompt encoder, when its teacher was trained on past `init_text`'s
    # (a continued teacher as the real score of a student distilled with the earlier one); "": `init_text`
    gen_lr: float = 2e-5
    critic_lr: float = 4e-6
    betas: tuple[float, float] = (0.0, 0.999)
    weight_decay: float = 0.01
    grad_clip: float = 10.0
    steps: tuple[int, ...] = (1000, 750, 500, 250)
    shift: float = 5.0
    cfg: float = 3.0  # real-score text guidance as Self-Forcing writes it: cond + cfg x (cond - uncond), so 0 is
    # none and 3 is the sampler's scale 4 (`sample_teacher` and the eval write uncond + cfg x (cond - uncond))
    guide: str = "text"  # what the real score's unconditional pass drops (`sampler.GUIDES`; "garment": a teacher
    # trained with garment dropout, guided on its garments)
    tau: float = 0.2
    reweight: bool = True
    update_ratio: int = 5  # generator updated every `update_ratio` steps, the critic every step
    num_chunks: int = 4  # chunks per rollout
    score_chunks: int = 0  # the newest chunks the losses see (and the attention window); 0 = all of them
    random_context: bool = False  # draw the context length per step in [0, num_chunks - score_chunks]
    carry_chunks: int = 0  # streaming long tuning: carry a stream across steps up to this many chunks (0 = off)
    carry_every: int = 1  # only every k-th step continues the carried stream; the others start new ones
    phase_norm: bool = False  # the stream's patch-phase guard on chunks made once the window has slid
    reproject: bool = False  # the stream's codec re-projection, likewise (needs the stage's codec)
    chunk_frames: int = 3
    garment_layout: str = "frame"  # the data's flat-lay layout, which the student streams with (build_stage sets it)
    world: str = ""  # the data's world as `trained_world` JSON, recorded in the export (build_stage sets it)
    ema_decay: float = 0.99
    ema_start: int = 200
    seed: int = 0
    gan: float = 0.0  # the adversarial term's weight in the generator's loss (0: off, plain GR-DMD)
    gan_layer: int = 5  # the critic block whose output tokens the discriminator head reads
    gan_lr: float = 1e-4  # the discriminator head's learning rate
    motion: float = 0.0  # the motion-matching term's weight in the generator's loss (0: off; `motion_term.py`)
    motion_region: str = ""  # where the term measures motion: "" the whole frame, "person" (the batch's
    # foreground) or one of the batch's region masks (world data: e.g. "skin"), averaged over the real clip
    background: float = 0.0  # the background term's weight in the generator's loss (0: off; `background_term.py`)
    background_px: int = 2  # the term reads pixels more than this far from anywhere the real person is

    def __post_init__(self) -> None:
        for name in ("gan", "motion", "background", "background_px"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.motion_region and not self.motion:
            raise ValueError(f"motion_region {self.motion_region!r} is read only by the motion term, which is off "
                             "(motion 0): set motion > 0 or leave motion_region empty")
        if not 0 <= self.score_chunks <= self.num_chunks:
            raise ValueError(f"score_chunks must be in [0, num_chunks={self.num_chunks}], got {self.score_chunks}")
        if self.carry_chunks and self.carry_chunks < self.num_chunks:
            raise ValueError(f"carry_chunks ({self.carry_chunks}) must be 0 or at least num_chunks ({self.num_chunks})")
        if self.carry_every < 1:
            raise ValueError(f"carry_every must be at least 1, got {self.carry_every}")
        check_guide(self.guide)

    @property
    def scored_chunks(self) -> int:
        return self.score_chunks or self.num_chunks

    @property
    def max_context_chunks(self) -> int:
        """The most unscored context chunks a rollout streams before the scored ones."""
        return self.num_chunks - self.scored_chunks

    @property
    def trained_stream(self) -> StreamConfig:
        """The stream layout of the rollouts: what an exported student streams with."""
        trained = StreamConfig.trained(self.chunk_frames, self.scored_chunks)
        return dataclasses.replace(trained, steps=self.steps, shift=self.shift, phase_norm=self.phase_norm,
                                   reproject=self.reproject, garment_layout=self.garment_layout)


class DMDStage:
    name = "dmd"
    # starting checkpoints a resumed state replaces (`modules`); the frozen real score and prompt encoder are
    # not in the state, so `init_teacher`, `init_text` and `real_text` are read on every start
    restored_inits = ("init_generator",)

    def __init__(self, cfg: DMDStageConfig, batches: LatentBatchFn, device: torch.device | str = "cpu",
                 codec: LatentCodec | None = None, reward: ChunkReward | None = None,
                 dist: DistInfo = DistInfo()) -> None:
        self.cfg, self.batches, self.device, self.dist = cfg, batches, torch.device(device), dist
        self.codec, self.reward = codec, reward
        if cfg.reproject:
            if codec is None:
                raise ValueError("reproject needs the stage's codec (DMDStage(codec=...))")
            check_reprojectable(codec)
        if cfg.background:
            if codec is None:
                raise ValueError("background needs the stage's codec (DMDStage(codec=...)) to decode the rollout")
            if isinstance(codec, torch.nn.Module):  # the term's gradient passes through the decoder to the rollout only
                codec.requires_grad_(False)
        if cfg.reweight and (codec is None or reward is None):
            raise ValueError("GR-DMD reweighting needs a codec (to decode chunks) and a reward; "
                             "pass both or set reweight=false for plain DMD")
        model_cfg = build_model_config(DiffusionStageConfig(preset=cfg.preset, model=cfg.model))
        self.model_cfg = model_cfg
        self.generator = WanDiT(model_cfg).to(self.device)
        self.teacher = WanDiT(model_cfg).to(self.device)
        init_weights(self.generator, cfg.init_generator, ("student", "teacher"))
        init_weights(self.teacher, cfg.init_teacher, ("teacher",))
        self.critic = copy.deepcopy(self.teacher)
        self.teacher.requires_grad_(False).eval()
        self.text = build_text(cfg.text, cfg.init_text, self.device).requires_grad_(False).eval()
        self.real_text = (build_text(cfg.text, cfg.real_text, self.device).requires_grad_(False).eval()
                          if cfg.real_text else self.text)
        self.ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.schedule = FlowMatchSchedule(shift=cfg.shift)
        self.timesteps = self.schedule.warp(cfg.steps)
        self.gen_opt = torch.optim.AdamW(self.generator.parameters(), lr=cfg.gen_lr, betas=cfg.betas,
                                         weight_decay=cfg.weight_decay)
        self.critic_opt = torch.optim.AdamW(self.critic.parameters(), lr=cfg.critic_lr, betas=cfg.betas,
                                            weight_decay=cfg.weight_decay)
        self.carried: CarriedStream | None = None  # the stream the next step carries on (`carry_chunks`)
        self.head: PatchHead | None = None  # the discriminator head (`gan`)
        if cfg.gan:
            if not 0 <= cfg.gan_layer < model_cfg.num_layers:
                raise ValueError(f"gan_layer must be in [0, {model_cfg.num_layers}), got {cfg.gan_layer}")
            self.head = PatchHead(model_cfg.dim).to(self.device)
            self.head_opt = torch.optim.AdamW(self.head.parameters(), lr=cfg.gan_lr, betas=cfg.betas,
                                              weight_decay=cfg.weight_decay)

    def modules(self):
        head = {"discriminator": self.head} if self.head is not None else {}
        return {"generator": self.generator, "critic": self.critic, "ema": self.ema, **head}

    def optimizers(self):
        head = {"discriminator": self.head_opt} if self.head is not None else {}
        return {"generator": self.gen_opt, "critic": self.critic_opt, **head}

    # ------------------------------------------------------------------ rollout
    def context_chunks(self, g: torch.Generator) -> int:
        """How many unscored context chunks this step's rollout streams before the scored ones."""
        most = self.cfg.max_context_chunks
        return int(torch.randint(0, most + 1, (1,), generator=g)) if self.cfg.random_context and most else most

    def open_stream(self, batch: LatentBatch, text: TextKV) -> KVCache:
        """A new rolling cache in the trained stream's layout, its condition frames written (no gradient)."""
        cfg, conds, gen, stream = self.cfg, batch.conditions, self.generator, self.cfg.trained_stream
        b, _, _, h, w = conds.shape
        layout = CacheLayout(reference_views=batch.references.shape[2], garment_slots=batch.slots,
                             sink_frames=stream.sink_frames, window_frames=stream.window_frames)
        cache = KVCache(layout, gen.cfg.num_layers, gen.cfg.num_heads, gen.cfg.head_dim, gen.tokens_per_frame((h, w)),
                        batch=b, dtype=gen.dtype, device=self.device, rope="rolling", chunk_frames=cfg.chunk_frames)
        with torch.no_grad():
            condition_pass(gen, cache, text, {item: conds[:, :, i:i + 1]
                                              for i, item in enumerate(cache.condition_items())})
        return cache

    def stream_chunks(self, cache: KVCache, batch: LatentBatch, text: TextKV, context: int, exit_step: int,
                      g: torch.Generator, grad: bool) -> torch.Tensor:
        """Stream `context` context chunks (denoised fully, without gradient), then the scored ones up to
        `exit_step` (gradient if `grad`), through `cache`; returns the scored chunks `[B, C, F, h, w]`,
        F = scored_chunks x chunk."""
        b, ch, _, h, w = batch.conditions.shape
        hint = slot_hint(self.generator.cfg.garment_hint, batch.conditions, batch.references.shape[2])
        chunks = []
        for index in range(context + self.cfg.scored_chunks):
            scored = index >= context
            x0 = self._chunk(cache, text, (b, ch, self.cfg.chunk_frames, h, w),
                             exit_step if scored else len(self.timesteps) - 1, g, grad and scored, hint)
            if scored:
                chunks.append(x0)
        return torch.cat(chunks, dim=2)

    def rollout(self, batch: LatentBatch, text: TextKV, exit_step: int, g: torch.Generator, grad: bool,
                context: int | None = None) -> torch.Tensor:
        """A new stream: `context` (default `max_context_chunks`) context chunks, then the scored ones
        (`stream_chunks`)."""
        context = self.cfg.max_context_chunks if context is None else context
        return self.stream_chunks(self.open_stream(batch, text), batch, text, context, exit_step, g, grad)

    def _chunk(self, cache: KVCache, text: TextKV, shape: tuple[int, ...], exit_step: int, g: torch.Generator,
               grad: bool, hint: torch.Tensor | None) -> torch.Tensor:
        """The stream's chunk loop (`denoise_chunk`) up to `exit_step`, its noise drawn from the rollout's `g`
        (only the exit step's pass carries gradient if `grad`); `hint`: the generator's garment hint or None."""
        return denoise_chunk(self.generator, cache, text, lambda _: torch.randn(shape, generator=g), self.timesteps,
                             self.schedule, phase_norm=self.cfg.phase_norm, exit_step=exit_step, grad=grad,
                             project=self._project if self.cfg.reproject else None, hint=hint)

    def _project(self, x0: torch.Tensor) -> torch.Tensor:
        """The codec round trip of a chunk (`reproject`): its value re-projected, its gradient straight through."""
        return x0 + (codec_round_trip(self.codec, x0.detach()) - x0).detach()

    # ------------------------------------------------------------------ losses
    def _score_t(self, b: int, g: torch.Generator, shift: float | None = None) -> torch.Tensor:
        """One timestep per clip: uniform index, shifted (by the stage's shift unless given; the adversarial
        term draws unshifted, shift 1, so half lie below sigma 0.5, where texture shows), clamped to [20, 980]."""
        u = torch.randint(0, 1000, (b,), generator=g).float() / 1000.0
        return (shift_sigma(u, self.cfg.shift if shift is None else shift) * 1000.0).clamp(20.0, 980.0).to(self.device)

    def _velocity(self, model: WanDiT, conds: torch.Tensor, first_garment: int, x_t: torch.Tensor, t: torch.Tensor,
                  text: TextKV) -> torch.Tensor:
        """A bidirectional pass (teacher or critic) over the conditions and the noised clip: the clip's velocity."""
        x, t_frames, positions, hint = self._pass_inputs(model, conds, first_garment, x_t, t)
        return model(x, t_frames, text, positions, hint=hint)[:, :, conds.shape[2]:].float()

    @staticmethod
    def _pass_inputs(model: WanDiT, conds: torch.Tensor, first_garment: int, x_t: torch.Tensor,
                     t: torch.Tensor) -> tuple:
        """(latents `[B, C, n + F, h, w]`, timesteps `[B, n + F]`, positions, hint) of a bidirectional pass."""
        n, f = conds.shape[2], x_t.shape[2]
        hint = clip_hint(model.cfg.garment_hint, conds, first_garment, f)
        return torch.cat([conds, x_t], dim=2), frame_timesteps(t, f, n), list(range(n + f)), hint

    def _x0(self, model: WanDiT, conds: torch.Tensor, first_garment: int, x_t: torch.Tensor, t: torch.Tensor,
            text: TextKV) -> torch.Tensor:
        v = self._velocity(model, conds, first_garment, x_t, t, text)
        return self.schedule.x0_from_velocity(x_t, v, t[:, None, None, None, None])

    def frame_weights(self, video: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        """`[B, F]` GR-DMD weights (uniform 1/F without reweighting)."""
        b, _, f = video.shape[:3]
        if not self.cfg.reweight:
            return torch.full((b, f), 1.0 / f, device=self.device)
        with torch.no_grad():
            pixels, _ = self.codec.decode(video.detach())
            per_chunk = self.codec.pixel_frames(self.cfg.chunk_frames, first=False)
            rewards = self.reward(pixels, batch.reference_images, batch.garment_images, per_chunk)
        return gr_weights(rewards.to(self.device), self.cfg.chunk_frames, self.cfg.tau)

    def dmd_loss(self, video: torch.Tensor, batch: LatentBatch, text_c: TextKV, text_u: TextKV,
                 g: torch.Generator, critic_text: TextKV | None = None) -> tuple[torch.Tensor, dict]:
        """The generator's DMD loss; `text_c` / `text_u`: the teacher's prompt and empty-prompt projections,
        `critic_text`: the critic's own projection of the prompt (the one its flow-matching loss trains),
        which the fake score is read with (`text_c` when None)."""
        conds, first = batch.conditions, batch.references.shape[2]
        b = video.shape[0]
        t = self._score_t(b, g)
        x_t, _ = self._noised(video.detach(), t, g)
        with torch.no_grad():
            real_c = self._x0(self.teacher, conds, first, x_t, t, text_c)
            text_n, conds_n = unconditional(self.cfg.guide, conds, first, text_c, text_u)
            real_u = self._x0(self.teacher, conds_n, first, x_t, t, text_n)
            real = real_c + self.cfg.cfg * (real_c - real_u)
            fake = self._x0(self.critic, conds, first, x_t, t, text_c if critic_text is None else critic_text)
            grad = fake - real
            norm = (video.detach() - real).abs().mean((1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
            grad = torch.nan_to_num(grad / norm)
        weights = self.frame_weights(video, batch)  # [B, F]
        per_frame = F.mse_loss(video, (video - grad).detach(), reduction="none").mean((1, 3, 4))  # [B, F]
        loss = 0.5 * (weights * per_frame).sum(1).mean()
        return loss, {"dmd": loss.detach(), "grad_norm": grad.abs().mean()}

    def critic_loss(self, video: torch.Tensor, batch: LatentBatch, text_c: TextKV, g: torch.Generator) -> torch.Tensor:
        t = self._score_t(video.shape[0], g)
        x_t, noise = self._noised(video, t, g)
        v = self._velocity(self.critic, batch.conditions, batch.references.shape[2], x_t, t, text_c)
        return F.mse_loss(v, self.schedule.velocity_target(video, noise))

    def _noised(self, video: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(video noised to t per clip, the noise), the noise drawn from `g`."""
        noise = torch.randn(video.shape, generator=g).to(self.device)
        return self.schedule.add_noise(video, noise, t[:, None, None, None, None]), noise

    # ------------------------------------------------------------------ adversarial term
    def _logits(self, x_t: torch.Tensor, batch: LatentBatch, t: torch.Tensor, text: TextKV) -> torch.Tensor:
        """The head's logits `[B, F, S]` on the video tokens of the critic's pass over a noised clip (the critic
        frozen: only the head, and the clip's own graph, get gradients); `text`: the critic's prompt projection."""
        conds = batch.conditions
        x, t_frames, positions, hint = self._pass_inputs(self.critic, conds, batch.references.shape[2], x_t, t)
        with frozen(self.critic):
            tokens = self.critic.features(x, t_frames, text, positions, self.cfg.gan_layer, hint=hint)
        return self.head(tokens[:, conds.shape[2]:])

    @torch.no_grad()
    def _critic_text(self, prompt: torch.Tensor) -> TextKV:
        """The critic's current projection of the prompt features, without gradient (the head never trains it)."""
        return self.critic.text_kv(prompt)

    def real_window(self, batch: LatentBatch, frames: int, g: torch.Generator) -> torch.Tensor:
        """A window of `frames` latent frames of the batch's real clip, at a random start."""
        total = batch.video.shape[2]
        if total < frames:
            raise ValueError(f"gan needs real clips of at least {frames} latent frames (the rollout's), got {total}")
        start = int(torch.randint(0, total - frames + 1, (1,), generator=g))
        return batch.video[:, :, start:start + frames]

    def adversarial_loss(self, video: torch.Tensor, batch: LatentBatch, prompt: torch.Tensor,
                         g: torch.Generator) -> torch.Tensor:
        """The generator's adversarial loss on its rollout (gradient to `video` only); `prompt`: the prompt
        encoder's features."""
        t = self._score_t(video.shape[0], g, shift=1.0)
        with frozen(self.head):
            return generator_loss(self._logits(self._noised(video, t, g)[0], batch, t, self._critic_text(prompt)))

    def discriminator_step(self, video: torch.Tensor, batch: LatentBatch, prompt: torch.Tensor,
                           g: torch.Generator) -> dict[str, torch.Tensor]:
        """One update of the head: the batch's real clip against the (detached) rollout, at one t per clip."""
        t = self._score_t(video.shape[0], g, shift=1.0)
        real = self.real_window(batch, video.shape[2], g)
        with torch.no_grad():
            fake_t, real_t = self._noised(video.detach(), t, g)[0], self._noised(real, t, g)[0]
        text = self._critic_text(prompt)  # after this step's critic update
        fake_logits, real_logits = (self._logits(x_t, batch, t, text) for x_t in (fake_t, real_t))
        loss = head_loss(real_logits, fake_logits)
        self.head_opt.zero_grad(set_to_none=True)
        loss.backward()
        sync_gradients(self.head.parameters(), self.dist)
        self.head_opt.step()
        return {"disc": loss.detach(), "d_real": real_logits.mean().detach(), "d_fake": fake_logits.mean().detach()}

    def motion_cells(self, batch: LatentBatch) -> torch.Tensor | None:
        """`[B, 1, 1, h, w]` the region the motion term measures (`motion_region`), the real clip's cover of it
        averaged over its frames; None for the whole frame."""
        name = self.cfg.motion_region
        if not name:
            return None
        cover = batch.cover(name)
        if cover is None:
            raise ValueError(f"motion_region {name!r} needs the batch's {name} mask (world data); "
                             f"it has {batch.mask_names}")
        return cover.float().mean(2, keepdim=True)

    def background_term(self, video: torch.Tensor, batch: LatentBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(the background loss of the rollout `video` `[B, C, F, h, w]`, `[B]` share of its away pixels that
        are off the real clip's background); `background_term.py`."""
        if batch.person_hull is None:
            raise ValueError("background needs the batch's person_hull (where the real person is: world data); "
                             "this batch has none: set background to 0 for clips without person masks")
        with torch.no_grad():
            target = self.codec.decode(batch.video)[0].float().mean(2)  # [B, 3, H, W]: the real clip's plate
        pixels = self.codec.decode(video)[0].float()  # [B, 3, T, H, W]
        return background_loss(pixels, target, away_from_person(batch.person_hull, self.cfg.background_px))

    # ------------------------------------------------------------------ step
    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        g = generator_for(cfg.seed, step)
        carrying = bool(cfg.carry_chunks) and step % cfg.carry_every == 0  # this step's stream is the carried one
        carried = self.carried if carrying else None
        if carrying:
            self.carried = None
        batch = carried.batch if carried else self.batches(step).to(self.device)
        with torch.no_grad():  # prompt features are frozen; each network projects them with its own weights
            prompt = self.text.encode(batch.prompts)
            real_prompt = prompt if self.real_text is self.text else self.real_text.encode(batch.prompts)
            empty = self.real_text.encode([""] * len(batch.prompts))
            text_c, teacher_c, teacher_u = (self.generator.text_kv(prompt), self.teacher.text_kv(real_prompt),
                                            self.teacher.text_kv(empty))
        critic_text = self.critic.text_kv(prompt)  # the critic's own projection (trained by its loss below)
        gen_step = step % cfg.update_ratio == 0
        exit_step = int(torch.randint(0, len(self.timesteps), (1,), generator=g))
        if carried:
            cache, context, streamed = carried.cache, 0, carried.chunks
        else:
            cache, context, streamed = self.open_stream(batch, text_c), self.context_chunks(g), 0
        video = self.stream_chunks(cache, batch, text_c, context, exit_step, g, grad=gen_step)
        streamed += context + cfg.scored_chunks
        if carrying and streamed + cfg.scored_chunks <= cfg.carry_chunks:
            self.carried = CarriedStream(batch, cache, streamed)
        metrics: dict[str, torch.Tensor] = {}
        if gen_step:
            loss, metrics = self.dmd_loss(video, batch, teacher_c, teacher_u, g, critic_text)
            if self.head is not None:
                adv = self.adversarial_loss(video, batch, prompt, g)
                loss = loss + cfg.gan * adv
                metrics["adv"] = adv.detach()
            if cfg.motion:
                move, ratio = motion_loss(video, batch.video, self.motion_cells(batch))
                loss = loss + cfg.motion * move
                metrics.update(motion=move.detach(), motion_ratio=ratio.mean())
            if cfg.background:
                bg, off = self.background_term(video, batch)
                loss = loss + cfg.background * bg
                metrics.update(background=bg.detach(), background_off=off.mean())
            self.gen_opt.zero_grad(set_to_none=True)
            loss.backward()
            sync_gradients(self.generator.parameters(), self.dist)
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), cfg.grad_clip)
            self.gen_opt.step()
            self._update_ema(step)
        c_loss = self.critic_loss(video.detach(), batch, critic_text, g)
        self.critic_opt.zero_grad(set_to_none=True)
        c_loss.backward()
        sync_gradients(self.critic.parameters(), self.dist)
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)
        self.critic_opt.step()
        if self.head is not None:
            metrics.update(self.discriminator_step(video.detach(), batch, prompt, g))
        return {"critic": c_loss.detach(), "gen_step": torch.tensor(float(gen_step)), **metrics}

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        decay = self.cfg.ema_decay if step >= self.cfg.ema_start else 0.0  # copy until EMA starts
        lerp_parameters(self.ema, self.generator, 1.0 - decay)

    def export(self, out_dir: Path) -> list[Path]:
        trained = self.cfg.trained_stream  # the stream its rollouts were: context, steps, shift
        return [save_checkpoint(Path(out_dir) / "student.safetensors", self.ema.state_dict(), "student",
                                self.model_cfg, {TRAINED_STREAM_KEY: trained.to_json(),
                                                 **world_entry(self.cfg.world)})]
