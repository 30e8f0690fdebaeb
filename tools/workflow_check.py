"""Check saved workflows against node specs, without ComfyUI. Standard library only.

    check_ui(ui, specs)         the UI graph: node types, inputs[], widgets_values, links, ids
    ui_to_api(ui, specs)        the prompt the frontend would queue for that graph
    check_api(ui, api, specs)   the API copy is exactly what the UI graph queues
    check_samples(api, names)   every bundled sample a workflow loads exists

Every function returns a list of readable problems (empty when the workflow is fine). The
conversion here is written from the format's rules, independently of `workflow_graph.py`, so
that a test comparing the two catches a mistake in either.
"""
from __future__ import annotations

from typing import Any

from workflow_spec import CONTROL_VALUES, NodeSpec, types_match, with_api_aliases

__all__ = ["check_ui", "ui_to_api", "check_api", "check_samples", "SAMPLE_NODE"]

SAMPLE_NODE = "FashionChameleonLoadSample"
TOP_KEYS = ("last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra", "version")
NODE_KEYS = ("id", "type", "pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties",
             "widgets_values")


def _where(node: dict) -> str:
    return f"node {node.get('id')} ({node.get('type')})"


def _check_widgets(node: dict, spec: NodeSpec) -> list[str]:
    values, layout = node.get("widgets_values"), spec.widget_layout
    if not isinstance(values, list) or len(values) != len(layout):
        names = [("control_after_generate" if w is None else w.name) for w in layout]
        return [f"{_where(node)}: widgets_values has {len(values) if isinstance(values, list) else values!r} "
                f"values, the node has {len(layout)} widgets {names}"]
    problems = []
    for value, widget in zip(values, layout):
        if widget is None:
            if value not in CONTROL_VALUES:
                problems.append(f"{_where(node)}: control_after_generate value {value!r} is not one of "
                                f"{list(CONTROL_VALUES)}")
        elif (problem := widget.problem(value)) is not None:
            problems.append(f"{_where(node)}: widget {widget.name!r}: {problem}")
    return problems


def _check_slots(node: dict, spec: NodeSpec) -> list[str]:
    problems = []
    known = {i.name: i for i in spec.inputs}
    names = [i.get("name") for i in node.get("inputs", [])]
    if len(set(names)) != len(names):
        problems.append(f"{_where(node)}: duplicate inputs {names}")
    for entry in node.get("inputs", []):
        item = known.get(entry.get("name"))
        if item is None:
            problems.append(f"{_where(node)}: input {entry.get('name')!r} is not an input of {spec.type}")
            continue
        if entry.get("type") != item.type:
            problems.append(f"{_where(node)}: input {item.name!r} has type {entry.get('type')!r}, expected {item.type}")
        if item.widget != ("widget" in entry) or (item.widget and entry["widget"] != {"name": item.name}):
            problems.append(f"{_where(node)}: input {item.name!r} must {'' if item.widget else 'not '}carry "
                            f"widget {{'name': {item.name!r}}}")
    linked = {e.get("name") for e in node.get("inputs", []) if e.get("link") is not None}
    for item in spec.sockets:
        if not item.optional and item.name not in linked:
            problems.append(f"{_where(node)}: required input {item.name!r} is not connected")
    outputs = node.get("outputs", [])
    want = list(spec.outputs)
    got = [(o.get("name"), o.get("type")) for o in outputs]
    if got != want[:len(got)] or len(got) != len(want):
        problems.append(f"{_where(node)}: outputs {got} differ from {spec.type}'s {want}")
    return problems


def _check_links(ui: dict, nodes: dict[int, dict], specs: dict[str, NodeSpec]) -> list[str]:
    problems, seen = [], set()
    for link in ui.get("links", []):
        if not (isinstance(link, list) and len(link) == 6):
            problems.append(f"link {link!r} is not [id, from, from_slot, to, to_slot, type]")
            continue
        lid, src, src_slot, dst, dst_slot, kind = link
        if lid in seen:
            problems.append(f"link id {lid} is used twice")
        seen.add(lid)
        if src not in nodes or dst not in nodes:
            problems.append(f"link {lid} joins missing node(s) {src} -> {dst}")
            continue
        outputs, inputs = nodes[src].get("outputs", []), nodes[dst].get("inputs", [])
        if not (0 <= src_slot < len(outputs)) or not (0 <= dst_slot < len(inputs)):
            problems.append(f"link {lid}: slot {src_slot} of {_where(nodes[src])} or slot {dst_slot} of "
                            f"{_where(nodes[dst])} does not exist")
            continue
        out, inp = outputs[src_slot], inputs[dst_slot]
        src_spec, dst_spec = specs.get(nodes[src]["type"]), specs.get(nodes[dst]["type"])
        out_type = src_spec.outputs[src_slot][1] if src_spec and src_slot < len(src_spec.outputs) else out.get("type")
        try:
            in_type = dst_spec.input(inp.get("name")).type if dst_spec else inp.get("type")
        except KeyError:
            in_type = inp.get("type")
        if kind != out_type or not types_match(out_type, in_type):
            problems.append(f"link {lid} ({kind}) joins {_where(nodes[src])} output {src_slot} ({out_type}) to "
                            f"{_where(nodes[dst])} input {inp.get('name')!r} ({in_type})")
        if inp.get("link") != lid:
            problems.append(f"link {lid}: {_where(nodes[dst])} input {inp.get('name')!r} names link {inp.get('link')}")
        if lid not in (out.get("links") or []):
            problems.append(f"link {lid}: {_where(nodes[src])} output {src_slot} does not list it")
    for node in nodes.values():
        for entry in node.get("inputs", []):
            if entry.get("link") is not None and entry["link"] not in seen:
                problems.append(f"{_where(node)}: input {entry.get('name')!r} names link {entry['link']}, "
                                f"which is not in links[]")
        for out in node.get("outputs", []):
            for lid in out.get("links") or []:
                if lid not in seen:
                    problems.append(f"{_where(node)}: output {out.get('name')!r} lists missing link {lid}")
    if seen and max(seen) > ui.get("last_link_id", -1):
        problems.append(f"last_link_id {ui.get('last_link_id')} is below link id {max(seen)}")
    return problems


def check_ui(ui: Any, specs: dict[str, NodeSpec]) -> list[str]:
    """Problems of a UI-format workflow against `specs` (node type -> NodeSpec)."""
    if not isinstance(ui, dict):
        return ["a UI workflow must be a JSON object"]
    problems = [f"missing top-level key {k!r}" for k in TOP_KEYS if k not in ui]
    if ui.get("version") != 0.4:
        problems.append(f"version is {ui.get('version')!r}, expected 0.4")
    nodes: dict[int, dict] = {}
    for node in ui.get("nodes", []):
        problems += [f"{_where(node)}: missing key {k!r}" for k in NODE_KEYS if k not in node]
        if node.get("id") in nodes:
            problems.append(f"node id {node.get('id')} is used twice")
        nodes[node.get("id")] = node
        spec = specs.get(node.get("type"))
        if spec is None:
            problems.append(f"{_where(node)}: unknown node type (neither one of the pack's nodes nor a listed "
                            f"core node)")
            continue
        if not spec.virtual and node.get("properties", {}).get("Node name for S&R") != spec.type:
            problems.append(f"{_where(node)}: properties['Node name for S&R'] must be {spec.type!r}")
        problems += _check_widgets(node, spec)
        if not spec.virtual:
            problems += _check_slots(node, spec)
    if nodes and max(nodes) > ui.get("last_node_id", -1):
        problems.append(f"last_node_id {ui.get('last_node_id')} is below node id {max(nodes)}")
    return problems + _check_links(ui, nodes, specs)


def ui_to_api(ui: dict, specs: dict[str, NodeSpec]) -> dict:
    """The prompt the frontend queues for `ui`: active, non-virtual nodes; widget values by name; links
    (and the alias names newer hosts read, `workflow_spec.API_ALIASES`)."""
    links = {link[0]: link for link in ui.get("links", [])}
    prompt = {}
    for node in ui.get("nodes", []):
        spec = specs[node["type"]]
        if spec.virtual or node.get("mode", 0) != 0:
            continue
        inputs: dict[str, Any] = {}
        for widget, value in zip(spec.widget_layout, node["widgets_values"]):
            if widget is not None:  # control_after_generate values stay in the browser
                inputs[widget.name] = value
        for entry in node.get("inputs", []):
            if entry.get("link") is not None:
                src = links[entry["link"]]
                inputs[entry["name"]] = [str(src[1]), src[2]]
        prompt[str(node["id"])] = {"inputs": with_api_aliases(node["type"], inputs), "class_type": node["type"],
                                   "_meta": {"title": node.get("title") or spec.display_name}}
    return prompt


def check_api(ui: dict, api: Any, specs: dict[str, NodeSpec]) -> list[str]:
    """Problems where the API copy differs from what the UI graph queues."""
    if not isinstance(api, dict):
        return ["an API workflow must be a JSON object"]
    want = ui_to_api(ui, specs)
    problems = [f"API copy lacks node {k} ({v['class_type']})" for k, v in want.items() if k not in api]
    problems += [f"API copy has node {k} that the UI graph does not queue" for k in api if k not in want]
    for key in sorted(set(want) & set(api), key=int):
        for field in ("class_type", "inputs", "_meta"):
            if api[key].get(field) != want[key][field]:
                problems.append(f"API node {key}: {field} is {api[key].get(field)!r}, the UI graph says "
                                f"{want[key][field]!r}")
    return problems


def check_samples(api: dict, available: set[str]) -> list[str]:
    """Problems where a workflow loads a bundled sample that is not in `available`."""
    return [f"API node {key}: sample {node['inputs'].get('image')!r} is not in workflows/samples"
            for key, node in api.items()
            if node.get("class_type") == SAMPLE_NODE and node.get("inputs", {}).get("image") not in available]
