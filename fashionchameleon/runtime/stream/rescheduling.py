"""Training-free KV-cache rescheduling for a garment switch (paper §4.3; docs/method.md §2.3).

Three operations, each small and composable, plus the policy that picks them; `apply_switch`
is their composition and the only place a switch touches the cache:

(a) `refresh_garment` — the new garment's latent is run at t = 0 and overwrites that garment
    slot's KV in place. Other slots' KV are left untouched. Alone this fails: new tokens attend
    mostly to history, where the old garment lives.
(b) `withdraw_history` — drop the history KV (keep the newest `keep_last` frames; 0 drops all,
    as the authors' prototype does), so the model must rely on the new garment.
(c) `disentangle_reference` — the continuity fix: decode the last generated latent frame(s),
    take the last pixel frame, re-encode it as a standalone image (a training-like reference,
    not a video latent), recompute the reference KV, and restart temporal positions right after
    the conditions as if a fresh image-to-video generation began from that frame.

(a) and (c) add condition frames to a `ConditionRewrite`, which runs them in one joint condition
pass (like the prototype's re-prefill of `[new_ref, new_garment]`) and then restarts positions if
(c) asked for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .cache import REFERENCE, KVCache, garment_segment
from ..encoders.codec import LatentCodec
from ..dit.model import TextKV, WanDiT
from .sampler import condition_pass

__all__ = ["SwitchPolicy", "ConditionRewrite", "refresh_garment", "withdraw_history", "rebuild_reference",
           "disentangle_reference", "apply_switch"]


@dataclass(frozen=True)
class SwitchPolicy:
    """Which rescheduling operations a switch applies. The default is the paper's full scheme."""

    refresh: bool = True
    withdraw: bool = True
    keep_last: int = 0  # history frames kept by the withdraw (0 = withdraw all)
    keep_sink: bool = False  # keep the old attention sink (paper's Eq. 7 reading) or drop it (prototype)
    disentangle: bool = True
    decode_frames: int = 2  # latent frames decoded to rebuild the reference (context for causal decoders)

    @classmethod
    def refresh_only(cls) -> "SwitchPolicy":
        return cls(refresh=True, withdraw=False, disentangle=False)

    @classmethod
    def refresh_withdraw(cls) -> "SwitchPolicy":
        return cls(refresh=True, withdraw=True, disentangle=False)

    @classmethod
    def full(cls) -> "SwitchPolicy":
        return cls()


@dataclass
class ConditionRewrite:
    """Condition frames a switch re-runs at t = 0 (`[B, C, 1, h, w]` each, keyed by (segment, index)),
    written in one joint pass by `apply`, and whether temporal positions restart after it."""

    frames: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)
    restart_positions: bool = False

    def apply(self, model: WanDiT, cache: KVCache, text: TextKV) -> None:
        if self.frames:
            condition_pass(model, cache, text, {key: lat.to(model.device) for key, lat in self.frames.items()})
        if self.restart_positions:
            cache.restart_positions()


def refresh_garment(rewrite: ConditionRewrite, slot: str, garment_latent: torch.Tensor) -> None:
    """(a) Rewrite one garment slot's KV from the new garment's latent `[B, C, 1, h, w]`."""
    rewrite.frames[(garment_segment(slot), 0)] = garment_latent


def withdraw_history(cache: KVCache, keep_last: int = 0, keep_sink: bool = False) -> None:
    """(b) Drop the video history KV, keeping the newest `keep_last` frames."""
    cache.withdraw(keep_last=keep_last, keep_sink=keep_sink)


@torch.no_grad()
def rebuild_reference(codec: LatentCodec, recent_latents: torch.Tensor) -> torch.Tensor:
    """Decode the last latent frame(s) `[B, C, k, h, w]`, keep the last pixel frame, re-encode it alone.

    Returns a standalone one-frame reference latent `[B, C, 1, h, w]`.
    """
    video, _ = codec.decode(recent_latents)  # [B, 3, T, H, W], a fresh decode (no stream state)
    return codec.encode_image(video[:, :, -1])


def disentangle_reference(rewrite: ConditionRewrite, codec: LatentCodec, recent_latents: torch.Tensor,
                          view: int = 0) -> torch.Tensor:
    """(c) Rewrite reference view `view` from the re-encoded last frame and restart positions after it.

    Returns the new reference latent `[B, C, 1, h, w]`.
    """
    new_ref = rebuild_reference(codec, recent_latents)
    rewrite.frames[(REFERENCE, view)] = new_ref
    rewrite.restart_positions = True
    return new_ref


def apply_switch(policy: SwitchPolicy, model: WanDiT, codec: LatentCodec, cache: KVCache, text: TextKV,
                 garments: dict[str, torch.Tensor], recent_latents: torch.Tensor | None) -> torch.Tensor | None:
    """Apply a policy for new garment latents `{slot: [B, C, 1, h, w]}`: (b), then (a) and (c) in one pass.

    `recent_latents` are the last generated latent frames (None before the first chunk, when
    there is nothing to withdraw or disentangle). Returns the new reference latent, if rebuilt.
    """
    if policy.withdraw:
        withdraw_history(cache, policy.keep_last, policy.keep_sink)
    rewrite = ConditionRewrite()
    if policy.refresh:
        for slot, latent in garments.items():
            refresh_garment(rewrite, slot, latent)
    new_ref = None
    if policy.disentangle and recent_latents is not None:
        new_ref = disentangle_reference(rewrite, codec, recent_latents[:, :, -policy.decode_frames:])
    rewrite.apply(model, cache, text)
    return new_ref
