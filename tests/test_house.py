"""The house rules that keep the code easy to change, read from the source itself (`scripts/import_graph.py`).

- No circle among our modules: not at import time, and not one held apart by a function-local import.
- `core` (the shared kernel) imports nothing of ours, and only the standard library and Pillow.
- `leaderboards` imports only `core` and itself (DESIGN.md: plain data and statistics).
- One definition each of what an id looks like and of where the database is.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def graph(import_graph):
    return import_graph.measure()


def test_no_circles_among_our_modules(graph):
    assert graph["cycles"] == []
    assert graph["hidden_cycles"] == [], "a function-local import hides a circle: " + "; ".join(
        " ".join(cycle) for cycle in graph["hidden_cycles"])


def test_the_measure_sees_a_circle_when_there_is_one(import_graph):
    """The circle finder itself, on a three-module graph with and without a back edge."""
    assert import_graph.strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert import_graph.strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]


def test_layers_import_one_way(graph):
    edges = graph["graph"]
    for module, targets in edges.items():
        top = module.split(".")[0]
        if top == "core":
            assert all(t.startswith("core") for t in targets), (module, targets)
        if top == "leaderboards":
            outside = sorted(t for t in targets if not t.startswith(("leaderboards", "core")))
            assert not outside, f"{module} imports {outside}"


def test_core_needs_only_the_standard_library_and_pillow():
    allowed = set(sys.stdlib_module_names) | {"PIL", "core", "__future__"}
    for path in sorted((ROOT / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def _sources():
    for folder in ("core", "hub", "evals", "leaderboards", "demoworld"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, path.read_text(encoding="utf-8")
    yield ROOT / "app.py", (ROOT / "app.py").read_text(encoding="utf-8")


def test_ids_and_the_database_location_are_defined_once():
    id_rule = re.compile(re.escape("[a-z0-9][a-z0-9._-]{0,63}"))
    for path, text in _sources():
        relative = path.relative_to(ROOT).as_posix()
        if relative != "core/ids.py":
            assert not id_rule.search(text), f"{relative} defines the id pattern again"
        if relative != "core/settings.py":
            assert '"HUB_DATABASE_URL"' not in text and '"HUB_DATA_DIR"' not in text, f"{relative} reads the location itself"
