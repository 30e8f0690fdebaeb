"""Opt-in `torch.compile` of the DiT blocks' inference path (`WanDiT.compile_blocks`).

Around its self-attention a block runs a chain of small ops (modulated norms, the q/k RMS
norms, RoPE, gated residuals, cross-attention, the FFN's activation) that eager PyTorch runs as
separate kernels, each a pass over memory; at streaming sizes (192 query tokens a pass) they
cost as much as a third of the block. Here the block's work is written as two pure functions of
tensors, `block_pre` (up to the rotated q/k/v) and `block_post` (from the attention output to
the block's output), and each is compiled so those ops fuse. The self-attention backend call
between them stays eager: it reads and writes the KV cache.

Both functions compute the block's formula (`model.Block.forward`) with the eager path's own
formulas from `fused` (modulation terms, RMS norm, modulate, gated residual), so the dtype rules
are the same. RoPE is written with real arithmetic (the eager path multiplies complex numbers;
the compiler fuses real ops).

Degrades gracefully: if compiling or running a compiled function fails (no C++ compiler, an op
the compiler does not support), the same uncompiled function runs instead, the error is logged
once and kept in `BlockCompiler.error`, and the model goes on eagerly. An error that the eager
function raises too (bad input) is raised as it is.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F

from .fused import gated_add, modulate, modulation_terms, rms_norm

if TYPE_CHECKING:  # (model.py imports this module)
    from .model import Block

__all__ = ["block_pre", "block_post", "BlockCompiler", "block_tensors"]

log = logging.getLogger(__name__)


def _rms(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """Wan's q/k RMS norm over the full width (None: the model has no q/k norm)."""
    return x if weight is None else rms_norm(x, weight, eps)


def _modulated_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    """`modulate(LayerNorm(x), scale, shift)`, the LayerNorm without affine and in float32 (Wan's)."""
    return modulate(F.layer_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype), scale, shift)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on adjacent channel pairs of x `[B, H, L, Dh]`, cos/sin `[L, Dh/2]`, in float32."""
    pairs = x.float().unflatten(-1, (-1, 2))  # [B, H, L, Dh/2, 2]
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2).to(x.dtype)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)  # [B, L, D] -> [B, H, L, Dh]


def _merge(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2).flatten(2)  # [B, H, L, Dh] -> [B, L, D]


def block_pre(x: torch.Tensor, e0: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mod: torch.Tensor,
              w_qkv: torch.Tensor, b_qkv: torch.Tensor, norm_q: torch.Tensor | None, norm_k: torch.Tensor | None,
              eps: float, heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x `[B, F, S, D]` -> self-attention q, k (normed and rotated), v, each `[B, H, F*S, Dh]`."""
    shift1, scale1 = modulation_terms(mod, e0)[:2]
    h = _modulated_norm(x, scale1, shift1, eps).flatten(1, 2)  # [B, F*S, D]
    q, k, v = F.linear(h, w_qkv, b_qkv).chunk(3, dim=-1)
    q, k = _heads(_rms(q, norm_q, eps), heads), _heads(_rms(k, norm_k, eps), heads)
    return _rotate(q, cos, sin), _rotate(k, cos, sin), _heads(v, heads)


def block_post(x: torch.Tensor, y: torch.Tensor, e0: torch.Tensor, text_k: torch.Tensor, text_v: torch.Tensor,
               mod: torch.Tensor, w_o: torch.Tensor, b_o: torch.Tensor, norm3_w: torch.Tensor | None,
               norm3_b: torch.Tensor | None, w_cq: torch.Tensor, b_cq: torch.Tensor, norm_cq: torch.Tensor | None,
               w_co: torch.Tensor, b_co: torch.Tensor, w_up: torch.Tensor, b_up: torch.Tensor, w_down: torch.Tensor,
               b_down: torch.Tensor, eps: float, heads: int) -> torch.Tensor:
    """x `[B, F, S, D]`, the self-attention output y `[B, H, F*S, Dh]` -> the block's output `[B, F, S, D]`."""
    _, _, gate1, shift2, scale2, gate2 = modulation_terms(mod, e0)
    shape = x.shape
    x = gated_add(x, F.linear(_merge(y), w_o, b_o).view(shape), gate1)
    c = x.flatten(1, 2)  # [B, F*S, D]
    if norm3_w is not None:
        c = F.layer_norm(c.float(), (c.shape[-1],), norm3_w.float(), norm3_b.float(), eps).to(x.dtype)
    cq = _heads(_rms(F.linear(c, w_cq, b_cq), norm_cq, eps), heads)
    x = x + F.linear(_merge(F.scaled_dot_product_attention(cq, text_k, text_v)), w_co, b_co).view(shape)
    h = _modulated_norm(x, scale2, shift2, eps)
    ffn = F.linear(F.gelu(F.linear(h, w_up, b_up), approximate="tanh"), w_down, b_down)
    return gated_add(x, ffn, gate2)


def _weight(module) -> torch.Tensor | None:
    return getattr(module, "weight", None)  # (nn.Identity: None)


def block_tensors(blk: "Block") -> tuple[dict, dict]:
    """A block's parameters as keyword arguments of `block_pre` and `block_post`."""
    sa, ca = blk.self_attn, blk.cross_attn
    w_qkv, b_qkv = sa.fused_qkv()
    common = {"mod": blk.modulation, "eps": blk.norm1.eps, "heads": sa.num_heads}
    up, _, down = blk.ffn
    pre = {"w_qkv": w_qkv, "b_qkv": b_qkv, "norm_q": _weight(sa.norm_q), "norm_k": _weight(sa.norm_k), **common}
    post = {"w_o": sa.o.weight, "b_o": sa.o.bias, "norm3_w": _weight(blk.norm3),
            "norm3_b": getattr(blk.norm3, "bias", None), "w_cq": ca.q.weight, "b_cq": ca.q.bias,
            "norm_cq": _weight(ca.norm_q), "w_co": ca.o.weight, "b_co": ca.o.bias, "w_up": up.weight,
            "b_up": up.bias, "w_down": down.weight, "b_down": down.bias, **common}
    return pre, post


class BlockCompiler:
    """Runs DiT blocks at inference through the compiled `block_pre` / `block_post` (see the module doc).

    One compiled graph per input shape (a streamed chunk, a condition pass, a teacher clip); the
    first call of each shape compiles (tens of seconds on a 2-core CPU; torch keeps compiled
    kernels in its on-disk cache for later processes).
    """

    def __init__(self) -> None:
        self.pre = torch.compile(block_pre, dynamic=False, fullgraph=True)
        self.post = torch.compile(block_post, dynamic=False, fullgraph=True)
        self.error: str | None = None  # why compiled execution was given up, if it was

    def __deepcopy__(self, memo) -> "BlockCompiler":
        return BlockCompiler()  # (compiled functions are not copied; a copy compiles its own)

    def __call__(self, blk: "Block", x: torch.Tensor, e0: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                 text_k: torch.Tensor, text_v: torch.Tensor, attention, layer: int) -> torch.Tensor:
        pre, post = block_tensors(blk)
        q, k, v = self._run(block_pre, self.pre, x, e0, *rope, **pre)
        y = attention(layer, q, k, v)  # eager: the backend reads/writes the cache
        return self._run(block_post, self.post, x, y, e0, text_k, text_v, **post)

    def _run(self, eager: Callable, compiled: Callable, *args, **kwargs):
        if self.error is None:
            try:
                return compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a compiler failure of any kind: run eagerly instead
                out = eager(*args, **kwargs)  # (an input error raises here, as it would without compiling)
                first_line = (str(exc).strip().splitlines() or [""])[0]
                self.error = f"{type(exc).__name__}: {first_line}"
                log.warning("torch.compile of the DiT blocks failed; running them eagerly (%s)", self.error)
                return out
        return eager(*args, **kwargs)
