"""Training data from files: the CSV manifest of the official FashionChameleon layout (`manifest`)."""
from .manifest import (CAPTION_KEYS, SLOTS, ManifestBatch, ManifestConfig, ManifestDataset, ManifestError,
                       ManifestRow, ManifestSample, caption_order, parse_prompt, stack_samples)

__all__ = ["CAPTION_KEYS", "SLOTS", "ManifestBatch", "ManifestConfig", "ManifestDataset", "ManifestError",
           "ManifestRow", "ManifestSample", "caption_order", "parse_prompt", "stack_samples"]
