"""The benchmark: the command writes every figure, the FLOP counter is exact, the instruments behave.

No test here asserts a timing: only that timings exist, have the right types and obey the
relations that hold by construction (backbone time <= chunk time, p95 >= median, ...).
"""
from __future__ import annotations

import json
import math
import os
from unittest import mock

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fashionchameleon.__main__ import main
from fashionchameleon.lab.bench.config import BenchConfig
from fashionchameleon.lab.bench.flops import chunk_flops, live_key_frames, pass_flops, teacher_flops
from fashionchameleon.lab.bench.measure import Clock, TimedCodec, percentile
from fashionchameleon.lab.bench.setup import embedded_setup
from fashionchameleon.lab.bench.standins import VAE_FACTORS, RandomPromptEncoder, StandInCodec, VaeFactors
from fashionchameleon.lab.bench.suite import run_bench
from fashionchameleon.lab.bench.switch import switch_latency
from fashionchameleon.lab.samples import sample_set_of
from fashionchameleon.runtime.encoders.codec import TinyCodec
from fashionchameleon.runtime.config import StreamConfig, preset
from fashionchameleon.runtime.embedded import EmbeddedModel
from fashionchameleon.runtime.dit.fused import FFN_ROUTE_ENV
from fashionchameleon.runtime.dit.model import WanDiT
from fashionchameleon.runtime.stream.sampler import denoise_chunk, sample_teacher
from fashionchameleon.runtime.stream.schedule import FlowMatchSchedule
from fashionchameleon.runtime.stream.session import StreamSession
from fashionchameleon.runtime.encoders.text import TinyPromptEncoder

from conftest import MICRO

REQUIRED = {"end_to_end_fps": float, "backbone_fps": float, "resolution": list, "time_to_first_frame_s": float,
            "chunk_ms_median": float, "chunk_ms_p95": float, "switch_latency_frames": (int, type(None)),
            "switch_overhead_chunks": float, "chunk_time_growth": float, "rss_growth": float,
            "teacher_speedup": float, "efficiency": float, "device": str, "dtype": str, "machine": str,
            "threads": int, "torch": str, "preset": str, "details": dict}


def _check_result(r: dict) -> None:
    for key, kind in REQUIRED.items():
        assert isinstance(r[key], kind), (key, r[key])
    for key in ("end_to_end_fps", "backbone_fps", "time_to_first_frame_s", "chunk_ms_median", "chunk_ms_p95",
                "chunk_time_growth", "rss_growth", "teacher_speedup", "efficiency"):
        assert math.isfinite(r[key]) and r[key] > 0, key
    assert r["backbone_fps"] >= r["end_to_end_fps"]  # decode time is subtracted, never added
    assert r["chunk_ms_p95"] >= r["chunk_ms_median"]
    assert r["switch_overhead_chunks"] > -1  # a switch chunk takes some time
    assert r["torch"] == torch.__version__ and r["threads"] == torch.get_num_threads()
    steady = r["details"]["steady"]
    assert steady["frames"] == steady["chunks"] * steady["frames_per_chunk"]


def test_bench_command_writes_every_key(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--random-weights", "--preset", "tiny", "--layers", "1", "--size", "32x32", "--chunks", "3",
                 "--warmup-chunks", "1", "--long-frames", "120", "--teacher-steps", "2", "--teacher-chunks", "2",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    _check_result(r)
    assert r["resolution"] == [32, 32] and r["device"] == "cpu" and r["dtype"] == "fp32" and r["preset"] == "tiny"
    assert r["weights"] == "random" and r["switch_latency_frames"] is None  # no ground truth for random weights
    d = r["details"]
    assert d["model"]["tokens_per_frame"] == 4 and d["model"]["conditions"] == 2 and d["model"]["layers"] == 1
    assert d["steady"]["chunks"] == 3 and d["steady"]["frames_per_chunk"] == 12  # 3 latent frames x 4 (grouped)
    assert d["growth"]["late_frame"] >= 120 and d["teacher"]["latent_frames"] == 6
    assert len(d["growth"]["chunk_ms"]) == len(d["growth"]["chunk_cpu_ms"]) == d["growth"]["stream_chunks"] >= 10
    assert d["teacher"]["flop_ratio"] > 0 and abs(sum(d["flops"]["share"].values()) - 1) < 1e-9
    table = capsys.readouterr().out
    for row in ("end-to-end FPS", "backbone FPS", "time to first frame", "switch overhead", "chunk time growth",
                "RSS growth", "teacher / student time", "efficiency", "32x32", "fp32", torch.__version__):
        assert row in table


def test_bench_embedded_path_measures_switch_latency():
    """The embedded path (here an untrained tiny model): sample inputs, 4 conditions, per-frame retrieval."""
    torch.manual_seed(0)
    model = EmbeddedModel(TinyCodec().eval(), TinyPromptEncoder().eval(),
                          student=WanDiT(preset("tiny").replace(num_layers=1)).eval().requires_grad_(False))
    cfg = BenchConfig(chunks=1, warmup_chunks=1, long_frames=12, teacher_steps=1, teacher_chunks=1,
                      switch_after_chunks=1, switch_chunks=2, peak_size=64, peak_seconds=0.01)
    r = run_bench(cfg, embedded_setup(model, cfg, Clock("cpu")))
    _check_result(r)
    assert r["weights"] == "embedded" and r["preset"] == "tiny"
    assert r["resolution"] == list(sample_set_of().world.frame_size)  # the bundled samples' frame
    sw = r["details"]["switch"]
    assert sw["request_frame"] == 12 and len(sw["retrieved_new_outfit"]) == 24  # 2 chunks of 12 frames
    assert set(sw["retrieved_new_outfit"]) <= {0, 1}
    latency = r["switch_latency_frames"]
    assert latency is None or 0 <= latency <= 24 - cfg.stable_frames
    assert r["details"]["model"]["conditions"] == 4 and r["details"]["teacher"]["weights"] == "student"


# ---------------------------------------------------------------------------------------------- FLOPs
def _counted(fn) -> int:
    """Brute force: every matmul/conv torch runs, with SDPA forced onto its math path (bmm, counted) and the
    FFN on its plain modules (the counter does not know oneDNN's fused kernel; the arithmetic is the same)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, \
            mock.patch.dict(os.environ, {FFN_ROUTE_ENV: "plain"}):
        fn()
    return counter.get_total_flops()


def _micro_session(stream: StreamConfig) -> StreamSession:
    torch.manual_seed(0)
    model = WanDiT(MICRO).eval().requires_grad_(False)
    codec = StandInCodec(VaeFactors(8, 4, False, MICRO.in_dim))
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    return StreamSession(model, codec, RandomPromptEncoder.for_model(MICRO), images[:1], {"full": images[1]},
                         "a person walks", 0, stream)


def test_chunk_flops_equal_a_brute_force_count():
    """Exact (tolerance 0): each chunk while the cache fills and once it is full, 4 denoise passes + KV pass."""
    stream = StreamConfig()
    session = _micro_session(stream)
    model, cache, c = session.model, session.cache, stream.chunk_frames
    tokens = model.tokens_per_frame(session.latent_hw)  # 64 px / 8 -> 8x8 latents -> 4x4 tokens
    assert tokens == 16
    for i in range(8):  # the cache is full from chunk 6 on (2 conditions + 3 sink + 18 window)
        assert cache.plan_chunk(c).key_end == live_key_frames(stream, 2, i)
        noises = [torch.randn(1, MICRO.in_dim, c, *session.latent_hw) for _ in stream.steps]
        counted = _counted(lambda: denoise_chunk(model, cache, session.text, noises, session.timesteps,
                                                 session.schedule, i))
        assert counted == chunk_flops(MICRO, stream, tokens, 2, i).total
    assert live_key_frames(stream, 2, 7) == 23


def test_teacher_flops_equal_a_brute_force_count():
    torch.manual_seed(0)
    model = WanDiT(MICRO).eval().requires_grad_(False)
    conditions, noise = torch.randn(1, 4, 2, 8, 8), torch.randn(1, 4, 6, 8, 8)
    text, negative = torch.randn(1, MICRO.text_len, MICRO.text_dim), torch.zeros(1, MICRO.text_len, MICRO.text_dim)
    counted = _counted(lambda: sample_teacher(model, conditions, text, negative, noise, FlowMatchSchedule(), 2))
    text_kv = _counted(lambda: model.text_kv(torch.cat([text, negative])))  # once per prompt, not per pass
    assert counted - text_kv == teacher_flops(MICRO, 16, 2, 6, steps=2).total


def test_pass_flops_by_hand():
    """One pass of the Wan2.2-TI2V-5B preset at 704x1280 (880 tokens/frame), 3 frames against 23."""
    cfg = preset("wan2.2-ti2v-5b")
    f = pass_flops(cfg, 880, 3, 23)
    n, d = 3 * 880, 3072
    assert f.self_proj == 30 * 8 * n * d * d
    assert f.self_attn == 30 * 4 * n * 23 * 880 * d
    assert f.ffn == 30 * 4 * n * d * 14336
    assert f.cross == 30 * (4 * n * d * d + 4 * n * 512 * d)
    assert f.head == 2 * n * d * 48 * 4
    assert f.embed == 2 * n * 48 * 4 * d + 2 * 3 * (256 * d + d * d + 6 * d * d)
    assert f.total == f.embed + f.self_proj + f.self_attn + f.cross + f.ffn + f.head


# ---------------------------------------------------------------------------------------------- instruments
def test_percentile_and_timed_codec():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0
    codec = StandInCodec(VAE_FACTORS["tiny"])
    timed = TimedCodec(codec, Clock("cpu"))
    z = torch.randn(1, 16, 3, 4, 4)
    video, state = timed.decode(z)
    assert timed.decode_calls == 1 and timed.decode_seconds > 0
    assert torch.equal(video, codec.decode(z)[0]) and state == 3
    assert (timed.latent_channels, timed.spatial_factor, timed.temporal_factor) == (16, 8, 4)


def test_standin_codec_has_wan22_shape_arithmetic():
    codec = StandInCodec(VAE_FACTORS["wan2.2-ti2v-5b"])
    assert (codec.latent_channels, codec.spatial_factor, codec.causal_first_frame) == (48, 16, True)
    z = torch.randn(1, 48, 3, 4, 6)
    first, state = codec.decode(z)
    later, state = codec.decode(z, state)
    assert first.shape == (1, 3, 9, 64, 96) and later.shape == (1, 3, 12, 64, 96)  # 1 + 4 + 4, then 4 + 4 + 4
    assert first.shape[2] == codec.pixel_frames(3) and later.shape[2] == codec.pixel_frames(3, first=False)
    assert codec.latent_frames(81) == 21 and codec.encode_video(torch.zeros(1, 3, 81, 64, 96)).shape[2] == 21
    assert codec.encode_image(torch.zeros(2, 3, 64, 96)).shape == (2, 48, 1, 4, 6)
    assert first.abs().max() <= 1


def test_random_prompt_encoder():
    enc = RandomPromptEncoder(8, 5, seed=1)
    ctx = enc.encode(["a person walks", "", "a person walks"])
    assert ctx.shape == (3, 5, 8) and bool((ctx[1] == 0).all()) and torch.equal(ctx[0], ctx[2])
    assert not torch.equal(ctx[0], enc.encode("a person waves")[0])


def test_switch_latency_from_oracle_frames():
    """Old/new 'renders' are flat figures of two colours; the generated video switches at frame 17."""
    plate = torch.full((3, 32, 32), 0.8)
    old, new = plate.repeat(30, 1, 1, 1), plate.repeat(30, 1, 1, 1)
    old[:, :, 8:24, 10:22] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]  # a red figure
    new[:, :, 8:24, 10:22] = torch.tensor([-1.0, -1.0, 1.0])[:, None, None]  # a blue figure
    video = torch.cat([old[:17], new[17:]])
    found = switch_latency(video, 12, old, new, plate, stable=3)
    assert found.frames == 5 and found.retrieved == [0] * 5 + [1] * 13
    assert switch_latency(old, 12, old, new, plate).frames is None
    flicker = torch.cat([old[:12], new[12:13], old[13:17], new[17:]])  # one early lucky frame does not count
    assert switch_latency(flicker, 12, old, new, plate, stable=3).frames == 5


def test_the_gpu_command_runs_on_the_cpu_at_a_reduced_size():
    """`bench --device cuda --preset wan2.2-ti2v-5b --random-weights` (the real-scale student): the same code path
    on the CPU with one of its 30 blocks at 32x32 (one token a frame), random weights and the VAE stand-in."""
    from fashionchameleon.lab.bench.setup import build_setup

    cfg = BenchConfig(preset="wan2.2-ti2v-5b", random_weights=True, layers=1, size=(32, 32), chunks=1,
                      warmup_chunks=0, long_frames=12, switch_after_chunks=1, switch_chunks=1, teacher_steps=1,
                      teacher_chunks=1, peak_size=64, peak_seconds=0.01)
    r = run_bench(cfg, build_setup(cfg))
    _check_result(r)
    assert r["preset"] == "wan2.2-ti2v-5b" and r["resolution"] == [32, 32] and r["weights"] == "random"
    model = r["details"]["model"]
    assert (model["dim"], model["layers"], model["tokens_per_frame"]) == (3072, 1, 1)
    assert model["codec"] == "StandInCodec" and model["cache_frames"] == 23  # 2 conditions + sink 3 + window 18
