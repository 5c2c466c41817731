"""Per-skill trust (PROTOCOL.md §6.5): the test vectors, determinism and order
independence, a farming ring's capture bounded by the blend factor, forks,
penalties, and review quality weighted by trust."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learnmesh.devnet._bench_sybil import build
from learnmesh.protocol import Event, Replica
from learnmesh.protocol._reputation import _median, reputation_points
from learnmesh.protocol._trust import (
    _CACHE,
    BLEND_PM,
    ITERATIONS,
    MIN_OUT_WEIGHT,
    ONE,
    VOUCH_CAP,
    VOUCH_WEIGHT,
    propagate,
    review_judgements,
    reviewer_calibration,
    trust_digest,
    trust_edges,
    trust_view,
    weighted_median,
)
from learnmesh.protocol._workload import Workload
from test_protocol_support import Net

FAST = settings(max_examples=20, deadline=None)

A, B, C, D, E = (bytes([i]) * 32 for i in range(1, 6))


# -- the vectors of PROTOCOL.md §6.5 ---------------------------------------------------------


def test_vector_propagation() -> None:
    w = {(A, B): 40, (A, C): 10, (B, C): 20, (C, B): 20, (B, D): 4, (E, A): 100}
    t = propagate(w, [A])
    assert t == {
        A: 219755821764,
        B: 455337714640,
        C: 359908323440,
        D: 64509767932,
    }  # E is not reachable from the seed: no trust, so its edge to A passes nothing
    assert sum(t.values()) == ONE  # one seed: nothing lost to rounding


def test_vector_two_seeds_and_min_out_weight() -> None:
    # B's only edge weighs 4 < MIN_OUT_WEIGHT 16: B passes a quarter of what it could
    # (and so does A's, of weight 1); each seed starts with ONE // 2
    t = propagate({(A, C): 1, (B, D): 4}, [A, B])
    assert t == {A: 485301683985, B: 485301683985, C: 25781651961, D: 103126607844}
    assert sum(t.values()) == ONE - 1  # the odd unit of rounding is lost, once per round


def test_vector_weighted_median() -> None:
    assert weighted_median([(100, 1), (200, 1), (900, 5)]) == 900  # the heavy one wins
    assert weighted_median([(100, 1), (300, 1)]) == 200  # exact half: the mean, floored
    assert weighted_median([(100, 0), (300, 0), (500, 0)]) == 300  # no weight: plain median
    assert weighted_median([(500, 3), (100, 0)]) == 500  # weightless values do not count


def test_vector_scenario_digest() -> None:
    """A fixed history of signed events (deterministic keys and Ed25519)."""
    net = Net(n=6, trusted=1)
    net.lifecycle(mentor=0, learners=(1, 2), reviewers=(3, 4))
    net.lifecycle(mentor=1, learners=(2,), reviewers=(3, 5))
    net.emit(0, "vouch", {"account": net.pk(5)})
    view = trust_view(net.state)
    assert {i: view.overall.get(net.pk(i), 0) for i in range(6)} == {
        0: 462604507260,  # the seed
        1: 286724954530,  # paid work from 0, then mentor of bounty 2
        2: 185411986970,  # paid work from 1 (0 did not pay it)
        3: 148385895900,  # paid honest reviews from 0 and from 1
        4: 0,  # an unpaid review gives nothing
        5: 16384283116,  # one vouch from 0 (and an unpaid review)
    }
    assert {i: view.skills["python"].get(net.pk(i), 0) for i in range(6)} == {
        0: 0,  # the seed's trust is not in a skill until someone pays it in one
        1: 286718418560,
        2: 185436247710,
        3: 148391466542,
        4: 0,
        5: 0,  # a vouch names no skill
    }
    assert view.digest.hex() == ("08ad6120cb3943f12cdec4d1584413e05e9723733925259d95760316ec6c09e1")


def _reference(weights: dict[tuple[bytes, bytes], int], seeds: list[bytes]) -> dict[bytes, int]:
    """PROTOCOL.md §6.5's propagation, written as plainly as the text."""
    seeds = sorted(set(seeds))
    if not seeds:
        return {}
    out_w: dict[bytes, int] = {}
    for (u, v), w in weights.items():
        if u != v and w > 0:
            out_w[u] = out_w.get(u, 0) + w
    each = ONE // len(seeds)
    t = {k: each for k in seeds}
    for _ in range(ITERATIONS):
        new: dict[bytes, int] = {}
        for (u, v), w in sorted(weights.items()):
            if u == v or w <= 0:
                continue
            q = t.get(u, 0) * (1000 - BLEND_PM) // (1000 * max(out_w[u], MIN_OUT_WEIGHT))
            new[v] = new.get(v, 0) + q * w
        share = (each * len(seeds) - sum(new.values())) // len(seeds)
        for k in seeds:
            new[k] = new.get(k, 0) + share
        t = new
    return {k: x for k, x in t.items() if x}


@FAST
@given(
    st.dictionaries(
        st.tuples(st.integers(0, 12), st.integers(0, 12)), st.integers(1, 200), max_size=60
    ),
    st.lists(st.integers(0, 12), max_size=4),
)
def test_propagation_matches_the_plain_reference(
    edges: dict[tuple[int, int], int], seeds: list[int]
) -> None:
    name = [bytes([i]) * 32 for i in range(13)]
    w = {(name[u], name[v]): x for (u, v), x in edges.items()}
    s = [name[i] for i in seeds]
    assert propagate(w, s) == _reference(w, s)


# -- determinism and order independence ------------------------------------------------------


@FAST
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(20, 160), data=st.data())
def test_any_arrival_order_gives_the_same_trust(seed: int, n: int, data: st.DataObject) -> None:
    w = Workload(seed=seed, actors=8)
    events = list(w.events(n))
    expected = trust_view(w.replica.state)
    order = data.draw(st.permutations(range(len(events))), label="order")
    r = Replica(w.genesis)
    for i in order:
        r.add(events[i])
    assert r.pending == {}
    got = trust_view(r.state)
    assert got.digest == expected.digest
    assert got.overall == expected.overall and got.skills == expected.skills
    assert trust_edges(r.state) == trust_edges(w.replica.state)


@FAST
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(20, 120))
def test_the_view_is_a_pure_function_of_the_state(seed: int, n: int) -> None:
    w = Workload(seed=seed, actors=8)
    list(w.events(n))
    s = w.replica.state
    digest = s.digest()
    first = trust_view(s)
    _CACHE.clear()
    again = trust_view(s)
    assert again is not first and again.digest == first.digest == trust_digest(again)
    assert s.digest() == digest  # a view: the state digest does not move
    total = sum(first.overall.values())
    assert total <= ONE
    ns = len(first.seeds)
    if ns and not first.penalties:  # only penalties and rounding lose mass
        assert total >= ONE - ns * (ITERATIONS + 1)
    assert all(x > 0 for x in first.overall.values())


def test_the_cache_follows_the_state() -> None:
    w = Workload(seed=5, actors=8)
    evs = list(w.events(60))
    v1 = trust_view(w.replica.state)
    assert trust_view(w.replica.state) is v1  # unchanged state: cached
    r = Replica(w.genesis)
    for ev in evs[:30]:
        r.add(ev)
    partial = trust_view(r.state)
    for ev in evs[30:]:
        r.add(ev)
    assert trust_view(r.state).digest == v1.digest
    assert partial.digest != v1.digest or partial.overall == v1.overall


# -- a farming ring ------------------------------------------------------------------------


def _ring_share(s: object) -> tuple[int, int, dict[str, int]]:
    from learnmesh.devnet._bench_sybil import Sybil

    assert isinstance(s, Sybil)
    view = trust_view(s.community.state)
    ring = {s.community.pk[i] for i in s.ring}
    total = sum(view.overall.values())
    inside = sum(x for k, x in view.overall.items() if k in ring)
    skills = {sk: sum(x for k, x in sc.items() if k in ring) for sk, sc in view.skills.items()}
    return inside, total, skills


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    honest=st.integers(20, 60),
    sybils=st.integers(3, 30),
    k=st.integers(1, 6),
)
def test_a_rings_capture_is_bounded_by_the_blend_factor(
    seed: int, honest: int, sybils: int, k: int
) -> None:
    s = build(honest, sybils, seed=seed, rounds=2, farm_rounds=2)
    inside, _, skills = _ring_share(s)
    assert inside == 0 and not any(skills.values())  # no edge from honest: no trust at all
    # today's points, by contrast, are farmed freely
    pts = reputation_points(s.community.state)
    assert sum(pts.get(s.community.pk[i], 0) for i in s.ring) > 0
    s.attack(k)
    view = trust_view(s.community.state)
    ring = {s.community.pk[i] for i in s.ring}
    inside = sum(x for kk, x in view.overall.items() if kk in ring)
    # What crosses the attack edges per round, at the end: the ring keeps at most
    # (1 - a) of its own trust each round, so it holds at most inflow / a.
    inflow = sum(
        view.rates.get(e.src, 0) * e.weight
        for e in view.all_edges()
        if e.dst in ring and e.src not in ring
    )
    assert inside <= inflow * 1000 // BLEND_PM * 3 // 2 + 1000  # 1.5x: not yet converged
    assert inflow > 0 or inside == 0


def test_the_ring_share_grows_about_linearly_with_attack_edges() -> None:
    s = build(200, 40, seed=7, rounds=3, farm_rounds=3)
    shares = {}
    for k in (0, 1, 3, 10):
        s.attack(k)
        inside, total, _ = _ring_share(s)
        shares[k] = inside * 1_000_000 // total
    assert shares[0] == 0
    assert 0 < shares[1] <= shares[3] <= shares[10]
    assert shares[10] <= 10 * max(shares[1], shares[3] // 3) * 3  # within 3x of linear
    assert shares[3] <= 50_000  # the goal: at most 5 %


def test_signed_and_forged_histories_give_the_same_trust() -> None:
    """The bench skips signatures; trust never depends on them or on ids."""
    fake = build(12, 4, seed=3, rounds=2, farm_rounds=1)
    real = build(12, 4, seed=3, rounds=2, farm_rounds=1, sign=True)
    fake.attack(2)
    real.attack(2)
    assert fake.community.events == real.community.events
    assert trust_view(fake.community.state).digest == trust_view(real.community.state).digest


# -- edges, vouches, forks -----------------------------------------------------------------


def test_edges_come_from_paid_work_honest_paid_reviews_and_vouches() -> None:
    net = Net(n=6, trusted=1)
    lc = net.lifecycle(mentor=0, learners=(1, 2), reviewers=(3, 4))
    net.emit(0, "vouch", {"account": net.pk(5)})
    edges = trust_edges(net.state)
    kinds = {(e.src, e.dst, e.kind) for e in edges}
    assert (net.pk(0), net.pk(1), "work") in kinds  # learner 1 won 5000
    assert (net.pk(0), net.pk(2), "work") not in kinds  # learner 2 was not paid
    assert (net.pk(0), net.pk(3), "review") in kinds  # review 0 paid 500, and honest
    assert (net.pk(0), net.pk(4), "review") not in kinds  # not paid
    assert (net.pk(0), net.pk(5), "vouch") in kinds
    work = next(e for e in edges if e.kind == "work")
    assert work.weight == 70 and work.amount == 5000 and work.skills == ("python",)
    assert work.bounty == lc.bounty.id
    vouch = next(e for e in edges if e.kind == "vouch")
    assert vouch.weight == VOUCH_WEIGHT < work.weight
    view = trust_view(net.state)
    assert view.score(net.pk(1), "python") > 0
    assert view.score(net.pk(5), "python") == 0  # a vouch names no skill
    assert view.score(net.pk(5)) > 0


def test_vouches_are_capped_per_voucher() -> None:
    net = Net(n=10, trusted=1)
    for i in range(1, 10):
        net.emit(0, "vouch", {"account": net.pk(i)})
    edges = [e for e in trust_edges(net.state) if e.kind == "vouch"]
    assert len(edges) == 9 and all(e.weight == VOUCH_CAP // 9 for e in edges)
    for i in range(4):  # 13 vouches: each would weigh 0, so none counts
        net.emit(0, "vouch", {"account": bytes([200 + i]) * 32})
    assert not [e for e in trust_edges(net.state) if e.kind == "vouch"]


def test_a_forked_account_has_no_trust_and_passes_none() -> None:
    net = Net(n=6, trusted=1)
    net.emit(0, "vouch", {"account": net.pk(1)})
    lc = net.lifecycle(mentor=1, learners=(2,), reviewers=(3, 4))
    net.emit(1, "vouch", {"account": net.pk(5)})
    before = trust_view(net.state)
    assert before.score(net.pk(1)) > 0 and before.score(net.pk(5)) > 0
    w = net.writers[1]  # member 1 signs a second event at the seq of an earlier one
    assert lc.award is not None
    w.resume(lc.award.seq - 1, lc.award.prev)
    net.emit(1, "profile", {"name": "x", "bio": "", "skills": []})
    assert net.pk(1) in net.state.forks
    after = trust_view(net.state)
    assert after.score(net.pk(1)) == 0 and after.score(net.pk(5)) == 0
    assert not [e for e in after.all_edges() if net.pk(1) in (e.src, e.dst)]


def test_a_forked_seed_seeds_nothing() -> None:
    net = Net(n=4, trusted=1)
    v = net.emit(0, "vouch", {"account": net.pk(1)})
    net.writers[0].resume(v.seq - 1, v.prev)
    net.emit(0, "vouch", {"account": net.pk(2)})
    view = trust_view(net.state)
    assert view.seeds == () and view.overall == {}


# -- penalties -----------------------------------------------------------------------------


def _two_mentors() -> tuple[Net, Event]:
    net = Net(n=8, trusted=1)
    net.emit(0, "vouch", {"account": net.pk(1)})
    net.lifecycle(mentor=0, learners=(1, 2), reviewers=(3, 4))
    net.lifecycle(mentor=0, learners=(5,), reviewers=(3, 4))
    net.lifecycle(mentor=1, learners=(6, 7), reviewers=(3, 4))
    b = net.bounty(1)
    return net, b


def test_refund_after_a_commit_halves_the_mentors_trust_in_its_skills() -> None:
    net, b = _two_mentors()
    base = trust_view(net.state)
    assert base.score(net.pk(1)) > 0 and base.score(net.pk(1), "python") > 0
    net.commit(2, b)
    net.emit(1, "refund", {"bounty": b.id})
    after = trust_view(net.state)
    assert after.penalties[net.pk(1)] == {"": 1, "python": 1}
    assert after.score(net.pk(1)) == base.score(net.pk(1)) >> 1
    assert after.score(net.pk(1), "python") == base.score(net.pk(1), "python") >> 1


def test_a_refund_before_any_commit_costs_nothing() -> None:
    net, b = _two_mentors()
    net.emit(1, "refund", {"bounty": b.id})
    assert net.pk(1) not in trust_view(net.state).penalties


def test_abandonment_and_no_shows_need_now() -> None:
    net, b = _two_mentors()
    c = net.commit(2, b)
    net.close(1, b, [c])  # accepted, and learner 2 never reveals
    review_by = net.state.bounties[b.id].review_by
    base = trust_view(net.state)
    assert not base.penalties and not base.no_shows
    before = trust_view(net.state, now_ms=review_by)
    assert not before.penalties and not before.no_shows
    late = trust_view(net.state, now_ms=review_by + 1)
    assert late.penalties[net.pk(1)] == {"": 1, "python": 1}
    assert late.no_shows == {net.pk(2): 1}
    assert late.score(net.pk(1)) == base.score(net.pk(1)) >> 1
    assert trust_view(net.state).digest == base.digest  # the clock-free view is unchanged


# -- review quality that rests on trust ---------------------------------------------------


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=16), st.integers(1, 50))
def test_with_equal_weights_the_weighted_median_is_the_median(xs: list[int], w: int) -> None:
    assert weighted_median([(x, w) for x in xs]) == _median(xs)


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 10**6)), min_size=1, max_size=16))
def test_the_weighted_median_is_order_free_and_in_range(items: list[tuple[int, int]]) -> None:
    m = weighted_median(items)
    assert m == weighted_median(list(reversed(items)))
    assert min(v for v, _ in items) <= m <= max(v for v, _ in items)


def test_trusted_reviewers_outweigh_fresh_keys() -> None:
    net = Net(n=9, trusted=1)
    # member 3 earns trust in python: paid honest reviews and paid work
    net.lifecycle(mentor=0, learners=(3,), reviewers=(1, 2))
    net.lifecycle(mentor=0, learners=(1,), reviewers=(3, 2))
    b = net.bounty(0)
    c = net.commit(4, b)
    close = net.close(0, b, [c])
    sub = net.reveal(4, b, c, close)
    net.review(3, b, sub, [9, 9])  # the trusted reviewer: 900
    for fresh in (6, 7, 8):  # three fresh keys agree with each other: 100
        net.review(fresh, b, sub, [1, 1])
    view = trust_view(net.state)
    assert view.skill_weight(net.pk(3), ["python"]) > 0
    assert view.skill_weight(net.pk(6), ["python"]) == 0
    med, rows = review_judgements(net.state, view, b.id)[sub.id]
    assert med == 900  # the plain median would be 100
    near = {j.reviewer: j.near for j in rows}
    assert near[net.pk(3)] and not near[net.pk(6)]
    # a bounty may ask for a minimum trust: the fresh keys then do not count
    med2, rows2 = review_judgements(net.state, view, b.id, min_trust=1)[sub.id]
    assert med2 == 900 and sum(j.counts for j in rows2) == 1
    cal = reviewer_calibration(net.state, view)
    assert cal[net.pk(6)] == (0, 1)
    assert cal[net.pk(3)][0] == cal[net.pk(3)][1] >= 1


def test_unknown_bounty_has_no_judgements() -> None:
    net = Net(n=4)
    assert review_judgements(net.state, trust_view(net.state), hashlib.sha256(b"x").digest()) == {}
    with pytest.raises(ValueError):
        weighted_median([])


def _trust_fork_story() -> tuple[Net, list[Event]]:
    """A trusted mentor pays member 1, who pays others, then forks its chain."""
    net = Net(n=7, trusted=1)
    net.lifecycle(mentor=0, learners=(1, 2), reviewers=(3, 4))
    net.lifecycle(mentor=1, learners=(5,), reviewers=(3, 6))
    net.emit(1, "vouch", {"account": net.pk(6)})
    w1 = net.writers[1]
    head = (w1.seq, w1.head)
    net.emit(1, "vouch", {"account": net.pk(4)})
    w1.resume(*head)
    net.emit(1, "profile", {"name": "other branch", "bio": "", "skills": []})
    net.lifecycle(mentor=0, learners=(6,), reviewers=(2, 3))
    assert net.pk(1) in net.state.forks
    return net, list(net.events)


TRUST_FORK_NET, TRUST_FORK_EVENTS = _trust_fork_story()


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_fork_gives_one_trust_digest_in_every_order(data: st.DataObject) -> None:
    order = data.draw(st.permutations(range(len(TRUST_FORK_EVENTS))), label="order")
    r = Replica(TRUST_FORK_NET.genesis)
    for i in order:
        r.add(TRUST_FORK_EVENTS[i])
    assert r.pending == {} and TRUST_FORK_NET.pk(1) in r.state.forks
    view = trust_view(r.state)
    assert view.digest == trust_view(TRUST_FORK_NET.state).digest
    assert view.score(TRUST_FORK_NET.pk(1)) == 0
    assert view.score(TRUST_FORK_NET.pk(6), "python") > 0  # paid by the seed after the fork


@FAST
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(1, 200), min_size=1, max_size=6))
def test_the_incremental_view_equals_a_cold_one(seed: int, cuts: list[int]) -> None:
    """The edges are kept up to date between changes; whatever the steps, the
    view equals one computed from nothing."""
    w = Workload(seed=seed, actors=10)
    events = list(w.events(max(cuts)))
    r = Replica(w.genesis)
    done = 0
    for cut in sorted(set(cuts)):
        for ev in events[done:cut]:
            r.add(ev)
        done = cut
        warm = trust_view(r.state)
        cold_state = Replica(w.genesis)
        for ev in events[:cut]:
            cold_state.add(ev)
        cold = trust_view(cold_state.state)
        assert warm.digest == cold.digest
        assert sorted(warm.all_edges()) == sorted(cold.all_edges())


def test_late_reviews_after_the_award_update_the_edges() -> None:
    """Reviews may come after the award (until review_by): the median moves,
    a paid review may stop being honest, and its edge goes."""
    net = Net(n=8, trusted=1)
    lc = net.lifecycle(mentor=0, learners=(1,), reviewers=(3, 4))
    first = trust_view(net.state)
    assert any(e.kind == "review" and e.dst == net.pk(3) for e in first.all_edges())
    for who in (5, 6):
        net.review(who, lc.bounty, lc.reveals[0], [0, 0])
    warm = trust_view(net.state)
    assert not any(e.kind == "review" for e in warm.all_edges())
    cold = Replica(net.genesis)
    for ev in net.events:
        cold.add(ev)
    assert trust_view(cold.state).digest == warm.digest != first.digest


# -- the mentor's trust-weighted award (what the node suggests; still the mentor's choice) --


def _fresh_keys_outvote_the_plain_median() -> tuple[Net, Event, Event, list[Event]]:
    """Member 3 holds trust in python; fresh keys 6, 7, 8 agree on a low score."""
    net = Net(n=9, trusted=1)
    net.lifecycle(mentor=0, learners=(3,), reviewers=(1, 2))
    net.lifecycle(mentor=0, learners=(1,), reviewers=(3, 2))
    b = net.bounty(0)
    c = net.commit(4, b)
    close = net.close(0, b, [c])
    sub = net.reveal(4, b, c, close)
    reviews = [net.review(3, b, sub, [9, 9])]
    reviews += [net.review(fresh, b, sub, [1, 1]) for fresh in (6, 7, 8)]
    return net, b, sub, reviews


def test_the_trusted_award_pays_reviews_near_the_weighted_median() -> None:
    from learnmesh.protocol import award_body
    from learnmesh.protocol._trust import min_trust_of_ppm, reviews_to_pay, trusted_award_body

    net, b, sub, (trusted, *fresh) = _fresh_keys_outvote_the_plain_median()
    view = trust_view(net.state)
    assert reviews_to_pay(net.state, view, b.id) == [trusted.id]
    body = trusted_award_body(net.state, view, b.id, {sub.id: None})
    # the whole reviewers' share (10 % of 10,000) to the one near the weighted median,
    # the rest of the escrow to the work
    assert body["reviewers"] == [{"review": trusted.id, "amount": 1000}]
    assert body["winners"] == [{"submission": sub.id, "amount": 9000}]
    # the plain median (§6.4) pays the three fresh keys instead, a third each
    plain = award_body(net.state, b.id, {sub.id: None})
    assert sorted(r["review"] for r in plain["reviewers"]) == sorted(f.id for f in fresh)
    assert plain["reviewers"][0]["amount"] == 333
    # the fold takes the trusted award as it is: the mentor's signed choice
    ev = net.emit(0, "award", body)
    assert net.void(ev) is None
    assert net.state.reviews[trusted.id].paid == 1000
    assert all(net.state.reviews[f.id].paid == 0 for f in fresh)
    # a minimum trust above every reviewer's leaves nothing that counts: nothing paid
    net2, b2, sub2, _ = _fresh_keys_outvote_the_plain_median()
    v2 = trust_view(net2.state)
    too_high = min_trust_of_ppm(1_000_000)
    assert reviews_to_pay(net2.state, v2, b2.id, too_high) == []
    body2 = trusted_award_body(net2.state, v2, b2.id, {sub2.id: None}, too_high)
    assert body2["reviewers"] == [] and body2["winners"][0]["amount"] == 10_000


def test_reviews_a_trusted_award_pays_make_review_edges() -> None:
    """Two trusted reviewers outvoted by three fresh keys: the plain median is the
    fresh keys' score, yet the two reviews the mentor paid (near the median of the
    paid reviews) are honest and make review edges; one paid review alone never
    does, and the unpaid fresh keys get none."""
    net = Net(n=9, trusted=1)
    net.lifecycle(mentor=0, learners=(3,), reviewers=(1, 2))
    net.lifecycle(mentor=0, learners=(1,), reviewers=(3, 2))
    b = net.bounty(0)
    c = net.commit(4, b)
    close = net.close(0, b, [c])
    sub = net.reveal(4, b, c, close)
    good = [net.review(3, b, sub, [9, 9]), net.review(2, b, sub, [9, 8])]
    fresh = [net.review(k, b, sub, [1, 1]) for k in (6, 7, 8)]
    net.award(0, b, [(sub, 9000)], [(good[0], 500), (good[1], 500)])
    review_edges = {
        e.dst for e in trust_edges(net.state) if e.kind == "review" and e.bounty == b.id
    }
    assert review_edges == {net.pk(3), net.pk(2)}
    assert not review_edges & {net.pk(k) for k in (6, 7, 8)}
    assert all(net.state.reviews[f.id].paid == 0 for f in fresh)
    # the same with only one of them paid: a lone paid review is not enough
    net2 = Net(n=9, trusted=1)
    b2 = net2.bounty(0)
    c2 = net2.commit(4, b2)
    sub2 = net2.reveal(4, b2, c2, net2.close(0, b2, [c2]))
    one = net2.review(3, b2, sub2, [9, 9])
    for k in (6, 7, 8):
        net2.review(k, b2, sub2, [1, 1])
    net2.award(0, b2, [(sub2, 9000)], [(one, 500)])
    assert not [e for e in trust_edges(net2.state) if e.kind == "review"]


def test_the_trusted_award_equals_the_plain_one_without_trust() -> None:
    """Nobody holds trust in the skill: the weighted median is §6.4's median."""
    from learnmesh.protocol import award_body
    from learnmesh.protocol._trust import trusted_award_body

    net = Net(n=8, trusted=1)
    lc = net.lifecycle(mentor=1, learners=(2, 3), reviewers=(4, 5, 6), award=False)
    net.review(7, lc.bounty, lc.reveals[0], [1, 1])  # far from the others
    view = trust_view(net.state)
    winners: dict[bytes, int | None] = {lc.reveals[0].id: 4000, lc.reveals[1].id: None}
    assert trusted_award_body(net.state, view, lc.bounty.id, winners) == award_body(
        net.state, lc.bounty.id, winners
    )


def test_a_lone_counting_review_is_paid_only_when_it_is_the_bounty_s_only_one() -> None:
    from learnmesh.protocol._trust import reviews_to_pay

    net = Net(n=6, trusted=1)
    b = net.bounty(0)
    c = net.commit(1, b)
    close = net.close(0, b, [c])
    sub = net.reveal(1, b, c, close)
    r = net.review(2, b, sub)
    assert reviews_to_pay(net.state, trust_view(net.state), b.id) == [r.id]  # as award_body


def test_trusted_award_refuses_what_award_body_refuses() -> None:
    from learnmesh.protocol._errors import LocalProtocolError
    from learnmesh.protocol._trust import trusted_award_body

    net, b, sub, _ = _fresh_keys_outvote_the_plain_median()
    view = trust_view(net.state)
    with pytest.raises(LocalProtocolError, match="no such bounty"):
        trusted_award_body(net.state, view, hashlib.sha256(b"x").digest(), {sub.id: None})
    with pytest.raises(LocalProtocolError, match="not a submission"):
        trusted_award_body(net.state, view, b.id, {b.id: None})
    with pytest.raises(LocalProtocolError, match="winners ask 9001 but 9000 is left"):
        trusted_award_body(net.state, view, b.id, {sub.id: 9001})
