"""Codec re-projection: an inference-time guard that keeps a long stream's cache on the codec's latents.

A student's chunk latents are written back into the KV cache (the clean KV pass) and read by
every later chunk. Past the context its rollouts showed it, what the student gets slightly wrong
off the codec's latent manifold (on the embedded model: stripes of the patch's period, see
docs/training-log.md, "the long-stream collapse") is read back, strengthened and written again. Decoding a
chunk and encoding the frames again maps it to the nearest latents the codec itself would make
of those frames, so the cache holds latents of *pictures*, and that feedback loses its carrier.

`codec_round_trip` is the map. The stream (`StreamConfig.reproject`, through `denoise_chunk`)
applies it, like the patch-phase guard, only to chunks made once the cache's window has slid;
chunks before that are exactly what the model made. It needs a codec whose latent frames decode
and encode independently of their neighbours (the tiny codec): a causal video VAE's latent frame
depends on the frames before it, so one chunk cannot be re-encoded on its own.
"""
from __future__ import annotations

import torch

from ..encoders.codec import LatentCodec

__all__ = ["codec_round_trip", "reprojectable", "check_reprojectable"]


def reprojectable(codec: LatentCodec) -> bool:
    """Whether `codec` can re-encode one chunk on its own (its latent frames are independent)."""
    return not codec.causal_first_frame


def check_reprojectable(codec: LatentCodec) -> None:
    """Raise ValueError, saying what to do, if `codec` cannot re-encode one chunk on its own."""
    if not reprojectable(codec):
        raise ValueError("reproject needs a codec whose latent frames decode independently (the embedded tiny "
                         f"codec); {type(codec).__name__} is causal (its first latent frame covers one pixel "
                         "frame), so a chunk cannot be re-encoded on its own: set reproject to false")


@torch.no_grad()
def codec_round_trip(codec: LatentCodec, latents: torch.Tensor) -> torch.Tensor:
    """`[B, C, F, h, w]` -> the codec's encoding of their decoded frames, same shape, float32."""
    frames, _ = codec.decode(latents)  # [B, 3, T, H, W]
    out = codec.encode_video(frames.float().clamp(-1.0, 1.0)).float()
    if out.shape != latents.shape:
        raise ValueError(f"codec round trip changed the latent shape {list(latents.shape)} -> {list(out.shape)}")
    return out.to(latents.device)
