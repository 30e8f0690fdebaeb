"""The V3 extension object that lists the pack's nodes."""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io


class FashionChameleonExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return []
