"""The benchmark's output: one table for people, one JSON file for machines (the same numbers)."""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["format_table", "write_json"]


def _num(value: float | None, fmt: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _header(r: dict) -> list[str]:
    m, d = r["details"]["model"], r["details"]
    h, w = r["resolution"]
    model = f"{r['weights']} weights, {_count(m['layers'], 'layer')}, {m['params'] / 1e6:,.1f}M params"
    return [f"FashionChameleon streaming benchmark — {r['preset']} ({model}), {h}x{w}",
            f"machine  {r['machine']}",
            f"runtime  torch {r['torch']} · {r['device']} · {r['dtype']} · {r['threads']} threads",
            f"stream   {m['tokens_per_frame']} tokens/latent frame · {m['conditions']} condition frames · "
            f"{m['cache_frames']}-frame cache · {m['passes_per_chunk']} passes/chunk · "
            f"{d['steady']['frames_per_chunk']} frames/chunk · codec {m['codec']}"]


def _rows(r: dict) -> list[tuple[str, str, str]]:
    d = r["details"]
    st, g, sw, t, f = d["steady"], d["growth"], d["switch"], d["teacher"], d["flops"]
    share = ", ".join(f"{k.replace('_', '-')} {v:.0%}" for k, v in sorted(f["share"].items(), key=lambda kv: -kv[1]))
    latency_note = ("frames from the request to the new garment (per-frame retrieval)" if r["weights"] == "embedded"
                    else "needs the embedded model (ground-truth renders)")
    return [
        ("end-to-end FPS", _num(r["end_to_end_fps"], ".1f"),
         f"denoise + KV pass + decode, {st['chunks']} chunks from chunk {st['from_chunk']} (cache full)"),
        ("backbone FPS", _num(r["backbone_fps"], ".1f"),
         f"same chunks, decode ({st['decode_ms_median']:.1f} ms/chunk) subtracted"),
        ("time to first frame", _num(r["time_to_first_frame_s"], ".3f", " s"),
         f"fresh session: set-up {d['first_frame']['setup_s']:.3f} s + first chunk "
         f"({d['first_frame']['first_chunk_frames']} frames)"),
        ("chunk latency median", _num(r["chunk_ms_median"], ".1f", " ms"),
         f"backbone {st['backbone_ms_median']:.1f} ms"),
        ("chunk latency p95", _num(r["chunk_ms_p95"], ".1f", " ms"), ""),
        ("switch latency", _num(r["switch_latency_frames"], "d", " frames"), latency_note),
        ("switch overhead", _num(r["switch_overhead_chunks"], "+.2f", " chunks"),
         f"switch chunk {sw['switch_chunk_ms']:.1f} ms vs median {r['chunk_ms_median']:.1f} ms"),
        ("chunk time growth", _num(r["chunk_time_growth"], ".2f", "x"),
         f"frame ~{g['late_frame']} vs frame ~{g['early_frame']}: {g['late_chunk_ms']:.1f} vs "
         f"{g['early_chunk_ms']:.1f} ms (CPU time {_num(g['cpu_time_growth'], '.2f', 'x')})"),
        ("  from window full", _num(r["chunk_time_growth_window_full"], ".2f", "x"),
         f"frame ~{g['late_frame']} vs frame ~{g['window_full_frame']} (attention window full): "
         f"{g['late_chunk_ms']:.1f} vs {g['window_full_chunk_ms']:.1f} ms"),
        ("RSS growth", _num(r["rss_growth"], ".3f", "x"), f"{g['early_rss_mb']:.0f} MB -> {g['late_rss_mb']:.0f} MB"),
        ("teacher / student time", _num(r["teacher_speedup"], ".1f", "x"),
         f"{t['latent_frames']} latent frames; teacher {_count(t['steps'], 'step')}, CFG {t['cfg']:g} "
         f"({t['weights']} weights) {t['teacher_s']:.2f} s vs {t['student_s']:.2f} s; "
         f"FLOP ratio {t['flop_ratio']:.1f}x"),
        ("efficiency", _num(100 * r["efficiency"], ".1f", " %"),
         f"{f['achieved_gflops']:.1f} GFLOP/s of a {f['peak_gflops']:.1f} GFLOP/s matmul peak "
         f"({f['peak_matmul_size']}^2)"),
        ("FLOPs per chunk", f"{f['gflop_per_chunk']:.2f} G", share),
    ]


def format_table(result: dict) -> str:
    """The result as a header and a three-column table (metric, value, how it was measured)."""
    rows = _rows(result)
    a = max(len(r[0]) for r in rows)
    b = max(len(r[1]) for r in rows)
    lines = _header(result)
    rule = "-" * max(len(x) for x in lines)
    lines += [rule] + [f"{name:<{a}}  {value:>{b}}  {note}".rstrip() for name, value, note in rows]
    return "\n".join(lines)


def write_json(result: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
