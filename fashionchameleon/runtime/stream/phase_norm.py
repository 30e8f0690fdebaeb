"""Patch-phase normalisation: an inference-time guard against a streaming student's cache feedback.

A DiT reads and writes latents in `ph x pw` patches, so every latent pixel has a *phase*, its
position inside its patch. In natural video the phases are statistically alike (the content does
not know where the patch grid lies). A student streamed past its training horizon breaks that:
what it gets slightly wrong at one phase (on the embedded model, first a dark line along the
bottom row of the bottom token row's patches) is written into the cache by the clean KV pass,
read back by the next chunk and strengthened, until the frames fill with horizontal stripes of
the patch's period (docs/training-log.md, "the long-stream collapse").

`patch_phase_norm` removes the patch-periodic part of a chunk and leaves the rest:
  1. per channel, every phase gets the chunk's pooled mean and standard deviation (a drift that
     covers the whole frame);
  2. per token row, the row phases get the same mean over the row; per token column, the column
     phases the same mean over the column (a stripe along one row or column of tokens, how the
     drift starts).
Content that is smooth at the patch scale is left as it is; a sharp edge that runs exactly along
a patch boundary is softened a little. `guard_chunk` is the rule for when: a chunk made once the
cache's window has slid. The stream (`StreamConfig.phase_norm`, through `denoise_chunk`) and the
GR-DMD rollouts apply it to each chunk's final x0 before the clean KV pass, so the cache and the
decoded frames see the same latents.
"""
from __future__ import annotations

import torch

__all__ = ["patch_phase_norm", "guard_chunk"]


def patch_phase_norm(x: torch.Tensor, patch: tuple[int, int], eps: float = 1e-6) -> torch.Tensor:
    """`[B, C, F, h, w]` -> same shape; h and w must be multiples of `patch` = (ph, pw)."""
    b, c, f, h, w = x.shape
    ph, pw = patch
    if h % ph or w % pw:
        raise ValueError(f"latent size {h}x{w} is not a multiple of the patch {ph}x{pw}")
    p = x.reshape(b, c, f, h // ph, ph, w // pw, pw)  # [B, C, F, rows, row phase, cols, col phase]
    p = _equalise_statistics(p, eps)
    row_means = p.mean(dim=(5, 6), keepdim=True)  # per token row and row phase: [B, C, F, rows, ph, 1, 1]
    p = p - row_means + row_means.mean(dim=4, keepdim=True)
    col_means = p.mean(dim=(3, 4), keepdim=True)  # per token column and column phase: [B, C, F, 1, 1, cols, pw]
    p = p - col_means + col_means.mean(dim=6, keepdim=True)
    return p.reshape(b, c, f, h, w)


def guard_chunk(x0: torch.Tensor, cache, patch: tuple[int, int]) -> torch.Tensor:
    """`x0` normalised if `cache` (a `KVCache`, before the chunk's commit) has slid, else `x0` itself."""
    return patch_phase_norm(x0, patch) if cache.sliding() else x0


def _equalise_statistics(p: torch.Tensor, eps: float) -> torch.Tensor:
    """Give each phase (dims 4 and 6) of `[B, C, F, rows, ph, cols, pw]` the pooled per-channel mean and std."""
    positions = (2, 3, 5)
    mean = p.mean(dim=positions, keepdim=True)  # [B, C, 1, 1, ph, 1, pw]
    std = p.std(dim=positions, keepdim=True, correction=0)
    pooled_mean = p.mean(dim=(2, 3, 4, 5, 6), keepdim=True)  # [B, C, 1, 1, 1, 1, 1]
    pooled_std = p.std(dim=(2, 3, 4, 5, 6), keepdim=True, correction=0)
    return (p - mean) * (pooled_std / (std + eps)) + pooled_mean
