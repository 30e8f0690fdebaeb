"""What a stream or a try-off uses to encode and prompt, and whether it fits the DiT.

A Wan-layout DiT that is not the embedded size (e.g. Wan2.2-TI2V-5B: 48-channel latents, 4096-wide
umT5 text) streams with the user's own ComfyUI VAE and text conditioning:

    stream_parts(model, dit_cfg, vae, cond)   (codec, prompt encoder): the connected VAE / CONDITIONING
                                              (vae_codec.py, conditioning.py), else the model's own
    check_codec_fit(codec, cfg, ...)          latent channels = the DiT's; the message says which VAE
    check_image_size(size, codec, cfg, node)  the engine's size rule, worded for the 'reference' input
    stream_fps(codec, default)                the fps output: the Wan family's rate with a ComfyUI VAE
"""
from __future__ import annotations

from typing import Any

from ..fashionchameleon import ModelConfig, check_image_size as fits_the_dit
from .checks import rule_input
from .conditioning import ConditioningText, text_hint
from .types import log
from .vae_codec import ComfyVAECodec

__all__ = ["check_codec_fit", "check_image_size", "WAN_FPS", "stream_fps", "stream_parts"]


def _vae_hint(channels: int) -> str:
    if channels == 48:
        return "the Wan 2.2 VAE (wan2.2_vae.safetensors, loaded with core's 'Load VAE')"
    if channels == 16:
        return "the Wan 2.1 VAE (wan_2.1_vae.safetensors, loaded with core's 'Load VAE')"
    return f"a video VAE with {channels} latent channels"


def check_codec_fit(codec: Any, cfg: ModelConfig, vae_connected: bool, node: str) -> None:
    """The codec's latent channels must be the DiT's input channels; the message says what to connect."""
    if codec.latent_channels == cfg.in_dim:
        return
    if vae_connected:
        raise ValueError(f"{node}: the connected VAE makes {codec.latent_channels}-channel latents, but this DiT "
                         f"takes {cfg.in_dim}-channel latents; connect {_vae_hint(cfg.in_dim)} to 'vae'")
    raise ValueError(f"{node}: this DiT takes {cfg.in_dim}-channel latents, but the model's built-in codec makes "
                     f"{codec.latent_channels}; connect {_vae_hint(cfg.in_dim)} to 'vae'")


def check_image_size(size: tuple[int, int], codec: Any, cfg: ModelConfig, node: str) -> None:
    """The reference size fits (engine rule: multiples of spatial factor x patch); the message names the nearest."""
    h, w = (int(v) for v in size)
    with rule_input(lambda f: f"{node}: the reference is {h}x{w} (HxW), but with this VAE ({f['spatial_factor']}x) "
                              f"and the DiT's patch ({f['patch']}) both sides must be multiples of {f['unit']}; "
                              f"resize or crop the images, e.g. to {'x'.join(map(str, f['nearest']))}"):
        fits_the_dit((h, w), codec, cfg)


# frame rate of the videos each Wan VAE family's DiTs make, by latent channels (Wan2.1: 16, Wan2.2-TI2V-5B: 24)
WAN_FPS = {16: 16.0, 48: 24.0}


def stream_fps(codec: Any, default: float) -> float:
    """The stream's fps output: the Wan family's rate when a ComfyUI VAE drives it, else the model's `default`."""
    if isinstance(codec, ComfyVAECodec):
        return WAN_FPS.get(codec.latent_channels, default)
    return default


def stream_parts(model: Any, cfg: ModelConfig, vae: Any = None, conditioning: Any = None,
                 node: str = "FashionChameleon") -> tuple[Any, Any]:
    """(codec, prompt encoder) for a DiT with config `cfg`: the connected VAE / CONDITIONING, else the model's own.

    Raises ValueError naming the input to connect when a part does not fit the DiT.
    """
    codec = ComfyVAECodec(vae) if vae is not None else model.codec
    check_codec_fit(codec, cfg, vae is not None, node)
    if conditioning is not None:
        try:
            text = ConditioningText(conditioning, cfg.text_dim, cfg.text_len)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{node}: {exc}") from None
    else:
        text = model.text
        if text.text_dim != cfg.text_dim:
            raise ValueError(f"{node}: this DiT takes {cfg.text_dim}-wide text features, but the model's built-in "
                             f"prompt encoder makes {text.text_dim}; connect {text_hint(cfg.text_dim)} to "
                             f"'conditioning'")
    log.debug("%s: codec %r, text %s", node, codec, type(text).__name__)
    return codec, text
