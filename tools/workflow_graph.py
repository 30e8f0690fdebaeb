"""Build a workflow once and write it in both of ComfyUI's formats, so that the two cannot disagree.

    wf = Workflow("one_garment_stream", specs)
    model = wf.add("FashionChameleonLoadTeacher", at=(0, 0))
    gen = wf.add("FashionChameleonStreamGenerate", at=(1, 0), model=model.out("model"), frames=48, ...)
    wf.ui()    # the graph the frontend saves (version 0.4): nodes, links, positional widgets_values
    wf.api()   # the prompt POST /prompt takes: {"<id>": {"class_type", "inputs", "_meta"}}

An input given a `Port` (from `node.out(...)`) becomes a link, any other value a widget value;
widgets not given keep the node's default. Every value is checked against the node's spec as it
is added. Standard library only.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from workflow_spec import NodeSpec, types_match, with_api_aliases

__all__ = ["Port", "Node", "Workflow", "GRID"]

GRID = (400, 60)  # pixels per layout column, per layout row unit
NOTE_COLOR = {"color": "#432", "bgcolor": "#653"}  # the frontend's "yellow" note colours
_SOCKET_H, _WIDGET_H, _TITLE_H = 22, 26, 36
_UUID_NS = uuid.UUID("5b7e8a36-3c55-4d6e-9a0f-6c2f1e0d7a11")  # workflow ids: uuid5(namespace, name)


@dataclass(frozen=True)
class Port:
    """One output slot of a node, to link to an input."""

    node: int
    slot: int
    type: str


@dataclass
class Node:
    id: int
    spec: NodeSpec
    pos: tuple[float, float]
    size: tuple[float, float]
    title: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # every widget's value
    links: dict[str, Port] = field(default_factory=dict)  # input name -> the output linked to it

    def out(self, key: str | int = 0) -> Port:
        names = [name for name, _ in self.spec.outputs]
        slot = key if isinstance(key, int) else names.index(key) if key in names else -1
        if not 0 <= slot < len(names):
            raise KeyError(f"{self.spec.type} has no output {key!r}; its outputs are {names}")
        return Port(self.id, slot, self.spec.outputs[slot][1])


class Workflow:
    def __init__(self, name: str, specs: dict[str, NodeSpec]) -> None:
        self.name, self.specs, self.nodes = name, specs, []

    # ------------------------------------------------------------------ building
    def add(self, node_type: str, at: tuple[float, float], title: str | None = None, width: float = 340,
            shown: dict[str, Any] | None = None, **inputs: Any) -> Node:
        """A node at layout cell `at` (column, row unit); inputs by name: Ports link, other values set widgets.

        `shown`: values kept by widgets that are linked (what the widget shows if the link is removed).
        """
        if node_type not in self.specs:
            raise KeyError(f"{self.name}: unknown node type {node_type!r}")
        spec = self.specs[node_type]
        node = Node(len(self.nodes) + 1, spec, (at[0] * GRID[0], at[1] * GRID[1]), (width, _height(spec)), title)
        for name, value in inputs.items():
            item = spec.input(name)
            if isinstance(value, Port):
                if not types_match(value.type, item.type):
                    raise TypeError(f"{self.name}: {value.type} output linked to {node_type}.{name} ({item.type})")
                node.links[name] = value
            elif not item.widget:
                raise TypeError(f"{self.name}: {node_type}.{name} is a {item.type} socket; link an output to it")
            else:
                node.values[name] = value
        node.values.update(shown or {})
        for w in spec.widgets:
            node.values.setdefault(name := w.name, w.default if w.default is not None else _fallback(w))
            problem = w.problem(node.values[name])
            if problem:
                raise ValueError(f"{self.name}: {node_type}.{name}: {problem}")
        unlinked = [s.name for s in spec.sockets if not s.optional and s.name not in node.links]
        if unlinked:
            raise ValueError(f"{self.name}: {node_type} needs links to {unlinked}")
        self.nodes.append(node)
        return node

    def note(self, text: str, at: tuple[float, float], size: tuple[float, float] = (380, 220),
             title: str | None = None) -> Node:
        """A MarkdownNote (frontend-only: saved in the graph, never sent to the server)."""
        spec = self.specs["MarkdownNote"]
        node = Node(len(self.nodes) + 1, spec, (at[0] * GRID[0], at[1] * GRID[1]), size, title, {"text": text})
        self.nodes.append(node)
        return node

    # ------------------------------------------------------------------ UI format
    def _link_table(self) -> list[tuple[int, Node, str, Port]]:
        """(link id, target node, input name, source port), numbered in node order then the saved input order."""
        table = []
        for node in self.nodes:
            for item in node.spec.ui_inputs:
                if item.name in node.links:
                    table.append((len(table) + 1, node, item.name, node.links[item.name]))
        return table

    def _order(self) -> dict[int, int]:
        """Execution order (Kahn's algorithm, lowest id first), as the frontend stores in `order`."""
        deps = {n.id: {p.node for p in n.links.values()} for n in self.nodes}
        order: dict[int, int] = {}
        while len(order) < len(self.nodes):
            ready = min(i for i, d in deps.items() if i not in order and d <= set(order))
            order[ready] = len(order)
        return order

    def ui(self) -> dict:
        links = self._link_table()
        link_of = {(node.id, name): lid for lid, node, name, _ in links}
        order = self._order()
        nodes = []
        for node in self.nodes:
            out = {"id": node.id, "type": node.spec.type, "pos": list(node.pos), "size": list(node.size),
                   "flags": {}, "order": order[node.id], "mode": 0}
            if node.spec.virtual:
                out.update(inputs=[], outputs=[], properties={})
            else:
                out["inputs"] = [_ui_input(i, link_of.get((node.id, i.name))) for i in _saved_inputs(node)]
                out["outputs"] = [{"localized_name": name, "name": name, "type": kind, "slot_index": slot,
                                   "links": [lid for lid, _, _, p in links if (p.node, p.slot) == (node.id, slot)]}
                                  for slot, (name, kind) in enumerate(node.spec.outputs)]
                out["properties"] = {"Node name for S&R": node.spec.type}
            if node.title:
                out["title"] = node.title
            out["widgets_values"] = [("fixed" if w is None else node.values[w.name]) for w in node.spec.widget_layout]
            if node.spec.virtual:
                out.update(NOTE_COLOR)
            nodes.append(out)
        slot_of = {n.id: [i.name for i in _saved_inputs(n)] for n in self.nodes}
        return {
            "id": str(uuid.uuid5(_UUID_NS, self.name)), "revision": 0,
            "last_node_id": len(self.nodes), "last_link_id": len(links), "nodes": nodes,
            "links": [[lid, p.node, p.slot, node.id, slot_of[node.id].index(name), p.type]
                      for lid, node, name, p in links],
            "groups": [], "config": {}, "extra": {"ds": {"scale": 0.75, "offset": [40, 40]}}, "version": 0.4,
        }

    # ------------------------------------------------------------------ API format
    def api(self) -> dict:
        prompt = {}
        for node in self.nodes:
            if node.spec.virtual:
                continue
            inputs: dict[str, Any] = {w.name: node.values[w.name] for w in node.spec.widgets}
            inputs.update({name: [str(p.node), p.slot] for name, p in node.links.items()})
            prompt[str(node.id)] = {"inputs": with_api_aliases(node.spec.type, inputs), "class_type": node.spec.type,
                                    "_meta": {"title": node.title or node.spec.display_name}}
        return prompt


def _saved_inputs(node: Node) -> list:
    """The node's saved `inputs[]`: its spec's, with autogrow sockets only when linked, plus the first spare one."""
    spare = [i for i in node.spec.ui_inputs if i.grow and i.name not in node.links][:1]
    return [i for i in node.spec.ui_inputs if not i.grow or i.name in node.links or i in spare]


def _ui_input(item, link: int | None) -> dict:
    entry: dict[str, Any] = {"localized_name": item.name, "name": item.name}
    if "." in item.name:  # an autogrow socket: the frontend labels it with its own name
        entry["label"] = item.name.rsplit(".", 1)[1]
    if item.optional:
        entry["shape"] = 7  # the frontend's hollow circle for optional inputs
    entry["type"] = item.type
    if item.widget:
        entry["widget"] = {"name": item.name}
    entry["link"] = link
    return entry


def _fallback(widget) -> Any:
    if widget.type == "COMBO" and widget.options:
        return widget.options[0]
    if widget.type == "STRING":
        return ""
    raise ValueError(f"widget {widget.name!r} has no default; give it a value")


def _height(spec: NodeSpec) -> float:
    grow = any(i.grow for i in spec.sockets)  # autogrow: the linked sockets and one spare (two rows as drawn)
    rows = max(len([i for i in spec.sockets if not i.grow]) + grow, len(spec.outputs))
    multiline = sum(1 for w in spec.widgets if w.type == "STRING" and w.name in ("prompt", "text"))
    return _TITLE_H + rows * _SOCKET_H + len(spec.widget_layout) * _WIDGET_H + multiline * 60
