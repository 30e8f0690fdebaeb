"""The bundled sample inputs (demo and workflows), drawn deterministically from the world's test split.

A held-out person (reference photo, plus a back view), three outfits to switch through — the
second a full change, the third an upper-only change — and a photo of another person for
try-off. Because they come from the world, ground truth exists for every output the demo makes.
The set is drawn in one world framing (`sample_world`: the square full-body world or the portrait
fashion world), the one the shipped weights were trained on. `export_sample_set(dir, world)` writes
them as PNG files with a `samples.json` index that records the framing (committed under
`workflows/samples/`); `load_sample_inputs(dir)` reads them back, `sample_set_of(dir)` rebuilds the
set the files came from, and `worn_outfit_renders(frames)` renders the sample person in each outfit
as worn after each switch (the demo's and the benchmark's ground truth).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..runtime.files.paths import SAMPLES_DIR

if TYPE_CHECKING:  # the world is imported where it is used (importing this module renders nothing)
    from .synthetic import WorldConfig

__all__ = ["SampleSet", "sample_world", "build_sample_set", "sample_set_of", "export_sample_set", "load_sample_inputs",
           "worn_outfit_renders", "SAMPLE_SEED", "SAMPLES_DIR"]

SAMPLE_SEED = 2_000_012  # a test-split seed: a person and textures never seen in training


def sample_world(framing: str = "full_body", size: int = 128) -> WorldConfig:
    """The `WorldConfig` of the sample set's stills (one frame, upper and lower slots) in `framing`."""
    from .synthetic import WorldConfig

    return WorldConfig(size=size, frames=1, slots="upper_lower", framing=framing)


@dataclass
class SampleSet:
    seed: int
    world: WorldConfig  # the stills' world (`sample_world`); (H, W) = world.frame_size
    prompt: str
    reference: torch.Tensor  # [3, H, W] in [-1, 1]: the person, wearing something else
    reference_back: torch.Tensor  # [3, H, W]: a second view of the same outfit
    outfits: list[dict[str, object]]  # per outfit: {"upper": Garment, "lower": Garment} (the 3rd: upper only)
    tryoff_seed: int
    tryoff_person: torch.Tensor  # [3, H, W]: someone else wearing `tryoff_garment`
    tryoff_garment: object  # Garment (upper)

    def flat_lay(self, garment) -> torch.Tensor:
        """`[3, H, W]` in [-1, 1]: the garment laid flat at the set's frame size."""
        from .synthetic import flat_lay

        return flat_lay(garment, self.world.frame_size) * 2 - 1

    def render(self, garments: dict, frames: int):
        """The sample person's clip of `frames` frames in `garments` (a `Sample`; kinds not given as drawn)."""
        from .synthetic import render_with

        return render_with(self.seed, garments, dataclasses.replace(self.world, frames=frames))


def _other_garment(rng: np.random.Generator, kind: str, avoid: list) -> object:
    from .synthetic import TRAIN_FAMILIES, garments_differ, sample_garment

    for _ in range(64):
        g = sample_garment(rng, kind, TRAIN_FAMILIES + ("dots",))
        if all(garments_differ(a, g) for a in avoid):
            return g
    raise RuntimeError("could not draw a distinct garment")  # pragma: no cover - 64 tries always suffice


def build_sample_set(world: WorldConfig | None = None) -> SampleSet:
    """The sample set drawn in `world` (a `sample_world`; default the square full-body one)."""
    from .synthetic import make_sample, plan_sample, render_with

    cfg = world or sample_world()
    plan = plan_sample(SAMPLE_SEED, cfg)
    sample = make_sample(SAMPLE_SEED, cfg)
    rng = np.random.default_rng(SAMPLE_SEED)
    first = dict(plan.garments)
    worn = list(first.values()) + list(plan.reference_garments.values())
    second = {k: _other_garment(rng, k, worn + [first[k]]) for k in ("upper", "lower")}
    third = {"upper": _other_garment(rng, "upper", worn + list(second.values()))}
    tryoff_seed = SAMPLE_SEED + 1
    tryoff_garment = _other_garment(rng, "upper", worn + list(second.values()) + [third["upper"]])
    person = render_with(tryoff_seed, {"upper": tryoff_garment}, cfg).video[0]
    return SampleSet(SAMPLE_SEED, cfg, plan.prompt, sample.references[0], sample.references[-1],
                     [first, second, third], tryoff_seed, person, tryoff_garment)


def sample_set_of(samples: str | Path = SAMPLES_DIR) -> SampleSet:
    """The sample set the exported files in `samples` were written from (its world read from `samples.json`)."""
    index = json.loads((Path(samples) / "samples.json").read_text())
    world = sample_world(index.get("framing", "full_body"), int(index.get("size", 128)))
    return build_sample_set(world)


def export_sample_set(out_dir: str | Path, world: WorldConfig | None = None) -> list[Path]:
    """Write the sample PNGs and a `samples.json` index; returns the written paths."""
    from ..runtime.files.images import save_png

    s = build_sample_set(world)
    out = Path(out_dir)
    files = {"reference.png": s.reference, "reference_back.png": s.reference_back,
             "tryoff_person.png": s.tryoff_person}
    for i, outfit in enumerate(s.outfits, start=1):
        for kind, garment in outfit.items():
            files[f"garment{i}_{kind}.png"] = s.flat_lay(garment)
    written = [save_png(out / name, img) for name, img in files.items()]
    height, width = s.world.frame_size
    index = {"seed": s.seed, "framing": s.world.framing, "size": s.world.size, "height": height, "width": width,
             "prompt": s.prompt, "tryoff_seed": s.tryoff_seed,
             "outfits": [sorted(o) for o in s.outfits], "files": sorted(files)}
    (out / "samples.json").write_text(json.dumps(index, indent=2) + "\n")
    return written + [out / "samples.json"]


def load_sample_inputs(samples: str | Path = SAMPLES_DIR) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]], str]:
    """The exported sample files: references `[2, 3, H, W]` (front, back), per outfit {kind: flat-lay
    `[3, H, W]`}, and the prompt; images in [-1, 1]."""
    from ..runtime.files.images import load_image

    samples = Path(samples)
    index = json.loads((samples / "samples.json").read_text())
    refs = torch.stack([load_image(samples / "reference.png"), load_image(samples / "reference_back.png")])
    outfits = [{kind: load_image(samples / f"garment{i}_{kind}.png") for kind in kinds}
               for i, kinds in enumerate(index["outfits"], start=1)]
    return refs, outfits, index["prompt"]


def worn_outfit_renders(frames: int, samples: str | Path = SAMPLES_DIR) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Renders `[frames, 3, H, W]` of the sample person in what is worn after each switch, and the plate.

    Render i shows outfit 1 with outfits 2..i+1 put on over it (the third outfit changes only the
    upper garment, so the lower one of outfit 2 stays), on the sample's motion timeline from frame 0,
    in the world the files in `samples` were exported from.
    """
    s = sample_set_of(samples)
    worn, current = [], {}
    for outfit in s.outfits:
        current = {**current, **outfit}
        worn.append(dict(current))
    renders = [s.render(outfit, frames) for outfit in worn]
    return [r.video for r in renders], renders[0].background
