"""What a node process imports before it serves (issue 14: start-up time and
memory). Modules a node rarely needs load on first use; a module-level import
that brings one back would silently cost every node process again."""

from __future__ import annotations

import json
import subprocess
import sys

# Measured (BENCHMARKS.md, 2026-11-29): pyld adds about 5 MB to a node process.
_DEFERRED = ("pyld",)


def test_the_node_starts_without_the_rarely_used_libraries() -> None:
    code = (
        "import json, sys\n"
        "import learnmesh.node.cli, learnmesh.node._runner\n"
        f"print(json.dumps([m for m in {_DEFERRED!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_credential_still_loads_pyld_when_used() -> None:
    from learnmesh.node._vc import default_canonicalizer

    out = default_canonicalizer()({"@context": {"name": "https://schema.org/name"}, "name": "x"})
    assert out == '_:c14n0 <https://schema.org/name> "x" .\n'
    assert "pyld" in sys.modules
