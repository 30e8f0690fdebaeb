"""The opt-in compiled block path: same formula as the eager block, compiled or not, and a graceful fallback."""
from __future__ import annotations

import logging

import pytest
import torch

from fashionchameleon.runtime.dit import compiled as fc_compiled
from fashionchameleon.runtime.config import StreamConfig
from fashionchameleon.runtime.stream.session import StreamSession

from conftest import MICRO

SIZE = 16  # micro codec: 4x4 latents, 6 pixel frames a chunk


def _images(seed: int, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1


def _frames(model, codec, text, chunks: int = 3) -> list[torch.Tensor]:
    session = StreamSession(model, codec, text, _images(1), {"full": _images(2)[0]}, "a person walks", seed=3,
                            config=StreamConfig(sink_frames=3, window_frames=6))
    return [session.step().frames for _ in range(chunks)]


def _forward(model, dtype=torch.float32):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, MICRO.in_dim, 4, 4, 4, generator=g).to(dtype)
    t = torch.tensor([[0.0, 500.0, 500.0, 500.0], [0.0, 250.0, 750.0, 900.0]])
    ctx = torch.randn(2, MICRO.text_len, MICRO.text_dim, generator=g)
    with torch.no_grad():
        return model(x, t, ctx, [0, 1, 2, 3])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_block_functions_uncompiled_equal_the_eager_block(micro_model, monkeypatch, dtype):
    model = micro_model.to(dtype)
    eager = _forward(model, dtype)
    compiler = model.compile_blocks().compiler
    # the same functions without the compiler: only the formula is under test here
    monkeypatch.setattr(compiler, "pre", fc_compiled.block_pre)
    monkeypatch.setattr(compiler, "post", fc_compiled.block_post)
    out = _forward(model, dtype)
    assert out.dtype == dtype and compiler.error is None
    if dtype == torch.float32:
        torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)
    else:  # bf16 rounds at other places (float32 products before the cast): within 2 % of the output's scale
        assert (out.float() - eager.float()).abs().max() <= 0.02 * eager.float().abs().max()


def test_training_never_takes_the_compiled_path(micro_model, monkeypatch):
    model = micro_model.compile_blocks()
    boom = lambda *a, **k: (_ for _ in ()).throw(AssertionError("compiled path used with grad enabled"))  # noqa: E731
    monkeypatch.setattr(model.compiler, "pre", boom)
    x = torch.randn(1, MICRO.in_dim, 2, 4, 4)
    out = model(x, torch.full((1, 2), 500.0), torch.randn(1, MICRO.text_len, MICRO.text_dim), [0, 1])
    out.square().mean().backward()  # gradients flow through the eager blocks
    assert model.blocks[0].ffn[0].weight.grad is not None


def test_a_compiler_failure_falls_back_to_eager_once_and_is_reported(micro_model, micro_codec, micro_text,
                                                                    monkeypatch, caplog):
    reference = _frames(micro_model, micro_codec, micro_text)
    compiler = micro_model.compile_blocks().compiler
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("no C++ compiler found\nlong details")

    monkeypatch.setattr(compiler, "pre", broken)
    with caplog.at_level(logging.WARNING, logger="fashionchameleon.runtime.dit.compiled"):
        frames = _frames(micro_model, micro_codec, micro_text)
    assert len(calls) == 1, "after the first failure the compiled function must not be tried again"
    assert compiler.error == "RuntimeError: no C++ compiler found"
    assert "running them eagerly" in caplog.text
    for a, b in zip(frames, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_an_input_error_is_raised_not_swallowed(micro_model):
    model = micro_model.compile_blocks()
    with pytest.raises(RuntimeError):
        with torch.no_grad():  # a text context of the wrong width fails eagerly too
            model(torch.randn(1, MICRO.in_dim, 2, 4, 4), torch.zeros(1, 2), torch.randn(1, 4, MICRO.text_dim + 1),
                  [0, 1])


def test_compiled_stream_matches_the_eager_stream(micro_model, micro_codec, micro_text):
    """The real torch.compile on the micro model (a few seconds of compiling on a CPU)."""
    reference = _frames(micro_model, micro_codec, micro_text)
    compiler = micro_model.compile_blocks().compiler
    frames = _frames(micro_model, micro_codec, micro_text)
    if compiler.error is not None:
        pytest.skip(f"torch.compile is not available here: {compiler.error}")
    for a, b in zip(frames, reference):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    micro_model.compile_blocks(False)
    assert micro_model.compiler is None
