"""What a workflow may say about a node: its inputs in the frontend's order, widget limits, outputs.

Standard library only, so that `run_workflows.py` can use it against a live server. A `NodeSpec`
comes from one of three places:

    spec_from_schema(schema)          a V3 `io.Schema` (the pack's nodes, real or stubbed ComfyUI)
    spec_from_object_info(name, info) one entry of a server's GET /object_info
    CORE_SPECS                        the core nodes the example workflows use, for checks without ComfyUI

The order rules follow ComfyUI's frontend (1.35, shipped with ComfyUI 0.8): a node's inputs are
its required inputs, then its optional ones, each in declared order (an autogrow input is its
template's sockets `<input>.<prefix><i>`); the saved `inputs[]` lists the sockets first (of an
autogrow input the linked ones and one spare) and then one entry per widget; `widgets_values` holds the widgets in that
order, with one hidden "control after generate" value right after an INT that asks for one or
is named seed/noise_seed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable

__all__ = ["InputSpec", "NodeSpec", "WIDGET_TYPES", "CONTROL_VALUES", "FRONTEND_ONLY", "CORE_SPECS",
           "spec_from_schema", "spec_from_object_info", "specs_from_object_info", "types_match"]

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
SEED_NAMES = ("seed", "noise_seed")  # the frontend adds a control widget after these INTs as well
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
FRONTEND_ONLY = ("Note", "MarkdownNote")  # virtual nodes: in the UI format only, never in a prompt
AUTOGROW = "COMFY_AUTOGROW_V3"  # the /object_info type of a V3 io.Autogrow input


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str  # the socket type: IMAGE, FC_STREAM, INT, COMBO, ...
    optional: bool = False
    widget: bool = False  # shown as a widget (its value is in widgets_values unless linked)
    default: Any = None
    options: tuple = ()  # COMBO choices
    min: float | None = None
    max: float | None = None
    control: bool = False  # a hidden "control after generate" value follows this widget
    grow: bool = False  # an autogrow socket beyond the template's minimum: saved only when linked, plus one spare

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable for this widget (None when it is)."""
        if self.type == "COMBO":
            return None if value in self.options else f"{value!r} is not one of {list(self.options)}"
        kinds = {"INT": (int,), "FLOAT": (int, float), "STRING": (str,), "BOOLEAN": (bool,)}[self.type]
        if isinstance(value, bool) != (self.type == "BOOLEAN") or not isinstance(value, kinds):
            return f"{value!r} is not a {self.type}"
        if self.min is not None and value < self.min:
            return f"{value!r} is below the minimum {self.min}"
        if self.max is not None and value > self.max:
            return f"{value!r} is above the maximum {self.max}"
        return None


@dataclass(frozen=True)
class NodeSpec:
    type: str
    inputs: tuple[InputSpec, ...] = ()  # required inputs, then optional ones
    outputs: tuple[tuple[str, str], ...] = ()  # (name, type) per output slot
    display_name: str = ""
    output_node: bool = False
    virtual: bool = False  # frontend-only (Note, MarkdownNote)

    @property
    def sockets(self) -> tuple[InputSpec, ...]:
        return tuple(i for i in self.inputs if not i.widget)

    @property
    def widgets(self) -> tuple[InputSpec, ...]:
        return tuple(i for i in self.inputs if i.widget)

    @property
    def ui_inputs(self) -> tuple[InputSpec, ...]:
        """The saved `inputs[]` order: sockets, then one entry per widget."""
        return self.sockets + self.widgets

    @property
    def widget_layout(self) -> tuple[InputSpec | None, ...]:
        """One entry per `widgets_values` item: the widget, or None for a hidden control value."""
        out: list[InputSpec | None] = []
        for w in self.widgets:
            out += [w, None] if w.control else [w]
        return tuple(out)

    def input(self, name: str) -> InputSpec:
        for i in self.inputs:
            if i.name == name:
                return i
        raise KeyError(f"{self.type} has no input {name!r}; its inputs are {[i.name for i in self.inputs]}")


def types_match(output_type: str, input_type: str) -> bool:
    """As ComfyUI's validation: equal types, "*" on either side, or a comma union containing the type."""
    if "*" in (output_type, input_type) or output_type == input_type:
        return True
    return bool(set(output_type.split(",")) & set(input_type.split(",")))


def _ordered(inputs: Iterable[InputSpec]) -> tuple[InputSpec, ...]:
    inputs = list(inputs)
    return tuple([i for i in inputs if not i.optional] + [i for i in inputs if i.optional])


# ----------------------------------------------------------------------------------- from a V3 schema
def _input_from_v3(item: Any) -> InputSpec:
    kind = item.io_type
    widget = kind in WIDGET_TYPES and not getattr(item, "force_input", None)
    options = tuple(getattr(item, "options", None) or ())
    control = bool(getattr(item, "control_after_generate", None)) or (kind == "INT" and item.id in SEED_NAMES)
    return InputSpec(item.id, kind, bool(item.optional), widget, getattr(item, "default", None), options,
                     getattr(item, "min", None), getattr(item, "max", None), widget and control)


def spec_from_schema(schema: Any) -> NodeSpec:
    """A V3 `io.Schema` (ComfyUI's, or the test stand-in's) -> NodeSpec."""
    outputs = tuple((o.display_name or o.id or o.io_type, o.io_type) for o in schema.outputs)
    return NodeSpec(schema.node_id, _ordered(_input_from_v3(i) for i in schema.inputs), outputs,
                    schema.display_name or schema.node_id, bool(schema.is_output_node))


# ----------------------------------------------------------------------------------- from /object_info
def _input_from_info(name: str, entry: list, optional: bool) -> InputSpec:
    kind, opts = entry[0], (entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {})
    options: tuple = ()
    if isinstance(kind, list):  # a V1 combo: the list of choices is the type
        kind, options = "COMBO", tuple(kind)
    elif kind == "COMBO":
        options = tuple(opts.get("options", ()))
    widget = kind in WIDGET_TYPES and not opts.get("forceInput")
    control = bool(opts.get("control_after_generate")) or (kind == "INT" and name in SEED_NAMES)
    return InputSpec(name, kind, optional, widget, opts.get("default"), options, opts.get("min"), opts.get("max"),
                     widget and control)


def _inputs_from_info(name: str, entry: list, optional: bool) -> list[InputSpec]:
    """One /object_info input -> its sockets: one, or for an autogrow input (V3 `io.Autogrow`, e.g. core's
    BatchImagesNode) one per name of its template, `<input>.<prefix><i>`, the first `min` required."""
    if entry[0] != AUTOGROW:
        return [_input_from_info(name, entry, optional)]
    template = entry[1]["template"]
    (socket,) = [e for group in template["input"].values() for e in group.values()]
    names = template.get("names") or [f"{template['prefix']}{i}" for i in range(template["max"])]
    return [replace(_input_from_info(f"{name}.{n}", socket, optional or i >= template["min"]),
                    grow=i >= template["min"]) for i, n in enumerate(names)]


def spec_from_object_info(name: str, info: dict) -> NodeSpec:
    """One node of GET /object_info -> NodeSpec (hidden inputs are left out: they are never in a workflow)."""
    inputs, order = info.get("input", {}), info.get("input_order", {})
    specs = []
    for group, optional in (("required", False), ("optional", True)):
        entries = inputs.get(group, {}) or {}
        for key in order.get(group, list(entries)):
            specs.extend(_inputs_from_info(key, entries[key], optional))
    outputs = tuple(zip(info.get("output_name") or info.get("output", []), info.get("output", [])))
    return NodeSpec(name, tuple(specs), outputs, info.get("display_name") or name, bool(info.get("output_node")))


def specs_from_object_info(object_info: dict) -> dict[str, NodeSpec]:
    return {name: spec_from_object_info(name, info) for name, info in object_info.items()}


# ----------------------------------------------------------------------------------- core nodes used
# The entries of ComfyUI 0.8.0's GET /object_info for the core nodes the example workflows use
# (tooltips left out). `run_workflows.py --check-specs` compares them with a live server.
CORE_OBJECT_INFO: dict[str, dict] = {
    "BatchImagesNode": {
        "input": {"required": {"images": [AUTOGROW, {"template": {"input": {"required": {"image": ["IMAGE", {}]}},
                                                               "prefix": "image", "min": 2, "max": 50}}]}},
        "input_order": {"required": ["images"]},
        "output": ["IMAGE"], "output_name": ["IMAGE"], "output_node": False, "display_name": "Batch Images"},
    "CreateVideo": {
        "input": {"required": {"images": ["IMAGE", {}],
                               "fps": ["FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0, "step": 1.0}]},
                  "optional": {"audio": ["AUDIO", {}]}},
        "input_order": {"required": ["images", "fps"], "optional": ["audio"]},
        "output": ["VIDEO"], "output_name": ["VIDEO"], "output_node": False, "display_name": "Create Video"},
    "SaveVideo": {
        "input": {"required": {
            "video": ["VIDEO", {}],
            "filename_prefix": ["STRING", {"default": "video/ComfyUI", "multiline": False}],
            "format": ["COMBO", {"default": "auto", "multiselect": False, "options": ["auto", "mp4"]}],
            "codec": ["COMBO", {"default": "auto", "multiselect": False, "options": ["auto", "h264"]}]}},
        "input_order": {"required": ["video", "filename_prefix", "format", "codec"]},
        "output": [], "output_name": [], "output_node": True, "display_name": "Save Video"},
    "PreviewImage": {
        "input": {"required": {"images": ["IMAGE"]}},
        "input_order": {"required": ["images"]},
        "output": [], "output_name": [], "output_node": True, "display_name": "Preview Image"},
}

# Widget values that newer hosts read under another name, written under both in the API files (0.8.0 ignores
# inputs its schema does not name). ComfyUI 0.38's Save Video nests the codec choice in its `format`
# option, so an API prompt names it `format.codec`; 0.8.0's has a top-level `codec` combo.
API_ALIASES: dict[str, dict[str, str]] = {"SaveVideo": {"format.codec": "codec"}}


def with_api_aliases(class_type: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """`inputs` plus the alias names of `API_ALIASES` that `class_type` has, with the same values."""
    aliases = API_ALIASES.get(class_type, {})
    return {**inputs, **{alias: inputs[name] for alias, name in aliases.items() if name in inputs}}

_NOTE_TEXT = InputSpec("text", "STRING", widget=True, default="")
CORE_SPECS: dict[str, NodeSpec] = {
    **specs_from_object_info(CORE_OBJECT_INFO),
    **{name: NodeSpec(name, (_NOTE_TEXT,), display_name=name, virtual=True) for name in FRONTEND_ONLY},
}
