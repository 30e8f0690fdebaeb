"""tools/drift_curve.py on the shipped weights, a short stream: the table, the JSON and a stream override."""
from __future__ import annotations

import json
import sys

import torch

from fashionchameleon.runtime.embedded import WEIGHTS_DIR
from node_harness import ROOT

sys.path.insert(0, str(ROOT / "tools"))

import drift_curve  # noqa: E402


def test_the_tool_prints_a_curve_per_stream_and_writes_it(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "curve.json"
    assert drift_curve.main(["a=" + str(WEIGHTS_DIR), "--frames", "48", "--bin", "24", "--streams", "1",
                             "--stream", '{"reproject": false}', "--json", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| stream | 0–24 | 24–48 | after the first bin |" and len(table) == 9
    assert table[7].startswith("| a | motion / truth's |") and table[8].endswith(" striped |")
    saved = json.loads(out.read_text())
    (curve,) = saved["curves"]["a"]
    assert saved["stream"] == {"reproject": False} and len(curve["bins"]) == 2
    assert all(0.0 <= v <= 1.0 for v in curve["bins"]) and table[3].startswith("| **a mean** |")
    assert len(curve["motion"]) == len(curve["truth_motion"]) == len(curve["stripes"]) == 2
