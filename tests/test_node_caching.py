"""ComfyUI's output cache: unchanged branches stay bit-identical, consumers of one value never see each other's changes.

ComfyUI keeps every node's outputs and hands the *same* objects to every consumer, in this run
and in later runs whose inputs upstream did not change (comfyui.md §5). `Executor` below does the
same on a small graph of the pack's nodes: a node runs again only when its own widgets or an
upstream node changed, otherwise its cached output objects are reused. On top, every node is
called with inputs that are compared bit for bit before and after: no node may change an input
tensor, dict, stream or model.
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from fake_vae import FakeVAE
from node_harness import PER_CHUNK, img, micro_parts, run, same, stream_state

FULL = "full (refresh + withdraw + disentangle)"
KV = dict(refresh="all", withdraw=True, keep_last=0, keep_sink=False, disentangle=True)


# ----------------------------------------------------------------------------------- a caching executor
class Const:
    """A source node: outputs the value it holds (as a Load Image node outputs its picture)."""

    @classmethod
    def execute(cls, value):
        return SimpleNamespace(args=(value,))


class Executor:
    """Runs a graph `{id: (node class, {input: literal | (source id, output index)})}` with ComfyUI's cache rule:
    a node's key is its class, its literal inputs and its sources' keys; a known key reuses the cached outputs."""

    def __init__(self) -> None:
        self.cache: dict[tuple, tuple] = {}
        self.executed: list[str] = []

    def run(self, graph: dict, order: list[str] | None = None) -> dict[str, tuple]:
        keys: dict[str, tuple] = {}
        outputs: dict[str, tuple] = {}
        for node_id in order or list(graph):
            cls, inputs = graph[node_id]
            key = (cls.__name__, tuple(sorted((name, keys[v[0]] + (v[1],) if isinstance(v, tuple) else _literal(v))
                                              for name, v in inputs.items())))
            keys[node_id] = key
            if key not in self.cache:
                args = {name: outputs[v[0]][v[1]] if isinstance(v, tuple) else v for name, v in inputs.items()}
                with torch.inference_mode():
                    self.cache[key] = tuple(cls.execute(**args).args)
                self.executed.append(node_id)
            outputs[node_id] = self.cache[key]
        return outputs


def _literal(value) -> object:
    """A hashable stand-in for a literal input: objects by identity (a Const node's output is its value)."""
    return value if isinstance(value, (str, int, float, bool)) else ("object", id(value))


def deep_copy(value) -> object:
    """Everything observable in a node's input or output, as plain data with cloned tensors."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if hasattr(value, "session") and hasattr(value, "fork"):  # an FC_STREAM
        return ("stream", stream_state(value))
    if dataclasses.is_dataclass(value) and hasattr(value, "codec"):  # an FC_MODEL
        return ("model", {f.name: (id(getattr(value, f.name)), deep_copy(getattr(value, f.name)))
                          for f in dataclasses.fields(value)})
    if isinstance(value, torch.nn.Module):
        return ("module", {k: v.clone() for k, v in value.state_dict().items()}, value.training)
    if hasattr(value, "get_components"):  # a VIDEO: its frames, frame rate and audio
        parts = value.get_components()
        return ("video", deep_copy(parts.images), parts.frame_rate, deep_copy(parts.audio))
    if isinstance(value, FakeVAE):
        return ("vae", deep_copy(value.first_stage_model), value.decode_calls >= 0)
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(deep_copy(v) for v in value)
    return value


# ----------------------------------------------------------------------------------- the graph
@pytest.fixture(scope="module")
def graph(host, model):
    """Load (the micro model) -> start -> {swap -> generate, KV refresh -> generate, generate, try-off}."""
    g = host.gen.StreamGenerate
    return {
        "model": (Const, {"value": model}),
        "reference": (Const, {"value": img(1)}),
        "garment": (Const, {"value": img(2)}),
        "new_garment": (Const, {"value": img(3)}),
        "start": (g, {"model": ("model", 0), "reference": ("reference", 0), "garment": ("garment", 0),
                      "prompt": "a person walks", "frames": PER_CHUNK, "seed": 5}),
        "swap": (host.swap.SwapGarment, {"stream": ("start", 1), "garment": ("new_garment", 0), "slot": "full",
                                         "policy": FULL}),
        "after_swap": (g, {"model": ("model", 0), "stream": ("swap", 0), "prompt": "", "frames": 2 * PER_CHUNK,
                           "seed": 0}),
        "refresh": (host.kv.KVRefresh, {"stream": ("start", 1), **KV}),
        "after_refresh": (g, {"model": ("model", 0), "stream": ("refresh", 0), "prompt": "", "frames": PER_CHUNK,
                              "seed": 0}),
        "plain": (g, {"model": ("model", 0), "stream": ("start", 1), "prompt": "", "frames": 2 * PER_CHUNK,
                      "seed": 0}),
        "tryoff": (host.tryoff.TryOff, {"model": ("model", 0), "person": ("reference", 0), "slot": "upper", "seed": 1,
                                        "steps": 2}),
    }


def _with(graph: dict, node_id: str, **widgets) -> dict:
    cls, inputs = graph[node_id]
    return {**graph, node_id: (cls, {**inputs, **widgets})}


def test_a_changed_widget_reruns_its_branch_only_and_the_rest_stays_bit_identical(graph):
    executor = Executor()
    first = executor.run(graph)
    kept = {k: deep_copy(v) for k, v in first.items()}
    executor.executed.clear()
    changed = _with(graph, "swap", policy="refresh only")
    second = executor.run(changed)
    assert executor.executed == ["swap", "after_swap"]  # ComfyUI reruns the changed node and what follows it
    for node_id in graph:
        if node_id not in ("swap", "after_swap"):
            assert all(a is b for a, b in zip(first[node_id], second[node_id])), node_id  # served from the cache
            assert same(deep_copy(second[node_id]), kept[node_id]), f"{node_id}'s cached output changed"
    assert not torch.equal(second["after_swap"][0], first["after_swap"][0])  # the change did take effect
    fresh = Executor().run(changed)  # no cache at all: the same numbers
    for node_id in graph:
        assert same(deep_copy(fresh[node_id]), deep_copy(second[node_id])), node_id


def test_the_consumers_of_one_stream_do_not_see_each_other_in_any_order(graph):
    consumers = ["swap", "after_swap", "refresh", "after_refresh", "plain", "tryoff"]
    sources = [k for k in graph if k not in consumers]
    alone = {}
    for branch in (["swap", "after_swap"], ["refresh", "after_refresh"], ["plain"], ["tryoff"]):
        out = Executor().run({k: graph[k] for k in sources + branch})
        alone.update({k: deep_copy(out[k]) for k in branch})
    for order in (consumers, ["tryoff", "plain", "refresh", "after_refresh", "swap", "after_swap"],
                  ["plain", "refresh", "swap", "tryoff", "after_refresh", "after_swap"]):  # each a valid order
        together = Executor().run(graph, order=sources + order)
        for k in consumers:
            assert same(deep_copy(together[k]), alone[k]), f"{k} saw another consumer's change (order {order})"


def test_rerunning_an_unchanged_graph_executes_nothing_and_changes_nothing(graph):
    executor = Executor()
    first = executor.run(graph)
    kept = {k: deep_copy(v) for k, v in first.items()}
    executor.executed.clear()
    again = executor.run(graph)
    assert executor.executed == [] and all(same(deep_copy(again[k]), kept[k]) for k in graph)


# ----------------------------------------------------------------------------------- no node changes an input
@pytest.fixture(scope="module")
def inputs(host, model, tmp_path_factory):
    """Inputs for every node, including a two-slot stream with a schedule, a VAE and a CONDITIONING."""
    E = host.E
    cfg, codec, text = micro_parts(E)
    weights = tmp_path_factory.mktemp("weights")
    for name, part, stage, config in (("codec", codec, "codec", codec.config), ("text", text, "text", text.config),
                                      ("student", model.student, "student", cfg)):
        E.checkpoint.save_checkpoint(weights / f"{name}.safetensors", part.state_dict(), stage, config)
    _, stream, _, *_ = run(host.gen.StreamGenerate, model=model, reference=img(1), garment=img(2), prompt="walk",
                       frames=PER_CHUNK, seed=5)
    _, two, _, *_ = run(host.gen.StreamGenerate, model=model, reference=img(1, batch=2), garment=img(2),
                    garment_lower=img(3), prompt="walk", frames=PER_CHUNK, seed=5)
    (pending,) = run(host.swap.SwapGarment, stream=stream, garment=img(4), slot="full", policy=FULL)
    conditioning = [[torch.randn(1, 3, 16, generator=torch.Generator().manual_seed(6)),
                     {"pooled_output": torch.ones(1, 16), "note": "kept"}]]
    return SimpleNamespace(weights=weights, stream=stream, two=two, pending=pending, conditioning=conditioning,
                           vae=FakeVAE(latent_channels=4, seed=7))


def _calls(host, model, c) -> dict:
    """node -> (node class, inputs) for one call of every node of the pack."""
    g = host.gen.StreamGenerate
    return {
        "load-embedded": (host.load.LoadTeacher, dict(model="embedded (bundled)", dtype="fp32", device="cpu")),
        "sample": (host.sample.LoadSample, dict(image="garment1_upper.png")),
        "start-one-garment": (g, dict(model=model, reference=img(1), garment=img(2, h=32), prompt="walk",
                                      frames=PER_CHUNK, seed=5, schedule_garments=img(5, batch=2),
                                      switch_frames="0, 6")),
        "start-two-garments": (g, dict(model=model, reference=img(1, batch=2), garment=img(2), garment_lower=img(3),
                                       prompt="walk", frames=PER_CHUNK, seed=5)),
        "start-vae-conditioning": (g, dict(model=model, reference=img(1), garment=img(2, c=4), prompt="walk",
                                           frames=PER_CHUNK, seed=5, vae=c.vae, conditioning=c.conditioning)),
        "continue": (g, dict(model=model, stream=c.stream, prompt="", frames=PER_CHUNK, seed=0)),
        "continue-pending-switch": (g, dict(model=model, stream=c.pending, prompt="", frames=2 * PER_CHUNK, seed=0)),
        "continue-scheduled": (g, dict(model=model, stream=c.two, prompt="", frames=2 * PER_CHUNK, seed=0,
                                       schedule_garments=img(6, batch=2), switch_frames="0, 6",
                                       switch_slots="upper, lower")),
        "swap": (host.swap.SwapGarment, dict(stream=c.two, garment=img(7, c=1), slot="lower", policy=FULL)),
        "kv-refresh": (host.kv.KVRefresh, dict(stream=c.pending, **KV)),
        "try-off": (host.tryoff.TryOff, dict(model=model, person=img(8, batch=2), slot="upper", seed=1, steps=2)),
        "try-off-vae": (host.tryoff.TryOff, dict(model=model, person=img(8), slot="full", seed=1, steps=2, vae=c.vae)),
    }


CALLS = ("load-embedded", "sample", "start-one-garment", "start-two-garments", "start-vae-conditioning", "continue",
         "continue-pending-switch", "continue-scheduled", "swap", "kv-refresh", "try-off", "try-off-vae")


@pytest.mark.parametrize("call", CALLS)
def test_no_node_changes_its_inputs(host, model, inputs, call, monkeypatch):
    monkeypatch.setattr(host.E.fc, "WEIGHTS_DIR", inputs.weights)
    node, args = _calls(host, model, inputs)[call]
    files = {p: p.read_bytes() for p in sorted(inputs.weights.iterdir())}
    before = deep_copy(args)
    outputs = run(node, **args)
    assert same(deep_copy(args), before), f"{call} changed an input"
    assert {p: p.read_bytes() for p in sorted(inputs.weights.iterdir())} == files
    for out in outputs:  # an output is a new value, never one of the inputs (strings are immutable: may be shared)
        assert isinstance(out, str) or all(out is not a for a in args.values())


def test_the_node_list_is_covered(host):
    covered = {node.__name__ for node, _ in _calls(host, None, SimpleNamespace(
        vae=None, conditioning=None, stream=None, pending=None, two=None)).values()}
    assert covered == {n.__name__ for n in host.ext.NODES}
