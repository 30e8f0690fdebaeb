"""What the evaluation runs (`EvalConfig`), its sections, and the bars the trained student must clear."""
from __future__ import annotations

from dataclasses import dataclass

from ...runtime.config import JsonConfig
from ..synthetic import FRAMINGS, SPLITS, WorldConfig

__all__ = ["BARS", "SECTIONS", "EvalConfig"]

# The bars the trained student must clear (the acceptance numbers).
BARS: dict[str, float] = {
    "garment": 0.90, "identity": 0.90, "pattern": 0.80, "switch_first": 0.80, "switch_later": 0.90, "continuity": 0.80,
    "amplitude": 0.50, "drift_late": 0.85, "tryoff": 0.90,
}
SECTIONS = ("garment", "identity", "pattern", "recon", "switch", "drift", "teacher", "ablation", "tryoff")


@dataclass(frozen=True)
class EvalConfig(JsonConfig):
    """What the evaluation runs (JSON round trip). Frame numbers are pixel frames."""

    split: str = "test"
    samples: int = 24  # held-out samples (cases)
    start: int = 0  # first sample index in the split
    size: int = 128  # frames are size x size unless the framing or height / width say otherwise
    frames: int = 48  # per clip
    chunk: int = 12  # pixel frames per chunk; replaced by the student's own (`StudentGenerator.chunk_frames`)
    switch_chunk: int = 2  # the switch happens at the boundary after this many chunks
    candidates: int = 8  # K
    slots: str = "random"  # world slot layout of the cases: full | upper_lower | random
    long_frames: int = 1000  # drift: length of the long stream
    long_window: int = 100  # drift: frames [0, W) vs [L - W, L)
    long_splits: int = 4  # retrieval decisions per drift window
    long_samples: int = 2  # long streams (the first cases)
    teacher_samples: int = 4  # teacher vs student on the first cases
    ablation_samples: int = 12  # rescheduling ablation on the first cases
    teacher_steps: int = 30
    # text CFG of the teacher row; 1 = none: on the portrait world the teacher's CFG-3 samples are confetti and
    # score 3-5 cases of 24 lower (docs/training-log.md); GR-DMD's real score keeps its own guidance (3)
    teacher_cfg: float = 1.0
    tryoff_steps: int = 30
    stride: int = 1  # frame step inside descriptor windows (2 halves the descriptor cost)
    analysis_scale: int = 2  # descriptors judge frames area-downsampled by this (blur tolerance)
    mask_open: int = 3  # opening (odd size) of foreground masks against plate speckle; 0 = off
    bands: int = 5  # horizontal colour bands in the descriptor (where each colour sits)
    seed: int = 0
    sections: tuple[str, ...] = SECTIONS
    framing: str = "full_body"  # the world's framing (`WorldConfig.framing`): full_body | fashion
    height: int | None = None  # frame height in px; None: the framing's (fashion: 144) or size
    width: int | None = None  # frame width in px; None: the framing's (fashion: 112) or size
    garment_layout: str = "frame"  # the conditions' flat-lays (`WorldConfig.garment_layout`); try-off's stay "frame"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sections", tuple(self.sections))
        unknown = sorted(set(self.sections) - set(SECTIONS))
        if unknown:
            raise ValueError(f"unknown eval sections {unknown}; sections are {list(SECTIONS)}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {self.split!r}")
        if self.start < 0 or self.start + self.samples > len(SPLITS[self.split]):
            raise ValueError(f"samples {self.start}..{self.start + self.samples - 1} are outside the {self.split} "
                             f"split's {len(SPLITS[self.split])}: lower --start or --samples")
        if self.candidates < 3:
            raise ValueError(f"candidates (K) must be >= 3 (truth, old/reference and one more), got {self.candidates}")
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {tuple(FRAMINGS)}, got {self.framing!r}")
        if min(self.frame_size) // self.analysis_scale < 32:
            raise ValueError(f"frames of {self.frame_size[0]} x {self.frame_size[1]} px (H x W) are too small to judge "
                             f"at analysis scale {self.analysis_scale} (the head would be a few pixels): use "
                             f"sides >= {32 * self.analysis_scale}")
        if self.samples < 1 or self.chunk < 1 or self.switch_chunk < 1 or self.stride < 1:
            raise ValueError("samples, chunk, switch_chunk and stride must be positive")
        if self.frames < (self.switch_chunk + 2) * self.chunk:
            raise ValueError(f"frames ({self.frames}) must hold the switch chunk and two chunks after it: "
                             f">= (switch_chunk + 2) * chunk = {(self.switch_chunk + 2) * self.chunk}")
        if self.long_window * 2 > self.long_frames or self.long_window < self.long_splits:
            raise ValueError(f"drift windows need long_splits <= long_window <= long_frames / 2, got "
                             f"{self.long_splits}, {self.long_window}, {self.long_frames}")

    @classmethod
    def quick(cls, **changes) -> "EvalConfig":
        """A smoke-test run (< 2 min on 2 CPU cores): few samples, a short long stream, a cheap teacher."""
        base = dict(samples=4, long_frames=240, long_window=48, long_splits=2, long_samples=1, teacher_samples=1,
                    ablation_samples=4, teacher_steps=10, tryoff_steps=10, stride=2)
        return cls(**{**base, **changes})

    @property
    def switch_frame(self) -> int:
        return self.switch_chunk * self.chunk

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every frame, flat-lay and reference of the cases."""
        return FRAMINGS[self.framing].frame_size(self.size, self.height, self.width)

    def world(self, slots: str | None = None) -> WorldConfig:
        """The world the cases are drawn from (`slots` overrides the slot layout)."""
        return WorldConfig(size=self.size, frames=self.frames, slots=slots or self.slots, framing=self.framing,
                           height=self.height, width=self.width, garment_layout=self.garment_layout)
