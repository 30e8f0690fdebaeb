"""Config presets, validation, JSON round trips, and the command line."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.__main__ import main
from fashionchameleon.runtime.config import ConfigError, ModelConfig, StreamConfig, infer_config, preset
from fashionchameleon.runtime.dit.model import WanDiT


def test_real_presets_have_the_published_shapes():
    c = preset("wan2.2-ti2v-5b")
    assert (c.dim, c.num_layers, c.num_heads, c.ffn_dim, c.in_dim, c.patch_size, c.text_dim, c.head_dim) == \
        (3072, 30, 24, 14336, 48, (1, 2, 2), 4096, 128)
    assert abs(c.num_parameters() - 5.0e9) / 5.0e9 < 0.01
    w = preset("wan2.1-1.3b")
    assert (w.dim, w.num_heads, w.in_dim) == (1536, 12, 16) and 1.3e9 < w.num_parameters() < 1.5e9


def test_tiny_preset_is_small_and_counts_exactly():
    c = preset("tiny")
    assert c.num_parameters() == sum(p.numel() for p in WanDiT(c).parameters()) < 20_000_000


def test_stream_defaults_are_the_papers_cache():
    s = StreamConfig()
    assert (s.chunk_frames, s.sink_frames, s.window_frames) == (3, 3, 18)
    assert s.cache_frames(num_conditions=2) == 23 and s.cache_frames(2) - s.window_frames == 5  # 5-frame sink


@pytest.mark.parametrize("kwargs,message", [
    (dict(dim=100, num_heads=3), "not divisible"),
    (dict(patch_size=(2, 2, 2)), "temporal patch size must be 1"),
    (dict(num_layers=0), "num_layers must be positive"),
])
def test_bad_model_configs_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**kwargs)


@pytest.mark.parametrize("kwargs,message", [
    (dict(sink_frames=4), "multiple of chunk_frames"),
    (dict(window_frames=0), "positive multiple"),
    (dict(rope="relative"), "'absolute' or 'rolling'"),
    (dict(steps=(1000, 0)), "steps must be timesteps"),
])
def test_bad_stream_configs_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        StreamConfig(**kwargs)


def test_json_round_trips_and_unknown_fields():
    c = preset("tiny").replace(num_layers=3)
    assert ModelConfig.from_json(c.to_json()) == c
    assert StreamConfig.from_json(StreamConfig(rope="absolute").to_json()) == StreamConfig(rope="absolute")
    with pytest.raises(ConfigError, match="unknown ModelConfig fields.*'depth'"):
        ModelConfig.from_json('{"depth": 3}')
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("wan3")


def test_infer_config_recovers_the_shapes():
    c = preset("tiny").replace(num_layers=2, ffn_dim=96)
    inferred = infer_config(WanDiT(c).state_dict())
    assert inferred.replace(name=c.name) == c
    with pytest.raises(ConfigError, match="patch_embedding.weight"):
        infer_config({"foo": torch.zeros(1)})


def test_cli_info_and_demo(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "wan2.2-ti2v-5b" in out and "4,999,787,712" in out and "23-frame cache" in out
    assert main(["demo", "--weights", "/nonexistent"]) == 0
    assert "needs the trained embedded model" in capsys.readouterr().out
