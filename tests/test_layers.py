"""Apps depend one way (issue 12): the apps below orders import none of the apps above them,
not even inside a function, so each can be read without those. Inventory tells orders what
happened through `inventory.signals`. Read by `ast`, so it costs nothing at run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOWER = ["uniware/core", "gst", "documents", "inventory"]
HIGHER = {
    "orders",
    "channels",
    "notifications",
    "imports",
    "demo",
    "listings",
    "stations",
    "workplace",
}


def upward_imports(path: Path) -> list[str]:
    """`line: module` of each import of a higher app in the file, wherever it is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found += [f"{node.lineno}: {m}" for m in modules if m.split(".")[0] in HIGHER]
    return found


def _modules():
    for folder in LOWER:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_the_checker_finds_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import json\n\n\ndef f():\n    from orders.tasks import x\n")
    assert upward_imports(module) == ["5: orders.tasks"]


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_lower_apps_do_not_import_higher_ones(path):
    assert upward_imports(path) == []
