"""The bad-input matrix: every input a user can get wrong, through the nodes (and the engine where a file is read).

Each `Case` calls a node (or the checkpoint reader) with one bad input and asserts the exception
type, a fragment that says what was wrong (`says`, it names the input) and a fragment that says
what to do (`fix`), and that the error is raised by the pack's own code, never deep inside torch.
`HARMLESS` lists the inputs that are accepted with a conversion instead (policy in nodes/checks.py).
The README's "Errors and what they mean" table is checked against `CASES` at the end.
"""
from __future__ import annotations

import copy
import pickle
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest
import torch
from safetensors.torch import save_file

from conftest import randomize
from fake_vae import FakeVAE
from node_harness import PER_CHUNK, ROOT, SIZE, img, micro_parts, run

U64 = 2 ** 64 - 1


# ----------------------------------------------------------------------------------- the world the cases run in
@pytest.fixture(scope="module")
def ctx(host, model, tmp_path_factory):
    """The pack, a micro model, two started streams, and bad files in the model folder and a weights folder."""
    E = host.E
    cfg, codec, text = micro_parts(E)
    weights = tmp_path_factory.mktemp("weights")
    save = E.checkpoint.save_checkpoint
    save(weights / "codec.safetensors", codec.state_dict(), "codec", codec.config)
    save(weights / "text.safetensors", text.state_dict(), "text", text.config)
    folder = host.models / "fashionchameleon"
    student = model.student.state_dict()
    files = _bad_files(folder, student, cfg, save)
    wrong = tmp_path_factory.mktemp("wrong_weights")  # an embedded weights folder with swapped parts
    for part in ("codec", "text"):
        (wrong / f"{part}.safetensors").write_bytes((weights / f"{part}.safetensors").read_bytes())
    save(wrong / "student.safetensors", student, "teacher", cfg)
    other = E.embedded.EmbeddedModel(model.codec, model.text, student=randomize(E.model.WanDiT(cfg), 7).eval(),
                                     stream_config=model.stream_config)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(E.fc, "WEIGHTS_DIR", weights)
        yield SimpleNamespace(host=host, model=model, other=other, E=E, files=files, wrong=wrong, weights=weights,
                              stream=_start(host, model)[1], two=_start(host, model, garment_lower=img(9))[1])


def _bad_files(folder: Path, student: dict, cfg, save) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = save(folder / "good_student.safetensors", student, "student", cfg)
    data = good.read_bytes()
    files = {"empty": b"", "truncated": data[:len(data) // 2], "header_cut": data[:40],
             "random": bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(5))
                             .to(torch.uint8).tolist()),
             "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "gguf": b"GGUF\x03\0\0\0" + b"\0" * 64,
             "json_junk": struct.pack("<Q", 10) + b"{not json}" + b"\0" * 8,
             "legacy_pickle": pickle.dumps({"w": [1.0, 2.0]}, protocol=2)}
    out = {name: folder / f"{name}.safetensors" for name in files}
    for name, raw in files.items():
        out[name].write_bytes(raw)
    out["zip_pickle"] = folder / "zip_pickle.safetensors"  # torch.save output behind a safetensors name
    torch.save({"generator": student}, out["zip_pickle"])
    out["model_pt"] = folder / "model.pt"
    torch.save(student, out["model_pt"])
    out["model_ckpt"] = folder / "model.ckpt"  # the legacy (non-zip) torch.save format
    torch.save(student, out["model_ckpt"], _use_new_zipfile_serialization=False)
    out["lie"] = save(folder / "lie.safetensors", student, "student", cfg.replace(dim=64, num_layers=3))
    out["tryoff_stage"] = save(folder / "tryoff_stage.safetensors", student, "tryoff", cfg)
    out["good"] = good
    return out


def _start(host, model, **kw):
    args = dict(model=model, reference=img(1), garment=img(2), prompt="a person walks", frames=PER_CHUNK, seed=5)
    return run(host.gen.StreamGenerate, **{**args, **kw})


def gen(**kw) -> Callable:
    """Start a stream with one input replaced."""
    return lambda c: _start(c.host, **{"model": c.model, **kw})


def cont(**kw) -> Callable:
    """Continue the started one-slot stream with one input replaced."""
    args = dict(stream=None, prompt="", frames=PER_CHUNK, seed=0)
    return lambda c: run(c.host.gen.StreamGenerate, **{**args, "model": c.model, "stream": c.stream, **kw})


def swap(stream: str = "stream", **kw) -> Callable:
    args = dict(garment=img(3), slot="full", policy="refresh only")
    return lambda c: run(c.host.swap.SwapGarment, stream=getattr(c, stream), **{**args, **kw})


def kv(**kw) -> Callable:
    args = dict(refresh="all", withdraw=True, keep_last=0, keep_sink=False, disentangle=True)
    return lambda c: run(c.host.kv.KVRefresh, stream=c.stream, **{**args, **kw})


def tryoff(**kw) -> Callable:
    args = dict(person=img(4), slot="upper", seed=1, steps=2)
    return lambda c: run(c.host.tryoff.TryOff, **{"model": c.model, **args, **kw})


def load(choice: str) -> Callable:
    return lambda c: run(c.host.load.LoadTeacher, model=choice, dtype="fp32", device="cpu")


def load_file(name: str) -> Callable:
    return load(f"fashionchameleon/{name}")


class Returned(ValueError):
    """The string a `validate_inputs` hook returned (ComfyUI shows it as the node's error)."""


def validate(**kw) -> Callable:
    """ComfyUI's validation hook: a returned string is shown as the error; raise it here to assert on it."""
    def call(c):
        result = c.host.gen.StreamGenerate.validate_inputs(**kw)
        if result is not True:
            raise Returned(result)
    return call


def with_free_memory(free: int, call: Callable) -> Callable:
    def patched(c):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(c.host.mm, "get_free_memory", lambda device=None, torch_free_too=False: free, raising=False)
            return call(c)
    return patched


def embedded_from(folder_attr: str) -> Callable:
    def call(c):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(c.E.fc, "WEIGHTS_DIR", getattr(c, folder_attr))
            return load("embedded (bundled)")(c)
    return call


def engine_build(name: str, stage: str) -> Callable:
    return lambda c: c.E.dit_loading.build_dit(c.files[name], expect_stage=stage)


def oom_model(c):
    """The micro model whose student runs out of memory on its first forward pass."""
    student = copy.deepcopy(c.model.student)

    def out_of_memory(module, args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    student.register_forward_pre_hook(out_of_memory)
    return c.E.embedded.EmbeddedModel(c.model.codec, c.model.text, student=student, stream_config=c.model.stream_config)


def nan_image(value: float) -> torch.Tensor:
    x = img(2)
    x[0, 3, 4, 1] = value
    return x


def rgba_like(channels: int) -> torch.Tensor:
    return torch.rand(1, SIZE, SIZE, channels, generator=torch.Generator().manual_seed(channels))


# ----------------------------------------------------------------------------------- the matrix
@dataclass(frozen=True)
class Case:
    id: str
    call: Callable
    error: type
    says: str  # what was wrong, naming the input (a substring of the message)
    fix: str  # what to do (a substring of the message)


CASES = [
    # IMAGE inputs: layout
    Case("image-empty-batch", gen(reference=img(1)[:0]), ValueError, "reference: the image batch is empty",
         "connect a node that outputs at least one image"),
    Case("image-zero-height", gen(reference=torch.rand(1, 0, SIZE, 3)), ValueError,
         "reference: the images are 0x16 pixels", "connect images with pixels"),
    Case("image-two-channels", gen(garment=rgba_like(2)), ValueError, "garment: the image has 2 channels",
         "an IMAGE has 3 (RGB), 4 (RGBA"),
    Case("image-is-a-mask", gen(reference=torch.rand(1, SIZE, SIZE)), ValueError,
         "reference: expected an IMAGE [batch, height, width, channels], got a tensor of shape [1, 16, 16]",
         "'Convert Mask to Image'"),
    Case("image-wrong-rank", gen(reference=torch.rand(1, 1, SIZE, SIZE, 3)), ValueError,
         "reference: expected an IMAGE [batch, height, width, channels], got a tensor of shape [1, 1, 16, 16, 3]",
         "flatten it to frames"),
    Case("image-is-a-latent", gen(garment={"samples": torch.zeros(1, 4, 4, 4)}), TypeError, "garment: got a LATENT",
         "'VAE Decode'"),
    Case("image-not-a-tensor", gen(reference="photo.png"), TypeError, "reference: expected an IMAGE tensor",
         "connect an IMAGE output"),
    # IMAGE inputs: size
    Case("reference-odd-size", gen(reference=img(1, h=12, w=12)), ValueError, "the reference is 12x12",
         "resize or crop the images, e.g. to 16x16"),
    Case("reference-tiny", gen(reference=img(1, h=4, w=4)), ValueError, "the reference is 4x4",
         "resize or crop the images, e.g. to 8x8"),
    Case("reference-huge", gen(reference=torch.rand(1, 4104, 8, 3)), ValueError, "reference: the image is 4104x8 "
         "pixels (height x width); the largest side this pack takes is 4096 px", "scale it down first"),
    Case("person-odd-size", tryoff(person=img(4, h=12)), ValueError, "person: the image is 12x16",
         "multiples of 8 for this model (resize or crop it first)"),
    Case("garment-batch-for-one", swap(garment=img(3, batch=2)), ValueError, "garment: must be one image, got a batch",
         "ImageFromBatch"),
    # IMAGE inputs: values
    Case("pixels-nan", gen(garment=nan_image(float("nan"))), ValueError, "garment: the image holds 1 NaN",
         "fix or replace that node"),
    Case("pixels-inf", swap(garment=nan_image(float("inf"))), ValueError, "garment: the image holds 0 NaN and 1 inf",
         "decode in fp32 or bf16"),
    Case("pixels-nan-lower", gen(garment_lower=nan_image(float("nan"))), ValueError, "garment_lower: the image holds",
         "fix or replace that node"),
    Case("pixels-0-255", gen(reference=img(1) * 255), ValueError, "reference: pixel values range from",
         "divide it by 255"),
    Case("pixels-minus1-1", tryoff(person=img(4) * 2 - 1), ValueError, "person: pixel values range from",
         "(x + 1) / 2"),
    Case("pixels-far-out", gen(reference=img(1) * 3 - 2), ValueError, "far outside 0..1", "rescale it to 0..1"),
    Case("schedule-empty-batch", cont(schedule_garments=img(3)[:0], switch_frames="6"), ValueError,
         "schedule_garments: the image batch is empty", "at least one image"),
    # frame counts
    Case("frames-zero", gen(frames=0), ValueError, "frames: must be from 1 to 100000, got 0", "continue the stream"),
    Case("frames-negative", cont(frames=-5), ValueError, "frames: must be from 1 to 100000, got -5",
         "continue the stream"),
    Case("frames-beyond-limit", gen(frames=100_001), ValueError, "frames: must be from 1 to 100000, got 100001",
         "generate at most 100000 per node"),
    Case("frames-output-too-big", with_free_memory(1000, gen(frames=PER_CHUNK)), ValueError,
         "frames: 6 frames of 16x16 make a 18.0 KiB IMAGE output, more than the 1000 B free", "generate fewer frames "
         "per node"),
    Case("frames-not-a-number", gen(frames="48"), TypeError, "frames: expected a whole number", "got str"),
    # seeds and steps
    Case("seed-negative", gen(seed=-1), ValueError, f"seed: must be from 0 to {U64}, got -1", "widget's range"),
    Case("seed-above-u64", gen(seed=U64 + 1), ValueError, f"seed: must be from 0 to {U64}", "widget's range"),
    Case("tryoff-seed-negative", tryoff(seed=-1), ValueError, "seed: must be from 0", "widget's range"),
    Case("tryoff-steps-zero", tryoff(steps=0), ValueError, "steps: must be from 1 to 200, got 0", "about 30 steps"),
    # switch schedule
    Case("switch-frames-negative", validate(switch_frames="-6"), ValueError,
         "switch_frames: switch frames must be >= 0", "counted from this node's first frame"),
    Case("switch-frames-unsorted", validate(switch_frames="12, 6"), ValueError, "switch_frames: switch frames must be "
         "in ascending order", "earliest first"),
    Case("switch-frames-not-numbers", validate(switch_frames="6, soon"), ValueError, "switch_frames: switch frames "
         "must be whole numbers", "e.g. '48, 96'"),
    Case("switch-frames-duplicate", cont(schedule_garments=img(3, batch=2), switch_frames="6, 6"), ValueError,
         "switch_frames: slot 'full' would switch twice at frame 6", "give each garment of one slot its own frame"),
    Case("switch-frames-count", cont(schedule_garments=img(3, batch=2), switch_frames="6"), ValueError,
         "switch_frames: 2 scheduled garment(s) but 1 switch frame(s)", "give one frame per garment"),
    Case("switch-frames-without-garments", cont(switch_frames="6"), ValueError,
         "no 'schedule_garments' are connected", "clear 'switch_frames'"),
    Case("switch-slots-unknown", validate(switch_slots="middle"), ValueError, "switch_slots: unknown garment slot(s) "
         "['middle']", "slots are ['full', 'upper', 'lower']"),
    Case("switch-slots-not-in-stream", cont(schedule_garments=img(3), switch_frames="6", switch_slots="upper"),
         ValueError, "switch_slots: garment slot 'upper' is not in this stream", "its slots are ['full']"),
    Case("switch-slots-needed", lambda c: cont(schedule_garments=img(3), switch_frames="6")(
        SimpleNamespace(**{**vars(c), "stream": c.two})), ValueError, "switch_slots: this stream has the slots",
         "say which slot each scheduled garment replaces"),
    # garment slots and policies
    Case("slot-not-in-stream", swap(slot="upper"), ValueError, "slot: garment slot 'upper' is not in this stream",
         "its slots are ['full']"),
    Case("slot-full-on-two-slot-stream", swap(stream="two", slot="full"), ValueError,
         "slot: garment slot 'full' is not in this stream", "its slots are ['upper', 'lower']"),
    Case("refresh-slot-not-in-stream", kv(refresh="lower"), ValueError, "refresh: garment slot 'lower' is not in this",
         "its slots are ['full']"),
    Case("tryoff-slot-unknown", tryoff(slot="middle"), ValueError, "slot: unknown garment slot 'middle'",
         "choose one of ['full', 'upper', 'lower']"),
    Case("policy-unknown", swap(policy="teleport"), ValueError, "policy: unknown policy 'teleport'", "choose one of"),
    Case("keep-last-negative", kv(keep_last=-1), ValueError, "keep_last: must be from 0 to 1024, got -1",
         "0 drops all history"),
    # models and streams
    Case("model-not-fc-model", gen(model="MODEL"), TypeError, "'model' must come from 'Load FashionChameleon model'",
         "got str"),
    Case("stream-not-fc-stream", cont(stream={"samples": 0}), TypeError, "'stream' must be an FC_STREAM",
         "got dict"),
    Case("stream-from-another-model", lambda c: cont(model=c.other)(c), ValueError,
         "model: this stream was started with another model", "connect the 'Load FashionChameleon model' node that "
         "started it"),
    Case("continue-with-start-images", cont(reference=img(1)), ValueError, "['reference'] are only used to start",
         "disconnect them"),
    Case("start-without-garment", gen(garment=None), ValueError, "connect 'reference' and 'garment' to start",
         "or connect 'stream'"),
    Case("stream-needs-a-student", lambda c: gen(model=c.E.embedded.EmbeddedModel(c.model.codec, c.model.text,
                                                                              tryoff=c.model.tryoff))(c),
         ValueError, "this model has no causal student DiT", "load the embedded model or a student checkpoint"),
    Case("tryoff-needs-a-tryoff-dit", lambda c: tryoff(model=c.E.embedded.EmbeddedModel(
        c.model.codec, c.model.text, student=c.model.student))(c), ValueError, "this model has no try-off DiT",
         "or a try-off checkpoint"),
    # checkpoint files (through the loader, and the engine's stage checks)
    Case("file-zero-bytes", load_file("empty.safetensors"), ValueError, "the file is empty (0 bytes)",
         "Download or copy it again"),
    Case("file-truncated", load_file("truncated.safetensors"), ValueError, "truncated: tensor", "fetch the file again"),
    Case("file-header-cut", load_file("header_cut.safetensors"), ValueError, "truncated: the header should be",
         "fetch the file again"),
    Case("file-random-bytes", load_file("random.safetensors"), ValueError, "not a safetensors file: its first 8 bytes",
         "Use the .safetensors release"),
    Case("file-png", load_file("png.safetensors"), ValueError, "not a safetensors file", "Is it another format"),
    Case("file-gguf", load_file("gguf.safetensors"), ValueError, "this is a GGUF file", "GGUF loader"),
    Case("file-bad-header-json", load_file("json_junk.safetensors"), ValueError, "header is not valid JSON",
         "re-save it with safetensors"),
    Case("file-zip-pickle", load_file("zip_pickle.safetensors"), ValueError, "a zip archive (the format torch.save "
         "writes)", "safetensors.torch.save_file"),
    Case("file-legacy-pickle", load_file("legacy_pickle.safetensors"), ValueError, "a Python pickle (protocol 2",
         "never loads them"),
    Case("file-pt-pickle", load_file("model.pt"), ValueError, "model.pt: this is a zip archive", "never loads them"),
    Case("file-ckpt-pickle", load_file("model.ckpt"), ValueError, "model.ckpt: this is a Python pickle",
         "can run arbitrary code when loaded"),
    Case("file-config-disagrees", load_file("lie.safetensors"), ValueError, "the config in the metadata disagrees with "
         "the tensors", "re-save it with the right config"),
    Case("file-missing", load_file("absent.safetensors"), FileNotFoundError, "'absent.safetensors' was not found",
         "put the .safetensors file there"),
    Case("path-dotdot", load_file("../../secrets.safetensors"), ValueError, "points outside the model folders",
         "choose a file from the list"),
    Case("path-absolute", load_file("/etc/passwd"), ValueError, "points outside the model folders",
         "absolute paths and '..' are not allowed"),
    Case("path-unknown-folder", load("checkpoints/sd15.safetensors"), ValueError, "model: unknown model",
         "choose 'embedded (bundled)' or a file listed"),
    Case("embedded-student-is-a-teacher", embedded_from("wrong"), ValueError, "a teacher checkpoint was loaded where "
         "a student is required", "Reinstall the pack"),
    Case("student-where-tryoff-required", engine_build("good", "tryoff"), ValueError,
         "a student checkpoint was loaded where a tryoff is required", "Choose a tryoff checkpoint for this input"),
    Case("tryoff-where-student-required", engine_build("tryoff_stage", ("student", "teacher")), ValueError,
         "a tryoff checkpoint was loaded where a student or teacher is required", "Choose a student or teacher"),
    # device memory
    Case("out-of-memory", lambda c: gen(model=oom_model(c))(c), torch.OutOfMemoryError,
         "out of memory while generating 6 frames (OutOfMemoryError: CUDA out of memory", "dtype 'bf16' or 'fp16'"),
    # VAE and CONDITIONING that do not fit the model
    Case("vae-channels", gen(vae=FakeVAE(latent_channels=6)), ValueError,
         "the connected VAE makes 6-channel latents, but this DiT takes 4-channel",
         "connect a video VAE with 4 latent"),
    Case("vae-is-an-image-vae", gen(vae=SimpleNamespace(first_stage_model=object(), latent_dim=2)), ValueError,
         "the 'vae' input must be a video VAE", "the Wan 2.1 or Wan 2.2 VAE"),
    Case("conditioning-width", gen(conditioning=[[torch.zeros(1, 3, 24), {}]]), ValueError,
         "'conditioning' is 24 wide, but this DiT's text input is 16 wide", "'CLIP Text Encode'"),
    Case("conditioning-not-conditioning", gen(conditioning=torch.zeros(1, 3, 16)), TypeError,
         "'conditioning' must be a CONDITIONING value", "'CLIP Text Encode'"),
    Case("conditioning-two-entries", gen(conditioning=[[torch.zeros(1, 3, 16), {}]] * 2), ValueError,
         "'conditioning' holds 2 conditionings", "'Conditioning (Concat)'"),
]


def _raised_by_the_pack(excinfo) -> str:
    """Where the exception was raised: must be the pack's engine or node code, never torch or a test helper."""
    where = Path(str(excinfo.traceback[-1].path)).resolve()
    assert where.is_relative_to(ROOT) and not where.is_relative_to(ROOT / "tests"), f"raised in {where}"
    return str(where)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_refused_with_what_was_wrong_and_what_to_do(ctx, case):
    before = [copy.deepcopy(t) for t in (ctx.stream.session.cache.k, ctx.two.session.cache.k)]
    with pytest.raises(case.error) as excinfo:
        case.call(ctx)
    message = str(excinfo.value)
    assert case.says in message, message
    assert case.fix in message, message
    assert "Traceback" not in message and len(message) < 2000
    if not isinstance(excinfo.value, Returned):
        _raised_by_the_pack(excinfo)
    assert torch.equal(before[0], ctx.stream.session.cache.k) and torch.equal(before[1], ctx.two.session.cache.k)


def test_the_matrix_is_wide_and_every_case_is_distinct():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    assert len({(c.says, c.fix) for c in CASES}) == len(CASES)


# ----------------------------------------------------------------------------------- accepted with a conversion
def _frames(c, **kw):
    return gen(**kw)(c)[0]


def _rgba_is_rgb_on_white(c):
    rgb = img(2)
    opaque = torch.cat([rgb, torch.ones(1, SIZE, SIZE, 1)], dim=-1)
    transparent = torch.cat([rgb, torch.zeros(1, SIZE, SIZE, 1)], dim=-1)
    assert torch.equal(_frames(c, garment=opaque), _frames(c, garment=rgb))
    assert torch.equal(_frames(c, garment=transparent), _frames(c, garment=torch.ones(1, SIZE, SIZE, 3)))


def _gray_is_repeated(c):
    gray = img(1, c=1)
    assert torch.equal(_frames(c, reference=gray), _frames(c, reference=gray.expand(-1, -1, -1, 3)))


def _overshoot_is_clamped(c):
    ref = img(1)
    over = ref.clone()
    over[0, 0, 0] = torch.tensor([1.2, -0.2, 1.0])
    clamped = over.clamp(0, 1)
    assert torch.equal(_frames(c, reference=over), _frames(c, reference=clamped))


def _garment_of_another_size_is_fitted(c):
    frames = _frames(c, garment=img(2, h=3 * SIZE, w=SIZE))
    assert frames.shape == (PER_CHUNK, SIZE, SIZE, 3) and bool(torch.isfinite(frames).all())


def _one_pixel_garment_is_fitted(c):
    assert torch.isfinite(_frames(c, garment=img(2, h=1, w=1))).all()


def _seed_extremes_are_valid_and_distinct(c):
    lo, hi = _frames(c, seed=0), _frames(c, seed=U64)
    assert torch.isfinite(hi).all() and not torch.equal(lo, hi)
    assert torch.equal(_frames(c, seed=U64), hi)
    (g_lo,), (g_hi,) = tryoff(seed=0)(c), tryoff(seed=U64)(c)
    assert not torch.equal(g_lo, g_hi)


def _late_switch_stays_pending(c):
    _, out, _, *_ = cont(schedule_garments=img(3), switch_frames="99999999999999999999")(c)
    assert [e.frame for e in out.session.pending_switches] == [PER_CHUNK + 99999999999999999999]


def _same_slot_twice_at_different_frames_and_two_slots_at_one_frame(c):
    _, out, _, *_ = cont(schedule_garments=img(3, batch=2), switch_frames="6, 12", frames=2 * PER_CHUNK)(c)
    assert [e.frame for e in out.session.pending_switches] == [PER_CHUNK + 12]  # the one at 6 was applied
    two = SimpleNamespace(**{**vars(c), "stream": c.two})
    _, out, _, *_ = cont(schedule_garments=img(3, batch=2), switch_frames="0, 0", switch_slots="upper, lower")(two)
    assert out.frames_generated == 2 * PER_CHUNK and out.session.pending_switches == ()


def _same_model_loaded_twice_continues(c):
    twin = c.E.embedded.EmbeddedModel(c.model.codec, c.model.text, student=copy.deepcopy(c.model.student),
                                      stream_config=c.model.stream_config)
    a = cont()(c)[0]
    b = cont(model=twin)(c)[0]
    assert torch.equal(a, b)


HARMLESS = {
    "rgba-composited-on-white": _rgba_is_rgb_on_white,
    "grayscale-repeated-to-rgb": _gray_is_repeated,
    "small-overshoot-clamped": _overshoot_is_clamped,
    "garment-other-size-fitted": _garment_of_another_size_is_fitted,
    "garment-one-pixel-fitted": _one_pixel_garment_is_fitted,
    "seed-0-and-2**64-1": _seed_extremes_are_valid_and_distinct,
    "switch-beyond-output-stays-pending": _late_switch_stays_pending,
    "switch-frames-repeat-across-slots": _same_slot_twice_at_different_frames_and_two_slots_at_one_frame,
    "same-weights-in-another-loader": _same_model_loaded_twice_continues,
}


@pytest.mark.parametrize("check", HARMLESS.values(), ids=HARMLESS.keys())
def test_a_harmless_input_is_accepted_with_a_conversion(ctx, check):
    check(ctx)


def test_conversions_are_logged(ctx, caplog):
    with caplog.at_level("INFO", logger="fashionchameleon.nodes"):
        _rgba_is_rgb_on_white(ctx)
        _overshoot_is_clamped(ctx)
    text = caplog.text
    assert "garment: RGBA image composited over white" in text and "reference: pixel values" in text


# ----------------------------------------------------------------------------------- the README table
README = ROOT / "README.md"


def readme_rows() -> list[tuple[str, str]]:
    """(message fragment, what to do) per row of the README's "Errors and what they mean" table."""
    text = README.read_text()
    section = text.split("## Errors and what they mean", 1)[1].split("\n## ", 1)[0]
    return [(m.group(1), m.group(2).strip()) for m in re.finditer(r"^\| `([^`]+)` \|(?:[^|\n]*\|)? ([^|\n]+) \|$",
                                                                      section, flags=re.M)]


def test_every_readme_error_row_is_a_case_of_the_matrix():
    rows = readme_rows()
    fragments = {c.says for c in CASES} | {c.fix for c in CASES}
    assert len(rows) >= 20
    for fragment, todo in rows:
        assert any(fragment in f for f in fragments), f"README row {fragment!r} matches no case of the matrix"
        assert todo, fragment
    listed = " ".join(f for f, _ in rows)
    groups = ("image batch is empty", "NaN", "far outside 0..1", "frames: must be", "seed: must be", "switch_frames",
              "is not in this stream", "started with another model", "not a safetensors file", "never loads them",
              "disagrees with", "loaded where", "VAE makes", "wide, but this DiT", "points outside the model folders",
              "out of memory while")
    missing = [g for g in groups if g not in listed]
    assert not missing, f"README errors table lacks {missing}"
