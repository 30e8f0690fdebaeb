"""Garment layouts (`runtime.garment_layout`): "body" lays each flat-lay where the garment is worn in the portrait world."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fashionchameleon.lab.synthetic import WorldConfig, flat_lay, laid_out, make_sample, plan_sample
from fashionchameleon.runtime.garment_layout import BODY_BOXES, ink_box, lay_out

SEEDS = range(12)


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


def _overlaps(layout: str) -> dict[str, float]:
    """Mean IoU between each slot's flat-lay ink and the garment's mask on the first frame."""
    cfg = WorldConfig(framing="fashion", frames=1, slots="upper_lower", garment_layout=layout)
    out = {"upper": [], "lower": []}
    for seed in SEEDS:
        s = make_sample(seed, cfg)
        for kind in out:
            ink = (s.garments[kind] < 0.98).any(dim=0)  # [-1, 1] images: white is 1
            out[kind].append(_iou(ink, s.masks[kind][0]))
    return {k: float(np.mean(v)) for k, v in out.items()}


def test_body_layout_lays_each_garment_over_where_it_is_worn():
    framed, body = _overlaps("frame"), _overlaps("body")
    for kind in ("upper", "lower"):
        assert body[kind] > 0.45 and body[kind] > framed[kind] + 0.15, (kind, framed, body)


def test_the_body_boxes_are_where_the_world_puts_the_garments():
    cfg = WorldConfig(framing="fashion", frames=1, slots="upper_lower")
    h, w = cfg.frame_size
    for kind in ("upper", "lower"):
        box = BODY_BOXES[kind]
        boxes = []
        for seed in range(40):
            ys, xs = torch.nonzero(make_sample(seed, cfg).masks[kind][0], as_tuple=True)
            boxes.append([ys.min() / h, (ys.max() + 1) / h, xs.min() / w, (xs.max() + 1) / w])
        assert np.allclose(np.mean(np.array(boxes, dtype=float), axis=0), box, atol=0.02), kind


def test_a_full_slot_sheet_holds_both_pieces_in_their_places_and_frame_is_unchanged():
    plan = plan_sample(5, WorldConfig(framing="fashion"))
    g = dict(plan.garments)
    full = laid_out(g, "full", (144, 112), "body")
    upper, lower = laid_out(g, "upper", (144, 112), "body"), laid_out(g, "lower", (144, 112), "body")
    # both pieces inside the union box, the top above the trousers
    t, b, _, _ = ink_box(full * 2 - 1)
    assert abs(t / 144 - BODY_BOXES["full"][0]) < 0.02 and abs(b / 144 - BODY_BOXES["full"][1]) < 0.02
    assert ink_box(upper * 2 - 1)[0] < ink_box(lower * 2 - 1)[0]
    assert torch.equal(laid_out(g, "upper", (144, 112), "frame"), flat_lay(g["upper"], (144, 112)))


def test_an_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="garment_layout"):
        WorldConfig(garment_layout="floor")
    with pytest.raises(ValueError, match="garment layout"):
        lay_out(torch.ones(3, 64, 64), "upper", "floor")
    with pytest.raises(ValueError, match="slot"):
        lay_out(torch.ones(3, 64, 64), "hat", "body")


def test_a_user_photo_is_laid_out_by_its_ink_whatever_its_margins():
    # the same garment photographed small in a corner and large in the middle lands in the same place
    garment = torch.full((3, 40, 30), -0.5)
    small, large = torch.ones(3, 144, 112), torch.ones(3, 144, 112)
    small[:, 5:25, 5:20] = -0.5
    large[:, 30:110, 26:86] = -0.5
    a, b = lay_out(small, "upper", "body"), lay_out(large, "upper", "body")
    assert ink_box(a) == ink_box(b)
    top, bottom = ink_box(a)[:2]
    assert (top, bottom) == (round(0.24 * 144), round(0.24 * 144) + round(0.40 * 144))
    assert torch.equal(lay_out(garment, "upper", "frame"), garment)
