"""The pack's live routes on ComfyUI's server (aiohttp): what the wardrobe panel calls (handlers: live.py).

    POST /fashionchameleon/live/switch   JSON {node_id, prompt_id?, index, slot, policy?}
    POST /fashionchameleon/live/stop     JSON {node_id, prompt_id?}
    GET  /fashionchameleon/live/status?node_id=...
    POST /fashionchameleon/live/garment?node_id=...&filename=...   body: the image file

Each answers JSON: the handler's result (200), or {"error": message} with the handler's status.
ComfyUI also serves them under /api/... `register()` adds them once, while the pack loads (before
ComfyUI mounts its routes); without a running ComfyUI server it does nothing.
"""
from __future__ import annotations

import logging

from . import live

__all__ = ["register", "PREFIX"]

PREFIX = "/fashionchameleon/live"
log = logging.getLogger("fashionchameleon.nodes")
_registered = False


def register() -> bool:
    """Add the live routes to `PromptServer.instance.routes`; False where there is no server (tests, scripts)."""
    global _registered
    if _registered:
        return True
    try:
        from aiohttp import web
        from server import PromptServer
        import folder_paths
    except ImportError:
        return False
    server = getattr(PromptServer, "instance", None)
    if server is None:
        return False
    routes = server.routes

    def answer(fn, *args):
        try:
            return web.json_response(fn(*args))
        except live.LiveError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)

    async def body_of(request) -> dict:
        try:
            data = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise live.LiveError(400, "send a JSON object, e.g. {\"node_id\": \"3\", \"index\": 0, \"slot\": \"upper\"}")
        return data

    async def posted(request, fn):
        try:
            return answer(fn, await body_of(request))
        except live.LiveError as exc:  # a body that is not a JSON object
            return web.json_response({"error": str(exc)}, status=exc.status)

    @routes.post(f"{PREFIX}/switch")
    async def switch(request):
        return await posted(request, live.switch)

    @routes.post(f"{PREFIX}/stop")
    async def stop(request):
        return await posted(request, live.stop)

    @routes.get(f"{PREFIX}/status")
    async def status(request):
        return answer(live.status, dict(request.query))

    @routes.post(f"{PREFIX}/garment")
    async def garment(request):
        data = await request.read()
        q = request.query
        return answer(live.add_garment, q.get("node_id", ""), data, q.get("filename", "garment.png"),
                      folder_paths.get_input_directory())

    _registered = True
    log.debug("FashionChameleon: live routes at %s/*", PREFIX)
    return True
