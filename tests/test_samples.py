"""The bundled sample set: the committed files are what the world draws, in the framing they record."""
from __future__ import annotations

import json

import pytest
import torch

from fashionchameleon.lab.samples import (SAMPLES_DIR, build_sample_set, export_sample_set, load_sample_inputs,
                                          sample_set_of, sample_world, worn_outfit_renders)


def test_the_committed_samples_are_the_export_of_the_world_they_record(tmp_path):
    index = json.loads((SAMPLES_DIR / "samples.json").read_text())
    export_sample_set(tmp_path, sample_set_of(SAMPLES_DIR).world)
    assert json.loads((tmp_path / "samples.json").read_text()) == index
    refs, outfits, prompt = load_sample_inputs(SAMPLES_DIR)
    again, outfits_again, prompt_again = load_sample_inputs(tmp_path)
    assert prompt == prompt_again and (refs - again).abs().max() < 1e-6
    for a, b in zip(outfits, outfits_again):
        assert sorted(a) == sorted(b) and all((a[k] - b[k]).abs().max() < 1e-6 for k in a)
    assert list(refs.shape[-2:]) == [index["height"], index["width"]]


def test_a_portrait_export_records_its_framing_and_its_ground_truth_follows(tmp_path):
    world = sample_world("fashion")
    export_sample_set(tmp_path, world)
    index = json.loads((tmp_path / "samples.json").read_text())
    assert (index["framing"], index["height"], index["width"]) == ("fashion", 144, 112)
    refs, outfits, _ = load_sample_inputs(tmp_path)
    assert refs.shape == (2, 3, 144, 112) and outfits[0]["upper"].shape == (3, 144, 112)
    renders, plate = worn_outfit_renders(3, tmp_path)
    assert len(renders) == 3 and renders[0].shape == (3, 3, 144, 112) and plate.shape == (3, 144, 112)
    # the same person and outfits as the square set, only framed closer: the outfits are one draw
    square = build_sample_set()
    assert [sorted(o) for o in square.outfits] == index["outfits"]
    assert build_sample_set(world).outfits == square.outfits


def test_ground_truth_renders_change_with_each_switch_and_keep_the_person():
    renders, plate = worn_outfit_renders(2)
    # outfit 2 changes upper and lower, outfit 3 only the upper: every render differs from the last
    for a, b in zip(renders, renders[1:]):
        assert (a - b).abs().amax() > 0.2
    # the same person on the same plate: the corner (background in the fixed full-body camera) agrees
    assert all(torch.equal(r[:, :, :4, :4], renders[0][:, :, :4, :4]) for r in renders)
    assert torch.allclose(renders[0][0, :, :4, :4], plate[:, :4, :4], atol=1e-6)


def test_sample_world_refuses_an_unknown_framing():
    with pytest.raises(ValueError, match="framing"):
        sample_world("nobody")


def test_the_bundled_samples_are_drawn_in_the_world_of_the_shipped_weights():
    from fashionchameleon.lab.weights_world import weights_world
    from fashionchameleon.runtime.embedded import WEIGHTS_DIR

    recorded = weights_world(WEIGHTS_DIR)
    framing = recorded[0]["framing"] if recorded else "full_body"
    assert json.loads((SAMPLES_DIR / "samples.json").read_text())["framing"] == framing
