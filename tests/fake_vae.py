"""A stand-in for ComfyUI's video VAE object (`comfy.sd.VAE` holding a Wan VAE), small enough for unit tests.

`FakeVAE` has the members the bridge uses (`encode`, `decode`, `first_stage_model`, `latent_channels`,
`latent_dim`, `upscale_ratio`, `spacial_compression_encode()`, `temporal_compression_decode()`,
`device`, `vae_dtype`, `patcher`, `memory_used_decode`) with ComfyUI's conventions: `encode` takes
IMAGE `[T, H, W, C]` in 0..1 and treats the batch as one clip, `decode` returns `[B, T, H, W, C]` in 0..1.

Its `first_stage_model` is a tiny causal video autoencoder whose decoder has the Wan decoder's
calling convention: `decoder(frame, feat_cache=slots, feat_idx=[0])`, one latent frame at a time,
each causal convolution reading and replacing its own slot of `slots`. Latent frame 0 of a fresh
cache decodes to 1 pixel frame, every later one to 4. Like ComfyUI's `WanVAE.decode`,
`first_stage_model.decode` starts a fresh cache on every call, so decoding chunk by chunk through
`vae.decode` restarts the causal state.

Three versions:
  "2.1"          the Wan 2.1 VAE of ComfyUI 0.8: the decoder gives 3 channels as one tensor, each causal
                 convolution keeps the last 2 frames of (its slot + its input), and `decode` feeds one
                 latent frame per call;
  "2.1-chunked"  the Wan 2.1 VAE of ComfyUI 0.38: the decoder returns a list of chunks (2 pixel frames
                 each), each causal convolution keeps only the last 2 frames of its own input (so a
                 one-frame call leaves one frame of context), and `decode` feeds latent frame 0 alone,
                 then two per call;
  "2.2"          3 * 2 * 2 channels (a 2x2 pixel patch folded into channels), `first_chunk=True` for a
                 segment's frame 0, one tensor, one latent frame per call.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FakeVAE", "FakeWanVAE21", "FakeWanVAE21Chunked", "FakeWanVAE22", "class_path", "TF"]

TF = 4  # pixel frames per latent frame after the first
_STARTED = "started"  # slot marker of the temporal upsampler after a segment's first frame


def class_path(cls: type) -> str:
    """The key the bridge's `KNOWN_DECODERS` uses for a first-stage-model class."""
    return f"{cls.__module__}.{cls.__qualname__}"


class _CausalConv(nn.Conv3d):
    """3x3x3 convolution, causal in time: the 2 frames before the input come from a slot (zeros at a start).

    `own_frames_only`: the slot keeps the last 2 frames of the input alone (ComfyUI 0.38's Wan 2.1
    decoder), not of slot + input (ComfyUI 0.8's), so after a one-frame call it holds one frame.
    """

    def __init__(self, c_in: int, c_out: int, own_frames_only: bool = False) -> None:
        super().__init__(c_in, c_out, 3, padding=(0, 1, 1))
        self.own_frames_only = own_frames_only

    def forward(self, x: Tensor, slots: list | None = None, index: int = 0) -> Tensor:
        past = None if slots is None else slots[index]
        if past is None:
            past = x.new_zeros(x.shape[0], x.shape[1], 0, *x.shape[3:])
        past = torch.cat([past.new_zeros(*past.shape[:2], 2 - past.shape[2], *past.shape[3:]), past], dim=2)
        ctx = torch.cat([past, x], dim=2)  # [B, C, 2 + t, h, w]
        if slots is not None:  # rebinds the slot; the old tensor is left as it was
            slots[index] = (x if self.own_frames_only else ctx)[:, :, -2:].clone()
        return super().forward(ctx)


class _Decoder(nn.Module):
    """One latent frame `[B, z, 1, h, w]` -> 1 or TF frames `[B, out, t, h*up, w*up]`."""

    def __init__(self, z: int, width: int, out_channels: int, up: int, shortcut: bool,
                 own_frames_only: bool = False) -> None:
        super().__init__()
        self.conv_in = _CausalConv(z, width, own_frames_only)
        self.time_up = nn.Conv3d(width, width * TF, 1)  # channels of one frame -> TF frames
        self.conv_mid = _CausalConv(width, width, own_frames_only)
        self.head = nn.Conv3d(width, out_channels, 1)
        self.up, self.shortcut = up, shortcut

    def _run(self, x: Tensor, slots: list | None, idx: list[int], first_chunk: bool) -> Tensor:
        def slot() -> int:
            idx[0] += 1
            return idx[0] - 1

        x = F.silu(self.conv_in(x, slots, slot()))
        i = slot()
        start = slots is None or slots[i] is None
        b, c, t, h, w = x.shape
        y = self.time_up(x).view(b, c, TF, t, h, w).permute(0, 1, 3, 2, 4, 5).reshape(b, c, t * TF, h, w)
        if start:
            y = y[:, :, -1:]  # a segment's first latent frame is one pixel frame
            if slots is not None:
                slots[i] = _STARTED
        if self.shortcut:  # the 2.2 decoder's repeat shortcut must be told about the first frame
            rep = x.repeat_interleave(TF, dim=2)
            rep = rep[:, :, TF - 1:] if first_chunk else rep
            if rep.shape[2] != y.shape[2]:
                raise RuntimeError(f"shortcut has {rep.shape[2]} frames, main path {y.shape[2]}")
            y = y + rep
        y = F.silu(self.conv_mid(y, slots, slot()))
        y = F.interpolate(y, scale_factor=(1, self.up, self.up), mode="nearest")
        return torch.tanh(self.head(y))


class _Decoder21(_Decoder):
    def forward(self, x: Tensor, feat_cache: list | None = None, feat_idx: list[int] | None = None) -> Tensor:
        return self._run(x, feat_cache, [0] if feat_idx is None else feat_idx, False)


class _Decoder21Chunked(_Decoder):
    """ComfyUI 0.38's calling convention: the same arguments, the frames returned as a list of 2-frame chunks."""

    def forward(self, x: Tensor, feat_cache: list | None = None, feat_idx: list[int] | None = None) -> list[Tensor]:
        return list(self._run(x, feat_cache, [0] if feat_idx is None else feat_idx, False).split(2, dim=2))


class _Decoder22(_Decoder):
    def forward(self, x: Tensor, feat_cache: list | None = None, feat_idx: list[int] | None = None,
                first_chunk: bool = False) -> Tensor:
        return self._run(x, feat_cache, [0] if feat_idx is None else feat_idx, first_chunk)


def _fold_out(x: Tensor, p: int) -> Tensor:
    """`[B, 3*p*p, T, h, w]` -> `[B, 3, T, h*p, w*p]`: channel c*p*p + col*p + row is pixel (row, col) of a patch."""
    b, _, t, h, w = x.shape
    out = x.new_zeros(b, 3, t, h * p, w * p)
    parts = x.view(b, 3, p * p, t, h, w)
    for col in range(p):
        for row in range(p):
            out[:, :, :, row::p, col::p] = parts[:, :, col * p + row]
    return out


class FakeWanVAE21(nn.Module):
    """The first-stage model: causal grouped encoder, per-frame `conv2`, cached causal decoder."""

    patch = 1
    chunked = False  # ComfyUI 0.38's Wan 2.1 decoder (see the module docstring)

    def __init__(self, z: int, spatial: int, width: int = 8) -> None:
        super().__init__()
        self.spatial = spatial
        self.encoder = nn.Conv3d(3, z, 1)
        self.conv2 = nn.Conv3d(z, z, 1)
        out = 3 * self.patch * self.patch
        decoder = _Decoder22 if self.patch > 1 else _Decoder21Chunked if self.chunked else _Decoder21
        self.decoder = decoder(z, width, out, spatial // self.patch, shortcut=self.patch > 1,
                               own_frames_only=self.chunked)

    def encode(self, x: Tensor) -> Tensor:
        """`[1, 3, T, H, W]` in [-1, 1] -> `[1, z, 1 + (T-1)/4, H/s, W/s]`: frame 0 alone, then groups of 4."""
        groups = [x[:, :, :1]] + [x[:, :, i:i + TF] for i in range(1, x.shape[2], TF)]
        means = torch.cat([g.mean(dim=2, keepdim=True) for g in groups], dim=2)  # [1, 3, F, H, W]
        pooled = F.avg_pool3d(means, (1, self.spatial, self.spatial))
        return self.encoder(pooled)

    def decode(self, z: Tensor) -> Tensor:
        """`[B, z, F, h, w]` -> `[B, 3, 1 + 4(F-1), H, W]` with a fresh cache (as ComfyUI's WanVAE.decode).

        Latent frame 0 alone, then one frame per call, or two for the chunked decoder.
        """
        slots = [None] * 8
        x = self.conv2(z)
        step = 2 if self.chunked else 1
        frames = []
        for a in [0, *range(1, x.shape[2], step)]:
            extra = {"first_chunk": a == 0} if self.patch > 1 else {}
            out = self.decoder(x[:, :, a:1 if a == 0 else a + step], feat_cache=slots, feat_idx=[0], **extra)
            frames += out if isinstance(out, list) else [out]
        out = torch.cat(frames, dim=2)
        return _fold_out(out, self.patch) if self.patch > 1 else out


class FakeWanVAE21Chunked(FakeWanVAE21):
    """The Wan 2.1 VAE as ComfyUI 0.38 drives it: a list of chunks, context from the input alone, 1 then 2 frames."""

    chunked = True


class FakeWanVAE22(FakeWanVAE21):
    """The 2.2-style variant: decoder output patchified 2x2 into 12 channels, `first_chunk` flag."""

    patch = 2


class FakeVAE:
    """ComfyUI's VAE object around `FakeWanVAE21` / `FakeWanVAE21Chunked` / `FakeWanVAE22`, random weights from `seed`."""

    def __init__(self, version: str = "2.1", latent_channels: int = 6, spatial: int = 4, seed: int = 0,
                 model_class: type | None = None) -> None:
        cls = model_class or {"2.1": FakeWanVAE21, "2.1-chunked": FakeWanVAE21Chunked, "2.2": FakeWanVAE22}[version]
        torch.manual_seed(seed)
        self.first_stage_model = cls(latent_channels, spatial).eval()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.first_stage_model.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.latent_channels, self.latent_dim = latent_channels, 3
        self.upscale_ratio = (lambda a: max(0, a * TF - (TF - 1)), spatial, spatial)
        self.downscale_ratio = (lambda a: max(0, (a + TF - 1) // TF), spatial, spatial)
        self.device = self.output_device = torch.device("cpu")
        self.vae_dtype = torch.float32
        self.patcher = object()
        self.decode_calls = 0

    def spacial_compression_encode(self) -> int:
        return self.upscale_ratio[-1]

    def spacial_compression_decode(self) -> int:
        return self.upscale_ratio[-1]

    def temporal_compression_decode(self) -> int:
        return TF

    def memory_used_decode(self, shape, dtype) -> int:
        return 0

    def encode(self, pixels: Tensor) -> Tensor:
        """IMAGE `[T, H, W, C]` in 0..1 (the batch is one clip) -> raw latents `[1, z, F, h, w]`."""
        x = pixels.movedim(-1, 0).unsqueeze(0)  # [1, C, T, H, W]
        with torch.no_grad():
            return self.first_stage_model.encode(x * 2.0 - 1.0).float()

    def decode(self, latents: Tensor) -> Tensor:
        """Raw latents `[B, z, F, h, w]` -> `[B, T, H, W, 3]` in 0..1 (a fresh causal cache per call)."""
        self.decode_calls += 1
        with torch.no_grad():
            out = self.first_stage_model.decode(latents.float())
        return ((out + 1.0) * 0.5).clamp(0.0, 1.0).movedim(1, -1)
