"""The metric functions: every number from the same code for every row, the ground-truth oracle included.

For each case (`cases.build_cases`), on descriptors of the generated frames (foreground colour +
texture, `descriptors.robust_describe`):

- garment retrieval: the clip after its first chunk must be nearest to the render of the true
  garments among the case's K outfits (same person, motion and frames), so copying the reference's
  outfit fails;
- identity retrieval: the head region of the same window among K people wearing the same clothes;
- pattern retrieval: the same window among K outfits that differ only in their pattern (same
  shapes, same dominant colours), on a colour-normalised texture descriptor
  (`descriptors.pattern_describe`), so colour and where it sits cannot decide and a figure painted
  in its garments' colours fails;
- first-chunk person error: mean |generated - truth| inside the true person mask over the first
  chunk, which starts from the reference's pose (the one window where pixels are comparable); the
  "oracle through the codec" row's value is the codec's own floor;
- switch success: after a switch at a chunk boundary, the new garment must be retrieved in the
  first chunk and from the second chunk on (the old one must not);
- continuity: silhouette IoU across the switch / median adjacent IoU, with the motion amplitude
  of the switched clip against the ground truth (a frozen figure scores ~0);
- drift: garment retrieval in `long_splits` windows of frames [0, W) and [L-W, L) of a long stream
  (`drift_curve`: the same in every W-frame bin, with each bin's motion and stripes against the
  ground truth's; `tools/drift_curve.py`);
- try-off: the extracted flat garment among the K candidates' flat-lays (non-white pixels).

Each returns ``{metric: value, ..., "details": [per case]}``; `summarise` recomputes a section's
numbers from its details (so a prefix of the cases can be re-summarised).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .cases import EvalCase
from .config import EvalConfig
from .descriptors import foreground_mask, head_mask, open_mask, pattern_describe, robust_describe
from .generators import ClipGenerator, EvalSample, OracleGenerator, TryOffExtractor, render_frames
from .motion import motion_amplitude, switch_continuity
from .retrieval import retrieval_decision

__all__ = ["RETRIEVALS", "plain_clips", "garment_retrieval", "identity_retrieval", "pattern_retrieval",
           "first_chunk_error", "switch_metrics", "drift", "drift_curve", "stripe_ratio", "tryoff_retrieval",
           "summarise"]


def _masks(frames: Tensor, background: Tensor, cfg: EvalConfig) -> Tensor:
    return open_mask(foreground_mask(frames, background), cfg.mask_open)


def _describe(frames: Tensor, background: Tensor, cfg: EvalConfig, region=None, metric: str = "garment") -> Tensor:
    """The evaluation's descriptor of a window: colour-normalised texture for `metric` "pattern"
    (`descriptors.pattern_describe`), colour + texture + bands otherwise (`descriptors.robust_describe`)."""
    if metric == "pattern":
        return pattern_describe(frames[::cfg.stride], background, region, scale=cfg.analysis_scale,
                                open_size=cfg.mask_open)
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
            out.append(_describe(video, case.sample.background, cfg, region, key))
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
        query = _describe(clip[a:b], case.sample.background, cfg, region, metric)
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


def first_chunk_error(generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig,
                      clips: Sequence[Tensor] | None = None) -> dict:
    """Mean absolute error (images in [-1, 1]) inside the true person mask over each clip's first chunk:
    {"recon", "details"}."""
    clips = plain_clips(generator, cases, cfg) if clips is None else clips
    details = []
    for case, clip in zip(cases, clips):
        truth, mask = case.sample.video[:cfg.chunk].float(), case.sample.masks["person"][:cfg.chunk]
        err = (clip[:cfg.chunk] - truth).abs().mean(1)  # [c, H, W]
        details.append({"seed": case.seed, "error": float(err[mask].mean()) if mask.any() else float("nan")})
    return {**summarise("recon", details), "details": details}


# the sections judged on each case's plain try-on clip (generated once per row, shared)
RETRIEVALS: dict[str, Callable[..., dict]] = {"garment": garment_retrieval, "identity": identity_retrieval,
                                              "pattern": pattern_retrieval, "recon": first_chunk_error}


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


def _window_hits(clip: Tensor, case: EvalCase, frames: Tensor, cfg: EvalConfig) -> list[bool]:
    """Garment retrieval decisions of `clip` on `frames` (indices) split into `long_splits` windows."""
    hits = []
    for idx in frames.tensor_split(cfg.long_splits):
        a, b = int(idx[0]), int(idx[-1]) + 1
        query = _describe(clip[a:b], case.sample.background, cfg)
        hits.append(retrieval_decision(query, _pool(case, "garment", a, b, cfg), case.target)["hit"])
    return hits


def _long_clip(generator: ClipGenerator, case: EvalCase, cfg: EvalConfig) -> Tensor:
    """A `long_frames` stream of the case (no switch)."""
    return _clean(generator.generate(case.sample, cfg.long_frames, [], _seed(cfg, case)), cfg.long_frames,
                  case.sample, _name(generator))


def drift(generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig) -> dict:
    """Garment retrieval early vs late in a `long_frames` stream: {"drift_early", "drift_late", "drift_ratio"}."""
    length, width = cfg.long_frames, cfg.long_window
    details = []
    for case in cases[:cfg.long_samples]:
        clip = _long_clip(generator, case, cfg)
        row = {"seed": case.seed, "label": case.label}
        for name, a in (("early", 0), ("late", length - width)):
            row[name] = _window_hits(clip, case, torch.arange(a, a + width), cfg)
        details.append(row)
        del clip
    return {**summarise("drift", details), "details": details}


def stripe_ratio(frames: Tensor) -> float:
    """Mean |vertical| over mean |horizontal| pixel gradient of frames `[T, 3, H, W]`: a stream collapsing
    into horizontal stripes raises it well above its ground truth's."""
    dy = (frames[..., 1:, :] - frames[..., :-1, :]).abs().mean()
    dx = (frames[..., :, 1:] - frames[..., :, :-1]).abs().mean()
    return float(dy / dx.clamp_min(1e-6))


def drift_curve(generator: ClipGenerator, cases: Sequence[EvalCase], cfg: EvalConfig) -> list[dict]:
    """Long streams bin by bin, `long_window` frames a bin (bin k covers frames [k W, (k + 1) W)), for
    the first `long_samples` cases: [{"seed", "label", "bins", "motion", "truth_motion", "stripes"}], per bin
    - "bins": garment retrieval, decided on `long_splits` windows as `drift` does;
    - "motion", "truth_motion": the figure's motion amplitude and the ground truth's (silhouette IoU,
      as the switch section measures it): about 0 for a frozen stream;
    - "stripes": `stripe_ratio` over the ground truth's: well above 1 for a striped stream."""
    out = []
    for case in cases[:cfg.long_samples]:
        clip = _long_clip(generator, case, cfg)
        truth = OracleGenerator(case.sample.world).generate(case.sample, cfg.long_frames)
        row = {"seed": case.seed, "label": case.label, "bins": [], "motion": [], "truth_motion": [], "stripes": []}
        for a in range(0, cfg.long_frames - cfg.long_splits + 1, cfg.long_window):
            b = min(a + cfg.long_window, cfg.long_frames)
            row["bins"].append(_mean(_window_hits(clip, case, torch.arange(a, b), cfg)))
            for key, x in (("motion", clip), ("truth_motion", truth)):
                row[key].append(motion_amplitude(_masks(x[a:b], case.sample.background, cfg)))
            row["stripes"].append(stripe_ratio(clip[a:b]) / stripe_ratio(truth[a:b]))
        out.append(row)
        del clip, truth
    return out


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
    if section == "recon":
        return {"recon": _mean([d["error"] for d in details])}
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
