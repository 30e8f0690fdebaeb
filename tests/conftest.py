"""Shared fixtures: micro models that run in milliseconds on a CPU."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.codec import TinyCodec, TinyCodecConfig
from fashionchameleon.config import ModelConfig
from fashionchameleon.model import WanDiT
from fashionchameleon.text import TinyPromptEncoder, TinyTextConfig

MICRO = ModelConfig(name="micro", dim=32, ffn_dim=64, num_heads=2, num_layers=2, in_dim=4, out_dim=4,
                    text_dim=16, text_len=4, freq_dim=32)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (zero-initialised head included) a random value so outputs depend on inputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


@pytest.fixture
def micro_model() -> WanDiT:
    torch.manual_seed(0)
    return randomize(WanDiT(MICRO)).eval()


@pytest.fixture
def micro_codec() -> TinyCodec:
    torch.manual_seed(1)
    return randomize(TinyCodec(TinyCodecConfig(latent_channels=4, spatial_factor=4, temporal_factor=2,
                                               widths=(8, 8))), seed=1).eval()


@pytest.fixture
def micro_text() -> TinyPromptEncoder:
    torch.manual_seed(2)
    return TinyPromptEncoder(TinyTextConfig(text_dim=16, text_len=4, width=16, layers=1, heads=2)).eval()
