"""The evaluation: held-out people of the procedural world, judged by retrieval among K candidates.

Every number is a function of (generator, `EvalConfig`) and comes from the same metric code for
every row, the ground-truth ORACLE included (it must score ~1.0 everywhere: proof that the bars
can be met). See docs/design.md §5. For each held-out sample (`build_cases`):

- garment retrieval: the generated clip after its first chunk is described (foreground colour +
  texture, `descriptors.describe`) and must be nearest to the render of the true garments among
  K renders of the same person, motion and frames in K outfits: the truth, the reference's outfit
  (the "copied the reference" failure) and K-2 random test-split outfits that differ visibly;
- identity retrieval: the head region of the same window among K people wearing the same clothes;
- pattern retrieval (a diagnostic, no bar): the same window among K outfits that differ only in
  their pattern (same shapes, same dominant colours, other texture families), so colour and where
  it sits cannot decide: does the model transfer the garment's texture?
- switch success: a switch (full outfit, or one piece of an upper/lower sample) at a chunk
  boundary; in the first chunk after it and from the second chunk on, the new garment must be
  retrieved among [new, old, reference, K-3 others] (so the old one is not);
- continuity: silhouette IoU across the switch / median adjacent IoU, with the motion amplitude
  of the switched clip against the ground truth (a frozen figure scores ~0);
- drift: garment retrieval in `long_splits` windows of frames [0, W) and [L-W, L) of a long stream;
- teacher vs student: garment (and identity) retrieval of both on the same clips and conditions;
- ablation: switch success and continuity for refresh only / + withdraw / full rescheduling;
- try-off: the extracted flat garment among the K candidates' flat-lays (non-white pixels).

`build_garment_cases` does the same with garments a user brings (flat-lay image files): the world
dresses its held-out people in them, so every number has ground truth.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...runtime.config import JsonConfig
from ...runtime.stream.rescheduling import SwitchPolicy
from ..synthetic import (SPLITS, TEXTURE_FAMILIES, TRAIN_FAMILIES, Garment, WorldConfig, flat_lay,
                         garment_from_image, garments_differ, outfit_flat_lay, plan_sample, render_plan, restyle,
                         sample_garment, segment_garment)
from ..synthetic.palette import contrast
from ..synthetic.people import Person, sample_person
from ..synthetic.shapes import grid
from ..synthetic.templates import KINDS, LOWER_SHAPES, UPPER_SHAPES, template_bbox, template_mask
from .descriptors import foreground_mask, head_mask, open_mask, robust_describe
from .generators import (ClipGenerator, CodecOracleGenerator, EvalSample, ModelTryOff, OracleGenerator, OracleTryOff,
                         StudentGenerator, Switch, TeacherGenerator, TryOffExtractor, render_frames)
from .motion import motion_amplitude, switch_continuity
from .retrieval import retrieval_decision

__all__ = ["BARS", "SECTIONS", "EvalConfig", "EvalCase", "Row", "build_cases", "build_garment_cases",
           "load_garments", "guess_kind", "plain_clips", "garment_retrieval", "identity_retrieval", "pattern_retrieval",
           "switch_metrics", "drift", "tryoff_retrieval", "summarise", "default_rows", "run_eval", "finite",
           "json_config"]

log = logging.getLogger(__name__)

# The bars the trained student must clear (the acceptance numbers).
BARS: dict[str, float] = {
    "garment": 0.90, "identity": 0.90, "switch_first": 0.80, "switch_later": 0.90, "continuity": 0.80,
    "amplitude": 0.50, "drift_late": 0.85, "tryoff": 0.90,
}
SECTIONS = ("garment", "identity", "pattern", "switch", "drift", "teacher", "ablation", "tryoff")
_ROW_SECTIONS = ("garment", "identity", "pattern", "switch", "drift", "tryoff")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass(frozen=True)
class EvalConfig(JsonConfig):
    """What the evaluation runs (JSON round trip). Frame numbers are pixel frames."""

    split: str = "test"
    samples: int = 24  # held-out samples (cases)
    start: int = 0  # first sample index in the split
    size: int = 128
    frames: int = 48  # per clip
    chunk: int = 12  # pixel frames per chunk; replaced by the student's own (`StudentGenerator.chunk_frames`)
    switch_chunk: int = 2  # the switch happens at the boundary after this many chunks
    candidates: int = 8  # K
    slots: str = "random"  # world slot layout of the cases: full | upper_lower | random
    long_frames: int = 1000  # drift: length of the long stream
    long_window: int = 100  # drift: frames [0, W) vs [L - W, L)
    long_splits: int = 4  # retrieval decisions per drift window
    long_samples: int = 2  # long streams (the first cases)
    teacher_samples: int = 4  # teacher vs student on the first cases
    ablation_samples: int = 12  # rescheduling ablation on the first cases
    teacher_steps: int = 30
    teacher_cfg: float = 3.0
    tryoff_steps: int = 30
    stride: int = 1  # frame step inside descriptor windows (2 halves the descriptor cost)
    analysis_scale: int = 2  # descriptors judge frames area-downsampled by this (blur tolerance)
    mask_open: int = 3  # opening (odd size) of foreground masks against plate speckle; 0 = off
    bands: int = 5  # horizontal colour bands in the descriptor (where each colour sits)
    seed: int = 0
    sections: tuple[str, ...] = SECTIONS

    def __post_init__(self) -> None:
        object.__setattr__(self, "sections", tuple(self.sections))
        unknown = sorted(set(self.sections) - set(SECTIONS))
        if unknown:
            raise ValueError(f"unknown eval sections {unknown}; sections are {list(SECTIONS)}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {self.split!r}")
        if self.candidates < 3:
            raise ValueError(f"candidates (K) must be >= 3 (truth, old/reference and one more), got {self.candidates}")
        if self.size // self.analysis_scale < 32:
            raise ValueError(f"size {self.size} is too small to judge at analysis scale {self.analysis_scale} (the "
                             f"head would be a few pixels): use size >= {32 * self.analysis_scale}")
        if self.samples < 1 or self.chunk < 1 or self.switch_chunk < 1 or self.stride < 1:
            raise ValueError("samples, chunk, switch_chunk and stride must be positive")
        if self.frames < (self.switch_chunk + 2) * self.chunk:
            raise ValueError(f"frames ({self.frames}) must hold the switch chunk and two chunks after it: "
                             f">= (switch_chunk + 2) * chunk = {(self.switch_chunk + 2) * self.chunk}")
        if self.long_window * 2 > self.long_frames or self.long_window < self.long_splits:
            raise ValueError(f"drift windows need long_splits <= long_window <= long_frames / 2, got "
                             f"{self.long_splits}, {self.long_window}, {self.long_frames}")

    @classmethod
    def quick(cls, **changes) -> "EvalConfig":
        """A smoke-test run (< 2 min on 2 CPU cores): few samples, a short long stream, a cheap teacher."""
        base = dict(samples=4, long_frames=240, long_window=48, long_splits=2, long_samples=1, teacher_samples=1,
                    ablation_samples=4, teacher_steps=10, tryoff_steps=10, stride=2)
        return cls(**{**base, **changes})

    @property
    def switch_frame(self) -> int:
        return self.switch_chunk * self.chunk

    def world(self, slots: str | None = None) -> WorldConfig:
        return WorldConfig(size=self.size, frames=self.frames, slots=slots or self.slots)


@dataclass
class EvalCase:
    """One held-out sample with its candidate pools (built once, shared by every generator)."""

    index: int
    seed: int
    sample: EvalSample  # the try-on clip's conditions (references, garments, prompt) and ground truth
    outfits: list[dict[str, Garment]]  # K candidate outfits ({"upper", "lower"}) for garment retrieval
    target: int
    people: list[Person]  # K candidate people for identity retrieval
    person_target: int
    switch_sample: EvalSample  # the clip that switches
    switch: Switch
    switch_outfits: list[dict[str, Garment]]  # K outfits worn after the switch
    switch_target: int
    switch_old: int
    tryoff_slot: str
    tryoff_flats: list[Tensor]  # K flat-lays [3, S, S] in [-1, 1]
    tryoff_target: int
    tryoff_frame: int
    label: str = ""
    pattern_outfits: list[dict[str, Garment]] = field(default_factory=list)  # K outfits differing in pattern only
    pattern_target: int = 0
    cache: dict = field(default_factory=dict, repr=False)  # candidate descriptors, ground-truth silhouettes

    def memo(self, key, make: Callable[[], Any]):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


# ============================================================================================== cases
def _families(split: str) -> tuple[str, ...]:
    return TEXTURE_FAMILIES if split == "test" else TRAIN_FAMILIES


def _distinct(rng: np.random.Generator, kind: str, avoid: Sequence[Garment], count: int,
              families: Sequence[str]) -> list[Garment]:
    """`count` garments of `kind` that differ visibly from `avoid` and from each other."""
    out: list[Garment] = []
    for _ in range(count):
        g = sample_garment(rng, kind, families)
        for _ in range(64):
            if all(garments_differ(a, g) for a in (*avoid, *out)):
                break
            g = sample_garment(rng, kind, families)
        out.append(g)
    return out


def _people_differ(a: Person, b: Person) -> bool:
    """Heads that a colour + texture descriptor can tell apart: skin or hair colour, or bald vs not."""
    if contrast(a.skin, b.skin) >= 0.2:
        return True
    bald_a, bald_b = a.hair_style == "bald", b.hair_style == "bald"
    return bald_a != bald_b or (not bald_a and contrast(a.hair, b.hair) >= 0.3)


def _distinct_people(rng: np.random.Generator, person: Person, count: int) -> list[Person]:
    out: list[Person] = []
    for _ in range(count):
        p = sample_person(rng)
        for _ in range(64):
            if all(_people_differ(q, p) for q in (person, *out)):
                break
            p = sample_person(rng)
        out.append(p)
    return out


def _place(rng: np.random.Generator, items: list) -> tuple[list, list[int]]:
    """Shuffle `items`; returns the shuffled list and where each original item went."""
    order = rng.permutation(len(items))
    shuffled = [items[int(i)] for i in order]
    where = [0] * len(items)
    for pos, i in enumerate(order):
        where[int(i)] = pos
    return shuffled, where


def _flat(garments: Mapping[str, Garment], slot: str, size: int) -> Tensor:
    """The flat-lay of a slot `[3, S, S]` in [-1, 1] (both pieces on one sheet for "full")."""
    img = outfit_flat_lay(garments["upper"], garments["lower"], size) if slot == "full" else \
        flat_lay(garments[slot], size)
    return img * 2.0 - 1.0


def _tryoff_flats(outfits: list[dict[str, Garment]], slot: str, size: int) -> list[Tensor]:
    return [_flat(o, slot, size) for o in outfits]


def _rng(cfg: EvalConfig, seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, seed, stream])


def _standard_case(index: int, seed: int, cfg: EvalConfig) -> EvalCase:
    world = cfg.world()
    plan = plan_sample(seed, world)
    sample = EvalSample.of(render_plan(plan, world), plan, world)
    rng = _rng(cfg, seed, 0xE7A1)
    k, families = cfg.candidates, _families(cfg.split)
    true, ref = dict(plan.garments), dict(plan.reference_garments)
    pieces = {kind: _distinct(rng, kind, [true[kind], ref[kind]], k - 2, families) for kind in KINDS}
    outfits, where = _place(rng, [true, ref] + [{kind: pieces[kind][j] for kind in KINDS} for j in range(k - 2)])
    people, pwhere = _place(rng, [plan.person] + _distinct_people(rng, plan.person, k - 1))
    if plan.slots == "full":
        slot, kinds = "full", KINDS
    else:
        slot = KINDS[int(rng.integers(len(KINDS)))]
        kinds = (slot,)
    new = {kind: _distinct(rng, kind, [true[kind], ref[kind]], 1, families)[0] for kind in kinds}
    others = {kind: _distinct(rng, kind, [true[kind], ref[kind], new[kind]], k - 3, families) for kind in kinds}
    pool = [new, {kd: true[kd] for kd in kinds}, {kd: ref[kd] for kd in kinds}] + \
        [{kd: others[kd][j] for kd in kinds} for j in range(k - 3)]
    switch_outfits, swhere = _place(rng, [{**true, **p} for p in pool])
    tslot = "full" if plan.slots == "full" else KINDS[int(rng.integers(len(KINDS)))]
    patterns, pattern_where = _place(_rng(cfg, seed, 0x9A77), _pattern_outfits(_rng(cfg, seed, 0x9A78), true, k,
                                                                                 families))
    return EvalCase(
        index=index, seed=seed, sample=sample, outfits=outfits, target=where[0], people=people,
        person_target=pwhere[0], switch_sample=sample,
        switch=Switch(cfg.switch_frame, slot, _flat(new, slot, cfg.size), new), switch_outfits=switch_outfits,
        switch_target=swhere[0], switch_old=swhere[1], tryoff_slot=tslot,
        tryoff_flats=_tryoff_flats(outfits, tslot, cfg.size), tryoff_target=where[0], tryoff_frame=cfg.frames // 2,
        pattern_outfits=patterns, pattern_target=pattern_where[0])


def _pattern_outfits(rng: np.random.Generator, true: dict[str, Garment], k: int,
                     families: Sequence[str]) -> list[dict[str, Garment]]:
    """`true` first, then k-1 outfits whose every piece keeps its shape and dominant colour but not its pattern.

    Each distractor piece takes another texture family than the true piece (families repeat, with
    other parameters, once they run out); a solid garment's distractors are all patterned.
    """
    out = [dict(true)]
    for j in range(k - 1):
        outfit = {}
        for kind, g in true.items():
            others = [f for f in families if f != g.family]
            outfit[kind] = restyle(g, rng, others[(j + int(rng.integers(len(others)))) % len(others)])
        out.append(outfit)
    return out


def build_cases(cfg: EvalConfig = EvalConfig()) -> list[EvalCase]:
    """The held-out cases: samples `start .. start + samples - 1` of the split, deterministic in `cfg.seed`."""
    seeds = SPLITS[cfg.split]
    return [_standard_case(i, seeds[cfg.start + i], cfg) for i in range(cfg.samples)]


def build_garment_cases(garments: Sequence[tuple[str, Garment]], cfg: EvalConfig = EvalConfig()) -> list[EvalCase]:
    """Cases for user garments (name, Garment) on held-out people (upper/lower slots).

    Case i uses garment i mod n: the person is dressed in it (try-on, identity, try-off), and the
    same person in their own outfit switches that piece to it at the switch frame. Distractors:
    the reference's piece, the user's other garments of the kind, then random test-split pieces.
    A person whose own or reference piece looks like the user's garment is skipped. The model is
    shown the world's flat-lay of the garment (the image mapped onto its template, `garment_from_image`),
    which is also what the ground truth renders.
    """
    if not garments:
        raise ValueError("no garments given")
    world, k, families = cfg.world("upper_lower"), cfg.candidates, _families(cfg.split)
    seeds = SPLITS[cfg.split]
    cases, cursor = [], cfg.start
    for i in range(cfg.samples):
        name, g = garments[i % len(garments)]
        kind = g.kind
        for _ in range(64):
            seed = seeds[cursor]
            cursor += 1
            plan = plan_sample(seed, world)
            if garments_differ(plan.garments[kind], g) and garments_differ(plan.reference_garments[kind], g):
                break
        rng = _rng(cfg, seed, 0xD1E5)
        old, ref = plan.garments[kind], plan.reference_garments[kind]
        mine = [h for j, (_, h) in enumerate(garments) if h.kind == kind and j != i % len(garments)
                and garments_differ(g, h)]

        def pool_for(first: list[Garment]) -> list[Garment]:
            chosen = first + [h for h in mine if all(garments_differ(h, c) for c in first)]
            chosen = chosen[:k]
            return chosen + _distinct(rng, kind, chosen, k - len(chosen), families)

        dressed = dataclasses.replace(plan, garments={**plan.garments, kind: g})
        sample = EvalSample.of(render_plan(dressed, world), dressed, world)
        outfits, where = _place(rng, [{**dressed.garments, kind: p} for p in pool_for([g, ref])])
        people, pwhere = _place(rng, [plan.person] + _distinct_people(rng, plan.person, k - 1))
        switch_sample = EvalSample.of(render_plan(plan, world), plan, world)
        switch_outfits, swhere = _place(rng, [{**plan.garments, kind: p} for p in pool_for([g, old, ref])])
        cases.append(EvalCase(
            index=i, seed=seed, sample=sample, outfits=outfits, target=where[0], people=people,
            person_target=pwhere[0], switch_sample=switch_sample,
            switch=Switch(cfg.switch_frame, kind, _flat({kind: g}, kind, cfg.size), {kind: g}),
            switch_outfits=switch_outfits, switch_target=swhere[0], switch_old=swhere[1], tryoff_slot=kind,
            tryoff_flats=_tryoff_flats(outfits, kind, cfg.size), tryoff_target=where[0],
            tryoff_frame=cfg.frames // 2, label=name))
    return cases


# ============================================================================================== user garments
_COMPARE = 48


@functools.lru_cache(maxsize=None)
def _template_silhouettes() -> tuple[tuple[str, str, Tensor, float], ...]:
    """(kind, shape, bbox-normalised silhouette, height / width) of every template."""
    out = []
    for kind, shapes in (("upper", UPPER_SHAPES), ("lower", LOWER_SHAPES)):
        for shape in shapes:
            bx0, by0, bx1, by1 = template_bbox(shape)
            x, y = grid(_COMPARE)
            sil = template_mask(shape, bx0 + (x + 1.0) * 0.5 * (bx1 - bx0), by0 + (y + 1.0) * 0.5 * (by1 - by0))
            out.append((kind, shape, sil.expand(_COMPARE, _COMPARE), (by1 - by0) / (bx1 - bx0)))
    return tuple(out)


def guess_kind(image: Tensor) -> str:
    """"upper" or "lower" for a flat-lay `[3, H, W]` in [0, 1]: the template whose silhouette (bounding-box
    normalised, IoU) and aspect ratio fit the segmented garment best."""
    mask = segment_garment(image)
    if int(mask.sum()) < 16:
        raise ValueError("no garment found in the image (it looks like its border colour everywhere)")
    rows, cols = torch.nonzero(mask.any(1)).flatten(), torch.nonzero(mask.any(0)).flatten()
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = mask[y0:y1, x0:x1].float()[None, None]
    sil = F.interpolate(crop, size=(_COMPARE, _COMPARE), mode="area")[0, 0] > 0.5
    aspect = (y1 - y0) / max(1, x1 - x0)
    best, best_score = "upper", -math.inf
    for kind, _, tmpl, t_aspect in _template_silhouettes():
        iou = float((sil & tmpl).sum()) / max(1.0, float((sil | tmpl).sum()))
        score = iou - 0.5 * abs(math.log(aspect / t_aspect))
        if score > best_score:
            best, best_score = kind, score
    return best


def load_garments(directory: str | Path, kind: str | None = None, max_side: int = 256) -> list[tuple[str, Garment]]:
    """Every image file in `directory` as (file name, Garment); `kind` "upper"/"lower", or guessed per file."""
    from ...runtime.files.images import load_image

    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"garment folder not found: {root}")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out = []
    for path in files:
        image = ((load_image(path) + 1.0) / 2.0).clamp(0.0, 1.0)
        side = max(image.shape[-2:])
        if side > max_side:
            h, w = (round(d * max_side / side) for d in image.shape[-2:])
            image = F.interpolate(image[None], size=(h, w), mode="area")[0]
        g = garment_from_image(image, kind or guess_kind(image))
        out.append((path.name, g))
    return out


# ============================================================================================== measuring
def _masks(frames: Tensor, background: Tensor, cfg: EvalConfig) -> Tensor:
    return open_mask(foreground_mask(frames, background), cfg.mask_open)


def _describe(frames: Tensor, background: Tensor, cfg: EvalConfig, region=None) -> Tensor:
    """The evaluation's descriptor of a window (`descriptors.robust_describe`)."""
    return robust_describe(frames[::cfg.stride], background, region, scale=cfg.analysis_scale,
                           open_size=cfg.mask_open, bands=cfg.bands)


def _flat_descriptor(image: Tensor, cfg: EvalConfig) -> Tensor:
    """Descriptor of a flat-lay `[3, H, W]` over its non-white pixels."""
    return robust_describe(image[None], torch.ones_like(image), scale=cfg.analysis_scale, open_size=cfg.mask_open,
                           bands=cfg.bands)


def _clean(clip: Tensor, frames: int, sample: EvalSample, who: str) -> Tensor:
    want = (frames, 3, *sample.video.shape[-2:])
    if tuple(clip.shape) != want:
        raise ValueError(f"{who} returned a clip of shape {list(clip.shape)}, expected {list(want)}")
    return clip.detach().float().cpu().nan_to_num(0.0).clamp(-1.0, 1.0)


def _seed(cfg: EvalConfig, case: EvalCase) -> int:
    return int(case.seed) + 10_000_019 * int(cfg.seed)


def _name(generator) -> str:
    return getattr(generator, "name", type(generator).__name__)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def plain_clips(generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig) -> list[Tensor]:
    """The try-on clip of each case (no switch)."""
    return [_clean(generator.generate(c.sample, cfg.frames, [], _seed(cfg, c)), cfg.frames, c.sample,
                   _name(generator)) for c in cases]


def _pool(case: EvalCase, key: str, start: int, stop: int, cfg: EvalConfig, region=None) -> Tensor:
    """Descriptors `[K, D]` of the K candidates of `key` over frames [start, stop) (cached in the case)."""
    def make() -> Tensor:
        plan, world = case.sample.plan, case.sample.world
        items = {"garment": case.outfits, "pattern": case.pattern_outfits}.get(key, case.people)
        out = []
        for item in items:
            kw = {"person": item} if key == "identity" else {"garments": item}
            video = render_frames(plan, world, start, stop - start, **kw)
            out.append(_describe(video, case.sample.background, cfg, region))
        return torch.stack(out)
    return case.memo((key, start, stop, cfg.stride, cfg.analysis_scale, cfg.mask_open, cfg.bands), make)


def _retrieval(metric: str, generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig,
               clips: Sequence[Tensor] | None, region=None) -> dict:
    """Retrieval of each case's true candidate on frames [chunk, frames) of its try-on clip."""
    clips = plain_clips(generator, cases, cfg) if clips is None else clips
    a, b = cfg.chunk, cfg.frames
    details = []
    for case, clip in zip(cases, clips):
        target = {"garment": case.target, "pattern": case.pattern_target}.get(metric, case.person_target)
        query = _describe(clip[a:b], case.sample.background, cfg, region)
        decision = retrieval_decision(query, _pool(case, metric, a, b, cfg, region), target)
        extra = {"label": case.label} if metric == "garment" else {}
        details.append({"seed": case.seed, **extra, "target": target, **decision})
    return {**summarise(metric, details), "details": details}


def garment_retrieval(generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig,
                      clips: Sequence[Tensor] | None = None) -> dict:
    """Garment retrieval on frames [chunk, frames) of each try-on clip: {"garment", "details"}."""
    return _retrieval("garment", generator, cases, cfg, clips)


def pattern_retrieval(generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig,
                      clips: Sequence[Tensor] | None = None) -> dict:
    """Pattern retrieval (a diagnostic) on frames [chunk, frames): {"pattern", "details"}; cases without
    pattern candidates (user garments) are skipped."""
    keep = [i for i, c in enumerate(cases) if c.pattern_outfits]
    if not keep:
        return {"pattern": float("nan"), "details": []}
    return _retrieval("pattern", generator, [cases[i] for i in keep], cfg,
                      None if clips is None else [clips[i] for i in keep])


def identity_retrieval(generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig,
                       clips: Sequence[Tensor] | None = None) -> dict:
    """Identity retrieval (head region) on frames [chunk, frames): {"identity", "details"}."""
    return _retrieval("identity", generator, cases, cfg, clips, head_mask)


# the sections judged on each case's plain try-on clip (generated once per row, shared)
RETRIEVALS: dict[str, Callable[..., dict]] = {"garment": garment_retrieval, "identity": identity_retrieval,
                                              "pattern": pattern_retrieval}


def _switch_truth(case: EvalCase, cfg: EvalConfig) -> dict:
    """Candidate descriptors of both post-switch windows and the ground truth's silhouette measures."""
    s, c, n = cfg.switch_frame, cfg.chunk, cfg.frames
    sample = case.switch_sample

    def make() -> dict:
        first, later = [], []
        for outfit in case.switch_outfits:
            video = render_frames(sample.plan, sample.world, s, n - s, garments=outfit)
            first.append(_describe(video[:c], sample.background, cfg))
            later.append(_describe(video[c:], sample.background, cfg))
        truth = OracleGenerator(sample.world).generate(sample, n, [case.switch])
        masks = _masks(truth, sample.background, cfg)
        return {"first": torch.stack(first), "later": torch.stack(later), "amplitude": motion_amplitude(masks),
                "continuity": switch_continuity(masks, s)}
    return case.memo(("switch", s, c, n, cfg.stride, cfg.analysis_scale, cfg.mask_open, cfg.bands), make)


def switch_metrics(generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig) -> dict:
    """Switch success in the first chunk after the switch and from the second on, continuity and amplitude."""
    s, c, n = cfg.switch_frame, cfg.chunk, cfg.frames
    details = []
    for case in cases:
        sample = case.switch_sample
        clip = _clean(generator.generate(sample, n, [case.switch], _seed(cfg, case)), n, sample, _name(generator))
        truth = _switch_truth(case, cfg)
        first = retrieval_decision(_describe(clip[s:s + c], sample.background, cfg), truth["first"],
                                   case.switch_target)
        later = retrieval_decision(_describe(clip[s + c:n], sample.background, cfg), truth["later"],
                                   case.switch_target)
        masks = _masks(clip, sample.background, cfg)
        details.append({
            "seed": case.seed, "label": case.label, "slot": case.switch.slot, "target": case.switch_target,
            "old": case.switch_old, "first": first, "later": later,
            "stuck_first": first["nearest"] == case.switch_old, "stuck_later": later["nearest"] == case.switch_old,
            "continuity": switch_continuity(masks, s), "truth_continuity": truth["continuity"],
            "amplitude": motion_amplitude(masks), "truth_amplitude": truth["amplitude"]})
    return {**summarise("switch", details), "details": details}


def _drift_windows(cfg: EvalConfig) -> dict[str, list[Tensor]]:
    length, width = cfg.long_frames, cfg.long_window
    return {name: list(torch.arange(a, a + width).tensor_split(cfg.long_splits))
            for name, a in (("early", 0), ("late", length - width))}


def drift(generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig) -> dict:
    """Garment retrieval early vs late in a `long_frames` stream: {"drift_early", "drift_late", "drift_ratio"}."""
    windows = _drift_windows(cfg)
    details = []
    for case in cases[:cfg.long_samples]:
        sample = case.sample
        clip = _clean(generator.generate(sample, cfg.long_frames, [], _seed(cfg, case)), cfg.long_frames, sample,
                      _name(generator))
        row = {"seed": case.seed, "label": case.label}
        for name, parts in windows.items():
            hits = []
            for idx in parts:
                a, b = int(idx[0]), int(idx[-1]) + 1
                query = _describe(clip[a:b], sample.background, cfg)
                hits.append(retrieval_decision(query, _pool(case, "garment", a, b, cfg), case.target)["hit"])
            row[name] = hits
        details.append(row)
        del clip
    return {**summarise("drift", details), "details": details}


def tryoff_retrieval(extractor: TryOffExtractor, cases: Sequence[EvalCase], cfg: EvalConfig) -> dict:
    """Retrieval of the extracted flat garment among the K candidates' flat-lays: {"tryoff", "details"}."""
    details = []
    for case in cases:
        flat = extractor.extract(case.sample, case.tryoff_frame, case.tryoff_slot, _seed(cfg, case))
        if tuple(flat.shape) != tuple(case.tryoff_flats[0].shape):
            raise ValueError(f"try-off returned {list(flat.shape)}, expected {list(case.tryoff_flats[0].shape)}")
        flat = flat.detach().float().cpu().nan_to_num(0.0).clamp(-1.0, 1.0)
        pool = case.memo(("tryoff", cfg.analysis_scale, cfg.mask_open, cfg.bands),
                         lambda: torch.stack([_flat_descriptor(f, cfg) for f in case.tryoff_flats]))
        decision = retrieval_decision(_flat_descriptor(flat, cfg), pool, case.tryoff_target)
        details.append({"seed": case.seed, "label": case.label, "slot": case.tryoff_slot,
                        "target": case.tryoff_target, **decision})
    return {**summarise("tryoff", details), "details": details}


def summarise(section: str, details: Sequence[dict]) -> dict[str, float]:
    """A section's numbers from its per-sample details (so a subset of cases can be re-summarised)."""
    if section in ("garment", "identity", "pattern", "tryoff"):
        return {section: _mean([d["hit"] for d in details])}
    if section == "switch":
        truth_amp = sum(d["truth_amplitude"] for d in details)
        return {
            "switch_first": _mean([d["first"]["hit"] for d in details]),
            "switch_later": _mean([d["later"]["hit"] for d in details]),
            "stuck_first": _mean([d["stuck_first"] for d in details]),
            "stuck_later": _mean([d["stuck_later"] for d in details]),
            # a boundary smoother than the typical frame step is no better than a typical one
            "continuity": _mean([min(d["continuity"], 1.0) for d in details]),
            # pooled over samples: idle clips with tiny amplitudes do not dominate
            "amplitude": sum(d["amplitude"] for d in details) / max(truth_amp, 1e-9) if details else float("nan")}
    if section == "drift":
        early = _mean([h for d in details for h in d["early"]])
        late = _mean([h for d in details for h in d["late"]])
        return {"drift_early": early, "drift_late": late, "drift_ratio": late / early if early > 0 else float("nan")}
    raise ValueError(f"unknown section {section!r}")


# ============================================================================================== rows and the run
@dataclass
class Row:
    """One line of the report: a generator (and/or a try-off extractor) and the sections it runs.

    `subset` limits the cases to the first ones (the teacher's `teacher_samples`); `reuse` names an
    earlier row whose per-sample details are re-summarised over this row's cases instead of running
    a generator (the ablation's full-policy row is the student row). Rows of the groups "teacher" and
    "ablation" run when their group is among `EvalConfig.sections`; the others run the sections of
    theirs that are."""

    name: str
    generator: ClipGenerator | None = None
    tryoff: TryOffExtractor | None = None
    sections: tuple[str, ...] = _ROW_SECTIONS
    group: str = "main"  # main | teacher | ablation | oracle
    subset: int | None = None
    reuse: str | None = None


ABLATION = (("refresh only", SwitchPolicy.refresh_only()), ("refresh + withdraw", SwitchPolicy.refresh_withdraw()),
            ("full (+ disentangle)", SwitchPolicy.full()))


def default_rows(model, cfg: EvalConfig, oracle: bool = False) -> list[Row]:
    """Rows for an `EmbeddedModel` (whichever parts it has), plus the oracle rows if asked."""
    rows: list[Row] = []
    if oracle:
        rows.append(Row("oracle", OracleGenerator(cfg.world()), OracleTryOff(), group="oracle"))
    if model is None:
        return rows
    if oracle:  # the ceiling of anything decoded by this codec
        rows.append(Row("oracle through the codec", CodecOracleGenerator(model.codec, cfg.world()),
                        sections=tuple(RETRIEVALS), group="oracle"))
    tryoff = ModelTryOff(model, cfg.tryoff_steps) if model.tryoff is not None else None
    if model.student is not None:
        rows.append(Row("student", StudentGenerator(model), tryoff))
    elif tryoff is not None:
        rows.append(Row("try-off", None, tryoff, sections=("tryoff",)))
    if model.teacher is not None and "teacher" in cfg.sections:
        rows.append(Row("teacher", TeacherGenerator(model, cfg.teacher_steps, cfg.teacher_cfg),
                        sections=tuple(RETRIEVALS), group="teacher", subset=cfg.teacher_samples))
    if model.student is not None and "ablation" in cfg.sections:
        for label, policy in ABLATION:
            full = policy == SwitchPolicy.full()
            rows.append(Row(f"ablation: {label}", StudentGenerator(model, policy),
                            sections=("switch",), group="ablation", subset=cfg.ablation_samples,
                            reuse="student" if full else None))
    return rows


def _as_rows(subject, cfg: EvalConfig, oracle: bool) -> list[Row]:
    if subject is None or hasattr(subject, "student"):  # an EmbeddedModel (or nothing: oracle only)
        return default_rows(subject, cfg, oracle)
    items = list(subject.items()) if isinstance(subject, Mapping) else [(getattr(r, "name", None), r) for r in subject]
    rows = [r if isinstance(r, Row) else
            Row(name, None, r, sections=("tryoff",)) if not hasattr(r, "generate") else
            Row(name, r, sections=_ROW_SECTIONS if getattr(r, "supports_switches", True) else tuple(RETRIEVALS))
            for name, r in items]
    if oracle and not any(r.group == "oracle" for r in rows):
        rows.insert(0, Row("oracle", OracleGenerator(cfg.world()), OracleTryOff(), group="oracle"))
    return rows


def _chunk(rows: Sequence[Row], cfg: EvalConfig) -> int:
    chunks = {int(c) for r in rows if r.generator is not None
              for c in [getattr(r.generator, "chunk_frames", None)] if c}
    if len(chunks) > 1:
        raise ValueError(f"the generators stream in different chunk lengths {sorted(chunks)}; evaluate them apart")
    return chunks.pop() if chunks else cfg.chunk


def finite(x):
    """A copy with NaN/inf floats replaced by None (strict JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x


def run_eval(subject=None, cfg: EvalConfig = EvalConfig(), *, oracle: bool = False,
             garments: Sequence[tuple[str, Garment]] | None = None, cases: Sequence[EvalCase] | None = None,
             progress: Callable[[str], None] | None = None) -> dict:
    """Run the evaluation; returns a JSON-able dict {"config", "bars", "rows", "comparisons", "timing", ...}.

    `subject`: an `EmbeddedModel` (student, teacher, ablation and try-off rows from its parts), a
    mapping name -> `ClipGenerator` / `TryOffExtractor`, a list of `Row`, or None (oracle only).
    `garments`: user garments (name, Garment) to evaluate instead of the world's own (`build_garment_cases`).
    """
    say = progress or log.info
    t_start = time.perf_counter()
    rows = _as_rows(subject, cfg, oracle)
    if not rows:
        raise ValueError("nothing to evaluate: no trained model parts and no oracle")
    chunk = _chunk(rows, cfg)
    if chunk != cfg.chunk:
        cfg = cfg.replace(chunk=chunk)
    t0 = time.perf_counter()
    if cases is None:
        cases = build_garment_cases(garments, cfg) if garments else build_cases(cfg)
    timing: dict[str, Any] = {"cases": time.perf_counter() - t0}
    say(f"{len(cases)} cases built in {timing['cases']:.1f}s")
    wanted = set(cfg.sections)
    out_rows: list[dict] = []
    by_name: dict[str, dict] = {}
    for row in rows:
        if row.group in ("teacher", "ablation"):
            sections = list(row.sections) if row.group in wanted else []
        else:
            sections = [s for s in row.sections if s in wanted]
        source = by_name.get(row.reuse) if row.reuse else None
        if source is not None and not all(s in source["details"] for s in sections):
            source = None  # the row to reuse did not measure this: run the generator
        if row.generator is None and source is None:
            sections = [s for s in sections if s == "tryoff"]
        if row.tryoff is None:
            sections = [s for s in sections if s != "tryoff"]
        if row.generator is not None and not getattr(row.generator, "supports_switches", True):
            sections = [s for s in sections if s not in ("switch", "drift")]
        row_cases = list(cases[:row.subset]) if row.subset else list(cases)
        result = {"name": row.name, "group": row.group, "samples": len(row_cases), "metrics": {}, "details": {},
                  "seconds": {}}
        if source is not None:  # the same generator on (a prefix of) the same cases: re-summarise
            for s in sections:
                result["details"][s] = source["details"][s][:len(row_cases)]
                result["metrics"].update(summarise(s, result["details"][s]))
            result["reused"] = row.reuse
        else:
            clips = None
            for s in sections:
                t = time.perf_counter()
                if s in RETRIEVALS:
                    if clips is None:
                        clips = plain_clips(row.generator, row_cases, cfg)
                    r = RETRIEVALS[s](row.generator, row_cases, cfg, clips)
                elif s == "switch":
                    r = switch_metrics(row.generator, row_cases, cfg)
                elif s == "drift":
                    r = drift(row.generator, row_cases, cfg)
                else:
                    r = tryoff_retrieval(row.tryoff, row_cases, cfg)
                result["details"][s] = r.pop("details")
                result["metrics"].update(r)
                result["seconds"][s] = time.perf_counter() - t
                say(f"{row.name}: {s} " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()) +
                    f" ({result['seconds'][s]:.1f}s)")
            del clips
        result["passed"] = {k: bool(v >= BARS[k]) for k, v in result["metrics"].items()
                            if k in BARS and v == v}
        out_rows.append(result)
        by_name[row.name] = result
    comparisons = {}
    teacher = next((r for r in out_rows if r["group"] == "teacher"), None)
    student = by_name.get("student")
    if teacher is not None and student is not None and "garment" in student["details"]:
        n = teacher["samples"]
        comparisons["teacher_vs_student"] = {
            "samples": n, "teacher": teacher["metrics"].get("garment"),
            "student": summarise("garment", student["details"]["garment"][:n])["garment"]}
    timing["total"] = time.perf_counter() - t_start
    timing["rows"] = {r["name"]: sum(r["seconds"].values()) for r in out_rows}
    return finite({
        "mode": "garments" if garments else "world", "config": json_config(cfg), "bars": dict(BARS),
        "garments": [name for name, _ in garments] if garments else [],
        "rows": out_rows, "comparisons": comparisons, "timing": timing})


def json_config(cfg: EvalConfig) -> dict:
    return {**dataclasses.asdict(cfg), "sections": list(cfg.sections), "switch_frame": cfg.switch_frame}
