"""Training batches from the procedural world or a user manifest, encoded with a frozen codec.

Every batch is a pure function of (data config, step, rank): a resumed or restarted run sees the
same data, and ranks of a `torchrun` job see disjoint samples. One batch shares one layout
(number of reference views, garment slots). Frames are `DataConfig.frame_size` (H, W): square
`size` by default, portrait for the world's "fashion" framing (videos, references and flat-lays alike).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, Sequence

import torch
import torch.nn.functional as F

from ...runtime.encoders.codec import LatentCodec
from ...runtime.config import JsonConfig
from ...runtime.stream.seeding import generator_for, mix_seed
from .batch import LatentBatch
from .flatten import check_box_size, flatten_inside, region_mask
from .tryoff_stage import CanvasBatch

__all__ = ["DataConfig", "ClipSource", "WorldSource", "ManifestSource", "ClipBatches", "clip_batches",
           "latent_cover"]


@dataclass(frozen=True)
class DataConfig(JsonConfig):
    source: str = "world"  # "world" (procedural, on the fly) or "manifest" (a CSV of user clips)
    size: int = 128  # square frames unless the framing or height / width say otherwise
    frames: int = 48  # pixel frames per clip (whole 3-latent-frame chunks for the DiT stages)
    batch_size: int = 4
    two_slot_prob: float = 0.5  # world: chance a batch uses upper + lower slots instead of one outfit
    two_view_prob: float = 0.3  # chance a batch uses 2 reference views (when the clips have them)
    manifest: str = ""  # CSV path when source == "manifest"
    seed: int = 0
    framing: str = "full_body"  # world: full_body (fixed camera, square) | fashion (portrait, following camera)
    height: int | None = None  # frame height in px; None: the world framing's (fashion: 144), else size
    width: int | None = None  # frame width in px; None: the world framing's (fashion: 112), else size
    garment_layout: str = "frame"  # world: flat-lays centred ("frame") or where they are worn ("body")
    # world masks whose texture a second encoding of each clip averages away (`LatentBatch.flat_video`,
    # for the teacher's `restore_prob`), e.g. ["upper", "lower", "full", "head"]; empty = none
    flatten_regions: tuple[str, ...] = ()
    flatten_px: int = 25  # the box (odd, px) of that average: wider than the world's texture periods (>= 16 px)

    def __post_init__(self) -> None:
        object.__setattr__(self, "flatten_regions", tuple(self.flatten_regions))  # JSON gives a list
        check_box_size(self.flatten_px, "data.flatten_px")

    def world(self):
        """The `WorldConfig` of a world source (imports the world)."""
        from ..synthetic import WorldConfig

        return WorldConfig(size=self.size, frames=self.frames, framing=self.framing, height=self.height,
                           width=self.width, garment_layout=self.garment_layout)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every image of a batch."""
        if self.source == "world":
            return self.world().frame_size
        return (self.size if self.height is None else self.height, self.size if self.width is None else self.width)


class ClipSource(Protocol):
    """Yields clips with `.video [T,3,H,W]`, `.references [V,3,H,W]`, `.garments {slot: [3,H,W]}`, `.prompt`."""

    def samples(self, step: int, index0: int, count: int) -> Sequence: ...


class WorldSource:
    def __init__(self, cfg: DataConfig, split: str = "train") -> None:
        from ..synthetic import SPLITS  # the world is only imported when training on it

        self.cfg, self.seeds = cfg, SPLITS[split]
        self.world = cfg.world()

    def samples(self, step: int, index0: int, count: int):
        from ..synthetic import make_sample

        g = generator_for(mix_seed(self.cfg.seed, 1), step)
        slots = "upper_lower" if bool(torch.rand((), generator=g) < self.cfg.two_slot_prob) else "full"
        cfg = replace(self.world, slots=slots)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small renders: one thread is as fast, and robust when the cores are busy
        try:
            return [make_sample(self.seeds[mix_seed(self.cfg.seed, index0 + i) % len(self.seeds)], cfg)
                    for i in range(count)]
        finally:
            torch.set_num_threads(threads)


class ManifestSource:
    def __init__(self, cfg: DataConfig) -> None:
        from ..data import ManifestConfig, ManifestDataset

        self.cfg = cfg
        self.dataset = ManifestDataset(ManifestConfig(cfg.manifest, size=cfg.frame_size, frames=cfg.frames))
        self.groups = list(self.dataset.layouts().values())  # rows of one garment layout each

    def samples(self, step: int, index0: int, count: int):
        g = generator_for(mix_seed(self.cfg.seed, 1), step)
        sizes = torch.tensor([len(rows) for rows in self.groups], dtype=torch.float)
        rows = self.groups[int(torch.multinomial(sizes, 1, generator=g))]
        return [self.dataset[rows[mix_seed(self.cfg.seed, index0 + i) % len(rows)]] for i in range(count)]


def _encode_images(codec: LatentCodec, images: list[torch.Tensor]) -> torch.Tensor:
    """Images `[3, H, W]` -> standalone latents `[B, C, 1, h, w]`."""
    return codec.encode_image(torch.stack(images)).float()


def latent_cover(masks: torch.Tensor, codec: LatentCodec) -> torch.Tensor:
    """Pixel masks `[B, T, H, W]` -> the share of each latent cell they cover `[B, 1, F, h, w]`.

    A latent frame covers the union of its pixel frames (the person anywhere in its time span);
    spatially the cover is the mean over each `s x s` cell. Follows the codec's temporal layout.
    """
    b, t, h, w = masks.shape
    f, s, tf = codec.latent_frames(t), codec.spatial_factor, codec.temporal_factor
    head = 1 if codec.causal_first_frame else 0  # a causal codec's latent frame 0 is pixel frame 0 alone
    m = masks.float()
    groups = [m[:, :head].amax(1, keepdim=True)] if head else []
    rest = m[:, head:head + tf * (f - head)].reshape(b, f - head, tf, h, w).amax(2)  # [B, F - head, H, W]
    cover = torch.cat([*groups, rest], dim=1)  # [B, F, H, W]
    return F.avg_pool2d(cover, s)[:, None]  # [B, 1, F, h, w]


def _frames_first(sample) -> torch.Tensor:
    return sample.video.transpose(0, 1)  # [T, 3, H, W] -> [3, T, H, W]


class ClipBatches:
    """Batches for one rank: videos for the codec, latents for the DiT stages, canvases for try-off."""

    def __init__(self, cfg: DataConfig, source: ClipSource, rank: int = 0, world_size: int = 1) -> None:
        self.cfg, self.source, self.rank, self.world_size = cfg, source, rank, world_size

    def samples(self, step: int):
        b = self.cfg.batch_size
        return self.source.samples(step, (step * self.world_size + self.rank) * b, b)

    def videos(self, step: int) -> torch.Tensor:
        """`[B, 3, T, H, W]` in [-1, 1] (codec training)."""
        return torch.stack([_frames_first(s) for s in self.samples(step)])

    @torch.no_grad()
    def latents(self, step: int, codec: LatentCodec) -> LatentBatch:
        samples = self.samples(step)
        g = generator_for(mix_seed(self.cfg.seed, 3), step)
        views = 2 if bool(torch.rand((), generator=g) < self.cfg.two_view_prob) else 1
        names = tuple(samples[0].garments)
        enc = lambda imgs: _encode_images(codec, imgs)  # noqa: E731
        video = codec.encode_video(torch.stack([_frames_first(s) for s in samples])).float()
        refs = torch.cat([enc([s.references[min(v, len(s.references) - 1)] for s in samples])
                          for v in range(views)], dim=2)
        garments = torch.cat([enc([s.garments[n] for s in samples]) for n in names], dim=2)
        masks = [getattr(s, "masks", None) or {} for s in samples]  # world clips have masks; user clips not
        shared = set(masks[0]).intersection(*masks[1:])
        covers = {k: latent_cover(torch.stack([m[k] for m in masks]), codec) for k in sorted(shared)}
        person = covers.pop("person", None)
        hull = torch.stack([m["person"].any(0) for m in masks])[:, None].float() if person is not None else None
        return LatentBatch(video, refs, garments, [s.prompt for s in samples], names,
                           torch.stack([s.references[0] for s in samples]),
                           torch.stack([s.garments[names[0]] for s in samples]), person, covers,
                           self._flat_video(samples, masks, codec), hull)

    def _flat_video(self, samples, masks: list[dict], codec: LatentCodec) -> torch.Tensor | None:
        """The clips encoded with `flatten_regions` averaged away `[B, C, F, h, w]`; None when not asked for."""
        if not self.cfg.flatten_regions:
            return None
        clips = [flatten_inside(s.video, region_mask(m, self.cfg.flatten_regions), self.cfg.flatten_px)
                 .transpose(0, 1) for s, m in zip(samples, masks)]  # [3, T, H, W] each
        return codec.encode_video(torch.stack(clips)).float()

    @torch.no_grad()
    def canvas(self, step: int, codec: LatentCodec) -> CanvasBatch:
        """A dressed frame, the flat garment of one slot and the re-dressed reference (try-off/try-on)."""
        samples = self.samples(step)
        g = generator_for(mix_seed(self.cfg.seed, 2), step)
        names = list(samples[0].garments)
        slot = names[int(torch.randint(0, len(names), (1,), generator=g))]
        frame = int(torch.randint(0, samples[0].video.shape[0], (1,), generator=g))
        enc = lambda imgs: _encode_images(codec, imgs)  # noqa: E731
        return CanvasBatch(enc([s.video[frame] for s in samples]), enc([s.garments[slot] for s in samples]),
                           enc([s.references[0] for s in samples]), slot)


def clip_batches(cfg: DataConfig, rank: int = 0, world_size: int = 1) -> ClipBatches:
    if cfg.source == "world":
        return ClipBatches(cfg, WorldSource(cfg), rank, world_size)
    if cfg.source == "manifest":
        if not cfg.manifest:
            raise ValueError("data.source is 'manifest' but data.manifest (the CSV path) is empty")
        return ClipBatches(cfg, ManifestSource(cfg), rank, world_size)
    raise ValueError(f"data.source must be 'world' or 'manifest', got {cfg.source!r}")
