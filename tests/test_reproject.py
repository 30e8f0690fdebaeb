"""Codec re-projection: the stream's use of it, and where it is refused or left out."""
from __future__ import annotations

import pytest
import torch

from fashionchameleon.lab.bench.standins import StandInCodec, VaeFactors
from fashionchameleon.runtime.config import StreamConfig
from fashionchameleon.runtime.embedded import EmbeddedModel, trained_stream_config
from fashionchameleon.runtime.stream.reproject import codec_round_trip
from fashionchameleon.runtime.stream.session import StreamInputError, StreamSession

from test_stream import _images

SLIDING = StreamConfig(sink_frames=3, window_frames=6)  # chunk 0: sink, 1-2: window, 3 on: sliding


def _causal_like(codec) -> StandInCodec:
    """A causal stand-in VAE with `codec`'s factors and channels (so the micro DiT takes its latents)."""
    return StandInCodec(VaeFactors(codec.spatial_factor, codec.temporal_factor, True, codec.latent_channels))


def _chunks(model, codec, text, cfg):
    s = StreamSession(model, codec, text, _images(1), {"full": _images(10)[0]}, "a person walks", seed=3, config=cfg)
    return list(s.generate(30)), s


def test_the_stream_reprojects_chunks_once_its_window_slides(micro_model, micro_codec, micro_text):
    plain, plain_session = _chunks(micro_model, micro_codec, micro_text, SLIDING)
    projected, projected_session = _chunks(micro_model, micro_codec, micro_text, SLIDING.replace(reproject=True))
    assert len(projected) == 5
    assert all(torch.equal(a.latents, b.latents) for a, b in zip(plain[:3], projected[:3]))  # inside the horizon
    round_trip = codec_round_trip(micro_codec, plain[3].latents)
    assert not torch.allclose(round_trip, plain[3].latents, atol=1e-2)  # the map does something here
    assert torch.allclose(projected[3].latents, round_trip, atol=1e-5)
    frames, _ = micro_codec.decode(round_trip)
    assert torch.allclose(projected[3].frames, frames.float(), atol=1e-5)  # the frames shown are of the cached latents
    assert not torch.allclose(plain_session.cache.k, projected_session.cache.k)  # the KV pass saw the projection


def test_the_round_trip_keeps_the_shape_and_is_near_a_fixed_point_on_codec_latents(micro_codec):
    video = _images(4, 12).permute(1, 0, 2, 3)[None]  # [1, 3, 12, H, W]
    z = micro_codec.encode_video(video).float()  # [1, C, 3, h, w]
    once = codec_round_trip(micro_codec, z)
    twice = codec_round_trip(micro_codec, once)
    assert once.shape == z.shape and once.dtype == torch.float32
    assert (twice - once).abs().mean() < (once - z).abs().mean()  # a projection settles, noise does not


def test_a_causal_codec_is_refused_with_what_to_do(micro_model, micro_codec, micro_text):
    causal = _causal_like(micro_codec)
    with pytest.raises(StreamInputError, match="causal .* set reproject to false"):
        StreamSession(micro_model, causal, micro_text, _images(1), {"full": _images(10)[0]}, "",
                      config=SLIDING.replace(reproject=True))


def test_the_embedded_session_leaves_it_out_for_a_causal_codec(micro_model, micro_codec, micro_text):
    embedded = EmbeddedModel(micro_codec, micro_text, student=micro_model)
    embedded.stream_config = SLIDING.replace(reproject=True)
    refs, garments = _images(1), {"full": _images(10)[0]}
    assert embedded.session(refs, garments).config.reproject is True
    causal = _causal_like(micro_codec)
    assert embedded.session(refs, garments, codec=causal).config.reproject is False
    with pytest.raises(StreamInputError, match="causal"):  # asked for explicitly: refused, not dropped
        embedded.session(refs, garments, codec=causal, config=SLIDING.replace(reproject=True))


def test_a_student_file_can_ask_for_it():
    meta = {"trained_stream": StreamConfig(sink_frames=3, window_frames=9, reproject=True).to_json()}
    assert trained_stream_config(meta).reproject is True
    assert StreamConfig().reproject is False
