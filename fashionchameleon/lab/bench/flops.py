"""FLOPs of the model's work counted from the configs, and the matmul peak they are compared with.

Counted are the matrix products (2 FLOPs per multiply-add), which is where a DiT spends its
compute: patch embedding, time embedding, per block the self-attention q/k/v/o projections, the
attention scores and weighted values against the keys in view, the cross-attention q/o
projections and its attention against the (cached) text keys, the FFN, and the output head.
Norms, RoPE, modulation and activations are elementwise and not counted; the text K/V are
computed once per prompt, not per pass. A student chunk is `len(steps)` denoising passes plus the
clean pass that writes its KV, all against the same keys; the clean pass is a KV pass
(`WanDiT.write_kv`): its last block computes only keys and values, and it has no output head.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...runtime.config import ModelConfig, StreamConfig
from .measure import Clock

__all__ = ["PassFlops", "pass_flops", "kv_pass_flops", "chunk_flops", "teacher_flops", "live_key_frames", "matmul_peak_flops"]


@dataclass(frozen=True)
class PassFlops:
    """FLOPs of one forward pass, by part."""

    embed: int  # patch embedding + time embedding/projection
    self_proj: int  # q, k, v, o of self-attention, all blocks
    self_attn: int  # scores and weighted values against the keys in view, all blocks
    cross: int  # cross-attention q, o and attention against the text, all blocks
    ffn: int
    head: int

    @property
    def total(self) -> int:
        return self.embed + self.self_proj + self.self_attn + self.cross + self.ffn + self.head

    def scaled(self, n: int) -> "PassFlops":
        return PassFlops(*(n * v for v in vars(self).values()))

    def __add__(self, other: "PassFlops") -> "PassFlops":
        return PassFlops(*(a + b for a, b in zip(vars(self).values(), vars(other).values())))


def pass_flops(cfg: ModelConfig, tokens_per_frame: int, query_frames: int, key_frames: int,
               batch: int = 1, time_embeddings: int | None = None) -> PassFlops:
    """One forward of `query_frames` frames whose self-attention sees `key_frames` frames (theirs included).

    `time_embeddings`: timestep embeddings computed (default one per frame; a CPU forward whose
    frames share a timestep computes one).
    """
    d, s, b = cfg.dim, tokens_per_frame, batch
    te = query_frames if time_embeddings is None else time_embeddings
    n = query_frames * s  # query tokens
    k = key_frames * s  # key tokens
    patch = math.prod(cfg.patch_size)
    embed = 2 * n * cfg.in_dim * patch * d + 2 * te * (cfg.freq_dim * d + d * d + d * 6 * d)
    per_layer = (2 * n * d * d * 4,  # self q/k/v/o
                 2 * 2 * n * k * d,  # q.k^T and attn.v over all heads (heads * head_dim = dim)
                 2 * n * d * d * 2 + 2 * 2 * n * cfg.text_len * d,  # cross q/o + attention to the text
                 2 * 2 * n * d * cfg.ffn_dim)
    head = 2 * n * d * cfg.out_dim * patch
    layers = cfg.num_layers
    return PassFlops(b * embed, *(b * layers * v for v in per_layer), b * head)


def kv_pass_flops(cfg: ModelConfig, tokens_per_frame: int, query_frames: int, key_frames: int,
                  batch: int = 1, time_embeddings: int | None = None) -> PassFlops:
    """A KV pass (`WanDiT.write_kv`): a full pass but for the last block, which projects only keys and
    values, and without the output head."""
    full = pass_flops(cfg, tokens_per_frame, query_frames, key_frames, batch, time_embeddings)
    layers = cfg.num_layers
    one = lambda total: total // layers  # noqa: E731  (one block's share)
    return PassFlops(full.embed, full.self_proj - one(full.self_proj) // 2, full.self_attn - one(full.self_attn),
                     full.cross - one(full.cross), full.ffn - one(full.ffn), 0)


def live_key_frames(stream: StreamConfig, num_conditions: int, chunk_index: int) -> int:
    """Cache frames a chunk's queries see: the conditions plus the video history and the chunk itself.

    `chunk_index` counts chunks since the stream (or a withdraw-all switch) began; the history
    grows by one chunk per chunk until sink + window frames are in view, then stays there.
    """
    c = stream.chunk_frames
    return num_conditions + min((chunk_index + 1) * c, stream.sink_frames + stream.window_frames)


def chunk_flops(cfg: ModelConfig, stream: StreamConfig, tokens_per_frame: int, num_conditions: int,
                chunk_index: int) -> PassFlops:
    """One student chunk: the denoising passes plus the clean KV pass (`kv_pass_flops`), against the live cache frames.

    The chunk's frames share each pass's timestep: one time embedding per pass (as the model computes it
    on the CPU; a GPU forward embeds per frame, < 0.1 % more).
    """
    keys = live_key_frames(stream, num_conditions, chunk_index)
    c = stream.chunk_frames
    return (pass_flops(cfg, tokens_per_frame, c, keys, time_embeddings=1).scaled(len(stream.steps))
            + kv_pass_flops(cfg, tokens_per_frame, c, keys, time_embeddings=1))


def teacher_flops(cfg: ModelConfig, tokens_per_frame: int, num_conditions: int, video_frames: int,
                  steps: int) -> PassFlops:
    """The bidirectional teacher: `steps` passes over conditions + video, batch 2 (text CFG)."""
    frames = num_conditions + video_frames
    return pass_flops(cfg, tokens_per_frame, frames, frames, batch=2).scaled(steps)


def matmul_peak_flops(device: torch.device | str, dtype: torch.dtype, size: int, seconds: float = 1.0) -> float:
    """Best measured FLOP/s of a square `size` matmul (same device, dtype and threads as the model).

    Rounds of a few products are timed until `seconds` have passed (at least 3 rounds); the best
    round counts, as a peak should.
    """
    clock = Clock(device)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, generator=g, device=device).to(dtype)
    b = torch.randn(size, size, generator=g, device=device).to(dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    torch.matmul(a, b, out=out)  # warm-up (kernel selection, page faults)
    (_, once) = clock.time(lambda: torch.matmul(a, b, out=out))
    per_round = max(1, int(0.05 / max(once, 1e-9)))  # ~50 ms rounds: short enough to catch a quiet moment
    best, spent, rounds = 0.0, 0.0, 0
    while rounds < 3 or spent < seconds:
        start = clock.now()
        for _ in range(per_round):
            torch.matmul(a, b, out=out)
        elapsed = clock.now() - start
        best = max(best, 2 * size ** 3 * per_round / elapsed)
        spent, rounds = spent + elapsed, rounds + 1
    return best
