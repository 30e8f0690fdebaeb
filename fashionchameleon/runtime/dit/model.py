"""The DiT, in the layout of the original Wan checkpoints (Wan2.1 / Wan2.2-TI2V).

Parameter names equal Wan's (`patch_embedding`, `text_embedding`, `time_embedding`,
`time_projection`, `blocks.N.{norm3,self_attn,cross_attn,ffn,modulation}`, `head.{head,modulation}`)
so a Wan2.2-TI2V-5B-layout state dict loads with `strict=True`.

FashionChameleon's in-context conditioning needs no extra parameters: reference view(s) and
garment slot(s) are clean latent frames at timestep 0 placed before the video frames, each with
its own temporal RoPE position. Timesteps are per frame (Wan2.2 takes one per token; all tokens
of a frame share one). The embedded model may add one input of its own (`ModelConfig.garment_hint`,
`garment_hint.py`): the garment slots laid where they are worn, patch-embedded by
`garment_embedding` (zero-initialised, no bias) and added to the tokens of the frames a `hint` covers.

How self-attention sees other tokens is delegated to an *attention backend* (`SelfAttention`
protocol): `FullSequence` attends within the given frames under a frame mask (teacher,
teacher forcing, training); `fashionchameleon.runtime.stream.cache.CacheAttention` writes the frames' keys and
values into a KV cache and attends over the cache (streaming).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .attention import attend, expand_mask
from ..config import ModelConfig
from .fused import feed_forward, gated_add, modulated_norm, modulation_terms, rms_norm
from .rope import apply_rope, rope_cos_sin

__all__ = ["WanDiT", "SelfAttention", "KVWriter", "FullSequence", "TextKV", "sinusoidal_embedding", "GROWN_PARAMETERS",
           "grown_keys"]

# parameters a model may have that an older checkpoint lacks: zero-initialised, so a model grown from that
# checkpoint computes what it computed (loaders keep the model's zeros for them)
GROWN_PARAMETERS = ("garment_embedding.weight",)


def grown_keys(state_dict: Mapping[str, Any], target: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The grown parameters of a module's `target` state dict that `state_dict` lacks, with the module's own
    (initial) values; a key may sit under a prefix (an EMA's `shadow.`)."""
    return {k: v for k, v in target.items()
            if k not in state_dict and any(k == g or k.endswith("." + g) for g in GROWN_PARAMETERS)}


class SelfAttention(Protocol):
    """Decides which keys/values a layer's queries see. q/k/v `[B, H, L, Dh]` (k already rotated)."""

    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor: ...


class KVWriter(Protocol):
    """A backend that keeps keys/values (a KV cache): `WanDiT.write_kv` needs only this from its last layer."""

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None: ...


@dataclass
class FullSequence:
    """Attend within the current frames; `frame_mask` `[F, F]` bool or None (= bidirectional)."""

    frame_mask: torch.Tensor | None = None
    tokens_per_frame: int = 1

    def __post_init__(self) -> None:
        self._mask = None if self.frame_mask is None else expand_mask(self.frame_mask, self.tokens_per_frame)

    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self._mask is not None and self._mask.device != q.device:
            self._mask = self._mask.to(q.device)  # moved once, reused by every layer
        return attend(q, k, v, self._mask)


@dataclass
class TextKV:
    """Cross-attention keys/values of a prompt, per layer: `[B, H, Lt, Dh]` each. Compute once per prompt."""

    k: list[torch.Tensor]
    v: list[torch.Tensor]

    def repeat(self, batch: int) -> "TextKV":
        rep = lambda t: t if t.shape[0] == batch else t.expand(batch, *t.shape[1:])  # noqa: E731
        return TextKV([rep(t) for t in self.k], [rep(t) for t in self.v])


def sinusoidal_embedding(dim: int, t: torch.Tensor) -> torch.Tensor:
    """Wan's 1-D timestep embedding: `[N] -> [N, dim]` as [cos | sin], computed in float64."""
    half = dim // 2
    t = t.to(torch.float64)
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    ang = torch.outer(t, freqs)  # [N, half]
    return torch.cat([ang.cos(), ang.sin()], dim=1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 (Wan's `WanLayerNorm`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


class Attention(nn.Module):
    """q/k/v/o projections with q/k RMS norm over the full width (Wan's layout)."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self._fused: tuple[tuple, torch.Tensor, torch.Tensor] | None = None  # (weights' identity, W_qkv, b_qkv)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b l (h d) -> b h l d", h=self.num_heads)

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x `[B, L, D]` -> q, k (normed, not rotated), v, each `[B, H, L, Dh]`.

        At inference the three projections run as one matmul against concatenated weights (cached
        until a weight changes: load, move, in-place update); in training, as three linears.
        """
        if torch.is_grad_enabled() or self.q.weight.is_inference():  # (inference tensors have no version to track)
            q, k, v = self.q(x), self.k(x), self.v(x)
        else:
            q, k, v = F.linear(x, *self.fused_qkv()).chunk(3, dim=-1)
        return self.heads(self.norm_q(q)), self.heads(self.norm_k(k)), self.heads(v)

    def fused_qkv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The q/k/v projections as one weight `[3D, D]` and bias `[3D]`, cached until a weight changes.

        Inference tensors (weights made under `torch.inference_mode`) have no version counter, so an
        in-place update could not be noticed: for them the concatenation is made afresh every call.
        """
        params = (self.q.weight, self.k.weight, self.v.weight, self.q.bias, self.k.bias, self.v.bias)
        if self.q.weight.is_inference():
            return torch.cat(params[:3]), torch.cat(params[3:])
        identity = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        if self._fused is None or self._fused[0] != identity:
            self._fused = (identity, torch.cat(params[:3]), torch.cat(params[3:]))
        return self._fused[1], self._fused[2]

    def project_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.norm_k(self.k(context))), self.heads(self.v(context))


class Block(nn.Module):
    """One DiT block: modulated self-attention, cross-attention to text, modulated FFN."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.norm1 = LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.self_attn = Attention(d, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm3 = LayerNorm(d, eps=cfg.eps, elementwise_affine=True) if cfg.cross_attn_norm else nn.Identity()
        self.cross_attn = Attention(d, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm2 = LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, d))
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], text_k: torch.Tensor,
                text_v: torch.Tensor, attention: SelfAttention, layer: int) -> torch.Tensor:
        # x [B, F, S, D]; e [B, F, 6, D] per-frame modulation (float32)
        shift1, scale1, gate1, shift2, scale2, gate2 = self._modulation(e)  # [B, F, 1, D] each
        b, f, s, d = x.shape
        h = modulated_norm(self.norm1, x, scale1, shift1)
        sa = self.self_attn
        q, k, v = sa.project_qkv(h.view(b, f * s, d))  # [B, H, F*S, Dh] each
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        y = sa.o(rearrange(attention(layer, q, k, v), "b h l d -> b l (h d)")).view(b, f, s, d)
        x = gated_add(x, y, gate1)

        ca = self.cross_attn
        cq = ca.heads(ca.norm_q(ca.q(self.norm3(x).view(b, f * s, d))))
        x = x + ca.o(rearrange(attend(cq, text_k, text_v), "b h l d -> b l (h d)")).view(b, f, s, d)

        h = modulated_norm(self.norm2, x, scale2, shift2)
        return gated_add(x, feed_forward(self.ffn, h), gate2)

    def _modulation(self, e: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # e [B, F, 6, D] (float32) -> shift1, scale1, gate1, shift2, scale2, gate2, each [B, F, 1, D]
        return modulation_terms(self.modulation, e)

    def write_kv(self, x: torch.Tensor, e: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                 attention: KVWriter, layer: int) -> None:
        """Only this block's self-attention keys/values into `attention` (what a KV pass keeps of the last block)."""
        shift1, scale1 = self._modulation(e)[:2]
        b, f, s, d = x.shape
        k, v = self.self_attn.project_kv(modulated_norm(self.norm1, x, scale1, shift1).view(b, f * s, d))
        attention.write(layer, apply_rope(k, *rope), v)


class Head(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = LayerNorm(cfg.dim, eps=cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, cfg.out_dim * math.prod(cfg.patch_size))
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        # x [B, F, S, D]; e [B, F, D] (the time embedding before the 6-way projection)
        shift, scale = modulation_terms(self.modulation, e.unsqueeze(2))  # [B, F, 1, D] each
        return self.head(modulated_norm(self.norm, x, scale, shift))


class WanDiT(nn.Module):
    """A Wan-layout video DiT with per-frame timesteps and pluggable self-attention."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.patch_embedding = nn.Conv3d(cfg.in_dim, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.head = Head(cfg)
        self.garment_embedding = (nn.Conv3d(cfg.garment_hint * cfg.in_dim, d, kernel_size=cfg.patch_size,
                                            stride=cfg.patch_size, bias=False) if cfg.garment_hint else None)
        self.reset_parameters()

    # ---------------------------------------------------------------- init
    def reset_parameters(self) -> None:
        """Wan's initialisation: xavier linears, small normal embeddings, a zero output head."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.flatten(1))
        nn.init.zeros_(self.patch_embedding.bias)
        for seq in (self.text_embedding, self.time_embedding):
            for m in seq:
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(self.head.head.weight)
        if self.garment_embedding is not None:
            nn.init.zeros_(self.garment_embedding.weight)  # grown onto a trained model, it changes nothing at first

    # ---------------------------------------------------------------- helpers
    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embedding.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.patch_embedding.weight.device

    def grid(self, latent_hw: tuple[int, int]) -> tuple[int, int]:
        _, ph, pw = self.cfg.patch_size
        h, w = latent_hw
        if h % ph or w % pw:
            raise ValueError(f"latent size {h}x{w} is not divisible by the patch size {ph}x{pw}")
        return h // ph, w // pw

    def tokens_per_frame(self, latent_hw: tuple[int, int]) -> int:
        gh, gw = self.grid(latent_hw)
        return gh * gw

    def text_kv(self, context: torch.Tensor) -> TextKV:
        """Per-layer cross-attention K/V of prompt features `[B, Lt, text_dim]`."""
        c = self.text_embedding(context.to(self.dtype))  # [B, Lt, D]
        ks, vs = zip(*(blk.cross_attn.project_kv(c) for blk in self.blocks))
        return TextKV(list(ks), list(vs))

    def time_modulation(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t `[B, F]` (0..1000) -> (e `[B, F, D]`, e0 `[B, F, 6, D]`), both float32.

        When every frame has the same timestep (a streamed chunk, a condition pass) the frame axis
        is 1 and broadcasts: one embedding instead of F, and one-kernel modulated norms.
        """
        if t.device.type == "cpu" and t.shape[1] > 1 and bool((t == t[:, :1]).all()):  # (no GPU sync)
            t = t[:, :1]
        b, f = t.shape
        emb = sinusoidal_embedding(self.cfg.freq_dim, t.reshape(-1)).to(self.dtype)  # [B*F, freq]
        e = self.time_embedding(emb)  # [B*F, D]
        e0 = self.time_projection(e).float().view(b, f, 6, self.cfg.dim)
        return e.float().view(b, f, self.cfg.dim), e0

    def _run_blocks(self, tokens: torch.Tensor, e0: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                    text: TextKV, attention: SelfAttention, count: int) -> torch.Tensor:
        """The first `count` blocks on tokens `[B, F, S, D]`."""
        for i, blk in enumerate(self.blocks[:count]):
            tokens = blk(tokens, e0, rope, text.k[i], text.v[i], attention, i)
        return tokens

    # ---------------------------------------------------------------- forward
    def _inputs(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | TextKV, positions: Sequence[int],
                hint: torch.Tensor | None = None):
        """Checked inputs -> (tokens `[B, F, S, D]`, e `[B, F|1, D]`, e0 `[B, F|1, 6, D]`, rope, TextKV, (gh, gw))."""
        b, _, f, h, w = x.shape
        if len(positions) != f:
            raise ValueError(f"got {len(positions)} positions for {f} frames")
        if t.shape != (b, f):
            raise ValueError(f"timesteps must be [B, F] = [{b}, {f}], got {list(t.shape)}")
        gh, gw = self.grid((h, w))
        text = context if isinstance(context, TextKV) else self.text_kv(context)
        tokens = self.patch_embedding(x.to(self.dtype))  # [B, D, F, gh, gw]
        # [B, F, S, D], made contiguous once: a permuted residual stream stays permuted through every
        # block's elementwise ops, and each LayerNorm would copy it (three copies a block)
        tokens = rearrange(tokens, "b d f h w -> b f (h w) d").contiguous()
        if hint is not None:
            tokens = tokens + self._hint_tokens(hint, x.shape)
        e, e0 = self.time_modulation(t.to(self.device))
        rope = rope_cos_sin(positions, (gh, gw), self.cfg.head_dim, self.cfg.rope_theta, self.device)
        return tokens, e, e0, rope, text.repeat(b), (gh, gw)

    def _hint_tokens(self, hint: torch.Tensor, x_shape: torch.Size) -> torch.Tensor:
        """hint `[B, C*slots, F|1, H, W]` -> its tokens `[B, F|1, S, D]` (checked against x's shape)."""
        if self.garment_embedding is None:
            raise ValueError("this model has no garment hint input (ModelConfig.garment_hint is 0); pass hint=None")
        b, _, f, h, w = x_shape
        want = self.cfg.garment_hint * self.cfg.in_dim
        if tuple(hint.shape[:2]) != (b, want) or hint.shape[2] not in (1, f) or tuple(hint.shape[3:]) != (h, w):
            raise ValueError(f"garment hint must be [{b}, {want}, 1 or {f}, {h}, {w}], got {list(hint.shape)}")
        return rearrange(self.garment_embedding(hint.to(self.dtype)), "b d f h w -> b f (h w) d")

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | TextKV, positions: Sequence[int],
                attention: SelfAttention | None = None, kv_only: bool = False,
                hint: torch.Tensor | None = None) -> torch.Tensor | None:
        """Predict the flow-matching velocity of every frame.

        x `[B, C, F, H, W]` latents (condition frames first), t `[B, F]` timesteps (0 for clean
        conditions), context prompt features `[B, Lt, text_dim]` or precomputed `TextKV`,
        positions: temporal RoPE index of each of the F frames. Returns `[B, C_out, F, H, W]`.

        `kv_only` (a KV pass, see `write_kv`): only write every layer's keys/values into
        `attention`, a backend that keeps them (a cache); returns None. Both kinds of pass go
        through the module call, so forward (pre-)hooks see every pass. `hint` `[B, C*slots, F|1, H, W]`:
        the laid-out garments per frame (zero on condition frames; `garment_hint.py`), for a model
        with `ModelConfig.garment_hint` slots; None adds nothing.
        """
        if kv_only and not hasattr(attention, "write"):  # refused before any work
            raise TypeError(f"a KV pass needs a backend that keeps keys/values (a cache), got "
                            f"{type(attention).__name__}")
        tokens, e, e0, rope, text, (gh, gw) = self._inputs(x, t, context, positions, hint)
        if kv_only:
            last = len(self.blocks) - 1
            tokens = self._run_blocks(tokens, e0, rope, text, attention, last)
            self.blocks[last].write_kv(tokens, e0, rope, attention, last)
            return None
        if attention is None:
            attention = FullSequence(None, gh * gw)
        tokens = self._run_blocks(tokens, e0, rope, text, attention, len(self.blocks))
        out = self.head(tokens, e)  # [B, F, S, p*q*r*C]
        pt, ph, pw = self.cfg.patch_size
        return rearrange(out, "b f (h w) (p q r c) -> b c (f p) (h q) (w r)", h=gh, w=gw, p=pt, q=ph, r=pw)

    def features(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | TextKV, positions: Sequence[int],
                 layer: int, hint: torch.Tensor | None = None) -> torch.Tensor:
        """The tokens `[B, F, S, D]` after block `layer` of a full (bidirectional) pass, the blocks after it
        not run: what a head on the network's features reads (the adversarial term of `lab/train/dmd_stage.py`)."""
        if not 0 <= layer < len(self.blocks):
            raise ValueError(f"layer must be in [0, {len(self.blocks)}), got {layer}")
        tokens, _, e0, rope, text, (gh, gw) = self._inputs(x, t, context, positions, hint)
        return self._run_blocks(tokens, e0, rope, text, FullSequence(None, gh * gw), layer + 1)

    def write_kv(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | TextKV, positions: Sequence[int],
                 attention: KVWriter, hint: torch.Tensor | None = None) -> None:
        """A KV pass: the frames' keys/values of every layer into `attention` (a cache), and nothing else.

        The same K/V as a full pass writes, without what no cache keeps: the last block's attention
        output, cross-attention and FFN, and the output head (a clean-context or condition pass).
        """
        self(x, t, context, positions, attention, kv_only=True, hint=hint)
