"""The real-scale bridge: a ComfyUI VAE as the engine codec (nodes/vae_codec.py, latent_stats.py), CONDITIONING as
its prompt encoder (nodes/conditioning.py), and the checks that they fit the DiT (nodes/fit.py).

A fake ComfyUI VAE (tests/fake_vae.py) with a tiny causal decoder that keeps a real feature cache
stands in for the Wan VAEs; the pack is loaded against the ComfyUI stand-in (tests/comfy_stubs.py).
"""
from __future__ import annotations

import sys

import pytest
import torch

from conftest import randomize
from fake_vae import FakeVAE, FakeWanVAE21, FakeWanVAE21Chunked, FakeWanVAE22, class_path
from node_harness import SIZE, img, micro_parts, run

# SIZE: the fake VAE's 4x spatial x DiT patch 2 -> 8 px unit, as the micro codec's
C, TEXT_DIM, TEXT_LEN = 6, 24, 5  # the micro "real-scale" DiT: not the embedded codec's 4 channels / 16-wide text


@pytest.fixture
def known(host, monkeypatch):
    """Register the fake first-stage models as recognised decoders (as the Wan VAE classes are)."""
    b = host.vae_codec
    monkeypatch.setitem(b.KNOWN_DECODERS, class_path(FakeWanVAE21), b.DecoderSpec(patch=1, first_chunk_flag=False))
    monkeypatch.setitem(b.KNOWN_DECODERS, class_path(FakeWanVAE21Chunked), b.DecoderSpec(patch=1, first_chunk_flag=False))
    monkeypatch.setitem(b.KNOWN_DECODERS, class_path(FakeWanVAE22), b.DecoderSpec(patch=2, first_chunk_flag=True))


def _latents(seed: int, frames: int, c: int = C, hw: int = 4, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, c, frames, hw, hw, generator=torch.Generator().manual_seed(seed))


def _stream_decode(codec, latents: torch.Tensor, sizes: list[int]):
    """Decode `latents` chunk by chunk, passing the state on; returns the frames and the states."""
    out, states, state, at = [], [], None, 0
    for n in sizes:
        video, state = codec.decode(latents[:, :, at:at + n], state)
        out.append(video)
        states.append(state)
        at += n
    return torch.cat(out, dim=2), states


# ----------------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("version,spatial", [("2.1", 4), ("2.1-chunked", 4), ("2.2", 8)])
def test_kept_cache_streaming_equals_one_whole_decode_and_per_call_decode_does_not(host, known, version, spatial):
    vae = FakeVAE(version, latent_channels=C, spatial=spatial, seed=1)
    codec = host.vae_codec.ComfyVAECodec(vae)
    assert codec.strategy == "kept cache" and codec.causal_first_frame and codec.temporal_factor == 4
    z = _latents(2, 7, hw=SIZE // spatial)
    whole, _ = codec.decode(z)
    assert whole.shape == (1, 3, 1 + 4 * 6, SIZE, SIZE)
    # the same frames as ComfyUI's own whole-clip decode (with the normalisation undone first)
    reference = vae.decode(codec.stats.denormalise(z)).movedim(-1, 1) * 2 - 1
    assert (whole - reference).abs().max() < 1e-5
    streamed, states = _stream_decode(codec, z, [3, 1, 3])
    assert streamed.shape == whole.shape and (streamed - whole).abs().max() < 1e-5
    assert [s.frames for s in states] == [3, 4, 7]
    # the naive way -- one vae.decode() per chunk -- restarts the cache: wrong count, different frames
    naive = [vae.decode(codec.stats.denormalise(z[:, :, a:b])).movedim(-1, 1) * 2 - 1 for a, b in ((0, 3), (3, 7))]
    assert sum(v.shape[2] for v in naive) == 9 + 13 != whole.shape[2]
    assert (naive[1][:, :, 1:] - whole[:, :, 13:]).abs().max() > 1e-2  # latents 4..6, decoded without context


def test_a_list_returning_decoder_is_fed_in_the_hosts_pairs_across_chunk_boundaries(host, known):
    """ComfyUI 0.38's Wan 2.1 decoder: frame 0 alone, then pairs; a chunk ending mid-pair keeps that frame pending."""
    vae = FakeVAE("2.1-chunked", latent_channels=C, spatial=4, seed=21)
    codec = host.vae_codec.ComfyVAECodec(vae)
    z = _latents(22, 12)
    reference = vae.decode(codec.stats.denormalise(z)).movedim(-1, 1) * 2 - 1  # the host's whole-clip decode
    streamed, states = _stream_decode(codec, z, [3, 3, 3, 3])  # the stream's 3-latent-frame chunks
    assert streamed.shape == reference.shape == (1, 3, 1 + 4 * 11, SIZE, SIZE)
    assert (streamed - reference).abs().max() < 1e-5
    assert [s.group for s in states] == [2, 2, 2, 2] and [s.frames for s in states] == [3, 6, 9, 12]
    assert [s.pending is not None for s in states] == [False, True, False, True]  # | 0 | 1 2 | 3 4 | 5 ...
    # a state with a pending frame may be decoded from twice: same frames, the state left as it was
    again, after = codec.decode(z[:, :, 6:9], states[1])
    assert torch.equal(again, streamed[:, :, 21:33]) and after.pending is None and states[1].pending is not None
    # feeding this decoder one latent frame per call (ComfyUI 0.8's stepping) loses context: the pitfall modelled
    model, slots = vae.first_stage_model, [None] * 8
    x = model.conv2(codec.stats.denormalise(z))
    one_by_one = torch.cat([torch.cat(model.decoder(x[:, :, i:i + 1], feat_cache=slots, feat_idx=[0]), dim=2)
                            for i in range(12)], dim=2)
    assert (one_by_one - reference).abs().max() > 1e-2
    tensor_kind = host.vae_codec.ComfyVAECodec(FakeVAE("2.1", latent_channels=C, spatial=4, seed=21))
    assert _stream_decode(tensor_kind, z, [3, 3])[1][-1].group == 1  # a tensor-returning decoder: one per call


def test_decoding_twice_from_one_state_gives_the_same_frames_and_leaves_the_state_as_it_was(host, known):
    codec = host.vae_codec.ComfyVAECodec(FakeVAE("2.2", latent_channels=C, spatial=8, seed=3))
    z = _latents(4, 6, hw=2)
    _, state = codec.decode(z[:, :, :3])
    before = [s.clone() if isinstance(s, torch.Tensor) else s for s in state.slots]
    ids = [id(s) for s in state.slots]
    first, after_first = codec.decode(z[:, :, 3:])
    second, after_second = codec.decode(z[:, :, 3:], state)  # a state may be reused (cancel, rewind, branches)
    third, _ = codec.decode(z[:, :, 3:], state)
    assert torch.equal(second, third) and second.shape[2] == 12 and first.shape[2] == 9  # `first` starts anew
    assert [id(s) for s in state.slots] == ids
    assert all(torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b for a, b in zip(before, state.slots))
    assert after_second is not state and after_second.frames == 6 and state.frames == 3
    with pytest.raises(ValueError, match="do not continue"):
        codec.decode(_latents(5, 1, hw=4), state)  # another frame size cannot continue this cache


def test_an_unrecognised_vae_decodes_per_segment_with_the_same_frames(host, known):
    class OtherVAE(FakeWanVAE21):  # same behaviour, unknown class: the bridge must not drive its decoder
        pass

    vae = FakeVAE(latent_channels=C, seed=6, model_class=OtherVAE)
    codec = host.vae_codec.ComfyVAECodec(vae)
    assert codec.strategy == "segment re-decode"
    kept = host.vae_codec.ComfyVAECodec(FakeVAE(latent_channels=C, seed=6))
    z = _latents(7, 7)
    streamed, states = _stream_decode(codec, z, [3, 3, 1])
    whole, _ = kept.decode(z)
    assert streamed.shape == whole.shape and (streamed - whole).abs().max() < 1e-5
    assert [s.latents.shape[2] for s in states] == [3, 6, 7] and vae.decode_calls == 3
    again, _ = codec.decode(z[:, :, 3:6], states[0])
    assert torch.equal(again, streamed[:, :, 9:21]) and states[0].latents.shape[2] == 3


# ----------------------------------------------------------------------------------- encoding
def test_encoding_treats_each_clip_as_one_vae_call_and_applies_the_wan_normalisation(host, known):
    stats_for = host.latent_stats.stats_for
    vae = FakeVAE(latent_channels=16, seed=8)
    codec = host.vae_codec.ComfyVAECodec(vae)
    wan21 = sys.modules["comfy.latent_formats"].Wan21()  # the host's table (the stand-in's, in these tests)
    assert codec.stats == stats_for(16) and codec.stats.name == "Wan 2.1 VAE" and len(stats_for(48).mean) == 48
    assert stats_for(48).name == "Wan 2.2 VAE" and stats_for(C).name == "none"
    video = torch.rand(2, 3, 5, SIZE, SIZE, generator=torch.Generator().manual_seed(9)) * 2 - 1
    kept = video.clone()
    z = codec.encode_video(video)
    assert z.shape == (2, 16, 2, 4, 4) and torch.equal(video, kept)
    for i in range(2):  # IMAGE [T, H, W, 3] in 0..1 per clip, as ComfyUI's VAEEncode would pass it
        raw = vae.encode((video[i].permute(1, 2, 3, 0) + 1) / 2)
        assert torch.allclose(z[i:i + 1], (raw - wan21.latents_mean) / wan21.latents_std, atol=1e-5)
    assert torch.allclose(codec.stats.normalise(codec.stats.denormalise(z)), z, atol=1e-5)
    image = codec.encode_image(video[:, :, 0])
    assert image.shape == (2, 16, 1, 4, 4) and torch.allclose(image, codec.encode_video(video[:, :, :1]))



def test_the_wan_statistics_are_read_from_comfyui_when_a_codec_is_built(host, monkeypatch):
    """No copy of ComfyUI's tables in the pack: a changed host table (or scale factor) is what the codec uses."""
    formats, stats_for = sys.modules["comfy.latent_formats"], host.latent_stats.stats_for
    wan21 = formats.Wan21()
    assert stats_for(16).mean == tuple(wan21.latents_mean.flatten().tolist())
    assert stats_for(16).std == tuple(wan21.latents_std.flatten().tolist())

    class Shifted(formats.Wan22):  # what a later ComfyUI could hold: other numbers, a scale factor
        def __init__(self):
            super().__init__()
            self.latents_mean, self.scale_factor = self.latents_mean + 1.0, 2.0

    monkeypatch.setattr(formats, "Wan22", Shifted)
    codec = host.vae_codec.ComfyVAECodec(FakeVAE("2.2", latent_channels=48, spatial=8, seed=0))
    z = torch.randn(1, 48, 2, 2, 2, generator=torch.Generator().manual_seed(1))
    host_in = (z - Shifted().latents_mean) * 2.0 / Shifted().latents_std  # ComfyUI's process_in
    assert codec.stats.name == "Wan 2.2 VAE" and torch.allclose(codec.stats.normalise(z), host_in, atol=1e-5)

    class Bare:  # a ComfyUI whose class lost its statistics: a clear error, not unnormalised latents
        scale_factor = 1.0

    monkeypatch.setattr(formats, "Wan21", Bare)
    with pytest.raises(RuntimeError, match=r"comfy\.latent_formats\.Wan21 has no latent statistics .* update ComfyUI"):
        host.vae_codec.ComfyVAECodec(FakeVAE(latent_channels=16))

def test_shapes_that_do_not_fit_are_refused_with_the_fix(host, known):
    b = host.fit
    codec = host.vae_codec.ComfyVAECodec(FakeVAE(latent_channels=C))
    with pytest.raises(ValueError, match="nearest valid: 5 or 9"):
        codec.encode_video(torch.zeros(1, 3, 6, SIZE, SIZE))
    with pytest.raises(ValueError, match="not a multiple of the VAE's spatial factor 4"):
        codec.encode_video(torch.zeros(1, 3, 1, 18, SIZE))
    image_vae = FakeVAE()
    image_vae.latent_dim = 2
    with pytest.raises(ValueError, match="video VAE"):
        host.vae_codec.ComfyVAECodec(image_vae)
    cfg = host.E.config.ModelConfig(name="m", dim=32, ffn_dim=64, num_heads=2, num_layers=1, in_dim=48, out_dim=48,
                                    text_dim=4096, text_len=8, freq_dim=32)
    with pytest.raises(ValueError, match=r"makes 6-channel latents, but this DiT takes 48.*Wan 2\.2 VAE"):
        b.check_codec_fit(codec, cfg, True, "node")
    with pytest.raises(ValueError, match=r"multiples of 8; .* e\.g\. to 24x16"):
        b.check_image_size((20, 15), codec, cfg, "node")


# ----------------------------------------------------------------------------------- conditioning
def test_conditioning_becomes_the_context_and_the_empty_prompt_the_negative(host):
    b = host.conditioning
    cond = torch.randn(1, 3, TEXT_DIM)
    neg = torch.randn(1, 7, TEXT_DIM)
    conditioning, negative = [[cond, {"pooled_output": None}]], [[neg, {}]]
    text = b.ConditioningText(conditioning, TEXT_DIM, TEXT_LEN)
    ctx = text.encode(["a person walks", "", "anything"])
    assert ctx.shape == (3, TEXT_LEN, TEXT_DIM) and ctx.dtype == torch.float32
    assert torch.equal(ctx[0, :3], cond[0]) and not ctx[0, 3:].any() and torch.equal(ctx[2], ctx[0])
    assert not ctx[1].any()  # no negative given: "" is the zero context
    with_neg = b.ConditioningText(conditioning, TEXT_DIM, TEXT_LEN, negative=negative).encode([""])
    assert torch.equal(with_neg[0], neg[0, :TEXT_LEN])  # 7 tokens cut to the DiT's 5
    with_neg.add_(1.0)
    assert torch.equal(conditioning[0][0], cond) and torch.equal(text.encode(["x"])[0, :3], cond[0])
    with pytest.raises(ValueError, match=r"is 16 wide, but this DiT's text input is 24 wide; connect .*CLIP Text "
                                         r"Encode"):
        b.ConditioningText([[torch.zeros(1, 4, 16), {}]], TEXT_DIM, TEXT_LEN)
    with pytest.raises(ValueError, match=r"umT5-XXL"):
        b.ConditioningText([[torch.zeros(1, 4, 16), {}]], 4096, 512)
    with pytest.raises(ValueError, match="holds 2 conditionings"):
        b.ConditioningText(conditioning * 2, TEXT_DIM, TEXT_LEN)
    with pytest.raises(TypeError, match="CONDITIONING"):
        b.ConditioningText(cond, TEXT_DIM, TEXT_LEN)


# ----------------------------------------------------------------------------------- the nodes
def _wan_dit(E, seed: int, text_len: int = TEXT_LEN):
    """A micro Wan-layout DiT that fits neither embedded part (6 channels, 24-wide text)."""
    cfg = E.config.ModelConfig(name="micro-wan", dim=32, ffn_dim=64, num_heads=2, num_layers=2, in_dim=C, out_dim=C,
                               text_dim=TEXT_DIM, text_len=text_len, freq_dim=32)
    return randomize(E.model.WanDiT(cfg), seed).eval()


@pytest.fixture(scope="module")
def wan_model(host):
    """An FC_MODEL whose student and try-off DiTs are micro Wan-layout DiTs."""
    E = host.E
    _, codec, text = micro_parts(E)  # the micro embedded codec (4 channels) and prompt encoder (16 wide)
    return E.embedded.EmbeddedModel(codec, text, student=_wan_dit(E, 0),
                                    tryoff=_wan_dit(E, 3),
                                    stream_config=E.config.StreamConfig(sink_frames=3, window_frames=6))


def _generate(host, model, frames, **extra):
    return run(host.gen.StreamGenerate, model=model, reference=img(1), garment=img(2), prompt="a person walks",
                frames=frames, seed=5, **extra)


def test_stream_generate_streams_a_wan_layout_dit_with_a_comfy_vae_and_conditioning(host, known, wan_model):
    vae = FakeVAE(latent_channels=C, seed=11)
    cond = [[torch.randn(1, 3, TEXT_DIM, generator=torch.Generator().manual_seed(12)), {}]]
    with pytest.raises(ValueError, match=r"takes 6-channel latents, but the model's built-in codec makes 4; "
                                         r"connect .* to 'vae'"):
        _generate(host, wan_model, 9)
    with pytest.raises(ValueError, match=r"takes 24-wide text features.*to 'conditioning'"):
        _generate(host, wan_model, 9, vae=vae)
    with pytest.raises(ValueError, match="is 16 wide, but this DiT's text input is 24 wide"):
        _generate(host, wan_model, 9, vae=vae, conditioning=[[torch.zeros(1, 3, 16), {}]])
    host.mm.loaded.clear()
    frames, stream, fps, *_ = _generate(host, wan_model, 21, vae=vae, conditioning=cond)
    assert frames.shape == (21, SIZE, SIZE, 3) and 0 <= frames.min() and frames.max() <= 1  # 9 + 12 frames
    assert stream.frames_generated == 21 and vae.patcher in host.mm.loaded
    assert isinstance(stream.session.codec, host.vae_codec.ComfyVAECodec)
    assert stream.session.prompt == host.conditioning.CONDITIONING_PROMPT
    # the streamed frames are exactly one whole-clip decode of the stream's latents
    person = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    session = wan_model.session(person, {"full": torch.zeros(3, SIZE, SIZE)}, "x", 0, codec=stream.session.codec,
                                prompt_encoder=stream.session.prompt_encoder)
    with torch.inference_mode():
        chunks = list(session.generate(21))
        whole, _ = session.codec.decode(torch.cat([c.latents for c in chunks], dim=2))
    assert (torch.cat([c.frames for c in chunks], dim=2) - whole).abs().max() < 1e-5
    # a continuation carries the decoder cache on: it equals one longer run
    more, _, _, *_ = run(host.gen.StreamGenerate, model=wan_model, stream=stream, prompt="", frames=12, seed=0)
    longer, _, _, *_ = _generate(host, wan_model, 33, vae=vae, conditioning=cond)
    assert torch.allclose(torch.cat([frames, more]), longer, atol=1e-5) and stream.frames_generated == 21
    with pytest.raises(ValueError, match=r"\['vae', 'conditioning'\] are only used to start a stream"):
        run(host.gen.StreamGenerate, model=wan_model, stream=stream, prompt="", frames=12, seed=0, vae=vae,
             conditioning=cond)


def test_a_switch_restarts_the_decode_segment_and_rebuilds_the_reference_through_the_vae(host, known, wan_model):
    vae = FakeVAE(latent_channels=C, seed=13)
    cond = [[torch.randn(1, 2, TEXT_DIM, generator=torch.Generator().manual_seed(14)), {}]]
    frames, stream, _, *_ = _generate(host, wan_model, 18, vae=vae, conditioning=cond, schedule_garments=img(3),
                                  switch_frames="9")
    # chunk 1: 9 frames; the full switch withdraws history, so chunk 2 starts a new segment: 9 frames again
    assert frames.shape[0] == 18 and stream.frames_generated == 18
    assert stream.session.reference_latents.shape == (1, C, 1, SIZE // 4, SIZE // 4)


def test_try_off_takes_a_comfy_vae_for_a_wan_layout_dit(host, known, wan_model):
    vae = FakeVAE(latent_channels=C, seed=15)
    with pytest.raises(ValueError, match=r"takes 6-channel latents, but the model's built-in codec makes 4"):
        run(host.tryoff.TryOff, model=wan_model, person=img(4), slot="full", seed=0, steps=2)
    (garment,) = run(host.tryoff.TryOff, model=wan_model, person=img(4, batch=2), slot="upper", seed=0, steps=2,
                      vae=vae)
    assert garment.shape == (2, SIZE, SIZE, 3) and 0 <= garment.min() and garment.max() <= 1


def test_load_teacher_loads_a_wan_layout_file_that_then_streams_with_a_vae_and_conditioning(host, known, tmp_path,
                                                                                         monkeypatch):
    from safetensors.torch import save_file

    E = host.E
    _, codec, text = micro_parts(E)  # the micro embedded codec (4 channels) and prompt encoder (16 wide)
    E.checkpoint.save_checkpoint(tmp_path / "codec.safetensors", codec.state_dict(), "codec", codec.config)
    E.checkpoint.save_checkpoint(tmp_path / "text.safetensors", text.state_dict(), "text", text.config)
    monkeypatch.setattr(E.fc, "WEIGHTS_DIR", tmp_path)
    folder = host.models / "diffusion_models"
    folder.mkdir(exist_ok=True)
    dit = _wan_dit(E, 4)  # saved as ComfyUI saves a diffusion model: key prefix, no FashionChameleon metadata
    save_file({f"model.diffusion_model.{k}": v.contiguous() for k, v in dit.state_dict().items()},
              str(folder / "wan_micro.safetensors"))
    (model,) = run(host.load.LoadTeacher, model="diffusion_models/wan_micro.safetensors", dtype="fp32", device="cpu")
    assert model.student.cfg.in_dim == C and model.student.cfg.text_dim == TEXT_DIM
    assert model._comfy_cache_tensors() == host.cache_size.model_tensors(model)  # sized for ComfyUI's RAM cache
    cond = [[torch.randn(1, 3, TEXT_DIM, generator=torch.Generator().manual_seed(16)), {}]]
    frames, stream, _, *_ = _generate(host, model, 9, vae=FakeVAE(latent_channels=C, seed=17), conditioning=cond)
    assert frames.shape == (9, SIZE, SIZE, 3)
    context = stream.session.prompt_encoder.encode(["x"])  # padded with zeros to the DiT's text length
    assert context.shape == (1, model.student.cfg.text_len, TEXT_DIM) and not context[:, 3:].any()


def test_fps_output_follows_the_wan_family_of_a_connected_vae(host):
    stream_fps, codec = host.fit.stream_fps, host.vae_codec.ComfyVAECodec
    assert stream_fps(codec(FakeVAE("2.2", latent_channels=48, spatial=8, seed=0)), 16.0) == 24.0
    assert stream_fps(codec(FakeVAE("2.1", latent_channels=16, spatial=4, seed=0)), 16.0) == 16.0
    assert stream_fps(object(), 16.0) == 16.0  # the embedded codec: the model's own rate
