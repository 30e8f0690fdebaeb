"""Training batches from the procedural world (or a user manifest), encoded with a frozen codec.

Every batch is a pure function of (data config, step, rank): a resumed or restarted run sees the
same data, and ranks of a `torchrun` job see disjoint samples. One batch shares one layout
(number of reference views, garment slots), drawn per step.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..codec import LatentCodec
from ..config import JsonConfig
from ..seeding import generator_for, mix_seed
from .batch import LatentBatch
from .tryoff_stage import CanvasBatch

__all__ = ["DataConfig", "WorldBatches"]


@dataclass(frozen=True)
class DataConfig(JsonConfig):
    source: str = "world"  # "world" (procedural, on the fly) or "manifest" (a CSV of user clips)
    size: int = 128
    frames: int = 48  # pixel frames per clip (a multiple of 4 * 3 for whole 3-latent-frame chunks)
    batch_size: int = 4
    two_slot_prob: float = 0.5  # chance a batch uses upper + lower garment slots instead of one outfit
    two_view_prob: float = 0.3  # chance a batch uses 2 reference views
    manifest: str = ""  # CSV path when source == "manifest"
    seed: int = 0


class WorldBatches:
    """Batches of world samples for one rank: videos for the codec, latents for the DiT stages."""

    def __init__(self, cfg: DataConfig, rank: int = 0, world_size: int = 1, split: str = "train") -> None:
        from ..synthetic import SPLITS, WorldConfig  # the world is only needed when training on it

        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.seeds = SPLITS[split]
        self.world = WorldConfig(size=cfg.size, frames=cfg.frames)

    def _layout(self, step: int) -> tuple[str, int]:
        g = generator_for(mix_seed(self.cfg.seed, 1), step)
        two_slots = bool(torch.rand((), generator=g) < self.cfg.two_slot_prob)
        views = 2 if bool(torch.rand((), generator=g) < self.cfg.two_view_prob) else 1
        return ("upper_lower" if two_slots else "full"), views

    def samples(self, step: int, slots: str = "full"):
        from ..synthetic import make_sample

        b = self.cfg.batch_size
        first = (step * self.world_size + self.rank) * b
        cfg = replace(self.world, slots=slots)
        return [make_sample(self.seeds[mix_seed(self.cfg.seed, first + i) % len(self.seeds)], cfg) for i in range(b)]

    def videos(self, step: int) -> torch.Tensor:
        """`[B, 3, T, H, W]` in [-1, 1] (codec training)."""
        return torch.stack([s.video.transpose(0, 1) for s in self.samples(step)])

    @torch.no_grad()
    def latents(self, step: int, codec: LatentCodec) -> LatentBatch:
        slots, views = self._layout(step)
        samples = self.samples(step, slots)
        names = tuple(samples[0].garments)
        enc = lambda imgs: codec.encode_image(torch.stack(imgs)).float()  # noqa: E731 — [B, C, 1, h, w]
        video = codec.encode_video(torch.stack([s.video.transpose(0, 1) for s in samples])).float()
        refs = torch.cat([enc([s.references[min(v, len(s.references) - 1)] for s in samples])
                          for v in range(views)], dim=2)
        garments = torch.cat([enc([s.garments[n] for s in samples]) for n in names], dim=2)
        return LatentBatch(video, refs, garments, [s.prompt for s in samples], names,
                           torch.stack([s.references[0] for s in samples]),
                           torch.stack([s.garments[names[0]] for s in samples]))

    @torch.no_grad()
    def canvas(self, step: int, codec: LatentCodec) -> CanvasBatch:
        """A dressed frame, the flat garment of one slot and the re-dressed reference (try-off/try-on)."""
        slots, _ = self._layout(step)
        samples = self.samples(step, slots)
        g = generator_for(mix_seed(self.cfg.seed, 2), step)
        slot = list(samples[0].garments)[int(torch.randint(0, len(samples[0].garments), (1,), generator=g))]
        frame = int(torch.randint(0, samples[0].video.shape[0], (1,), generator=g))
        enc = lambda imgs: codec.encode_image(torch.stack(imgs)).float()  # noqa: E731
        return CanvasBatch(enc([s.video[frame] for s in samples]), enc([s.garments[slot] for s in samples]),
                           enc([s.references[0] for s in samples]), slot)
