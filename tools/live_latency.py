"""Click -> first frame in the new garment, for a live switch of the embedded model on this machine.

    python tools/live_latency.py                 # 6 trials, 1 thread, the bundled sample person
    python tools/live_latency.py --trials 10 --threads 2

Each trial streams the sample person in outfit 1 through `LiveControl.run` (the loop the node
uses) and, from another thread, asks for the third outfit's top in the 'upper' slot at a random
moment during chunk `--at-chunk`, as the panel's click does through the pack's route. It records

    applied     the chunk index whose first frame is the first one wearing the request
    delivered   wall time from the click to that chunk's frames leaving the generation loop
                (the moment the node sends them to the panel)
    retrieved   the evaluation's garment retrieval (lab/bench/switch.py: the new outfit retrieved 3
                frames in a row against renders of both outfits), in frames after the switch frame,
                and the wall time from the click until the chunk holding that frame was delivered

and prints one row per trial and the medians. No chunk waits for the request: it is queued and
taken at the next boundary.
"""
from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fashionchameleon import LiveControl, fit_pad_white, load_embedded  # noqa: E402
from fashionchameleon.lab.bench.switch import switch_latency  # noqa: E402
from fashionchameleon.lab.samples import load_sample_inputs, sample_set_of  # noqa: E402


def _truth(frames: int):
    """Renders [T, 3, H, W] of the sample person in outfit 1 and in outfit 1 with outfit 3's top; the plate."""
    s = sample_set_of()
    old = s.render(s.outfits[0], frames)
    new = s.render({**s.outfits[0], "upper": s.outfits[2]["upper"]}, frames)
    return old.video, new.video, old.background


def trial(model, refs, outfits, prompt, chunks: int, at_chunk: int, rng: random.Random, truth) -> dict:
    session = model.session(refs, outfits[0], prompt, seed=0)
    size = session.image_size
    wardrobe = [fit_pad_white(outfits[2]["upper"], *size)]
    control = LiveControl(session.layout.garment_slots, size, wardrobe)
    per_chunk = session.codec.pixel_frames(session.config.chunk_frames, first=False)
    delivered, clicked = {}, {}

    def click(delay: float) -> None:
        time.sleep(delay)
        clicked["t"] = time.perf_counter()
        clicked["request"] = control.request(0, "upper")

    chunk_s = None
    frames = []
    t_start = None
    with torch.inference_mode():
        for live in control.run(session, chunks * per_chunk):
            now = time.perf_counter()
            c = live.chunk
            frames.append(c.frames[0].movedim(1, 0))  # [T, 3, H, W]
            delivered[c.index] = (now, c.first_frame, c.frames.shape[2], bool(live.applied))
            if c.index == at_chunk - 1:  # chunk at_chunk starts now: click somewhere inside it
                chunk_s = now - t_start if t_start is not None else None
                delay = rng.uniform(0.05, 0.95) * (chunk_s or 0.4)
                threading.Thread(target=click, args=(delay,), daemon=True).start()
            t_start = now
    video = torch.cat(frames)
    applied = next(i for i, d in delivered.items() if d[3])
    t_click = clicked["t"]
    asked_in = max(i for i, d in delivered.items() if d[0] < t_click) + 1  # the chunk being made at the click
    switch_frame = delivered[applied][1]
    old, new, plate = truth
    lat = switch_latency(video, switch_frame, old[:len(video)], new[:len(video)], plate)
    row = {"asked_in_chunk": asked_in, "applied_chunk": applied, "switch_frame": switch_frame,
           "delivered_ms": 1000 * (delivered[applied][0] - t_click), "chunk_ms": 1000 * (chunk_s or float("nan")),
           "retrieved_frames": lat.frames, "retrieved_ms": None}
    if lat.frames is not None:
        frame = switch_frame + lat.frames
        holder = next(i for i, d in delivered.items() if d[1] <= frame < d[1] + d[2])
        row["retrieved_ms"] = 1000 * (delivered[holder][0] - t_click)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--chunks", type=int, default=6, help="chunks per trial stream")
    p.add_argument("--at-chunk", type=int, default=2, help="the chunk during which the click happens")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the click times")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_embedded(parts=("student",))
    refs, outfits, prompt = load_sample_inputs()
    per_chunk = 12
    truth = _truth(args.chunks * per_chunk + per_chunk)
    rng = random.Random(args.seed)
    trial(model, refs, outfits, prompt, 3, 1, rng, truth)  # warm-up
    rows = [trial(model, refs, outfits, prompt, args.chunks, args.at_chunk, rng, truth) for _ in range(args.trials)]
    print(f"{'trial':>5} {'asked in':>8} {'worn from':>9} {'switch frame':>12} {'chunk ms':>8} "
          f"{'click->delivered ms':>19} {'retrieved after (frames)':>24} {'click->retrieved ms':>19}")
    for i, r in enumerate(rows):
        rf = "-" if r["retrieved_frames"] is None else str(r["retrieved_frames"])
        rm = "-" if r["retrieved_ms"] is None else f"{r['retrieved_ms']:.0f}"
        print(f"{i:>5} {r['asked_in_chunk']:>8} {r['applied_chunk']:>9} {r['switch_frame']:>12} {r['chunk_ms']:>8.0f} "
              f"{r['delivered_ms']:>19.0f} {rf:>24} {rm:>19}")
    med = lambda xs: sorted(xs)[len(xs) // 2] if xs else float("nan")  # noqa: E731
    next_chunk = sum(r["applied_chunk"] == r["asked_in_chunk"] + 1 for r in rows)
    print(f"\nworn from the next chunk: {next_chunk}/{len(rows)}; median click->delivered "
          f"{med([r['delivered_ms'] for r in rows]):.0f} ms (median chunk {med([r['chunk_ms'] for r in rows]):.0f} ms); "
          f"median click->retrieved {med([r['retrieved_ms'] for r in rows if r['retrieved_ms'] is not None]):.0f} ms "
          f"({sum(r['retrieved_ms'] is not None for r in rows)}/{len(rows)} retrieved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
