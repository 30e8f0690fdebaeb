"""How well the shipped codec keeps each texture family and identity feature, in both framings (a check outside CI).

    OMP_NUM_THREADS=1 python tools/codec_textures.py                  # 30 test clips, weights/codec.safetensors
    OMP_NUM_THREADS=1 python tools/codec_textures.py --samples 8 --codec runs/x/codec.safetensors

Textures: for each of `--samples` test-split seeds and each texture family, both garments are
restyled to that family (`restyle`: same shape and dominant colour; patterns as coarse as the
framing draws them, `Framing.pattern_scale`) and the clip is rendered in each framing, so every
family is measured on the same people, poses and colours. The codec
encodes and decodes the video (`encode_video` / `decode`) and the flat-lays (`encode_image`,
the conditions); the table gives the mean L1 error (images in [0, 1]) inside the garment masks of
the video, inside the whole person, and over the flat-lays' garment pixels (not white).

Identity: for each feature (glasses, beard, mole, a bun, another hair colour) the clip is rendered
with and without it; "kept" is the share of the true difference the codec reproduces,
<rec_on - rec_off, on - off> / |on - off|^2 over the pixels the feature changes (1: all of it).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fashionchameleon.lab.synthetic import (FRAMINGS, SPLITS, TEXTURE_FAMILIES, WorldConfig, coarsened,  # noqa: E402
                                            plan_sample, render_plan, restyle)
from fashionchameleon.runtime.embedded import load_codec  # noqa: E402

FEATURES = {
    "glasses": lambda p: dataclasses.replace(p, glasses=True),
    "beard": lambda p: dataclasses.replace(p, beard=True),
    "mole": lambda p: dataclasses.replace(p, mole=(0.42, 0.2)),
    "bun": lambda p: dataclasses.replace(p, hair_style="bun"),
    "hair colour": lambda p: dataclasses.replace(p, hair=(0.85, 0.35, 0.6) if p.hair[0] < 0.5 else (0.06, 0.05, 0.05)),
}
BARE = {"glasses": dict(glasses=False), "beard": dict(beard=False), "mole": dict(mole=None),
        "bun": dict(hair_style="short"), "hair colour": {}}


@torch.no_grad()
def _round_trip_video(codec, video: torch.Tensor) -> torch.Tensor:
    """`[T, 3, H, W]` in [-1, 1] -> the codec's reconstruction, same shape."""
    return codec.decode(codec.encode_video(video.transpose(0, 1)[None]))[0][0].transpose(0, 1).clamp(-1, 1)


@torch.no_grad()
def _round_trip_images(codec, images: torch.Tensor) -> torch.Tensor:
    """`[N, 3, H, W]` in [-1, 1] -> reconstructions (the first frame of each decoded still)."""
    return codec.decode(codec.encode_image(images))[0][:, :, 0].clamp(-1, 1)


def _l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """Sum of |a - b| / 2 (images in [-1, 1] -> [0, 1] units, mean over RGB) on `mask` and its pixel count."""
    err = (a - b).abs().mean(-3) * 0.5
    return float(err[mask].sum()), int(mask.sum())


def texture_table(codec, configs: dict[str, WorldConfig], seeds) -> dict[str, dict[str, tuple[float, float, float]]]:
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    for name, cfg in configs.items():
        out[name] = {}
        for fi, family in enumerate(TEXTURE_FAMILIES):
            sums = np.zeros((3, 2))  # garments, person, flat-lays: (error sum, pixels)
            for seed in seeds:
                plan = plan_sample(seed, cfg)
                rng = np.random.default_rng([seed, fi])
                scale = FRAMINGS[cfg.framing].pattern_scale
                dressed = {k: coarsened(restyle(g, rng, family), scale) for k, g in plan.garments.items()}
                s = render_plan(dataclasses.replace(plan, garments=dressed, slots="upper_lower"), cfg)
                rec = _round_trip_video(codec, s.video)
                sums[0] += _l1(rec, s.video, s.masks["upper"] | s.masks["lower"])
                sums[1] += _l1(rec, s.video, s.masks["person"])
                flats = torch.stack([s.garments["upper"], s.garments["lower"]])
                sums[2] += _l1(_round_trip_images(codec, flats), flats, flats.amin(1) < 0.9)  # not white
            out[name][family] = tuple(sums[:, 0] / np.maximum(sums[:, 1], 1))
    return out


def feature_table(codec, configs: dict[str, WorldConfig], seeds) -> dict[str, dict[str, tuple[float, float]]]:
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, cfg in configs.items():
        out[name] = {}
        for feature, put_on in FEATURES.items():
            kept, pixels = [], 0
            for seed in seeds:
                plan = plan_sample(seed, cfg)
                bare = dataclasses.replace(plan.person, **BARE[feature])
                on = render_plan(dataclasses.replace(plan, person=put_on(bare)), cfg).video
                off = render_plan(dataclasses.replace(plan, person=bare), cfg).video
                diff = on - off
                changed = diff.abs().amax(1, keepdim=True) > 0.02  # [T, 1, H, W]
                if not changed.any():
                    continue
                rec = _round_trip_video(codec, on) - _round_trip_video(codec, off)
                d = diff * changed
                kept.append(float((rec * d).sum() / (d * d).sum()))
                pixels += int(changed.sum()) / on.shape[0]
            out[name][feature] = (float(np.mean(kept)), pixels / max(1, len(kept)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=30)
    p.add_argument("--frames", type=int, default=8, help="pixel frames per clip (a multiple of the codec's 4)")
    p.add_argument("--codec", default=str(ROOT / "weights" / "codec.safetensors"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    codec = load_codec(args.codec)
    seeds = SPLITS["test"][:args.samples]
    configs = {f: WorldConfig(frames=args.frames, max_reference_views=1, framing=f) for f in ("full_body", "fashion")}
    names = {n: f"{n} {c.frame_size[1]}x{c.frame_size[0]}" for n, c in configs.items()}
    print(f"codec {args.codec}; {args.samples} test-split clips of {args.frames} frames; L1 in [0, 1] units\n")
    textures = texture_table(codec, configs, seeds)
    head = "".join(f" | {names[n] + ': garments  person  flat-lay':>42}" for n in configs)
    print(f"{'family':<14}{head}")
    for family in TEXTURE_FAMILIES:
        row = "".join(f" | {'':>13}{v[0]:>9.4f} {v[1]:>7.4f} {v[2]:>9.4f}" for v in (textures[n][family] for n in configs))
        print(f"{family:<14}{row}")
    features = feature_table(codec, configs, seeds)
    print(f"\n{'feature':<14}" + "".join(f" | {names[n] + ': kept  px/frame':>34}" for n in configs))
    for feature in FEATURES:
        print(f"{feature:<14}" + "".join(f" | {'':>19}{features[n][feature][0]:>6.2f} {features[n][feature][1]:>8.0f}"
                                         for n in configs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
