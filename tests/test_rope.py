"""RoPE: the complex-multiply rotation equals rotating each channel pair by hand, in every layout."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.runtime.dit.rope import apply_rope, rope_cos_sin, shift_temporal


def _by_hand(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_rotation_matches_pairwise_formula(dtype):
    g = torch.Generator().manual_seed(0)
    cos, sin = rope_cos_sin([0, 3, 7], (2, 4), head_dim=16)  # [24, 8]
    flat = torch.randn(2, 24, 3 * 16, generator=g).to(dtype)  # [B, L, H*Dh], as a projection gives it
    x = flat.view(2, 24, 3, 16).transpose(1, 2)  # [B, H, L, Dh]: a strided view, not contiguous
    out = apply_rope(x, cos, sin)
    work = torch.promote_types(dtype, torch.float32)
    ref = _by_hand(x.to(work), cos.to(work), sin.to(work)).to(dtype)
    assert out.dtype == dtype and out.shape == x.shape
    torch.testing.assert_close(out, ref, rtol=1e-6 if dtype != torch.bfloat16 else 1e-2, atol=1e-6)
    odd_offset = torch.randn(1 + 2 * 3 * 24 * 16, generator=g)[1:].view(2, 3, 24, 16)  # storage offset 1
    torch.testing.assert_close(apply_rope(odd_offset, cos, sin), _by_hand(odd_offset, cos, sin))


def test_rotation_keeps_norms_and_passes_gradients():
    cos, sin = rope_cos_sin([5], (2, 2), head_dim=8)
    x = torch.randn(1, 2, 4, 8, requires_grad=True)
    out = apply_rope(x, cos, sin)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))
    out.sum().backward()
    torch.testing.assert_close(x.grad, _by_hand(torch.ones_like(x), cos, -sin))  # d/dx = the inverse rotation of 1


@pytest.mark.parametrize("delta", [-4, 3])
def test_shift_temporal_moves_rotated_keys_in_place(delta):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 8, 16, generator=g)  # [B, H, L = 2 frames x 2x2, Dh]
    start, moved = rope_cos_sin([6, 9], (2, 2), head_dim=16), rope_cos_sin([6 + delta, 9 + delta], (2, 2), head_dim=16)
    keys = apply_rope(x, *start)
    ptr = keys.data_ptr()
    shift_temporal(keys[:, :, 4:], delta, head_dim=16)  # only the second frame, through a view
    torch.testing.assert_close(keys[:, :, 4:], apply_rope(x, *moved)[:, :, 4:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(keys[:, :, :4], apply_rope(x, *start)[:, :, :4], rtol=0, atol=0)
    assert keys.data_ptr() == ptr
