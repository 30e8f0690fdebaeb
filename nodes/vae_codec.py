"""ComfyUI's video VAE as the engine's latent codec (`LatentCodec`), for real-scale (Wan-layout) DiTs.

    ComfyVAECodec(vae)      a ComfyUI video VAE (`comfy.sd.VAE`) -> engine `LatentCodec`

Conventions bridged:
  - pixels: ComfyUI's `vae.encode` takes IMAGE `[T, H, W, C]` in 0..1 and, for a video VAE, treats
    the whole batch as ONE clip; the engine hands `[B, 3, T, H, W]` in [-1, 1], so each clip of the
    batch is encoded by its own call. `vae.decode` gives `[B, T, H, W, C]` in 0..1.
  - latents: the VAE object returns raw latents, the engine's DiT is handed normalised ones:
    `LatentStats` (latent_stats.py) with ComfyUI's own Wan statistics for the channel count.
  - frames: Wan VAEs are causal-first-frame: latent frame 0 is 1 pixel frame, each later latent
    frame 4 (`pixel_frame_count` / `latent_frame_count` in the engine's codec module).

Streaming decode. ComfyUI's `WanVAE.decode` builds a fresh causal-conv feature cache on every
call, so calling `vae.decode()` once per chunk restarts the decoder each time: the first latent
frame of every chunk decodes to a single pixel frame (wrong frame count) and the convolutions
lose their temporal context (seams). Two strategies, chosen from the VAE's class:

  1. Kept cache (recognised classes: `KNOWN_DECODERS`, i.e. the Wan 2.1 and Wan 2.2 VAEs). The
     codec drives `vae.first_stage_model` itself: its per-frame input projection (`conv2`), then
     `decoder(frames, feat_cache=slots, feat_idx=[0])` in the groups `WanVAE.decode` uses, and
     returns the slots in the decoder state (`KeptCache`). Chunk by chunk this gives the frames of
     one whole-clip `vae.decode()`. Two decoder behaviours are met, told apart by what the decoder
     returns for a segment's latent frame 0 (always decoded alone):
       - a tensor (ComfyUI 0.8, and the Wan 2.2 VAE): its cache keeps two frames of context
         whatever it is fed, and `WanVAE.decode` feeds one latent frame per call: so does the codec;
       - a list of chunks (the Wan 2.1 VAE in ComfyUI 0.38): `WanVAE.decode` feeds the later frames
         two per call, and the cache keeps the last two frames of each call's own input, so a
         one-frame call would leave one frame of context. The codec feeds the same pairs. A chunk
         that ends on the first frame of a pair decodes that frame on a throwaway copy of the
         slots (a causal decoder gives the same pixels for it as the pair does) and keeps it in
         the state (`KeptCache.pending`); the next call decodes it again with its partner and
         returns only the partner's pixels.
     States stay immutable by copy-on-write: each call copies the slot list and the decoder only
     rebinds slots to new tensors (it never writes a cached tensor in place), so decoding twice
     from one state gives the same frames.
  2. Segment re-decode (any other video VAE). The state holds the normalised latents of the
     current decode segment (`Segment`); each call decodes the whole segment so far with
     `vae.decode()` and returns only the new frames. Correct for any causal VAE; the cost grows
     with the segment length. The stream starts a new segment at every switch that withdraws
     history (as the authors' prototype decodes per garment segment), which bounds it.

Neither strategy tiles: a decode that runs out of memory raises (ComfyUI's own `vae.decode`
falls back to tiling, which the segment strategy inherits).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

import comfy.model_management as mm

from ..fashionchameleon import latent_frame_count, pixel_frame_count
from .latent_stats import LatentStats, stats_for

__all__ = ["DecoderSpec", "KNOWN_DECODERS", "KeptCache", "Segment", "ComfyVAECodec"]


# ----------------------------------------------------------------------------------------------
# Decoder states and recognised decoders
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecoderSpec:
    """How to drive a recognised causal video decoder one latent frame at a time.

    `patch`: spatial patch folded into the decoder's output channels (`3 * patch**2` channels,
    unfolded after decoding). `first_chunk_flag`: the decoder's forward takes `first_chunk=True`
    for the segment's latent frame 0.
    """

    patch: int = 1
    first_chunk_flag: bool = False


# `vae.first_stage_model` classes (module.qualname) whose decoder the kept-cache strategy drives.
KNOWN_DECODERS: dict[str, DecoderSpec] = {
    "comfy.ldm.wan.vae.WanVAE": DecoderSpec(patch=1, first_chunk_flag=False),  # Wan 2.1 VAE (16 ch)
    "comfy.ldm.wan.vae2_2.WanVAE": DecoderSpec(patch=2, first_chunk_flag=True),  # Wan 2.2 VAE (48 ch)
}


@dataclass(frozen=True)
class KeptCache:
    """Kept-cache decoder state: the decoder's causal feature slots after `frames` latent frames.

    `group`: latent frames per decoder call after frame 0 (1 for a tensor-returning decoder, 2 for
    a list-returning one). `pending`: with group 2, the raw latent frame `[B, C, 1, h, w]` whose
    pixels were returned but which the slots have not consumed yet (the first frame of a pair).
    Immutable: decoding copies `slots` and never writes the tensors in it.
    """

    slots: tuple[Any, ...]  # one entry per cached convolution: None, a marker, or a tensor [B, c, <=2, h', w']
    frames: int  # latent frames decoded (returned) in this segment, `pending` included
    shape: tuple[int, int, int]  # (B, h, w) of the latents it was built from
    group: int = 1
    pending: Tensor | None = None


@dataclass(frozen=True)
class Segment:
    """Segment re-decode state: the normalised latents of the segment so far `[B, C, F, h, w]`."""

    latents: Tensor


def _class_path(module: object) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _unpatchify(video: Tensor, patch: int) -> Tensor:
    """`[B, c*p*p, T, h, w]` -> `[B, c, T, h*p, w*p]`; channel index = (c*p + column offset)*p + row offset."""
    if patch == 1:
        return video
    b, cpp, t, h, w = video.shape
    c = cpp // (patch * patch)
    x = video.reshape(b, c, patch, patch, t, h, w)  # [B, c, p(col), p(row), T, h, w]
    x = x.permute(0, 1, 4, 5, 3, 6, 2)  # [B, c, T, h, p(row), w, p(col)]
    return x.reshape(b, c, t, h * patch, w * patch)


# ----------------------------------------------------------------------------------------------
# VAE -> LatentCodec
# ----------------------------------------------------------------------------------------------


def _temporal_layout(vae: Any) -> tuple[int, bool]:
    """(pixel frames per latent frame, causal first frame) of a ComfyUI video VAE."""
    tf = vae.temporal_compression_decode()
    ratio = getattr(vae, "upscale_ratio", None)
    frames_of = ratio[0] if isinstance(ratio, (tuple, list)) and callable(ratio[0]) else None
    if not tf or frames_of is None:
        raise ValueError("this VAE has no temporal compression, so it is an image VAE; connect a video VAE "
                         "(the Wan 2.1 or Wan 2.2 VAE, loaded with core's 'Load VAE')")
    one, two = int(frames_of(1)), int(frames_of(2))
    if (one, two) == (1, 1 + tf):
        return int(tf), True
    if (one, two) == (tf, 2 * tf):
        return int(tf), False
    raise ValueError(f"this VAE decodes 1 latent frame to {one} and 2 to {two} pixel frames, a temporal layout "
                     f"the stream does not support; connect a Wan 2.1 or Wan 2.2 VAE")


class ComfyVAECodec:
    """The engine's `LatentCodec` over a ComfyUI video VAE object (`comfy.sd.VAE`).

    Latents in and out are normalised with `stats` (default: `stats_for(vae.latent_channels)`).
    Results are on the device of the input tensor. See the module docstring for the decode strategy;
    `strategy` says which one this VAE gets.
    """

    def __init__(self, vae: Any, stats: LatentStats | None = None) -> None:
        if getattr(vae, "first_stage_model", None) is None or getattr(vae, "latent_dim", None) != 3:
            raise ValueError("the 'vae' input must be a video VAE (the Wan 2.1 or Wan 2.2 VAE, loaded with core's "
                             "'Load VAE'); this one is an image VAE or has no weights")
        self.vae = vae
        self.latent_channels = int(vae.latent_channels)
        self.spatial_factor = int(vae.spacial_compression_encode())
        self.temporal_factor, self.causal_first_frame = _temporal_layout(vae)
        self.stats = stats or stats_for(self.latent_channels)
        if len(self.stats.mean) != self.latent_channels:
            raise ValueError(f"latent stats {self.stats.name!r} have {len(self.stats.mean)} channels, the VAE "
                             f"{self.latent_channels}")
        self.spec = KNOWN_DECODERS.get(_class_path(vae.first_stage_model))
        self.strategy = "kept cache" if self.spec is not None else "segment re-decode"

    def __repr__(self) -> str:
        return (f"ComfyVAECodec({self.latent_channels} ch, {self.spatial_factor}x spatial, {self.temporal_factor}x "
                f"temporal, stats {self.stats.name!r}, decode: {self.strategy})")

    # -- frame arithmetic ---------------------------------------------------------------------

    def pixel_frames(self, latent_frames: int, first: bool = True) -> int:
        return pixel_frame_count(latent_frames, self.temporal_factor, self.causal_first_frame, first)

    def latent_frames(self, pixel_frames: int) -> int:
        return latent_frame_count(pixel_frames, self.temporal_factor, self.causal_first_frame)

    # -- encode -------------------------------------------------------------------------------

    def encode_video(self, video: Tensor) -> Tensor:
        """`[B, 3, T, H, W]` in [-1, 1] -> normalised latents `[B, C, F, H/s, W/s]` (one VAE call per clip)."""
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"expected video [B, 3, T, H, W], got shape {list(video.shape)}")
        h, w = video.shape[-2:]
        s = self.spatial_factor
        if h % s or w % s:  # ComfyUI's encode would silently crop instead
            raise ValueError(f"frame size {h}x{w} (HxW) is not a multiple of the VAE's spatial factor {s}")
        self.latent_frames(video.shape[2])  # raises, naming valid frame counts, if T does not fit
        # each clip [3, T, H, W] in [-1, 1] -> IMAGE [T, H, W, 3] in 0..1 -> raw latents [1, C, F, h, w]
        clips = [self.vae.encode(((clip.float() + 1.0) * 0.5).clamp(0.0, 1.0).permute(1, 2, 3, 0))
                 for clip in video]
        z = torch.cat([c.to(video.device) for c in clips], dim=0)  # [B, C, F, h, w]
        return self.stats.normalise(z)

    def encode_image(self, image: Tensor) -> Tensor:
        """`[B, 3, H, W]` in [-1, 1] -> standalone one-frame latents `[B, C, 1, h, w]`."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected image [B, 3, H, W], got shape {list(image.shape)}")
        t = self.pixel_frames(1)  # 1 frame for a causal VAE, a still group of tf frames otherwise
        return self.encode_video(image.unsqueeze(2).expand(-1, -1, t, -1, -1))  # [B, 3, t, H, W]

    # -- decode -------------------------------------------------------------------------------

    def decode(self, latents: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """`[B, C, F, h, w]` normalised -> (`[B, 3, T, H, W]` in [-1, 1], new state). See the module docstring."""
        if latents.ndim != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(f"expected latents [B, {self.latent_channels}, F, h, w], got shape "
                             f"{list(latents.shape)}")
        with torch.no_grad():
            if self.spec is not None:
                video, new = self._decode_kept(latents, state)
            else:
                video, new = self._decode_segment(latents, state)
        return video.to(latents.device), new

    def _decode_kept(self, latents: Tensor, state: KeptCache | None) -> tuple[Tensor, KeptCache]:
        b, _, f, h, w = latents.shape
        if state is not None and not isinstance(state, KeptCache):
            raise TypeError(f"decoder state must be a KeptCache from this codec, got {type(state).__name__}")
        if state is not None and state.shape != (b, h, w):
            raise ValueError(f"latents [B={b}, h={h}, w={w}] do not continue a decoder state built from "
                             f"[B, h, w] = {list(state.shape)}")
        vae, model = self.vae, self.vae.first_stage_model
        z = self.stats.denormalise(latents).to(device=vae.device, dtype=vae.vae_dtype)  # raw VAE latents
        used = getattr(vae, "memory_used_decode", None)
        mm.load_models_gpu([vae.patcher], memory_required=used(z.shape, vae.vae_dtype) if used else 0,
                           force_full_load=bool(getattr(vae, "disable_offload", False)))
        if state is None:  # one slot per 3-D convolution of the decoder is enough for any of them
            slots = [None] * sum(isinstance(m, torch.nn.Conv3d) for m in model.decoder.modules())
            consumed, group, pending = 0, 0, None  # group 0: not known until frame 0 is decoded
        else:
            slots = list(state.slots)  # copy-on-write: the given state is never changed
            consumed = state.frames - (state.pending is not None)
            group, pending = state.group, state.pending
        if pending is not None:  # decoded again with its partner; its pixels went out with the last call
            z = torch.cat([pending, z], dim=2)
        x = model.conv2(z)  # per-frame input projection: [B, C, F', h, w]
        frames, pending, i = [], None, 0
        while i < x.shape[2]:
            size = 1 if consumed == 0 else group
            if x.shape[2] - i < size:  # the first frame of a pair, last in this chunk: decode it on a throwaway copy
                frames.append(self._decoder_call(x[:, :, i:], list(slots), first=False)[0])
                pending = z[:, :, i:]
                break
            video, chunked = self._decoder_call(x[:, :, i:i + size], slots, first=consumed == 0)
            if consumed == 0:
                group = 2 if chunked else 1  # as the host's WanVAE.decode groups the frames after frame 0
            if i == 0 and state is not None and state.pending is not None:
                video = video[:, :, self.temporal_factor:]  # the pending frame's pixels were returned already
            frames.append(video)
            consumed, i = consumed + size, i + size
        video = _unpatchify(torch.cat(frames, dim=2), self.spec.patch)  # [B, c, T, H, W]
        video = video[:, :3].float().clamp(-1.0, 1.0)  # as ComfyUI's decode clamps its 0..1 output
        done = 0 if state is None else state.frames
        return video, KeptCache(tuple(slots), done + f, (b, h, w), group, pending)

    def _decoder_call(self, x: Tensor, slots: list, first: bool) -> tuple[Tensor, bool]:
        """One call of the host decoder on latent frames `x` -> (pixel frames `[B, c, T, H', W']`, returned a list)."""
        extra = {"first_chunk": True} if first and self.spec.first_chunk_flag else {}
        out = self.vae.first_stage_model.decoder(x, feat_cache=slots, feat_idx=[0], **extra)
        if isinstance(out, (list, tuple)):  # ComfyUI 0.38's Wan 2.1 decoder: a list of chunks
            return torch.cat(list(out), dim=2), True
        return out, False

    def _decode_segment(self, latents: Tensor, state: Segment | None) -> tuple[Tensor, Segment]:
        if state is not None and not isinstance(state, Segment):
            raise TypeError(f"decoder state must be a Segment from this codec, got {type(state).__name__}")
        full = latents.float() if state is None else torch.cat([state.latents, latents.float().to(
            state.latents.device)], dim=2)  # [B, C, F_segment, h, w]
        pixels = self.vae.decode(self.stats.denormalise(full))  # [B, T, H, W, c] in 0..1
        video = pixels.movedim(-1, 1)[:, :3].float() * 2.0 - 1.0  # [B, 3, T, H, W] in [-1, 1]
        total, new = self.pixel_frames(full.shape[2]), self.pixel_frames(latents.shape[2], first=state is None)
        if video.shape[2] != total:
            raise RuntimeError(f"the VAE decoded {full.shape[2]} latent frames to {video.shape[2]} pixel frames, "
                               f"expected {total}; its temporal layout is not the one it reports")
        return video[:, :, total - new:], Segment(full)
