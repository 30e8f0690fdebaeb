"""Noise schedule numbers and attention-mask rules, cell by cell."""
from __future__ import annotations

import torch

from fashionchameleon.runtime.dit.attention import bidirectional_mask, block_causal_mask, expand_mask, teacher_forcing_mask
from fashionchameleon.runtime.stream.schedule import FlowMatchSchedule


def test_four_step_list_warps_onto_the_shift5_table():
    t = FlowMatchSchedule(shift=5.0).warp([1000, 750, 500, 250])
    assert torch.allclose(t, torch.tensor([1000.0, 937.5, 833.3333, 625.0], dtype=torch.float64), atol=1e-3)


def test_shift_one_is_the_identity_spacing():
    t = FlowMatchSchedule(shift=1.0).warp([1000, 750, 500, 250])
    assert torch.allclose(t, torch.tensor([1000.0, 750.0, 500.0, 250.0], dtype=torch.float64))


def test_add_noise_and_velocity_round_trip():
    s = FlowMatchSchedule()
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    xt = s.add_noise(x0, noise, 700.0)
    v = s.velocity_target(x0, noise)
    assert torch.allclose(xt, 0.3 * x0 + 0.7 * noise)
    assert torch.allclose(s.x0_from_velocity(xt, v, 700.0), x0, atol=1e-6)
    assert torch.allclose(s.velocity_from_x0(xt, x0, 700.0), v, atol=1e-5)


def test_many_step_timesteps_are_monotone_from_1000_to_0():
    ts = FlowMatchSchedule().sample_timesteps(30)
    assert ts.shape == (31,) and ts[0] == 1000 and ts[-1] == 0 and bool((ts[1:] < ts[:-1]).all())


def test_block_causal_rules():
    m = block_causal_mask(num_cond=2, num_video=6, chunk=3)
    assert m[:2, :2].all() and not m[:2, 2:].any()  # conditions see only conditions
    assert m[2:, :2].all()  # every video frame sees the conditions
    assert m[2:5, 2:5].all() and not m[2:5, 5:].any()  # chunk 0: itself only
    assert m[5:8, 2:8].all()  # chunk 1: chunks 0 and 1


def test_sink_window_rules():
    m = block_causal_mask(num_cond=1, num_video=12, chunk=3, sink_frames=3, window_frames=6)
    last = m[1 + 9]  # a frame of chunk 3
    assert last[0] and last[1:4].all()  # conditions and the sink
    assert not last[4:7].any()  # chunk 1 fell out of the window
    assert last[7:13].all()  # chunk 2 and itself


def test_teacher_forcing_mask_cell_by_cell():
    nc, nv, c = 2, 6, 3
    n = nc + nv
    m = teacher_forcing_mask(nc, nv, c)
    chunk = lambda i: (i - nc) // c  # noqa: E731 — chunk of a video index within a half

    def expected(q: int, k: int) -> bool:
        if q == k:
            return True
        q_noisy, k_noisy = q >= n, k >= n
        qi, ki = q - n * q_noisy, k - n * k_noisy
        q_cond, k_cond = qi < nc, ki < nc
        if q_cond:  # a condition (clean or noisy copy) sees the conditions of its own half only
            return k_cond and q_noisy == k_noisy
        if not q_noisy:  # clean chunk j: clean conditions and clean chunks <= j
            return not k_noisy and (k_cond or chunk(ki) <= chunk(qi))
        if k_noisy:  # noisy chunk j: its own noisy chunk only among noisy frames
            return not k_cond and chunk(ki) == chunk(qi)
        return k_cond or chunk(ki) < chunk(qi)  # clean conditions, clean chunks strictly before

    for q in range(2 * n):
        for k in range(2 * n):
            assert bool(m[q, k]) == expected(q, k), (q, k)


def test_bidirectional_and_expand():
    assert bidirectional_mask(4).all()
    e = expand_mask(torch.tensor([[True, False], [True, True]]), 2)
    assert e.tolist() == [[True, True, False, False]] * 2 + [[True] * 4] * 2
