"""The readable-core rule of issue 12: no function in the domain apps longer than 80 lines and
no module longer than 600, except where a `# long: <why>` comment on the line above the
function (or at the top of the module) says why. Read by `ast`, so it costs nothing at run."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = [
    "orders",
    "channels",
    "inventory",
    "notifications",
    "imports",
    "listings",
    "documents",
    "gst",
    "stations",
    "workplace",
    "control",
    "uniware",
    "simulator",
]
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600
EXCUSE = "# long:"


def _modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _too_long(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    name = path.relative_to(ROOT)
    found = []
    if len(lines) > MAX_MODULE_LINES and not any(EXCUSE in line for line in lines[:5]):
        found.append(f"{name}: {len(lines)} lines")
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = node.end_lineno - node.lineno + 1
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        excused = first >= 2 and EXCUSE in lines[first - 2]
        if length > MAX_FUNCTION_LINES and not excused:
            found.append(f"{name}:{node.lineno} {node.name}() is {length} lines")
    return found


def test_the_checker_finds_a_long_function(tmp_path, monkeypatch):
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_FUNCTION_LINES))
    (tmp_path / "orders").mkdir()
    module = tmp_path / "orders" / "m.py"
    module.write_text(f"def f():\n{body}\n\n\n# long: a table\ndef g():\n{body}\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _too_long(module) == ["orders/m.py:1 f() is 81 lines"]


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_and_modules_fit_on_a_screen(path):
    assert _too_long(path) == []
