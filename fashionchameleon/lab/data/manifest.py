"""Training on your own videos: a CSV manifest in the official FashionChameleon layout.

The file (the official ``meta_train.csv``) has one row per clip and the columns

- ``video``  — path of the clip: a video file (``.mp4``, ...; a GIF works too) or a directory of
  frame images; relative paths are relative to `ManifestConfig.root` (see there);
- ``prompt`` — the caption: a JSON object with ``en_long``, ``en_short``, ``cn_long``, ``cn_short``,
  each a string or a pair ``[dynamic, static]`` (joined with a space), or plain text;
- ``width``, ``height`` — optional and unused here (the official code buckets aspect ratios with
  them; here every clip is brought to `ManifestConfig.size`);
- ``slot`` — optional: which garment slot the flat-lay fills (see below).

Beside each clip ``<name>.mp4`` (or the directory ``<name>/``) lie

- ``<name>_src.png``   — the reference: the first frame re-dressed in a *different* outfit;
- ``<name>_cloth.png`` — a flat-lay of the garment worn in the clip (slot ``full``);
- or, for two-slot rows, ``<name>_cloth_upper.png`` and ``<name>_cloth_lower.png``.

Garment slots, per row (``slot`` column, case-insensitive):

- empty or no column: ``<name>_cloth.png`` as ``full``; if it is absent but ``_cloth_upper.png`` /
  ``_cloth_lower.png`` exist, those fill ``upper`` / ``lower``;
- ``full`` | ``upper`` | ``lower``: ``<name>_cloth_<slot>.png`` if it exists, else ``<name>_cloth.png``;
- ``upper+lower`` (or ``upper,lower``, ``both``): ``_cloth_upper.png`` and ``_cloth_lower.png``.

Preprocessing follows the official loader: frames and reference are resized to cover the target
size and centre-cropped; flat-lays are fitted inside and padded with white. A sample holds the
first `ManifestConfig.frames` frames. Every row is checked when the dataset is built (files
exist, prompt parses, slot is known), so a bad manifest fails at once with the list of problems
rather than hours into training; video lengths are checked when a clip is read.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...runtime.files.images import from_uint8, load_image
from ...runtime.files.resize import fit_pad_white, resize_cover_crop
from ...runtime.files.video_read import read_video_uint8

__all__ = ["SLOTS", "CAPTION_KEYS", "ManifestError", "ManifestConfig", "ManifestRow", "ManifestSample",
           "ManifestBatch", "ManifestDataset", "parse_prompt", "caption_order", "stack_samples"]

SLOTS = ("full", "upper", "lower")  # garment slots, in the order conditions are laid out
CAPTION_KEYS = ("en_long", "en_short", "cn_long", "cn_short")
_TWO_SLOTS = {"upper+lower", "upper,lower", "upper lower", "both"}
_SHOW = 10  # problems listed in an error message
_CHUNK = 16  # frames converted to float and resized at a time (bounds peak memory on long clips)


class ManifestError(ValueError):
    """The manifest or one of the files it names is unusable; the message says which and why."""


@dataclass(frozen=True)
class ManifestConfig:
    path: str | Path  # the CSV manifest
    size: tuple[int, int] = (128, 128)  # (H, W) of frames, reference and garments
    frames: int = 48  # first `frames` frames of each clip; shorter clips raise
    caption: str = "en_long"  # preferred prompt key; fallbacks: `caption_order`
    root: str | Path | None = None  # base of relative paths; None: the CSV's folder, then the cwd

    def __post_init__(self):
        if len(self.size) != 2 or any(int(s) != s or s < 1 for s in self.size):
            raise ValueError(f"size must be (H, W) with positive integers, got {self.size!r}")
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
        if int(self.frames) != self.frames or self.frames < 1:
            raise ValueError(f"frames must be a positive integer, got {self.frames!r}")
        if self.caption not in CAPTION_KEYS:
            raise ValueError(f"caption must be one of {list(CAPTION_KEYS)}, got {self.caption!r}")


@dataclass(frozen=True)
class ManifestRow:
    """One validated row: absolute paths and the prompt text."""

    line: int  # line number in the CSV (header is line 1), for messages
    video: Path
    reference: Path
    garments: dict[str, Path]  # slot -> flat-lay, in `SLOTS` order
    prompt: str

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(self.garments)


@dataclass
class ManifestSample:
    video: Tensor  # [T, 3, H, W] in [-1, 1]
    references: Tensor  # [1, 3, H, W] in [-1, 1]
    garments: dict[str, Tensor]  # slot -> [3, H, W] in [-1, 1], in `SLOTS` order
    prompt: str
    source: str = ""  # the clip's path, for logs

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(self.garments)


@dataclass
class ManifestBatch:
    video: Tensor  # [B, T, 3, H, W] in [-1, 1]
    references: Tensor  # [B, 1, 3, H, W]
    garments: dict[str, Tensor]  # slot -> [B, 3, H, W]
    prompts: list[str]
    sources: list[str] = field(default_factory=list)

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(self.garments)


# ----------------------------------------------------------------------------- prompts
def caption_order(caption: str) -> tuple[str, ...]:
    """Keys tried for ``caption``: itself, the other language, the other length, then both swapped.

    ``en_long`` -> en_long, cn_long, en_short, cn_short (as the official loader fills gaps).
    """
    if caption not in CAPTION_KEYS:
        raise ValueError(f"caption must be one of {list(CAPTION_KEYS)}, got {caption!r}")
    lang, length = caption.split("_")
    other_lang, other_length = ("cn" if lang == "en" else "en"), ("short" if length == "long" else "long")
    return (caption, f"{other_lang}_{length}", f"{lang}_{other_length}", f"{other_lang}_{other_length}")


def _caption_text(value) -> str | None:
    """A caption value -> text: a string, or a list such as [dynamic, static] joined with a space."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) or v is None for v in value):
        text = " ".join(v.strip() for v in value if v and v.strip())
        return text or None
    return None


def parse_prompt(text: str, caption: str = "en_long") -> str:
    """The prompt of one manifest cell.

    A JSON object picks the first present key of `caption_order` (values: a string or a list of
    strings such as [dynamic, static], joined with a space); a JSON string or list is used as is;
    anything else is plain text. Raises `ManifestError` for an object without a usable caption, or
    for text that starts like a JSON object but does not parse (usually broken CSV quoting).
    """
    text = "" if text is None else str(text)
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[\"":
        return stripped
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as e:
        if stripped[0] == "{":
            raise ManifestError(f"prompt looks like a JSON object but does not parse ({e}); in a CSV, quote the "
                                'whole cell and double the quotes inside it: "{""en_long"": ""...""}"') from e
        return stripped
    if isinstance(data, dict):
        for key in caption_order(caption):
            found = _caption_text(data.get(key))
            if found:
                return found
        raise ManifestError(f"prompt JSON has no usable caption: keys {sorted(data)}; expected one of "
                            f"{list(CAPTION_KEYS)} holding a string or a [dynamic, static] pair")
    found = _caption_text(data)
    return found if found is not None else stripped


# ----------------------------------------------------------------------------- rows and files
def _stem(video: Path) -> Path:
    """``a/clip.mp4`` -> ``a/clip``; a frame directory ``a/clip/`` -> ``a/clip``."""
    return video if video.is_dir() or not video.suffix else video.with_suffix("")


def _sibling(stem: Path, tail: str) -> Path:
    return stem.with_name(stem.name + tail)


def _garment_files(stem: Path, slot: str) -> tuple[dict[str, Path], list[Path]]:
    """(slot -> file, missing files) for one row's ``slot`` cell (already lower-cased)."""
    cloth = _sibling(stem, "_cloth.png")
    per_slot = {s: _sibling(stem, f"_cloth_{s}.png") for s in ("upper", "lower")}
    if slot == "":
        if cloth.is_file():
            return {"full": cloth}, []
        found = {s: p for s, p in per_slot.items() if p.is_file()}
        return (found, []) if found else ({}, [cloth])
    if slot in SLOTS:
        own = _sibling(stem, f"_cloth_{slot}.png")
        chosen = own if own.is_file() else cloth
        return {slot: chosen}, ([] if chosen.is_file() else [cloth])
    # two slots
    return dict(per_slot), [p for p in per_slot.values() if not p.is_file()]


class ManifestDataset(Dataset):
    """A `torch.utils.data.Dataset` of `ManifestSample`; see the module docstring for the layout."""

    def __init__(self, config: ManifestConfig):
        self.config = config
        self.path = Path(config.path).expanduser().absolute()  # rows keep absolute paths (workers, chdir)
        if not self.path.is_file():
            raise ManifestError(f"manifest not found: {self.path}; give the path of a CSV with columns "
                                "video, prompt (and optionally width, height, slot)")
        self.rows = self._read_rows()

    # ------------------------------------------------------------------ validation
    def _bases(self) -> list[Path]:
        if self.config.root is not None:
            return [Path(self.config.root).expanduser().absolute()]
        return [self.path.parent, Path.cwd()]  # the official CSV's paths are relative to the cwd

    def _resolve(self, cell: str) -> Path:
        p = Path(cell).expanduser()
        if p.is_absolute():
            return p
        candidates = [(b / p) for b in self._bases()]
        return next((c for c in candidates if c.exists()), candidates[0])

    def _read_rows(self) -> list[ManifestRow]:
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                header = [h.strip() for h in (reader.fieldnames or [])]
                cells = [({(k or "").strip(): (v or "") for k, v in r.items()}, reader.line_num) for r in reader]
        except (UnicodeDecodeError, csv.Error) as e:
            raise ManifestError(f"cannot read {self.path} as a UTF-8 CSV ({e})") from e
        lacking = [c for c in ("video", "prompt") if c not in header]
        if lacking:
            raise ManifestError(f"{self.path} lacks the column(s) {lacking}; its header is {header}. The first line "
                                "must name the columns: video,prompt[,width,height,slot]")
        rows, missing, problems = [], [], []
        for r, line in cells:
            video_cell = r["video"].strip()
            if not video_cell:
                problems.append(f"line {line}: empty video cell")
                continue
            video = self._resolve(video_cell)
            slot = r.get("slot", "").strip().lower()
            if slot and slot not in SLOTS and slot not in _TWO_SLOTS:
                problems.append(f"line {line}: unknown slot {slot!r}; use full, upper, lower or upper+lower")
                continue
            try:
                prompt = parse_prompt(r["prompt"], self.config.caption)
            except ManifestError as e:
                problems.append(f"line {line}: {e}")
                continue
            stem = _stem(video)
            reference = _sibling(stem, "_src.png")
            garments, lost = _garment_files(stem, slot)
            lost = [p for p in (video, reference) if not p.exists()] + lost
            if lost:
                missing += [f"line {line}: {p}" for p in lost]
                continue
            rows.append(ManifestRow(line, video, reference, garments, prompt))
        if missing or problems:
            msg = [f"{self.path}: {len(missing)} missing file(s), {len(problems)} other problem(s)"]
            if missing:
                msg.append("missing (first shown):\n  " + "\n  ".join(missing[:_SHOW]))
                bases = " then ".join(str(b) for b in self._bases())
                msg.append(f"relative paths are looked up under {bases}; set ManifestConfig.root if they are "
                           "relative to another folder. Each clip <name>.mp4 needs <name>_src.png and "
                           "<name>_cloth.png beside it")
            if problems:
                msg.append("problems (first shown):\n  " + "\n  ".join(problems[:_SHOW]))
            raise ManifestError("\n".join(msg))
        if not rows:
            raise ManifestError(f"{self.path} has a header but no rows")
        return rows

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> ManifestSample:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a manifest of {len(self)} rows")
        row = self.rows[i]
        h, w = self.config.size
        n = self.config.frames
        raw, _ = read_video_uint8(row.video, max_frames=n)  # [T', H0, W0, 3] uint8, T' <= n
        if raw.shape[0] < n:
            raise ManifestError(f"{row.video} has only {raw.shape[0]} frames but the manifest config asks for "
                                f"frames={n} (line {row.line} of {self.path}); use a longer clip or lower frames")
        video = torch.cat([resize_cover_crop(from_uint8(raw[s:s + _CHUNK]), h, w)
                           for s in range(0, n, _CHUNK)])  # [T, 3, H, W]
        reference = resize_cover_crop(load_image(row.reference), h, w)[None]  # [1, 3, H, W]
        garments = {slot: fit_pad_white(load_image(p), h, w) for slot, p in row.garments.items()}  # [3, H, W]
        return ManifestSample(video, reference, garments, row.prompt, str(row.video))

    def layouts(self) -> dict[tuple[str, ...], list[int]]:
        """Row indices grouped by garment-slot layout (a batch must share one layout)."""
        out: dict[tuple[str, ...], list[int]] = {}
        for i, row in enumerate(self.rows):
            out.setdefault(row.slots, []).append(i)
        return out


def stack_samples(samples: Sequence[ManifestSample]) -> ManifestBatch:
    """Collate samples of one garment layout into a batch (usable as a DataLoader ``collate_fn``)."""
    if not samples:
        raise ValueError("stack_samples needs at least one sample")
    slots = samples[0].slots
    for s in samples[1:]:
        if s.slots != slots:
            raise ManifestError(f"cannot batch garment slots {list(s.slots)} ({s.source}) with {list(slots)} "
                                f"({samples[0].source}); group rows with ManifestDataset.layouts()")
    return ManifestBatch(video=torch.stack([s.video for s in samples]),  # [B, T, 3, H, W]
                         references=torch.stack([s.references for s in samples]),  # [B, 1, 3, H, W]
                         garments={k: torch.stack([s.garments[k] for s in samples]) for k in slots},  # [B, 3, H, W]
                         prompts=[s.prompt for s in samples], sources=[s.source for s in samples])
