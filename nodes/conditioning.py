"""ComfyUI CONDITIONING as the engine's prompt encoder (`PromptEncoder`), for real-scale DiTs.

    ConditioningText(cond, text_dim, text_len)   a CONDITIONING value -> engine `PromptEncoder`

A CONDITIONING value is `[[cond [1, L, D], {...}]]` (from 'CLIP Text Encode'); the DiT reads
`text_len` tokens of width `text_dim`: shorter encodings are padded with zeros (as Wan's are),
longer ones are cut (logged).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from .types import log

__all__ = ["CONDITIONING_PROMPT", "ConditioningText", "text_hint"]

# The prompt a session records when its text comes from a CONDITIONING input (any non-empty prompt
# selects the positive conditioning; "" selects the negative one).
CONDITIONING_PROMPT = "(from the 'conditioning' input)"


def text_hint(text_dim: int) -> str:
    if text_dim == 4096:
        return ("a 'CLIP Text Encode' whose CLIP is the umT5-XXL text encoder (core's 'Load CLIP', type 'wan', "
                "umt5_xxl_*.safetensors)")
    return f"a 'CLIP Text Encode' whose text encoder gives {text_dim}-wide features"


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
                         f"connect {text_hint(text_dim)}")
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
