"""ComfyUI's VAE and CONDITIONING as the engine's latent codec and prompt encoder (real-scale models).

A Wan-layout DiT that is not the embedded size (e.g. Wan2.2-TI2V-5B: 48-channel latents, 4096-wide
umT5 text) streams with the user's own ComfyUI VAE and text conditioning:

    ComfyVAECodec(vae)                        a ComfyUI video VAE    -> engine `LatentCodec`
    ConditioningText(cond, text_dim, len)     a CONDITIONING value   -> engine `PromptEncoder`
    stream_parts(model, dit_cfg, vae, cond)   what a stream uses, with fit checks that name the fix

Conventions bridged:
  - pixels: ComfyUI's `vae.encode` takes IMAGE `[T, H, W, C]` in 0..1 and, for a video VAE, treats
    the whole batch as ONE clip; the engine hands `[B, 3, T, H, W]` in [-1, 1], so each clip of the
    batch is encoded by its own call. `vae.decode` gives `[B, T, H, W, C]` in 0..1.
  - latents: the VAE object returns raw latents; ComfyUI's model normalises them
    (`process_latent_in`), the engine's DiT is handed normalised ones. The bridge therefore
    applies the normalisation the DiT was trained with: `(z - mean) / std` with Wan's per-channel
    constants (16 channels: Wan 2.1 VAE, 48: Wan 2.2 VAE; another channel count: none).
  - frames: Wan VAEs are causal-first-frame: latent frame 0 is 1 pixel frame, each later latent
    frame 4 (`pixel_frame_count` / `latent_frame_count` in the engine's codec module).

Streaming decode. ComfyUI's `WanVAE.decode` builds a fresh causal-conv feature cache on every
call, so calling `vae.decode()` once per chunk restarts the decoder each time: the first latent
frame of every chunk decodes to a single pixel frame (wrong frame count) and the convolutions
lose their temporal context (seams). Two strategies, chosen from the VAE's class:

  1. Kept cache (recognised classes: `KNOWN_DECODERS`, i.e. the Wan 2.1 and Wan 2.2 VAEs). The
     bridge drives `vae.first_stage_model` itself: its per-frame input projection (`conv2`), then
     `decoder(frame, feat_cache=slots, feat_idx=[0])` one latent frame at a time, and returns the
     slots in the decoder state (`KeptCache`). Chunk by chunk this gives exactly the frames of one
     whole-clip decode. States stay immutable by copy-on-write: each call copies the slot list
     and the decoder only rebinds slots to new tensors (it never writes a cached tensor in
     place), so decoding twice from one state gives the same frames.
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
from typing import Any, Sequence

import torch
from torch import Tensor

import comfy.model_management as mm

from ..fashionchameleon import latent_frame_count, ModelConfig, pixel_frame_count
from .types import log

__all__ = ["LatentStats", "WAN21_STATS", "WAN22_STATS", "stats_for", "DecoderSpec", "KNOWN_DECODERS",
           "KeptCache", "Segment", "ComfyVAECodec", "ConditioningText", "CONDITIONING_PROMPT", "stream_parts",
           "check_codec_fit", "check_image_size", "WAN_FPS", "stream_fps"]

# The prompt a session records when its text comes from a CONDITIONING input (any non-empty prompt
# selects the positive conditioning; "" selects the negative one).
CONDITIONING_PROMPT = "(from the 'conditioning' input)"


# ----------------------------------------------------------------------------------------------
# Latent normalisation
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentStats:
    """Per-channel statistics a DiT's latents are normalised with: `z_dit = (z_vae - mean) / std`."""

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not all(s > 0 for s in self.std):
            raise ValueError(f"latent stats {self.name!r}: mean and std need one value per channel, std > 0")

    @classmethod
    def identity(cls, channels: int) -> "LatentStats":
        return cls("none", (0.0,) * channels, (1.0,) * channels)

    def _views(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if z.ndim != 5 or z.shape[1] != len(self.mean):
            raise ValueError(f"expected latents [B, {len(self.mean)}, F, h, w], got shape {list(z.shape)}")
        # [C] -> [1, C, 1, 1, 1], to broadcast over [B, C, F, h, w]
        mean = torch.tensor(self.mean, dtype=torch.float32, device=z.device).view(1, -1, 1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=z.device).view(1, -1, 1, 1, 1)
        return mean, std

    def normalise(self, z: Tensor) -> Tensor:
        """VAE latents -> DiT latents (float32)."""
        mean, std = self._views(z)
        return (z.float() - mean) / std

    def denormalise(self, z: Tensor) -> Tensor:
        """DiT latents -> VAE latents (float32)."""
        mean, std = self._views(z)
        return z.float() * std + mean


# Wan's published per-channel latent statistics (the constants its DiTs were trained with).
WAN21_STATS = LatentStats(
    "Wan 2.1 VAE",
    mean=(-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
          0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921),
    std=(2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
         3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160),
)
WAN22_STATS = LatentStats(
    "Wan 2.2 VAE",
    mean=(-0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557,
          -0.1382, 0.0542, 0.2813, 0.0891, 0.1570, -0.0098, 0.0375, -0.1825,
          -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
          -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230,
          -0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748,
          0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667),
    std=(0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013,
         0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978,
         0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
         0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093,
         0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887,
         0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744),
)


def stats_for(latent_channels: int) -> LatentStats:
    """The Wan statistics for a 16- or 48-channel VAE; no normalisation for any other channel count."""
    for stats in (WAN21_STATS, WAN22_STATS):
        if len(stats.mean) == latent_channels:
            return stats
    log.warning("no latent statistics known for a %d-channel VAE; its latents are passed to the DiT "
                "unnormalised", latent_channels)
    return LatentStats.identity(latent_channels)


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

    Immutable: decoding copies `slots` and never writes the tensors in it.
    """

    slots: tuple[Any, ...]  # one entry per cached convolution: None, a marker, or a tensor [B, c, <=2, h', w']
    frames: int  # latent frames decoded in this segment
    shape: tuple[int, int, int]  # (B, h, w) of the latents it was built from


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
        else:
            slots = list(state.slots)  # copy-on-write: the given state is never changed
        x = model.conv2(z)  # per-frame input projection: [B, C, F, h, w]
        frames = []
        for i in range(f):
            first = state is None and i == 0
            extra = {"first_chunk": True} if first and self.spec.first_chunk_flag else {}
            # one latent frame [B, C, 1, h, w] -> 1 (segment start) or tf pixel frames
            frames.append(model.decoder(x[:, :, i:i + 1], feat_cache=slots, feat_idx=[0], **extra))
        video = _unpatchify(torch.cat(frames, dim=2), self.spec.patch)  # [B, c, T, H, W]
        video = video[:, :3].float().clamp(-1.0, 1.0)  # as ComfyUI's decode clamps its 0..1 output
        done = 0 if state is None else state.frames
        return video, KeptCache(tuple(slots), done + f, (b, h, w))

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


# ----------------------------------------------------------------------------------------------
# CONDITIONING -> PromptEncoder
# ----------------------------------------------------------------------------------------------


def _text_hint(text_dim: int) -> str:
    if text_dim == 4096:
        return ("a 'CLIP Text Encode' whose CLIP is the umT5-XXL text encoder (core's 'Load CLIP', type 'wan', "
                "umt5_xxl_*.safetensors)")
    return f"a 'CLIP Text Encode' whose text encoder gives {text_dim}-wide features"


def _vae_hint(channels: int) -> str:
    if channels == 48:
        return "the Wan 2.2 VAE (wan2.2_vae.safetensors, loaded with core's 'Load VAE')"
    if channels == 16:
        return "the Wan 2.1 VAE (wan_2.1_vae.safetensors, loaded with core's 'Load VAE')"
    return f"a video VAE with {channels} latent channels"


def _context(conditioning: Any, name: str, text_dim: int, text_len: int) -> Tensor:
    """A CONDITIONING value `[[cond [1, L, D], {...}]]` -> its context `[1, text_len, D]` (float32, a copy)."""
    if not isinstance(conditioning, (list, tuple)) or not conditioning or not all(
            isinstance(e, (list, tuple)) and len(e) >= 1 and isinstance(e[0], Tensor) for e in conditioning):
        raise TypeError(f"'{name}' must be a CONDITIONING value (from 'CLIP Text Encode'), got "
                        f"{type(conditioning).__name__}")
    if len(conditioning) != 1:
        raise ValueError(f"'{name}' holds {len(conditioning)} conditionings (e.g. from 'Conditioning (Combine)'); "
                         f"the stream takes one text encoding: connect a single 'CLIP Text Encode', or join "
                         f"prompts with 'Conditioning (Concat)'")
    cond = conditioning[0][0]
    cond = cond[None] if cond.ndim == 2 else cond  # [L, D] -> [1, L, D]
    if cond.ndim != 3 or cond.shape[0] != 1:
        raise ValueError(f"'{name}' must hold one text encoding [1, tokens, width], got shape {list(cond.shape)}")
    if cond.shape[-1] != text_dim:
        raise ValueError(f"'{name}' is {cond.shape[-1]} wide, but this DiT's text input is {text_dim} wide; "
                         f"connect {_text_hint(text_dim)}")
    tokens = cond.shape[1]
    if tokens > text_len:
        log.warning("'%s' has %d tokens; the DiT reads %d, the rest are dropped", name, tokens, text_len)
    out = torch.zeros(1, text_len, text_dim, dtype=torch.float32, device=cond.device)  # zero padding, as Wan's
    out[:, :min(tokens, text_len)] = cond[:, :text_len].float()
    return out


class ConditioningText:
    """The engine's `PromptEncoder` over ComfyUI CONDITIONING values.

    `encode(prompts)` gives, per prompt, the connected conditioning (padded with zeros or cut to
    `text_len` tokens); the empty prompt "" is the unconditional one: the `negative`
    conditioning if given, else zeros. The prompt text itself is not read: the conditioning
    already carries it.
    """

    def __init__(self, conditioning: Any, text_dim: int, text_len: int, negative: Any = None) -> None:
        self.text_dim, self.text_len = int(text_dim), int(text_len)
        self.positive = _context(conditioning, "conditioning", self.text_dim, self.text_len)  # [1, L, D]
        self.negative = (torch.zeros_like(self.positive) if negative is None
                         else _context(negative, "negative", self.text_dim, self.text_len))

    def encode(self, prompts: Sequence[str] | str) -> Tensor:
        """Prompts -> `[B, text_len, text_dim]`: the conditioning, or the negative one for ""."""
        if isinstance(prompts, str):
            prompts = [prompts]
        return torch.cat([self.negative if p == "" else self.positive for p in prompts], dim=0)


# ----------------------------------------------------------------------------------------------
# Fit checks and what a stream uses
# ----------------------------------------------------------------------------------------------


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
    """Height and width must be multiples of spatial factor x patch; the message names the nearest size."""
    unit = codec.spatial_factor * cfg.patch_size[1]
    h, w = (int(v) for v in size)
    if h % unit or w % unit:
        near = "x".join(str(max(1, int(v / unit + 0.5)) * unit) for v in (h, w))  # nearest multiples
        raise ValueError(f"{node}: the reference is {h}x{w} (HxW), but with this VAE ({codec.spatial_factor}x) and "
                         f"the DiT's patch ({cfg.patch_size[1]}) both sides must be multiples of {unit}; resize or "
                         f"crop the images, e.g. to {near}")


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
                             f"prompt encoder makes {text.text_dim}; connect {_text_hint(cfg.text_dim)} to "
                             f"'conditioning'")
    log.debug("%s: codec %r, text %s", node, codec, type(text).__name__)
    return codec, text
