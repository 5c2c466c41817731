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


def _lifecycle(
    m: Node,
    w: dict[bytes, ChainWriter],
    bid: str,
    learners: list[KeyPair],
    reviews: list[tuple[KeyPair, int, list[int]]],
) -> tuple[list[str], list[str]]:
    """Commits and reveals by `learners` (signed here, posted to the mentor's
    node), the mentor's close, then reviews (reviewer, learner index, scores)."""
    b = bytes.fromhex(bid)
    ts = int(time.time() * 1000)
    commits = []
    for k in learners:
        salt = bytes([k.public_key[0]]) * 16
        body = commit_body(b, k.public_key, f"answer of {k.public_key[:2].hex()}", [], salt)
        commits.append((_post(m, w[k.public_key].sign("commit", body, ts, [b]).raw), salt))
    close = bytes.fromhex(m.post(f"/api/bounties/{bid}/close", {})["id"])
    subs = []
    for k, (cid, salt) in zip(learners, commits, strict=True):
        c = bytes.fromhex(cid)
        body = reveal_body(b, c, close, f"answer of {k.public_key[:2].hex()}", [], salt)
        ev = w[k.public_key].sign("reveal", body, ts + 2000, sorted([c, close]))
        subs.append(_post(m, ev.raw))
    rids = []
    for who, i, scores in reviews:
        s = bytes.fromhex(subs[i])
        body = {"bounty": b, "submission": s, "scores": scores, "comment": "ok"}
        rids.append(_post(m, w[who.public_key].sign("review", body, ts + 3000, [s]).raw))
    return subs, rids


def test_a_minimum_reviewer_trust_and_the_trusted_award(tmp_path: Path) -> None:
    """Two members earn trust in rust by honest paid reviews; on a second rust
    bounty that asks for reviewers with at least 0.1 % of all trust, three fresh
    keys agree on a low score. Their reviews do not count toward quorum, and the
    trusted award pays the two trusted reviewers (the plain median would pay the
    fresh keys). The threshold is in the bounty's terms (PROTOCOL.md §6.6), in the
    ledger: it survives a restart, and no node-side file holds it."""
    keys = [KeyPair(bytes([50 + i]) * 32) for i in range(6)]
    k1, k2, kr, f1, f2, f3 = keys
    net = Network(
        tmp_path,
        ["mentor"],
        allocations={"mentor": 100_000},
        extra_allocations=[(k.public_key, 10) for k in keys],
        trusted=["mentor"],
    )
    with net:
        m = net["mentor"]
        m.start()
        m.wait_ready()
        w = {k.public_key: ChainWriter(k, net.network_id) for k in keys}
        rubric = [{"name": "clarity", "max": 10}, {"name": "depth", "max": 10}]
        b1 = m.post(
            "/api/bounties",
            {"title": "Lifetimes", "reward": 10_000, "rubric": rubric, "skills": ["rust"]},
        )["id"]
        subs1, _ = _lifecycle(
            m, w, b1, [k1, k2], [(kr, 0, [8, 8]), (k2, 0, [8, 7]), (kr, 1, [6, 6]), (k1, 1, [6, 5])]
        )
        m.post(f"/api/bounties/{b1}/award", {"winners": {subs1[0]: 6000, subs1[1]: 3000}})

        # Mistakes get a sentence.
        bad = m.request(
            "POST",
            "/api/bounties",
            json_body={"title": "x", "reward": 10, "min_reviewer_trust_ppm": 2_000_000},
        )
        assert bad.status_code == 400 and "min_reviewer_trust_ppm" in bad.json()["message"]
        out = cli(
            "--data", str(m.data), "bounty", "post", "--title", "x", "--reward", "5",
            "--min-reviewer-trust", "101", check=False,
        )  # fmt: skip
        assert out.returncode == 2 and "percent" in out.stderr and "Traceback" not in out.stderr

        # The second bounty asks for reviewers with at least 0.1 % of all trust.
        out = cli(
            "--data", str(m.data), "--json", "bounty", "post", "--title", "Borrowing",
            "--reward", "10000", "--rubric", "clarity=10", "--rubric", "depth=10",
            "--skill", "rust", "--quorum", "2", "--min-reviewer-trust", "0.1",
        )  # fmt: skip
        b2 = json.loads(out.stdout)["id"]
        assert m.get(f"/api/bounties/{b2}")["terms"]["min_reviewer_trust_ppm"] == 1000
        assert not (m.data / "reviewer_trust.json").exists()
        (s2,), (r_kr, r_k1, *r_fresh) = _lifecycle(
            m,
            w,
            b2,
            [k2],
            [(kr, 0, [9, 9]), (k1, 0, [9, 8]), (f1, 0, [1, 1]), (f2, 0, [1, 1]), (f3, 0, [1, 1])],
        )

        def view() -> dict[str, object]:
            rt: dict[str, object] = m.get(f"/api/bounties/{b2}")["review_trust"]
            return rt

        rt = wait_for(
            lambda: (v := view())["submissions"].get(s2, {}).get("counted") == 2 and v,  # type: ignore[attr-defined]
            "the trusted reviewers to count",
        )
        assert rt["min_reviewer_trust_ppm"] == 1000 and rt["share"] == 1000
        sub = rt["submissions"][s2]
        assert sub["quorum_met"] is True and sub["weighted_median"] in range(850, 901)
        revs = sub["reviews"]
        for rid in (r_kr, r_k1):
            assert revs[rid]["counts"] and revs[rid]["near"] and revs[rid]["weight_ppm"] >= 1000
            assert revs[rid]["paid_by_trusted"] == 500 and revs[rid]["paid_by_median"] == 0
        for rid in r_fresh:
            assert not revs[rid]["counts"] and revs[rid]["weight"] == 0
            assert "minimum trust" in revs[rid]["why"]
            assert revs[rid]["paid_by_trusted"] == 0 and revs[rid]["paid_by_median"] == 333
        assert rt["paid_by"] == {"median": sorted(r_fresh), "trusted": sorted([r_kr, r_k1])}

        # the trust review route takes the bounty's minimum by default
        q = m.get(f"/api/trust/reviews/{b2}")
        assert q["min_trust"] == rt["min_trust"] > 0 and q["submissions"][0]["counted"] == 2
        assert m.get(f"/api/trust/reviews/{b2}?min_trust=0")["submissions"][0]["counted"] == 5

        human = cli("--data", str(m.data), "bounty", "show", b2).stdout
        assert "at least 0.10 % of all trust" in human
        assert "2 of quorum 2 reviews count (met)" in human and "does not count" in human

        # The threshold is the node's data: it is there after a restart.
        code, _ = m.stop()
        assert code == 0
        m.start()
        m.wait_ready()
        assert m.get(f"/api/bounties/{b2}")["review_trust"]["min_reviewer_trust_ppm"] == 1000

        bad = m.request(
            "POST",
            f"/api/bounties/{b2}/award",
            json_body={"winners": {s2: None}, "reviewers": "best"},
        )
        assert bad.status_code == 400 and "median" in bad.json()["message"]
        out = cli("--data", str(m.data), "award", b2, "--winner", s2, "--reviewers", "trusted")
        assert "trusted rule" in out.stdout
        wait_for(lambda: m.get(f"/api/bounties/{b2}")["phase"] == "awarded", "the award")
        detail = m.get(f"/api/bounties/{b2}")["submissions_detail"][0]
        paid = {r["id"]: r["paid"] for r in detail["reviews"]}
        assert paid == {r_kr: 500, r_k1: 500, **{r: 0 for r in r_fresh}}
        assert detail["awarded"] == 9000


async def test_the_refresh_computes_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """`TrustCache.refresh` runs the propagation on a worker thread: the event
    loop keeps running meanwhile (here the propagation is made 0.3 s slower, as
    at 10,000 accounts), and the result is the synchronous one."""
    import learnmesh.node._api_trust as api_trust
    import trio
    from learnmesh.node._api_trust import TrustCache
    from learnmesh.protocol._trust import compute_raw
    from learnmesh.protocol._workload import Workload

    def slow(p: object) -> object:
        time.sleep(0.3)
        return compute_raw(p)  # type: ignore[arg-type]

    monkeypatch.setattr(api_trust, "compute_raw", slow)
    w = Workload(seed=3, actors=8)
    r = Replica(w.genesis)
    for ev in w.events(120):
        r.add(ev)
    ticks = 0
    done = trio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await trio.sleep(0.01)

    async with trio.open_nursery() as n:
        n.start_soon(ticker)
        snap = await TrustCache().refresh(r.state, 0)
        done.set()
    assert ticks >= 5, "the event loop was blocked while trust was computed"
    assert snap.events == 120
    assert snap.clock_free.digest == TrustCache().get(r.state, 0).clock_free.digest
