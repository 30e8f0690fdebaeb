"""An adversarial term for GR-DMD, read off the critic's features (as DMD2 adds one to DMD).

The real score limits a distilled student to what its teacher samples: every teacher here lays
out blurred garments, so distribution matching alone cannot teach texture. A discriminator that
sees real clips does not share that limit. As in DMD2, it is a small head on the fake-score
network (the critic): the critic's tokens after one block (`WanDiT.features`), for the video
frames of a noised clip (real, or the generator's rollout), go through the head, which gives one
logit per token (a patch discriminator, so texture is judged where it is). Unlike DMD2, the
critic's own weights are not trained by it: the head learns on the critic's features with the
critic frozen, and the generator's gradient passes through the frozen critic to its input.

Losses are the non-saturating logistic ones: the head minimises softplus(-D(real)) +
softplus(D(fake)), the generator softplus(-D(fake)).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PatchHead", "frozen", "head_loss", "generator_loss"]


class PatchHead(nn.Module):
    """Tokens `[B, F, S, D]` -> one logit per token `[B, F, S]`."""

    optional_in_state = True  # a state saved without it (plain GR-DMD) resumes with a fresh head

    def __init__(self, dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens.float())[..., 0]


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No parameter gradients for `module` inside the block (gradients still pass through it to its input)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def head_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's logistic loss (real -> high, fake -> low)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's non-saturating loss."""
    return F.softplus(-fake_logits).mean()
