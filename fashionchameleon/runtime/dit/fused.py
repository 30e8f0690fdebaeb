"""Fused forms of the DiT block's small ops, for the CPU streaming hot path.

Each function computes exactly its plain formula (the docstring says which) and takes the fused
route only where it is measured to pay: fp32 on the CPU, at inference. Everywhere else (training,
GPU, bf16/fp16, torch builds without oneDNN) it runs the plain ops. `tests/test_fast_paths.py`
checks every route against its formula.
"""
from __future__ import annotations

import functools
import math
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["modulation_terms", "rms_norm", "modulate", "modulated_norm", "gated_add", "gelu_tanh_", "feed_forward",
           "ffn_route", "FFN_ROUTES", "FFN_ROUTE_ENV"]


def modulation_terms(mod: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A learned modulation `[1, K, D]` plus the time embedding `e` `[B, F|1, K, D]` (float32), split into
    its K terms, each `[B, F|1, 1, D]` float32 (a block: K = 6, shift1, scale1, gate1, shift2, scale2,
    gate2; the head: K = 2, shift, scale)."""
    return (mod.float() + e).unsqueeze(2).unbind(3)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Wan's RMS norm over the last axis times `weight`: one kernel in fp32, else normed in float32, cast back,
    then scaled."""
    if x.dtype == torch.float32 and weight.dtype == torch.float32:
        return F.rms_norm(x, weight.shape, weight, eps)
    return F.rms_norm(x.float(), weight.shape, eps=eps).to(x.dtype) * weight


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


FFN_ROUTE_ENV = "FASHIONCHAMELEON_FFN"  # "auto" (default: measured), "onednn" or "plain"


_GELU_A = 2.0 * math.sqrt(2.0 / math.pi)  # 2u = _GELU_A x + _GELU_B x^3 for u = sqrt(2/pi) (x + 0.044715 x^3)
_GELU_B = _GELU_A * 0.044715


def gelu_tanh_(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation, in place: `0.5 x (1 + tanh(u))` written as `x sigmoid(2u)` (the same
    function: 0.5 (1 + tanh(u)) = sigmoid(2u)). For fp32 inference: torch's tanh is slow on some CPUs (AVX2:
    ~2.5x the time of this form), while sigmoid is one fast vectorised kernel; one temporary, no grad."""
    t = x * x
    t.mul_(_GELU_B).add_(_GELU_A).mul_(x).sigmoid_()
    return x.mul_(t)


def _plain_ffn(ffn: nn.Sequential, x2d: torch.Tensor) -> torch.Tensor:
    return ffn(x2d)


def _sigmoid_ffn(ffn: nn.Sequential, x2d: torch.Tensor) -> torch.Tensor:
    up, _, down = ffn
    return down(gelu_tanh_(up(x2d)))


def _onednn_ffn(ffn: nn.Sequential, x2d: torch.Tensor) -> torch.Tensor:
    up, _, down = ffn
    fused = torch.ops.mkldnn._linear_pointwise
    hidden = fused(x2d, up.weight, up.bias, "gelu", [], "tanh")  # [N, ffn_dim]
    return fused(hidden, down.weight, down.bias, "none", [], "")


FFN_ROUTES = {"plain": _plain_ffn, "sigmoid": _sigmoid_ffn, "onednn": _onednn_ffn}
_chosen: dict[tuple[int, ...], str] = {}  # (rows, dim, ffn_dim, threads) -> the faster route, measured once


def _timed(route, ffn: nn.Sequential, x2d: torch.Tensor, repeats: int) -> float:
    route(ffn, x2d)  # warm-up (kernel selection, first-touch pages)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        route(ffn, x2d)
        best = min(best, time.perf_counter() - start)
    return best


def ffn_route(ffn: nn.Sequential, x2d: torch.Tensor, repeats: int = 3) -> str:
    """The FFN route for this shape and thread count: forced by `FASHIONCHAMELEON_FFN`, else the fastest of
    "plain", "sigmoid" (the modules' linears around `gelu_tanh_`) and "onednn" (where this torch has it),
    measured on the first input of the shape (best of `repeats`, a few ms once).

    Which wins depends on the CPU: oneDNN's fused GELU saved ~20 % of the FFN on an AVX-512 Xeon
    and cost ~20 % on an AVX2 EPYC, so it is measured rather than assumed.
    """
    forced = os.environ.get(FFN_ROUTE_ENV, "auto").strip().lower()
    if forced in FFN_ROUTES:
        return "plain" if forced == "onednn" and not _onednn_linear() else forced  # (a build without oneDNN)
    if forced != "auto":
        raise ValueError(f"{FFN_ROUTE_ENV}={forced!r}: use auto, {', '.join(FFN_ROUTES)}")
    key = (x2d.shape[0], x2d.shape[1], ffn[0].out_features, torch.get_num_threads())
    if key not in _chosen:
        routes = [name for name in FFN_ROUTES if name != "onednn" or _onednn_linear()]
        times = {name: _timed(FFN_ROUTES[name], ffn, x2d, repeats) for name in routes}
        _chosen[key] = min(times, key=times.get)
    return _chosen[key]


def feed_forward(ffn: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`ffn` = (Linear, GELU-tanh, Linear) on x `[..., D]`.

    At fp32 CPU inference the fastest route (`ffn_route`): the modules; the linears around the in-place
    sigmoid form of the GELU (`gelu_tanh_`); or one oneDNN kernel for the up-projection with its GELU
    and another for the down-projection (no separate activation pass, no bias copies). Elsewhere
    (training, GPU, other dtypes) the modules.
    """
    if (torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32
            or ffn[0].weight.dtype != torch.float32):
        return ffn(x)
    x2d = x.reshape(-1, x.shape[-1])  # [N, D]
    return FFN_ROUTES[ffn_route(ffn, x2d)](ffn, x2d).view(*x.shape[:-1], -1)
