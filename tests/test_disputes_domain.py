"""The node's dispute commands (node/_disputes.py) on in-process nodes: real
Node objects with their own SQLite ledgers and one shared, hand-driven clock,
their events carried between them through the same admission function gossip
uses. Fast, so it covers what the process tests cannot wait for: an appeal
with five fresh jurors after a rejection, the appeal chain's final outcome,
and the duty pass that reveals after vote_by and claims what is owed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from learnmesh.ledger import BlobStore, Ledger
from learnmesh.node._api import make_app
from learnmesh.node._disputes import (
    appeal,
    claim,
    dispute_json,
    duty_once,
    file_dispute,
    jury_reveal,
    jury_vote,
    records,
    what_waits,
)
from learnmesh.node._openapi import openapi
from learnmesh.node._service import Node, NodeSettings, UserError
from learnmesh.protocol import Genesis, KeyPair

MEMBERS = 8  # two juries of 3 and 5 that share no one
DAY_S = 86_400


class World:
    """Nodes that hear each other's events whenever `spread` is called."""

    def __init__(self, root: Path) -> None:
        self.t = [time.time()]
        keys = {n: KeyPair(os.urandom(32)) for n in ["mentor", "a", "b"]}
        keys.update({f"j{i}": KeyPair(os.urandom(32)) for i in range(MEMBERS)})
        self.genesis = Genesis(
            name="disputes-domain",
            created_ms=int(self.t[0] * 1000) - 60_000,
            allocations=tuple(sorted((k.public_key, 10_000) for k in keys.values())),
            trusted=tuple(sorted(keys[f"j{i}"].public_key for i in range(MEMBERS))),
        )
        self.nodes: dict[str, Node] = {}
        for name, key in keys.items():
            d = root / name
            d.mkdir()
            self.nodes[name] = Node(
                data_dir=d,
                key=key,
                p2p_seed=os.urandom(32),
                genesis=self.genesis,
                ledger=Ledger.open(str(d / "ledger.db"), self.genesis),
                blobs=BlobStore(d / "blobs"),
                settings=NodeSettings(fetch_attachments=False),
                clock=lambda: self.t[0],
            )

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def by_account(self, acct: bytes) -> Node:
        return next(n for n in self.nodes.values() if n.key.public_key == acct)

    def spread(self) -> None:
        every: dict[bytes, bytes] = {}
        for n in self.nodes.values():
            every.update(n.ledger.replica.raw)
        for n in self.nodes.values():
            missing = [raw for eid, raw in every.items() if eid not in n.ledger.replica.raw]
            if missing:
                events, bad = n.decode_raws(missing)
                assert not bad
                n.admit(events)
        digests = {n.ledger.replica.digest() for n in self.nodes.values()}
        assert len(digests) == 1, "every node holds the same events and state"

    def advance(self, seconds: float) -> None:
        self.t[0] += seconds

    def close(self) -> None:
        for n in self.nodes.values():
            n.ledger.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()


async def _unfair_award(w: World) -> tuple[bytes, bytes]:
    """b's weaker work is paid; returns (the award id, a's submission id)."""
    m, a, b = w["mentor"], w["a"], w["b"]
    now = m.now_ms()
    body = {
        "title": "Explain consensus",
        "description": "",
        "rubric": [{"name": "quality", "max": 10}],
        "skills": [],
        "reward": 900,
        "reviewer_share_bp": 0,
        "submit_by": now + 3_600_000,
        "review_by": now + 7_200_000,
        "quorum": 1,
    }
    bid = (await m.post_bounty(body)).id
    w.spread()
    await a.submit(bid, "a complete answer", [])
    await b.submit(bid, "two lines", [])
    w.spread()
    await m.close(bid)
    w.spread()
    await a._reveal_ready()
    await b._reveal_ready()
    w.spread()
    subs = {s.learner: s.id for s in m.ledger.replica.state.bounties[bid].submissions.values()}
    award = await m.award(bid, {subs[b.key.public_key]: None})
    w.spread()
    return award.id, subs[a.key.public_key]


_SPEC: dict[str, Any] = {}


def _valid(node: Node, route: str, value: Any) -> None:
    """`value` is what the API's description says `GET route` answers."""
    if not _SPEC:
        _SPEC.update(openapi(make_app(node, "t").routes))
    schema = _SPEC["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]
    root = {**schema["schema"], "components": _SPEC["components"]}
    errors = sorted(Draft202012Validator(root).iter_errors(value), key=str)
    assert not errors, f"{route}: {errors[0].message} at {list(errors[0].absolute_path)}"


def _check_views(w: World) -> None:
    """Every node's dispute and jury answers match the API's description."""
    for n in w.nodes.values():
        now = n.now_ms()
        for rec in records(n).values():
            _valid(n, "/api/disputes/{did}", dispute_json(n, rec, now))
        _valid(n, "/api/jury", what_waits(n, now))


def _jurors(w: World, did: bytes) -> list[Node]:
    return [w.by_account(j) for j in records(w["a"])[did].jurors]


async def test_rejected_then_upheld_on_appeal(world: World) -> None:
    w = world
    a, b, m = w["a"], w["b"], w["mentor"]
    award, a_sub = await _unfair_award(w)
    start = a.ledger.replica.state.balance(a.key.public_key)

    # -- the first round: the node finds the standing and draws three jurors ----------------
    ev = await file_dispute(a, award, None, "my work is better", [("n.txt", b"notes")], 20)
    w.spread()
    did = ev.id
    assert ev.body["subject"] == a_sub
    first = _jurors(w, did)
    assert len(first) == 3
    assert not {j.key.public_key for j in first} & {x.key.public_key for x in (a, b, m)}, (
        "no party on the jury"
    )
    duty = what_waits(first[0], first[0].now_ms())
    assert [(r["dispute"], r["action"]) for r in duty["jury"]] == [(did.hex(), "vote")]
    assert what_waits(m, m.now_ms())["against_me"][0]["dispute"] == did.hex()

    for j, verdict in zip(first, ("reject", "reject", "uphold"), strict=True):
        await jury_vote(j, did, verdict, f"{verdict}, after reading")
        w.spread()
    with pytest.raises(UserError) as e:
        await jury_reveal(first[0], did)
    assert e.value.code == "too_early"
    _check_views(w)  # voting
    assert await duty_once(first[0]) == []  # nothing to reveal before vote_by

    # -- voting closes: each juror's duty pass reveals; the reject majority claims ------------
    w.advance(3 * DAY_S + 60)
    passes = []
    for j in first:
        passes.append([x.kind.name for x in await duty_once(j)])
        w.spread()
    # the second reveal makes the majority: that juror's pass claims its share at once
    assert passes == [["jury_reveal"], ["jury_reveal", "dispute_claim"], ["jury_reveal"]]
    _check_views(w)  # decided, one juror's share still to claim
    assert [x.kind.name for x in await duty_once(first[0])] == ["dispute_claim"]
    w.spread()
    assert await duty_once(first[1]) == []
    assert await duty_once(first[2]) == []  # the dissenter is owed nothing
    with pytest.raises(UserError) as e:
        await claim(first[2], did)
    assert e.value.code == "not_owed"
    d = dispute_json(a, records(a)[did], a.now_ms())
    assert d["phase"] == "rejected" and d["outcome"] == "rejected"
    assert d["next_action"] == "appeal" and d["escrow"] == 20 - 2 * (20 // 3)
    assert [m["amount"] for m in d["bond_movements"]] == [20, 6, 6]

    # -- the appeal: only a party, at least twice the bond, five jurors none of the first ------
    with pytest.raises(UserError) as e:
        await appeal(first[0], did, "wrong", [])
    assert e.value.code == "no_standing"
    with pytest.raises(UserError) as e:
        await appeal(a, did, "the jury did not read it", [], 30)
    assert e.value.code == "bond_too_small"
    ap = await appeal(a, did, "the jury did not read it", [])
    w.spread()
    assert ap.body["bond"] == 40 and ap.body["appeal_of"] == did
    second = _jurors(w, ap.id)
    assert len(second) == 5 and not {j.key.public_key for j in second} & {
        j.key.public_key for j in first
    }
    with pytest.raises(UserError) as e:
        await appeal(a, did, "again", [])
    assert e.value.code == "already_appealed"
    with pytest.raises(UserError) as e:
        await appeal(m, ap.id, "appeal the appeal", [])
    assert e.value.code == "final"

    for j, verdict in zip(second, ("uphold",) * 3 + ("reject",) * 2, strict=True):
        await jury_vote(j, ap.id, verdict)
        w.spread()
    w.advance(3 * DAY_S + 60)
    for j in second:
        await duty_once(j)
        w.spread()
    assert [x.kind.name for x in await duty_once(a)] == ["dispute_claim"]  # the appeal's bond
    w.spread()

    # -- every node: the appeal upheld, the chain's outcome upheld, the bonds where they belong --
    for n in w.nodes.values():
        recs = records(n)
        root = dispute_json(n, recs[did], n.now_ms())
        top = dispute_json(n, recs[ap.id], n.now_ms())
        assert root["phase"] == "rejected" and root["outcome"] == "upheld"
        assert top["phase"] == "upheld" and top["outcome"] == "upheld"
        assert root["appeals"] == [ap.id.hex()] and top["appeal_of"] == did.hex()
        assert top["escrow"] == 0
    _check_views(w)
    # a got the appeal's 40 back and lost the first bond: 12 to the two jurors who
    # rejected, 8 locked for good (the dissenter is owed nothing), still in the supply
    assert a.ledger.replica.state.balance(a.key.public_key) == start - 20
    state = a.ledger.replica.state
    assert state.total_supply() == w.genesis.total_supply


async def test_refusals_before_anything_is_written(world: World) -> None:
    w = world
    a, b, m, j0 = w["a"], w["b"], w["mentor"], w["j0"]
    award, _ = await _unfair_award(w)
    head = a.ledger.replica.heads.get(a.key.public_key)
    cases: list[tuple[Node, dict[str, Any], str]] = [
        (j0, {}, "no_standing"),  # not a learner of the bounty
        (m, {}, "no_standing"),  # its own award
        (a, {"bond": 9}, "bond_too_small"),
        (a, {"claim": "   "}, "bad_claim"),
        (a, {"vote_by": a.now_ms() - 1}, "bad_deadline"),
        (a, {"bond": 10**6}, "insufficient_funds"),
        (a, {"subject": award}, "bad_subject"),
    ]
    for who, change, code in cases:
        args: dict[str, Any] = {"subject": None, "claim": "unfair", "bond": 20, **change}
        with pytest.raises(UserError) as e:
            await file_dispute(
                who,
                award,
                args["subject"],
                args["claim"],
                [],
                args["bond"],
                vote_by=args.get("vote_by"),
            )
        assert e.value.code == code, (change, e.value.message)
    bounty = next(iter(m.ledger.replica.state.bounties))
    with pytest.raises(UserError) as e:
        await file_dispute(a, bounty, None, "x", [], 20)
    assert e.value.code == "not_disputable"
    assert a.ledger.replica.heads.get(a.key.public_key) == head  # nothing written
    ev = await file_dispute(a, award, None, "unfair", [], 20)
    w.spread()
    with pytest.raises(UserError) as e:
        await file_dispute(a, award, None, "unfair again", [], 20)
    assert e.value.code == "already_disputed"
    with pytest.raises(UserError) as e:
        await jury_vote(b, ev.id, "uphold")
    assert e.value.code == "not_juror"
    j = _jurors(w, ev.id)[0]
    with pytest.raises(UserError) as e:
        await jury_vote(j, ev.id, "maybe")
    assert e.value.code == "bad_verdict"
    await jury_vote(j, ev.id, "uphold")
    with pytest.raises(UserError) as e:
        await jury_vote(j, ev.id, "reject")
    assert e.value.code == "already_voted"
    w.advance(3 * DAY_S + 60)
    late = _jurors(w, ev.id)[1]
    with pytest.raises(UserError) as e:
        await jury_vote(late, ev.id, "uphold")
    assert e.value.code == "late"
