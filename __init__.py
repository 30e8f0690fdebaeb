"""ComfyUI entry point of the FashionChameleon pack (V3 API). Registration only.

ComfyUI imports this file and awaits `comfy_entrypoint()`. The node layer (`nodes/`) is the only
code that imports ComfyUI; the engine (`fashionchameleon/`) never does.
"""


async def comfy_entrypoint():
    from .nodes import FashionChameleonExtension

    return FashionChameleonExtension()
