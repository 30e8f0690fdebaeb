"""Garment layouts (`runtime.garment_layout`): "body" lays a flat-lay where the garment is worn (portrait world)."""
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


def _photo(seed: int) -> torch.Tensor:
    """A 16 x 16 'garment photo': a coloured block on white, off centre."""
    g = torch.Generator().manual_seed(seed)
    img = torch.ones(3, 16, 16)
    img[:, 1:7, 2:9] = torch.rand(3, 6, 7, generator=g) * 1.5 - 1
    return img


def test_a_body_layout_stream_encodes_its_garments_laid_out_and_a_frame_stream_as_given(micro_model, micro_codec,
                                                                                          micro_text):
    from fashionchameleon.runtime.config import StreamConfig
    from fashionchameleon.runtime.stream.session import StreamSession

    refs = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    garments = {"upper": _photo(2), "lower": _photo(3)}
    enc = lambda img: micro_codec.encode_image(img[None]).float()  # noqa: E731
    for layout in ("frame", "body"):
        cfg = StreamConfig(sink_frames=3, window_frames=6, garment_layout=layout)
        s = StreamSession(micro_model, micro_codec, micro_text, refs, garments, "a person walks", config=cfg)
        for slot, img in garments.items():
            assert torch.equal(s.garment_latents[slot], enc(lay_out(img, slot, layout)))
        s.request_switch("upper", _photo(4))
        s.step()
        assert torch.equal(s.garment_latents["upper"], enc(lay_out(_photo(4), "upper", layout)))
    assert not torch.equal(lay_out(_photo(2), "upper", "body"), _photo(2))


def test_laying_out_twice_changes_nothing_and_the_student_export_records_the_layout():
    from dataclasses import replace

    from fashionchameleon.lab.train.dmd_stage import DMDStageConfig
    from fashionchameleon.runtime.config import ConfigError, StreamConfig

    plan = plan_sample(7, WorldConfig(framing="fashion"))
    once = laid_out(dict(plan.garments), "upper", (144, 112), "body") * 2 - 1
    assert torch.allclose(lay_out(once, "upper", "body"), once, atol=1e-6)
    stream = replace(DMDStageConfig(), garment_layout="body").trained_stream
    assert stream.garment_layout == "body" and StreamConfig.from_json(stream.to_json()) == stream
    with pytest.raises(ConfigError, match="garment_layout"):
        StreamConfig(garment_layout="floor")
