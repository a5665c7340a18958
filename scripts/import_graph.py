"""The project's own import graph, measured: file-level circles, function-local imports, big rooms.

    python scripts/import_graph.py            # a summary (what the house issue counts)
    python scripts/import_graph.py --cycles   # also every circle's files

Only imports of the project's own packages count. A module-level import (also inside a module-level
`if`/`try`, but not under `if TYPE_CHECKING:`) is an edge of the file graph; an import inside a function
is "function-local": it hides a circle or defers an optional dependency, and the count says how often
the code needed that. Circles are strongly connected components of the file graph (Tarjan).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hub", "evals", "leaderboards", "demoworld", "benchmarks", "core", "store", "arena", "boards", "ui")


@dataclass
class ModuleInfo:
    name: str
    path: Path
    top_imports: set[str] = field(default_factory=set)
    local_imports: set[str] = field(default_factory=set)  # modules a function-local import reaches
    local_statements: int = 0  # function-local import statements of own modules
    longest_function: tuple[int, str] = (0, "")
    lines: int = 0


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def own_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        base = ROOT / package
        if base.is_dir():
            for path in sorted(base.rglob("*.py")):
                found[module_name(path)] = path
    app = ROOT / "app.py"
    if app.exists():
        found["app"] = app
    return found


def resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The own module a dotted import lands in (the longest known prefix), or None for a library."""
    parts = target.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def absolute(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_names(node: ast.AST, current: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = absolute(node, current, is_package)
        # `from pkg import mod` is an edge to pkg.mod when that is a module, else to pkg itself.
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    return []


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def read_module(name: str, path: Path, modules: dict[str, Path]) -> ModuleInfo:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    info = ModuleInfo(name=name, path=path, lines=source.count("\n") + 1)
    is_package = path.name == "__init__.py"

    def targets(node: ast.AST) -> set[str]:
        hits = {resolve(t, modules) for t in imported_names(node, name, is_package, modules)}
        # Importing a.b.c first runs a/__init__ and a/b/__init__: those are edges too.
        with_packages = set()
        for hit in filter(None, hits):
            parts = hit.split(".")
            with_packages |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules.keys()
        # A package's own submodules importing it back is how packages work, not a circle.
        return {h for h in with_packages if h != name and not name.startswith(h + ".")}

    def walk_top(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                info.top_imports |= targets(stmt)
            elif isinstance(stmt, ast.If) and is_type_checking(stmt):
                continue
            elif isinstance(stmt, (ast.If, ast.Try, ast.With)):
                for block in ("body", "orelse", "finalbody"):
                    walk_top(getattr(stmt, block, []) or [])
                for handler in getattr(stmt, "handlers", []) or []:
                    walk_top(handler.body)
            elif isinstance(stmt, ast.ClassDef):
                walk_top(stmt.body)

    walk_top(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > info.longest_function[0]:
                info.longest_function = (length, node.name)
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)) and targets(inner):
                    info.local_imports |= targets(inner)
                    info.local_statements += 1
    return info


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def measure() -> dict:
    modules = own_modules()
    infos = {name: read_module(name, path, modules) for name, path in modules.items()}
    graph = {name: info.top_imports for name, info in infos.items()}
    cycles = strongly_connected(graph)
    # The circles a function-local import hides: the same graph with those imports as edges too.
    full_graph = {name: info.top_imports | info.local_imports for name, info in infos.items()}
    hidden_cycles = strongly_connected(full_graph)
    local = Counter()
    for info in infos.values():
        local[info.name.split(".")[0]] += info.local_statements
    largest = max(infos.values(), key=lambda i: i.lines)
    longest = max(infos.values(), key=lambda i: i.longest_function[0])
    return {
        "modules": len(infos),
        "cycles": cycles,
        "hidden_cycles": hidden_cycles,
        "function_local_imports": dict(sorted(local.items())),
        "largest_file": (largest.lines, str(largest.path.relative_to(ROOT))),
        "longest_function": (longest.longest_function[0],
                             f"{longest.path.relative_to(ROOT)}:{longest.longest_function[1]}"),
        "graph": graph,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", action="store_true", help="list every circle's files")
    args = parser.parse_args(argv)
    facts = measure()
    print(f"modules: {facts['modules']}")
    print(f"file-level circles: {len(facts['cycles'])} "
          f"({sum(len(c) for c in facts['cycles'])} files)")
    if args.cycles:
        for cycle in facts["cycles"]:
            print("  - " + " ".join(cycle))
    print(f"circles held apart only by function-local imports: {len(facts['hidden_cycles'])} "
          f"({sum(len(c) for c in facts['hidden_cycles'])} files)")
    if args.cycles:
        for cycle in facts["hidden_cycles"]:
            print("  - " + " ".join(cycle))
    total = sum(facts["function_local_imports"].values())
    by_package = ", ".join(f"{k} {v}" for k, v in facts["function_local_imports"].items() if v)
    print(f"function-local imports of own modules: {total} ({by_package})")
    print(f"largest file: {facts['largest_file'][1]} ({facts['largest_file'][0]} lines)")
    print(f"longest function: {facts['longest_function'][1]} ({facts['longest_function'][0]} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
