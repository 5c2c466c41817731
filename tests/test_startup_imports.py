"""What a node process imports before it serves (issue 14: start-up time and
memory). Modules a node rarely needs load on first use; a module-level import
that brings one back would silently cost every node process again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Measured (BENCHMARKS.md, 2026-11-29): pyld adds about 5 MB to a node process;
# markdown-it 0.9 MB; aioquic, zeroconf, dnspython and the AutoTLS clients'
# requests, urllib3, charset_normalizer and httpx together about 17 MB and 0.2 s
# of CPU; pycryptodome (with cffi and pycparser) and fastecdsa, for RSA keys, SECIO
# and private networks, about 4.5 MB and 0.1 s (node/_libp2p_slim.py stands in for
# the libp2p modules that import them).
_DEFERRED = (
    "pyld",
    "markdown_it",
    "aioquic",
    "zeroconf",
    "dns",
    "requests",
    "urllib3",
    "charset_normalizer",
    "httpx",
    "Crypto",
    "fastecdsa",
    "pycparser",
)


def _loaded_after(code: str, names: tuple[str, ...]) -> list[str]:
    probe = (
        f"import json, sys\n{code}\nprint(json.dumps([m for m in {names!r} if m in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LEARNMESH_LIBP2P_FULL"}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert isinstance(loaded, list)
    return loaded


def test_the_node_starts_without_the_rarely_used_libraries() -> None:
    assert _loaded_after("import learnmesh.node.cli, learnmesh.node._runner", _DEFERRED) == []


def test_the_cli_node_start_path_loads_none_of_them_either() -> None:
    """`learnmesh node start` parses its command line with only the node's own
    command module (main's command table in node/cli.py: the others import httpx,
    rich and the harness), then imports what cmd_node_start does."""
    code = (
        "import contextlib, io\n"
        "from learnmesh.node import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--data', '/nonexistent', 'node', 'start', '--help'])\n"
        "from learnmesh.node import _api, _runner, _service\n"
    )
    assert _loaded_after(code, (*_DEFERRED, "rich", "learnmesh.devnet.cli")) == []


def test_other_commands_still_register_every_module() -> None:
    code = (
        "import contextlib, io\n"
        "from learnmesh.node import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'])\n"
    )
    assert "learnmesh.devnet.cli" in _loaded_after(code, ("learnmesh.devnet.cli",))


def test_the_probe_sees_a_library_that_is_loaded() -> None:
    """The two tests above cannot pass vacuously: with libp2p loaded in full, the
    same probe finds the optional libraries."""
    env_code = (
        "import os\n"
        "os.environ['LEARNMESH_LIBP2P_FULL'] = '1'\n"
        "import learnmesh.node.cli, learnmesh.node._runner"
    )
    assert set(_loaded_after(env_code, _DEFERRED)) >= {"aioquic", "zeroconf", "dns", "requests"}


def test_markdown_still_renders_when_used() -> None:
    from learnmesh.node._learning import render_markdown

    assert render_markdown("*hi*") == [{"t": "p", "c": [{"t": "em", "c": ["hi"]}]}]
    assert "markdown_it" in sys.modules


def test_a_credential_still_loads_pyld_when_used() -> None:
    from learnmesh.node._vc import default_canonicalizer

    out = default_canonicalizer()({"@context": {"name": "https://schema.org/name"}, "name": "x"})
    assert out == '_:c14n0 <https://schema.org/name> "x" .\n'
    assert "pyld" in sys.modules
