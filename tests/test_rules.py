"""The engine's input rules (fashionchameleon/runtime/rules.py): each written once, used by the engine and the nodes.

For each rule: the engine function refuses a bad input with a message and the facts, the engine's
own call sites raise it, and a node raises it in its own words (naming its input and the fix).
Changing the rule in the engine changes what the node accepts: the nodes keep no copy.
"""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
import torch

from fashionchameleon.runtime import rules
from fashionchameleon.runtime.embedded import EmbeddedModel
from fashionchameleon.runtime.rules import InputRuleError
from fashionchameleon.runtime.stream.rescheduling import SwitchPolicy
from fashionchameleon.runtime.stream.session import StreamInputError, StreamSession
from node_harness import PER_CHUNK, SIZE, img, run

CODEC, CFG = SimpleNamespace(spatial_factor=4), SimpleNamespace(patch_size=(1, 2, 2))  # unit 8, as the micro model's


def _images(n: int = 1, h: int = SIZE, w: int = SIZE) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(n)) * 2 - 1


def _session(model, codec, text, slots=("full",)) -> StreamSession:
    return StreamSession(model, codec, text, _images(), {s: _images()[0] for s in slots})


def _rules_of(host):
    """The engine's rules module of the pack the nodes use (the pack is loaded under its own package name)."""
    return importlib.import_module(f"{host.E.fc.__name__}.runtime.rules")


# ----------------------------------------------------------------------------------- the engine functions
def test_slot_names_are_full_upper_and_lower():
    assert rules.SLOTS == ("full", "upper", "lower")
    assert rules.check_slot_names(["upper", "lower"]) == ["upper", "lower"] and rules.check_slot_names(()) == []
    with pytest.raises(InputRuleError, match=r"unknown garment slot 'middle'; choose one of \['full', 'upper', "
                                             r"'lower'\]") as one:
        rules.check_slot_names(["full", "middle"])
    assert one.value.rule == "slot_name" and one.value.facts == {"unknown": ["middle"], "slots": rules.SLOTS}
    with pytest.raises(InputRuleError, match=r"unknown garment slots \['top', 'x'\]"):
        rules.check_slot_names(["top", "x"])


def test_a_slot_must_be_one_the_stream_has():
    assert rules.check_stream_slots(("lower",), ("upper", "lower")) == ["lower"]
    with pytest.raises(InputRuleError, match=r"garment slot 'upper' is not in this stream; its slots are \['full'\]") \
            as one:
        rules.check_stream_slots(("upper",), ["full"])
    assert one.value.rule == "stream_slot" and one.value.facts == {"unknown": ["upper"], "slots": ("full",)}
    with pytest.raises(InputRuleError, match=r"garment slots \['full', 'x'\] are not in this stream"):
        rules.check_stream_slots(("full", "x", "upper"), ("upper", "lower"))


def test_image_sides_must_be_multiples_of_the_codec_factor_times_the_patch():
    assert rules.size_unit(CODEC, CFG) == 8 and rules.check_image_size((16, 24), CODEC, CFG) == (16, 24)
    with pytest.raises(InputRuleError, match=r"image size 12x20 must be a multiple of 8 \(codec 4x times patch 2\); "
                                             r"resize or crop the images") as bad:
        rules.check_image_size((12, 20), CODEC, CFG)
    assert bad.value.rule == "image_size"
    assert bad.value.facts == {"size": (12, 20), "unit": 8, "spatial_factor": 4, "patch": 2, "nearest": (16, 24)}
    with pytest.raises(InputRuleError) as tiny:
        rules.check_image_size((3, 8), CODEC, CFG)
    assert tiny.value.facts["nearest"] == (8, 8)  # never 0


def test_streaming_needs_a_student():
    student = object()
    assert rules.require_student(SimpleNamespace(student=student, teacher=None, tryoff=None)) is student
    with pytest.raises(InputRuleError, match=r"no causal student DiT, which streaming needs \(it has: teacher, "
                                             r"tryoff\); train it .* student\.safetensors") as bad:
        rules.require_student(SimpleNamespace(student=None, teacher=object(), tryoff=object()))
    assert bad.value.rule == "student" and bad.value.facts == {"have": ("teacher", "tryoff")}
    with pytest.raises(InputRuleError, match=r"\(it has: no DiT\)"):
        rules.require_student(SimpleNamespace(student=None))


def test_the_rules_error_is_a_value_error_and_the_streams_input_error():
    assert issubclass(InputRuleError, ValueError) and StreamInputError is InputRuleError
    assert str(InputRuleError("plain")) == "plain" and InputRuleError("plain").facts == {}


# ----------------------------------------------------------------------------------- the engine's call sites
def test_the_session_applies_the_size_and_slot_rules(micro_model, micro_codec, micro_text):
    with pytest.raises(InputRuleError, match="multiple of 8") as size:
        StreamSession(micro_model, micro_codec, micro_text, _images(h=12, w=12), {"full": _images(h=12, w=12)[0]})
    assert size.value.rule == "image_size" and size.value.facts["nearest"] == (16, 16)
    s = _session(micro_model, micro_codec, micro_text, slots=("upper", "lower"))
    with pytest.raises(InputRuleError) as switch:
        s.request_switch("full", _images()[0])
    with pytest.raises(InputRuleError) as reschedule:
        s.request_reschedule(SwitchPolicy(), slots=("lower", "full"))
    for err in (switch.value, reschedule.value):
        assert err.rule == "stream_slot" and err.facts == {"unknown": ["full"], "slots": ("upper", "lower")}
    assert s.pending_switches == ()


def test_the_embedded_model_streams_only_with_a_student(micro_codec, micro_text, micro_model):
    model = EmbeddedModel(micro_codec, micro_text, teacher=micro_model)
    with pytest.raises(InputRuleError, match=r"it has: teacher") as bad:
        model.session(_images(), {"full": _images()[0]})
    assert bad.value.rule == "student"
    assert model.session(_images(), {"full": _images()[0]}, model=micro_model).frames_generated == 0  # a DiT given


# ----------------------------------------------------------------------------------- through the nodes
def test_nodes_word_the_slot_name_rule_for_their_input(host, model):
    with pytest.raises(ValueError, match=r"^slot: unknown garment slot 'middle'; choose one of \['full', 'upper', "
                                         r"'lower'\]$"):
        run(host.tryoff.TryOff, model=model, person=img(4), slot="middle", seed=0, steps=1)
    message = host.gen.StreamGenerate.validate_inputs(switch_slots="upper, middle")
    assert message == "switch_slots: unknown garment slot(s) ['middle']; slots are ['full', 'upper', 'lower']"


def test_nodes_word_the_stream_slot_rule_for_their_input(host, model):
    _, stream, _, *_ = run(host.gen.StreamGenerate, model=model, reference=img(1), garment=img(2), prompt="",
                       frames=PER_CHUNK, seed=0)
    with pytest.raises(ValueError, match=r"^slot: garment slot 'upper' is not in this stream; its slots are "
                                         r"\['full'\]\. A stream started with one garment has 'full'"):
        run(host.swap.SwapGarment, stream=stream, garment=img(3), slot="upper", policy="refresh only")
    with pytest.raises(ValueError, match=r"^refresh: garment slot 'lower' is not in this stream"):
        run(host.kv.KVRefresh, stream=stream, refresh="lower", withdraw=True, keep_last=0, keep_sink=False,
            disentangle=True)


def test_nodes_word_the_image_size_rule_for_their_input(host, model):
    with pytest.raises(ValueError, match=r"the reference is 12x20 \(HxW\), but with this VAE \(4x\) and the DiT's "
                                         r"patch \(2\) both sides must be multiples of 8; resize or crop the images, "
                                         r"e\.g\. to 16x24$"):
        run(host.gen.StreamGenerate, model=model, reference=img(1, h=12, w=20), garment=img(2), prompt="",
            frames=PER_CHUNK, seed=0)
    with pytest.raises(ValueError, match=r"^person: the image is 12x16; width and height must be multiples of 8 for "
                                         r"this model \(resize or crop it first\)$"):
        run(host.tryoff.TryOff, model=model, person=img(4, h=12), slot="upper", seed=0, steps=1)


def test_nodes_word_the_student_rule_for_the_model_input(host, model):
    no_student = host.E.embedded.EmbeddedModel(model.codec, model.text, tryoff=model.tryoff)
    with pytest.raises(ValueError, match=r"^FashionChameleon stream generate: this model has no causal student DiT, "
                                         r"which streaming needs \(it has: tryoff\); load the embedded model or a "
                                         r"student checkpoint$"):
        run(host.gen.StreamGenerate, model=no_student, reference=img(1), garment=img(2), prompt="", frames=1, seed=0)


def test_the_nodes_follow_the_engines_rules_and_keep_no_copy(host, model, monkeypatch):
    """A changed rule in the engine changes what the nodes accept: each rule has one home."""
    pack_rules = _rules_of(host)
    validate = host.gen.StreamGenerate.validate_inputs
    assert validate(switch_slots="middle") is not True
    monkeypatch.setattr(pack_rules, "SLOTS", (*pack_rules.SLOTS, "middle"))
    assert validate(switch_slots="middle") is True
    monkeypatch.setattr(pack_rules, "size_unit", lambda codec, cfg: 16)  # a coarser unit: 24 px is refused now
    with pytest.raises(ValueError, match=r"the reference is 24x16 .* multiples of 16; .* e\.g\. to 32x16"):
        run(host.gen.StreamGenerate, model=model, reference=img(1, h=24), garment=img(2), prompt="", frames=1,
            seed=0)
    with pytest.raises(ValueError, match=r"^person: .* multiples of 16 for this model"):
        run(host.tryoff.TryOff, model=model, person=img(4, h=24), slot="upper", seed=0, steps=1)
