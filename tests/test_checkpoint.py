"""Checkpoint format, foreign-key normalisation, strict DiT loading and the error messages."""
from __future__ import annotations

import json
import os
import pickle
import struct
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # no repo-root conftest needed

from safetensors.torch import save_file  # noqa: E402

from fashionchameleon.runtime.files.checkpoint import (  # noqa: E402
    Checkpoint, CheckpointError, load_checkpoint, read_header, save_bundle, save_checkpoint, split_bundle,
)
from fashionchameleon.runtime.files.dit_loading import build_dit, load_dit_state  # noqa: E402
from fashionchameleon.runtime.files.foreign import load_official_generator, normalize_dit_keys  # noqa: E402
from fashionchameleon.runtime.config import ModelConfig, preset  # noqa: E402
from fashionchameleon.runtime.dit.model import WanDiT  # noqa: E402

# Wan2.2-TI2V-5B key names at reduced width. One head: heads are not visible in the shapes and
# infer_config gives 1 head below 128 channels, so the inferred model is the same model.
SMALL = preset("wan2.2-ti2v-5b").replace(name="small", dim=96, ffn_dim=192, num_heads=1, num_layers=2,
                                         text_dim=64, in_dim=48, out_dim=48)


@pytest.fixture(scope="module")
def model() -> WanDiT:
    torch.manual_seed(0)
    m = WanDiT(SMALL).eval()
    with torch.no_grad():  # Wan zero-inits the head; make every weight matter for the output check
        m.head.head.weight.normal_(std=0.02)
    return m


@pytest.fixture(scope="module")
def inputs() -> tuple:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 48, 2, 4, 4, generator=g)
    t = torch.tensor([[0.0, 700.0]])
    ctx = torch.randn(1, 5, 64, generator=g)
    return x, t, ctx, [0, 1]


def _out(m: WanDiT, inputs) -> torch.Tensor:
    x, t, ctx, pos = inputs
    with torch.no_grad():
        return m(x, t, ctx, pos)


def _sd(m: WanDiT) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


# ------------------------------------------------------------------------------- round trips
def test_round_trip_is_bit_identical(tmp_path, model):
    sd = _sd(model)
    sd["extra.bf16"] = torch.randn(3, 5).to(torch.bfloat16)
    path = save_checkpoint(tmp_path / "t.safetensors", sd, "teacher", SMALL, extra={"seed": 3, "cmd": "train x"})
    assert sorted(os.listdir(tmp_path)) == ["t.safetensors"]  # the temp file was renamed away
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temp file's 0600

    ck = load_checkpoint(path, expect_stage="teacher")
    assert ck.stage == "teacher" and ck.format_version == 1
    assert ModelConfig.from_json(ck.config) == SMALL
    assert ck.metadata["seed"] == "3" and ck.metadata["cmd"] == "train x" and ck.metadata["fc_format"] == "1"
    assert set(ck.tensors) == set(sd)
    for k, v in sd.items():
        assert ck.tensors[k].dtype == v.dtype and torch.equal(ck.tensors[k], v), k
    assert read_header(path)["__metadata__"]["fc_stage"] == "teacher"


def test_tied_and_noncontiguous_tensors_are_saved(tmp_path):
    w = torch.randn(4, 6)
    sd = {"a": w, "b": w, "c": w.t()}  # shared storage + a non-contiguous view
    ck = load_checkpoint(save_checkpoint(tmp_path / "x.safetensors", sd, "codec", {"k": 1}))
    assert torch.equal(ck.tensors["a"], w) and torch.equal(ck.tensors["b"], w) and torch.equal(ck.tensors["c"], w.t())
    assert ck.config == {"k": 1}


def test_bundle_save_and_split(tmp_path, model, inputs):
    codec_sd = {"enc.weight": torch.randn(8, 3), "dec.bias": torch.randn(3)}
    path = save_bundle(tmp_path / "b.safetensors",
                       {"teacher": (_sd(model), "teacher", SMALL), "codec": (codec_sd, "codec", {"latent": 16})},
                       extra={"note": "x"})
    ck = load_checkpoint(path, expect_stage="bundle")
    assert ck.stage == "bundle" and all(k.split(".", 1)[0] in ("teacher", "codec") for k in ck.tensors)
    parts = split_bundle(ck)
    assert set(parts) == {"teacher", "codec"}
    assert parts["codec"].stage == "codec" and parts["codec"].config == {"latent": 16}
    assert parts["codec"].metadata["note"] == "x"
    assert all(torch.equal(parts["codec"].tensors[k], v) for k, v in codec_sd.items())
    assert parts["teacher"].stage == "teacher" and ModelConfig.from_json(parts["teacher"].config) == SMALL
    assert (_out(build_dit(parts["teacher"]), inputs) - _out(model, inputs)).abs().max().item() == 0.0
    with pytest.raises(CheckpointError, match="bundle"):
        build_dit(ck)
    with pytest.raises(CheckpointError, match="not a bundle"):
        split_bundle(parts["codec"])


# ------------------------------------------------------------------------------- foreign Wan files
def _comfy(sd):
    out = {"model.diffusion_model." + k: v for k, v in sd.items()}
    out["first_stage_model.decoder.conv_in.weight"] = torch.zeros(2, 2)  # full ComfyUI checkpoints carry a VAE
    return out


def _fsdp(sd):
    out = {}
    for k, v in sd.items():
        if k.startswith("blocks."):
            i, rest = k.split(".", 2)[1:]
            k = f"blocks.{i}._fsdp_wrapped_module._checkpoint_wrapped_module.{rest}"
        out["_fsdp_wrapped_module._orig_mod." + k] = v
    return out


@pytest.mark.parametrize("layout", ["plain", "comfy", "fsdp"])
def test_foreign_wan_file_infers_config_and_loads_exactly(tmp_path, model, inputs, layout):
    sd = _sd(model)
    sd = {"plain": sd, "comfy": _comfy(sd), "fsdp": _fsdp(sd)}[layout]
    path = tmp_path / f"wan_{layout}.safetensors"
    save_file(sd, str(path))  # no fc_* metadata, like a file from the Wan release

    loaded = build_dit(path)
    c = loaded.cfg
    assert (c.dim, c.ffn_dim, c.num_layers, c.in_dim, c.out_dim, c.text_dim, c.patch_size, c.freq_dim) == \
        (96, 192, 2, 48, 48, 64, (1, 2, 2), 256)
    assert c.replace(name="small") == SMALL
    assert loaded.dtype == torch.float32 and not loaded.training
    assert (_out(loaded, inputs) - _out(model, inputs)).abs().max().item() == 0.0


def test_foreign_file_needs_allow_foreign(tmp_path, model):
    path = tmp_path / "raw.safetensors"
    save_file(_sd(model), str(path))
    with pytest.raises(CheckpointError, match="no FashionChameleon metadata") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)
    ck = load_checkpoint(path, expect_stage="teacher", allow_foreign=True)
    assert ck.stage == "unknown" and ck.config is None and ck.format_version is None


def test_build_dit_keeps_stored_dtype_and_casts_on_request(tmp_path, model):
    path = tmp_path / "bf16.safetensors"
    save_file({k: v.to(torch.bfloat16) for k, v in _sd(model).items()}, str(path))
    assert build_dit(path).dtype == torch.bfloat16
    m32 = build_dit(path, dtype=torch.float32)
    assert m32.dtype == torch.float32
    assert torch.equal(m32.blocks[1].ffn[0].weight, model.blocks[1].ffn[0].weight.to(torch.bfloat16).float())


# ------------------------------------------------------------------------------- parameter counts
def test_parameter_counts():
    n5b = preset("wan2.2-ti2v-5b").num_parameters()
    assert abs(n5b - 5.0e9) / 5.0e9 < 0.01
    assert SMALL.num_parameters() == sum(p.numel() for p in WanDiT(SMALL).parameters())
    other = SMALL.replace(qk_norm=False, cross_attn_norm=False, num_layers=3)
    assert other.num_parameters() == sum(p.numel() for p in WanDiT(other).parameters())


# ------------------------------------------------------------------------------- bad files
@pytest.fixture()
def good_file(tmp_path, model) -> Path:
    return save_checkpoint(tmp_path / "good.safetensors", _sd(model), "teacher", SMALL)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such file") as e:
        load_checkpoint(tmp_path / "nope.safetensors")
    assert "nope.safetensors" in str(e.value)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty \(0 bytes\).*again"):
        read_header(tmp_path / "empty.safetensors")
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x02\x03\x04\x05")
    with pytest.raises(CheckpointError, match="only 5 bytes"):
        read_header(tmp_path / "short.safetensors")


def test_truncated_files(tmp_path, good_file):
    data = good_file.read_bytes()
    half = tmp_path / "half.safetensors"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated: tensor '.*' ends at byte \d+ .* only \d+ data bytes") as e:
        load_checkpoint(half)
    assert str(half) in str(e.value) and "fetch the file again" in str(e.value)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:40])  # cut inside the JSON header
    with pytest.raises(CheckpointError, match=r"truncated: the header should be \d+ bytes but only 32"):
        read_header(cut)


def test_random_bytes_and_garbage_header(tmp_path):
    rnd = tmp_path / "random.safetensors"
    rnd.write_bytes(bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(5)).to(torch.uint8).tolist()))
    with pytest.raises(CheckpointError, match="not a safetensors file: its first 8 bytes give a header length"):
        read_header(rnd)
    junk = tmp_path / "junk.safetensors"
    body = b"{this is not json at all"
    junk.write_bytes(struct.pack("<Q", len(body)) + body + b"\0" * 16)
    with pytest.raises(CheckpointError, match="header is not valid JSON") as e:
        load_checkpoint(junk)
    assert str(junk) in str(e.value)
    bad_meta = tmp_path / "meta.safetensors"
    body = json.dumps({"__metadata__": {"fc_stage": 3}}).encode()
    bad_meta.write_bytes(struct.pack("<Q", len(body)) + body)
    with pytest.raises(CheckpointError, match="metadata must map strings to strings"):
        read_header(bad_meta)


class Opaque:  # an arbitrary object: weights_only loading must refuse it
    pass


def test_pickles_are_refused(tmp_path, model):
    pt = tmp_path / "model.pt"
    torch.save(_sd(model), pt)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(pt)
    msg = str(e.value)
    assert str(pt) in msg and "zip archive (the format torch.save writes)" in msg
    assert "can run arbitrary code" in msg and "never loads them" in msg and "safetensors.torch.save_file" in msg

    legacy = tmp_path / "legacy.ckpt"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"Python pickle \(protocol 2"):
        read_header(legacy)
    raw = tmp_path / "state.pkl"
    raw.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(CheckpointError, match=r"Python pickle \(protocol 4.*never loads"):
        load_checkpoint(raw)
    tiny = tmp_path / "tiny"  # a pickle shorter than the 8-byte prefix, no extension
    tiny.write_bytes(pickle.dumps(1, protocol=4)[:6])
    with pytest.raises(CheckpointError, match="Python pickle"):
        read_header(tiny)


def test_pickle_extension_refused_unless_safetensors(tmp_path, model):
    fake = tmp_path / "weights.bin"
    fake.write_bytes(b"\x00\x01" * 64)
    with pytest.raises(CheckpointError, match=r"extension '\.bin' is a pickle/torch.save format.*never loads"):
        read_header(fake)
    real = tmp_path / "weights.pt"
    save_file(_sd(model), str(real))  # a safetensors file with a misleading name is fine
    assert load_checkpoint(real, allow_foreign=True).stage == "unknown"
    with pytest.raises(CheckpointError, match="name it"):
        save_checkpoint(tmp_path / "out.pth", _sd(model), "teacher", SMALL)


def test_newer_format_and_bad_metadata(tmp_path):
    p = tmp_path / "future.safetensors"
    save_file({"w": torch.zeros(1)}, str(p), metadata={"fc_format": "2", "fc_stage": "teacher"})
    with pytest.raises(CheckpointError, match="format 2.*reads up to format 1.*Update"):
        load_checkpoint(p)
    p2 = tmp_path / "stage.safetensors"
    save_file({"w": torch.zeros(1)}, str(p2), metadata={"fc_format": "1", "fc_stage": "vae"})
    with pytest.raises(CheckpointError, match="unknown stage 'vae'"):
        load_checkpoint(p2)
    with pytest.raises(CheckpointError, match="'fc_' prefix is reserved"):
        save_checkpoint(tmp_path / "x.safetensors", {"w": torch.zeros(1)}, "codec", None, extra={"fc_stage": "x"})
    with pytest.raises(CheckpointError, match="entry 'step' is a int, not a tensor"):
        save_checkpoint(tmp_path / "x.safetensors", {"step": 3}, "codec", None)
    with pytest.raises(CheckpointError, match="unknown stage 'teachr'"):
        save_checkpoint(tmp_path / "x.safetensors", {"w": torch.zeros(1)}, "teachr", None)


# ------------------------------------------------------------------------------- stage and fit errors
def test_wrong_stage(tmp_path, model):
    student = save_checkpoint(tmp_path / "s.safetensors", _sd(model), "student", SMALL)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(student, expect_stage="teacher")
    assert str(student) in str(e.value)
    assert "a student checkpoint was loaded where a teacher is required" in str(e.value)
    tryoff = save_checkpoint(tmp_path / "o.safetensors", _sd(model), "tryoff", SMALL)
    with pytest.raises(CheckpointError, match="a tryoff checkpoint was loaded where a teacher or student is required"):
        build_dit(tryoff)
    assert build_dit(student, expect_stage="student").cfg == SMALL


def test_fit_errors_name_the_first_offending_keys(model):
    sd = _sd(model)
    del sd["blocks.1.ffn.2.bias"]
    with pytest.raises(CheckpointError) as e:
        load_dit_state(WanDiT(SMALL), sd, path="my.safetensors")
    msg = str(e.value)
    assert msg.startswith("my.safetensors: ") and "1 missing key(s) (first: blocks.1.ffn.2.bias)" in msg
    assert "unexpected" not in msg and "shape" not in msg

    sd = _sd(model)
    sd["lora_A.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\) \(first: lora_A.weight\)"):
        load_dit_state(WanDiT(SMALL), sd)

    sd = _sd(model)
    sd["blocks.0.ffn.0.weight"] = torch.zeros(100, 96)
    with pytest.raises(CheckpointError,
                       match=r"1 shape mismatch\(es\) \(first: blocks.0.ffn.0.weight: file \[100, 96\] vs model \[192, 96\]\)"):
        load_dit_state(WanDiT(SMALL), sd)

    many = {k: v for k, v in _sd(model).items() if not k.startswith("blocks.1.")}
    with pytest.raises(CheckpointError, match=r"27 missing key\(s\) \(first: blocks.1.modulation, (blocks\.1\.[\w.]+, ){4}\.\.\.\)"):
        load_dit_state(WanDiT(SMALL), many)


def test_metadata_config_disagreeing_with_tensors(tmp_path, model):
    wrong = SMALL.replace(dim=128, ffn_dim=512, num_layers=3)
    path = save_checkpoint(tmp_path / "lie.safetensors", _sd(model), "teacher", wrong)
    with pytest.raises(CheckpointError) as e:
        build_dit(path)
    msg = str(e.value)
    assert str(path) in msg
    assert "metadata says dim=128 but patch_embedding.weight has dim 96" in msg
    assert "metadata says ffn_dim=512 but blocks.0.ffn.0.weight has ffn_dim 192" in msg
    assert "metadata says num_layers=3 but the file has 2 blocks" in msg
    assert "in_dim" not in msg and "text_dim" not in msg


# ------------------------------------------------------------------------------- official checkpoints
def test_official_generator_pt_via_weights_only(tmp_path, model, inputs):
    sd = _sd(model)
    torch.manual_seed(7)
    ema_model = WanDiT(SMALL).eval()
    ema = {"model." + k: v.float() for k, v in ema_model.state_dict().items()}  # EMA_FSDP keeps fp32
    path = tmp_path / "checkpoint_model_000100" / "model.pt"
    path.parent.mkdir()
    torch.save({"generator": {"model." + k: v.to(torch.bfloat16) for k, v in sd.items()},
                "critic": {"model.blocks.0.ffn.0.weight": torch.zeros(1)},
                "generator_ema": ema, "global_step": 100}, path)

    got = load_official_generator(path)  # prefers the EMA
    assert set(got) == set(sd) and all(torch.equal(got[k], ema["model." + k]) for k in got)
    m = load_dit_state(WanDiT(SMALL).eval(), got, path=str(path))
    assert (_out(m, inputs) - _out(ema_model, inputs)).abs().max().item() == 0.0

    raw = load_official_generator(path, prefer_ema=False)
    assert raw["blocks.0.self_attn.q.weight"].dtype == torch.bfloat16
    m = load_dit_state(WanDiT(SMALL), raw)  # cast to the model's dtype
    assert m.blocks[0].self_attn.q.weight.dtype == torch.float32
    assert torch.equal(m.blocks[0].self_attn.q.weight, sd["blocks.0.self_attn.q.weight"].to(torch.bfloat16).float())

    with pytest.raises(CheckpointError, match="zip archive"):  # the ordinary loaders still refuse it
        load_checkpoint(path)


def test_official_generator_safetensors_and_refusals(tmp_path, model):
    st = tmp_path / "gen.safetensors"
    save_file({"model." + k: v for k, v in _sd(model).items()}, str(st))
    assert set(load_official_generator(st)) == set(model.state_dict())

    opaque = tmp_path / "opaque.pt"
    torch.save({"generator": {"model.head.head.weight": torch.zeros(1)}, "config": Opaque()}, opaque)
    with pytest.raises(CheckpointError, match=r"weights_only=True\) refused.*Unsupported global.*Opaque.*full pickle "
                                              r"load is never attempted") as e:
        load_official_generator(opaque)
    assert "\n" not in str(e.value) and "load_official_generator" not in str(e.value)

    nested = tmp_path / "nested.pt"
    torch.save({"global_step": 3, "optimizer": {"lr": 0.1}}, nested)
    with pytest.raises(CheckpointError, match=r"no tensors found at the top level \(keys: \['global_step', 'optimizer'\]"):
        load_official_generator(nested)


# ------------------------------------------------------------------------------- key normalisation
def _t():
    return torch.zeros(1)


def test_normalize_prefixes_and_infixes():
    comfy = {"model.diffusion_model.blocks.0.ffn.0.weight": _t(), "model.diffusion_model.head.head.bias": _t(),
             "first_stage_model.encoder.w": _t(), "cond_stage_model.t.w": _t()}
    assert sorted(normalize_dit_keys(comfy)) == ["blocks.0.ffn.0.weight", "head.head.bias"]
    assert sorted(normalize_dit_keys({"diffusion_model.patch_embedding.weight": _t()})) == ["patch_embedding.weight"]
    ddp = {"module.model.blocks.0.modulation": _t(), "module.model.time_projection.1.weight": _t()}
    assert sorted(normalize_dit_keys(ddp)) == ["blocks.0.modulation", "time_projection.1.weight"]
    fsdp = {"_orig_mod._fsdp_wrapped_module.blocks.3._checkpoint_wrapped_module.self_attn.q.weight": _t()}
    assert list(normalize_dit_keys(fsdp)) == ["blocks.3.self_attn.q.weight"]


def test_normalize_model_prefix_only_when_every_dit_key_has_it():
    wrapped = {"model.blocks.0.norm3.weight": _t(), "model.head.modulation": _t(), "_cls_pred_branch.0.weight": _t()}
    assert sorted(normalize_dit_keys(wrapped)) == ["_cls_pred_branch.0.weight", "blocks.0.norm3.weight",
                                                   "head.modulation"]
    mixed = {"blocks.0.norm3.weight": _t(), "model.blocks.0.norm3.bias": _t()}
    assert sorted(normalize_dit_keys(mixed)) == ["blocks.0.norm3.weight", "model.blocks.0.norm3.bias"]
    plain = {"blocks.0.norm3.weight": _t(), "head.head.weight": _t()}
    assert normalize_dit_keys(plain).keys() == plain.keys()


def test_normalize_unwraps_nesting_with_ema_choice():
    gen, ema = torch.zeros(1), torch.ones(1)
    ck = {"generator": {"model.blocks.0.ffn.0.bias": gen}, "generator_ema": {"model.blocks.0.ffn.0.bias": ema},
          "global_step": 5}
    assert normalize_dit_keys(ck)["blocks.0.ffn.0.bias"] is ema
    assert normalize_dit_keys(ck, prefer_ema=False)["blocks.0.ffn.0.bias"] is gen
    only_gen = {"generator": {"model.blocks.0.ffn.0.bias": gen}}
    assert normalize_dit_keys(only_gen)["blocks.0.ffn.0.bias"] is gen
    deep = {"state_dict": {"model": {"module.head.head.weight": gen}}, "epoch": 2}
    assert list(normalize_dit_keys(deep)) == ["head.head.weight"]
    with pytest.raises(CheckpointError, match="both become 'blocks.0.x'"):
        normalize_dit_keys({"blocks.0.x": _t(), "blocks.0._orig_mod.x": _t()})


def test_checkpoint_dataclass_fields(tmp_path, model):
    ck = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", _sd(model), "student", SMALL))
    assert isinstance(ck, Checkpoint) and not ck.foreign
    assert ck.path == str(tmp_path / "c.safetensors")
    assert set(ck.metadata) == {"fc_format", "fc_stage", "fc_config"}


def test_build_dit_inside_inference_mode_gives_ordinary_weights(tmp_path, model):
    path = tmp_path / "wan.safetensors"
    save_file(_sd(model), str(path))
    with torch.inference_mode():  # how ComfyUI runs every node
        loaded = build_dit(path)
    assert not any(p.is_inference() for p in loaded.parameters())  # so the fused q/k/v weights can be cached
    assert torch.is_inference_mode_enabled() is False
