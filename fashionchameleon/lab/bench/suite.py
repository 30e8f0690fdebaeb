"""The measurements, all in one run (so that ratios are meaningful on a noisy machine).

Order: build the setup; warm up (a throw-away stream with a switch, one teacher step); measure the matmul
peak; then one fresh stream, timed from its construction (time to first frame) through the long
run (FPS and per-chunk latency over `chunks` chunks once the cache is full; chunk time and RSS
near frame `growth_frame` and at `long_frames`); a second stream with a garment switch; last the
teacher on a clip of `teacher_chunks` chunks from the same inputs.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch

from ..metrics.generators import TeacherGenerator
from ..samples import worn_outfit_renders
from ...runtime.stream.session import Chunk, StreamSession
from ..synthetic.world import Sample
from .config import BenchConfig
from .flops import chunk_flops, matmul_peak_flops, pass_flops, teacher_flops
from .machine import environment
from .measure import median, percentile, rss_bytes
from .setup import BenchSetup, build_setup
from .switch import switch_latency

__all__ = ["ChunkRecord", "StreamRun", "SwitchRun", "TeacherRun", "run_bench", "steady_chunk_index"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkRecord:
    """One timed `StreamSession.step`."""

    index: int  # chunk index since the stream began
    first_frame: int
    frames: int  # pixel frames it produced
    seconds: float  # the whole step: switches, denoising, clean KV pass, decode, commit
    decode_seconds: float  # the part spent in the codec's decode
    cpu_seconds: float  # CPU time of this process during the step (all threads; less sensitive to other jobs)
    rss: int  # resident bytes after the step

    @property
    def backbone_seconds(self) -> float:
        return self.seconds - self.decode_seconds


@dataclass(frozen=True)
class StreamRun:
    setup_seconds: float  # session construction: encodes, prompt, condition pass
    records: list[ChunkRecord]
    steady_from: int  # first chunk index with the cache full


@dataclass(frozen=True)
class SwitchRun:
    request_frame: int
    switch: ChunkRecord  # the chunk the switch is applied before
    before: ChunkRecord  # the normal chunk right before the request
    latency_frames: int | None
    retrieved: list[int]


@dataclass(frozen=True)
class TeacherRun:
    chunks: int  # clip length in student chunks
    latent_frames: int
    pixel_frames: int
    teacher_seconds: float  # encodes + prompt + sampling + decode of the whole clip
    student_seconds: float  # session construction + the same number of chunks, decode included


def steady_chunk_index(setup: BenchSetup) -> int:
    """The first chunk whose queries see a full cache (sink + window)."""
    stream = setup.stream_config
    return math.ceil((stream.sink_frames + stream.window_frames) / stream.chunk_frames) - 1


def _timed_step(session: StreamSession, setup: BenchSetup) -> tuple[Chunk, ChunkRecord]:
    decoded, cpu = setup.codec.decode_seconds, time.process_time()
    chunk, seconds = setup.clock.time(session.step)
    return chunk, ChunkRecord(chunk.index, chunk.first_frame, int(chunk.frames.shape[2]), seconds,
                              setup.codec.decode_seconds - decoded, time.process_time() - cpu, rss_bytes())


def _teacher(setup: BenchSetup, cfg: BenchConfig, steps: int) -> TeacherGenerator:
    return TeacherGenerator(setup.bundle, steps=steps, cfg=cfg.teacher_cfg)


def _sample(setup: BenchSetup) -> Sample:
    """The inputs as a world `Sample` (what the teacher generator reads: references, garments, prompt)."""
    return Sample(video=torch.empty(0), references=setup.references, garments=setup.garments, prompt=setup.prompt,
                  masks={}, background=torch.empty(0))


def warm_up(setup: BenchSetup, cfg: BenchConfig) -> None:
    """A throw-away stream with a switch, and one teacher step on the measured clip length: kernels chosen,
    allocators grown, pages touched."""
    session = setup.session(cfg.seed)
    for _ in range(cfg.warmup_chunks):
        session.step()
    if cfg.warmup_chunks:
        for slot, garment in setup.switch_garments.items():
            session.request_switch(slot, garment)
        session.step()
        frames = setup.codec.pixel_frames(cfg.teacher_chunks * setup.stream_config.chunk_frames)
        _teacher(setup, cfg, 1).generate(_sample(setup), frames, (), cfg.seed)


def run_stream(setup: BenchSetup, cfg: BenchConfig) -> StreamRun:
    """One fresh stream from its construction until `long_frames` frames and enough steady chunks exist."""
    steady = steady_chunk_index(setup)
    session, setup_seconds = setup.clock.time(lambda: setup.session(cfg.seed))
    records: list[ChunkRecord] = []
    while session.frames_generated < cfg.long_frames or len(records) < steady + cfg.chunks:
        records.append(_timed_step(session, setup)[1])
    return StreamRun(setup_seconds, records, steady)


def run_switch(setup: BenchSetup, cfg: BenchConfig) -> SwitchRun:
    """Stream, request a switch to the second outfit, stream on; latency from per-frame retrieval."""
    session = setup.session(cfg.seed)
    frames: list[torch.Tensor] = []  # [T, 3, H, W] per chunk, kept only where ground truth exists
    keep = (lambda chunk: frames.append(chunk.frames[0].transpose(0, 1).float().cpu())) if setup.ground_truth \
        else (lambda chunk: None)
    before = None
    for _ in range(cfg.switch_after_chunks):
        chunk, before = _timed_step(session, setup)
        keep(chunk)
    request = session.frames_generated
    for slot, garment in setup.switch_garments.items():
        session.request_switch(slot, garment)
    chunk, switched = _timed_step(session, setup)
    keep(chunk)
    for _ in range(cfg.switch_chunks - 1):
        keep(session.step())
    if not setup.ground_truth:
        return SwitchRun(request, switched, before, None, [])
    video = torch.cat(frames)  # [T, 3, H, W]
    renders, plate = worn_outfit_renders(video.shape[0])
    found = switch_latency(video, request, renders[0], renders[1], plate, cfg.stable_frames)
    return SwitchRun(request, switched, before, found.frames, found.retrieved)


def run_teacher(setup: BenchSetup, cfg: BenchConfig, stream: StreamRun) -> TeacherRun:
    """The teacher on a clip of the stream's first chunks, against the stream's own time for them."""
    n = min(cfg.teacher_chunks, len(stream.records))
    latent = n * setup.stream_config.chunk_frames
    pixels = setup.codec.pixel_frames(latent)
    teacher = _teacher(setup, cfg, cfg.teacher_steps)
    _, seconds = setup.clock.time(lambda: teacher.generate(_sample(setup), pixels, (), cfg.seed))
    student = stream.setup_seconds + sum(r.seconds for r in stream.records[:n])
    return TeacherRun(n, latent, pixels, seconds, student)


def run_bench(cfg: BenchConfig, setup: BenchSetup | None = None) -> dict:
    """Every measurement; returns the result (required keys at the top, the rest under "details").

    `setup` replaces the one `cfg` describes (tests pass an in-memory model).
    """
    setup = setup or build_setup(cfg)  # (outside inference mode: the fused q/k/v weights cache by version)
    with torch.inference_mode():
        log.info("warming up")
        warm_up(setup, cfg)
        peak = matmul_peak_flops(cfg.device, cfg.torch_dtype, cfg.matmul_size, cfg.peak_seconds)
        log.info("streaming %d frames", cfg.long_frames)
        stream = run_stream(setup, cfg)
        log.info("switching")
        switch = run_switch(setup, cfg)
        log.info("teacher, %d steps", cfg.teacher_steps)
        teacher = run_teacher(setup, cfg, stream)
    return summarise(setup, cfg, stream, switch, teacher, peak)


# ---------------------------------------------------------------------------------------------- summary
def _around(records: list[ChunkRecord], frame: int, k: int) -> list[ChunkRecord]:
    """The `k` chunks centred on the chunk that holds pixel frame `frame` (clipped to the stream)."""
    i = next((j for j, r in enumerate(records) if r.first_frame + r.frames > frame), len(records) - 1)
    start = min(max(0, i - k // 2), max(0, len(records) - k))
    return records[start:start + k]


def _tokens_per_frame(setup: BenchSetup) -> int:
    h, w = setup.resolution
    s = setup.codec.spatial_factor
    return setup.model.tokens_per_frame((h // s, w // s))


def _speed(setup: BenchSetup, cfg: BenchConfig, stream: StreamRun) -> tuple[dict, dict]:
    """FPS, time to first frame and per-chunk latency over the steady chunks."""
    steady = stream.records[stream.steady_from:stream.steady_from + cfg.chunks]
    frames = sum(r.frames for r in steady)
    chunk_ms = [1e3 * r.seconds for r in steady]
    first = stream.records[0]
    top = {"end_to_end_fps": frames / sum(r.seconds for r in steady),
           "backbone_fps": frames / sum(r.backbone_seconds for r in steady),
           "time_to_first_frame_s": stream.setup_seconds + first.seconds,
           "chunk_ms_median": median(chunk_ms), "chunk_ms_p95": percentile(chunk_ms, 95.0)}
    details = {"steady": {"from_chunk": stream.steady_from, "chunks": len(steady), "frames": frames,
                          "frames_per_chunk": steady[0].frames,
                          "decode_ms_median": median([1e3 * r.decode_seconds for r in steady]),
                          "backbone_ms_median": median([1e3 * r.backbone_seconds for r in steady])},
               "first_frame": {"setup_s": stream.setup_seconds, "first_chunk_s": first.seconds,
                               "first_chunk_frames": first.frames}}
    return top, details


def _growth(cfg: BenchConfig, stream: StreamRun) -> tuple[dict, dict]:
    """Chunk time and RSS near frame `growth_frame` vs at the end of the same long stream."""
    early = _around(stream.records, cfg.growth_frame, cfg.growth_chunks)
    late = stream.records[-cfg.growth_chunks:]
    early_rss, late_rss = _around(stream.records, cfg.growth_frame, 1)[0].rss, late[-1].rss
    early_s, late_s = median([r.seconds for r in early]), median([r.seconds for r in late])
    early_cpu, late_cpu = median([r.cpu_seconds for r in early]), median([r.cpu_seconds for r in late])
    # the attention window fills during the first chunks, so frame ~30 is cheaper by design; growth from
    # the first chunks with the window full isolates what the stream's length adds
    full = stream.records[stream.steady_from:stream.steady_from + cfg.growth_chunks]
    full_s = median([r.seconds for r in full])
    top = {"chunk_time_growth": late_s / early_s, "chunk_time_growth_window_full": late_s / full_s,
           "rss_growth": late_rss / early_rss if early_rss else None}
    details = {"growth": {"early_frame": cfg.growth_frame, "late_frame": late[-1].first_frame + late[-1].frames,
                          "early_chunk_ms": 1e3 * early_s, "late_chunk_ms": 1e3 * late_s,
                          "window_full_frame": full[0].first_frame, "window_full_chunk_ms": 1e3 * full_s,
                          "cpu_time_growth": late_cpu / early_cpu if early_cpu else None,
                          "early_rss_mb": early_rss / 2 ** 20, "late_rss_mb": late_rss / 2 ** 20,
                          "stream_chunks": len(stream.records),
                          "chunk_ms": [round(1e3 * r.seconds, 1) for r in stream.records],
                          "chunk_cpu_ms": [round(1e3 * r.cpu_seconds, 1) for r in stream.records]}}
    return top, details


def _switch(cfg: BenchConfig, switch: SwitchRun, normal_ms: float) -> tuple[dict, dict]:
    top = {"switch_latency_frames": switch.latency_frames,
           "switch_overhead_chunks": (1e3 * switch.switch.seconds - normal_ms) / normal_ms}
    details = {"switch": {"request_frame": switch.request_frame, "switch_chunk_ms": 1e3 * switch.switch.seconds,
                          "chunk_before_ms": 1e3 * switch.before.seconds, "stable_frames": cfg.stable_frames,
                          "retrieved_new_outfit": switch.retrieved,
                          "policy": "full (refresh + withdraw + disentangle)"}}
    return top, details


def _teacher_summary(setup: BenchSetup, cfg: BenchConfig, teacher: TeacherRun) -> tuple[dict, dict]:
    """Time ratio, and the FLOP ratio of the same clip (teacher sampling vs condition pass + chunks)."""
    model_cfg, stream_cfg, n_cond = setup.model.cfg, setup.stream_config, setup.num_conditions
    tokens = _tokens_per_frame(setup)
    teacher_flop = teacher_flops(model_cfg, tokens, n_cond, teacher.latent_frames, cfg.teacher_steps).total
    student_flop = pass_flops(model_cfg, tokens, n_cond, n_cond).total + sum(
        chunk_flops(model_cfg, stream_cfg, tokens, n_cond, i).total for i in range(teacher.chunks))
    top = {"teacher_speedup": teacher.teacher_seconds / teacher.student_seconds}
    details = {"teacher": {"steps": cfg.teacher_steps, "cfg": cfg.teacher_cfg, "weights": setup.teacher_weights,
                           "chunks": teacher.chunks, "latent_frames": teacher.latent_frames,
                           "pixel_frames": teacher.pixel_frames, "teacher_s": teacher.teacher_seconds,
                           "student_s": teacher.student_seconds, "flop_ratio": teacher_flop / student_flop}}
    return top, details


def _efficiency(setup: BenchSetup, cfg: BenchConfig, stream: StreamRun, peak: float) -> tuple[dict, dict]:
    """Model FLOPs of the steady chunks over their backbone time, as a share of the matmul peak."""
    steady = stream.records[stream.steady_from:stream.steady_from + cfg.chunks]
    tokens = _tokens_per_frame(setup)
    flops = [chunk_flops(setup.model.cfg, setup.stream_config, tokens, setup.num_conditions, r.index) for r in steady]
    achieved = sum(f.total for f in flops) / sum(r.backbone_seconds for r in steady)
    last = flops[-1]
    details = {"flops": {"gflop_per_chunk": last.total / 1e9,
                         "share": {k: v / last.total for k, v in vars(last).items()},
                         "achieved_gflops": achieved / 1e9, "peak_gflops": peak / 1e9,
                         "peak_matmul_size": cfg.matmul_size}}
    return {"efficiency": achieved / peak}, details


def _model_details(setup: BenchSetup) -> dict:
    cfg, stream = setup.model.cfg, setup.stream_config
    h, w = setup.resolution
    s = setup.codec.spatial_factor
    return {"model": {"layers": cfg.num_layers, "dim": cfg.dim, "params": cfg.num_parameters(),
                      "latent_hw": [h // s, w // s], "tokens_per_frame": _tokens_per_frame(setup),
                      "conditions": setup.num_conditions, "cache_frames": stream.cache_frames(setup.num_conditions),
                      "passes_per_chunk": len(stream.steps) + 1, "codec": type(setup.codec.inner).__name__}}


def summarise(setup: BenchSetup, cfg: BenchConfig, stream: StreamRun, switch: SwitchRun, teacher: TeacherRun,
              peak: float) -> dict:
    """The result: required keys first, then machine and model identity, then "details"."""
    speed, speed_d = _speed(setup, cfg, stream)
    switch_top, switch_d = _switch(cfg, switch, speed["chunk_ms_median"])
    growth, growth_d = _growth(cfg, stream)
    teach, teach_d = _teacher_summary(setup, cfg, teacher)
    eff, eff_d = _efficiency(setup, cfg, stream, peak)
    preset = setup.model.cfg.name if setup.weights == "embedded" else cfg.preset
    result = {**speed, "resolution": list(setup.resolution), **switch_top, **growth, **teach, **eff,
              "device": cfg.device, "dtype": cfg.dtype_name, **environment(cfg.device),
              "preset": preset, "weights": setup.weights}
    result["details"] = {**_model_details(setup), **speed_d, **growth_d, **switch_d, **teach_d, **eff_d}
    return result
