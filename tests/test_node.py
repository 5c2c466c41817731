"""Real `learnmesh node start` processes on 127.0.0.1: real libp2p, real SQLite.

The whole bounty lifecycle across three nodes, catch-up after a restart and
durability after SIGKILL, a partition healed, the API's token and loopback
rules, and a clean SIGTERM. Every wait is a condition with a generous bound
(tests/_nodes.py); every process started is killed in the fixtures' teardown.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _nodes import Network, Node, cli, presign_profiles, wait_for
from learnmesh.protocol import KeyPair

pytestmark = pytest.mark.slow

SIGTERM_BOUND_S = 5.0


@pytest.fixture
def net3(tmp_path: Path) -> Iterator[Network]:
    net = Network(
        tmp_path,
        ["mentor", "l1", "l2"],
        allocations={"mentor": 100_000, "l1": 5_000, "l2": 5_000},
        trusted=["mentor"],
    )
    try:
        yield net
    finally:
        net.close()


def _bounty(node: Node, bid: str) -> dict[str, Any]:
    b: dict[str, Any] = node.get(f"/api/bounties/{bid}")
    return b


def _stop_clean(node: Node) -> None:
    """SIGTERM: exit code 0 within the bound, and the ledger verifies afterwards."""
    code, took = node.stop()
    assert code == 0, f"{node.name} exited {code} after SIGTERM\n{node.log_tail()}"
    assert took < SIGTERM_BOUND_S, f"{node.name} took {took:.1f} s to stop\n{node.log_tail()}"
    assert not (node.data / "node.json").exists(), "node.json left behind after a clean stop"
    log = (node.data / "logs" / "stdout.log").read_text(errors="replace")
    assert "Traceback" not in log, node.log_tail(80)  # teardown errors are contained
    r = cli("--data", str(node.data), "--json", "ledger", "verify")
    report = json.loads(r.stdout)
    assert report["ok"], report


# -- 1. the lifecycle on three nodes ---------------------------------------------------------


def test_bounty_lifecycle_three_nodes(net3: Network, tmp_path: Path) -> None:
    m, l1, l2 = net3["mentor"], net3["l1"], net3["l2"]
    m.start()
    m.wait_ready()
    # The learners find the mentor through --bootstrap (the way users join).
    net3.start(["l1", "l2"], bootstrap={"l1": [m.addr], "l2": [m.addr]})
    net3.wait_peers("l1", "mentor")
    net3.wait_peers("l2", "mentor")
    nodes = [m, l1, l2]
    names = [n.name for n in nodes]

    bid = m.post(
        "/api/bounties",
        {
            "title": "Explain CRDTs",
            "description": "Write a short explainer with a diagram.",
            "reward": 1000,
            "rubric": [{"name": "clarity", "max": 10}, {"name": "depth", "max": 10}],
            "skills": ["distributed-systems"],
        },
    )["id"]
    for n in (l1, l2):
        wait_for(lambda n=n: _bounty(n, bid), f"{n.name} to see the bounty", describe=net3.describe)

    # L1 submits with the CLI (a text file and a binary attachment over one blob chunk);
    # L2 through the API.
    work = tmp_path / "work.md"
    work.write_text("# CRDTs\nConflict-free replicated data types merge without coordination.\n")
    diagram = tmp_path / "diagram.bin"
    diagram.write_bytes(os.urandom(300 * 1024))
    r = cli("--data", str(l1.data), "--json", "submit", bid, str(work), str(diagram))
    c1 = json.loads(r.stdout)["id"]
    att2 = os.urandom(20_000)
    c2 = l2.post(
        "/api/submit",
        {
            "bounty": bid,
            "text": "CRDTs, the short version.",
            "files": [{"name": "notes.pdf", "data_b64": base64.b64encode(att2).decode()}],
        },
    )["id"]
    wait_for(
        lambda: set(_bounty(m, bid)["commit_ids"]) == {c1, c2},
        "the mentor to see both commits",
        describe=net3.describe,
    )

    m.post(f"/api/bounties/{bid}/close", {})
    # The learners' nodes reveal by themselves once the close lists their commits.
    for n in nodes:
        wait_for(
            lambda n=n: _bounty(n, bid)["submissions"] == 2,
            f"{n.name} to see both reveals",
            describe=net3.describe,
        )
    subs = {s["learner"]: s for s in _bounty(m, bid)["submissions_detail"]}
    s1, s2 = subs[l1.account], subs[l2.account]
    assert s1["commit"] == c1 and s2["commit"] == c2
    assert {a["name"] for a in s1["attachments"]} == {"work.md", "diagram.bin"}
    # The attachments reach the mentor's node (the bounty's author fetches them).
    wait_for(
        lambda: all(
            a["have"] for s in _bounty(m, bid)["submissions_detail"] for a in s["attachments"]
        ),
        "the attachments to reach the mentor's node",
        describe=lambda: _bounty(m, bid)["submissions_detail"],
    )
    blob = m.call(
        "GET",
        f"/api/blobs/{next(a['hash'] for a in s1['attachments'] if a['name'] == 'diagram.bin')}",
    )
    assert blob == diagram.read_bytes()

    # Each learner reviews the other's work (own work and the mentor are refused).
    for who, code in ((l1, "self_review"), (m, "mentor_review")):
        bad = who.request(
            "POST",
            "/api/review",
            json_body={"submission": s1["id"], "scores": {"clarity": 9, "depth": 9}},
        )
        assert bad.status_code == 409 and bad.json()["error"] == code, bad.text
    l2.post(
        "/api/review",
        {"submission": s1["id"], "scores": {"clarity": 8, "depth": 7}, "comment": "clear"},
    )
    l1.post(
        "/api/review",
        {"submission": s2["id"], "scores": {"clarity": 6, "depth": 5}, "comment": "short"},
    )
    wait_for(
        lambda: all(len(s["reviews"]) == 1 for s in _bounty(m, bid)["submissions_detail"]),
        "the mentor to see both reviews",
        describe=net3.describe,
    )

    m.post(f"/api/bounties/{bid}/award", {"winners": {s1["id"]: 600, s2["id"]: 300}})
    digest = net3.wait_converged(names)
    for n in nodes:
        wait_for(lambda n=n: _bounty(n, bid)["phase"] == "awarded", f"{n.name}: awarded")

    # Every node shows the same balances, reputation and digest.
    views = [(n.get("/api/balances"), n.get("/api/reputation"), n.status()) for n in nodes]
    for bal, rep, st in views[1:]:
        assert bal == views[0][0]
        assert rep == views[0][1]
        assert st["digest"] == digest
    balances, reputation = views[0][0], views[0][1]["reputation"]
    assert balances["escrow"] == 0
    assert sum(balances["balances"].values()) == balances["genesis_supply"] == 110_000
    b = balances["balances"]
    # 600/300 to the winners; the reviewers' 10% share goes to the honest reviews.
    assert b[l1.account] >= 5_600 and b[l2.account] >= 5_300
    assert b[l1.account] + b[l2.account] + b[m.account] == 110_000
    assert reputation[l1.account]["points"] > 0 and reputation[l2.account]["points"] > 0

    # The credential for L1's awarded work verifies offline.
    cred = l2.call("GET", f"/api/credentials/{s1['id']}")
    assert isinstance(cred, bytes) and cred
    path = tmp_path / "l1.credential"
    path.write_bytes(cred)
    out = json.loads(cli("--json", "credential", "verify", str(path)).stdout)
    assert l1.account in json.dumps(out), out

    # Stopping cleanly (SIGTERM) leaves every ledger verifiable.
    with ThreadPoolExecutor(3) as ex:
        list(ex.map(_stop_clean, nodes))


# -- 2 and 6. restart after SIGTERM catches up; SIGKILL loses nothing acknowledged ------------


def _post_chain(node: Node, chain: list[bytes]) -> list[str]:
    """POST one author's events in order; each must be acknowledged as applied."""
    ids = []
    for raw in chain:
        r = node.post_raw(raw)
        assert r.status_code == 200, f"{node.name}: {r.status_code} {r.text}"
        body = r.json()
        assert body["status"] == "applied", body
        ids.append(body["id"])
    return ids


@pytest.fixture
def net2(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path, ["a", "b"])
    try:
        yield net
    finally:
        net.close()


def test_restart_catches_up_and_sigkill_keeps_acknowledged(net2: Network) -> None:
    a, b = net2["a"], net2["b"]
    net2.start(edges=[("a", "b")])
    a.post("/api/profile", {"name": "a"})
    net2.wait_converged(["a", "b"], min_events=1)

    # SIGTERM: exits 0 within 5 s, ledger verifies.
    _stop_clean(b)

    # 1,000 events while b is down: four authors' chains posted in parallel to a.
    keys = [KeyPair(os.urandom(32)) for _ in range(4)]
    chains = presign_profiles(net2.network_id, keys, 250)
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda c: _post_chain(a, c), chains))
    before = b.brief()
    assert a.status()["events"] >= 1001

    # b restarts (dialing a) and catches up through sync.
    b.start(bootstrap=[a.addr])
    b.wait_ready()
    digest = net2.wait_converged(["a", "b"], min_events=1001)
    heads = b.status()["heads"]
    assert all(heads[k.account] == 250 for k in keys), (before, heads)

    # Events b acknowledges (applied) survive a SIGKILL right after the last answer:
    # raw events of a new author, and b's own chain (it must never re-sign a seq).
    extra_key = KeyPair(os.urandom(32))
    (extra,) = presign_profiles(net2.network_id, [extra_key], 40)
    extra_ids = _post_chain(b, extra)
    own = [b.post("/api/profile", {"name": f"b{i}"})["id"] for i in range(5)]
    own_seq = b.status()["heads"][b.account]
    b.kill()

    shown = json.loads(cli("--data", str(b.data), "--json", "ledger", "show").stdout)
    assert shown["heads"][extra_key.account] == {"seq": 40, "id": extra_ids[-1]}
    assert shown["heads"][b.account] == {"seq": own_seq, "id": own[-1]}
    assert shown["pending"] == 0
    report = json.loads(cli("--data", str(b.data), "--json", "ledger", "verify").stdout)
    assert report["ok"], report

    # Restarted, b goes on writing its own chain without a fork, and both agree.
    b.start(bootstrap=[a.addr])
    b.wait_ready()
    b.post("/api/profile", {"name": "b-after-crash"})
    final = net2.wait_converged(["a", "b"], min_events=1001 + 40 + 5 + 1)
    assert final != digest
    for n in (a, b):
        st = n.status()
        assert st["forks"] == [], st["forks"]
        assert st["heads"][b.account] == own_seq + 1


# -- 3. a partition, events on both sides, healed: one digest --------------------------------


def test_partition_then_heal_converges(tmp_path: Path) -> None:
    with Network(tmp_path, ["a", "b", "c", "d"]) as net:
        a, b, c, d = (net[x] for x in "abcd")
        net.start(edges=[("a", "b"), ("c", "d"), ("b", "c")])
        a.post("/api/profile", {"name": "a"})
        net.wait_converged("abcd", min_events=1)

        left, right = [a, b], [c, d]
        for side, other in ((left, right), (right, left)):
            for n in side:
                n.post("/api/admin/partition", {"peers": [o.peer_id for o in other]})

        def apart() -> bool:
            for side, other in ((left, right), (right, left)):
                for n in side:
                    peers = set(n.status()["peers"])
                    if peers & {o.peer_id for o in other}:
                        return False
            return True

        wait_for(apart, "the two groups to drop their connections", describe=net.describe)
        # A node refuses the other side's connections while partitioned.
        refused = b.request("POST", "/api/admin/connect", json_body={"addr": c.addr})
        assert refused.status_code >= 400, refused.text

        # Events on both sides: transfers across the cut and profiles.
        a.post("/api/transfer", {"to": c.account, "amount": 111})
        b.post("/api/profile", {"name": "b-left"})
        c.post("/api/transfer", {"to": a.account, "amount": 222})
        d.post("/api/profile", {"name": "d-right"})
        d.post("/api/vouch", {"account": c.account})
        left_digest = net.wait_converged("ab", min_events=3)
        right_digest = net.wait_converged("cd", min_events=4)
        assert left_digest != right_digest
        assert a.status()["heads"].get(d.account) is None  # nothing crossed the cut
        assert c.status()["heads"].get(b.account) is None

        for n in (a, b, c, d):
            n.post("/api/admin/heal")
        net.connect("b", "c")
        digest = net.wait_converged("abcd", min_events=6)
        assert digest not in (left_digest, right_digest)
        balances = [n.get("/api/balances") for n in (a, b, c, d)]
        assert all(x == balances[0] for x in balances)
        bal = balances[0]["balances"]
        assert bal[a.account] == 100_000 - 111 + 222
        assert bal[c.account] == 100_000 - 222 + 111
        for n in (a, b, c, d):
            n.stop()


# -- 5. the API's token and loopback rules ---------------------------------------------------


def test_api_needs_token_and_loopback(tmp_path: Path) -> None:
    with Network(tmp_path, ["a"]) as net:
        a = net["a"]
        # Anything but loopback is refused before the node starts: one line, no traceback.
        for host in ("0.0.0.0", "192.168.1.20", "::"):
            r = cli("--data", str(a.data), "node", "start", "--api-host", host, check=False)
            assert r.returncode == 2, (host, r.returncode, r.stderr)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
            assert "loopback" in lines[0] and "Traceback" not in r.stderr
            assert not (a.data / "node.json").exists()

        a.start()
        a.wait_ready()
        assert a.api.startswith("http://127.0.0.1:")
        probes: list[tuple[str, str, Any]] = [
            ("GET", "/api/status", None),
            ("GET", "/api/balances", None),
            ("POST", "/api/transfer", {"to": a.account, "amount": 1}),
            ("POST", "/api/admin/partition", {"peers": []}),
        ]
        for method, path, body in probes:
            for token in ("", "wrong-token", a.token[:-1], a.token + "x"):
                r = a.request(method, path, json_body=body, token=token)
                assert r.status_code == 401, (method, path, token, r.status_code)
                assert r.json()["error"] == "unauthorized"
            r = a.request(method, path, json_body=body, headers={"Authorization": a.token})
            assert r.status_code == 401, "the token without 'Bearer' is not accepted"
        r = a.request("GET", "/api/status", headers={"Authorization": f"Basic {a.token}"})
        assert r.status_code == 401
        # The right token works; a mistake is a readable 4xx, not a crash.
        assert a.request("GET", "/api/status").status_code == 200
        bad = a.request("POST", "/api/transfer", json_body={"to": "nobody", "amount": 5})
        assert bad.status_code == 400 and bad.json()["message"]
        garbage = a.request("POST", "/api/events", content=b"\x00not an event")
        assert garbage.status_code == 422 and garbage.json()["status"] == "rejected"
        _stop_clean(a)
