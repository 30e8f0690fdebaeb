"""Shared fixtures: micro models that run in milliseconds on a CPU, and the node layer on the ComfyUI stand-in."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.runtime.encoders import codec as fc_codec
from fashionchameleon.runtime.encoders import text as fc_text
from fashionchameleon.runtime.encoders.codec import TinyCodec
from fashionchameleon.runtime.config import ModelConfig
from fashionchameleon.runtime.dit.model import WanDiT
from fashionchameleon.runtime.encoders.text import TinyPromptEncoder

# the micro model as the `model` overrides a training stage's config takes, and as a ModelConfig
MICRO_FIELDS = dict(dim=32, ffn_dim=64, num_heads=2, num_layers=2, in_dim=4, out_dim=4, text_dim=16, text_len=4,
                    freq_dim=32)
MICRO = ModelConfig(name="micro", **MICRO_FIELDS)
MICRO_TEXT = dict(text_dim=16, text_len=4, width=16, layers=1, heads=2)  # its prompt encoder (TinyTextConfig fields)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (zero-initialised head included) a random value so outputs depend on inputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def make_micro_codec(codec_module=fc_codec) -> TinyCodec:
    """The micro codec (4 channels, 4x spatial, 2x temporal), from `codec_module` (the engine's, or the pack's copy)."""
    torch.manual_seed(1)
    return randomize(codec_module.TinyCodec(codec_module.TinyCodecConfig(latent_channels=4, spatial_factor=4,
                                                                         temporal_factor=2, widths=(8, 8))),
                     seed=1).eval()


def make_micro_text(text_module=fc_text) -> TinyPromptEncoder:
    """The micro prompt encoder (16 wide, 4 tokens), from `text_module`."""
    torch.manual_seed(2)
    return text_module.TinyPromptEncoder(text_module.TinyTextConfig(text_dim=16, text_len=4, width=16, layers=1,
                                                                    heads=2)).eval()


@pytest.fixture
def micro_model() -> WanDiT:
    torch.manual_seed(0)
    return randomize(WanDiT(MICRO)).eval()


@pytest.fixture
def micro_codec() -> TinyCodec:
    return make_micro_codec()


@pytest.fixture
def micro_text() -> TinyPromptEncoder:
    return make_micro_text()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """The ComfyUI stand-in installed and the pack loaded as ComfyUI loads it (tests/node_harness.py)."""
    from node_harness import pack_host

    with pack_host(tmp_path_factory.mktemp("models")) as namespace:
        yield namespace


@pytest.fixture(params=[BaseException, Exception], ids=["interrupt-BaseException", "interrupt-Exception"])
def interrupt_base(request, host, monkeypatch):
    """Run a test under both bases of ComfyUI's InterruptProcessingException (0.38: BaseException, 0.8: Exception)."""
    from comfy_stubs import interrupt_exception

    monkeypatch.setattr(host.mm, "InterruptProcessingException", interrupt_exception(request.param))
    return request.param


@pytest.fixture(scope="module")
def model(host):
    """A micro EmbeddedModel (student + try-off DiT), as 'Load FashionChameleon model' would output it."""
    from node_harness import micro_model

    return micro_model(host.E)
