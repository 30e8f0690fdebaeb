"""Prompt encoder: the protocol, the motion vocabulary of the procedural world, and a tiny encoder.

A prompt encoder maps a batch of prompts to a context `[B, text_len, text_dim]` that the DiT
cross-attends to. The empty prompt "" is the unconditional (CFG-negative) prompt; the tiny
encoder zeroes pad positions, so "" encodes to all zeros, like Wan's zero-padded umT5 context.

Prompts describe motion and scene only, never garments or colours (as in the paper), so the
vocabulary holds motion/scene words; any other word maps to the unknown token.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConfigError, JsonConfig

__all__ = [
    "PromptEncoder",
    "MOTION_VOCAB",
    "PAD_ID",
    "UNK_ID",
    "tokenize",
    "TinyTextConfig",
    "TinyPromptEncoder",
]

PAD_ID = 0
UNK_ID = 1

# Word i of the vocabulary has token id i + 2 (0 = pad, 1 = unknown).
MOTION_VOCAB: tuple[str, ...] = (
    # subjects and articles
    "a", "an", "the", "person", "woman", "man", "model", "figure", "her", "his", "their",
    # walking and stepping
    "walk", "walks", "walking", "step", "steps", "stepping", "forward", "backward", "toward", "away",
    # turning and views
    "turn", "turns", "turning", "around", "spin", "spins", "spinning", "back", "front", "side", "sideways",
    "view", "facing", "faces",
    # arm and head gestures
    "wave", "waves", "waving", "hand", "hands", "arm", "arms", "raise", "raises", "raising", "lower", "lowers",
    "nod", "nods", "bow", "bows", "head", "looks",
    # body motions
    "sway", "sways", "swaying", "squat", "squats", "squatting", "jump", "jumps", "jumping", "pose", "poses",
    "posing", "shows", "showing", "body",
    # standing still
    "stand", "stands", "standing", "still", "idle", "place",
    # direction and pace
    "left", "right", "slowly", "quickly", "fast", "slow",
    # scene and connectives
    "camera", "in", "on", "at", "to", "from", "with", "and", "then", "while",
)


@runtime_checkable
class PromptEncoder(Protocol):
    """What the engine needs from a prompt encoder (the tiny one or an adapter for umT5)."""

    text_dim: int
    text_len: int

    def encode(self, prompts: list[str]) -> Tensor:
        """Prompts -> context `[B, text_len, text_dim]`; "" is the unconditional prompt."""
        ...


@functools.lru_cache(maxsize=8)
def _word_ids(vocab: tuple[str, ...]) -> dict[str, int]:
    return {word: i + 2 for i, word in enumerate(vocab)}


def tokenize(prompt: str, text_len: int, vocab: Sequence[str] = MOTION_VOCAB) -> list[int]:
    """Lowercase, split on non-letters, map words to ids (unknown -> 1), truncate/pad (0) to text_len."""
    ids = _word_ids(tuple(vocab))
    tokens = [ids.get(word, UNK_ID) for word in re.findall(r"[a-z]+", prompt.lower())][:text_len]
    return tokens + [PAD_ID] * (text_len - len(tokens))


@dataclass(frozen=True)
class TinyTextConfig(JsonConfig):
    """Hyper-parameters of `TinyPromptEncoder` (`text_dim`/`text_len` must match the DiT config)."""

    text_dim: int = 128
    text_len: int = 16
    width: int = 128
    layers: int = 1
    heads: int = 4
    mlp_ratio: int = 4
    vocab: tuple[str, ...] = MOTION_VOCAB

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab", tuple(str(w) for w in self.vocab))
        for name in ("text_dim", "text_len", "width", "heads", "mlp_ratio"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.layers < 0:
            raise ConfigError(f"layers must be non-negative, got {self.layers}")
        if self.width % self.heads:
            raise ConfigError(f"width {self.width} is not divisible by heads {self.heads}")
        bad = [w for w in self.vocab if not re.fullmatch(r"[a-z]+", w)]
        if bad:
            raise ConfigError(f"vocabulary words must be lowercase letters only (the tokenizer's units), got {bad[:5]}")
        dup = sorted({w for w in self.vocab if self.vocab.count(w) > 1})
        if dup:
            raise ConfigError(f"vocabulary has duplicate words {dup[:5]}")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + 2  # + pad + unk



class _EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, width: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))

    def forward(self, x: Tensor, attend: Tensor) -> Tensor:
        """x `[B, L, D]`; attend `[B, 1, 1, L]` bool, True where a key may be attended to."""
        b, n, d = x.shape
        # [B, L, 3D] -> 3 x [B, heads, L, D/heads]
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)  # [B, heads, L, D/heads]
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))  # -> [B, L, D]
        return x + self.mlp(self.norm2(x))


class TinyPromptEncoder(nn.Module):
    """Token + learned position embedding, `layers` pre-norm transformer layers, projection to text_dim.

    Pad keys are masked in attention and pad positions are zero in the output, so "" encodes to
    all zeros. Deterministic (no dropout); `encode` returns on the module's device and dtype.
    Default config: 228,864 parameters.
    """

    def __init__(self, config: TinyTextConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or TinyTextConfig()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos_embedding = nn.Parameter(torch.randn(cfg.text_len, cfg.width) * 0.02)
        self.layers = nn.ModuleList(_EncoderLayer(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.layers))
        self.norm_out = nn.LayerNorm(cfg.width)
        self.proj_out = nn.Linear(cfg.width, cfg.text_dim)

    @property
    def text_dim(self) -> int:
        return self.config.text_dim

    @property
    def text_len(self) -> int:
        return self.config.text_len

    def tokenize(self, prompts: Sequence[str]) -> Tensor:
        """Prompts -> token ids `[B, text_len]` (long, on the module's device)."""
        ids = [tokenize(p, self.text_len, self.config.vocab) for p in prompts]
        return torch.tensor(ids, dtype=torch.long, device=self.pos_embedding.device).view(len(ids), self.text_len)

    def forward(self, tokens: Tensor) -> Tensor:
        """Token ids `[B, text_len]` -> context `[B, text_len, text_dim]`, zero at pad positions."""
        keep = tokens != PAD_ID  # [B, L]
        # An all-pad row would mask every key (NaN in softmax); let it attend everywhere instead —
        # its output is zeroed below anyway.
        attend = keep | ~keep.any(dim=1, keepdim=True)
        attend = attend[:, None, None, :]  # [B, L] -> [B, 1, 1, L]
        x = self.token_embedding(tokens) + self.pos_embedding  # [B, L, width]
        for layer in self.layers:
            x = layer(x, attend)
        out = self.proj_out(self.norm_out(x))  # [B, L, text_dim]
        return torch.where(keep[..., None], out, torch.zeros((), dtype=out.dtype, device=out.device))

    def encode(self, prompts: Sequence[str] | str) -> Tensor:
        """Prompts -> `[B, text_len, text_dim]` on the module's device/dtype ("" -> all zeros)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        return self(self.tokenize(prompts))
