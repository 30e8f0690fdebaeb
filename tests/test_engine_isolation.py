"""The engine never imports ComfyUI or the node layer (statically, and at run time)."""
from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import fashionchameleon

FORBIDDEN = ("comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "server", "nodes",
             "execution", "latent_preview")
ENGINE = Path(fashionchameleon.__file__).parent
ROOT = ENGINE.parent


def _imports(path: Path, depth: int | None = None) -> list[tuple[str, int]]:
    """Absolute imports of a file, and relative ones that climb out of the engine (depth = dirs + 1)."""
    depth = len(path.relative_to(ENGINE).parts) if depth is None else depth
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and node.level > depth:
            out.append(("<relative import leaving the engine>", node.lineno))  # e.g. `from .. import nodes`
    return out


def test_no_engine_file_imports_the_host_or_the_nodes():
    bad = []
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) >= 10
    for path in files:
        for name, line in _imports(path):
            if name.split(".")[0] in FORBIDDEN or name.startswith("<"):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_scanner_catches_a_forbidden_import(tmp_path):
    """The static check has teeth: a planted import is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text("import folder_paths\nfrom comfy.model_management import get_torch_device\n"
                     "from ..nodes import x\nfrom .cache import KVCache\n")
    names = [n for n, _ in _imports(probe, depth=1)]
    assert names == ["folder_paths", "comfy.model_management", "<relative import leaving the engine>"]


def test_importing_every_engine_module_pulls_in_no_comfyui_module():
    modules = [m.name for m in pkgutil.walk_packages([str(ENGINE)], prefix="fashionchameleon.")
               if not m.name.endswith("__main__")]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = sorted(k for k in sys.modules if k.split('.')[0] in {FORBIDDEN!r})\n"
        "print('BAD', bad)\n"
        "raise SystemExit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(modules) >= 10


def _engine_targets(path: Path) -> list[tuple[str, int]]:
    """The engine modules a file imports, as dotted names under `fashionchameleon` (relative imports resolved)."""
    here = list(path.relative_to(ENGINE).with_suffix("").parts)
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
            out += [(".".join(target + [a.name]) if not node.module else ".".join(target), node.lineno)
                    for a in (node.names if not node.module else node.names[:1])]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fashionchameleon."):
            out.append((node.module.split(".", 1)[1], node.lineno))
    return out


def test_the_runtime_never_imports_the_lab():
    """What a ComfyUI user runs (runtime/) stands alone: training, metrics, bench and the world are the lab's."""
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in sorted((ENGINE / "runtime").rglob("*.py"))
           for name, line in _engine_targets(path) if name.split(".")[0] == "lab"]
    assert len(list((ENGINE / "runtime").rglob("*.py"))) >= 15
    assert not bad, "\n".join(bad)


def test_the_runtime_scanner_resolves_relative_imports(tmp_path):
    probe = ENGINE / "runtime" / "stream" / "probe_tmp.py"
    names = []
    try:
        probe.write_text("from ...lab.synthetic import make_sample\nfrom ..config import StreamConfig\n"
                         "from .cache import KVCache\n")
        names = [n for n, _ in _engine_targets(probe)]
    finally:
        probe.unlink()
    assert names == ["lab.synthetic", "runtime.config", "runtime.stream.cache"]


def test_the_nodes_enter_the_engine_through_its_front_door():
    """The node layer imports `fashionchameleon` itself, never one of its internal modules."""
    bad = []
    for path in sorted((ROOT / "nodes").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fashionchameleon."):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
    assert not bad, "\n".join(bad)


def _module_graph() -> dict[str, set[str]]:
    """Engine module -> the engine modules it imports at module level (TYPE_CHECKING blocks left out)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ENGINE.rglob("*.py")):
        parts = list(path.relative_to(ENGINE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = set()
        tree = ast.parse(path.read_text(), filename=str(path))
        top = [n for n in tree.body if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n.test))]
        probe = ast.Module(body=top, type_ignores=[])
        for target, _ in _engine_targets_of(path, probe):
            graph[name].add(target)
    known = set(graph)
    for name, targets in graph.items():  # `from .pkg import module` names a module: keep the longest known name
        graph[name] = {next((".".join(t.split(".")[:i]) for i in range(len(t.split(".")), 0, -1)
                             if ".".join(t.split(".")[:i]) in known), t) for t in targets} - {name}
    return graph


def _engine_targets_of(path: Path, tree: ast.Module) -> list[tuple[str, int]]:
    here = list(path.relative_to(ENGINE).with_suffix("").parts)
    package = here[:-1]
    out = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            module = base + (node.module.split(".") if node.module else [])
            out += [(".".join(module + [a.name]), node.lineno) for a in node.names]
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        stack.pop()
        return []

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return []


def test_the_engine_has_no_import_cycles():
    graph = _module_graph()
    assert len(graph) >= 40 and "runtime.stream.session" in graph
    assert "runtime.stream.sampler" in graph["runtime.stream.session"]
    assert not (cycle := _cycle(graph)), " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []
