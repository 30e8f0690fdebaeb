"""The embedded model: the tiny codec, prompt encoder, causal student, teacher and try-off DiT
that our own pipeline trained on the procedural world, shipped in `weights/`.

    model = load_embedded()                        # whatever parts exist, on the CPU
    session = model.session(references, {"full": garment}, "a person walks", seed=0)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from .files.checkpoint import CheckpointError, load_checkpoint, read_header
from .files.dit_loading import build_dit
from .encoders.codec import LatentCodec, TinyCodec, TinyCodecConfig
from .config import TRAINED_STREAM_KEY, StreamConfig
from .dit.model import WanDiT
from .garment_layout import recorded_layout
from .stream.reproject import reprojectable
from .rules import require_student
from .stream.session import StreamSession
from .files.paths import WEIGHTS_DIR
from .encoders.text import PromptEncoder, TinyPromptEncoder, TinyTextConfig

__all__ = ["WEIGHTS_DIR", "PARTS", "EmbeddedModel", "load_embedded", "load_codec", "load_text",
           "trained_stream_config"]

log = logging.getLogger(__name__)

PARTS = {"codec": "codec.safetensors", "text": "text.safetensors", "student": "student.safetensors",
         "teacher": "teacher.safetensors", "tryoff": "tryoff.safetensors"}


def trained_stream_config(metadata: Mapping[str, str], path: str | Path = "") -> StreamConfig | None:
    """The stream layout a student checkpoint records for itself (`TRAINED_STREAM_KEY`), or None."""
    raw = metadata.get(TRAINED_STREAM_KEY)
    if raw is None:
        return None
    try:
        return StreamConfig.from_json(raw)
    except (ValueError, TypeError) as exc:  # bad JSON, unknown fields, invalid layout (ConfigError)
        raise CheckpointError(f"{path}: metadata {TRAINED_STREAM_KEY!r} is not a stream layout ({exc}); re-ship "
                              f"the file with `python -m fashionchameleon ship`") from exc


def load_codec(path: str | Path, device: torch.device | str = "cpu") -> TinyCodec:
    ckpt = load_checkpoint(path, "codec")
    codec = TinyCodec(TinyCodecConfig.from_json(ckpt.config))
    codec.load_state_dict(ckpt.tensors)
    return codec.to(device).eval().requires_grad_(False)


def load_text(path: str | Path, device: torch.device | str = "cpu") -> TinyPromptEncoder:
    ckpt = load_checkpoint(path, "text")
    text = TinyPromptEncoder(TinyTextConfig.from_json(ckpt.config))
    text.load_state_dict(ckpt.tensors)
    return text.to(device).eval().requires_grad_(False)


@dataclass
class EmbeddedModel:
    codec: TinyCodec
    text: TinyPromptEncoder
    student: WanDiT | None = None
    teacher: WanDiT | None = None
    tryoff: WanDiT | None = None
    stream_config: StreamConfig = field(default_factory=StreamConfig)
    teacher_layout: str = "frame"  # where the teacher's garment images go before encoding (its file's LAYOUT_KEY)

    def session(self, references: torch.Tensor, garments: dict[str, torch.Tensor], prompt: str = "", seed: int = 0,
                config: StreamConfig | None = None, model: WanDiT | None = None, codec: LatentCodec | None = None,
                prompt_encoder: PromptEncoder | None = None) -> StreamSession:
        """A stream of the causal student (or `model`, e.g. the forcing checkpoint) from images in [-1, 1].

        `codec` / `prompt_encoder` replace the embedded ones (e.g. adapters for a real VAE and text
        encoder, which a real-scale DiT needs). The student's own stream settings are used unless
        `config` is given; their codec re-projection is left out with a causal `codec` (a real VAE).
        """
        dit = model or require_student(self)
        codec = codec or self.codec
        if config is None and self.stream_config.reproject and not reprojectable(codec):
            log.info("streaming without codec re-projection: %s is a causal VAE", type(codec).__name__)
            config = self.stream_config.replace(reproject=False)
        return StreamSession(dit, codec, prompt_encoder or self.text, references, garments, prompt, seed,
                             config or self.stream_config)


def load_embedded(weights_dir: str | Path = WEIGHTS_DIR, device: torch.device | str = "cpu",
                  dtype: torch.dtype | None = None, parts: tuple[str, ...] = tuple(PARTS)) -> EmbeddedModel:
    """Load the parts that exist (codec and text are required); DiTs in `dtype` (default fp32).

    The shipped DiTs are stored in fp16 (see `fashionchameleon.lab.ship`); fp32 is the default compute
    dtype because it is the fastest on CPUs without native bf16/fp16 matmuls.
    """
    dtype = torch.float32 if dtype is None else dtype
    root = Path(weights_dir)
    missing = [PARTS[p] for p in ("codec", "text") if not (root / PARTS[p]).exists()]
    if missing:
        raise FileNotFoundError(f"the embedded model needs {missing} in {root}; see weights/README.md for how "
                                f"they are trained")
    dits = {}
    for part, stages in (("student", ("student",)), ("teacher", ("teacher",)), ("tryoff", ("tryoff",))):
        path = root / PARTS[part]
        if part in parts and path.exists():
            dits[part] = build_dit(path, expect_stage=stages, dtype=dtype, device=device).requires_grad_(False)
    model = EmbeddedModel(load_codec(root / PARTS["codec"], device), load_text(root / PARTS["text"], device), **dits)
    if "student" in dits:
        path = root / PARTS["student"]
        model.stream_config = trained_stream_config(read_header(path).get("__metadata__", {}), path) or StreamConfig()
    if "teacher" in dits:
        path = root / PARTS["teacher"]
        model.teacher_layout = recorded_layout(read_header(path).get("__metadata__", {}), path)
    return model
