"""The node layer under test: the ComfyUI stand-in installed, the pack imported as ComfyUI imports it, micro models.

Shared by the node-level test files; the `host` and `model` fixtures in conftest.py build on it:

    pack_host(models_dir)   context manager: stubs in sys.modules, the pack loaded through its
                            __init__.py; yields a namespace of the pack's node and engine modules
    micro_parts(E)          the micro DiT config, codec and prompt encoder, from the engine modules `E`
    micro_model(E)          a micro EmbeddedModel (student + try-off DiT), as the loader would output it
    img / run               an IMAGE batch; a node call as ComfyUI's executor makes it
    stream_state / same     everything a node could change in an FC_STREAM, and a bit-exact comparison
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest
import torch

from comfy_stubs import hosted_pack, pack_module_name
from conftest import MICRO, make_micro_codec, make_micro_text, randomize

__all__ = ["ROOT", "SIZE", "PER_CHUNK", "pack_host", "micro_parts", "micro_model", "img", "run", "stream_state",
           "same"]

ROOT = Path(__file__).resolve().parent.parent
SIZE = 16  # micro codec 4x spatial x patch 2 -> 8 px unit; 2x temporal x 3-frame chunks -> 6 frames per chunk
PER_CHUNK = 6

# namespace attribute -> module of the pack
NODE_MODULES = {"ext": "nodes.extension", "types": "nodes.types", "convert": "nodes.convert",
                "folders": "nodes.folders", "load": "nodes.load_teacher", "gen": "nodes.stream_generate",
                "swap": "nodes.swap_garment", "kv": "nodes.kv_refresh", "tryoff": "nodes.try_off",
                "sample": "nodes.load_sample", "vae_codec": "nodes.vae_codec", "latent_stats": "nodes.latent_stats",
                "conditioning": "nodes.conditioning", "fit": "nodes.fit", "checks": "nodes.checks",
                "memory": "nodes.memory", "parse": "nodes.parse", "cache_size": "nodes.cache_size",
                "video": "nodes.video"}
# namespace attribute -> engine module of the pack ("fc" is the front door the nodes import)
ENGINE_MODULES = {"fc": "fashionchameleon", "model": "fashionchameleon.runtime.dit.model",
                  "config": "fashionchameleon.runtime.config", "codec": "fashionchameleon.runtime.encoders.codec",
                  "text": "fashionchameleon.runtime.encoders.text", "embedded": "fashionchameleon.runtime.embedded",
                  "checkpoint": "fashionchameleon.runtime.files.checkpoint",
                  "dit_loading": "fashionchameleon.runtime.files.dit_loading",
                  "rescheduling": "fashionchameleon.runtime.stream.rescheduling",
                  "stream": "fashionchameleon.runtime.stream.session"}


@contextlib.contextmanager
def pack_host(models: Path) -> Iterator[SimpleNamespace]:
    """Stand-in ComfyUI modules in sys.modules and the pack loaded through its __init__.py, for one block."""
    with pytest.MonkeyPatch.context() as mp, hosted_pack(ROOT, models, mp) as (stubs, mod):
        yield SimpleNamespace(
            pack=sys.modules[pack_module_name(ROOT)], models=models, mm=stubs["comfy.model_management"],
            utils=stubs["comfy.utils"], cli=stubs["comfy.cli_args"], fp=stubs["folder_paths"],
            **{key: mod(path) for key, path in NODE_MODULES.items()},
            E=SimpleNamespace(**{key: mod(path) for key, path in ENGINE_MODULES.items()}))


def micro_parts(E) -> tuple:
    """(micro DiT config, micro codec, micro prompt encoder), built from the pack's engine modules `E`."""
    return E.config.ModelConfig.from_json(MICRO.to_json()), make_micro_codec(E.codec), make_micro_text(E.text)


def micro_model(E):
    """A micro EmbeddedModel (student + try-off DiT), as 'Load FashionChameleon model' would output it."""
    cfg, codec, text = micro_parts(E)
    return E.embedded.EmbeddedModel(
        codec, text, student=randomize(E.model.WanDiT(cfg), 0).eval(), tryoff=randomize(E.model.WanDiT(cfg), 3).eval(),
        stream_config=E.config.StreamConfig(sink_frames=3, window_frames=6))


def run(node, **inputs):
    """Call a node as ComfyUI's executor does (inference mode); return its outputs."""
    with torch.inference_mode():
        return node.execute(**inputs).args


def img(seed: int, batch: int = 1, h: int = SIZE, w: int = SIZE, c: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, h, w, c, generator=g)  # IMAGE [B, H, W, C] in 0..1


def stream_state(stream) -> list:
    """Everything a node could change in an FC_STREAM, as plain data (tensors cloned)."""
    s, f = stream.session, stream.session._f
    pending = [(e.slot, e.frame, e.policy, None if e.garment is None else e.garment.clone()) for e in f.pending]
    return [s.cache.k.clone(), s.cache.v.clone(), s.cache.state_dict(), f.chunk_index, f.frames_generated, pending,
            None if f.recent is None else f.recent.clone(), f.references.clone(),
            {k: v.clone() for k, v in f.garments.items()}, f.segment_start, stream.fps, s.seed, s.prompt]


def same(a, b) -> bool:
    """Bit-exact equality of nested tensors, lists, tuples and dicts."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b
