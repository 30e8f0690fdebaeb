"""The ComfyUI node layer, against a stand-in for ComfyUI (tests/comfy_stubs.py) and micro models.

The pack is imported the way ComfyUI imports a custom-node directory, node functions are called
directly inside `torch.inference_mode()` (as ComfyUI's executor runs them), and the model is a
randomly initialised micro EmbeddedModel injected where 'Load FashionChameleon model' would put it.
"""
from __future__ import annotations

import asyncio
from fractions import Fraction
import inspect
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import randomize
from node_harness import PER_CHUNK, SIZE, img, micro_parts, run, same
from node_harness import stream_state as state

NODE_IDS = {"FashionChameleonLoadTeacher", "FashionChameleonStreamGenerate", "FashionChameleonSwapGarment",
            "FashionChameleonKVRefresh", "FashionChameleonTryOff", "FashionChameleonLoadSample"}

# The `host` (the pack loaded on the ComfyUI stand-in) and `model` (a micro EmbeddedModel) fixtures are in
# conftest.py; tests/node_harness.py builds them.


def _randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    return randomize(model, seed).eval()


def start(host, model, frames=2 * PER_CHUNK, seed=5, garment=None, **extra):
    out = run(host.gen.StreamGenerate, model=model, reference=img(1), garment=img(2) if garment is None else garment,
              prompt="a person walks", frames=frames, seed=seed, **extra)
    return out


def cont(host, model, stream, frames=2 * PER_CHUNK, **extra):
    return run(host.gen.StreamGenerate, model=model, stream=stream, prompt="ignored", frames=frames, seed=99, **extra)


# ----------------------------------------------------------------------------------- registration and schemas
def test_the_entry_point_returns_the_extension_with_every_node(host):
    ext = asyncio.run(host.pack.comfy_entrypoint())
    assert type(ext).__name__ == "FashionChameleonExtension"
    asyncio.run(ext.on_load())
    nodes = asyncio.run(ext.get_node_list())
    assert {n.define_schema().node_id for n in nodes} == NODE_IDS and len(nodes) == len(NODE_IDS)
    name = host.pack.__name__
    modules = [m for k, m in sys.modules.items() if k == name or k.startswith(name + ".nodes")]
    assert len(modules) >= 8 and not any(hasattr(m, "NODE_CLASS_MAPPINGS") for m in modules)


def test_every_schema_is_namespaced_categorised_and_documented(host):
    nodes = asyncio.run(host.ext.FashionChameleonExtension().get_node_list())
    ids = []
    for node in nodes:
        schema = node.define_schema()
        schema.validate()
        ids.append(schema.node_id)
        where = schema.node_id
        assert schema.node_id.startswith("FashionChameleon") and schema.display_name, where
        assert schema.category.startswith("FashionChameleon/"), where
        assert len(schema.description) > 40, where
        assert schema.inputs and schema.outputs, where
        for item in [*schema.inputs, *schema.outputs]:
            assert isinstance(item.tooltip, str) and len(item.tooltip) > 15, f"{where}: {item.id or item.display_name}"
        assert all(o.display_name for o in schema.outputs), where
        params = inspect.signature(node.execute).parameters
        for i in schema.inputs:  # ComfyUI passes inputs by id and leaves unconnected optional ones out
            assert i.id in params, f"{where}: execute() has no parameter {i.id!r}"
            if i.optional:
                assert params[i.id].default is not inspect.Parameter.empty, f"{where}: {i.id!r} needs a default"
        assert set(params) <= {i.id for i in schema.inputs}, where
    assert len(set(ids)) == len(ids)


def test_stream_outputs_are_typed_and_widgets_have_sane_ranges(host):
    schema = host.gen.StreamGenerate.define_schema()
    # saved workflows link outputs by index: these four keep their places, later outputs are appended
    assert [o.io_type for o in schema.outputs][:4] == ["IMAGE", "FC_STREAM", "FLOAT", "VIDEO"]
    inputs = {i.id: i for i in schema.inputs}
    assert inputs["model"].io_type == "FC_MODEL" and inputs["stream"].io_type == "FC_STREAM"
    assert inputs["stream"].optional and inputs["schedule_garments"].optional and not inputs["model"].optional
    assert inputs["seed"].control_after_generate and inputs["seed"].max == 2 ** 64 - 1
    assert host.load.LoadTeacher.define_schema().outputs[0].io_type == "FC_MODEL"
    for node in (host.swap.SwapGarment, host.kv.KVRefresh):
        assert [o.io_type for o in node.define_schema().outputs] == ["FC_STREAM"]


def test_validate_inputs_reports_bad_schedule_text(host):
    v = host.gen.StreamGenerate.validate_inputs
    assert v(switch_frames="48, 96", switch_slots="upper, lower") is True
    assert v(switch_frames=None, switch_slots=None) is True  # linked inputs arrive as None
    assert "whole numbers" in v(switch_frames="48, soon")
    assert "ascending" in v(switch_frames="96, 48")
    assert "unknown garment slot" in v(switch_slots="middle")


# ----------------------------------------------------------------------------------- folders and loading
def test_the_model_folder_is_registered_created_and_safetensors_only(host):
    fp, folders = host.fp, host.folders
    path = str(host.models / "fashionchameleon")
    paths, exts = fp.folder_names_and_paths["fashionchameleon"]
    assert path in paths and Path(path).is_dir() and exts == {".safetensors", ".sft"}
    fp.add_model_folder_path("fashionchameleon", str(host.models / "extra"))  # e.g. from extra_model_paths.yaml
    folders.register()  # idempotent; keeps the user's folder
    paths, exts = fp.folder_names_and_paths["fashionchameleon"]
    assert paths.count(path) == 1 and str(host.models / "extra") in paths and exts == {".safetensors", ".sft"}


def test_the_model_combo_lists_the_bundled_model_first_then_safetensors_files(host):
    for rel in ("fashionchameleon/a.safetensors", "fashionchameleon/sub/b.safetensors", "fashionchameleon/c.ckpt",
                "diffusion_models/wan.safetensors", "diffusion_models/old.ckpt"):
        (host.models / rel).parent.mkdir(parents=True, exist_ok=True)
        (host.models / rel).write_bytes(b"")
    options = host.load.LoadTeacher.define_schema().inputs[0].options
    assert options[0] == "embedded (bundled)"
    for want in ("fashionchameleon/a.safetensors", "fashionchameleon/sub/b.safetensors",
                 "diffusion_models/wan.safetensors"):
        assert want in options
    assert not any(o.endswith(".ckpt") for o in options)


@pytest.fixture
def weights(host, tmp_path, monkeypatch):
    """A weights folder holding a micro codec, prompt encoder and student, as the pack will ship them."""
    E = host.E
    cfg, codec, text = micro_parts(E)
    save = E.checkpoint.save_checkpoint
    save(tmp_path / "codec.safetensors", codec.state_dict(), "codec", codec.config)
    save(tmp_path / "text.safetensors", text.state_dict(), "text", text.config)
    student = _randomize(E.model.WanDiT(cfg), 0)
    save(tmp_path / "student.safetensors", student.state_dict(), "student", cfg)
    monkeypatch.setattr(E.fc, "WEIGHTS_DIR", tmp_path)
    return SimpleNamespace(dir=tmp_path, cfg=cfg, student=student, save=save)


def test_load_teacher_loads_the_embedded_model_on_the_comfy_device(host, weights):
    (loaded,) = run(host.load.LoadTeacher, model="embedded (bundled)", dtype="auto", device="auto")
    assert loaded.student is not None and loaded.teacher is None and loaded.tryoff is None
    assert loaded.student.dtype == torch.float32 and loaded.student.device.type == "cpu"
    assert all(torch.equal(a, b) for a, b in zip(loaded.student.state_dict().values(),
                                                  weights.student.state_dict().values()))
    (half,) = run(host.load.LoadTeacher, model="embedded (bundled)", dtype="bf16", device="cpu")
    assert half.student.dtype == torch.bfloat16 and half.codec.latent_mean.dtype == torch.float32


def test_load_teacher_weights_are_ordinary_tensors_under_comfyui_inference_mode(host, weights):
    with torch.inference_mode():  # how ComfyUI executes every node
        (loaded,) = run(host.load.LoadTeacher, model="embedded (bundled)", dtype="fp32", device="cpu")
    assert not any(p.is_inference() for p in loaded.student.parameters())  # so fused weights can be cached
    assert not any(p.requires_grad for p in loaded.student.parameters())


def test_load_teacher_is_fingerprinted_by_its_weight_files(host, weights):
    fingerprint = host.load.LoadTeacher.fingerprint_inputs
    first = fingerprint(model="embedded (bundled)", dtype="auto", device="auto")
    assert fingerprint(model="embedded (bundled)", dtype="auto", device="auto") == first
    weights.save(weights.dir / "student.safetensors", _randomize(host.E.model.WanDiT(weights.cfg), 9).state_dict(),
                 "student", weights.cfg)
    assert fingerprint(model="embedded (bundled)", dtype="auto", device="auto") != first
    assert fingerprint(model="fashionchameleon/absent.safetensors", dtype="auto", device="auto")


def test_load_teacher_pairs_a_folder_checkpoint_with_the_embedded_codec(host, weights):
    E = host.E
    tryoff = _randomize(E.model.WanDiT(weights.cfg), 7)
    weights.save(host.models / "fashionchameleon" / "my_tryoff.safetensors", tryoff.state_dict(), "tryoff",
                 weights.cfg)
    (loaded,) = run(host.load.LoadTeacher, model="fashionchameleon/my_tryoff.safetensors", dtype="fp32", device="cpu")
    assert loaded.tryoff is not None and loaded.student is None
    assert torch.equal(loaded.tryoff.head.head.weight, tryoff.head.head.weight)


def test_load_teacher_errors_name_the_folders_and_the_stage_found(host, weights):
    load = host.load.LoadTeacher
    with pytest.raises(FileNotFoundError) as missing:
        run(load, model="fashionchameleon/nope.safetensors", dtype="auto", device="auto")
    assert "nope.safetensors" in str(missing.value) and str(host.models / "fashionchameleon") in str(missing.value)
    _, codec, _ = micro_parts(host.E)
    weights.save(host.models / "fashionchameleon" / "codec_by_mistake.safetensors", codec.state_dict(), "codec",
                 codec.config)
    with pytest.raises(ValueError) as wrong:
        run(load, model="fashionchameleon/codec_by_mistake.safetensors", dtype="auto", device="auto")
    assert "'codec'" in str(wrong.value) and "diffusion_models" in str(wrong.value)
    (weights.dir / "codec.safetensors").unlink()
    with pytest.raises(FileNotFoundError) as gone:
        run(load, model="embedded (bundled)", dtype="auto", device="auto")
    assert "codec.safetensors" in str(gone.value) and str(weights.dir) in str(gone.value)


# ----------------------------------------------------------------------------------- image conversion
def test_images_convert_both_ways_and_rgba_is_composited_on_white(host):
    c = host.convert
    x = img(3, batch=2)
    x_before = x.clone()
    e = c.image_to_engine(x)
    assert e.shape == (2, 3, SIZE, SIZE) and e.dtype == torch.float32 and e.min() >= -1 and e.max() <= 1
    assert torch.allclose(c.engine_to_image(e), x, atol=1e-6) and torch.equal(x, x_before)
    rgba = torch.cat([img(4), torch.zeros(1, SIZE, SIZE, 1)], dim=-1)  # fully transparent
    assert torch.equal(c.image_to_engine(rgba), torch.ones(1, 3, SIZE, SIZE))
    gray = img(5, c=1)
    assert torch.equal(c.image_to_engine(gray)[:, 0], c.image_to_engine(gray)[:, 2])
    video = torch.rand(1, 3, 7, SIZE, SIZE) * 2 - 1
    frames = c.video_to_image(video)
    assert frames.shape == (7, SIZE, SIZE, 3) and torch.allclose(frames[3], (video[0, :, 3].permute(1, 2, 0) + 1) / 2)
    tall = c.image_to_engine(img(6, h=SIZE, w=SIZE // 2))[0]  # a narrow flat-lay is centred on white
    fitted = c.fit_garment(tall, (SIZE, SIZE))
    assert fitted.shape == (3, SIZE, SIZE) and torch.equal(fitted[:, :, :4], torch.ones(3, SIZE, 4))


# ----------------------------------------------------------------------------------- stream generate
def test_stream_generate_outputs_frames_a_stream_fps_and_a_video(host, model):
    frames, stream, fps, video, *_ = start(host, model, frames=PER_CHUNK + 1)  # rounded up to whole chunks
    assert frames.shape == (2 * PER_CHUNK, SIZE, SIZE, 3) and frames.dtype == torch.float32
    assert frames.device.type == "cpu" and 0 <= frames.min() and frames.max() <= 1
    assert isinstance(stream, host.types.FCStream) and stream.frames_generated == 2 * PER_CHUNK
    assert stream.slots == ("full",) and stream.image_size == (SIZE, SIZE)
    assert isinstance(fps, float) and fps == 16.0
    # the VIDEO: the same frames (no copy), the stream's frame rate, no audio, as core's CreateVideo builds one
    parts = video.get_components()
    assert parts.images is frames and parts.frame_rate == Fraction(16) and parts.audio is None
    assert video.get_frame_count() == 2 * PER_CHUNK and video.get_dimensions() == (SIZE, SIZE)
    assert host.video.to_video(frames[:3], 24000 / 1001).get_frame_rate() == Fraction(24000, 1001)  # not the float
    with pytest.raises(ValueError, match="frame rate above 0"):
        host.video.to_video(frames, 0.0)


def test_the_same_inputs_give_identical_outputs_and_leave_inputs_untouched(host, model):
    ref, garment = img(1), img(2)
    before = (ref.clone(), garment.clone(), {k: v.clone() for k, v in model.student.state_dict().items()})
    a = run(host.gen.StreamGenerate, model=model, reference=ref, garment=garment, prompt="a person waves",
            frames=12, seed=3)
    b = run(host.gen.StreamGenerate, model=model, reference=ref, garment=garment, prompt="a person waves",
            frames=12, seed=3)
    assert torch.equal(a[0], b[0]) and same(state(a[1]), state(b[1]))
    assert torch.equal(ref, before[0]) and torch.equal(garment, before[1])
    assert same(model.student.state_dict(), before[2])
    c = run(host.gen.StreamGenerate, model=model, reference=ref, garment=garment, prompt="a person waves",
            frames=12, seed=4)
    assert not torch.equal(a[0], c[0])
    parent = state(a[1])
    d, e = cont(host, model, a[1]), cont(host, model, a[1])  # continuing twice: same result, parent untouched
    assert torch.equal(d[0], e[0]) and same(state(a[1]), parent) and d[1].session is not a[1].session


def test_a_continuation_equals_one_longer_run(host, model):
    whole, _, _, *_ = start(host, model, frames=4 * PER_CHUNK)
    first, stream, _, *_ = start(host, model, frames=2 * PER_CHUNK)
    rest, after, _, *_ = cont(host, model, stream, frames=2 * PER_CHUNK)
    assert torch.equal(torch.cat([first, rest]), whole) and after.frames_generated == 4 * PER_CHUNK


def test_continuing_refuses_start_images_and_starting_needs_them(host, model):
    _, stream, _, *_ = start(host, model)
    with pytest.raises(ValueError, match="only used to start"):
        cont(host, model, stream, reference=img(1))
    with pytest.raises(ValueError, match="connect 'reference' and 'garment'"):
        run(host.gen.StreamGenerate, model=model, reference=img(1), prompt="", frames=6, seed=0)
    no_student = host.E.embedded.EmbeddedModel(model.codec, model.text, tryoff=model.tryoff)
    with pytest.raises(ValueError, match="no causal student"):
        start(host, no_student)


def test_a_garment_of_another_size_is_fitted_to_the_reference(host, model):
    frames, stream, _, *_ = start(host, model, garment=img(2, h=2 * SIZE, w=SIZE))
    assert frames.shape[1:] == (SIZE, SIZE, 3) and stream.session.garment_latents["full"].shape[-2:] == (4, 4)


def test_a_schedule_switches_exactly_like_swap_garment_at_that_frame(host, model):
    new = img(8)
    plain, _, _, *_ = start(host, model, frames=4 * PER_CHUNK)
    scheduled, s_stream, _, *_ = start(host, model, frames=4 * PER_CHUNK, schedule_garments=new,
                                   switch_frames=str(2 * PER_CHUNK))
    first, stream, _, *_ = start(host, model, frames=2 * PER_CHUNK)
    (swapped,) = run(host.swap.SwapGarment, stream=stream, garment=new, slot="full",
                     policy="full (refresh + withdraw + disentangle)")
    rest, _, _, *_ = cont(host, model, swapped, frames=2 * PER_CHUNK)
    assert torch.equal(scheduled[:2 * PER_CHUNK], plain[:2 * PER_CHUNK])  # before the switch: unchanged
    assert not torch.allclose(scheduled[2 * PER_CHUNK:], plain[2 * PER_CHUNK:], atol=1e-3)
    assert torch.equal(scheduled, torch.cat([first, rest]))
    assert s_stream.session.pending_switches == ()
    # frames count from the start of this node's output when continuing; a late switch stays pending
    _, pending, _, *_ = cont(host, model, stream, frames=PER_CHUNK, schedule_garments=new, switch_frames="100")
    assert [e.frame for e in pending.session.pending_switches] == [2 * PER_CHUNK + 100]


def test_schedule_inputs_are_checked(host, model):
    _, stream, _, *_ = start(host, model)
    with pytest.raises(ValueError, match="one frame per garment"):
        cont(host, model, stream, schedule_garments=img(8, batch=2), switch_frames="6")
    with pytest.raises(ValueError, match="no 'schedule_garments'"):
        cont(host, model, stream, switch_frames="6")
    with pytest.raises(ValueError, match="not in this stream"):
        cont(host, model, stream, schedule_garments=img(8), switch_frames="6", switch_slots="upper")


def test_upper_and_lower_garments_make_a_two_slot_stream(host, model):
    _, stream, _, *_ = start(host, model, garment_lower=img(9))
    assert stream.slots == ("upper", "lower")
    (swapped,) = run(host.swap.SwapGarment, stream=stream, garment=img(10), slot="lower",
                     policy="refresh only")
    assert [(e.slot, e.policy) for e in swapped.session.pending_switches] == [
        ("lower", host.E.rescheduling.SwitchPolicy.refresh_only())]
    with pytest.raises(ValueError, match="not in this stream"):
        run(host.swap.SwapGarment, stream=stream, garment=img(10), slot="full",
            policy="full (refresh + withdraw + disentangle)")
    with pytest.raises(ValueError, match="say which slot"):
        cont(host, model, stream, schedule_garments=img(8), switch_frames="6")
    with pytest.raises(ValueError, match="one image"):
        run(host.swap.SwapGarment, stream=stream, garment=img(10, batch=2), slot="lower",
            policy="refresh only")


# ----------------------------------------------------------------------------------- branching
def test_one_stream_branches_into_independent_outfits(host, model):
    _, parent, _, *_ = start(host, model)
    before = state(parent)
    swap = host.swap.SwapGarment
    (a,) = run(swap, stream=parent, garment=img(11), slot="full", policy="full (refresh + withdraw + disentangle)")
    (b,) = run(swap, stream=parent, garment=img(12), slot="full", policy="full (refresh + withdraw + disentangle)")
    assert same(state(parent), before) and parent.session.pending_switches == ()
    a_before = state(a)
    fa, a_next, _, *_ = cont(host, model, a)
    fb, _, _, *_ = cont(host, model, b)
    fp, _, _, *_ = cont(host, model, parent)
    assert not torch.allclose(fa, fb, atol=1e-3) and not torch.allclose(fa, fp, atol=1e-3)
    assert same(state(a), a_before) and same(state(parent), before)
    fa2, _, _, *_ = cont(host, model, a)
    assert torch.equal(fa, fa2) and a_next.session.pending_switches == ()


def test_kv_refresh_schedules_the_operations_on_a_new_stream(host, model):
    _, parent, _, *_ = start(host, model)
    before = state(parent)
    kv = host.kv.KVRefresh
    (noop,) = run(kv, stream=parent, refresh="none", withdraw=False, keep_last=0, keep_sink=False, disentangle=False)
    (full,) = run(kv, stream=parent, refresh="all", withdraw=True, keep_last=0, keep_sink=False, disentangle=True)
    (custom,) = run(kv, stream=parent, refresh="full", withdraw=True, keep_last=3, keep_sink=True, disentangle=False)
    assert same(state(parent), before)
    policy = host.E.rescheduling.SwitchPolicy
    assert [(e.slot, e.garment, e.policy) for e in custom.session.pending_switches] == [
        ("full", None, policy(refresh=True, withdraw=True, keep_last=3, keep_sink=True, disentangle=False))]
    plain, _, _, *_ = cont(host, model, parent)
    assert torch.equal(cont(host, model, noop)[0], plain)  # nothing asked: exactly the plain continuation
    assert not torch.allclose(cont(host, model, full)[0], plain, atol=1e-3)
    with pytest.raises(ValueError, match="not in this stream"):
        run(kv, stream=parent, refresh="upper", withdraw=True, keep_last=0, keep_sink=False, disentangle=True)


# ----------------------------------------------------------------------------------- progress and cancel
def test_progress_ticks_every_denoising_step_with_a_preview_of_the_chunk(host, model):
    calls = []
    host.utils.set_progress_bar_global_hook(lambda v, t, p, node_id=None: calls.append((v, t, p)))
    host.cli.args.preview_method = host.cli.LatentPreviewMethod.Auto
    try:
        start(host, model, frames=2 * PER_CHUNK)
        host.cli.args.preview_method = host.cli.LatentPreviewMethod.NoPreviews
        start(host, model, frames=PER_CHUNK)
    finally:
        host.utils.set_progress_bar_global_hook(None)
        host.cli.args.preview_method = host.cli.LatentPreviewMethod.NoPreviews
    steps = len(model.stream_config.steps)
    with_preview, without = calls[:2 * steps + 1], calls[2 * steps + 1:]
    assert [v for v, _, _ in with_preview] == [*range(1, 2 * steps + 1), 2 * steps]
    assert {t for _, t, _ in with_preview} == {2 * steps}
    for _, _, preview in with_preview[:-1]:
        fmt, image, size = preview
        assert fmt == "JPEG" and image.size == (SIZE, SIZE) and image.mode == "RGB" and size == 512
    assert [v for v, _, _ in without] == [*range(1, steps + 1), steps] and all(p is None for _, _, p in without)


@pytest.mark.parametrize("cancel_after", [1, 6])
def test_an_interrupt_mid_generation_leaves_the_input_stream_intact(host, model, cancel_after, interrupt_base):
    _, parent, _, *_ = start(host, model)
    (swapped,) = run(host.swap.SwapGarment, stream=parent, garment=img(13), slot="full",
                     policy="full (refresh + withdraw + disentangle)")
    reference, _, _, *_ = cont(host, model, swapped)
    before = state(swapped)
    ticks = []

    def hook(value, total, preview, node_id=None):  # the user presses "Cancel" during step `cancel_after`
        ticks.append(value)
        if len(ticks) == cancel_after:
            host.mm.interrupt_current_processing(True)

    host.utils.set_progress_bar_global_hook(hook)
    try:
        with pytest.raises(host.mm.InterruptProcessingException):
            cont(host, model, swapped)
    finally:
        host.utils.set_progress_bar_global_hook(None)
        host.mm.interrupt_current_processing(False)
    assert len(ticks) == cancel_after  # stopped at the next check, not at the end
    assert same(state(swapped), before) and len(swapped.session.pending_switches) == 1
    again, _, _, *_ = cont(host, model, swapped)
    assert torch.equal(again, reference)


# ----------------------------------------------------------------------------------- try-off
def test_try_off_gives_flat_garments_ready_for_a_swap(host, model):
    person = img(14, batch=2)
    before = person.clone()
    args = dict(model=model, person=person, slot="upper", seed=1, steps=3)
    (garments,) = run(host.tryoff.TryOff, **args)
    assert garments.shape == (2, SIZE, SIZE, 3) and 0 <= garments.min() and garments.max() <= 1
    assert torch.equal(run(host.tryoff.TryOff, **args)[0], garments) and torch.equal(person, before)
    assert not torch.equal(run(host.tryoff.TryOff, **{**args, "seed": 2})[0], garments)
    _, stream, _, *_ = start(host, model)
    (swapped,) = run(host.swap.SwapGarment, stream=stream, garment=garments[:1], slot="full",
                     policy="full (refresh + withdraw + disentangle)")
    assert swapped.session.pending_switches[0].slot == "full"
    with pytest.raises(ValueError, match="multiples of 8"):
        run(host.tryoff.TryOff, **{**args, "person": img(14, h=12)})
    no_tryoff = host.E.embedded.EmbeddedModel(model.codec, model.text, student=model.student)
    with pytest.raises(ValueError, match="no try-off DiT"):
        run(host.tryoff.TryOff, **{**args, "model": no_tryoff})


def test_try_off_ticks_every_step_and_cancels_within_one(host, model, interrupt_base):
    ticks = []

    def hook(value, total, preview, node_id=None):
        ticks.append((value, total))
        if len(ticks) == 2:
            host.mm.interrupt_current_processing(True)

    host.utils.set_progress_bar_global_hook(hook)
    try:
        with pytest.raises(host.mm.InterruptProcessingException):
            run(host.tryoff.TryOff, model=model, person=img(14), slot="upper", seed=1, steps=5)
    finally:
        host.utils.set_progress_bar_global_hook(None)
        host.mm.interrupt_current_processing(False)
    assert ticks == [(1, 5), (2, 5)]  # stopped right after the step during which cancel was pressed
