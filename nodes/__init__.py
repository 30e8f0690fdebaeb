"""The ComfyUI node layer: thin V3 node classes that validate, convert and call one engine function.

    extension.py        FashionChameleonExtension: the node list and the live routes (V3 registration only)
    load_teacher.py     Load FashionChameleon model         -> FC_MODEL
    stream_generate.py  FashionChameleon stream generate    -> IMAGE frames, FC_STREAM, fps, VIDEO, schedule
  the live panel (web/live_wardrobe.js) of stream generate:
    live.py             running nodes by id (their engine LiveControl) and what the routes do with a request
    live_routes.py      the pack's routes on ComfyUI's server (/fashionchameleon/live/...)
    live_events.py      the websocket events: a run's start, each chunk's frames, its end
    swap_garment.py     FashionChameleon swap garment       -> FC_STREAM
    kv_refresh.py       FashionChameleon KV refresh         -> FC_STREAM
    try_off.py          FashionChameleon try-off            -> IMAGE garment
    load_sample.py      FashionChameleon sample image       -> IMAGE (a bundled sample from workflows/samples)
    types.py            FC_MODEL / FC_STREAM socket types and the FCStream value
    video.py            the VIDEO output (frames + frame rate as ComfyUI's video value)
    cache_size.py       the sizes ComfyUI's RAM-pressure cache counts for FC_MODEL / FC_STREAM values
    convert.py          IMAGE <-> engine tensors; host.py: devices, progress, previews, interrupts;
    checks.py           input checks (images, whole-number widgets, FC_MODEL / FC_STREAM) and the engine's
                        input rules in the nodes' words: errors name the input and the fix
    memory.py           out-of-memory errors re-raised with the settings that help
    folders.py          model folders (paths kept inside them); parse.py: the text widgets
  real-scale DiTs (ComfyUI's VAE / CONDITIONING as the engine's codec / prompt encoder):
    vae_codec.py        a ComfyUI video VAE -> the engine's latent codec (two streaming-decode strategies)
    latent_stats.py     the latent normalisation, with the Wan statistics read from ComfyUI
    conditioning.py     CONDITIONING -> the engine's prompt encoder
    fit.py              what a stream uses (codec, prompt encoder, fps) and the checks that they fit the DiT

This is the only code that imports ComfyUI; the engine (`fashionchameleon/`) never does.
"""
from __future__ import annotations


def __getattr__(name: str):
    # ComfyUI's API is imported lazily so that the engine's tests never need ComfyUI.
    if name == "FashionChameleonExtension":
        from .extension import FashionChameleonExtension

        return FashionChameleonExtension
    raise AttributeError(name)
