"""An exponential moving average of a network's weights, kept beside it during training.

Sampling from the average of the last ~1/(1-decay) steps' weights is smoother than sampling from
the raw weights of a run trained at a constant learning rate. The average is part of the
resumable state; a run resumed from a state saved before averaging was switched on starts the
average afresh from the resumed weights (`optional_in_state`), so averaging can be turned on
mid-run.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA", "lerp_parameters"]


@torch.no_grad()
def lerp_parameters(target: nn.Module, source: nn.Module, weight: float) -> None:
    """target <- target + weight x (source - target), parameter by parameter (weight 1 copies)."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, weight)


class EMA(nn.Module):
    """`shadow` = EMA of `model`'s parameters; the effective decay ramps up as (1 + n) / (10 + n)."""

    optional_in_state = True  # load_state skips it when the file has none of its tensors

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(model).requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        n = int(self.updates)
        decay = min(self.decay, (1 + n) / (10 + n)) if n > 0 else 0.0  # the first update copies
        lerp_parameters(self.shadow, model, 1.0 - decay)
        self.updates += 1
