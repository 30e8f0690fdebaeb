"""tools/compat_check.py without ComfyUI: the pack uses only listed host symbols, and both halves of the check can fail."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import compat_check as cc  # noqa: E402


def test_every_host_symbol_and_keyword_the_pack_uses_is_listed():
    uses = cc.scan_pack()
    assert cc.unknown_uses(uses) == []
    # the scan sees through aliases and calls: what the stream node and the VAE codec pass
    assert uses.symbols["comfy_api.latest.io.Int.Input"] >= {"default", "min", "max", "tooltip"}
    assert uses.symbols["comfy.model_management.load_models_gpu"] == {"memory_required", "force_full_load"}
    assert "comfy.model_management.get_free_memory" in uses.symbols  # a getattr(mm, "...") lookup
    assert uses.nodes["SaveVideo"] >= {"video", "filename_prefix"} and "BatchImagesNode" in uses.nodes


def test_a_new_host_symbol_or_keyword_fails_the_check(tmp_path):
    (tmp_path / "nodes").mkdir()
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "nodes" / "new.py").write_text(
        "import comfy.model_management as mm\nfrom comfy_api.latest import io\n"
        "mm.brand_new_call()\nio.Int.Input('x', default=1, step_size=2)\nmm.load_models_gpu([], memory_required=0)\n")
    problems = cc.unknown_uses(cc.scan_pack(tmp_path))
    assert problems == ["comfy.model_management.brand_new_call: not in HOST_SYMBOLS",
                        "comfy_api.latest.io.Int.Input: keyword(s) ['step_size'] not in HOST_SYMBOLS"]


def test_a_tree_that_lacks_a_symbol_a_keyword_or_a_node_input_is_reported(tmp_path):
    tree = tmp_path / "ComfyUI"
    (tree / "comfy").mkdir(parents=True)
    (tree / "comfy_extras").mkdir()
    (tree / "comfy" / "model_management.py").write_text(
        "def load_models_gpu(models, memory_required=0):\n    pass\n"
        "if True:\n    def get_torch_device():\n        pass\n")
    (tree / "comfy_extras" / "nodes_video.py").write_text(
        "from comfy_api.latest import io\n"
        "def define_schema():\n    return io.Schema(node_id='SaveVideo', inputs=[io.Video.Input('video')])\n")
    rows = cc.check_tree(tree, cc.Uses(nodes={"SaveVideo": {"video", "filename_prefix"}}))
    assert rows["comfy.model_management.load_models_gpu"] == "no keyword force_full_load"
    assert rows["comfy.model_management.get_torch_device"] == "ok"
    assert rows["comfy.model_management.unet_dtype"].startswith("missing")
    assert rows["comfy.utils.ProgressBar"] == "module missing"
    assert rows["node SaveVideo(filename_prefix, video)"] == "no input filename_prefix"
