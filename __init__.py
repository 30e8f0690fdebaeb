"""ComfyUI entry point of the FashionChameleon pack (V3 API). Registration only.

ComfyUI imports this file, serves `WEB_DIRECTORY` to its frontend and awaits `comfy_entrypoint()`. The
node layer (`nodes/`) is the only code that imports ComfyUI; the engine (`fashionchameleon/`) never does.
"""

# The live wardrobe panel (web/live_wardrobe.js): ComfyUI 0.8 serves this folder at /extensions/<pack folder>/ and the
# frontend loads its .js files, for V3 packs as for V1 ones (nodes.py: load_custom_node reads WEB_DIRECTORY first).
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import FashionChameleonExtension

    return FashionChameleonExtension()
