"""A second implementation against real nodes: interop/peer.mjs, a js-libp2p 3.x
peer written from PROTOCOL.md (its own canonical msgpack, Ed25519 and SHA-256).

Three node processes: a - b connected, c alone; the JS peer dials a and c, so
it is c's only way to the others (and nodes sync only with peers that serve
sync, which it does not: whatever c gets, it gets through the JS peer's
gossip relay). Each node authors a profile after the JS peer has joined, and b
a 2 KiB bounty: the JS peer must receive all four, verify their signatures and
ids itself (and that the message ids a names in IDONTWANT are sha256 of the
data), and relay them. It then publishes a profile it signed, which every node
must apply (b through a's relay); syncs from a (heads, a range of every
author, `get`, `forks`) and checks what it got; and last sends a malformed
sync request to a, an unparsable pubsub RPC to c, then undecodable gossip,
bad signatures and oversize messages until a and c ban it. The Python side checks all of this on the
nodes, and that the network goes on without it.

Skipped only when `node` is not on PATH. Runs `npm ci` in interop/ when its
node_modules is missing (npm's cache in interop/.npm-cache, nothing outside
the repository).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _nodes import WAIT, Network, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "interop"
NPM_CI_TIMEOUT = 600.0  # a cold npm ci on a slow link


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "`node` (Node.js 20+) is not on PATH: the JavaScript peer in interop/ cannot run"
        )
    return node


@pytest.fixture(scope="module")
def node_bin() -> str:
    """`node`, with interop/node_modules installed from package-lock.json."""
    node = _node()
    if not (INTEROP / "node_modules").is_dir():
        npm = shutil.which("npm")
        assert npm is not None, "node is on PATH but npm is not: cannot install interop/"
        env = {**os.environ, "npm_config_cache": str(INTEROP / ".npm-cache")}
        r = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=INTEROP,
            env=env,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
            check=False,
        )
        assert r.returncode == 0, (
            f"npm ci in interop/ failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        )
    return node


class JsPeer:
    """interop/peer.mjs as a process; its JSON lines collected by a thread."""

    def __init__(self, node: str, args: list[str], log: Path) -> None:
        self.steps: list[dict[str, Any]] = []
        self.junk: list[str] = []
        self._log = open(log, "wb")  # noqa: SIM115 (closed in close())
        self.log_path = log
        self.proc = subprocess.Popen(
            [node, str(INTEROP / "peer.mjs"), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                step = json.loads(line)
            except ValueError:
                self.junk.append(line.decode(errors="replace"))
                continue
            self.steps.append(step)

    def step(self, name: str) -> dict[str, Any] | None:
        for s in list(self.steps):
            if s.get("step") == "failed":
                raise AssertionError(f"the JS peer failed: {s['reason']}\n{self.describe()}")
            if s.get("step") == name:
                return s
        if self.proc.poll() is not None and not self._reader.is_alive():
            raise AssertionError(
                f"the JS peer exited ({self.proc.returncode}) before {name!r}\n{self.describe()}"
            )
        return None

    def describe(self) -> str:
        try:
            err = self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            err = ""
        steps = json.dumps(self.steps)[-4000:]
        return f"steps: {steps}\nstderr: {err}\nother output: {self.junk[-5:]}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._reader.join(10)
        self._log.close()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    network = Network(tmp_path / "nodes", ["a", "b", "c"])
    try:
        network.start(edges=[("a", "b")])  # c: only through the JS peer
        yield network
    finally:
        network.close()


def test_vectors_in_javascript(node_bin: str) -> None:
    """The JS bytes (msgpack, accounts, genesis, events, envelope, frames)
    agree with the reference vectors, from their files alone."""
    r = subprocess.run(
        [node_bin, str(INTEROP / "selftest.mjs"), str(ROOT / "tests" / "vectors")],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert r.returncode == 0, r.stderr + r.stdout
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["selftest"] == "ok" and out["checks"] >= 100, out


def test_js_peer_bad_arguments(node_bin: str, tmp_path: Path) -> None:
    """A mistake on the command line is a sentence and exit code 2, not a trace."""
    good = tmp_path / "good.json"
    wire = json.loads((ROOT / "tests" / "vectors" / "wire.json").read_text())
    good.write_text(json.dumps(wire["genesis"]["json"]))
    bad = tmp_path / "genesis.json"
    bad.write_text('{"name": "x", "created_ms": 1, "allocations": {"lmnotanaccount": 5}}')
    cases = [
        ([], "--bootstrap is required"),
        (
            ["--bootstrap", "/ip4/127.0.0.1/tcp/1", "--genesis", str(tmp_path / "none.json")],
            "cannot read the genesis",
        ),
        (["--bootstrap", "/ip4/127.0.0.1/tcp/1", "--genesis", str(bad)], "account"),
        (["--bootstrap", "not a multiaddr", "--genesis", str(good)], "bad multiaddr"),
        (
            ["--bootstrap", "/ip4/127.0.0.1/tcp/1", "--genesis", str(bad), "--expect", "x"],
            "--expect",
        ),
    ]
    for args, words in cases:
        r = subprocess.run(
            [node_bin, str(INTEROP / "peer.mjs"), *args],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert words in r.stderr and "    at " not in r.stderr, (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)
    # a node that is not there: a failed step that says so, exit 1
    nobody = ["--bootstrap", "/ip4/127.0.0.1/tcp/1", "--genesis", str(good), "--timeout", "30"]
    r = subprocess.run(
        [node_bin, str(INTEROP / "peer.mjs"), *nobody],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert r.returncode == 1, r
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["step"] == "failed" and "cannot dial /ip4/127.0.0.1/tcp/1" in last["reason"], last


def test_js_peer_joins_relays_publishes_syncs_and_is_banned(
    node_bin: str, net: Network, tmp_path: Path
) -> None:
    a, b, c = net["a"], net["b"], net["c"]
    args = ["--bootstrap", a.addr, "--bootstrap", c.addr, "--genesis", str(a.data / "genesis.json")]
    args += ["--expect", "4", "--hostile", "12", "--timeout", "100"]
    peer = JsPeer(node_bin, args, tmp_path / "js-peer.log")
    try:
        joined = wait_for(
            lambda: peer.step("joined"), "the JS peer to join the mesh", describe=peer.describe
        )
        assert joined["nodes"] == [a.peer_id, c.peer_id]
        # the network id it computed from genesis.json alone (PROTOCOL.md §11.1)
        assert joined["topic"] == f"/learnmesh/{net.network_id.hex()}/events/1"
        js_id, js_account = joined["peer_id"], joined["account"]
        wait_for(
            lambda: all(js_id in n.get("/api/peers")["mesh_peers"] for n in (a, c)),
            "a and c to graft the JS peer into their mesh",
        )

        # 1. every node authors one event; the JS peer must get all three, and
        # relay them: c hears of a and b only through it, a and b of c too
        ids = {
            n.post("/api/profile", {"name": f"node {n.name}", "bio": "", "skills": []})["id"]
            for n in (a, b, c)
        }
        # and one of at least 1 KiB, for which a sends IDONTWANT before it forwards
        # it: the JS peer checks that id is sha256(data) (PROTOCOL.md §11.3)
        big = b.post("/api/bounties", {"title": "big", "description": "x" * 2000, "reward": 5})
        ids.add(big["id"])
        received = wait_for(
            lambda: peer.step("received"), "the JS peer to receive 4 events", describe=peer.describe
        )
        assert ids <= set(received["ids"]), (ids, received)
        assert received["events"] >= 4 and received["refused"] == 0, received

        # 2. its own event, applied by every node (b through a's relay)
        published = wait_for(
            lambda: peer.step("published"), "the JS peer to publish", describe=peer.describe
        )
        assert published["account"] == js_account
        own = published["id"]

        def applied_everywhere() -> bool:
            return all(
                [e["id"] for e in n.get(f"/api/accounts/{js_account}/events")["events"]] == [own]
                for n in (a, b, c)
            )

        wait_for(
            applied_everywhere, "a, b and c to apply the JS peer's event", describe=net.describe
        )
        # one state on all three, though c has no node to sync with: everything
        # it has came through the JS peer's gossip
        digest = net.wait_converged(["a", "b", "c"], min_events=5)
        assert len(digest) == 64
        assert c.status()["peers"] == [js_id]

        # 3. the sync it did from a: the three node accounts (b with two events) and its own
        synced = wait_for(
            lambda: peer.step("synced"), "the JS peer to sync from a", describe=peer.describe
        )
        assert synced["authors"] == 4 and synced["events"] == 5, synced
        assert synced["own_event_served"] is True
        assert synced["node_score"] >= 0, f"the JS peer scores a below zero: {synced}"
        # the message ids a named in its control messages are content-addressed
        assert synced["control_ids"] >= 1 and synced["control_ids_unknown"] == [], synced

        # 4. its hostile messages: a and c ban it (PROTOCOL.md §11.7)
        done = wait_for(lambda: peer.step("done"), "the JS peer to finish", describe=peer.describe)
        penalised = peer.step("penalised")
        assert penalised is not None and penalised["disconnected"] and penalised["redial_refused"]
        assert 6 <= done["hostile_sent"] <= 13, done
        bad_sync = peer.step("bad_sync_request")
        assert bad_sync is not None and bad_sync["reason"], peer.describe()
        reasons: dict[str, str] = {}
        for n in (a, c):
            view = n.get("/api/peers")
            score = view["scores"].get(js_id)
            assert score is not None and score["banned"] is True, (n.name, view)
            reasons[n.name] = " ".join(
                score["reasons"] + [r["reason"] for r in view["rejections"] if r["peer"] == js_id]
            )
            assert "undecodable" in reasons[n.name], (n.name, view)
            assert "bad_signature" in reasons[n.name], (n.name, view)
            assert "300000 bytes" in reasons[n.name], (n.name, view)  # over the cap of §11.3
            assert js_id not in n.status()["peers"]
            # it serves no sync protocol (identify says so): never tried for sync
            log = (n.data / "logs" / "stdout.log").read_text(errors="replace")
            assert f"sync with {js_id} failed" not in log
        assert "sync request" in reasons["a"], reasons  # the malformed one (§11.5) cost too
        assert "bad pubsub RPC" in reasons["c"], reasons  # so did the unparsable RPC (§11.3)
        bad_rpc = peer.step("bad_rpc")
        assert bad_rpc is not None and bad_rpc["node"] == c.peer_id and bad_rpc["stream_ended"]
        # honest neighbours were never blamed for what the JS peer sent
        for n, other in ((a, b), (b, a)):
            assert n.get("/api/peers")["scores"].get(other.peer_id, {}).get("score", 0) == 0, n.name
        assert peer.proc.wait(WAIT) == 0, peer.describe()

        # the network goes on without it, once c has a node to sync with
        net.connect("c", "b")
        b.post("/api/profile", {"name": "node b again", "bio": "", "skills": []})
        assert net.wait_converged(["a", "b", "c"], min_events=6) != digest
    finally:
        peer.close()
