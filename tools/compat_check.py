"""Which ComfyUI symbols the pack uses, with the keyword arguments it passes, checked against a ComfyUI source tree.

    python tools/compat_check.py --list                 # what the pack uses (no ComfyUI needed)
    python tools/compat_check.py ~/ComfyUI              # check a source tree: one row per symbol
    python tools/compat_check.py A B --names 0.8 0.38   # several trees side by side

Two sources of truth, kept apart:

  * `scan_pack(root)` reads the node layer (`__init__.py`, `nodes/*.py`) with `ast`: every name it
    imports from a host module (`comfy*`, `folder_paths`, `server`, ...), every attribute chain it
    reaches through one (`mm.load_models_gpu`, `io.Int.Input`), `getattr(<host module>, "name")`
    lookups, and the keyword arguments of each call. The core node types and their inputs used by
    the example workflows (`workflows/api/*.json`) are read too.
  * `HOST_SYMBOLS` is the list of host symbols the pack is known to use, with the keywords it may
    pass; `HOST_MEMBERS` the members of host objects the pack is handed (the VAE object, the Wan
    decoder), which no import shows. `unknown_uses()` is what the tests run: a symbol or keyword the
    scan finds that the list does not know fails CI, so the list (and this check) follow the code.

`check_tree(tree)` finds each listed symbol in a ComfyUI source tree (by parsing its files, never
importing them): the module file, then the class / function / assignment chain, following base
classes in the same file; a callable's parameters are its signature (a dataclass: its fields; a
class: its `__init__`) and every keyword the pack passes must be one of them (or the callable takes
`**kwargs`). Core nodes are found by their `node_id` in `comfy_extras/` (V3) or in `nodes.py` (V1).
Standard library only.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workflow_spec import API_ALIASES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HOST_MODULES = ("comfy", "comfy_api", "comfy_execution", "comfy_extras", "folder_paths", "server", "nodes",
                "latent_preview", "node_helpers")

# symbol -> the keyword arguments the pack may pass to it (empty: called without keywords, or not called)
HOST_SYMBOLS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "comfy.model_management.get_torch_device": (),
    "comfy.model_management.intermediate_device": (),
    "comfy.model_management.unet_dtype": ("device", "supported_dtypes"),
    "comfy.model_management.get_free_memory": (),
    "comfy.model_management.soft_empty_cache": (),
    "comfy.model_management.load_models_gpu": ("memory_required", "force_full_load"),
    "comfy.model_management.throw_exception_if_processing_interrupted": (),
    "comfy.utils.ProgressBar": (),
    "comfy.utils.ProgressBar.update_absolute": (),
    "comfy.cli_args.args": (),
    "comfy.cli_args.args.preview_method": (),  # command-line options: found as `--preview-method` in cli_args.py
    "comfy.cli_args.args.preview_size": (),
    "comfy.latent_formats": (),
    "folder_paths.models_dir": (),
    "folder_paths.folder_names_and_paths": (),
    "folder_paths.get_filename_list": (),
    "folder_paths.get_folder_paths": (),
    "folder_paths.get_full_path": (),
    "folder_paths.get_input_directory": (),
    "server.PromptServer": (),
    "server.PromptServer.instance": (),
    "comfy_api.latest.ComfyExtension": (),
    "comfy_api.latest.InputImpl.VideoFromComponents": (),
    "comfy_api.latest.Types.VideoComponents": ("images", "frame_rate", "audio"),
    "comfy_api.latest.io": (),
    "comfy_api.latest.io.ComfyNode": (),
    "comfy_api.latest.io.Schema": ("node_id", "display_name", "category", "description", "inputs", "outputs",
                                   "hidden", "is_output_node", "not_idempotent"),
    "comfy_api.latest.io.NodeOutput": ("ui",),
    "comfy_api.latest.io.Custom": (),
    "comfy_api.latest.io.Hidden.unique_id": (),
    "comfy_api.latest.io.Image.Input": ("optional", "tooltip"),
    "comfy_api.latest.io.Image.Output": ("display_name", "tooltip"),
    "comfy_api.latest.io.Vae.Input": ("optional", "tooltip"),
    "comfy_api.latest.io.Conditioning.Input": ("optional", "tooltip"),
    "comfy_api.latest.io.Int.Input": ("default", "min", "max", "control_after_generate", "tooltip"),
    "comfy_api.latest.io.Float.Output": ("display_name", "tooltip"),
    "comfy_api.latest.io.String.Input": ("multiline", "default", "optional", "tooltip"),
    "comfy_api.latest.io.String.Output": ("display_name", "tooltip"),
    "comfy_api.latest.io.Boolean.Input": ("default", "tooltip", "label_on", "label_off"),
    "comfy_api.latest.io.Combo.Input": ("options", "default", "tooltip"),
    "comfy_api.latest.io.Video.Output": ("display_name", "tooltip"),
}.items()}

# members of host objects the pack is handed (no import names them): symbol -> keywords it passes
HOST_MEMBERS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "comfy.sd.VAE.encode": (), "comfy.sd.VAE.decode": (), "comfy.sd.VAE.spacial_compression_encode": (),
    "comfy.sd.VAE.temporal_compression_decode": (), "comfy.sd.VAE.memory_used_decode": (),
    "comfy.ldm.wan.vae.WanVAE.conv2": (), "comfy.ldm.wan.vae.WanVAE.decoder": (),
    "comfy.ldm.wan.vae.Decoder3d.forward": ("feat_cache", "feat_idx"),
    "comfy.ldm.wan.vae2_2.Decoder3d.forward": ("feat_cache", "feat_idx", "first_chunk"),
    "comfy.latent_formats.Wan21": (), "comfy.latent_formats.Wan22": (),
}.items()}

# a module's definitions live in another file (re-exports): symbol prefix -> file under the ComfyUI root
FILES = {
    "comfy_api.latest.io": "comfy_api/latest/_io.py",
    "comfy_api.latest.InputImpl.VideoFromComponents": "comfy_api/latest/_input_impl/video_types.py",
    "comfy_api.latest.Types.VideoComponents": "comfy_api/latest/_util/video_types.py",
}
_EXPOSED = {"comfy_api.latest.InputImpl.VideoFromComponents", "comfy_api.latest.Types.VideoComponents"}
_CONTAINER_METHODS = ("get", "items", "keys", "values")


# ----------------------------------------------------------------------------------- what the pack uses
@dataclass
class Uses:
    symbols: dict[str, set[str]] = field(default_factory=dict)  # symbol -> keywords passed
    nodes: dict[str, set[str]] = field(default_factory=dict)  # core node type -> inputs set in workflows

    def add(self, symbol: str, keywords=()) -> None:
        self.symbols.setdefault(symbol, set()).update(keywords)


def _chain(node: ast.AST) -> list[str] | None:
    """`a.b.c` -> ['a', 'b', 'c'] (None for anything that is not a plain attribute chain)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _scan_file(path: Path, uses: Uses) -> None:
    tree = ast.parse(path.read_text(), str(path))
    alias: dict[str, str] = {}  # local name -> host symbol
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in HOST_MODULES:
                    alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                    uses.add(a.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in HOST_MODULES:
            for a in node.names:
                alias[a.asname or a.name] = f"{node.module}.{a.name}"
                uses.add(f"{node.module}.{a.name}")
    calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
    parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id in alias \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            uses.add(f"{alias[node.args[0].id]}.{node.args[1].value}")
            continue
        if not isinstance(node, (ast.Attribute, ast.Name)) or isinstance(parents.get(id(node)), ast.Attribute):
            continue  # only the outermost node of a chain
        parts = _chain(node)
        if not parts or parts[0] not in alias or (isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)):
            continue
        symbol = ".".join([alias[parts[0]], *parts[1:]])
        call = calls.get(id(node))
        uses.add(symbol, [k.arg for k in call.keywords if k.arg] if call else ())


def scan_pack(root: Path = ROOT) -> Uses:
    """Every host symbol the node layer uses (with the keywords of its calls), and the workflows' core nodes."""
    uses = Uses()
    for path in [root / "__init__.py", *sorted((root / "nodes").glob("*.py"))]:
        _scan_file(path, uses)
    for path in sorted((root / "workflows" / "api").glob("*.json")):
        for node in json.loads(path.read_text()).values():
            if not node["class_type"].startswith("FashionChameleon"):
                uses.nodes.setdefault(node["class_type"], set()).update(node.get("inputs", {}))
    # a container's own methods (`folder_names_and_paths.get`) are the container's use
    for symbol in [s for s in uses.symbols if s.rsplit(".", 1)[-1] in _CONTAINER_METHODS]:
        uses.add(symbol.rsplit(".", 1)[0], uses.symbols.pop(symbol))
    # module objects themselves (`import comfy.utils`) are implied by their members
    uses.symbols = {s: k for s, k in uses.symbols.items()
                    if not any(o.startswith(s + ".") for o in uses.symbols) or s in HOST_SYMBOLS}
    return uses


def unknown_uses(uses: Uses | None = None) -> list[str]:
    """Symbols or keywords the pack uses that HOST_SYMBOLS does not list (what CI fails on)."""
    uses = uses or scan_pack()
    out = []
    for symbol, keywords in sorted(uses.symbols.items()):
        if symbol not in HOST_SYMBOLS:
            out.append(f"{symbol}: not in HOST_SYMBOLS")
        elif keywords - HOST_SYMBOLS[symbol]:
            out.append(f"{symbol}: keyword(s) {sorted(keywords - HOST_SYMBOLS[symbol])} not in HOST_SYMBOLS")
    return out


# ----------------------------------------------------------------------------------- a ComfyUI source tree
class _File:
    def __init__(self, path: Path) -> None:
        self.tree = ast.parse(path.read_text(), str(path))
        self.top = {n.name: n for n in _module_level(self.tree.body)
                    if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}
        for n in _module_level(self.tree.body):
            for target in _assigned(n):
                self.top.setdefault(target, n)
        # `Class.attr = ...` anywhere in the file (e.g. a singleton set in __init__): (class name, attr) -> node
        self.set_attrs = {(t.value.id, t.attr): n for n in ast.walk(self.tree) if isinstance(n, ast.Assign)
                          for t in n.targets if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)}

    def member(self, owner: ast.AST | None, name: str, depth: int = 0):
        body = self.tree.body if owner is None else getattr(owner, "body", [])
        for n in body:
            if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name:
                return n
            if name in _assigned(n):
                return n
        if isinstance(owner, ast.ClassDef) and (owner.name, name) in self.set_attrs:
            return self.set_attrs[(owner.name, name)]
        if isinstance(owner, ast.ClassDef):  # an instance attribute: `self.<name> = ...` in one of its methods
            for n in ast.walk(owner):
                if isinstance(n, (ast.Assign, ast.AnnAssign)) and any(
                        isinstance(t, ast.Attribute) and t.attr == name and isinstance(t.value, ast.Name)
                        and t.value.id == "self" for t in (n.targets if isinstance(n, ast.Assign) else [n.target])):
                    return n
        if isinstance(owner, ast.ClassDef) and depth < 8:  # inherited, from a base class of this file
            for base in owner.bases:
                parts = _chain(base)
                found = self.resolve(parts, depth + 1) if parts else None
                hit = self.member(found, name, depth + 1) if isinstance(found, ast.ClassDef) else None
                if hit is not None:
                    return hit
        return None

    def resolve(self, parts: list[str], depth: int = 0):
        node = None
        for i, name in enumerate(parts):
            node = self.top.get(name) if i == 0 else self.member(node, name, depth)
            if node is None:
                return None
        return node


def _module_level(body: list) -> list:
    """Statements at module level, including those inside module-level if / try blocks."""
    out = []
    for n in body:
        out.append(n)
        if isinstance(n, (ast.If, ast.Try)):
            out += _module_level(n.body + n.orelse + [h for x in getattr(n, "handlers", []) for h in x.body])
    return out


def _assigned(n: ast.AST) -> list[str]:
    if isinstance(n, ast.Assign):
        return [t.id for t in n.targets if isinstance(t, ast.Name)]
    if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
        return [n.target.id]
    return []


def _params(file: _File, node: ast.AST) -> set[str] | None:
    """A callable's keyword names; None when it takes **kwargs or they cannot be read from this file."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = node.args
        return None if a.kwarg else {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)} - {"self", "cls"}
    if isinstance(node, ast.ClassDef):
        if any((_chain(d.func if isinstance(d, ast.Call) else d) or [""])[-1] == "dataclass"
               for d in node.decorator_list):
            names = {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
            for base in node.bases:  # dataclass fields of dataclass bases in this file
                parts = _chain(base)
                found = file.resolve(parts) if parts else None
                if isinstance(found, ast.ClassDef):
                    names |= _params(file, found) or set()
            return names
        init = file.member(node, "__init__")
        return _params(file, init) if init is not None else None
    return None


def _locate(tree: Path, symbol: str) -> tuple[Path, list[str]] | None:
    """The file that defines `symbol` and the chain inside it."""
    for prefix in sorted(FILES, key=len, reverse=True):
        if symbol == prefix or symbol.startswith(prefix + "."):
            rest = symbol[len(prefix) + 1:].split(".") if symbol != prefix else []
            name = prefix.rsplit(".", 1)[1]
            return tree / FILES[prefix], ([name] if prefix in _EXPOSED else []) + rest
    parts = symbol.split(".")
    for cut in range(len(parts), 0, -1):
        base = tree.joinpath(*parts[:cut])
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path, parts[cut:]
    return None


def check_symbol(tree: Path, symbol: str, keywords: frozenset[str], files: dict) -> str:
    """'ok' or what is missing, for one symbol in the tree at `tree`."""
    where = _locate(tree, symbol)
    if where is None:
        return "module missing"
    path, chain = where
    if not chain:
        return "ok"
    if symbol.startswith("comfy.cli_args.args."):  # an argparse option
        option = "--" + chain[-1].replace("_", "-")
        return "ok" if f'"{option}"' in path.read_text() else f"no option {option}"
    file = files.setdefault(path, _File(path))
    node = file.resolve(chain)
    if node is None:
        return f"missing ({'.'.join(chain)} in {path.relative_to(tree)})"
    if symbol in _EXPOSED:  # re-exported through comfy_api.latest: the class attribute must exist there
        init = files.setdefault(tree / "comfy_api/latest/__init__.py", _File(tree / "comfy_api/latest/__init__.py"))
        if init.resolve(symbol.split(".")[2:]) is None:
            return f"not exposed as {'.'.join(symbol.split('.')[2:])} in comfy_api/latest/__init__.py"
    if not keywords:
        return "ok"
    params = _params(file, node)
    if params is None:
        return "ok"
    missing = sorted(keywords - params)
    return "ok" if not missing else f"no keyword {', '.join(missing)}"


def _schema_inputs(call: ast.Call) -> list[str]:
    """Input ids (regex patterns) of an io.Schema(...) call: autogrow inputs as '<id>.<prefix>N'."""
    out = []
    inputs = next((k.value for k in call.keywords if k.arg == "inputs"), None)
    for item in getattr(inputs, "elts", []):
        if not isinstance(item, ast.Call) or not item.args or not isinstance(item.args[0], ast.Constant):
            continue
        name = re.escape(item.args[0].value)
        if (_chain(item.func) or [""])[-2:-1] == ["Autogrow"]:
            template = next((k.value for k in item.keywords if k.arg == "template"), None)
            prefix = next((k.value.value for k in getattr(template, "keywords", []) if k.arg == "prefix"), None)
            out.append(f"{name}\\.{re.escape(prefix)}\\d+" if prefix else f"{name}\\..+")
        else:
            out.append(name)
    return out


def core_node_inputs(tree: Path) -> dict[str, list[str]]:
    """node id -> input patterns, for the V3 nodes of comfy_extras/ and the V1 nodes of nodes.py."""
    found: dict[str, list[str]] = {}
    for path in sorted((tree / "comfy_extras").glob("*.py")):
        for call in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(call, ast.Call) and (_chain(call.func) or [""])[-1] == "Schema":
                node_id = next((k.value.value for k in call.keywords if k.arg == "node_id"
                                and isinstance(k.value, ast.Constant)), None)
                if node_id:
                    found[node_id] = _schema_inputs(call)
    nodes_py = tree / "nodes.py"
    if nodes_py.is_file():
        for cls in ast.parse(nodes_py.read_text()).body:
            if isinstance(cls, ast.ClassDef):
                for fn in cls.body:
                    if isinstance(fn, ast.FunctionDef) and fn.name == "INPUT_TYPES":
                        keys = [k.value for d in ast.walk(fn) if isinstance(d, ast.Dict)
                                for k in d.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
                        found.setdefault(cls.name, [re.escape(k) for k in keys])
    return found


def check_tree(tree: Path, uses: Uses | None = None) -> dict[str, str]:
    """row -> 'ok' or the problem, for every listed symbol, host member and workflow core node of the pack."""
    uses = uses or scan_pack()
    files: dict = {}
    rows = {}
    for symbol, keywords in sorted({**HOST_SYMBOLS, **HOST_MEMBERS}.items()):
        try:
            rows[symbol] = check_symbol(tree, symbol, keywords, files)
        except (OSError, SyntaxError) as exc:
            rows[symbol] = f"unreadable ({exc.__class__.__name__})"
    nodes = core_node_inputs(tree)
    for node, inputs in sorted(uses.nodes.items()):
        have = nodes.get(node)
        if have is None:
            rows[f"node {node}"] = "missing"
            continue
        aliases = API_ALIASES.get(node, {})  # an alias stands in for its input on hosts that lack one of the two
        missing = sorted(i for i in inputs if not any(re.fullmatch(p, i) or re.fullmatch(p, aliases.get(i, i))
                                                      for p in have))
        rows[f"node {node}({', '.join(sorted(inputs))})"] = "ok" if not missing else f"no input {', '.join(missing)}"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path, help="ComfyUI source trees (the folder holding nodes.py)")
    parser.add_argument("--names", nargs="*", help="column names for the trees (default: their paths)")
    parser.add_argument("--list", action="store_true", help="print what the pack uses and exit")
    args = parser.parse_args(argv)
    uses = scan_pack()
    unknown = unknown_uses(uses)
    if args.list or not args.trees:
        for symbol, keywords in sorted(uses.symbols.items()):
            print(f"{symbol}({', '.join(sorted(keywords))})" if keywords else symbol)
        for node, inputs in sorted(uses.nodes.items()):
            print(f"node {node}: {', '.join(sorted(inputs))}")
    for problem in unknown:
        print(f"UNKNOWN  {problem}", file=sys.stderr)
    if not args.trees:
        return 1 if unknown else 0
    names = args.names or [str(t) for t in args.trees]
    tables = [check_tree(t.expanduser(), uses) for t in args.trees]
    width = max(len(r) for r in tables[0])
    print(f"{'symbol':<{width}}  " + "  ".join(f"{n:<12}" for n in names))
    for row in tables[0]:
        print(f"{row:<{width}}  " + "  ".join(f"{t.get(row, '?'):<12}" for t in tables))
    failed = any(v != "ok" for t in tables for v in t.values())
    return 1 if failed or unknown else 0


if __name__ == "__main__":
    sys.exit(main())
