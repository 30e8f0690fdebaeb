"""Cheap stand-ins for the parts a random-weights benchmark does not have: the VAE and the text encoder.

`StandInCodec` is a `LatentCodec` with a real VAE's shape arithmetic (spatial factor, temporal
factor, causal first frame, latent channels) and almost no cost: a fixed random 1x1 projection
plus nearest-neighbour upsampling. It lets the stream run at a real model's latent shapes; the
end-to-end figures it gives therefore count the backbone and a near-free decode, not a real VAE.

`RandomPromptEncoder` returns fixed random features of the DiT's `text_dim` x `text_len` per
prompt ("" -> zeros, like a zero-padded umT5 context), which is all the cross-attention needs.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...runtime.encoders.codec import latent_frame_count, pixel_frame_count
from ...runtime.config import ModelConfig

__all__ = ["VaeFactors", "VAE_FACTORS", "StandInCodec", "RandomPromptEncoder"]


@dataclass(frozen=True)
class VaeFactors:
    """The shape arithmetic of a video VAE."""

    spatial: int
    temporal: int
    causal_first_frame: bool
    channels: int


# The VAE each preset's latents come from: Wan2.2 16x / 4x causal / 48 ch, Wan2.1 8x / 4x causal /
# 16 ch, the embedded tiny codec 8x / 4x grouped / 16 ch.
VAE_FACTORS: dict[str, VaeFactors] = {
    "tiny": VaeFactors(8, 4, False, 16),
    "wan2.2-ti2v-5b": VaeFactors(16, 4, True, 48),
    "wan2.1-1.3b": VaeFactors(8, 4, True, 16),
}


class StandInCodec(nn.Module):
    """A near-free `LatentCodec` with a real VAE's factors. The decoder state counts decoded latent frames."""

    def __init__(self, factors: VaeFactors, seed: int = 0) -> None:
        super().__init__()
        self.factors = factors
        g = torch.Generator().manual_seed(seed)
        c = factors.channels
        self.register_buffer("encode_proj", torch.randn(c, 3, generator=g) / 3 ** 0.5)  # [C, 3]
        self.register_buffer("decode_proj", torch.randn(3, c, generator=g) / c ** 0.5)  # [3, C]

    @property
    def latent_channels(self) -> int:
        return self.factors.channels

    @property
    def spatial_factor(self) -> int:
        return self.factors.spatial

    @property
    def temporal_factor(self) -> int:
        return self.factors.temporal

    @property
    def causal_first_frame(self) -> bool:
        return self.factors.causal_first_frame

    def pixel_frames(self, latent_frames: int, first: bool = True) -> int:
        return pixel_frame_count(latent_frames, self.temporal_factor, self.causal_first_frame, first)

    def latent_frames(self, pixel_frames: int) -> int:
        return latent_frame_count(pixel_frames, self.temporal_factor, self.causal_first_frame)

    def _project_in(self, frames: Tensor) -> Tensor:
        """`[B, 3, F, H, W]` -> `[B, C, F, H/s, W/s]`: area pooling, then the channel projection."""
        b, _, f, h, w = frames.shape
        s = self.spatial_factor
        pooled = F.avg_pool2d(frames.transpose(1, 2).reshape(b * f, 3, h, w).float(), s)  # [B*F, 3, h, w]
        pooled = pooled.view(b, f, 3, h // s, w // s).transpose(1, 2)  # [B, 3, F, h, w]
        return torch.einsum("bifhw,ci->bcfhw", pooled, self.encode_proj.to(pooled.device))

    def encode_video(self, video: Tensor) -> Tensor:
        """`[B, 3, T, H, W]` -> `[B, C, F, h, w]`: each latent frame is the mean of the pixel frames it covers."""
        f = self.latent_frames(video.shape[2])
        tf, lead = self.temporal_factor, 1 if self.causal_first_frame else 0
        groups = [video[:, :, :lead]] if lead else []
        groups += [video[:, :, lead + i * tf:lead + (i + 1) * tf] for i in range(f - lead)]
        return self._project_in(torch.cat([g.mean(2, keepdim=True) for g in groups], dim=2))

    def encode_image(self, image: Tensor) -> Tensor:
        """`[B, 3, H, W]` -> `[B, C, 1, h, w]`."""
        return self._project_in(image[:, :, None])

    def decode(self, latents: Tensor, state: int | None = None) -> tuple[Tensor, int]:
        """`[B, C, F, h, w]` -> (`[B, 3, T, H, W]` in [-1, 1], latent frames decoded so far in this segment)."""
        rgb = torch.einsum("bcfhw,oc->bofhw", latents.float(), self.decode_proj.to(latents.device))  # [B, 3, F, h, w]
        video = rgb.repeat_interleave(self.temporal_factor, dim=2)  # [B, 3, F*tf, h, w]
        if self.causal_first_frame and state is None:
            video = video[:, :, self.temporal_factor - 1:]  # the segment's first latent frame is 1 pixel frame
        s = self.spatial_factor
        video = video.repeat_interleave(s, dim=3).repeat_interleave(s, dim=4)  # [B, 3, T, H, W]
        return torch.tanh(video), (state or 0) + latents.shape[2]


class RandomPromptEncoder:
    """Fixed random prompt features `[B, text_len, text_dim]`, seeded by the prompt's text; "" -> zeros."""

    def __init__(self, text_dim: int, text_len: int, seed: int = 0) -> None:
        self.text_dim, self.text_len, self.seed = text_dim, text_len, seed

    @classmethod
    def for_model(cls, cfg: ModelConfig, seed: int = 0) -> "RandomPromptEncoder":
        return cls(cfg.text_dim, cfg.text_len, seed)

    def _features(self, prompt: str) -> Tensor:
        if not prompt:
            return torch.zeros(self.text_len, self.text_dim)
        g = torch.Generator().manual_seed(zlib.crc32(prompt.encode()) ^ self.seed)
        return torch.randn(self.text_len, self.text_dim, generator=g)

    def encode(self, prompts: Sequence[str] | str) -> Tensor:
        if isinstance(prompts, str):
            prompts = [prompts]
        return torch.stack([self._features(p) for p in prompts])
