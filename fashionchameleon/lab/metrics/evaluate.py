"""The evaluation: held-out people of the procedural world, judged by retrieval among K candidates.

Every number is a function of (generator, `EvalConfig`) and comes from the same metric code for
every row, the ground-truth ORACLE included (it must score ~1.0 everywhere: proof that the bars
can be met). See docs/method.md §5. `run_eval` builds the cases once (`cases`), runs each row's
sections (`rows`, `scores`), compares teacher and student on the same clips, and returns one
JSON-able result; `report` writes it.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable, Sequence

from ..synthetic import Garment
from .cases import EvalCase, build_cases, build_garment_cases
from .config import BARS, EvalConfig
from .rows import as_rows, common_chunk
from .scores import RETRIEVALS, drift, plain_clips, summarise, switch_metrics, tryoff_retrieval

__all__ = ["run_eval", "finite", "json_config"]

log = logging.getLogger(__name__)


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
    rows = as_rows(subject, cfg, oracle)
    if not rows:
        raise ValueError("nothing to evaluate: no trained model parts and no oracle")
    chunk = common_chunk(rows, cfg)
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
    return {**dataclasses.asdict(cfg), "sections": list(cfg.sections), "switch_frame": cfg.switch_frame,
            "frame_size": list(cfg.frame_size)}
