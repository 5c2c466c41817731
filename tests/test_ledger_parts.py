"""The ledger's parts import each other without a circle, and each imports alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import learnmesh.ledger

PKG = Path(learnmesh.ledger.__file__).parent
MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")


def _imports(name: str) -> set[str]:
    """Sibling modules `name` imports anywhere (TYPE_CHECKING blocks and
    function bodies too: a circle hidden there is still a circle)."""
    tree = ast.parse((PKG / f"{name}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1:
                out |= {mod} if mod else {a.name for a in node.names}
            elif mod.startswith("learnmesh.ledger."):
                out.add(mod.removeprefix("learnmesh.ledger.").split(".")[0])
            elif mod == "learnmesh.ledger":
                out.add("__init__")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("learnmesh.ledger."):
                    out.add(a.name.removeprefix("learnmesh.ledger.").split(".")[0])
    return out & {*MODULES, "__init__"}


def test_no_import_circles() -> None:
    graph = {m: _imports(m) for m in MODULES}
    assert "_snapshot" in graph and "_replay" in graph and "_store" in graph
    assert all("__init__" not in deps for deps in graph.values()), graph
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(m) :], m]))
        if m in done:
            return
        for dep in sorted(graph[m]):
            visit(dep, [*path, m])
        done.add(m)

    for m in MODULES:
        visit(m, [])
    # The parts do not reach up to the facade.
    for part in ("_store", "_replay", "_snapshot", "_archive", "_append"):
        assert "_ledger" not in graph[part], part


def test_each_module_imports_alone() -> None:
    """In a fresh interpreter, each module first, with the package's modules
    forgotten in between: an order-dependent import fails here."""
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}:\n"
        "    for k in [k for k in sys.modules if k.startswith('learnmesh.ledger')]:\n"
        "        del sys.modules[k]\n"
        "    importlib.import_module('learnmesh.ledger.' + m)\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
