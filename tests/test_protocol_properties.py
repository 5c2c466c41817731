"""Properties of the fold, under hypothesis:

(a) a workload's events in any arrival order, with duplicates, give the digest
    of in-order application, with nothing left pending;
(b) the invariants hold after every single step when valid events are mixed
    with forged, foreign, overspending, double-claiming, unauthorised, over-
    escrow, late and duplicate ones;
(c) an equivocating author (two signed branches, each with follow-ups and with
    other people's events built on them) gives one digest in every order, and
    every order detects the fork.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from learnmesh.protocol import (
    ChainWriter,
    Event,
    RemoteProtocolError,
    Replica,
    commit_body,
    decode_event,
    make_event,
    reveal_body,
)
from learnmesh.protocol._workload import Workload, make_genesis
from test_protocol_support import RUBRIC, Net, key

FAST = settings(max_examples=25, deadline=None)


def _arrival(data: st.DataObject, events: list[Event], max_dups: int = 10) -> list[Event]:
    """A hypothesis-chosen permutation of `events` with some duplicates mixed in."""
    order = data.draw(st.permutations(range(len(events))), label="order")
    out = [events[i] for i in order]
    dups = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(events) - 1), st.integers(0, len(events))),
            max_size=max_dups,
        ),
        label="dups",
    )
    for i, at in dups:
        out.insert(at, events[i])
    return out


# -- (a) order independence ------------------------------------------------------------------


@FAST
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 60), data=st.data())
def test_any_arrival_order_gives_the_in_order_digest(
    seed: int, n: int, data: st.DataObject
) -> None:
    w = Workload(seed=seed, actors=8)
    events = list(w.events(n))
    expected = w.replica.digest()
    r = Replica(w.genesis)
    for ev in _arrival(data, events):
        r.add(ev)
    assert r.pending == {}
    assert r.state.void == {}
    assert r.digest() == expected
    assert r.state.check_invariants() == []


def test_the_digest_sees_every_event() -> None:
    w = Workload(seed=3, actors=8)
    events = list(w.events(30))
    digests = set()
    for skip in range(len(events)):
        r = Replica(w.genesis)
        for e in events[:skip]:
            r.add(e)
        digests.add(r.digest())
    assert len(digests) == len(events)  # every prefix is a different state


# -- (b) invariants under attack ------------------------------------------------------------


def _attacked(seed: int, n: int) -> tuple[Workload, list[Event], list[Event], set[str]]:
    """A workload whose network also funds three attackers, the workload's valid
    events, the attackers' events, and the void codes they must earn in order."""
    w = Workload(seed=seed, actors=8)
    attackers = [key(100 + i) for i in range(3)]
    # Re-found the workload on a genesis that also funds the attackers.
    w.genesis = make_genesis(w.keys + attackers)
    w.network = w.genesis.network_id
    w.writers = [ChainWriter(k, w.network) for k in w.keys]
    w.replica = Replica(w.genesis)
    valid = list(w.events(n))
    state = w.replica.state
    a = [ChainWriter(k, w.network) for k in attackers]
    pk = [k.public_key for k in attackers]
    bad: list[Event] = []
    codes: set[str] = set()
    now = w.now

    def sign(
        i: int, kind: str, body: dict[str, Any], refs: list[bytes] = (), code: str | None = None
    ) -> Event:  # type: ignore[assignment]
        nonlocal now
        now += 1000
        ev = a[i].sign(kind, body, now, refs)
        bad.append(ev)
        if code:
            codes.add(code)
        return ev

    def tx(
        i: int, to: bytes, amount: int, claims: list[bytes] = (), code: str | None = None
    ) -> Event:  # type: ignore[assignment]
        return sign(i, "transfer", {"to": to, "amount": amount, "memo": ""}, sorted(claims), code)

    tx(0, pk[1], 2_000_000, code="insufficient_funds")
    paid = tx(0, pk[1], 100)
    tx(1, pk[2], 10, [paid.id])
    tx(1, pk[2], 10, [paid.id], code="double_claim")
    vouch = sign(2, "vouch", {"account": pk[0]})
    tx(2, pk[0], 5, [vouch.id], code="bad_claim")

    # a bounty of their own, driven through every wrong move
    body = {
        "title": "t",
        "description": "",
        "rubric": RUBRIC,
        "skills": [],
        "reward": 1000,
        "reviewer_share_bp": 1000,
        "submit_by": now + 10**7,
        "review_by": now + 2 * 10**7,
        "quorum": 1,
    }
    b = sign(0, "bounty", body)
    salt = bytes(16)
    c = sign(1, "commit", commit_body(b.id, pk[1], "x", [], salt), [b.id])
    sign(0, "commit", commit_body(b.id, pk[0], "y", [], salt), [b.id], code="own_bounty")
    close = sign(0, "close", {"bounty": b.id, "accepted": [c.id]}, [b.id, c.id])
    sign(2, "close", {"bounty": b.id, "accepted": [c.id]}, [b.id, c.id], code="not_mentor")
    sub = sign(1, "reveal", reveal_body(b.id, c.id, close.id, "x", [], salt), [c.id, close.id])
    review = {"bounty": b.id, "submission": sub.id, "scores": [5, 5], "comment": ""}
    rv = sign(2, "review", review, [sub.id])
    sign(2, "review", review, [sub.id], code="duplicate_review")
    sign(1, "review", review, [sub.id], code="self_review")

    def award(i: int, winners: int, reviewers: int, code: str | None) -> Event:
        body = {
            "bounty": b.id,
            "winners": [{"submission": sub.id, "amount": winners}],
            "reviewers": [{"review": rv.id, "amount": reviewers}] if reviewers else [],
        }
        return sign(
            i, "award", body, sorted({b.id, sub.id, rv.id} if reviewers else {b.id, sub.id}), code
        )

    award(2, 10, 0, "not_mentor")
    award(0, 1001, 0, "over_escrow")
    award(0, 10, 101, "over_share")
    award(0, 500, 100, None)
    award(0, 10, 0, "settled")

    # against the workload's own bounties and submissions
    bounties = [e for e in valid if e.kind.name == "bounty" and e.id in state.bounties]
    if bounties:
        wb = bounties[0]
        late = commit_body(wb.id, pk[2], "late", [], salt)
        ev = a[2].sign("commit", late, wb.body["submit_by"] + 1, [wb.id])
        bad.append(ev)
        codes.add("late")
        award_body = {"bounty": wb.id, "winners": [], "reviewers": []}
        sign(1, "award", award_body, [wb.id], code="not_mentor")
    others = [e for e in valid if e.kind.name == "transfer"]
    if others:
        tx(2, pk[0], 1, [others[0].id], code="bad_claim")
    return w, valid, bad, codes


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(10, 50), data=st.data())
def test_invariants_hold_at_every_step_under_attack(seed: int, n: int, data: st.DataObject) -> None:
    w, valid, bad, codes = _attacked(seed, n)
    ref = Replica(w.genesis)
    for e in valid + bad:
        ref.add(e)
    got = {code for code, _ in ref.state.void.values()}
    assert {"insufficient_funds", "double_claim", "over_escrow", "duplicate_review"} <= codes
    assert codes <= got, codes - got
    assert ref.pending == {}
    # forged and foreign events never get in
    forged = bytearray(valid[0].raw)
    forged[-1] ^= 1
    foreign = make_event(
        key(100), Net().network, 1, None, 1, "vouch", {"account": key(1).public_key}
    )
    for raw, code in ((bytes(forged), "bad_signature"), (foreign.raw, "wrong_network")):
        try:
            decode_event(raw, 1 << 20, w.network)
        except RemoteProtocolError as exc:
            assert exc.code == code
        else:
            raise AssertionError("a bad event decoded")
    r = Replica(w.genesis)
    assert r.add(foreign).rejected[foreign.id][0] == "wrong_network"
    for ev in _arrival(data, valid + bad):
        r.add(ev)
        assert r.state.check_invariants() == []
    assert r.pending == {}
    assert r.digest() == ref.digest()


# -- (c) forks ---------------------------------------------------------------------------------


def _fork_story() -> tuple[Net, list[Event], int]:
    """Member 0 forks at seq 2; each branch pays someone who spends the payment
    on; others build on both branches and go about their business."""
    net = Net(n=6, allocations=[10_000, 100, 100, 100, 100, 100])
    w0 = net.writers[0]
    net.emit(0, "profile", {"name": "M", "bio": "", "skills": []})
    head = (w0.seq, w0.head)
    a2 = net.transfer(0, 1, 500)  # branch A
    a3 = net.emit(0, "vouch", {"account": net.pk(1)})
    w0.resume(*head)
    b2 = net.transfer(0, 2, 700)  # branch B
    b3 = net.bounty(0, reward=1000)
    b4 = net.emit(0, "vouch", {"account": net.pk(2)})
    # honest people who trusted a branch
    x = net.transfer(1, 3, 400, claims=[a2.id])  # needs the 500 from branch A
    y = net.transfer(2, 3, 50, claims=[b2.id])  # affordable even without branch B
    z = net.transfer(3, 4, 420, claims=[x.id, y.id])  # needs x
    c = net.commit(4, b3)  # depends on a branch-B bounty
    # and people unaffected
    u = net.transfer(5, 4, 10)
    v = net.emit(4, "vouch", {"account": net.pk(5)})
    for e in (a2, a3, b2, b3, b4):
        assert net.void(e) == "equivocation"
    assert net.void(x) == "insufficient_funds"
    assert net.void(y) is None
    assert net.void(z) == "insufficient_funds"
    assert net.void(c) == "void_dependency"
    assert net.void(u) is None and net.void(v) is None
    return net, list(net.events), 2


FORK_NET, FORK_EVENTS, FORK_SEQ = _fork_story()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_fork_gives_one_digest_in_every_order(data: st.DataObject) -> None:
    r = Replica(FORK_NET.genesis)
    for ev in _arrival(data, FORK_EVENTS, max_dups=5):
        r.add(ev)
        assert r.state.check_invariants() == []
    assert r.pending == {}
    assert r.state.forks == {FORK_NET.pk(0): FORK_SEQ}
    assert r.proofs[FORK_NET.pk(0)].verify(FORK_NET.network) == (FORK_NET.pk(0), FORK_SEQ)
    assert r.digest() == FORK_NET.replica.digest()
    assert r.state.void == FORK_NET.state.void


def test_the_fork_is_in_the_digest() -> None:
    r = Replica(FORK_NET.genesis)
    branch_b = {e.id for e in FORK_EVENTS if e.author == FORK_NET.pk(0) and e.seq >= 2}
    for e in FORK_EVENTS:
        if e.id not in branch_b or e.kind.name == "transfer":
            r.add(e)
    assert r.state.forks == {FORK_NET.pk(0): 2}
    assert r.digest() != FORK_NET.replica.digest()  # fewer events, same fork


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_a_fork_through_a_rejected_event_is_seen_in_every_order(data: st.DataObject) -> None:
    """A second seq-3 event whose prev is wrong is refused, but it is still a
    signed claim at (author, 3): every order must see the fork, not only those
    where the good seq 3 came first."""
    net = Net()
    e1 = net.emit(0, "vouch", {"account": net.pk(1)})
    net.emit(0, "vouch", {"account": net.pk(2)})
    net.emit(0, "profile", {"name": "good", "bio": "", "skills": []})
    bad3 = make_event(
        net.keys[0],
        net.network,
        3,
        e1.id,
        net.now,
        "profile",
        {"name": "bad", "bio": "", "skills": []},
    )
    net.emit(1, "vouch", {"account": net.pk(0)})
    events = [*net.events, bad3]
    r = Replica(net.genesis)
    for ev in _arrival(data, events, max_dups=3):
        r.add(ev)
    assert r.state.forks == {net.pk(0): 3}
    assert bad3.id in r.rejected
    ref = Replica(net.genesis)
    for ev in events:
        ref.add(ev)
    assert r.digest() == ref.digest()
