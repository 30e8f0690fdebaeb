"""The procedural fashion world: determinism, splits, triplet structure, masks, motions, garments."""
from __future__ import annotations

import dataclasses
import json
import math
import re
import time

import numpy as np
import pytest
import torch

from fashionchameleon.lab.synthetic import (HELD_OUT_FAMILY, LOWER_SHAPES, MOTIONS, SPLITS, TEXTURE_FAMILIES,
                                        TRAIN_FAMILIES, UPPER_SHAPES, Checks, Garment, Logo, Solid, Stripes,
                                        WorldConfig, flat_lay, garment_from_image, make_sample, motion_prompt,
                                        outfit_flat_lay, outfit_from_image, plan_sample, pose_clip, render_background, render_clip,
                                        render_pose, render_texture, render_with, sample_garment, sample_motion,
                                        sample_person, split_of)
from fashionchameleon.lab.synthetic.motion import J, MotionParams
from fashionchameleon.lab.synthetic.world import render_plan
from fashionchameleon.runtime.encoders.text import MOTION_VOCAB

SMALL = WorldConfig(size=64, frames=8)
WHITE = torch.ones(3, 64, 64)


def _plan_with(seed: int, motion: str):
    """A train plan whose motion is replaced by `motion` (deterministic)."""
    plan = plan_sample(seed)
    params = sample_motion(np.random.default_rng(seed), motion)
    return dataclasses.replace(plan, motion=params)


def test_same_seed_gives_bit_identical_samples_and_different_seeds_differ():
    a, b, c = make_sample(11, SMALL), make_sample(11, SMALL), make_sample(12, SMALL)
    assert torch.equal(a.video, b.video) and torch.equal(a.references, b.references)
    assert torch.equal(a.background, b.background) and a.prompt == b.prompt and a.meta == b.meta
    assert a.garments.keys() == b.garments.keys()
    assert all(torch.equal(a.garments[k], b.garments[k]) for k in a.garments)
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert (a.video - c.video).abs().mean() > 0.05


def test_sample_shapes_and_ranges_at_every_size():
    for size, views in ((64, 1), (96, 2), (128, 2)):
        s = make_sample(3, WorldConfig(size=size, frames=5, max_reference_views=views))
        assert s.video.shape == (5, 3, size, size) and s.references.shape == (views, 3, size, size)
        assert s.background.shape == (3, size, size)
        for t in [s.video, s.references, s.background, *s.garments.values()]:
            assert t.dtype == torch.float32 and t.min() >= -1.0 and t.max() <= 1.0
        assert all(m.shape == (5, size, size) and m.dtype == torch.bool for m in s.masks.values())
        assert all(m.shape == (views, size, size) for m in s.reference_masks.values())
        assert set(s.garments) in ({"full"}, {"upper", "lower"})
        assert all(g.shape == (3, size, size) for g in s.garments.values())


def test_splits_are_disjoint_and_checked():
    ranges = sorted(SPLITS.values(), key=lambda r: r.start)
    assert all(a.stop <= b.start for a, b in zip(ranges[:-1], ranges[1:]))
    assert [split_of(s) for s in (0, 999_999, 1_000_000, 2_000_000)] == ["train", "train", "val", "test"]
    with pytest.raises(ValueError):
        split_of(1_500_000)


def test_config_and_meta_serialise():
    config = WorldConfig(size=96, frames=16, slots="full", motions=("walk", "turn"))
    assert WorldConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError):
        WorldConfig(slots="both")
    s = make_sample(8, SMALL)
    meta = json.loads(json.dumps(s.meta))
    assert meta["seed"] == 8 and meta["split"] == "train" and len(meta["facing"]) == SMALL.frames
    assert set(meta["garments"]) == {"upper", "lower"} and meta["motion"] in MOTIONS


def test_samples_do_not_depend_on_the_thread_count():
    threads = torch.get_num_threads()
    try:
        a = make_sample(13, SMALL)
        torch.set_num_threads(1)
        b = make_sample(13, SMALL)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a.video, b.video) and torch.equal(a.references, b.references)


def _families(plan) -> set[str]:
    out = set()
    for g in list(plan.garments.values()) + list(plan.reference_garments.values()):
        out |= {g.front.family, g.back.family}
    return out


def test_held_out_family_only_in_test():
    seeds = list(range(0, 150)) + list(range(1_000_000, 1_000_050))
    assert all(HELD_OUT_FAMILY not in _families(plan_sample(s)) for s in seeds)
    test_plans = [plan_sample(2_000_000 + i) for i in range(60)]
    worn = [g.front.family for p in test_plans for g in p.garments.values()]
    share = worn.count(HELD_OUT_FAMILY) / len(worn)
    assert 0.3 < share < 0.7
    assert HELD_OUT_FAMILY in TEXTURE_FAMILIES and HELD_OUT_FAMILY not in TRAIN_FAMILIES


def test_people_come_from_the_seed():
    a, b = plan_sample(5), plan_sample(2_000_005)
    assert a.person != b.person and plan_sample(5).person == a.person


def test_reference_is_frame_zero_redressed():
    for seed in range(6):
        plan = plan_sample(seed)
        for kind in ("upper", "lower"):
            ref, worn = plan.reference_garments[kind], plan.garments[kind]
            assert ref.kind == worn.kind == kind and ref != worn
        s = render_plan(plan, WorldConfig(size=64, frames=2))
        frame0, view0 = s.video[0], s.references[0]
        dressed = s.masks["upper"][0] | s.masks["lower"][0]
        dressed_ref = s.reference_masks["upper"][0] | s.reference_masks["lower"][0]
        diff = (frame0 - view0).abs().mean(0)  # [S, S]
        assert diff[dressed].mean() > 0.1
        outside = ~(dressed | dressed_ref)
        assert diff[outside].mean() < 0.02
        head = s.masks["head"][0]
        assert torch.equal(head, s.reference_masks["head"][0]) and diff[head].mean() < 0.02


def test_second_reference_view_is_turned():
    plan = plan_sample(4)
    s = render_plan(plan, WorldConfig(size=64, frames=1))
    assert s.references.shape[0] == 2
    turned = float(s.meta["facing"][0]) + plan.reference_turn
    assert abs(math.remainder(turned, 2 * math.pi)) > 1.0  # a side or back view
    assert (s.references[0] - s.references[1]).abs().mean() > 0.01


def test_flat_lays_are_products_on_white():
    rng = np.random.default_rng(0)
    for shape in UPPER_SHAPES + LOWER_SHAPES:
        kind = "upper" if shape in UPPER_SHAPES else "lower"
        g = sample_garment(rng, kind, TRAIN_FAMILIES, shape=shape)
        img = flat_lay(g, 64)
        assert img.shape == (3, 64, 64) and img.min() >= 0.0 and img.max() <= 1.0
        corners = img[:, [0, 0, -1, -1], [0, -1, 0, -1]]
        assert torch.all(corners == 1.0)
        assert (img[:, 24:40, 24:40] < 0.97).any(dim=0).float().mean() > 0.5
    up, low = sample_garment(rng, "upper", TRAIN_FAMILIES), sample_garment(rng, "lower", TRAIN_FAMILIES)
    outfit = outfit_flat_lay(up, low, 64)
    assert torch.all(outfit[:, [0, 0, -1, -1], [0, -1, 0, -1]] == 1.0)
    assert (outfit[:, :32] < 0.97).any() and (outfit[:, 32:] < 0.97).any()


def _mean_colour(clip, kind: str) -> torch.Tensor:
    m = clip.masks[kind]  # [T, S, S]
    return clip.video.permute(1, 0, 2, 3)[:, m].mean(1)  # [3]


def test_garment_from_its_flat_lay_dresses_like_the_garment():
    rng = np.random.default_rng(1)
    person = sample_person(rng)
    pose = pose_clip(person, MotionParams("idle"), 2)
    for shape in UPPER_SHAPES + LOWER_SHAPES:
        kind = "upper" if shape in UPPER_SHAPES else "lower"
        g = sample_garment(rng, kind, TRAIN_FAMILIES, shape=shape)
        g = dataclasses.replace(g, back=g.front)  # the flat-lay shows the front only
        rebuilt = garment_from_image(flat_lay(g, 96), kind)
        assert rebuilt.shape == g.shape
        other = sample_garment(rng, "lower" if kind == "upper" else "upper", TRAIN_FAMILIES)
        outfit = {kind: g, other.kind: other}
        a = render_pose(person, outfit, pose, WHITE)
        b = render_pose(person, {**outfit, kind: rebuilt}, pose, WHITE)
        assert (_mean_colour(a, kind) - _mean_colour(b, kind)).abs().max() < 0.04
        iou = (a.masks[kind] & b.masks[kind]).sum() / (a.masks[kind] | b.masks[kind]).sum()
        assert iou > 0.9


def test_outfit_image_splits_into_upper_and_lower():
    rng = np.random.default_rng(2)
    up = sample_garment(rng, "upper", ("solid",), shape="tshirt")
    low = sample_garment(rng, "lower", ("solid",), shape="skirt")
    a, b = outfit_from_image(outfit_flat_lay(up, low, 128))
    assert (a.kind, a.shape, b.kind, b.shape) == ("upper", "tshirt", "lower", "skirt")
    for got, want in ((a, up), (b, low)):
        mean = got.front.image.mean(dim=(1, 2))
        assert (mean - torch.tensor(want.front.colour)).abs().max() < 0.05


def test_masks_are_consistent_and_the_background_is_the_plate():
    s = make_sample(21, WorldConfig(size=64, frames=6))
    person = s.masks["person"]
    for k in ("upper", "lower", "skin", "hair", "head"):
        assert not (s.masks[k] & ~person).any()
    assert not (s.masks["upper"] & s.masks["lower"]).any()
    frac = person.float().mean()
    assert 0.03 < frac < 0.5
    assert s.masks["upper"].any() and s.masks["lower"].any() and s.masks["head"].any()
    plate = s.background[None].expand_as(s.video)
    outside = ~person[:, None].expand_as(s.video)
    assert torch.equal(s.video[outside], plate[outside])
    assert (s.video - plate).abs().sum(1)[person].gt(0).float().mean() > 0.9


def _wrap(a):
    return np.abs(np.remainder(a + np.pi, 2 * np.pi) - np.pi)


def test_turn_reaches_the_back_view_and_shows_the_back_texture():
    rng = np.random.default_rng(3)
    person = sample_person(rng)
    for i in range(8):
        pose = pose_clip(person, sample_motion(np.random.default_rng(i), "turn"), 48)
        assert _wrap(pose.facing - np.pi).min() < 0.15
    red, blue = (0.8, 0.1, 0.1), (0.1, 0.1, 0.8)
    shirt = Garment("upper", "tshirt", Solid(red), Solid(blue))
    trousers = sample_garment(rng, "lower", ("solid",), shape="trousers")
    idle = pose_clip(dataclasses.replace(person, hair_style="short"), MotionParams("idle"), 1)
    front = render_pose(person, {"upper": shirt, "lower": trousers}, idle, WHITE)
    back = render_pose(person, {"upper": shirt, "lower": trousers}, idle.turned(math.pi), WHITE)
    cf, cb = _mean_colour(front, "upper"), _mean_colour(back, "upper")
    assert cf[0] > cf[2] + 0.3 and cb[2] > cb[0] + 0.3
    # the face (eyes, mouth) is on the front of the head only: the back of the head is hair
    hair_front = front.masks["hair"][front.masks["head"]].float().mean()
    hair_back = back.masks["hair"][back.masks["head"]].float().mean()
    assert hair_back > hair_front + 0.2


def test_arms_are_in_front_of_the_torso_facing_the_camera_and_behind_it_from_the_back():
    rng = np.random.default_rng(4)
    person = sample_person(rng)
    green = Solid((0.2, 0.6, 0.2))
    outfit = {"upper": Garment("upper", "tanktop", green, green),
              "lower": sample_garment(rng, "lower", ("solid",), shape="trousers")}
    pose = pose_clip(person, MotionParams("idle"), 1)
    local = pose.local.copy()  # the wearer's right forearm crosses in front of the chest
    d = person.dims()
    shoulder = local[0, J["shoulder_r"]]
    local[0, J["elbow_r"]] = shoulder + (0.3 * d.shoulder_hw, 0.6 * d.upper_arm, 0.5 * d.upper_arm)
    local[0, J["wrist_r"]] = local[0, J["elbow_r"]] + (0.9 * d.forearm, 0.0, 0.0)
    crossed = dataclasses.replace(pose, local=local)
    front = render_pose(person, outfit, crossed, WHITE)
    back = render_pose(person, outfit, crossed.turned(math.pi), WHITE)
    plain = render_pose(person, outfit, pose, WHITE)
    # facing the camera the arm hides part of the shirt; from the back the torso hides the arm
    assert front.masks["upper"].sum() < 0.8 * plain.masks["upper"].sum()
    assert back.masks["upper"].sum() > 0.95 * plain.masks["upper"].sum()
    assert front.masks["skin"].sum() > back.masks["skin"].sum() + 10


def _silhouette_change(motion: str) -> float:
    changes = []
    for seed in range(2):
        plan = _plan_with(seed, motion)
        s = render_plan(plan, WorldConfig(size=64, frames=16, max_reference_views=1))
        m = s.masks["person"].float()
        changes.append((m[1:] - m[:-1]).abs().mean().item())
    return float(np.mean(changes))


def test_walk_moves_more_than_idle_and_squat_lowers_the_hips():
    assert _silhouette_change("walk") > 10.0 * _silhouette_change("idle")
    person = sample_person(np.random.default_rng(5))
    pose = pose_clip(person, sample_motion(np.random.default_rng(0), "squat"), 48)
    hip_y = pose.joints[:, J["pelvis"], 1]  # y grows downward
    assert hip_y.max() - hip_y.min() > 0.1 * person.height
    head_y = pose.joints[:, J["head"], 1]
    assert np.corrcoef(hip_y, head_y)[0, 1] > 0.9
    feet = pose.joints[:, [J["toe_r"], J["toe_l"]], 1]
    assert np.abs(feet - feet[0]).max() < 1e-6  # the feet stay on the floor


def test_prompts_use_only_the_motion_vocabulary():
    vocab = set(MOTION_VOCAB)
    rng = np.random.default_rng(6)
    seen = set()
    for name, spec in MOTIONS.items():
        for template in spec.prompts:
            for fill in ({"dir": "left", "pace": " slowly"}, {"dir": "right", "pace": ""}):
                assert set(re.findall(r"[a-z]+", template.format(**fill))) <= vocab, template
        for _ in range(20):
            params = sample_motion(rng, name)
            prompt = motion_prompt(rng, params)
            assert set(re.findall(r"[a-z]+", prompt)) <= vocab
            seen.add(prompt)
    assert len(seen) > 2 * len(MOTIONS)
    assert all(make_sample(s, SMALL).prompt for s in range(3))


def test_textures_are_distinct_families():
    a, b = (0.1, 0.1, 0.4), (0.9, 0.8, 0.2)
    horizontal = render_texture(Stripes((a, b), "horizontal", 0.3), 64)
    assert horizontal.std(dim=2).max() < 1e-6 and horizontal.std(dim=1).mean() > 0.2
    vertical = render_texture(Stripes((a, b), "vertical", 0.3), 64)
    assert torch.allclose(vertical, horizontal.transpose(1, 2))
    checks = render_texture(Checks((a, b), 0.4), 64)
    assert checks.std(dim=2).mean() > 0.2 and checks.std(dim=1).mean() > 0.2
    logo = render_texture(Logo((a, b), "star", (0.0, 0.0), 0.4), 64)
    glyph = (logo - torch.tensor(b)[:, None, None]).abs().sum(0) < 1e-6
    assert 0.03 < glyph.float().mean() < 0.3 and glyph[32, 32]
    solid = render_texture(Solid(a), 64)
    assert solid.std(dim=(1, 2)).max() < 1e-6


def test_identities_are_recognisable_from_head_and_skin_colours():
    """Nearest-neighbour identity retrieval across different clips of the same people."""
    def descriptor(clip) -> torch.Tensor:
        parts = []
        for k in ("head", "skin", "hair"):
            m = clip.masks[k]
            colours = clip.video.permute(1, 0, 2, 3)[:, m]
            parts.append(colours.mean(1) if colours.numel() else torch.zeros(3))
        return torch.cat(parts)

    people = [sample_person(np.random.default_rng(100 + i)) for i in range(10)]
    found = 0
    gallery, queries = [], []
    for i, person in enumerate(people):
        for store, seed in ((gallery, 0), (queries, 1)):
            rng = np.random.default_rng(1000 * i + seed)
            outfit = {k: sample_garment(rng, k, TRAIN_FAMILIES) for k in ("upper", "lower")}
            clip = render_clip(person, outfit, sample_motion(rng), WHITE, 4)
            store.append(descriptor(clip))
    g, q = torch.stack(gallery), torch.stack(queries)
    found = (torch.cdist(q, g).argmin(1) == torch.arange(len(people))).float().mean()
    assert found >= 0.9


def test_render_with_keeps_person_motion_background_and_references():
    seed = 31
    base = make_sample(seed, SMALL)
    plan = plan_sample(seed)
    new_upper = sample_garment(np.random.default_rng(9), "upper", ("stripes",))
    other = render_with(seed, {"upper": new_upper}, SMALL)
    assert torch.equal(other.references, base.references) and torch.equal(other.background, base.background)
    assert other.prompt == base.prompt and other.meta["garments"]["lower"] == base.meta["garments"]["lower"]
    assert other.meta["garments"]["upper"] == new_upper.describe() != base.meta["garments"]["upper"]
    head = base.masks["head"]
    assert torch.equal(head, other.masks["head"])
    assert (base.video - other.video).abs().mean(1)[head].max() < 1e-6
    assert (base.video - other.video).abs().mean(1)[other.masks["upper"]].mean() > 0.05
    with pytest.raises(ValueError):
        render_with(seed, {"upper": plan.garments["lower"]}, SMALL)


def test_render_speed():
    """48 frames at 128 px on one thread, as in a data-loader worker (generous bound: typically ~60 ms)."""
    plan = _plan_with(7, "walk")
    pose = pose_clip(plan.person, plan.motion, 48)
    plate = render_background(plan.background, 128)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy machine makes multi-threaded timings erratic
    try:
        render_pose(plan.person, plan.garments, pose, plate)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            render_pose(plan.person, plan.garments, pose, plate)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert min(times) < 0.5
