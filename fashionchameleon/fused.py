"""Fused forms of the DiT block's small ops, for the CPU streaming hot path.

Each function computes exactly its plain formula (the docstring says which) and takes the fused
route only where it is measured to pay: fp32 on the CPU, at inference. Everywhere else (training,
GPU, bf16/fp16, torch builds without oneDNN) it runs the plain ops. `tests/test_fast_paths.py`
checks every route against its formula.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["modulate", "modulated_norm", "gated_add", "feed_forward"]


def modulate(normed: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """`normed x (1 + scale) + shift` in float32 (scale/shift are float32), returned in `normed`'s dtype."""
    if normed.dtype == torch.float32:
        return torch.addcmul(shift, normed, 1 + scale)  # one kernel
    return (normed.float() * (1 + scale) + shift).to(normed.dtype)


def modulated_norm(norm: nn.LayerNorm, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """`modulate(norm(x), scale, shift)` for a LayerNorm without affine; one kernel when every token shares
    the modulation (batch 1, scale/shift `[1, 1, 1, D]`: a chunk whose frames share a timestep), in fp32."""
    if x.dtype == torch.float32 and norm.weight is None and scale.shape[:2] == (1, 1) and shift.shape[:2] == (1, 1):
        d = x.shape[-1]
        return F.layer_norm(x, (d,), (1 + scale).reshape(d), shift.reshape(d), norm.eps)
    return modulate(norm(x), scale, shift)


def gated_add(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """The residual update `x + y x gate`, the product in float32 (gate is float32), in `x`'s dtype."""
    if x.dtype == torch.float32 and y.dtype == torch.float32:
        return torch.addcmul(x, y, gate)
    return x + (y.float() * gate).to(x.dtype)


@functools.lru_cache(maxsize=None)
def _onednn_linear() -> bool:
    """Whether this torch has oneDNN's fused linear + activation kernel (x86 CPU builds do)."""
    try:
        torch.ops.mkldnn._linear_pointwise(torch.zeros(1, 2), torch.zeros(2, 2), torch.zeros(2), "gelu", [], "tanh")
        return True
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def feed_forward(ffn: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`ffn` = (Linear, GELU-tanh, Linear) on x `[..., D]`.

    At fp32 CPU inference, one oneDNN kernel does the up-projection with its GELU and another the
    down-projection (the FFN ~20 % faster on a 2-core CPU: no separate activation pass, no bias
    copies); elsewhere (training, GPU, other dtypes, builds without oneDNN) the plain modules.
    """
    up, _, down = ffn
    if (torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32
            or up.weight.dtype != torch.float32 or not _onednn_linear()):
        return ffn(x)
    fused = torch.ops.mkldnn._linear_pointwise
    hidden = fused(x.reshape(-1, x.shape[-1]), up.weight, up.bias, "gelu", [], "tanh")  # [N, ffn_dim]
    return fused(hidden, down.weight, down.bias, "none", [], "").view(*x.shape[:-1], -1)
