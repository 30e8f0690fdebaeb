"""Garment layouts of the world's flat-lays: "body" lays each garment where it is worn in the portrait world."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fashionchameleon.lab.synthetic import BODY_BOXES, WorldConfig, flat_lay, laid_out, make_sample, plan_sample

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
    for kind, box in BODY_BOXES.items():
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
    ink = lambda img: (img < 0.99).any(dim=0)  # noqa: E731
    assert torch.equal(ink(full), ink(upper) | ink(lower))
    assert torch.equal(laid_out(g, "upper", (144, 112), "frame"), flat_lay(g["upper"], (144, 112)))


def test_an_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="garment_layout"):
        WorldConfig(garment_layout="floor")
    with pytest.raises(ValueError, match="garment layout"):
        laid_out({}, "upper", 64, "floor")
