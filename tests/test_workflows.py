"""The example workflows (workflows/*.json, workflows/api/*.json) and the sample-image node, without ComfyUI.

The workflows are checked against the node specs (the pack's, read from its V3 schemas with the
stand-in ComfyUI of comfy_stubs.py, and the listed core nodes), the API copies against an
independent conversion of the UI graphs, and the checker itself against deliberately broken
copies, so that these tests can fail. tools/run_workflows.py runs the same files on a real server.
"""
from __future__ import annotations

import copy
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from comfy_stubs import load_pack, stub_modules

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import make_workflows as mk  # noqa: E402
from workflow_check import check_api, check_samples, check_ui, ui_to_api  # noqa: E402
from workflow_spec import CORE_SPECS, types_match  # noqa: E402

WORKFLOWS = ROOT / "workflows"
SAMPLES = WORKFLOWS / "samples"
NAMES = ("one_garment_stream", "interactive_switching", "try_off_then_swap", "branch_two_garments", "live_wardrobe")
CORE_USED = {"SaveVideo", "CreateVideo", "BatchImagesNode", "PreviewImage", "MarkdownNote"}  # core nodes they may use
STREAM, SWAP, SAMPLE = "FashionChameleonStreamGenerate", "FashionChameleonSwapGarment", "FashionChameleonLoadSample"


@pytest.fixture(scope="module")
def specs():
    return mk.all_specs()


@pytest.fixture(scope="module")
def files() -> dict[str, tuple[dict, dict]]:
    return {name: (json.loads((WORKFLOWS / f"{name}.json").read_text()),
                   json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())) for name in NAMES}


def sample_names() -> set[str]:
    return set(json.loads((SAMPLES / "samples.json").read_text())["files"])


def of_type(ui: dict, node_type: str) -> list[dict]:
    return [n for n in ui["nodes"] if n["type"] == node_type]


def widget(ui: dict, node: dict, name: str, specs) -> object:
    layout = specs[node["type"]].widget_layout
    return node["widgets_values"][[w.name if w else None for w in layout].index(name)]


def source(ui: dict, node: dict, input_name: str) -> tuple[dict, int]:
    """The node and output slot linked to `node`'s input `input_name`."""
    lid = next(i["link"] for i in node["inputs"] if i["name"] == input_name)
    link = next(link for link in ui["links"] if link[0] == lid)
    return next(n for n in ui["nodes"] if n["id"] == link[1]), link[2]


# ----------------------------------------------------------------------------------- the files
def test_the_four_workflows_are_there_in_both_formats():
    assert {p.stem for p in WORKFLOWS.glob("*.json")} == set(NAMES)
    assert {p.stem for p in (WORKFLOWS / "api").glob("*.json")} == set(NAMES)


def test_every_node_is_the_packs_or_a_listed_core_node(files, specs):
    ours = {t for t in specs if t.startswith("FashionChameleon")}
    assert CORE_USED <= set(CORE_SPECS)
    for name, (ui, api) in files.items():
        types = {n["type"] for n in ui["nodes"]}
        assert types <= ours | CORE_USED, f"{name}: {types - ours - CORE_USED}"
        assert {n["class_type"] for n in api.values()} == types - {"MarkdownNote", "Note"}
        assert of_type(ui, "MarkdownNote"), f"{name} has no note explaining it"


@pytest.mark.parametrize("name", NAMES)
def test_each_workflow_passes_every_check(files, specs, name):
    ui, api = files[name]
    assert check_ui(ui, specs) == []
    assert check_api(ui, api, specs) == []
    assert check_samples(api, sample_names()) == []
    assert all((SAMPLES / n["inputs"]["image"]).is_file() for n in api.values() if n["class_type"] == SAMPLE)


def test_the_committed_files_are_what_the_generator_builds(capsys):
    assert mk.main(["--check"]) == 0, capsys.readouterr().err


def test_widget_values_line_up_with_the_schemas_including_the_hidden_seed_control(files, specs):
    ui, api = files["one_garment_stream"]
    (gen,) = of_type(ui, STREAM)
    # prompt, frames, seed + control, schedule (switch_frames, switch_slots), wardrobe_uploads
    assert gen["widgets_values"] == [mk.PROMPT, 48, 0, "fixed", "", "", ""]
    assert api[str(gen["id"])]["inputs"]["seed"] == 0 and "control_after_generate" not in api[str(gen["id"])]["inputs"]
    names = [i["name"] for i in gen["inputs"]]
    sockets = [i.name for i in specs[STREAM].sockets]
    assert names[:len(sockets)] == sockets and all("widget" in i for i in gen["inputs"][len(sockets):])
    (save,) = of_type(ui, "SaveVideo")  # the stream's VIDEO output (index 3) straight into core's Save Video
    assert source(ui, save, "video") == (gen, 3) and widget(ui, save, "format", specs) == "mp4"
    assert api[str(save["id"])]["inputs"]["video"] == [str(gen["id"]), 3]


def test_joined_segments_are_batched_then_made_a_video_at_the_streams_frame_rate(files, specs):
    ui, api = files["interactive_switching"]
    gens, (save,) = of_type(ui, STREAM), of_type(ui, "SaveVideo")
    video, _ = source(ui, save, "video")
    assert video["type"] == "CreateVideo" and source(ui, video, "fps") == (gens[0], 2)
    fps = next(i for i in video["inputs"] if i["name"] == "fps")
    assert fps["widget"] == {"name": "fps"} and widget(ui, video, "fps", specs) == 16.0  # shown if unlinked
    joined, _ = source(ui, video, "images")
    assert joined["type"] == "BatchImagesNode"
    # the autogrow sockets: the three segments in order, then one spare, as the frontend saves them
    assert [i["name"] for i in joined["inputs"]] == [f"images.image{i}" for i in range(4)]
    assert [source(ui, joined, f"images.image{i}") for i in range(3)] == [(g, 0) for g in gens]
    assert api[str(joined["id"])]["inputs"] == {f"images.image{i}": [str(g["id"]), 0] for i, g in enumerate(gens)}


# ----------------------------------------------------------------------------------- what each one shows
def test_interactive_switching_switches_a_full_outfit_then_the_top_only(files, specs):
    ui, _ = files["interactive_switching"]
    gens, swaps = of_type(ui, STREAM), of_type(ui, SWAP)
    assert len(gens) == 3 and [widget(ui, s, "slot", specs) for s in swaps] == ["upper", "lower", "upper"]
    garments = [widget(ui, source(ui, s, "garment")[0], "image", specs) for s in swaps]
    assert garments == ["garment2_upper.png", "garment2_lower.png", "garment3_upper.png"]
    assert source(ui, swaps[1], "stream")[0] is swaps[0]  # both halves of outfit 2 switch at one boundary
    assert source(ui, gens[1], "stream")[0] is swaps[1] and source(ui, gens[2], "stream")[0] is swaps[2]
    views = source(ui, gens[0], "reference")[0]
    assert views["type"] == "BatchImagesNode"  # front and back views of the person


def test_try_off_feeds_its_garment_into_a_swap(files, specs):
    ui, _ = files["try_off_then_swap"]
    (off,), (swap,) = of_type(ui, "FashionChameleonTryOff"), of_type(ui, SWAP)
    assert source(ui, swap, "garment") == (off, 0) and widget(ui, swap, "slot", specs) == "upper"
    assert widget(ui, source(ui, off, "person")[0], "image", specs) == "tryoff_person.png"


def test_branches_start_from_the_same_stream_and_are_both_saved(files, specs):
    ui, _ = files["branch_two_garments"]
    swaps, saves = of_type(ui, SWAP), of_type(ui, "SaveVideo")
    assert len(swaps) == 2 and source(ui, swaps[0], "stream") == source(ui, swaps[1], "stream")
    assert {widget(ui, source(ui, s, "garment")[0], "image", specs) for s in swaps} == {
        "garment2_upper.png", "garment3_upper.png"}
    prefixes = {widget(ui, s, "filename_prefix", specs) for s in saves}
    assert len(saves) == 2 and len(prefixes) == 2


# ----------------------------------------------------------------------------------- the checker can fail
def _node(ui: dict, node_type: str, index: int = 0) -> dict:
    return of_type(ui, node_type)[index]


def _link(ui: dict, out_type: str) -> list:
    return next(link for link in ui["links"] if link[5] == out_type)


def _drop_value(ui, api):
    _node(ui, STREAM)["widgets_values"].pop()


def _control_swapped(ui, api):
    values = _node(ui, STREAM)["widgets_values"]
    values[2], values[3] = values[3], values[2]  # seed and its hidden control value in the wrong order


def _frames_zero(ui, api):
    _node(ui, STREAM)["widgets_values"][1] = 0


def _bad_slot(ui, api):
    _node(ui, SWAP)["widgets_values"][0] = "middle"


def _foreign_node(ui, api):
    ui["nodes"][0]["type"] = "VHS_VideoCombine"


def _link_type(ui, api):
    _link(ui, "FC_STREAM")[5] = "IMAGE"


def _wrong_slot(ui, api):  # the model link moved onto the 'reference' socket
    link = _link(ui, "FC_MODEL")
    target = next(n for n in ui["nodes"] if n["id"] == link[3])
    names = [i["name"] for i in target["inputs"]]
    target["inputs"][names.index("model")]["link"] = None
    target["inputs"][names.index("reference")]["link"] = link[0]
    link[4] = names.index("reference")


def _unlinked_model(ui, api):
    node = _node(ui, STREAM)
    entry = next(i for i in node["inputs"] if i["name"] == "model")
    ui["links"] = [link for link in ui["links"] if link[0] != entry["link"]]
    entry["link"] = None


def _missing_sample_ui(ui, api):
    _node(ui, SAMPLE)["widgets_values"][0] = "garment9_upper.png"


def _old_version(ui, api):
    ui["version"] = 0.3


def _input_renamed(ui, api):
    _node(ui, STREAM)["inputs"][0]["name"] = "models"


MUTATIONS_UI = {
    "a widget value missing": (_drop_value, "widgets_values has 6 values"),
    "seed control out of place": (_control_swapped, "control_after_generate value 0"),
    "a value below its minimum": (_frames_zero, "below the minimum 1"),
    "a combo value not offered": (_bad_slot, "'middle' is not one of"),
    "a node of another pack": (_foreign_node, "unknown node type"),
    "a link of the wrong type": (_link_type, "joins"),
    "a link on the wrong socket": (_wrong_slot, "input 'reference' (IMAGE)"),
    "a required socket unconnected": (_unlinked_model, "required input 'model' is not connected"),
    "a sample that does not exist": (_missing_sample_ui, "'garment9_upper.png' is not one of"),
    "an old format version": (_old_version, "version is 0.3"),
    "an input the node does not have": (_input_renamed, "'models' is not an input"),
}


@pytest.mark.parametrize("case", MUTATIONS_UI)
def test_the_ui_checker_reports_a_broken_copy(files, specs, case):
    mutate, expected = MUTATIONS_UI[case]
    ui, api = copy.deepcopy(files["interactive_switching"])
    assert check_ui(ui, specs) == []
    mutate(ui, api)
    problems = check_ui(ui, specs)
    assert any(expected in p for p in problems), problems


def test_the_api_checks_report_disagreement_and_missing_samples(files, specs):
    ui, api = copy.deepcopy(files["try_off_then_swap"])
    gen = str(_node(ui, STREAM)["id"])
    api[gen]["inputs"]["frames"] = 24
    assert any(f"API node {gen}: inputs" in p for p in check_api(ui, api, specs))
    del api[gen]
    assert any(f"lacks node {gen}" in p for p in check_api(ui, api, specs))
    ui2, api2 = copy.deepcopy(files["try_off_then_swap"])
    sample = str(_node(ui2, SAMPLE)["id"])
    api2[sample]["inputs"]["image"] = "nobody.png"
    assert check_samples(api2, sample_names()) == [f"API node {sample}: sample 'nobody.png' is not in workflows/samples"]
    assert ui_to_api(ui2, specs)[sample]["inputs"]["image"] != "nobody.png"


def test_muted_and_frontend_only_nodes_are_not_queued(files, specs):
    ui, _ = copy.deepcopy(files["one_garment_stream"])
    (save,) = of_type(ui, "SaveVideo")
    save["mode"] = 2
    prompt = ui_to_api(ui, specs)
    assert str(save["id"]) not in prompt and not any(n["class_type"] == "MarkdownNote" for n in prompt.values())


def test_link_types_follow_comfyui_matching_rules():
    assert types_match("IMAGE", "IMAGE") and types_match("FLOAT", "*") and types_match("IMAGE", "IMAGE,MASK")
    assert not types_match("FC_STREAM", "IMAGE") and not types_match("FLOAT", "INT")


# ----------------------------------------------------------------------------------- the sample-image node
@pytest.fixture(scope="module")
def sample_node(tmp_path_factory):
    """nodes/load_sample.py, imported through the pack as ComfyUI imports it (stand-in ComfyUI)."""
    name = "fashionchameleon_workflow_tests"
    with pytest.MonkeyPatch.context() as mp:
        for key, module in stub_modules(tmp_path_factory.mktemp("models")).items():
            mp.setitem(sys.modules, key, module)
        load_pack(ROOT, name)
        yield importlib.import_module(f"{name}.nodes.load_sample")
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def test_the_sample_combo_lists_every_bundled_png(sample_node):
    (image,) = sample_node.LoadSample.define_schema().inputs
    assert image.options == sorted(sample_names()) and image.default == "reference.png"


def test_a_sample_loads_as_an_rgb_image_batch_of_one(sample_node):
    from PIL import Image

    with torch.inference_mode():
        (out,) = sample_node.LoadSample.execute(image="garment2_upper.png").args
    with Image.open(SAMPLES / "garment2_upper.png") as f:
        want = torch.from_numpy(np.asarray(f.convert("RGB"), dtype=np.float32) / 255.0)
    assert out.shape == (1, *want.shape) and want.shape[2] == 3
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.allclose(out[0], want, atol=1e-6) and out.min() >= 0 and out.max() <= 1


def test_sample_fingerprints_follow_the_file_and_bad_names_are_refused(sample_node):
    fp = sample_node.LoadSample.fingerprint_inputs
    assert fp(image="reference.png") == fp(image="reference.png") != fp(image="reference_back.png")
    for bad in ("nobody.png", "../README.md", "samples.json"):
        with pytest.raises(FileNotFoundError, match="bundled samples"):
            sample_node.LoadSample.execute(image=bad)


def test_the_live_wardrobe_streams_outfit_1_with_every_bundled_garment_in_the_wardrobe(files, specs):
    ui, api = files["live_wardrobe"]
    (gen,) = of_type(ui, STREAM)
    wardrobe, _ = source(ui, gen, "wardrobe")
    assert wardrobe["type"] == "BatchImagesNode"
    items = [api[link[0]]["inputs"]["image"] for link in api[str(wardrobe["id"])]["inputs"].values()]
    assert items == list(mk.WARDROBE) and set(items) == {f for f in sample_names() if f.startswith("garment")}
    assert api[str(gen["id"])]["inputs"]["frames"] == mk.LIVE_FRAMES and api[str(gen["id"])]["inputs"]["seed"] == 0
    (save,) = of_type(ui, "SaveVideo")
    assert source(ui, save, "video") == (gen, 3)
