"""The trust API and `learnmesh reputation` on a real node process: a trusted
mentor (the node) pays two learners and their reviews; learners and a reviewer
sign elsewhere and post their events. The answers show per-skill trust, rank,
the edges that gave it, the trust-weighted review median and the digest; bad
input gets a 400 with a sentence."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _nodes import Network, Node, cli, wait_for
from learnmesh.node._datadir import DataDir
from learnmesh.protocol import (
    ChainWriter,
    KeyPair,
    Replica,
    account_text,
    commit_body,
    reveal_body,
)
from learnmesh.protocol._trust import trust_view

pytestmark = pytest.mark.slow


@pytest.fixture
def solo(tmp_path: Path) -> Iterator[tuple[Network, list[KeyPair]]]:
    others = [KeyPair(bytes([40 + i]) * 32) for i in range(3)]
    net = Network(
        tmp_path,
        ["mentor"],
        allocations={"mentor": 100_000},
        extra_allocations=[(k.public_key, 1_000) for k in others],
        trusted=["mentor"],
    )
    try:
        yield net, others
    finally:
        net.close()


def _post(node: Node, raw: bytes) -> str:
    r = node.post_raw(raw)
    assert r.status_code == 200 and "error" not in r.json(), r.text
    return str(r.json()["id"])


def test_trust_api_and_cli(solo: tuple[Network, list[KeyPair]]) -> None:
    net, (k1, k2, kr) = solo
    m = net["mentor"]
    m.start()
    m.wait_ready()
    w = {k.public_key: ChainWriter(k, net.network_id) for k in (k1, k2, kr)}
    bid = m.post(
        "/api/bounties",
        {
            "title": "Explain ownership",
            "description": "Borrowing, with an example.",
            "reward": 10_000,
            "rubric": [{"name": "clarity", "max": 10}, {"name": "depth", "max": 10}],
            "skills": ["rust"],
        },
    )["id"]
    b = bytes.fromhex(bid)
    ts = int(time.time() * 1000)
    texts = {k1.public_key: "ownership moves", k2.public_key: "borrows are scoped"}
    commits = {}
    for k in (k1, k2):
        salt = bytes([k.public_key[0]]) * 16
        ev = w[k.public_key].sign(
            "commit", commit_body(b, k.public_key, texts[k.public_key], [], salt), ts, [b]
        )
        commits[k.public_key] = (_post(m, ev.raw), salt)
    close = bytes.fromhex(m.post(f"/api/bounties/{bid}/close", {})["id"])
    subs = {}
    for k in (k1, k2):
        cid, salt = commits[k.public_key]
        c = bytes.fromhex(cid)
        body = reveal_body(b, c, close, texts[k.public_key], [], salt)
        ev = w[k.public_key].sign("reveal", body, ts + 2000, sorted([c, close]))
        subs[k.public_key] = _post(m, ev.raw)
    s1, s2 = subs[k1.public_key], subs[k2.public_key]
    for who, sid, scores in (
        (kr, s1, [8, 8]),
        (kr, s2, [5, 5]),
        (k2, s1, [8, 7]),
        (k1, s2, [5, 4]),
    ):
        body = {"bounty": b, "submission": bytes.fromhex(sid), "scores": scores, "comment": "ok"}
        ev = w[who.public_key].sign("review", body, ts + 3000, [bytes.fromhex(sid)])
        _post(m, ev.raw)
    m.post(f"/api/bounties/{bid}/award", {"winners": {s1: 6000, s2: 3000}})
    wait_for(lambda: m.get(f"/api/bounties/{bid}")["phase"] == "awarded", "the award")

    a1, a2, ar = (account_text(k.public_key) for k in (k1, k2, kr))
    rank = wait_for(
        lambda: (r := m.get("/api/trust?skill=rust"))["count"] >= 2 and r,
        "trust in rust to show",
    )
    assert rank["skill"] == "rust" and len(rank["trust_digest"]) == 64
    order = [row["account"] for row in rank["accounts"]]
    assert order.index(a1) < order.index(a2)  # 6000 paid beats 3000
    assert m.account not in order  # the seed is not trusted *in rust* until paid in it
    row1 = next(r for r in rank["accounts"] if r["account"] == a1)
    assert row1["rank"] == 1 and row1["skills"]["rust"] == row1["ppm"] > 0

    overall = m.get("/api/trust")
    assert overall["skill"] is None and overall["accounts"][0]["account"] == m.account
    assert overall["accounts"][0]["seed"] is True
    assert overall["trust_digest"] == rank["trust_digest"]

    one = m.get(f"/api/trust/{a1}")
    assert one["skills"]["rust"]["rank"] == 1 and one["overall"]["rank"] == 2
    kinds = {(e["from"], e["kind"]) for e in one["edges_in"]}
    assert (m.account, "work") in kinds
    work = next(e for e in one["edges_in"] if e["kind"] == "work")
    assert work["amount"] == 6000 and work["weight"] == 77 and work["skills"] == ["rust"]
    assert work["bounty"] == bid and work["gives"] > 0
    rev = m.get(f"/api/trust/{ar}")
    assert any(e["kind"] == "review" for e in rev["edges_in"]), rev  # paid, honest review
    mentor = m.get(f"/api/trust/{m.account}")
    assert mentor["seed"] and {e["to"] for e in mentor["edges_out"]} >= {a1, a2}

    q = m.get(f"/api/trust/reviews/{bid}")
    by_sub = {s["submission"]: s for s in q["submissions"]}
    assert by_sub[s1]["weighted_median"] is not None and by_sub[s1]["counted"] == 2
    assert all(r["near"] for r in by_sub[s1]["reviews"])
    strict = m.get(f"/api/trust/reviews/{bid}?min_trust=1")
    counted = {s["submission"]: s["counted"] for s in strict["submissions"]}
    assert counted[s1] >= 1  # the reviewers with trust in rust still count

    # The CLI: a ranking per skill, and one account with the edges that gave it.
    out = json.loads(cli("--data", str(m.data), "--json", "reputation", "--skill", "rust").stdout)
    assert out["trust"]["accounts"][0]["account"] == a1
    assert a1 in out["reputation"]
    out = json.loads(cli("--data", str(m.data), "--json", "reputation", a1).stdout)
    assert out["trust"]["skills"]["rust"]["rank"] == 1
    human = cli("--data", str(m.data), "reputation", a1, "--skill", "rust").stdout
    assert "edges that gave it" in human and "work" in human
    human = cli("--data", str(m.data), "reputation").stdout
    assert "trust digest" in human

    # Mistakes get a sentence, not a traceback.
    for path, word in (
        ("/api/trust/lmnotanaccount", "account"),
        ("/api/trust?limit=0", "limit"),
        ("/api/trust/reviews/abc", "bounty id"),
        (f"/api/trust/reviews/{'00' * 32}", "no such bounty"),
    ):
        r = m.request("GET", path)
        assert r.status_code in (400, 404), (path, r.text)
        assert word in r.json()["message"], (path, r.text)
    bad = cli("--data", str(m.data), "reputation", "--limit", "0", check=False)
    assert bad.returncode == 2 and "limit" in bad.stderr and "Traceback" not in bad.stderr

    # The node computes what the protocol computes from its ledger, digest and all.
    m.kill()  # (no exit snapshot: the ledger replays every event)
    led = DataDir(m.data).open_ledger()
    try:
        assert trust_view(led.replica.state).digest.hex() == rank["trust_digest"]
    finally:
        led.close()


def test_the_api_cache_recomputes_after_a_change_at_most_every_refresh() -> None:
    from learnmesh.node._api_trust import TrustCache
    from learnmesh.protocol._workload import Workload

    w = Workload(seed=2, actors=8)
    evs = list(w.events(80))
    r = Replica(w.genesis)
    for ev in evs[:40]:
        r.add(ev)
    eager, lazy = TrustCache(refresh_s=0.0), TrustCache(refresh_s=3600.0)
    first = eager.get(r.state, 0)
    assert eager.get(r.state, 0) is first  # unchanged state: the same snapshot
    stale = lazy.get(r.state, 0)
    for ev in evs[40:]:
        r.add(ev)
    assert lazy.get(r.state, 0) is stale  # changed, but refreshed less than an hour ago
    fresh = eager.get(r.state, 0)
    assert fresh is not first and fresh.events == r.state.event_count == 80
    assert fresh.clock_free.digest == trust_view(r.state).digest
    rebuilt = Replica(w.genesis)  # a rebuild replaces the state object: recomputed at once
    for ev in evs:
        rebuilt.add(ev)
    assert lazy.get(rebuilt.state, 0).clock_free.digest == fresh.clock_free.digest
