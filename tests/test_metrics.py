"""Descriptors separate what they must (colour, texture, orientation); continuity catches jumps."""
from __future__ import annotations

import torch

from fashionchameleon.lab.metrics.descriptors import describe, foreground_mask, head_mask
from fashionchameleon.lab.metrics.motion import motion_amplitude, switch_continuity
from fashionchameleon.lab.metrics.retrieval import retrieval_hit, retrieve

H = W = 32
BG = torch.full((3, H, W), -0.6)


def _figure(pattern: str, colour=(0.8, -0.5, -0.5), shift: int = 0, t: int = 4) -> torch.Tensor:
    """A rectangle 'garment' with a pattern on the plate: [T, 3, H, W]."""
    frames = BG[None].repeat(t, 1, 1, 1)
    y, x = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    c = torch.tensor(colour)[:, None, None]
    if pattern == "solid":
        tex = torch.ones(H, W)
    elif pattern == "hstripes":
        tex = ((y // 3) % 2).float()
    elif pattern == "vstripes":
        tex = ((x // 3) % 2).float()
    else:  # dots
        tex = (((x % 6) - 2.5) ** 2 + ((y % 6) - 2.5) ** 2 < 4).float()
    img = c * (0.4 + 0.6 * tex)  # the pattern modulates the garment colour
    for i in range(t):
        frames[i, :, 6 + shift:26 + shift, 8:24] = img[:, 6 + shift:26 + shift, 8:24]
    return frames


def test_foreground_is_what_differs_from_the_plate():
    f = _figure("solid")
    m = foreground_mask(f, BG)
    assert m.sum().item() == 4 * 20 * 16
    top = head_mask(m, 0.25)
    assert top.sum().item() == 4 * 5 * 16 and top[:, 6:11, 8:24].all()


def test_retrieval_separates_colour_and_texture():
    patterns = ["solid", "hstripes", "vstripes", "dots"]
    cands = [_figure(p) for p in patterns] + [_figure("solid", colour=(-0.5, 0.8, -0.5))]
    for i, p in enumerate(patterns):
        query = _figure(p, shift=1)  # moved a little: not the same pixels
        assert retrieval_hit(query, cands, BG, i), p
    assert retrieval_hit(_figure("solid", colour=(-0.5, 0.8, -0.5), shift=2), cands, BG, 4)


def test_retrieve_is_nearest():
    assert retrieve(torch.tensor([0.0, 1.0]), torch.tensor([[5.0, 5.0], [0.1, 0.9], [0.0, 3.0]])) == 1


def test_describe_is_bounded_and_deterministic():
    f = _figure("dots")
    d = describe(f, foreground_mask(f, BG))
    assert torch.equal(d, describe(f, foreground_mask(f, BG))) and d.abs().sum() < 10


def test_continuity_and_motion_amplitude():
    masks = torch.zeros(8, H, W, dtype=torch.bool)
    for i in range(8):
        masks[i, 6:26, 4 + i:20 + i] = True  # smooth motion, one pixel per frame
    assert abs(switch_continuity(masks, 4) - 1.0) < 1e-6
    jump = masks.clone()
    jump[4:] = torch.roll(jump[4:], 10, dims=2)
    assert switch_continuity(jump, 4) < 0.6
    frozen = masks[:1].repeat(8, 1, 1)
    assert motion_amplitude(frozen) == 0.0 and motion_amplitude(masks) > 0.05
