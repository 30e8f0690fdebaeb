"""What a benchmark streams: the model, its codec and prompt encoder, the teacher, and the inputs.

Two sources:
  - the embedded model from the weights folder (student, codec, prompt encoder, and the teacher
    when shipped), streaming the bundled sample person and switching to the second sample outfit,
    at the samples' own size, so per-frame garment retrieval against ground-truth renders works;
  - random weights of a preset (`random_weights`, or when no embedded student exists), with the
    decode stand-in codec of the preset's VAE and a random prompt encoder, on the sample images
    resized to the requested size, in the paper's layout: one reference view and one garment slot.

Without an embedded teacher the student's own weights serve as the teacher: the same config
run bidirectionally costs the same, and speed does not depend on the weights' values.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from ...runtime.config import ConfigError, ModelConfig, StreamConfig, preset
from ...runtime.embedded import PARTS, EmbeddedModel, load_embedded
from ...runtime.dit.model import WanDiT
from ..samples import load_sample_inputs
from ...runtime.stream.session import StreamSession
from .config import BenchConfig
from .measure import Clock, TimedCodec
from .standins import VAE_FACTORS, RandomPromptEncoder, StandInCodec

__all__ = ["BenchSetup", "build_setup", "embedded_setup", "random_dit"]

log = logging.getLogger(__name__)


@dataclass
class BenchSetup:
    """Everything the measurements need, on the benchmark's device and dtype."""

    bundle: EmbeddedModel  # student, teacher (same config), prompt encoder, stream config; codec = `codec`
    codec: TimedCodec  # the codec, behind the decode timer
    references: Tensor  # [N, 3, H, W] in [-1, 1]
    garments: dict[str, Tensor]  # slot -> flat-lay [3, H, W]: worn from the start
    switch_garments: dict[str, Tensor]  # slot -> flat-lay [3, H, W]: requested by the switch
    prompt: str
    weights: str  # "embedded" or "random"
    teacher_weights: str  # "embedded", or "student" (the student's weights, same config)
    ground_truth: bool  # renders of the sample person exist for these inputs (switch latency)
    clock: Clock

    @property
    def model(self) -> WanDiT:
        return self.bundle.student

    @property
    def stream_config(self) -> StreamConfig:
        return self.bundle.stream_config

    @property
    def resolution(self) -> tuple[int, int]:
        return int(self.references.shape[-2]), int(self.references.shape[-1])

    @property
    def num_conditions(self) -> int:
        return self.references.shape[0] + len(self.garments)

    def session(self, seed: int) -> StreamSession:
        """A fresh stream of the student from the inputs (encodes them and runs the condition pass)."""
        return self.bundle.session(self.references, self.garments, self.prompt, seed)


def random_dit(cfg: ModelConfig, device: str, dtype: torch.dtype, seed: int = 0) -> WanDiT:
    """A Wan-layout DiT with random weights, built directly on `device` (the output head random too)."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = WanDiT(cfg)
        torch.nn.init.normal_(model.head.head.weight, std=0.02)  # Wan's zero head would output constants
    return model.to(dtype).eval().requires_grad_(False)


def _resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """`[N, 3, h, w]` -> `[N, 3, H, W]` (bilinear; the content only has to look like an image)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False).clamp(-1, 1)


def embedded_setup(model: EmbeddedModel, cfg: BenchConfig, clock: Clock) -> BenchSetup:
    """The embedded model (loaded, or any `EmbeddedModel` with a student) on the bundled samples."""
    refs, outfits, prompt = load_sample_inputs()
    if cfg.size is not None and tuple(cfg.size) != tuple(refs.shape[-2:]):
        raise ConfigError(f"the embedded model is benchmarked on the bundled samples at {refs.shape[-2]}x"
                          f"{refs.shape[-1]}; for another size pass --random-weights")
    codec = TimedCodec(model.codec, clock)
    teacher_weights = "embedded" if model.teacher is not None else "student"
    bundle = replace(model, codec=codec, teacher=model.teacher if model.teacher is not None else model.student)
    return BenchSetup(bundle, codec, refs, dict(outfits[0]), dict(outfits[1]), prompt, "embedded", teacher_weights,
                      True, clock)


def _random_setup(cfg: BenchConfig, clock: Clock) -> BenchSetup:
    model_cfg = preset(cfg.preset)
    if cfg.layers is not None:
        model_cfg = model_cfg.replace(num_layers=cfg.layers)
    factors = VAE_FACTORS.get(cfg.preset)
    if factors is None or factors.channels != model_cfg.in_dim:
        raise ConfigError(f"no decode stand-in for preset {cfg.preset!r}; known: {sorted(VAE_FACTORS)}")
    size = cfg.resolution(cfg.preset)
    dit = random_dit(model_cfg, cfg.device, cfg.torch_dtype, cfg.seed)
    codec = TimedCodec(StandInCodec(factors, cfg.seed).to(cfg.device), clock)
    bundle = EmbeddedModel(codec, RandomPromptEncoder.for_model(model_cfg, cfg.seed), student=dit, teacher=dit,
                           stream_config=StreamConfig())
    refs, outfits, prompt = load_sample_inputs()
    garment = lambda outfit: _resize(outfit["upper"][None], size)[0]  # noqa: E731 — one 'full' slot, as the paper
    return BenchSetup(bundle, codec, _resize(refs[:1], size), {"full": garment(outfits[0])},
                      {"full": garment(outfits[1])}, prompt, "random", "student", False, clock)


def build_setup(cfg: BenchConfig) -> BenchSetup:
    """Set threads, then load the embedded model (if present and wanted) or build random weights."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but this torch sees no CUDA device")
    clock = Clock(cfg.device)
    if not cfg.random_weights and (cfg.weights / PARTS["student"]).exists():
        model = load_embedded(cfg.weights, device=cfg.device, dtype=cfg.torch_dtype, parts=("student", "teacher"))
        setup = embedded_setup(model, cfg, clock)
    else:
        if not cfg.random_weights:
            log.warning("no embedded student in %s: benchmarking random weights of preset %r", cfg.weights,
                        cfg.preset)
        setup = _random_setup(cfg, clock)
    return setup
