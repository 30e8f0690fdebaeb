"""Model and streaming configuration: dataclasses, named presets, and inference from weights.

A `ModelConfig` describes one DiT in the Wan layout; a `StreamConfig` describes how a causal
student streams (chunk size, attention sink, FIFO window). Both serialise to JSON so that a
checkpoint carries its own config in its safetensors metadata.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Mapping

import torch

from .garment_layout import check_layout

__all__ = ["ModelConfig", "StreamConfig", "JsonConfig", "PRESETS", "preset", "infer_config", "ConfigError",
           "DTYPE_NAMES", "TRAINED_STREAM_KEY"]


# The dtype names every command line and widget of the pack accepts.
DTYPE_NAMES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class ConfigError(ValueError):
    """A config (or a state dict from which one is inferred) is not usable."""


class JsonConfig:
    """JSON round trip for frozen config dataclasses (what checkpoints store in their metadata)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | Mapping):
        data = json.loads(text) if isinstance(text, str) else dict(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}")
        return cls(**data)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ModelConfig(JsonConfig):
    """Hyper-parameters of one Wan-layout DiT.

    Field names follow the original Wan `WanModel.__init__` arguments so that a real config
    reads the same here and there.
    """

    name: str = "custom"
    dim: int = 256  # hidden size
    ffn_dim: int = 1024
    num_heads: int = 4
    num_layers: int = 8
    in_dim: int = 16  # latent channels in
    out_dim: int = 16  # latent channels out
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (t, h, w)
    text_dim: int = 4096  # prompt-encoder feature size
    text_len: int = 512  # prompt tokens after padding
    freq_dim: int = 256  # sinusoidal timestep embedding size
    eps: float = 1e-6
    qk_norm: bool = True
    cross_attn_norm: bool = True
    rope_theta: float = 10000.0
    # the embedded model's aligned garment input (`dit/garment_hint.py`): this many garment slots, each laid
    # where it is worn, enter every video frame's tokens through `garment_embedding`; 0 (Wan) = none
    garment_hint: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        if self.garment_hint < 0:
            raise ConfigError(f"garment_hint must be >= 0 slots, got {self.garment_hint}")
        if self.dim % self.num_heads:
            raise ConfigError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.head_dim % 2:
            raise ConfigError(f"head_dim {self.head_dim} must be even for RoPE")
        if self.patch_size[0] != 1:
            raise ConfigError("temporal patch size must be 1: every latent frame is one cache frame")
        for name in ("dim", "ffn_dim", "num_heads", "num_layers", "in_dim", "out_dim", "text_dim", "text_len"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    def num_parameters(self) -> int:
        """Parameter count computed from the config alone (matches `WanDiT` exactly)."""
        d, f = self.dim, self.ffn_dim
        pt, ph, pw = self.patch_size
        linear = lambda i, o: i * o + o  # noqa: E731 — weight + bias
        attn = 4 * linear(d, d) + (2 * d if self.qk_norm else 0)
        block = 2 * attn + (2 * d if self.cross_attn_norm else 0) + linear(d, f) + linear(f, d) + 6 * d
        embed = (self.in_dim * pt * ph * pw * d + d) + linear(self.text_dim, d) + linear(d, d)
        embed += linear(self.freq_dim, d) + linear(d, d) + linear(d, 6 * d)
        head = linear(d, self.out_dim * pt * ph * pw) + 2 * d
        hint = self.garment_hint * self.in_dim * pt * ph * pw * d  # (no bias)
        return embed + self.num_layers * block + head + hint



# metadata key of a student checkpoint: the StreamConfig (JSON) it streams with (the context it was
# trained on, and settings such as phase_norm chosen for it)
TRAINED_STREAM_KEY = "trained_stream"


@dataclass(frozen=True)
class StreamConfig(JsonConfig):
    """How a causal student streams, in latent frames.

    The cache holds, in order: the condition frames (reference view(s), garment slot(s)), an
    attention *sink* (the first `sink_frames` video frames after a (re)start, never evicted) and
    a FIFO *window* of `window_frames` recent video frames that includes the chunk being
    generated. The paper's "23-frame cache with a 5-frame sink" is this layout with 2 condition
    frames: 2 + 3 (sink) + 18 (window) = 23, sink counted with the conditions = 5.

    `rope` chooses how temporal positions behave once the window is full:
      - "absolute": keys keep the absolute position they were written at (Self-Forcing, the
        paper); positions grow without bound over a long stream;
      - "rolling": when the window slides by one chunk, the window's keys are re-rotated back by
        one chunk, so the newest chunk always sits at the same position and relative distances
        stay inside what the model saw in training (positions bounded for endless streams).

    `phase_norm` (off by default): once the window has evicted a chunk (a withdraw starts over),
    i.e. past any context a rollout that fits the cache showed the student, each finished chunk is
    patch-phase normalised before its clean KV pass (`runtime/stream/phase_norm.py`): a guard
    against the patch-periodic error feedback of a student streamed past its training horizon.
    Chunks before that are left exactly as the model made them.

    `reproject` (off by default), under the same condition: each finished chunk is decoded and
    encoded again before its clean KV pass, so the cache holds the codec's latents of the frames
    shown (`runtime/stream/reproject.py`). It needs a codec whose latent frames are independent
    (the embedded tiny codec), costs one decode and one encode a chunk, and is the embedded
    student's default (its file's `trained_stream` metadata).

    `garment_layout` ("frame" by default): where garment images are put before they are encoded
    (`runtime/garment_layout.py`); "body" moves each garment to where it is worn in the portrait
    world, as the student's training flat-lays were. Its file's `trained_stream` says which.
    """

    chunk_frames: int = 3
    sink_frames: int = 3
    window_frames: int = 18
    steps: tuple[int, ...] = (1000, 750, 500, 250)  # few-step list, warped onto the shifted table
    shift: float = 5.0
    context_noise: int = 0  # timestep of the clean pass that writes a chunk's KV
    rope: str = "rolling"
    phase_norm: bool = False  # once the window has slid, equalise each chunk's patch phases (phase_norm.py)
    reproject: bool = False  # once the window has slid, re-encode each chunk's decoded frames (reproject.py)
    garment_layout: str = "frame"  # garment images as given ("frame") or laid where worn ("body"; garment_layout.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(int(s) for s in self.steps))
        c = self.chunk_frames
        if c <= 0:
            raise ConfigError(f"chunk_frames must be positive, got {c}")
        if self.sink_frames < 0 or self.sink_frames % c:
            raise ConfigError(f"sink_frames ({self.sink_frames}) must be a non-negative multiple of chunk_frames ({c})")
        if self.window_frames < c or self.window_frames % c:
            raise ConfigError(f"window_frames ({self.window_frames}) must be a positive multiple of chunk_frames ({c})")
        if self.rope not in ("absolute", "rolling"):
            raise ConfigError(f"rope must be 'absolute' or 'rolling', got {self.rope!r}")
        if not self.steps or any(not 0 < s <= 1000 for s in self.steps):
            raise ConfigError(f"steps must be timesteps in (0, 1000], got {self.steps}")
        check_layout(self.garment_layout, ConfigError)

    @classmethod
    def trained(cls, chunk_frames: int, chunks: int) -> "StreamConfig":
        """The layout whose newest chunk sees exactly what a student trained on `chunks`-chunk rollouts saw.

        A one-chunk sink plus a window of the other chunks: every chunk of an endless stream then
        attends to as many frames, at the same (rolling) positions, as the last chunk of a training
        rollout. A longer window shows the model contexts it never saw, and errors compound.
        """
        if chunks < 1:
            raise ConfigError(f"rollouts have at least one chunk, got {chunks}")
        sink = chunk_frames if chunks > 1 else 0
        return cls(chunk_frames=chunk_frames, sink_frames=sink, window_frames=chunks * chunk_frames - sink)

    def cache_frames(self, num_conditions: int = 2) -> int:
        """Total cache length in latent frames for a given number of condition frames."""
        return num_conditions + self.sink_frames + self.window_frames


PRESETS: dict[str, ModelConfig] = {
    # The embedded model: 64 tokens per latent frame at 128x128 px (8x spatial codec, patch 2),
    # sized so that 5 passes per 3-frame chunk stream in real time on a 2-core CPU.
    "tiny": ModelConfig(name="tiny", dim=256, ffn_dim=1024, num_heads=4, num_layers=8, in_dim=16, out_dim=16,
                        text_dim=128, text_len=16, freq_dim=128),
    # Wan2.2-TI2V-5B (the paper's backbone): 48-channel latents of the 16x Wan2.2 VAE.
    "wan2.2-ti2v-5b": ModelConfig(name="wan2.2-ti2v-5b", dim=3072, ffn_dim=14336, num_heads=24, num_layers=30,
                                  in_dim=48, out_dim=48, text_dim=4096, text_len=512, freq_dim=256),
    # Wan2.1-T2V-1.3B (Self-Forcing's student): 16-channel latents of the 8x Wan2.1 VAE.
    "wan2.1-1.3b": ModelConfig(name="wan2.1-1.3b", dim=1536, ffn_dim=8960, num_heads=12, num_layers=30,
                               in_dim=16, out_dim=16, text_dim=4096, text_len=512, freq_dim=256),
}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def _shape(sd: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in sd:
        raise ConfigError(f"cannot infer the config: key {key!r} is missing (is this a Wan-layout DiT?)")
    return tuple(sd[key].shape)


def infer_config(state_dict: Mapping[str, torch.Tensor], name: str = "inferred") -> ModelConfig:
    """Infer a `ModelConfig` from the shapes of a Wan-layout state dict.

    Heads are not visible in the shapes; they follow Wan's convention of 128-wide heads, or, for
    small models, the preset with the same width.
    """
    dim, in_dim, pt, ph, pw = _shape(state_dict, "patch_embedding.weight")
    ffn_dim = _shape(state_dict, "blocks.0.ffn.0.weight")[0]
    text_dim = _shape(state_dict, "text_embedding.0.weight")[1]
    freq_dim = _shape(state_dict, "time_embedding.0.weight")[1]
    out_dim = _shape(state_dict, "head.head.weight")[0] // (pt * ph * pw)
    layers = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    qk_norm = "blocks.0.self_attn.norm_q.weight" in state_dict
    cross_norm = "blocks.0.norm3.weight" in state_dict
    hint = state_dict["garment_embedding.weight"].shape[1] // in_dim if "garment_embedding.weight" in state_dict else 0
    same_width = [p for p in PRESETS.values() if p.dim == dim]
    heads = same_width[0].num_heads if same_width else max(1, dim // 128)
    text_len = same_width[0].text_len if same_width else 512
    return ModelConfig(name=name, dim=dim, ffn_dim=ffn_dim, num_heads=heads, num_layers=layers, in_dim=in_dim,
                       out_dim=out_dim, patch_size=(pt, ph, pw), text_dim=text_dim, text_len=text_len,
                       freq_dim=freq_dim, qk_norm=qk_norm, cross_attn_norm=cross_norm, garment_hint=hint)
