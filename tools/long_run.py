"""A long stream of the embedded model with a garment switch every 500 frames (a check outside CI).

    python tools/long_run.py                                  # 10,000 frames of the embedded model (weights/)
    python tools/long_run.py --random-weights --frames 1000   # smoke run: random DiT (and codec/text if absent)
    python tools/long_run.py --json outputs/long_run.json     # also write the numbers as JSON

The bundled sample person (fashionchameleon/lab/samples.py) starts in outfit 1 and switches to
outfit 2, back to 1, to 2, ... every `--switch-every` frames (both garment slots, the full
rescheduling policy). Every chunk is checked: no NaN/inf pixel, the KV cache keeps its storage
(same pointers, same bytes) and temporal positions stay within the cache (rolling RoPE). A
table row every `--report-every` frames shows the resident memory (RSS), speed, cache bytes
and the highest position. At the end, garment retrieval (the evaluation's blur-tolerant
descriptor, metrics/retrieval.py) on the last `--tail` frames against renders of the sample
person in each outfit says whether the outfit worn after the last switch is still the one
shown. The renders follow the sample's motion from its frame 0, not the generated motion: the
descriptor pools colour and texture over the window, so the outfit, not the pose, decides.

Exit status: 0 every check passed, 1 a check failed, 2 the embedded student is missing
(train it, or pass --random-weights). One torch thread by default (the CPU is shared).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from fashionchameleon.lab.bench.measure import rss_bytes  # noqa: E402
from fashionchameleon.lab.bench.setup import random_dit  # noqa: E402
from fashionchameleon.runtime.encoders.codec import TinyCodec, TinyCodecConfig  # noqa: E402
from fashionchameleon.runtime.config import preset  # noqa: E402
from fashionchameleon.runtime.embedded import PARTS, WEIGHTS_DIR, EmbeddedModel, load_codec, load_embedded, load_text  # noqa
from fashionchameleon.lab.metrics.retrieval import render_retrieval  # noqa: E402
from fashionchameleon.lab.samples import load_sample_inputs, worn_outfit_renders  # noqa: E402
from fashionchameleon.runtime.stream.session import StreamSession  # noqa: E402
from fashionchameleon.runtime.encoders.text import TinyPromptEncoder, TinyTextConfig  # noqa: E402

__all__ = ["LongRunConfig", "Row", "LongRunResult", "load_model", "schedule_alternating", "run_long",
           "tail_retrieval", "main"]

MB = 2 ** 20


@dataclass(frozen=True)
class LongRunConfig:
    frames: int = 10_000
    switch_every: int = 500
    report_every: int = 1000
    tail: int = 100  # last frames checked by garment retrieval
    seed: int = 0
    threads: int = 1
    weights: Path = WEIGHTS_DIR
    random_weights: bool = False
    json: Path | None = None


@dataclass(frozen=True)
class Row:
    """The stream at one report point."""

    frame: int  # frames generated so far
    seconds: float  # since the first chunk started
    fps: float  # frames per second over the rows' interval
    rss_mb: float  # resident memory of this process
    cache_mb: float  # bytes allocated by the KV cache (constant when bounded)
    max_position: int  # highest temporal position used so far
    switches: int  # chunks that began with a garment switch, so far


@dataclass
class LongRunResult:
    rows: list[Row]
    frames: int
    seconds: float
    first_bad_frame: int | None  # first chunk start with a NaN/inf pixel (None: all finite)
    cache_fixed: bool  # the cache kept its storage and size for the whole run
    max_position: int
    position_bound: int | None  # conditions + sink + window (rolling RoPE); None for absolute positions
    switches: int
    tail: Tensor = field(repr=False)  # the last frames [T, 3, H, W] in [-1, 1]

    @property
    def ok(self) -> bool:
        bounded = self.position_bound is None or self.max_position <= self.position_bound
        return self.first_bad_frame is None and self.cache_fixed and bounded

    def summary(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("rows", "tail")}
        return {**out, "ok": self.ok, "rows": [asdict(r) for r in self.rows]}


# ----------------------------------------------------------------------------------- the model and the schedule
def load_model(weights: Path, random_weights: bool = False, seed: int = 0) -> EmbeddedModel | None:
    """The embedded student (None when it is missing), or with `random_weights` a random tiny DiT with the
    shipped codec / prompt encoder where they exist (random ones otherwise)."""
    if not random_weights:
        if not (weights / PARTS["student"]).exists():
            return None
        return load_embedded(weights, parts=("student",))
    torch.manual_seed(seed)
    codec_path, text_path = weights / PARTS["codec"], weights / PARTS["text"]
    codec = load_codec(codec_path) if codec_path.exists() else TinyCodec(TinyCodecConfig()).eval()
    text = load_text(text_path) if text_path.exists() else TinyPromptEncoder(TinyTextConfig()).eval()
    return EmbeddedModel(codec, text, student=random_dit(preset("tiny"), "cpu", torch.float32, seed))


def schedule_alternating(session: StreamSession, outfits: list[dict[str, Tensor]], frames: int,
                         every: int) -> list[int]:
    """Switch to outfits[1], outfits[0], outfits[1], ... at every `every`-th frame; returns the switch frames."""
    at = list(range(every, frames, every))
    for k, frame in enumerate(at, start=1):
        for slot, image in outfits[k % 2].items():
            session.schedule_switch(frame, slot, image)
    return at


# ----------------------------------------------------------------------------------- the run
def run_long(session: StreamSession, frames: int, report_every: int, tail: int,
             on_row: Callable[[Row], None] | None = None) -> LongRunResult:
    """Generate `frames` frames chunk by chunk, checking every chunk; keeps only the last `tail` frames."""
    cache = session.cache
    storage = (cache.k.data_ptr(), cache.v.data_ptr(), cache.nbytes)
    bound = session.layout.total_frames if session.config.rope == "rolling" else None
    rows: list[Row] = []
    recent: deque[Tensor] = deque()
    first_bad = None
    fixed, max_position, switches = True, cache.next_position, 0
    start = last_time = time.perf_counter()
    last_frame, next_report = 0, report_every
    for chunk in session.generate(frames):
        video = chunk.frames[0].transpose(0, 1)  # [T, 3, H, W]
        if first_bad is None and not bool(torch.isfinite(video).all()):
            first_bad = chunk.first_frame
        fixed &= (cache.k.data_ptr(), cache.v.data_ptr(), cache.nbytes) == storage and session.cache is cache
        max_position = max(max_position, cache.next_position)
        switches += bool(chunk.switches)
        recent.append(video)
        while sum(v.shape[0] for v in recent) - recent[0].shape[0] >= tail:
            recent.popleft()
        done = session.frames_generated
        if done >= next_report or done >= frames:
            now = time.perf_counter()
            row = Row(done, round(now - start, 2), round((done - last_frame) / max(now - last_time, 1e-9), 2),
                      round(rss_bytes() / MB, 1), round(cache.nbytes / MB, 2), max_position, switches)
            rows.append(row)
            if on_row is not None:
                on_row(row)
            last_time, last_frame = now, done
            next_report = (done // report_every + 1) * report_every
    kept = torch.cat(list(recent))[-tail:]
    return LongRunResult(rows, session.frames_generated, round(time.perf_counter() - start, 2), first_bad, fixed,
                         max_position, bound, switches, kept)


def tail_retrieval(video: Tensor, expected: int) -> dict:
    """Which sample outfit the frames `[T, 3, H, W]` show, among renders of the person in each outfit."""
    renders, plate = worn_outfit_renders(video.shape[0])
    got = render_retrieval(video.float(), renders, plate)
    return {"frames": int(video.shape[0]), "candidates": len(renders), "expected_outfit": expected + 1,
            "retrieved_outfit": got + 1, "hit": got == expected}


# ----------------------------------------------------------------------------------- the command line
HEADER = f"{'frame':>7} {'seconds':>9} {'fps':>7} {'RSS MB':>8} {'cache MB':>9} {'max pos':>8} {'switches':>9}"


def _print_row(row: Row) -> None:
    print(f"{row.frame:>7} {row.seconds:>9.1f} {row.fps:>7.2f} {row.rss_mb:>8.1f} {row.cache_mb:>9.2f} "
          f"{row.max_position:>8} {row.switches:>9}", flush=True)


def _parse(argv: list[str] | None) -> LongRunConfig:
    d = LongRunConfig()
    p = argparse.ArgumentParser(prog="python tools/long_run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=d.frames)
    p.add_argument("--switch-every", type=int, default=d.switch_every, help="frames between garment switches")
    p.add_argument("--report-every", type=int, default=d.report_every, help="frames between table rows")
    p.add_argument("--tail", type=int, default=d.tail, help="last frames checked by garment retrieval")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    p.add_argument("--weights", type=Path, default=d.weights, help="folder with the embedded model's safetensors")
    p.add_argument("--random-weights", action="store_true", help="a random tiny DiT (a smoke run of the machinery)")
    p.add_argument("--json", type=Path, help="write the table, checks and retrieval as JSON here")
    a = p.parse_args(argv)
    if min(a.frames, a.switch_every, a.report_every, a.tail, a.threads) < 1:
        p.error("--frames, --switch-every, --report-every, --tail and --threads must be >= 1")
    return LongRunConfig(a.frames, a.switch_every, a.report_every, a.tail, a.seed, a.threads, a.weights,
                         a.random_weights, a.json)


def main(argv: list[str] | None = None) -> int:
    cfg = _parse(argv)
    torch.set_num_threads(cfg.threads)
    model = load_model(cfg.weights, cfg.random_weights, cfg.seed)
    if model is None:
        print(f"The embedded student is missing ({cfg.weights / PARTS['student']}): train it (python -m "
              f"fashionchameleon train dmd) or copy it there, or pass --random-weights for a smoke run.",
              file=sys.stderr)
        return 2
    refs, outfits, prompt = load_sample_inputs()
    session = model.session(refs, dict(outfits[0]), prompt, seed=cfg.seed)
    at = schedule_alternating(session, outfits[:2], cfg.frames, cfg.switch_every)
    weights = "random" if cfg.random_weights else "embedded"
    print(f"{cfg.frames} frames, {len(at)} switches (every {cfg.switch_every}), {weights} weights, "
          f"{torch.get_num_threads()} thread(s)\n{HEADER}", flush=True)
    with torch.inference_mode():
        result = run_long(session, cfg.frames, cfg.report_every, cfg.tail, _print_row)
    retrieval = tail_retrieval(result.tail, expected=len(at) % 2)
    report = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
              **result.summary(), "retrieval": retrieval}
    print(f"finite: {result.first_bad_frame is None}  cache fixed: {result.cache_fixed}  max position: "
          f"{result.max_position} (bound {result.position_bound})  retrieval on the last {retrieval['frames']} frames: "
          f"outfit {retrieval['retrieved_outfit']} (expected {retrieval['expected_outfit']})  ->  "
          f"{'OK' if result.ok else 'FAILED'}")
    if cfg.json is not None:
        cfg.json.parent.mkdir(parents=True, exist_ok=True)
        cfg.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
