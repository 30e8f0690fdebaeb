"""Samplers against an oracle whose velocity field is exact for a one-point data distribution.

If every sample of the data is x*, the ideal flow-matching velocity at x_t is (x_t - x*) / sigma;
the Euler teacher must land on x*, and the few-step student must predict x0 = x* at every step.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

from fashionchameleon.runtime.stream.cache import CacheLayout, KVCache
from fashionchameleon.runtime.dit.model import TextKV
from fashionchameleon.runtime.stream.sampler import denoise_chunk, null_garments, sample_teacher
from fashionchameleon.runtime.stream.schedule import FlowMatchSchedule


class Oracle(torch.nn.Module):
    """Stands in for WanDiT: returns the exact velocity toward `target` for the video frames."""

    def __init__(self, target: torch.Tensor, n_cond: int) -> None:
        super().__init__()
        self.target, self.n_cond, self.calls = target, n_cond, []
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    cfg = SimpleNamespace(garment_hint=0)  # (no garment hint input, as WanDiT's config says)
    device = property(lambda self: self.dummy.device)
    dtype = property(lambda self: self.dummy.dtype)

    def text_kv(self, context: torch.Tensor) -> TextKV:
        return TextKV([context], [context])

    def forward(self, x, t, context, positions, attention=None, hint=None):
        self.calls.append((x.shape[2], t[0, -1].item(), x.shape[0]))
        sigma = (t / 1000.0)[:, None, :, None, None].clamp_min(1e-6)
        if x.shape[2] == self.target.shape[2]:  # student chunk: no conditions in the input
            return (x - self.target) / sigma
        v = (x - torch.cat([x[:, :, :self.n_cond], self.target.expand(x.shape[0], -1, -1, -1, -1)], 2)) / sigma
        return v

    def write_kv(self, x, t, context, positions, attention, hint=None):  # a KV pass: recorded, no output
        self.calls.append((x.shape[2], t[0, -1].item(), x.shape[0], "kv"))


def test_teacher_euler_lands_on_the_data_point_with_cfg():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(1, 4, 5, 2, 2, generator=g)
    oracle = Oracle(target, n_cond=2)
    out = sample_teacher(oracle, torch.randn(1, 4, 2, 2, 2, generator=g), torch.randn(1, 3, 8, generator=g),
                         torch.zeros(1, 3, 8), torch.randn(1, 4, 5, 2, 2, generator=g), FlowMatchSchedule(),
                         num_steps=30, cfg=3.0)
    assert (out - target).abs().max().item() < 1e-4
    assert len(oracle.calls) == 30 and oracle.calls[0][2] == 2  # one batched (cond, uncond) pass per step


def test_student_predicts_x0_every_step_and_writes_the_clean_pass():
    g = torch.Generator().manual_seed(1)
    target = torch.randn(1, 4, 3, 2, 2, generator=g)
    oracle = Oracle(target, n_cond=0)
    cache = KVCache(CacheLayout(), 1, 1, 2, tokens_per_frame=1)
    cache._state.valid[:2] = [True, True]  # conditions "prefilled" (the oracle ignores the cache)
    seen = []
    schedule = FlowMatchSchedule()
    x0 = denoise_chunk(oracle, cache, None, [torch.randn(1, 4, 3, 2, 2, generator=g) for _ in range(4)],
                       schedule.warp([1000, 750, 500, 250]), schedule, on_step=lambda i: seen.append(i.x0))
    assert len(seen) == 4 and all((s - target).abs().max() < 1e-4 for s in seen)
    assert (x0 - target).abs().max().item() < 1e-4
    assert [round(c[1], 1) for c in oracle.calls] == [1000.0, 937.5, 833.3, 625.0, 0.0]  # 4 steps + clean pass
    assert [c[3:] for c in oracle.calls] == [()] * 4 + [("kv",)]  # the clean pass only writes K/V
    assert cache.history_frames() == [2, 3, 4]  # committed as the sink


def test_null_garments_zero_only_the_dropped_rows_garment_frames():
    conds = torch.ones(3, 4, 3, 2, 2)  # [B, C, 1 reference + 2 garments, h, w]
    out = null_garments(conds, 1, torch.tensor([True, False, True]))
    assert out[:, :, 0].eq(1).all() and out[1].eq(1).all()  # references and the kept row untouched
    assert out[0, :, 1:].eq(0).all() and out[2, :, 1:].eq(0).all()
    assert conds.eq(1).all()  # a copy
    assert null_garments(conds, 2)[:, :, 2:].eq(0).all() and null_garments(conds, 2)[:, :, :2].eq(1).all()


def test_teacher_unconditional_rows_see_the_negative_conditions():
    g = torch.Generator().manual_seed(2)
    target = torch.randn(1, 4, 5, 2, 2, generator=g)
    oracle = Oracle(target, n_cond=2)
    seen = []
    forward = oracle.forward
    oracle.forward = lambda x, *a, **k: (seen.append(x[:, :, :2].clone()), forward(x, *a, **k))[1]
    conds = torch.randn(1, 4, 2, 2, 2, generator=g)
    text = torch.randn(1, 3, 8, generator=g)
    out = sample_teacher(oracle, conds, text, text, torch.randn(1, 4, 5, 2, 2, generator=g), FlowMatchSchedule(),
                         num_steps=4, cfg=2.0, negative_conditions=null_garments(conds, 1))
    assert (out - target).abs().max().item() < 1e-4  # both rows aim at the data point: guidance keeps it
    assert len(seen) == 4 and torch.equal(seen[0][0], conds[0])  # cond row: the conditions as given
    assert torch.equal(seen[0][1, :, :1], conds[0, :, :1]) and seen[0][1, :, 1:].eq(0).all()  # uncond: null garment
