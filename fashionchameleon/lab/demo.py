"""`python -m fashionchameleon demo`: the embedded model streams a held-out person through two switches.

From the bundled sample images (`workflows/samples/`): the person starts in outfit 1, switches
to outfit 2 (upper and lower) at `switch_frames[0]` and to a new upper only at
`switch_frames[1]`, with the full rescheduling policy. Writes the video (MP4, or GIF without an
encoder), a contact sheet with the switch points marked, and `metrics.json`: speed, and — since
the samples come from the procedural world, which can render the same person in any outfit —
per-chunk garment retrieval against the outfits, switch continuity and motion amplitude.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..runtime.embedded import WEIGHTS_DIR, EmbeddedModel, load_embedded
from ..runtime.files.video_write import save_video
from .contact_sheet import save_contact_sheet
from .metrics.descriptors import foreground_mask
from .metrics.motion import motion_amplitude, switch_continuity
from .metrics.retrieval import render_retrieval
from .samples import SAMPLES_DIR, load_sample_inputs, worn_outfit_renders

__all__ = ["DemoConfig", "run_demo", "SAMPLES_DIR"]


@dataclass(frozen=True)
class DemoConfig:
    frames: int = 144
    switch_frames: tuple[int, int] = (48, 96)
    seed: int = 0
    samples: Path = SAMPLES_DIR
    out: Path = Path("outputs/demo")
    sheet_every: int = 6  # contact-sheet columns: every n-th frame
    threads: int | None = None


def _progress(done: int, total: int, fps: float) -> None:
    bar = "#" * int(30 * done / total)
    print(f"\r[{bar:<30}] {done}/{total} frames, {fps:5.1f} FPS", end="", file=sys.stderr, flush=True)


def _chunk_metrics(video: torch.Tensor, starts: list[int], switch_frames: tuple[int, int], samples: Path) -> dict:
    truth, plate = worn_outfit_renders(video.shape[0], samples)
    segment = lambda f: sum(f >= s for s in switch_frames)  # noqa: E731 — which outfit should be worn
    rows, hits = [], []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else video.shape[0]
        window = slice(start, end)
        got, want = render_retrieval(video[window], [t[window] for t in truth], plate), segment(start)
        rows.append({"chunk": i, "first_frame": start, "expected_outfit": want + 1, "retrieved_outfit": got + 1})
        if i > 0:  # the first chunk continues from the reference photo
            hits.append(got == want)
    masks = foreground_mask(video, plate)
    truth_masks = foreground_mask(truth[0], plate)
    return {"chunks": rows, "garment_retrieval": sum(hits) / max(len(hits), 1),
            "switch_continuity": [round(switch_continuity(masks, f), 3) for f in switch_frames if f < len(video)],
            "motion_amplitude_ratio": round(motion_amplitude(masks) / max(motion_amplitude(truth_masks), 1e-6), 3)}


def run_demo(cfg: DemoConfig = DemoConfig(), model: EmbeddedModel | None = None,
             weights: Path = WEIGHTS_DIR) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model = model or load_embedded(weights, parts=("student",))
    refs, outfits, prompt = load_sample_inputs(cfg.samples)
    session = model.session(refs, outfits[0], prompt, seed=cfg.seed)
    for frame, outfit in zip(cfg.switch_frames, outfits[1:]):
        for slot, image in outfit.items():
            session.schedule_switch(frame, slot, image)
    chunks, start = [], time.perf_counter()
    first_frame_s = None
    with torch.inference_mode():
        for chunk in session.generate(cfg.frames):
            chunks.append(chunk)
            first_frame_s = first_frame_s or time.perf_counter() - start
            _progress(session.frames_generated, cfg.frames, session.frames_generated / (time.perf_counter() - start))
    elapsed = time.perf_counter() - start
    print(file=sys.stderr)
    video = torch.cat([c.frames[0].transpose(0, 1) for c in chunks])[:cfg.frames]  # [T, 3, H, W]
    starts = [c.first_frame for c in chunks]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    video_path = save_video(out / "demo.mp4", video, fps=16.0)
    every = cfg.sheet_every
    rows = [[video[i] for i in range(r, min(r + 8 * every, len(video)), every)]
            for r in range(0, len(video), 8 * every)]
    marked = {(f // (8 * every), (f % (8 * every)) // every) for f in cfg.switch_frames if f < len(video)}
    sheet = save_contact_sheet(out / "contact_sheet.png", rows, marked=marked)
    metrics = {"frames": len(video), "resolution": list(video.shape[-2:]), "seconds": round(elapsed, 2),
               "fps_end_to_end": round(len(video) / elapsed, 1), "time_to_first_chunk_s": round(first_frame_s, 3),
               "switch_frames": list(cfg.switch_frames), "prompt": prompt, "video": str(video_path),
               "contact_sheet": str(sheet), **_chunk_metrics(video, starts, cfg.switch_frames, cfg.samples)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
