"""The ComfyUI node layer: thin V3 node classes that validate, convert and call one engine function.

The nodes (LoadTeacher, StreamGenerate, SwapGarment, KVRefresh, TryOff) arrive with the node-pack
issue; until then the extension registers no nodes.
"""
from __future__ import annotations


def __getattr__(name: str):
    # ComfyUI's API is imported lazily so that the engine's tests never need ComfyUI.
    if name == "FashionChameleonExtension":
        from .extension import FashionChameleonExtension

        return FashionChameleonExtension
    raise AttributeError(name)
