"""Unit tests for the latent codec (`fashionchameleon.runtime.encoders.codec`) and prompt encoder (`fashionchameleon.runtime.encoders.text`)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fashionchameleon.runtime.encoders.codec import (  # noqa: E402
    LatentCodec,
    TinyCodec,
    TinyCodecConfig,
    latent_frame_count,
    pixel_frame_count,
)
from fashionchameleon.runtime.encoders.text import (  # noqa: E402
    MOTION_VOCAB,
    PAD_ID,
    UNK_ID,
    PromptEncoder,
    TinyPromptEncoder,
    TinyTextConfig,
    tokenize,
)


@pytest.fixture(scope="module")
def codec() -> TinyCodec:
    torch.manual_seed(0)
    return TinyCodec().eval()


@pytest.fixture(scope="module")
def text_encoder() -> TinyPromptEncoder:
    torch.manual_seed(0)
    return TinyPromptEncoder().eval()


def _video(b: int, t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, h, w, generator=g) * 2 - 1


# ----------------------------------------------------------------------------------------------
# codec
# ----------------------------------------------------------------------------------------------


def test_codec_round_trip_shapes_and_range(codec):
    video = _video(2, 8, 32, 48)
    with torch.no_grad():
        z = codec.encode_video(video)
        out, state = codec.decode(z)
    assert z.shape == (2, 16, 2, 4, 6)
    assert out.shape == video.shape
    assert state is None
    assert out.dtype == torch.float32
    assert out.abs().max().item() <= 1.0


def test_frame_count_arithmetic(codec):
    assert codec.causal_first_frame is False
    for f in range(1, 6):
        assert codec.pixel_frames(f) == 4 * f
        assert codec.pixel_frames(f, first=False) == 4 * f
        assert codec.latent_frames(codec.pixel_frames(f)) == f
    with pytest.raises(ValueError, match=r"10 pixel frames.*multiples of 4.*8 or 12"):
        codec.latent_frames(10)
    with pytest.raises(ValueError, match=r"nearest valid: 4$"):
        codec.latent_frames(3)
    with pytest.raises(ValueError, match="10 pixel frames"):
        codec.encode_video(_video(1, 10, 16, 16))
    # the causal (Wan) layout: T = 1 + 4 (F - 1) for a stream start, 4F for a later chunk
    assert pixel_frame_count(3, 4, True) == 9
    assert pixel_frame_count(3, 4, True, first=False) == 12
    assert pixel_frame_count(0, 4, True) == 0
    for f in range(1, 6):
        assert latent_frame_count(pixel_frame_count(f, 4, True), 4, True) == f
    with pytest.raises(ValueError, match=r"1 \+ 4\*k.*9 or 13"):
        latent_frame_count(10, 4, True)


def test_encode_image_is_one_still_group(codec):
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 24, 16, generator=g) * 2 - 1
    with torch.no_grad():
        z = codec.encode_image(image)
        still = codec.encode_video(image[:, :, None].repeat(1, 1, 4, 1, 1))
    assert z.shape == (2, 16, 1, 3, 2)
    assert torch.equal(z, still)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        codec.encode_image(image[:, None])


def test_decode_frames_independently(codec):
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 16, 3, 4, 4, generator=g)
    with torch.no_grad():
        together, state = codec.decode(z)
        parts = []
        for f in range(3):
            part, s = codec.decode(z[:, :, f:f + 1], state=state)
            assert s is None
            parts.append(part)
    assert state is None
    separate = torch.cat(parts, dim=2)
    assert together.shape == (2, 3, 12, 32, 32)
    assert (together - separate).abs().max().item() <= 1e-5
    # and the frames are not trivially identical across latent frames
    assert (together[:, :, :4] - together[:, :, 4:8]).abs().max().item() > 1e-3


def test_latent_normalisation():
    torch.manual_seed(0)
    codec = TinyCodec().eval()
    video = _video(1, 4, 16, 16, seed=3)
    with torch.no_grad():
        raw = codec.encode_video(video)
        decoded_raw, _ = codec.decode(raw)
        g = torch.Generator().manual_seed(4)
        mean = torch.randn(16, generator=g)
        std = torch.rand(16, generator=g) + 0.5
        codec.set_latent_stats(mean, std)
        z = codec.encode_video(video)
        decoded, _ = codec.decode(z)
    expected = (raw - mean.view(1, 16, 1, 1, 1)) / std.view(1, 16, 1, 1, 1)
    assert (z - expected).abs().max().item() <= 1e-5
    assert (z - raw).abs().max().item() > 0.1  # the stats really changed the latents
    assert (decoded - decoded_raw).abs().max().item() <= 1e-5  # decode undoes the normalisation
    assert torch.equal(codec.latent_mean, mean) and torch.equal(codec.latent_std, std)
    assert "latent_mean" in codec.state_dict() and "latent_std" in codec.state_dict()
    codec.set_latent_stats(0.5, 2.0)  # scalars broadcast to all channels
    assert torch.equal(codec.latent_std, torch.full((16,), 2.0))
    with pytest.raises(ValueError, match="positive"):
        codec.set_latent_stats(0.0, torch.zeros(16))
    with pytest.raises(ValueError, match=r"\[16\]"):
        codec.set_latent_stats(torch.zeros(3), torch.ones(3))


def test_bad_spatial_size_is_named(codec):
    with pytest.raises(ValueError, match=r"36x32.*spatial factor 8"):
        codec.encode_video(_video(1, 4, 36, 32))
    with pytest.raises(ValueError, match=r"16x20.*spatial factor 8"):
        codec.encode_image(torch.zeros(1, 3, 16, 20))


def test_codec_satisfies_protocol(codec):
    assert isinstance(codec, LatentCodec)
    assert (codec.latent_channels, codec.spatial_factor, codec.temporal_factor) == (16, 8, 4)
    names = [n for n, _ in codec.named_parameters()]
    assert names and all(n.startswith(("encoder.", "decoder.")) for n in names)
    assert not isinstance(object(), LatentCodec)


def test_codec_is_trainable():
    torch.manual_seed(0)
    codec = TinyCodec(TinyCodecConfig(widths=(16, 32, 48)))
    # a smooth, structured batch: horizontal colour ramps that drift over time
    t = torch.linspace(0, 1, 4).view(1, 1, 4, 1, 1)
    x = torch.linspace(-1, 1, 32).view(1, 1, 1, 1, 32)
    c = torch.tensor([0.8, -0.5, 0.3]).view(1, 3, 1, 1, 1)
    video = (torch.sin(3 * x + 2 * t) * c).expand(2, 3, 4, 32, 32).contiguous()
    opt = torch.optim.Adam(codec.parameters(), lr=2e-3)

    def loss() -> torch.Tensor:
        out, _ = codec.decode(codec.encode_video(video))
        return torch.mean((out - video) ** 2)

    first = loss().item()
    for _ in range(30):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    last = loss().item()
    assert last < 0.5 * first, (first, last)


def test_codec_config_json():
    cfg = TinyCodecConfig(latent_channels=8, spatial_factor=16, temporal_factor=2, widths=(8, 16, 24, 32))
    again = TinyCodecConfig.from_json(cfg.to_json())
    assert again == cfg and isinstance(again.widths, tuple)
    assert TinyCodecConfig.from_json({"latent_channels": 4}).latent_channels == 4
    with pytest.raises(ValueError, match="unknown TinyCodecConfig fields.*'depth'"):
        TinyCodecConfig.from_json('{"depth": 3}')
    with pytest.raises(ValueError, match="log2"):
        TinyCodecConfig(spatial_factor=16, widths=(8, 16, 32))
    with pytest.raises(ValueError, match="power of two"):
        TinyCodecConfig(spatial_factor=12)
    # a non-default config builds a codec with the promised geometry
    codec = TinyCodec(cfg)
    with torch.no_grad():
        z = codec.encode_video(_video(1, 4, 32, 16))
        out, _ = codec.decode(z)
    assert z.shape == (1, 8, 2, 2, 1) and out.shape == (1, 3, 4, 32, 16)


# ----------------------------------------------------------------------------------------------
# prompt encoder
# ----------------------------------------------------------------------------------------------


def _id(word: str) -> int:
    return MOTION_VOCAB.index(word) + 2


def test_vocabulary():
    assert 60 <= len(MOTION_VOCAB) <= 100
    assert len(set(MOTION_VOCAB)) == len(MOTION_VOCAB)
    garment_or_colour = {"shirt", "dress", "skirt", "jacket", "pants", "red", "blue", "white", "striped", "wearing"}
    assert not garment_or_colour & set(MOTION_VOCAB)
    assert {"walk", "turn", "around", "wave", "sway", "squat", "back"} <= set(MOTION_VOCAB)


def test_tokenize():
    assert tokenize("walk", 4) == [_id("walk"), PAD_ID, PAD_ID, PAD_ID]
    assert tokenize("A Woman WALKS-forward, then turns!", 8) == [
        _id("a"), _id("woman"), _id("walks"), _id("forward"), _id("then"), _id("turns"), PAD_ID, PAD_ID]
    assert tokenize("a red shirt", 4) == [_id("a"), UNK_ID, UNK_ID, PAD_ID]
    assert tokenize("walk2turn", 3) == [_id("walk"), _id("turn"), PAD_ID]  # digits split words
    assert tokenize("the person walks then turns around", 3) == [_id("the"), _id("person"), _id("walks")]
    assert tokenize("", 5) == [PAD_ID] * 5
    assert tokenize("walk back", 2, vocab=("back", "walk")) == [3, 2]


def test_empty_prompt_is_zero(text_encoder):
    with torch.no_grad():
        ctx = text_encoder.encode(["", "the woman walks forward"])
    assert ctx[0].abs().max().item() == 0.0
    assert ctx[1, 4:].abs().max().item() == 0.0  # pad positions zeroed
    assert ctx[1, :4].abs().min(dim=-1).values.gt(0).all()  # real tokens are not
    assert torch.isfinite(ctx).all()


def test_prompts_differ_and_are_deterministic(text_encoder):
    prompts = ["a woman walks forward", "a woman turns around", "xyzzy"]
    with torch.no_grad():
        a = text_encoder.encode(prompts)
        b = text_encoder.encode(prompts)
    assert torch.equal(a, b)
    assert (a[0] - a[1]).abs().max().item() > 1e-2
    assert a[2, 0].abs().max().item() > 1e-2  # an unknown word still encodes (unk token)


def test_output_shape_and_dtype(text_encoder):
    with torch.no_grad():
        ctx = text_encoder.encode(["walk", "wave", "sway"])
    assert ctx.shape == (3, 16, 128) and ctx.dtype == torch.float32
    assert (text_encoder.text_dim, text_encoder.text_len) == (128, 16)
    torch.manual_seed(0)
    double = TinyPromptEncoder(TinyTextConfig(text_dim=32, text_len=6)).to(torch.float64)
    with torch.no_grad():
        out = double.encode(["a person waves hand"])
    assert out.shape == (1, 6, 32) and out.dtype == torch.float64


def test_batch_equals_single(text_encoder):
    prompts = ["", "a woman walks forward slowly", "the model turns around to the back", "squat then jump",
               "wave"]
    with torch.no_grad():
        batch = text_encoder.encode(prompts)
        single = torch.cat([text_encoder.encode([p]) for p in prompts])
    assert (batch - single).abs().max().item() <= 1e-5


def test_multi_layer_encoder_and_gradients():
    torch.manual_seed(0)
    enc = TinyPromptEncoder(TinyTextConfig(layers=2))
    ctx = enc.encode(["a man walks left", ""])
    assert ctx[1].abs().max().item() == 0.0
    ctx.pow(2).sum().backward()
    assert enc.token_embedding.weight.grad.abs().sum().item() > 0
    assert enc.layers[0].qkv.weight.grad.abs().sum().item() > 0


def test_prompt_encoder_protocol(text_encoder):
    assert isinstance(text_encoder, PromptEncoder)
    assert not isinstance(TinyCodec(), PromptEncoder)


def test_text_config_json():
    cfg = TinyTextConfig(text_dim=64, text_len=8, layers=2, vocab=("walk", "turn"))
    again = TinyTextConfig.from_json(cfg.to_json())
    assert again == cfg and again.vocab == ("walk", "turn") and again.vocab_size == 4
    assert TinyTextConfig.from_json("{}").vocab == MOTION_VOCAB
    with pytest.raises(ValueError, match="unknown TinyTextConfig fields.*'depth'"):
        TinyTextConfig.from_json({"depth": 2})
    with pytest.raises(ValueError, match="duplicate"):
        TinyTextConfig(vocab=("walk", "walk"))
    with pytest.raises(ValueError, match="divisible"):
        TinyTextConfig(width=130, heads=4)
