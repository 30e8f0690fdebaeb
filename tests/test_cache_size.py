"""The sizes ComfyUI's RAM-pressure cache counts for the pack's values (nodes/cache_size.py).

`host_size` below follows how ComfyUI's `RAMPressureCache.ram_release` sizes one cache entry
(comfy_execution/caching.py): CPU tensors and lists, tuples and dicts of them are counted, each
storage once; any other object counts through its `_comfy_cache_tensors()` if it has one, else
not at all (the host adds a small constant per entry).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from node_harness import PER_CHUNK, img, run


def host_size(outputs) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0

    def scan(value) -> None:
        nonlocal total
        if value is None:
            return
        items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            if isinstance(item, (list, tuple, Mapping)):
                scan(item)
            elif isinstance(item, torch.Tensor) and item.device.type == "cpu":
                storage = item.untyped_storage()
                key = (storage.data_ptr(), storage.nbytes())
                if key not in seen:
                    seen.add(key)
                    total += storage.nbytes()
            elif hasattr(item, "_comfy_cache_tensors"):
                scan(item._comfy_cache_tensors())

    scan(outputs)
    return total


def _nbytes(tensors) -> int:
    return sum(t.untyped_storage().nbytes() for t in {t.untyped_storage().data_ptr(): t for t in tensors}.values())


def test_a_stream_counts_its_kv_cache_and_state_but_not_the_models_weights(host, model):
    frames, stream, fps, *_ = run(host.gen.StreamGenerate, model=model, reference=img(1), garment=img(2),
                                  prompt="a person walks", frames=2 * PER_CHUNK, seed=5)
    session = stream.session
    size = host_size([stream])
    kv = session.cache.k.untyped_storage().nbytes() + session.cache.v.untyped_storage().nbytes()
    assert kv > 0 and size >= kv
    held = session.held_tensors()
    assert size == _nbytes(held)
    weights = {p.untyped_storage().data_ptr() for p in model.student.parameters()}
    assert not weights & {t.untyped_storage().data_ptr() for t in held}  # the model is FC_MODEL's entry
    # the node's whole entry: the frames, the stream, the fps; without the method the stream would count nothing
    entry = run(host.gen.StreamGenerate, model=model, stream=stream, prompt="", frames=PER_CHUNK, seed=0)
    assert host_size(entry) >= host_size([entry[0]]) + kv


def test_a_loaded_model_counts_the_weights_of_every_part(host, model):
    host.cache_size.sized_model(model)
    expected = _nbytes(t for part in (model.codec, model.text, model.student, model.tryoff)
                       for t in (*part.parameters(), *part.buffers()))
    assert expected > 0 and host_size([model]) == expected
    plain = host.E.embedded.EmbeddedModel(model.codec, model.text, student=model.student)
    assert host_size([plain]) == 0  # what the cache saw before: nothing to count
