"""Stage `codec`: train the tiny autoencoder on rendered clips (MSE + L1 + edge loss), then fix latent stats."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ...runtime.files.checkpoint import save_checkpoint
from ...runtime.encoders.codec import TinyCodec, TinyCodecConfig
from ...runtime.config import JsonConfig
from ...runtime.stream.seeding import generator_for, mix_seed
from .distributed import DistInfo, sync_gradients

__all__ = ["CodecStageConfig", "CodecStage", "edge_l1"]

BatchFn = Callable[[int], torch.Tensor]  # step -> video [B, 3, T, H, W] in [-1, 1]


@dataclass(frozen=True)
class CodecStageConfig(JsonConfig):
    codec: dict = field(default_factory=dict)  # TinyCodecConfig fields
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    mse_weight: float = 1.0  # MSE learns colours and layout fast; L1 and the edge term sharpen afterwards
    l1_weight: float = 0.2
    edge_weight: float = 0.2
    grad_clip: float = 1.0
    stats_batches: int = 8  # batches used to measure the latent mean/std at export
    seed: int = 0
    crop: int = 0  # train on random square crops of this size (0 = whole frames); the codec is convolutional


def edge_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 between spatial finite differences of two `[..., H, W]` tensors (keeps textures sharp)."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(a), dx(b)) + F.l1_loss(dy(a), dy(b))


class CodecStage:
    name = "codec"

    def __init__(self, cfg: CodecStageConfig, batches: BatchFn, device: torch.device | str = "cpu",
                 dist: DistInfo = DistInfo()) -> None:
        self.cfg, self.batches, self.device, self.dist = cfg, batches, torch.device(device), dist
        self.codec = TinyCodec(TinyCodecConfig.from_json(cfg.codec)).to(self.device)
        self.opt = torch.optim.AdamW(self.codec.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)

    def modules(self):
        return {"codec": self.codec}

    def optimizers(self):
        return {"codec": self.opt}

    def reconstruct(self, video: torch.Tensor) -> torch.Tensor:
        recon, _ = self.codec.decode(self.codec.encode_video(video))
        return recon

    def loss(self, video: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        recon = self.reconstruct(video)
        mse = F.mse_loss(recon, video)
        l1 = F.l1_loss(recon, video)
        edge = edge_l1(recon, video)
        loss = self.cfg.mse_weight * mse + self.cfg.l1_weight * l1 + self.cfg.edge_weight * edge
        return loss, {"mse": mse.detach(), "l1": l1.detach(), "edge": edge.detach()}

    def _crop(self, video: torch.Tensor, step: int) -> torch.Tensor:
        """A random square crop `[B, 3, T, c, c]` (aligned to the spatial factor), the same for the batch."""
        c, (h, w) = self.cfg.crop, video.shape[-2:]
        if not c or c >= min(h, w):
            return video
        s = self.codec.spatial_factor
        g = generator_for(mix_seed(self.cfg.seed, 7), step)
        y = int(torch.randint(0, (h - c) // s + 1, (1,), generator=g)) * s
        x = int(torch.randint(0, (w - c) // s + 1, (1,), generator=g)) * s
        return video[..., y:y + c, x:x + c]

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        self.codec.train()
        video = self._crop(self.batches(step), step).to(self.device)
        loss, metrics = self.loss(video)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        sync_gradients(self.codec.parameters(), self.dist)
        torch.nn.utils.clip_grad_norm_(self.codec.parameters(), self.cfg.grad_clip)
        self.opt.step()
        return {"loss": loss.detach(), **metrics}

    @torch.no_grad()
    def measure_latent_stats(self, steps: range) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean/std of the raw latents over a few batches (normalisation reset first)."""
        self.codec.eval()
        self.codec.set_latent_stats(0.0, 1.0)
        z = torch.cat([self.codec.encode_video(self.batches(s).to(self.device)).transpose(0, 1).flatten(1)
                       for s in steps], dim=1)  # [C, N]
        return z.mean(1), z.std(1).clamp_min(1e-4)

    def export(self, out_dir: Path) -> list[Path]:
        mean, std = self.measure_latent_stats(range(10**9, 10**9 + self.cfg.stats_batches))
        self.codec.set_latent_stats(mean, std)
        path = save_checkpoint(Path(out_dir) / "codec.safetensors", self.codec.state_dict(), "codec",
                               self.codec.config)
        return [path]
