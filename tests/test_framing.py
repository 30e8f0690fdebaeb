"""The world framed like fashion video: a portrait frame, a camera that follows the person, who fills it;
the default (full-body, square) world renders as before; the teacher trains on portrait batches."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fashionchameleon.lab.synthetic import (FRAMINGS, LOWER_SHAPES, UPPER_SHAPES, Checks, Dots, Logo, Stripes,
                                            WorldConfig, coarsened, flat_lay, garment_from_image, make_sample,
                                            outfit_flat_lay, outfit_from_image, plan_sample, pose_clip,
                                            render_background, render_plan, sample_background_spec, sample_garment)
from fashionchameleon.lab.synthetic.motion import J
from fashionchameleon.lab.synthetic.stats import TOKEN, frame_stats, tokens_per_frame
from fashionchameleon.lab.train.data import DataConfig, clip_batches
from fashionchameleon.lab.train.dit_stage import DiffusionStageConfig
from fashionchameleon.lab.train.teacher_stage import TeacherStage
from fashionchameleon.runtime.encoders.codec import TinyCodec, TinyCodecConfig

# one test-split clip per motion: turn, walk across, raise_arms, step_side, sway, walk in place, squat, wave
SEEDS = (2_000_000, 2_000_001, 2_000_003, 2_000_004, 2_000_006, 2_000_009, 2_000_012, 2_000_015)
GESTURES = ("wave", "raise_arms")  # the arms of these may leave a tight frame; the body never does
FASHION = WorldConfig(framing="fashion", frames=32, max_reference_views=2)

# the default world's samples (seed, size) whose signatures `data/default_world.json` keeps. They were first
# sha256 digests taken before the framings existed; float kernels differ between CPUs (AVX-512 against AVX2) in
# the last bits, so they became signatures compared with a tolerance, written on the same code
# (`PYTHONPATH=. python tests/test_framing.py` writes them again, after a deliberate change to the default world)
BEFORE = ((0, 128), (7, 128), (2_000_003, 128), (2_000_012, 128), (0, 64), (2_000_012, 64))
SIGNATURES = Path(__file__).parent / "data" / "default_world.json"


def _default_sample(seed: int, size: int):
    config = WorldConfig(frames=4) if size == 128 else WorldConfig(size=64, frames=4, slots="full")
    return config, make_sample(seed, config)


def _signature(s) -> dict:
    """What a sample must keep: every tensor's mean per leading slice (frame, channel) and its 4 x 4 block means
    (averaged over the slices), the prompt, and the meta less the framing keys added with the framings."""
    tensors = [s.video, s.references, s.background, *[s.garments[k] for k in sorted(s.garments)],
               *[s.masks[k] for k in sorted(s.masks)], *[s.reference_masks[k] for k in sorted(s.reference_masks)]]
    out = []
    for t in tensors:
        flat = t.float().reshape(-1, *t.shape[-2:])  # [N, H, W]
        blocks = torch.nn.functional.adaptive_avg_pool2d(flat[None], 4)[0].mean(0)  # [4, 4]
        out.append({"shape": list(t.shape), "slices": [round(v, 5) for v in flat.mean((1, 2)).tolist()],
                    "blocks": [round(v, 5) for v in blocks.flatten().tolist()]})
    meta = {k: v for k, v in s.meta.items() if k not in ("framing", "height", "width")}
    return {"tensors": out, "prompt": s.prompt, "meta": json.loads(json.dumps(meta, sort_keys=True))}


@pytest.fixture(scope="module")
def fashion():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [make_sample(seed, FASHION) for seed in SEEDS]
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("seed, size", BEFORE)
def test_the_default_world_renders_as_before(seed, size):
    config, s = _default_sample(seed, size)
    assert config.framing == "full_body" and config.frame_size == (size, size)
    want, got = json.loads(SIGNATURES.read_text())[f"{seed}-{size}"], _signature(s)
    assert (got["prompt"], got["meta"]) == (want["prompt"], want["meta"])
    assert [t["shape"] for t in got["tensors"]] == [t["shape"] for t in want["tensors"]]
    for a, b in zip(got["tensors"], want["tensors"]):  # float noise is ~1e-6; a moved limb or pattern is > 1e-2
        assert np.allclose(a["slices"], b["slices"], atol=2e-3) and np.allclose(a["blocks"], b["blocks"], atol=2e-3)
    assert (s.meta["framing"], s.meta["height"], s.meta["width"]) == ("full_body", size, size)


def test_fashion_frames_are_portrait_and_fit_the_token_budget(fashion):
    h, w = FASHION.frame_size
    assert (h, w) == (144, 112) and h > w and h % TOKEN == 0 and w % TOKEN == 0
    assert tokens_per_frame(h, w) == 63 <= 64
    for s in fashion:
        assert s.video.shape == (FASHION.frames, 3, h, w) and s.references.shape == (2, 3, h, w)
        assert s.background.shape == (3, h, w) and all(g.shape == (3, h, w) for g in s.garments.values())
        assert all(m.shape == (FASHION.frames, h, w) for m in s.masks.values())
        assert all(t.min() >= -1 and t.max() <= 1 for t in [s.video, s.references, *s.garments.values()])
        # flat-lays: product images on white in the same portrait frame
        for g in s.garments.values():
            assert torch.all(g[:, [0, 0, -1, -1], [0, -1, 0, -1]] == 1.0) and (g < 0.9).any()
    sized = WorldConfig(framing="fashion", height=160, width=96, frames=2)
    assert make_sample(SEEDS[0], sized).video.shape == (2, 3, 160, 96)
    assert WorldConfig.from_json(sized.to_json()) == sized
    with pytest.raises(ValueError, match="framing"):
        WorldConfig(framing="close_up")


def test_the_person_fills_the_frame(fashion):
    stats = [frame_stats(s.masks) for s in fashion]
    assert np.mean([st.share["person"] for st in stats]) >= 0.30
    assert min(st.person_height.min() for st in stats) >= 0.85  # every frame of every clip
    heads = [st.pixels["head"] for st in stats]
    assert np.mean(heads) >= 300 and min(heads) >= 270
    assert np.mean([st.tokens["upper"] for st in stats]) >= 6  # vs ~3 tokens in the full-body world
    full = [frame_stats(make_sample(seed, WorldConfig(frames=8)).masks) for seed in SEEDS[:3]]
    assert np.mean([st.share["person"] for st in full]) < 0.2  # the world this framing fixes


def test_the_person_never_leaves_the_frame(fashion):
    for s in fashion:
        st = frame_stats(s.masks)
        assert st.head_whole.all() and s.masks["person"].flatten(1).any(1).all()
        if s.meta["motion"] not in GESTURES:
            assert not (st.edges["left"] | st.edges["right"]).any(), s.meta["motion"]
        cols = s.masks["upper"].any(1).float()  # [T, W] the torso's columns
        centre = (cols * torch.arange(cols.shape[1])).sum(1) / cols.sum(1).clamp(min=1)
        assert (centre - cols.shape[1] / 2).abs().max() < 0.15 * cols.shape[1]


def test_the_camera_follows_a_walk_across(fashion):
    walk = fashion[SEEDS.index(2_000_001)]
    plan = plan_sample(2_000_001, FASHION)
    assert plan.motion.name == "walk" and plan.motion.travel != 0
    travel = np.ptp(pose_clip(plan.person, plan.motion, FASHION.frames).joints[:, J["pelvis"], 0])
    assert travel > 0.1  # world units: the person walks a tenth of the old frame ...
    head = walk.masks["head"].float()  # [T, H, W]
    centre = (head.sum(1) * torch.arange(head.shape[-1])).sum(1) / head.sum((1, 2))  # [T] mean column
    assert float(centre.max() - centre.min()) < 3.0  # ... and the head keeps its place in the frame
    assert abs(float(centre.mean()) - head.shape[-1] / 2) < 0.1 * head.shape[-1]
    # the plate is static: outside the person every frame is the background, as in the full-body world
    outside = ~walk.masks["person"][:, None].expand_as(walk.video)
    assert torch.equal(walk.video[outside], walk.background[None].expand_as(walk.video)[outside])


def test_the_reference_is_frame_zero_seen_by_the_same_camera(fashion):
    for s in fashion:
        head = s.masks["head"][0]
        assert torch.equal(head, s.reference_masks["head"][0])
        assert (s.video[0] - s.references[0]).abs().mean(0)[head].max() < 1e-6


def test_the_plan_is_the_full_body_plan_with_coarser_patterns():
    scale = FRAMINGS["fashion"].pattern_scale
    assert scale > 1 and FRAMINGS["full_body"].pattern_scale == 1
    for seed in SEEDS:
        a, b = plan_sample(seed), plan_sample(seed, FASHION)
        assert (a.person, a.motion, a.background, a.prompt, a.slots) == (b.person, b.motion, b.background, b.prompt,
                                                                         b.slots)
        assert all(coarsened(a.garments[k], scale) == b.garments[k] for k in a.garments)
        assert all(coarsened(a.reference_garments[k], scale) == b.reference_garments[k] for k in a.garments)
    stripes = Stripes(((0, 0, 0), (1, 1, 1)), period=0.2)
    assert coarsened(dataclasses.replace(plan_sample(0).garments["upper"], front=stripes, back=stripes),
                     1.5).front.period == pytest.approx(0.3)
    for spec in (Checks(((0, 0, 0), (1, 1, 1))), Dots(((0, 0, 0), (1, 1, 1))), Logo(((0, 0, 0), (1, 1, 1)))):
        g = dataclasses.replace(plan_sample(0).garments["upper"], front=spec, back=spec)
        assert (coarsened(g, 1.5) != g) == (not isinstance(spec, Logo))


def test_face_marks_grow_more_than_the_head_in_the_fashion_framing():
    changed, heads = {}, {}
    for framing in ("full_body", "fashion"):
        config = WorldConfig(framing=framing, frames=1, max_reference_views=1)
        plan = plan_sample(SEEDS[0], config)
        bare = dataclasses.replace(plan.person, glasses=False, mole=None)
        marked = dataclasses.replace(bare, glasses=True, mole=(0.42, 0.2))
        on, off = (render_plan(dataclasses.replace(plan, person=p), config) for p in (marked, bare))
        changed[framing] = int(((on.video - off.video).abs().amax(1) > 0.05).sum())
        heads[framing] = int(on.masks["head"].sum())
    # bolder glasses and mark: they grow more than the head does (the zoom alone would keep the ratio)
    assert changed["fashion"] / heads["fashion"] > 1.5 * changed["full_body"] / heads["full_body"]
    assert changed["fashion"] >= 60


def test_data_config_plumbs_the_framing_and_a_teacher_step_runs_on_portrait_batches():
    assert DataConfig().frame_size == (128, 128)
    cfg = DataConfig.from_json({"framing": "fashion", "frames": 4, "batch_size": 2, "seed": 1, "two_view_prob": 1.0})
    assert cfg.frame_size == (144, 112) and DataConfig.from_json(cfg.to_json()) == cfg
    assert DataConfig(source="manifest", size=96, height=160).frame_size == (160, 96)
    batches = clip_batches(cfg)
    assert batches.videos(0).shape == (2, 3, 4, 144, 112)
    torch.manual_seed(0)
    codec = TinyCodec(TinyCodecConfig(latent_channels=4, spatial_factor=8, temporal_factor=4, widths=(8, 8, 8)))
    batch = batches.latents(0, codec)
    assert batch.video.shape == (2, 4, 1, 18, 14)  # 9 x 7 tokens of 2 x 2 latent pixels
    assert batch.conditions.shape[-2:] == (18, 14) and batch.foreground.shape == (2, 1, 1, 18, 14)
    assert batch.reference_images.shape == (2, 3, 144, 112)
    micro = dict(dim=32, ffn_dim=64, num_heads=2, num_layers=2, in_dim=4, out_dim=4, text_dim=16, text_len=4,
                 freq_dim=32)
    stage = TeacherStage(DiffusionStageConfig(model=micro, text=dict(text_dim=16, text_len=4, width=16, layers=1,
                                                                     heads=2), foreground_weight=2.0),
                         lambda step: batch)
    assert stage.model.tokens_per_frame((18, 14)) == 63
    before = [p.detach().clone() for p in stage.model.parameters()]
    loss = stage.train_step(0)["loss"]
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, stage.model.parameters()))


def test_portrait_flat_lays_read_back_as_the_garment():
    rng = np.random.default_rng(0)
    for shape in UPPER_SHAPES + LOWER_SHAPES:
        kind = "upper" if shape in UPPER_SHAPES else "lower"
        g = sample_garment(rng, kind, ("solid",), shape=shape)
        assert garment_from_image(flat_lay(g, (144, 112)), kind).shape == shape
    up, low = sample_garment(rng, "upper", ("solid",), shape="tshirt"), sample_garment(rng, "lower", ("solid",),
                                                                                       shape="skirt")
    outfit = outfit_flat_lay(up, low, (144, 112))
    assert outfit.shape == (3, 144, 112) and [g.shape for g in outfit_from_image(outfit)] == ["tshirt", "skirt"]


def test_studio_plates_do_not_change_along_x():
    """What lets the panning camera keep one plate: the studio styles are constant along each row."""
    rng = np.random.default_rng(3)
    for style in ("solid", "gradient", "floor_wall"):
        spec = dataclasses.replace(sample_background_spec(rng), style=style)
        plate = render_background(spec, 144, 112)
        assert plate.shape == (3, 144, 112) and torch.equal(plate, plate[:, :, :1].expand_as(plate))
        assert torch.equal(render_background(spec, 96, 96), render_background(spec, 96))


if __name__ == "__main__":  # rewrite the default world's signatures (after a deliberate change to that world)
    SIGNATURES.parent.mkdir(exist_ok=True)
    SIGNATURES.write_text(json.dumps({f"{seed}-{size}": _signature(_default_sample(seed, size)[1])
                                      for seed, size in BEFORE}, indent=1) + "\n")
