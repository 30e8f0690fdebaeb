"""The hot path's fused kernels compute what the plain formulas say (fp32 fused, other dtypes plain)."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.runtime.dit.fused import gated_add, modulate
from fashionchameleon.runtime.dit.model import RMSNorm


def _g() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_modulate_and_gated_add_match_the_formulas(dtype):
    g = _g()
    x, y = torch.randn(1, 3, 8, 16, generator=g).to(dtype), torch.randn(1, 3, 8, 16, generator=g).to(dtype)
    scale, shift, gate = (torch.randn(1, 3, 1, 16, generator=g) for _ in range(3))  # float32, per frame
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=0, atol=0)
    out = modulate(x, scale, shift)
    assert out.dtype == dtype
    torch.testing.assert_close(out, (x.float() * (1 + scale) + shift).to(dtype), **tol)
    out = gated_add(x, y, gate)
    assert out.dtype == dtype
    torch.testing.assert_close(out, x + (y.float() * gate).to(dtype), **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_matches_the_formula(dtype):
    norm = RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(16, generator=_g()))
    norm = norm.to(dtype)
    x = torch.randn(2, 5, 16, generator=_g()).to(dtype)
    xf = x.float()
    ref = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(dtype) * norm.weight
    torch.testing.assert_close(norm(x), ref, rtol=1e-5 if dtype == torch.float32 else 1e-2, atol=1e-5)


def test_fused_qkv_at_inference_equals_three_projections_and_follows_weight_changes():
    from fashionchameleon.runtime.dit.model import Attention

    torch.manual_seed(0)
    attn = Attention(16, num_heads=2, qk_norm=True, eps=1e-6)
    x = torch.randn(1, 6, 16)
    three = attn.project_qkv(x)  # grad enabled: three linears
    with torch.no_grad():
        fused = attn.project_qkv(x)
        for a, b in zip(three, fused):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        attn.k.weight.mul_(2.0)  # an in-place update must reach the fused weights
        attn.load_state_dict({k: v.clone() for k, v in attn.state_dict().items()})
        after = attn.project_qkv(x)
    torch.testing.assert_close(after[1], attn.project_qkv(x)[1].detach(), rtol=1e-6, atol=1e-6)  # vs 3 linears
    assert "_fused" not in str(list(attn.state_dict()))  # no new state: Wan checkpoints load as before


def test_fused_qkv_of_inference_tensors_is_never_stale():
    from fashionchameleon.runtime.dit.model import Attention

    with torch.inference_mode():  # weights made here have no version counter to watch
        torch.manual_seed(0)
        attn = Attention(16, num_heads=2, qk_norm=True, eps=1e-6)
        w, _ = attn.fused_qkv()
        attn.k.weight.mul_(2.0)  # in place, invisible to a version check
        w2, b2 = attn.fused_qkv()
    torch.testing.assert_close(w2, torch.cat([attn.q.weight, attn.k.weight, attn.v.weight]))
    torch.testing.assert_close(b2, torch.cat([attn.q.bias, attn.k.bias, attn.v.bias]))
    assert not torch.equal(w, w2)


def _ffn() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(64, 16))


@pytest.mark.parametrize("route", ["auto", "onednn", "plain", "sigmoid"])
def test_fused_feed_forward_at_inference_equals_the_modules(route, monkeypatch):
    from fashionchameleon.runtime.dit.fused import FFN_ROUTE_ENV, _onednn_linear, feed_forward, ffn_route

    monkeypatch.setenv(FFN_ROUTE_ENV, route)
    ffn = _ffn()
    x = torch.randn(1, 3, 8, 16)
    plain = ffn(x)  # grad enabled: the modules
    with torch.no_grad():
        fast = feed_forward(ffn, x)
        chosen = ffn_route(ffn, x.reshape(-1, 16))
    assert fast.shape == x.shape
    torch.testing.assert_close(fast, plain.detach(), rtol=1e-5, atol=1e-5)
    assert chosen in ("onednn", "plain", "sigmoid") and (route == "auto" or chosen == route)
    if torch.backends.mkldnn.is_available():
        assert _onednn_linear()  # x86 CPU builds have it: every route is really compared


def test_gelu_sigmoid_form_is_the_tanh_gelu_in_place():
    from fashionchameleon.runtime.dit.fused import gelu_tanh_

    x = torch.cat([torch.linspace(-30, 30, 6001), torch.randn(4096) * 3])
    ref = torch.nn.functional.gelu(x.double(), approximate="tanh")
    y = x.clone()
    out = gelu_tanh_(y)
    assert out.data_ptr() == y.data_ptr()  # in place
    assert (out.double() - ref).abs().max() < 1e-6  # fp32 rounding; the erf GELU differs by ~5e-4 here
    assert (torch.nn.functional.gelu(x).double() - ref).abs().max() > 1e-4


def test_ffn_route_keeps_the_measured_faster_route_per_shape(monkeypatch):
    from fashionchameleon.runtime.dit import fused

    monkeypatch.delenv(fused.FFN_ROUTE_ENV, raising=False)
    monkeypatch.setattr(fused, "_chosen", {})
    calls = []

    fastest = {24: "_plain_ffn", 48: "_onednn_ffn", 96: "_sigmoid_ffn"}  # the winner per row count

    def fake_timed(route, ffn, x2d, repeats):
        calls.append(route.__name__)
        return 1.0 if route.__name__ == fastest[x2d.shape[0]] else 2.0

    monkeypatch.setattr(fused, "_timed", fake_timed)
    ffn = _ffn()
    with torch.no_grad():
        assert fused.ffn_route(ffn, torch.randn(24, 16)) == "plain"
        assert fused.ffn_route(ffn, torch.randn(48, 16)) == "onednn"
        assert fused.ffn_route(ffn, torch.randn(96, 16)) == "sigmoid"
        assert fused.ffn_route(ffn, torch.randn(24, 16)) == "plain"
    assert len(calls) == 9  # each shape measured once, every route
    monkeypatch.setattr(fused, "_chosen", {})
    monkeypatch.setattr(fused, "_onednn_linear", lambda: False)  # a build without oneDNN: never measured
    calls.clear()
    with torch.no_grad():
        assert fused.ffn_route(ffn, torch.randn(48, 16)) in ("plain", "sigmoid")
        monkeypatch.setenv(fused.FFN_ROUTE_ENV, "onednn")
        assert fused.ffn_route(ffn, torch.randn(48, 16)) == "plain"
    assert "_onednn_ffn" not in calls


def test_ffn_route_rejects_an_unknown_setting(monkeypatch):
    from fashionchameleon.runtime.dit import fused

    monkeypatch.setenv(fused.FFN_ROUTE_ENV, "fastest")
    with pytest.raises(ValueError, match="FASHIONCHAMELEON_FFN='fastest': use auto, plain, sigmoid, onednn"):
        fused.ffn_route(_ffn(), torch.randn(4, 16))


@pytest.mark.parametrize("frames", [1, 3])
def test_modulated_norm_matches_norm_then_modulate(frames):
    from fashionchameleon.runtime.dit.fused import modulated_norm
    from fashionchameleon.runtime.dit.model import LayerNorm

    g = _g()
    norm = LayerNorm(16, eps=1e-6, elementwise_affine=False)
    x = torch.randn(1, 3, 8, 16, generator=g)
    scale, shift = torch.randn(1, frames, 1, 16, generator=g), torch.randn(1, frames, 1, 16, generator=g)
    torch.testing.assert_close(modulated_norm(norm, x, scale, shift), modulate(norm(x), scale, shift),
                               rtol=1e-5, atol=1e-5)


def test_a_chunk_with_one_timestep_gets_one_embedding_and_the_same_output():
    from fashionchameleon.runtime.config import preset
    from fashionchameleon.runtime.dit.model import WanDiT

    torch.manual_seed(0)
    cfg = preset("tiny").replace(dim=32, ffn_dim=64, num_heads=2, num_layers=2, text_dim=16, text_len=4, freq_dim=32)
    model = WanDiT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # the zero-initialised head too: outputs depend on the path
        x, ctx = torch.randn(1, cfg.in_dim, 3, 4, 4), torch.randn(1, 4, 16)
        t = torch.full((1, 3), 750.0)
        e, e0 = model.time_modulation(t)
        assert e.shape[1] == 1 and e0.shape[1] == 1  # broadcast over the frames
        mixed = torch.tensor([[750.0, 750.0, 749.0]])
        assert model.time_modulation(mixed)[0].shape[1] == 3
        fast = model(x, t, ctx, [0, 1, 2])
        plain = model(x, t + torch.tensor([[0.0, 0.0, 1e-4]]), ctx, [0, 1, 2])  # per-frame path, ~same t
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)


def test_every_block_gets_a_contiguous_residual_stream():
    """The patch embedding's tokens are a permuted view; left so, every block's elementwise ops keep the
    permuted layout and each LayerNorm copies its input first (three copies a block, ~4 % of a chunk)."""
    from fashionchameleon.runtime.config import preset
    from fashionchameleon.runtime.dit.model import WanDiT

    torch.manual_seed(0)
    cfg = preset("tiny").replace(dim=32, ffn_dim=64, num_heads=2, num_layers=3, text_dim=16, text_len=4, freq_dim=32)
    model = WanDiT(cfg).eval()
    seen: list[bool] = []
    for blk in model.blocks:
        blk.register_forward_pre_hook(lambda _m, args: seen.append(args[0].is_contiguous()))
    with torch.no_grad():
        model(torch.randn(1, cfg.in_dim, 3, 4, 4), torch.full((1, 3), 500.0), torch.randn(1, 4, 16), [0, 1, 2])
    assert seen == [True] * cfg.num_layers
