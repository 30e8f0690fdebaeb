"""The held-out cases: samples of the procedural world with their candidate pools, built once per run.

Each `EvalCase` holds a try-on clip's conditions and ground truth, and for every retrieval the K
candidates with the index of the true one: K outfits for garment retrieval (the truth, the
reference's outfit, K-2 random outfits that differ visibly), K people wearing the same clothes
for identity, K outfits that differ only in pattern, K post-switch outfits ([new, old, reference,
K-3 others]) and the K candidates' flat-lays for try-off.

`build_garment_cases` does the same with garments a user brings (flat-lay image files): the world
dresses its held-out people in them, so every number has ground truth.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from torch import Tensor

from ..synthetic import (FRAMINGS, SPLITS, TEXTURE_FAMILIES, TRAIN_FAMILIES, Garment, coarsened, garments_differ,
                         laid_out, plan_sample, render_plan, restyle, sample_garment)
from ..synthetic.palette import contrast
from ..synthetic.people import Person, sample_person
from ..synthetic.templates import KINDS
from .config import EvalConfig
from .generators import EvalSample, Switch

__all__ = ["EvalCase", "build_cases", "build_garment_cases"]


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
    tryoff_flats: list[Tensor]  # K flat-lays [3, H, W] in [-1, 1], (H, W) = EvalConfig.frame_size
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


def _families(split: str) -> tuple[str, ...]:
    return TEXTURE_FAMILIES if split == "test" else TRAIN_FAMILIES


def _pattern_scale(cfg: EvalConfig) -> float:
    """How much coarser the cases' world draws periodic patterns (`Framing.pattern_scale`); candidates
    are drawn like the world's own garments."""
    return FRAMINGS[cfg.framing].pattern_scale


def _distinct(rng: np.random.Generator, kind: str, avoid: Sequence[Garment], count: int,
              families: Sequence[str], scale: float = 1.0) -> list[Garment]:
    """`count` garments of `kind` that differ visibly from `avoid` and from each other (patterns `scale` x coarser)."""
    out: list[Garment] = []
    for _ in range(count):
        g = coarsened(sample_garment(rng, kind, families), scale)
        for _ in range(64):
            if all(garments_differ(a, g) for a in (*avoid, *out)):
                break
            g = coarsened(sample_garment(rng, kind, families), scale)
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


def _flat(garments: Mapping[str, Garment], slot: str, size: tuple[int, int], layout: str = "frame") -> Tensor:
    """The flat-lay of a slot `[3, H, W]` in [-1, 1], `size` = (H, W) (both pieces on one sheet for "full")."""
    return laid_out(dict(garments), slot, size, layout) * 2.0 - 1.0


def _tryoff_flats(outfits: list[dict[str, Garment]], slot: str, size: tuple[int, int]) -> list[Tensor]:
    return [_flat(o, slot, size) for o in outfits]


def _rng(cfg: EvalConfig, seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, seed, stream])


def _standard_case(index: int, seed: int, cfg: EvalConfig) -> EvalCase:
    world = cfg.world()
    plan = plan_sample(seed, world)
    sample = EvalSample.of(render_plan(plan, world), plan, world)
    rng = _rng(cfg, seed, 0xE7A1)
    k, families, scale = cfg.candidates, _families(cfg.split), _pattern_scale(cfg)
    true, ref = dict(plan.garments), dict(plan.reference_garments)
    pieces = {kind: _distinct(rng, kind, [true[kind], ref[kind]], k - 2, families, scale) for kind in KINDS}
    outfits, where = _place(rng, [true, ref] + [{kind: pieces[kind][j] for kind in KINDS} for j in range(k - 2)])
    people, pwhere = _place(rng, [plan.person] + _distinct_people(rng, plan.person, k - 1))
    if plan.slots == "full":
        slot, kinds = "full", KINDS
    else:
        slot = KINDS[int(rng.integers(len(KINDS)))]
        kinds = (slot,)
    new = {kind: _distinct(rng, kind, [true[kind], ref[kind]], 1, families, scale)[0] for kind in kinds}
    others = {kind: _distinct(rng, kind, [true[kind], ref[kind], new[kind]], k - 3, families, scale)
              for kind in kinds}
    pool = [new, {kd: true[kd] for kd in kinds}, {kd: ref[kd] for kd in kinds}] + \
        [{kd: others[kd][j] for kd in kinds} for j in range(k - 3)]
    switch_outfits, swhere = _place(rng, [{**true, **p} for p in pool])
    tslot = "full" if plan.slots == "full" else KINDS[int(rng.integers(len(KINDS)))]
    patterns, pattern_where = _place(_rng(cfg, seed, 0x9A77), _pattern_outfits(_rng(cfg, seed, 0x9A78), true, k,
                                                                                 families, scale))
    return EvalCase(
        index=index, seed=seed, sample=sample, outfits=outfits, target=where[0], people=people,
        person_target=pwhere[0], switch_sample=sample,
        switch=Switch(cfg.switch_frame, slot, _flat(new, slot, cfg.frame_size, cfg.garment_layout), new),
        switch_outfits=switch_outfits,
        switch_target=swhere[0], switch_old=swhere[1], tryoff_slot=tslot,
        tryoff_flats=_tryoff_flats(outfits, tslot, cfg.frame_size), tryoff_target=where[0],
        tryoff_frame=cfg.frames // 2,
        pattern_outfits=patterns, pattern_target=pattern_where[0])


def _pattern_outfits(rng: np.random.Generator, true: dict[str, Garment], k: int,
                     families: Sequence[str], scale: float = 1.0) -> list[dict[str, Garment]]:
    """`true` first, then k-1 outfits whose every piece keeps its shape and dominant colour but not its pattern.

    Each distractor piece takes another texture family than the true piece (families repeat, with
    other parameters, once they run out); a solid garment's distractors are all patterned, `scale` x coarser.
    """
    out = [dict(true)]
    for j in range(k - 1):
        outfit = {}
        for kind, g in true.items():
            others = [f for f in families if f != g.family]
            outfit[kind] = coarsened(restyle(g, rng, others[(j + int(rng.integers(len(others)))) % len(others)]),
                                     scale)
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
    world, k, families, scale = cfg.world("upper_lower"), cfg.candidates, _families(cfg.split), _pattern_scale(cfg)
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
            return chosen + _distinct(rng, kind, chosen, k - len(chosen), families, scale)

        dressed = dataclasses.replace(plan, garments={**plan.garments, kind: g})
        sample = EvalSample.of(render_plan(dressed, world), dressed, world)
        outfits, where = _place(rng, [{**dressed.garments, kind: p} for p in pool_for([g, ref])])
        people, pwhere = _place(rng, [plan.person] + _distinct_people(rng, plan.person, k - 1))
        switch_sample = EvalSample.of(render_plan(plan, world), plan, world)
        switch_outfits, swhere = _place(rng, [{**plan.garments, kind: p} for p in pool_for([g, old, ref])])
        cases.append(EvalCase(
            index=i, seed=seed, sample=sample, outfits=outfits, target=where[0], people=people,
            person_target=pwhere[0], switch_sample=switch_sample,
            switch=Switch(cfg.switch_frame, kind, _flat({kind: g}, kind, cfg.frame_size, cfg.garment_layout),
                          {kind: g}),
            switch_outfits=switch_outfits, switch_target=swhere[0], switch_old=swhere[1], tryoff_slot=kind,
            tryoff_flats=_tryoff_flats(outfits, kind, cfg.frame_size), tryoff_target=where[0],
            tryoff_frame=cfg.frames // 2, label=name))
    return cases
