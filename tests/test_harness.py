"""The one process harness, the admin switch and how the CLI finds its command groups.

- A node started as people start it answers 404 on every /api/admin/* route; one
  started with `--admin` (as the devnet and the tests start theirs) serves them.
- The devnet, the benchmarks and the tests drive node processes through one
  harness (learnmesh.node._procs), and nothing in the node package imports the
  devnet: `learnmesh` finds the devnet's commands by an entry point.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import learnmesh.node
import learnmesh.node.cli as node_cli
import pytest
from _nodes import Network, Node, cli, wait_for
from learnmesh.devnet._cluster import ApiError as DevnetApiError
from learnmesh.devnet._cluster import NodeProc
from learnmesh.node._bench_gossip import _NodeProc as BenchNode
from learnmesh.node._clock import advance_offset_file
from learnmesh.node._procs import NodeApiError, NodeProcess, node_start_argv

ADMIN_ROUTES = {
    "/api/admin/connect": {"addr": "/ip4/127.0.0.1/tcp/1/p2p/QmNotAPeer"},
    "/api/admin/partition": {"peers": []},
    "/api/admin/heal": {},
    "/api/admin/sync": {},
    "/api/admin/clock": {"advance_ms": 1000},
}


# -- the admin switch -------------------------------------------------------------------------


def test_admin_routes_only_with_the_flag(tmp_path: Path) -> None:
    with Network(tmp_path, ["plain", "admin"]) as net:
        plain, admin = net["plain"], net["admin"]
        advance_offset_file(plain.data, 3_600_000)  # a clock file a plain node must ignore
        plain.start(admin=False)
        admin.start()  # the harness default: --admin
        plain.wait_ready()
        admin.wait_ready()
        assert json.loads((plain.data / "node.json").read_text())["admin"] is False
        assert json.loads((admin.data / "node.json").read_text())["admin"] is True

        for path, body in ADMIN_ROUTES.items():
            r = plain.request("POST", path, json_body=body)
            assert r.status_code == 404, (path, r.status_code, r.text)
            assert r.json()["error"] == "not_found", r.text
            # Without the token too: nothing there, whoever asks.
            assert plain.request("POST", path, json_body=body, token="").status_code in (401, 404)
        assert plain.get("/api/status")["events"] >= 0, "the rest of the API is there"
        plain.post("/api/profile", {"name": "Plain", "bio": "", "skills": []})
        (ev,) = plain.get(f"/api/accounts/{plain.account}/events")["events"]
        assert abs(ev["timestamp"] - time.time() * 1000) < 600_000, "dated by the system's clock"

        # The admin node serves each route (a bad address is refused by the route, not a 404).
        assert admin.post("/api/admin/heal") == {"partitioned": []}
        assert admin.post("/api/admin/partition", {"peers": ["x"]})["partitioned"] == ["x"]
        assert admin.post("/api/admin/heal") == {"partitioned": []}
        assert admin.post("/api/admin/sync") == {"events": 0}
        assert admin.post("/api/admin/clock", {"advance_ms": 1000})["offset_ms"] == 1000
        bad = admin.request("POST", "/api/admin/connect", json_body={"addr": "not an address"})
        assert bad.status_code == 400 and bad.json()["error"] == "bad_request", bad.text
        # The admin node connects to the plain one through the route: a real peer link.
        admin.post("/api/admin/connect", {"addr": plain.addr})
        wait_for(
            lambda: plain.peer_id in admin.status()["peers"],
            "the admin node to list the plain one as a peer",
            describe=net.describe,
        )
        for n in (plain, admin):
            code, _ = n.stop()
            assert code == 0, n.log_tail()


def test_node_start_help_names_the_admin_flag() -> None:
    r = cli("node", "start", "--help")
    assert "--admin" in r.stdout and "/api/admin" in r.stdout, r.stdout


# -- one harness --------------------------------------------------------------------------------


def test_devnet_bench_and_tests_share_one_harness() -> None:
    for cls in (Node, NodeProc, BenchNode):
        assert issubclass(cls, NodeProcess), cls
    assert issubclass(DevnetApiError, NodeApiError)
    argv = node_start_argv(Path("/x"), admin=True, bootstrap=["/ip4/1.2.3.4/tcp/5"])
    assert argv[argv.index("--data") + 1] == "/x"
    assert "--admin" in argv and "--bootstrap" in argv
    assert "--admin" not in node_start_argv(Path("/x"))


def test_devnet_node_errors_keep_their_devnet_type(tmp_path: Path) -> None:
    n = NodeProc(0, tmp_path / "n00", 1, 2)
    with pytest.raises(DevnetApiError, match="no API address"):
        n.status()


# -- command groups by entry point -------------------------------------------------------------


def test_registering_the_commands_loads_no_network_stack() -> None:
    """Every `learnmesh` command registers every group (node, bench, devnet) first:
    libp2p, starlette and hypercorn load only in the commands that use them, or
    each CLI call (hundreds in the tests and devnets) pays about half a second."""
    code = (
        "import sys\n"
        "from learnmesh.node.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('libp2p', 'starlette', 'hypercorn', 'pyld') if m in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert r.stdout.strip() == "[]", f"loaded while registering commands: {r.stdout}"


def test_help_lists_devnet_and_bench_groups() -> None:
    top = cli("--help").stdout
    for group in ("devnet", "bench", "node", "status"):
        assert f"\n    {group} " in top, (group, top)
    bench = cli("bench", "--help").stdout
    for sub in ("ingest", "gossip", "propagation", "sync"):
        assert sub in bench, (sub, bench)
    assert "run" in cli("devnet", "--help").stdout


def test_devnet_is_declared_as_an_entry_point() -> None:
    eps = importlib.metadata.entry_points(group=node_cli.ENTRY_POINT_GROUP)
    assert {ep.name: ep.value for ep in eps}.get("devnet") == "learnmesh.devnet.cli", (
        "reinstall: .venv/bin/pip install -e '.[test,dev]'"
    )


def test_node_package_never_names_the_devnet() -> None:
    """node/cli.py names no devnet module, and no module of the node package imports
    one: the product does not depend on its harness."""
    root = Path(learnmesh.node.__file__).parent
    assert "devnet" not in (root / "cli.py").read_text().lower()
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value.startswith("learnmesh.devnet") else []
            for name in names:
                assert not name.startswith("learnmesh.devnet"), (path.name, name)


def _fake_entry_points(
    monkeypatch: pytest.MonkeyPatch, *eps: importlib.metadata.EntryPoint
) -> None:
    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        assert group == node_cli.ENTRY_POINT_GROUP
        return list(eps)

    monkeypatch.setattr(node_cli.importlib.metadata, "entry_points", entry_points)


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def test_a_plugin_group_is_found_and_a_missing_one_is_not_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lm_plugin_demo.py").write_text(
        textwrap.dedent(
            """
            def hello(args):
                print("hello from a plugin")
                return 0

            def register(sub):
                sub.add_parser("hello", help="a plugin's group").set_defaults(func=hello)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    group = node_cli.ENTRY_POINT_GROUP
    _fake_entry_points(
        monkeypatch,
        importlib.metadata.EntryPoint("hello", "lm_plugin_demo", group),
        importlib.metadata.EntryPoint("gone", "lm_no_such_package.cli", group),
    )
    parser, _ = node_cli.build_parser()
    names = _commands(parser)
    assert "hello" in names and "devnet" not in names
    assert {"init", "node", "status", "bench"} <= names, "the node's own groups stay"
    assert capsys.readouterr().err == "", "an absent package is not listed, without a warning"
    assert node_cli.main(["--data", str(tmp_path / "d"), "hello"]) == 0
    assert "hello from a plugin" in capsys.readouterr().out


def test_a_broken_plugin_warns_and_the_rest_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lm_plugin_broken.py").write_text("import lm_dependency_it_lacks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _fake_entry_points(
        monkeypatch,
        importlib.metadata.EntryPoint("broken", "lm_plugin_broken", node_cli.ENTRY_POINT_GROUP),
    )
    parser, _ = node_cli.build_parser()
    err = capsys.readouterr().err
    assert "lm_plugin_broken" in err and "lm_dependency_it_lacks" in err, err
    assert "node" in _commands(parser)
    sys.modules.pop("lm_plugin_broken", None)
