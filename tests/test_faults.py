"""Faults through the nodes: cancel at every step and inside a switch, errors and out-of-memory inside a chunk.

The stream under test has a garment switch pending (SwapGarment, the full policy), so the first
chunk of every continuation runs the switch's condition pass before its denoising steps. After
every fault the input stream must be bit for bit what it was, and running the same node again
must give exactly the frames of a run that never failed. The nodes guarantee that by working on
a fork of their input; the engine's own rollback of a failed chunk (its cache transaction) is
checked here at every DiT call too, on a StreamSession whose window is full.
"""
from __future__ import annotations

import contextlib
import itertools
from types import SimpleNamespace
from typing import Callable, Iterator

import pytest
import torch

from fashionchameleon.runtime.config import StreamConfig
from fashionchameleon.runtime.stream.session import StreamSession
from node_harness import PER_CHUNK, SIZE, img, run, same, stream_state

FULL = "full (refresh + withdraw + disentangle)"
FRAMES = 2 * PER_CHUNK  # two chunks: the first applies the switch


@contextlib.contextmanager
def before_forward(module: torch.nn.Module, action: Callable[[int], None]) -> Iterator[None]:
    """Call `action(k)` before the k-th forward pass (0-based) of `module` while the block runs."""
    count = itertools.count()
    handle = module.register_forward_pre_hook(lambda m, args: action(next(count)))
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def progress_hook(host, hook) -> Iterator[None]:
    host.utils.set_progress_bar_global_hook(hook)
    try:
        yield
    finally:
        host.utils.set_progress_bar_global_hook(None)
        host.mm.interrupt_current_processing(False)


def continue_stream(host, model, stream):
    return run(host.gen.StreamGenerate, model=model, stream=stream, prompt="", frames=FRAMES, seed=0)


@pytest.fixture(scope="module")
def pending(host, model):
    """A stream with a switch pending, what continuing it gives, and how many DiT calls that takes."""
    _, parent, _, *_ = run(host.gen.StreamGenerate, model=model, reference=img(1), garment=img(2), prompt="a person walks",
                       frames=PER_CHUNK, seed=5)
    (stream,) = run(host.swap.SwapGarment, stream=parent, garment=img(13), slot="full", policy=FULL)
    calls = []
    with before_forward(model.student, calls.append):
        frames = continue_stream(host, model, stream)[0]
    return SimpleNamespace(stream=stream, frames=frames, calls=len(calls), steps=len(model.stream_config.steps))


def assert_intact_and_rerun_equal(host, model, pending, before) -> None:
    assert same(stream_state(pending.stream), before), "the failed run changed its input stream"
    assert len(pending.stream.session.pending_switches) == 1
    assert torch.equal(continue_stream(host, model, pending.stream)[0], pending.frames)


def test_the_switch_and_both_chunks_run_the_dit(pending):
    # one joint condition pass for the switch (new reference + new garment), then per chunk 4 steps + the KV pass
    assert pending.calls == 1 + 2 * (pending.steps + 1)


def test_a_cancel_at_every_denoising_step_leaves_the_stream_as_it_was(host, model, pending, interrupt_base):
    before = stream_state(pending.stream)
    for tick in range(2 * pending.steps + 1):  # tick 0: cancelled before the first chunk starts
        seen = []

        def hook(value, total, preview, node_id=None, tick=tick):  # "Cancel" pressed during step `tick`
            seen.append(value)
            if len(seen) == tick:
                host.mm.interrupt_current_processing(True)

        if tick == 0:
            host.mm.interrupt_current_processing(True)
        with progress_hook(host, hook), pytest.raises(host.mm.InterruptProcessingException):
            continue_stream(host, model, pending.stream)
        assert len(seen) == tick  # stopped at the first check after the cancel
        assert_intact_and_rerun_equal(host, model, pending, before)


def test_a_cancel_during_any_dit_call_including_the_switch_leaves_the_stream_as_it_was(host, model, pending, interrupt_base):
    before = stream_state(pending.stream)
    for k in range(pending.calls):  # k = 0 is the switch's condition pass

        def press_cancel(i: int, k=k) -> None:
            if i == k:
                host.mm.interrupt_current_processing(True)

        with progress_hook(host, None), before_forward(model.student, press_cancel), \
                pytest.raises(host.mm.InterruptProcessingException):
            continue_stream(host, model, pending.stream)
        assert_intact_and_rerun_equal(host, model, pending, before)


def test_an_error_inside_any_dit_call_passes_through_and_leaves_the_stream_usable(host, model, pending):
    before = stream_state(pending.stream)
    for k in range(pending.calls):

        def fail(i: int, k=k) -> None:
            if i == k:
                raise RuntimeError(f"simulated fault in DiT call {k}")

        with before_forward(model.student, fail), \
                pytest.raises(RuntimeError, match=f"^simulated fault in DiT call {k}$"):
            continue_stream(host, model, pending.stream)
        assert_intact_and_rerun_equal(host, model, pending, before)


def test_the_engine_rolls_back_a_chunk_that_fails_at_any_dit_call(micro_model, micro_codec, micro_text):
    images = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4)) * 2 - 1
    session = StreamSession(micro_model, micro_codec, micro_text, images[:1], {"full": images[1]}, "a person walks",
                            seed=3, config=StreamConfig(sink_frames=3, window_frames=6))
    for _ in range(3):  # sink and window full: the next chunks evict and re-rotate keys
        session.step()
    session.request_switch("full", images[2])
    twin = session.snapshot()
    expected = [twin.step().frames, twin.step().frames]  # the switch chunk, then a plain one
    view = SimpleNamespace(session=session, fps=None)
    for chunk, want in enumerate(expected):
        calls = []
        with before_forward(micro_model, calls.append):
            session.snapshot().step()
        assert len(calls) == (1 if chunk == 0 else 0) + len(session.config.steps) + 1
        before = stream_state(view)
        for k in range(len(calls)):

            def fail(i: int, k=k) -> None:
                if i == k:
                    raise RuntimeError("simulated fault")

            with before_forward(micro_model, fail), pytest.raises(RuntimeError, match="simulated fault"):
                session.step()
            assert same(stream_state(view), before), f"chunk {chunk}, DiT call {k}: the failed chunk left traces"
        assert torch.equal(session.step().frames, want)


def test_an_error_in_the_decoder_leaves_the_stream_usable(host, model, pending, monkeypatch):
    before = stream_state(pending.stream)
    decode = model.codec.decode
    calls = itertools.count()

    def decode_then_fail(*args, **kwargs):  # the first chunk decodes, the second fails
        if next(calls) == 1:
            raise RuntimeError("simulated decoder fault")
        return decode(*args, **kwargs)

    monkeypatch.setattr(model.codec, "decode", decode_then_fail)
    with pytest.raises(RuntimeError, match="simulated decoder fault"):
        continue_stream(host, model, pending.stream)
    monkeypatch.undo()
    assert_intact_and_rerun_equal(host, model, pending, before)


OUT_OF_MEMORY = {
    "cuda": lambda: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    "cpu-allocator": lambda: RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate "
                                          "memory: you tried to allocate 1073741824 bytes."),
    "python": lambda: MemoryError(),
}
STREAM_SETTINGS = ("fewer 'frames' per node", "a smaller reference image", "dtype 'bf16' or 'fp16'", "device 'cpu'",
                   "--lowvram", "The input stream is unchanged")


@pytest.mark.parametrize("make", OUT_OF_MEMORY.values(), ids=OUT_OF_MEMORY.keys())
def test_out_of_memory_in_a_chunk_names_the_settings_that_help_and_the_stream_is_intact(host, model, pending, make):
    before = stream_state(pending.stream)

    def exhaust(i: int) -> None:
        if i == pending.steps + 2:  # inside the second chunk
            raise make()

    with before_forward(model.student, exhaust), pytest.raises(torch.OutOfMemoryError) as excinfo:
        continue_stream(host, model, pending.stream)
    message = str(excinfo.value)
    assert message.startswith(f"FashionChameleon stream generate: out of memory while generating {FRAMES} frames (")
    assert all(setting in message for setting in STREAM_SETTINGS), message
    assert isinstance(excinfo.value.__cause__, type(make()))  # the original error stays attached for the log
    assert_intact_and_rerun_equal(host, model, pending, before)


def test_out_of_memory_in_try_off_and_loading_is_reported_with_their_settings(host, model, monkeypatch):
    def exhaust(i: int) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    with before_forward(model.tryoff, exhaust), pytest.raises(torch.OutOfMemoryError) as excinfo:
        run(host.tryoff.TryOff, model=model, person=img(4, batch=2), slot="upper", seed=1, steps=2)
    assert "out of memory while taking garments off 2 image(s) of 16x16" in str(excinfo.value)
    assert "fewer person images per batch" in str(excinfo.value) and "--lowvram" in str(excinfo.value)

    def load_embedded(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 10.00 GiB")

    monkeypatch.setattr(host.E.fc, "load_embedded", load_embedded)
    with pytest.raises(torch.OutOfMemoryError) as excinfo:
        run(host.load.LoadTeacher, model="embedded (bundled)", dtype="fp32", device="cpu")
    message = str(excinfo.value)
    assert "out of memory while loading embedded (bundled) on cpu as float32" in message
    assert "dtype 'bf16' or 'fp16'" in message and "device 'cpu'" in message and "--lowvram" in message


def test_errors_that_are_not_out_of_memory_are_not_rewritten(host):
    assert host.memory.is_oom(torch.OutOfMemoryError("x")) and host.memory.is_oom(MemoryError())
    assert host.memory.is_oom(RuntimeError("CUDA error: out of memory"))
    assert not host.memory.is_oom(RuntimeError("shape mismatch")) and not host.memory.is_oom(ValueError("memory"))
    with pytest.raises(KeyError):
        with host.memory.reporting_oom("node", "testing", "nothing"):
            raise KeyError("untouched")
