"""The per-channel statistics a real-scale DiT's latents are normalised with, read from ComfyUI.

ComfyUI's VAE object returns raw latents and ComfyUI's model normalises them (`process_latent_in`);
the engine's DiT is handed normalised ones, so the VAE codec applies the normalisation the DiT was
trained with: `z_dit = (z_vae - mean) / std`. For the Wan VAEs the constants are ComfyUI's own
(`comfy.latent_formats.Wan21` for the 16-channel Wan 2.1 VAE, `Wan22` for the 48-channel Wan 2.2
VAE: `latents_mean`, `latents_std`, `scale_factor`), read when a codec is built, so the pack keeps
no copy of them. Another channel count gets no normalisation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .types import log

__all__ = ["LatentStats", "WAN_FORMATS", "stats_for"]

# latent channels -> (the class in comfy.latent_formats, the VAE it describes)
WAN_FORMATS: dict[int, tuple[str, str]] = {16: ("Wan21", "Wan 2.1 VAE"), 48: ("Wan22", "Wan 2.2 VAE")}


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


def _host_stats(format_name: str, label: str, channels: int) -> LatentStats:
    """The statistics of `comfy.latent_formats.<format_name>`, as ComfyUI's model applies them.

    ComfyUI normalises with `(z - mean) * scale_factor / std`, i.e. our `std` is its std / scale_factor.
    """
    import comfy.latent_formats as formats  # looked up when a codec is built, as host.py does

    try:
        fmt = getattr(formats, format_name)()
        mean = fmt.latents_mean.flatten().tolist()
        std = (fmt.latents_std.flatten().double() / float(fmt.scale_factor)).tolist()
    except AttributeError as exc:
        raise RuntimeError(f"this ComfyUI's comfy.latent_formats.{format_name} has no latent statistics ({exc}); the "
                           f"pack reads the {label}'s from there (ComfyUI 0.8.0 and later have them): update "
                           f"ComfyUI") from None
    if len(mean) != channels:
        raise RuntimeError(f"this ComfyUI's comfy.latent_formats.{format_name} has statistics for {len(mean)} "
                           f"channels, the {label} makes {channels}; update ComfyUI or the pack")
    return LatentStats(label, tuple(mean), tuple(std))


def stats_for(latent_channels: int) -> LatentStats:
    """The Wan statistics for a 16- or 48-channel VAE (from ComfyUI); no normalisation for another channel count."""
    if latent_channels in WAN_FORMATS:
        return _host_stats(*WAN_FORMATS[latent_channels], latent_channels)
    log.warning("no latent statistics known for a %d-channel VAE; its latents are passed to the DiT "
                "unnormalised", latent_channels)
    return LatentStats.identity(latent_channels)
