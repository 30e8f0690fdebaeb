"""Evaluation reports: the result dict as JSON, and a markdown table with the bars.

One row per generator (oracle, student, teacher, ablation policies), one column per metric; the
header names the bar (`garment ≥0.90`) and each cell says whether it is met (✓/✗). Metrics a row
does not measure show "—".
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .config import BARS
from .evaluate import finite

__all__ = ["COLUMNS", "markdown_table", "markdown_report", "write_json", "read_json", "write_report"]

# (metric key, column title); the bar comes from BARS
COLUMNS: tuple[tuple[str, str], ...] = (
    ("garment", "garment"),
    ("identity", "identity"),
    ("pattern", "pattern"),
    ("recon", "person L1, 1st chunk (lower is better)"),
    ("switch_first", "switch 1st chunk"),
    ("switch_later", "switch later"),
    ("continuity", "continuity"),
    ("amplitude", "motion ampl."),
    ("drift_early", "drift early"),
    ("drift_late", "drift late"),
    ("tryoff", "try-off"),
)


def _header(key: str, title: str, config: dict) -> str:
    if key.startswith("drift_") and config:
        length, width = config.get("long_frames"), config.get("long_window")
        if length and width:
            span = f"{0}–{width}" if key == "drift_early" else f"{length - width}–{length}"
            title = f"{title} ({span})"
    bar = BARS.get(key)
    return f"{title} ≥{bar:.2f}" if bar is not None else title


def _cell(value: Any, bar: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = f"{value:.2f}"
    if bar is None:
        return text
    return f"{text} {'✓' if value >= bar else '✗'}"


def markdown_table(result: dict) -> str:
    """The table: a header row with the bars, then one row per evaluated row of `result`."""
    config = result.get("config", {})
    keys = [(k, t) for k, t in COLUMNS if any(k in r.get("metrics", {}) for r in result["rows"])] or list(COLUMNS)
    lines = ["| row | n | " + " | ".join(_header(k, t, config) for k, t in keys) + " |",
             "|---|---:|" + "---:|" * len(keys)]
    for row in result["rows"]:
        metrics = row.get("metrics", {})
        cells = [_cell(metrics.get(k), BARS.get(k)) for k, _ in keys]
        lines.append(f"| {row['name']} | {row.get('samples', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(result: dict, title: str = "FashionChameleon evaluation") -> str:
    """The table with a title, what was evaluated, comparisons and timing."""
    cfg = result.get("config", {})
    lines = [f"# {title}", ""]
    if result.get("mode") == "garments":
        names = ", ".join(result.get("garments", []))
        lines.append(f"User garments ({names}) on held-out people of the `{cfg.get('split', 'test')}` split.")
    else:
        lines.append(f"Held-out `{cfg.get('split', 'test')}` split of the procedural world.")
    if cfg:
        size, framing = cfg.get("size"), cfg.get("framing", "full_body")
        h, w = cfg.get("frame_size") or (size, size)
        at = f"{size}px" if (h, w, framing) == (size, size, "full_body") else f"{w} x {h} px ({framing} framing)"
        first = cfg.get("start") or 0
        which = f"{cfg.get('samples')} samples" + (f" (from sample {first} on)" if first else "")
        lines.append(f"{which} at {at}, {cfg.get('frames')} frames per clip, "
                     f"K = {cfg.get('candidates')} candidates, switch at frame {cfg.get('switch_frame')} "
                     f"(chunks of {cfg.get('chunk')} frames), long stream {cfg.get('long_frames')} frames "
                     f"({cfg.get('long_samples')} samples), seed {cfg.get('seed')}.")
    notes = result.get("notes") or []
    lines += [f"> {n}" for n in notes]
    lines += ["", markdown_table(result), ""]
    vs = result.get("comparisons", {}).get("teacher_vs_student")
    if vs:
        lines.append(f"Teacher vs student on the same {vs['samples']} clips: garment retrieval teacher "
                     f"{_cell(vs.get('teacher'), None)}, student {_cell(vs.get('student'), None)}.")
    lines += ["", "Garment retrieval is measured after the first chunk; switch success needs the new garment retrieved "
              "(so the old one is not) among K candidates; continuity is silhouette IoU across the switch over the "
              "median adjacent IoU; motion amplitude is generated over ground truth; try-off retrieves the extracted "
              "flat garment among K flat-lays. The oracle row is the ground truth through the same metric code; "
              "\"oracle through the codec\" is the ground truth encoded and decoded by the model's codec, the "
              "ceiling of any generator that decodes with it."]
    timing = result.get("timing", {})
    if timing.get("total") is not None:
        rows = ", ".join(f"{k} {v:.0f}s" for k, v in timing.get("rows", {}).items())
        lines += ["", f"Time: {timing['total']:.0f}s in all (cases {timing.get('cases', 0):.0f}s; {rows})."]
    return "\n".join(lines) + "\n"


def write_json(path: str | Path, result: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite(result), indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def write_report(result: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `eval.json` and `eval.md` into `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "eval.md"
    md.write_text(markdown_report(result))
    return write_json(out / "eval.json", result), md
