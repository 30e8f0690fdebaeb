"""The V3 extension object that lists the pack's nodes and adds the live panel's routes (the pack's only registration)."""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import folders, live_routes
from .kv_refresh import KVRefresh
from .load_sample import LoadSample
from .load_teacher import LoadTeacher
from .stream_generate import StreamGenerate
from .swap_garment import SwapGarment
from .try_off import TryOff
from .types import log

NODES: tuple[type[io.ComfyNode], ...] = (LoadTeacher, StreamGenerate, SwapGarment, KVRefresh, TryOff, LoadSample)


class FashionChameleonExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        # The start-up message lives here: ComfyUI 0.8 calls get_node_list() once per load and never on_load().
        log.info("FashionChameleon: %d nodes; model files are read from %s", len(NODES), folders.searched())
        live_routes.register()  # the live panel's routes; ComfyUI mounts routes after loading the packs
        return list(NODES)
