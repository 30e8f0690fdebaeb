"""Generate the example workflows: `workflows/<name>.json` (UI format) and `workflows/api/<name>.json` (API).

    python tools/make_workflows.py          # (re)write all of them
    python tools/make_workflows.py --check  # exit 1 if a committed file differs from what this builds

Each workflow is described once below; `workflow_graph.Workflow` writes both formats from that
description, using the specs of the pack's nodes (read from their V3 schemas, with the test
stand-in for ComfyUI, so no ComfyUI is needed) and of the core nodes in `workflow_spec.CORE_SPECS`.
Every workflow runs on the CPU with the embedded model, and uses only core nodes and the pack's.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))

from workflow_graph import Workflow  # noqa: E402
from workflow_spec import CORE_SPECS, NodeSpec, spec_from_schema  # noqa: E402

__all__ = ["WORKFLOWS", "OUT_DIR", "API_DIR", "pack_specs", "all_specs", "build", "render"]

OUT_DIR = ROOT / "workflows"
API_DIR = OUT_DIR / "api"
SAMPLES = json.loads((OUT_DIR / "samples" / "samples.json").read_text())
PROMPT = SAMPLES["prompt"]  # the motion the sample person was drawn with
FULL = "full (refresh + withdraw + disentangle)"  # SwapGarment's default policy (the paper's scheme)
SEGMENT = 48  # frames per stream segment: 4 chunks of the embedded model, 3 s at 16 fps
MP4 = dict(format="mp4", codec="auto")  # core's Save Video: H.264 in an MP4 at the VIDEO's frame rate


# ----------------------------------------------------------------------------------- node specs
def pack_specs() -> dict[str, NodeSpec]:
    """The pack's node specs, from its V3 schemas, with the stand-in ComfyUI of tests/comfy_stubs.py."""
    sys.path.insert(0, str(ROOT / "tests"))
    from comfy_stubs import load_pack, stub_modules

    name = "fashionchameleon_workflow_specs"
    with tempfile.TemporaryDirectory() as models:
        stubs = stub_modules(Path(models))
        saved = {key: sys.modules.get(key) for key in stubs}
        sys.modules.update(stubs)
        try:
            pack = load_pack(ROOT, name)
            nodes = asyncio.run(asyncio.run(pack.comfy_entrypoint()).get_node_list())
            return {s.type: s for s in (spec_from_schema(n.define_schema()) for n in nodes)}
        finally:
            for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
                del sys.modules[key]
            for key, module in saved.items():
                if module is None:
                    sys.modules.pop(key, None)
                else:
                    sys.modules[key] = module


def all_specs() -> dict[str, NodeSpec]:
    return {**CORE_SPECS, **pack_specs()}


# ----------------------------------------------------------------------------------- shared pieces
def _model(wf: Workflow, at=(0, 0)):
    return wf.add("FashionChameleonLoadTeacher", at=at, model="embedded (bundled)", dtype="auto", device="auto")


def _sample(wf: Workflow, image: str, at, title: str | None = None):
    return wf.add("FashionChameleonLoadSample", at=at, title=title, width=300, image=image)


def _start(wf: Workflow, model, reference, outfit: int, at, title: str | None = None, frames: int = SEGMENT):
    """A two-slot stream of sample outfit `outfit` (upper + lower flat-lays)."""
    upper = _sample(wf, f"garment{outfit}_upper.png", (at[0] - 1, at[1] + 5), f"outfit {outfit}: upper")
    lower = _sample(wf, f"garment{outfit}_lower.png", (at[0] - 1, at[1] + 9), f"outfit {outfit}: lower")
    return wf.add("FashionChameleonStreamGenerate", at=at, title=title, model=model.out("model"),
                  reference=reference, garment=upper.out("image"), garment_lower=lower.out("image"), prompt=PROMPT,
                  frames=frames, seed=0)


def _continue(wf: Workflow, model, stream, at, title: str | None = None, frames: int = SEGMENT):
    return wf.add("FashionChameleonStreamGenerate", at=at, title=title, model=model.out("model"), stream=stream,
                  prompt=PROMPT, frames=frames, seed=0)


def _swap(wf: Workflow, stream, garment, slot: str, at, title: str | None = None):
    return wf.add("FashionChameleonSwapGarment", at=at, title=title, stream=stream, garment=garment, slot=slot,
                  policy=FULL)


def _join(wf: Workflow, segments: list, at, title: str | None = None):
    """Core's Batch Images (BatchImagesNode): the segments' frames, in order, as one IMAGE batch."""
    return wf.add("BatchImagesNode", at=at, title=title, width=240,
                  **{f"images.image{i}": frames for i, frames in enumerate(segments)})


def _save(wf: Workflow, video, prefix: str, at, title: str | None = None):
    """Core's Save Video: the VIDEO as an MP4 under output/FashionChameleon/."""
    return wf.add("SaveVideo", at=at, title=title, width=420, video=video, filename_prefix=f"FashionChameleon/{prefix}",
                  **MP4)


def _save_joined(wf: Workflow, segments: list, fps, prefix: str, at, title: str | None = None):
    """Segments joined (Batch Images), made a VIDEO at the stream's frame rate (Create Video) and saved as an MP4."""
    joined = _join(wf, segments, at, "segments in order" if title is None else f"{title}: segments")
    video = wf.add("CreateVideo", at=(at[0], at[1] + 5), title=title and f"{title}: video", width=260,
                   shown={"fps": 16.0}, images=joined.out("IMAGE"), fps=fps)
    return _save(wf, video.out("VIDEO"), prefix, (at[0] + 1, at[1]), title)


# ----------------------------------------------------------------------------------- the four workflows
def one_garment_stream(wf: Workflow) -> None:
    model = _model(wf)
    ref = _sample(wf, "reference.png", (0, 4), "reference person")
    gen = _start(wf, model, ref.out("image"), 1, (2, 0), "stream the outfit")
    _save(wf, gen.out("video"), "one_garment_stream", (3, 0))
    wf.note(
        "## One outfit, one stream\n\n"
        "The smallest FashionChameleon graph. **Load FashionChameleon model** loads the small model bundled "
        "with the pack; the **sample image** nodes load the pack's bundled samples (a held-out person and the "
        "flat-lays of outfit 1), so nothing has to be copied into `ComfyUI/input`.\n\n"
        "**Stream generate** dresses the person in the garments and generates 48 frames, chunk by chunk "
        "(12 frames per chunk) with the 4-step causal model. Its `video` output (the frames at the stream's "
        "frame rate) goes straight to core's **Save Video**, which writes an MP4.\n\n"
        "- `garment` alone fills one `full` slot; with `garment_lower` the stream has `upper` + `lower` slots.\n"
        "- Use core **Load Image** for your own pictures (width and height multiples of 16 px).\n"
        "- Runs on the CPU in seconds.", at=(0, -5), size=(700, 260))


def interactive_switching(wf: Workflow) -> None:
    model = _model(wf)
    front = _sample(wf, "reference.png", (0, 4), "reference: front")
    back = _sample(wf, "reference_back.png", (0, 8), "reference: back")
    views = _join(wf, [front.out("image"), back.out("image")], (1, 2), "two views of the person")
    first = _start(wf, model, views.out("IMAGE"), 1, (2, 0), "1. stream outfit 1")
    upper2 = _sample(wf, "garment2_upper.png", (2, 14), "outfit 2: upper")
    lower2 = _sample(wf, "garment2_lower.png", (2, 18), "outfit 2: lower")
    swap_up = _swap(wf, first.out("stream"), upper2.out("image"), "upper", (3, 0), "switch: upper -> outfit 2")
    swap_low = _swap(wf, swap_up.out("stream"), lower2.out("image"), "lower", (3, 5), "switch: lower -> outfit 2")
    second = _continue(wf, model, swap_low.out("stream"), (4, 0), "2. continue in outfit 2")
    upper3 = _sample(wf, "garment3_upper.png", (4, 10), "outfit 3: upper only")
    swap3 = _swap(wf, second.out("stream"), upper3.out("image"), "upper", (5, 0), "switch: upper -> outfit 3")
    third = _continue(wf, model, swap3.out("stream"), (6, 0), "3. continue, new top")
    _save_joined(wf, [first.out("frames"), second.out("frames"), third.out("frames")], first.out("fps"),
                 "interactive_switching", (7, 0))
    wf.note(
        "## Switching garments while the video streams\n\n"
        "One continuous 144-frame video of the same person: outfit 1, then a full change to outfit 2 (two "
        "**swap garment** nodes, upper and lower, take effect at the same chunk boundary), then a new top "
        "only (outfit 3) while the trousers stay. Each switch reschedules the model's KV cache (garment "
        "refresh, history withdraw, reference disentangle): no restart, the motion carries on.\n\n"
        "**Try it interactively:** pick another garment in *outfit 3: upper only* and queue again. ComfyUI "
        "re-runs only the nodes after that change; the first two segments come from the cache.\n\n"
        "The reference is a batch of two views (front and back) of the person. Core's *Batch Images* "
        "joins the three segments into one clip, *Create Video* makes it a VIDEO at the stream's frame rate "
        "and *Save Video* writes the MP4. The same switches can also be scheduled inside one "
        "stream-generate node with `schedule_garments` + `switch_frames` + `switch_slots`.",
        at=(0, -7), size=(760, 330))


def try_off_then_swap(wf: Workflow) -> None:
    model = _model(wf)
    person = _sample(wf, "tryoff_person.png", (0, 4), "someone else, dressed")
    off = wf.add("FashionChameleonTryOff", at=(1, 4), title="take the top off the photo", model=model.out("model"),
                 person=person.out("image"), slot="upper", seed=0, steps=30)
    wf.add("PreviewImage", at=(1, 11), title="the tried-off garment", width=260, images=off.out("garment"))
    ref = _sample(wf, "reference.png", (1, 16), "reference person")
    first = _start(wf, model, ref.out("image"), 1, (3, 0), "1. stream outfit 1")
    swap = _swap(wf, first.out("stream"), off.out("garment"), "upper", (4, 0), "switch the top to the tried-off one")
    second = _continue(wf, model, swap.out("stream"), (5, 0), "2. continue in that top")
    _save_joined(wf, [first.out("frames"), second.out("frames")], first.out("fps"), "try_off_then_swap", (6, 0))
    wf.note(
        "## Try-off, then wear it\n\n"
        "**Try-off** takes the top off a photo of someone else: it generates the flat-lay of the garment in "
        "the chosen slot (30 denoising steps of the try-off model), shown in the preview.\n\n"
        "That flat-lay then goes straight into **swap garment**: the streaming person, in outfit 1, switches "
        "to the tried-off top at the next chunk boundary and keeps moving. Any IMAGE works as a garment, so "
        "a try-off output, a sample or your own flat-lay are interchangeable.",
        at=(0, -6), size=(700, 280))


def branch_two_garments(wf: Workflow) -> None:
    model = _model(wf)
    ref = _sample(wf, "reference.png", (0, 4), "reference person")
    shared = _start(wf, model, ref.out("image"), 1, (2, 0), "shared start (outfit 1)")
    upper2 = _sample(wf, "garment2_upper.png", (2, 14), "branch A: top of outfit 2")
    upper3 = _sample(wf, "garment3_upper.png", (2, 18), "branch B: top of outfit 3")
    swap_a = _swap(wf, shared.out("stream"), upper2.out("image"), "upper", (3, 0), "branch A: switch the top")
    swap_b = _swap(wf, shared.out("stream"), upper3.out("image"), "upper", (3, 12), "branch B: switch the top")
    gen_a = _continue(wf, model, swap_a.out("stream"), (4, 0), "branch A: continue")
    gen_b = _continue(wf, model, swap_b.out("stream"), (4, 12), "branch B: continue")
    _save_joined(wf, [shared.out("frames"), gen_a.out("frames")], shared.out("fps"), "branch_A", (5, 0), "branch A")
    _save_joined(wf, [shared.out("frames"), gen_b.out("frames")], shared.out("fps"), "branch_B", (5, 12), "branch B")
    wf.note(
        "## Two outfits from the same moment\n\n"
        "One stream, branched: both **swap garment** nodes start from the *same* stream output, which is "
        "copied, never changed, so the two branches are independent. They share the first 48 frames and "
        "the noise of every later chunk, so the only difference between the two videos is the top: a fair "
        "side-by-side comparison of two garments.\n\n"
        "Add more branches the same way; change one branch's garment and only that branch re-runs.",
        at=(0, -6), size=(700, 250))


LIVE_FRAMES = 480  # 30 s at 16 fps: Stop ends a live run earlier, keeping the frames so far
WARDROBE = ("garment1_upper.png", "garment1_lower.png", "garment2_upper.png", "garment2_lower.png",
            "garment3_upper.png")  # every bundled flat-lay, in the order of keys 1-5


def live_wardrobe(wf: Workflow) -> None:
    model = _model(wf)
    ref = _sample(wf, "reference.png", (0, 4), "reference person")
    items = [_sample(wf, name, (i % 2, 9 + 4 * (i // 2)), f"wardrobe {i + 1}: {name[:-4]}")
             for i, name in enumerate(WARDROBE)]
    wardrobe = _join(wf, [item.out("image") for item in items], (2, 9), "the wardrobe (keys 1-5)")
    gen = wf.add("FashionChameleonStreamGenerate", at=(3, 0), title="live: click a garment, press Stop",
                 width=420, model=model.out("model"), reference=ref.out("image"),
                 garment=items[0].out("image"), garment_lower=items[1].out("image"), wardrobe=wardrobe.out("IMAGE"),
                 prompt=PROMPT, frames=LIVE_FRAMES, seed=0)
    _save(wf, gen.out("video"), "live_wardrobe", (5, 0))
    wf.note(
        "## Live wardrobe: change clothes while the video streams\n\n"
        "Queue this workflow and watch the **stream generate** node: each chunk appears in its panel as it is "
        "made, with the frames done and the generation FPS.\n\n"
        "- **Click a garment** in the panel (or press **1-5**) to wear it from the next chunk, in the slot chosen "
        "in the panel (`upper` / `lower`) with the chosen rescheduling policy. It blinks until the first chunk "
        "wearing it arrives.\n"
        "- **Drop a flat-lay** on the thumbnails (or *add garment*) to add it to the wardrobe; it is saved in "
        "`input/fashionchameleon_wardrobe/` and listed in `wardrobe_uploads`, so the saved workflow keeps it.\n"
        "- **Stop** ends the stream at the next chunk boundary and keeps everything so far (ComfyUI's Cancel "
        "discards the running chunk instead). The node then outputs those frames, the stream and the `schedule` "
        "of every switch.\n"
        "- **Replay**: *use as schedule* writes the schedule into `switch_frames`; queue again (same seed) for "
        "the same video bit for bit.", at=(0, -7), size=(760, 330))


WORKFLOWS: dict[str, Callable[[Workflow], None]] = {
    "one_garment_stream": one_garment_stream,
    "interactive_switching": interactive_switching,
    "try_off_then_swap": try_off_then_swap,
    "branch_two_garments": branch_two_garments,
    "live_wardrobe": live_wardrobe,
}


# ----------------------------------------------------------------------------------- writing
def build(name: str, specs: dict[str, NodeSpec]) -> Workflow:
    wf = Workflow(name, specs)
    WORKFLOWS[name](wf)
    return wf


def render(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    args = parser.parse_args(argv)
    specs = all_specs()
    stale = []
    for name in WORKFLOWS:
        wf = build(name, specs)
        for path, data in ((OUT_DIR / f"{name}.json", wf.ui()), (API_DIR / f"{name}.json", wf.api())):
            text = render(data)
            if args.check:
                if not path.is_file() or path.read_text() != text:
                    stale.append(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(f"out of date: {path.relative_to(ROOT)} (run python tools/make_workflows.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
