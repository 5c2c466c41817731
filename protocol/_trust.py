"""Per-skill trust: personalised PageRank (EigenTrust) seeded by the genesis's
`trusted` accounts, over edges made only by costly, signed, settled events.

PROTOCOL.md §6.5 specifies the computation exactly. In short:

- edges: a mentor's award paying a learner's work (weight `isqrt(amount)`), a
  mentor's award paying a review that was honest (§6.4; weight `isqrt(paid)`),
  both in the skills of the bounty they arose in; a vouch (weight at most
  `VOUCH_WEIGHT`, at most `VOUCH_CAP` over all of an account's vouches; overall
  only, since a vouch names no skill). A forked account is in no edge.
- propagation: integers only. Trust starts on the seeds (`ONE` split evenly);
  each of `ITERATIONS` rounds, every account passes `(1000 - BLEND_PM)/1000` of
  its trust along its out-edges in proportion to their weight (its out-weight
  counts at least `MIN_OUT_WEIGHT`), and everything not passed on (the blend,
  dangling accounts, rounding) goes back to the seeds in equal shares. So a ring
  reached through a few edges holds at most about `(1-a)/a` times what flows
  across them per round. One propagation over all edges gives the overall score.
- skills: an account's trust in skill S is what reaches it through edges that
  arose in bounties of skill S in one more round (a split of the overall flow
  by skill; one propagation per skill measured twice as slow).
- penalties: each bounty whose mentor refunded it after a learner committed, or
  (with `now_ms`) left it unsettled past `review_by`, halves the mentor's trust
  in each of its skills and overall. A learner accepted and never revealing by
  `review_by` is marked (`no_shows`, needs `now_ms`).

Everything is a view over the state (nothing here enters the state digest),
deterministic on every node: the propagation is cached per state and
recomputed only when the state changed.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import repeat
from math import isqrt
from operator import floordiv, itemgetter, mul
from typing import TYPE_CHECKING, Any, NamedTuple

import msgpack

from ._errors import LocalProtocolError
from ._reputation import _median

if TYPE_CHECKING:
    from ._state import Bounty, State

__all__ = [
    "BLEND_PM",
    "ITERATIONS",
    "MIN_OUT_WEIGHT",
    "ONE",
    "TRUST_DOMAIN",
    "VOUCH_CAP",
    "VOUCH_WEIGHT",
    "ReviewJudgement",
    "TrustEdge",
    "TrustView",
    "jury_trust",
    "min_trust_of_ppm",
    "propagate",
    "review_judgements",
    "reviewer_calibration",
    "reviews_to_pay",
    "trust_digest",
    "trust_edges",
    "trust_view",
    "trusted_award_body",
    "weighted_median",
]

ONE = 1 << 40  # all trust of one graph, before rounding
BLEND_PM = 150  # per mille of each account's trust that goes back to the seeds each round
ITERATIONS = 32
MIN_OUT_WEIGHT = 16  # an account passes all its trust on only once its edges weigh this much
VOUCH_WEIGHT = 4  # one vouch; paid work of 25 tokens or more weighs more
VOUCH_CAP = 12  # all of one account's vouches together
TRUST_DOMAIN = b"learnmesh/trust\x00"

WORK, REVIEW, VOUCH = "work", "review", "vouch"

# (src, dst, kind, weight, amount, bounty, skills): TrustEdge's fields, kept as
# plain tuples in the cache (cheaper to build by the hundred thousand).
_EdgeTuple = tuple[bytes, bytes, str, int, int, bytes | None, tuple[str, ...]]


class TrustEdge(NamedTuple):
    """One reason `src` passes trust to `dst`."""

    src: bytes
    dst: bytes
    kind: str  # "work" | "review" | "vouch"
    weight: int
    amount: int  # tokens paid (work, review); 0 for a vouch
    bounty: bytes | None  # the bounty it arose in (work, review)
    skills: tuple[str, ...]  # that bounty's skills


@dataclass(slots=True)
class TrustView:
    """Scores in units of `ONE` (the whole trust of one graph). Accounts with
    zero trust are left out of `overall` and `skills`."""

    overall: dict[bytes, int]
    skills: dict[str, dict[bytes, int]]
    _edges: list[_EdgeTuple]
    seeds: tuple[bytes, ...]
    rates: dict[bytes, int]  # trust an account passes per unit of edge weight
    penalties: dict[bytes, dict[str, int]] = field(default_factory=dict)  # "" = overall
    no_shows: dict[bytes, int] = field(default_factory=dict)
    _digest: bytes | None = None

    @property
    def digest(self) -> bytes:
        """`trust_digest` of this view (computed once)."""
        if self._digest is None:
            self._digest = trust_digest(self)
        return self._digest

    def score(self, account: bytes, skill: str | None = None) -> int:
        if skill is None:
            return self.overall.get(account, 0)
        return self.skills.get(skill, {}).get(account, 0)

    def skill_weight(self, account: bytes, skills: Iterable[str]) -> int:
        """An account's trust in a bounty's skills (their sum; overall if none)."""
        sk = tuple(skills)
        if not sk:
            return self.overall.get(account, 0)
        return sum(self.skills.get(s, {}).get(account, 0) for s in sk)

    def all_edges(self) -> list[TrustEdge]:
        """Every edge, sorted by (dst, src, kind, bounty)."""
        return sorted((TrustEdge._make(e) for e in self._edges), key=_edge_order)

    def edges_to(self, account: bytes) -> list[TrustEdge]:
        return sorted((TrustEdge._make(e) for e in self._edges if e[1] == account), key=_edge_order)

    def edges_from(self, account: bytes) -> list[TrustEdge]:
        return sorted((TrustEdge._make(e) for e in self._edges if e[0] == account), key=_edge_order)

    @property
    def edge_count(self) -> int:
        return len(self._edges)


def _edge_order(e: TrustEdge) -> tuple[bytes, bytes, str, bytes, int, int]:
    # total: edges equal in all of these are equal in every field that matters
    return (e.dst, e.src, e.kind, e.bounty or b"", e.amount, e.weight)


# -- edges ------------------------------------------------------------------------------


def _bounty_edges(
    state: State, b: Bounty, skip: AbstractSet[bytes] = frozenset()
) -> list[_EdgeTuple]:
    """The edges an awarded bounty makes, forks not yet taken into account;
    reviews in `skip` (overturned by a dispute) are left out of the medians."""
    reviews = state.reviews
    tol = state.params.honest_review_tolerance_pm
    out: list[_EdgeTuple] = []
    add = out.append
    m, bid, sk = b.author, b.id, b.skills
    mx = b.max_score
    for sub in b.submissions.values():
        if sub.awarded > 0 and sub.learner != m:
            add((m, sub.learner, WORK, isqrt(sub.awarded), sub.awarded, bid, sk))
        rids = [r for r in sub.reviews if r not in skip] if skip else sub.reviews
        n = len(rids)
        if n < 2:
            continue  # a lone review is never honest (§6.4)
        rvs = [reviews[rid] for rid in rids]
        totals = [sum(rv.scores) * 1000 // mx for rv in rvs]
        st = sorted(totals)
        h = n // 2
        med = st[h] if n % 2 else (st[h - 1] + st[h]) // 2  # §6.4's median
        lo, hi = med - tol, med + tol
        # A review the mentor paid is also honest when it is near the median of
        # the paid reviews (at least two): what the trust-weighted award pays
        # when fresh keys pull the plain median away (§6.5).
        pt = sorted(t for rv, t in zip(rvs, totals, strict=True) if rv.paid > 0)
        np_ = len(pt)
        if np_ >= 2:
            hp = np_ // 2
            pmed = pt[hp] if np_ % 2 else (pt[hp - 1] + pt[hp]) // 2
            plo, phi = pmed - tol, pmed + tol
        else:
            plo, phi = 1, 0  # empty
        for rv, t in zip(rvs, totals, strict=True):
            paid = rv.paid
            if paid > 0 and (lo <= t <= hi or plo <= t <= phi):
                add((m, rv.reviewer, REVIEW, isqrt(paid), paid, bid, sk))
    return out


def _vouch_edges(k: bytes, vouches: set[bytes]) -> list[_EdgeTuple]:
    w = min(VOUCH_WEIGHT, VOUCH_CAP // len(vouches)) if vouches else 0
    if w == 0:
        return []
    return [(k, v, VOUCH, w, 0, None, ()) for v in vouches if v != k]


_Pair = tuple[bytes, bytes]


class _Graph:
    """The edges of one state, kept up to date incrementally: an awarded
    bounty's edges change only when a submission or review is added to it (the
    award itself is final), an account's vouches only when it vouches again.
    Forks are applied when reading (`weights`), since they can only grow."""

    def __init__(self) -> None:
        self.bounty_sig: dict[bytes, tuple[int, int]] = {}
        self.bounty_edges: dict[bytes, list[_EdgeTuple]] = {}
        self.vouch_sig: dict[bytes, int] = {}
        self.vouch_edges: dict[bytes, list[_EdgeTuple]] = {}
        self.overall: dict[_Pair, int] = {}

    def _swap(self, old: list[_EdgeTuple], new: list[_EdgeTuple]) -> None:
        overall = self.overall
        for src, dst, _, w, _, _, _ in old:
            pair = (src, dst)
            left = overall[pair] - w
            if left:
                overall[pair] = left
            else:
                del overall[pair]
        get = overall.get
        for src, dst, _, w, _, _, _ in new:
            pair = (src, dst)
            overall[pair] = get(pair, 0) + w

    def update(self, state: State) -> None:
        sigs, memo, overall = self.bounty_sig, self.bounty_edges, self.overall
        get = overall.get
        for bid, b in state.bounties.items():
            if b.phase != "awarded":
                continue
            reviews = 0
            for sub in b.submissions.values():
                reviews += len(sub.reviews)
            sig = (len(b.submissions), reviews)
            had = sigs.get(bid)
            if had == sig:
                continue
            new = _bounty_edges(state, b)
            if had is not None:
                self._swap(memo[bid], [])
            for src, dst, _, w, _, _, _ in new:
                pair = (src, dst)
                overall[pair] = get(pair, 0) + w
            sigs[bid], memo[bid] = sig, new
        for k, a in state.accounts.items():
            n = len(a.vouches)
            if n == self.vouch_sig.get(k, 0):
                continue
            new = _vouch_edges(k, a.vouches)
            self._swap(self.vouch_edges.get(k, []), new)
            self.vouch_sig[k], self.vouch_edges[k] = n, new

    def edges(self, forked: Mapping[bytes, int]) -> list[_EdgeTuple]:
        out = [e for lst in self.bounty_edges.values() for e in lst]
        out += (e for lst in self.vouch_edges.values() for e in lst)
        if forked:
            out = [e for e in out if e[0] not in forked and e[1] not in forked]
        return out

    def weights(self, forked: Mapping[bytes, int]) -> dict[_Pair, int]:
        if not forked:
            return self.overall
        return {p: w for p, w in self.overall.items() if p[0] not in forked and p[1] not in forked}


def _edge_tuples(state: State) -> list[_EdgeTuple]:
    g = _Graph()
    g.update(state)
    edges = g.edges(state.forks)
    over = _overturned(state)
    if over is None:
        return edges
    return _without_overturned(state, g, Prepared((), {}, edges, ()), *over).edges


def trust_edges(state: State) -> list[TrustEdge]:
    """Every trust edge the state holds, sorted by (dst, src, kind, bounty)."""
    return sorted((TrustEdge._make(e) for e in _edge_tuples(state)), key=_edge_order)


# -- propagation ------------------------------------------------------------------------


def propagate(
    weights: Mapping[tuple[bytes, bytes], int], seeds: Iterable[bytes]
) -> dict[bytes, int]:
    """Personalised PageRank in integers. `weights[(src, dst)]` is a positive
    weight. Returns the trust of every account with non-zero trust (the total
    is at most ONE)."""
    seed_set = set(seeds)
    if not seed_set:
        return {}
    names: set[bytes] = set(seed_set)
    for u, v in weights:
        names.add(u)
        names.add(v)
    order = sorted(names)
    idx = {k: i for i, k in enumerate(order)}
    n = len(order)
    out_w = [0] * n
    ins_src: list[list[int]] = [[] for _ in range(n)]
    ins_w: list[list[int]] = [[] for _ in range(n)]
    for (u, v), w in weights.items():
        if w <= 0 or u == v:
            continue
        ui, vi = idx[u], idx[v]
        ins_src[vi].append(ui)
        ins_w[vi].append(w)
        out_w[ui] += w
    den = [1000 * max(x, MIN_OUT_WEIGHT) for x in out_w]
    # The sums are exact, so the order of accounts inside the loop does not
    # matter: number them anew, accounts with several in-edges first (each pulls
    # through an itemgetter), then those with one (one C-level map for all),
    # then those with none (always 0 before the seeds' share).
    multi = [i for i in range(n) if len(ins_src[i]) > 1]
    single = [i for i in range(n) if len(ins_src[i]) == 1]
    rest = [i for i in range(n) if not ins_src[i]]
    perm = multi + single + rest
    pos = [0] * n
    for new_i, old_i in enumerate(perm):
        pos[old_i] = new_i
    den = [den[i] for i in perm]
    pull = [(itemgetter(*[pos[u] for u in ins_src[i]]), ins_w[i]) for i in multi]
    single_src = [pos[ins_src[i][0]] for i in single]
    single_w = [ins_w[i][0] for i in single]
    zeros = [0] * len(rest)
    seed_idx = sorted(pos[idx[s]] for s in seed_set)
    ns = len(seed_idx)
    each = ONE // ns
    mass = each * ns
    keep = 1000 - BLEND_PM
    t = [0] * n
    for i in seed_idx:
        t[i] = each
    for _ in range(ITERATIONS):
        # q[u] = t[u] * 850 // (1000 * W_u), in a C-level loop; then each
        # account pulls sum(q[u] * w) over its in-edges.
        q = list(map(floordiv, map(mul, t, repeat(keep)), den))
        flows = [sum(map(mul, g(q), w)) for g, w in pull]
        flows += map(mul, map(q.__getitem__, single_src), single_w)
        share = (mass - sum(flows)) // ns
        t = flows + zeros
        for i in seed_idx:
            t[i] += share
    return {order[perm[i]]: x for i, x in enumerate(t) if x}


def _rates(
    trust: Mapping[bytes, int], weights: Mapping[tuple[bytes, bytes], int]
) -> dict[bytes, int]:
    """What each account passes per unit of edge weight in one more round:
    `trust * (1000 - BLEND_PM) // (1000 * max(out-weight, MIN_OUT_WEIGHT))`."""
    out_w: dict[bytes, int] = {}
    for (u, v), w in weights.items():
        if w > 0 and u != v:
            out_w[u] = out_w.get(u, 0) + w
    keep = 1000 - BLEND_PM
    return {u: x * keep // (1000 * max(out_w.get(u, 0), MIN_OUT_WEIGHT)) for u, x in trust.items()}


@dataclass(slots=True)
class _Raw:
    overall: dict[bytes, int]
    skills: dict[str, dict[bytes, int]]
    rates: dict[bytes, int]
    edges: list[_EdgeTuple]
    seeds: tuple[bytes, ...]
    clock_free: TrustView | None = None


_CACHE: weakref.WeakKeyDictionary[State, tuple[tuple[object, ...], _Raw]] = (
    weakref.WeakKeyDictionary()
)
_GRAPHS: weakref.WeakKeyDictionary[State, _Graph] = weakref.WeakKeyDictionary()


def _state_key(state: State) -> tuple[object, ...]:
    return (state.event_count, len(state.void), tuple(sorted(state.forks.items())))


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the propagation needs, copied out of a state (so `compute_raw` may
    run on another thread while the state changes)."""

    key: tuple[object, ...]
    weights: dict[_Pair, int]
    edges: list[_EdgeTuple]
    seeds: tuple[bytes, ...]


def prepare(state: State) -> Prepared:
    """Bring the state's edge graph up to date (incremental) and copy out what
    `compute_raw` needs. Runs where the state is changed (the event loop).
    Decided disputes change the edges (`_overturned`)."""
    p = _prepare_base(state)
    over = _overturned(state)
    return p if over is None else _without_overturned(state, _GRAPHS[state], p, *over)


def _prepare_base(state: State) -> Prepared:
    """`prepare` before dispute outcomes: what juries are drawn with."""
    graph = _GRAPHS.get(state)
    if graph is None:
        graph = _GRAPHS[state] = _Graph()
    graph.update(state)
    forked = state.forks
    seeds = tuple(sorted(k for k in state.genesis.trusted if k not in forked))
    return Prepared(_state_key(state), dict(graph.weights(forked)), graph.edges(forked), seeds)


def compute_raw(p: Prepared) -> _Raw:
    """The propagation: a pure function of `p` (safe on a worker thread)."""
    trust = propagate(p.weights, p.seeds)
    rates = _rates(trust, p.weights)
    # Trust in a skill: the trust that reaches an account through edges that
    # arose in bounties of that skill (one more round of the propagation).
    skills: dict[str, dict[bytes, int]] = {}
    for src, dst, _, w, _, _, edge_skills in p.edges:
        r = rates.get(src, 0)
        if not r or not edge_skills:
            continue
        for s in edge_skills:
            g = skills.get(s)
            if g is None:
                g = skills[s] = {}
            g[dst] = g.get(dst, 0) + r * w
    return _Raw(
        overall=trust,
        skills={s: skills[s] for s in sorted(skills)},
        rates=rates,
        edges=p.edges,
        seeds=p.seeds,
    )


def _overturned(state: State) -> tuple[frozenset[bytes], frozenset[bytes]] | None:
    """(bounties whose award a dispute overturned, overturned reviews), or None
    when no decided dispute changes any edge (protocol/_disputes.py)."""
    if not state.disputes.disputes:
        return None
    from ._disputes import dispute_outcomes

    out = dispute_outcomes(state)
    if not out.overturned_award_bounties and not out.overturned_reviews:
        return None
    return out.overturned_award_bounties, out.overturned_reviews


def _without_overturned(
    state: State,
    graph: _Graph,
    p: Prepared,
    bounties: frozenset[bytes],
    reviews: frozenset[bytes],
) -> Prepared:
    """`p` less the work edges of overturned awards, with each overturned review
    left out of its submission's median (so of the honest reviews paid)."""
    forked = state.forks
    redo = {state.reviews[r].bounty for r in reviews if r in state.reviews}
    edges: list[_EdgeTuple] = []
    for bid, lst in graph.bounty_edges.items():
        if bid in redo:
            lst = _bounty_edges(state, state.bounties[bid], reviews)
        if bid in bounties:
            lst = [e for e in lst if e[2] != WORK]
        edges += lst
    for lst in graph.vouch_edges.values():
        edges += lst
    if forked:
        edges = [e for e in edges if e[0] not in forked and e[1] not in forked]
    weights: dict[_Pair, int] = {}
    for src, dst, _, w, _, _, _ in edges:
        weights[(src, dst)] = weights.get((src, dst), 0) + w
    return Prepared(p.key, weights, edges, p.seeds)


def install(state: State, key: tuple[object, ...], raw: _Raw) -> None:
    """Keep `raw` (computed for `key`) as the state's cached propagation."""
    _CACHE[state] = (key, raw)


def cached_raw(state: State) -> tuple[tuple[object, ...], _Raw] | None:
    """The last propagation computed for this state, and the key it was for."""
    return _CACHE.get(state)


def _raw(state: State) -> _Raw:
    key = _state_key(state)
    hit = _CACHE.get(state)
    if hit is not None and hit[0] == key:
        return hit[1]
    p = prepare(state)
    raw = compute_raw(p)
    install(state, p.key, raw)
    return raw


# -- the view -----------------------------------------------------------------------------


def _penalised(b: Bounty, now_ms: int | None) -> bool:
    if b.phase == "refunded":
        return bool(b.commits)  # cancel after delivery
    if b.phase == "awarded":
        return False
    return now_ms is not None and now_ms > b.review_by


def trust_view(state: State, now_ms: int | None = None, raw: _Raw | None = None) -> TrustView:
    """The trust view. Without `now_ms` nothing depends on a clock, and the
    digest is the one nodes compare. `raw` is a propagation computed before
    (`compute_raw`), perhaps for a slightly older state: a node uses it to
    answer at once while the next one is computed off its event loop."""
    if raw is None:
        raw = _raw(state)
    if now_ms is None and raw.clock_free is not None:
        return raw.clock_free
    pen: dict[bytes, dict[str, int]] = {}
    no_shows: dict[bytes, int] = {}
    for b in state.bounties.values():
        if _penalised(b, now_ms):
            p = pen.setdefault(b.author, {})
            for s in ("", *b.skills):
                p[s] = p.get(s, 0) + 1
        if now_ms is not None and now_ms > b.review_by and b.accepted:
            for cid in b.accepted:
                learner = b.commits.get(cid)
                if learner is None:
                    continue
                a = state.accounts.get(learner)
                if a is None or cid not in a.revealed:
                    no_shows[learner] = no_shows.get(learner, 0) + 1

    def cut(scores: dict[bytes, int], skill: str) -> dict[bytes, int]:
        if not pen:
            return scores
        out = {}
        for k, x in scores.items():
            n = pen.get(k, {}).get(skill, 0)
            x >>= n
            if x:
                out[k] = x
        return out

    overall = cut(raw.overall, "")
    skills = {s: cut(sc, s) for s, sc in raw.skills.items()}
    view = TrustView(overall, skills, raw.edges, raw.seeds, raw.rates, pen, no_shows)
    if now_ms is None:
        raw.clock_free = view
    return view


def jury_trust(state: State) -> TrustView:
    """The trust view that juries are drawn and checked with: the clock-free
    view *before* dispute outcomes (protocol/_disputes.py), since outcomes
    depend on whether a panel was drawn fairly, which must not depend on them.
    The same as `trust_view(state)` until a dispute is decided."""
    book = state.disputes
    if all(book.majority(d) is None for d in book.disputes.values()):
        return trust_view(state)
    key = _state_key(state)
    hit = _JURY.get(state)
    if hit is None or hit[0] != key:
        p = _prepare_base(state)
        if hit is not None and (hit[1].weights, hit[1].seeds, hit[1].edges) == (
            p.weights,
            p.seeds,
            p.edges,
        ):
            # Most events (commits, reveals, votes) move no edge: the same
            # propagation, in a fresh _Raw (its clock-free view reads penalties).
            old = hit[2]
            raw = _Raw(old.overall, old.skills, old.rates, old.edges, old.seeds)
        else:
            raw = compute_raw(p)
        hit = _JURY[state] = (key, p, raw)
    return trust_view(state, None, hit[2])


_JURY: weakref.WeakKeyDictionary[State, tuple[tuple[object, ...], Prepared, _Raw]] = (
    weakref.WeakKeyDictionary()
)


def trust_digest(view: TrustView) -> bytes:
    """sha256 over the canonical encoding of every non-zero score."""
    # Keys inserted in canonical order and no nested map: msgpack's own bytes
    # are canonical_pack's (§1), without its slower recursive walk.
    m = {
        "overall": sorted([k, x] for k, x in view.overall.items() if x),
        "skills": [
            [s, sorted([k, x] for k, x in view.skills[s].items() if x)]
            for s in sorted(view.skills)
            if any(view.skills[s].values())
        ],
        "v": 1,
    }
    return hashlib.sha256(TRUST_DOMAIN + msgpack.packb(m, use_bin_type=True)).digest()


# -- review quality that rests on trust ------------------------------------------------


def weighted_median(items: Iterable[tuple[int, int]]) -> int:
    """The weighted median of (value, weight) pairs: the smallest value at which
    the cumulative weight reaches half the total; on an exact half, the mean
    (floor) of it and the next value. With equal weights it is §6.4's median;
    with no weight at all, the plain median. Needs at least one item."""
    xs = sorted(items)
    if not xs:
        raise ValueError("weighted median of nothing")
    total = sum(w for _, w in xs)
    if total <= 0:
        return _median([v for v, _ in xs])
    pos = [(v, w) for v, w in xs if w > 0]
    cum = 0
    for i, (v, w) in enumerate(pos):
        cum += w
        if 2 * cum == total:
            return (v + pos[i + 1][0]) // 2
        if 2 * cum > total:
            return v
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class ReviewJudgement:
    review: bytes
    reviewer: bytes
    total: int  # per mille of the rubric maximum
    weight: int  # the reviewer's trust in the bounty's skills
    counts: bool  # weight reaches min_trust
    near: bool  # within honest_review_tolerance_pm of the weighted median


def review_judgements(
    state: State, view: TrustView, bounty_id: bytes, min_trust: int = 0
) -> dict[bytes, tuple[int | None, list[ReviewJudgement]]]:
    """For each submission of a bounty: the trust-weighted median of its review
    totals (over reviews whose reviewer has at least `min_trust` in the bounty's
    skills; None when no review counts) and each review's judgement. A review
    a dispute overturned never counts and is never near."""
    b = state.bounties.get(bounty_id)
    if b is None:
        return {}
    tol = state.params.honest_review_tolerance_pm
    mx = b.max_score
    over = _overturned(state)
    gone = over[1] if over is not None else frozenset()
    out: dict[bytes, tuple[int | None, list[ReviewJudgement]]] = {}
    for sid in sorted(b.submissions):
        sub = b.submissions[sid]
        rows = []
        for rid in sub.reviews:
            rv = state.reviews[rid]
            w = 0 if rv.reviewer in state.forks else view.skill_weight(rv.reviewer, b.skills)
            rows.append((rid, rv.reviewer, sum(rv.scores) * 1000 // mx, w))
        counted = [(t, w) for rid, _, t, w in rows if w >= min_trust and rid not in gone]
        med = weighted_median(counted) if counted else None
        out[sid] = (
            med,
            [
                ReviewJudgement(
                    rid,
                    r,
                    t,
                    w,
                    w >= min_trust and rid not in gone,
                    med is not None and rid not in gone and abs(t - med) <= tol,
                )
                for rid, r, t, w in sorted(rows)
            ],
        )
    return out


def reviewer_calibration(state: State, view: TrustView) -> dict[bytes, tuple[int, int]]:
    """reviewer -> (reviews near the trust-weighted median, reviews judged), over
    every submission with at least two reviews."""
    out: dict[bytes, list[int]] = {}
    for bid, b in state.bounties.items():
        if not any(len(s.reviews) >= 2 for s in b.submissions.values()):
            continue
        for _, rows in review_judgements(state, view, bid).values():
            if len(rows) < 2:
                continue
            for j in rows:
                c = out.setdefault(j.reviewer, [0, 0])
                c[0] += j.near
                c[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def min_trust_of_ppm(ppm: int) -> int:
    """A minimum reviewer trust given in parts per million of all trust (`ONE`),
    as a weight `review_judgements` compares against."""
    return ppm * ONE // 1_000_000


def reviews_to_pay(
    state: State, view: TrustView, bounty_id: bytes, min_trust: int = 0
) -> list[bytes]:
    """The reviews a mentor would pay as honest by the trust-weighted rule: on
    each submission with at least two reviews that count (weight ≥ `min_trust`),
    those that count and are near the weighted median. As §6.4's rule (and
    `award_body`), a bounty whose only counting review is a single one pays it.
    Sorted by id."""
    b = state.bounties.get(bounty_id)
    if b is None:
        return []
    judged = review_judgements(state, view, bounty_id, min_trust)
    paid: list[bytes] = []
    counting: list[bytes] = []
    for _, rows in judged.values():
        counts = [j for j in rows if j.counts]
        counting += (j.review for j in counts)
        if len(counts) >= 2:
            paid += (j.review for j in counts if j.near)
    if not paid and len(counting) == 1:
        paid = counting
    return sorted(paid)


def trusted_award_body(
    state: State,
    view: TrustView,
    bounty_id: bytes,
    winners: dict[bytes, int | None],
    min_trust: int = 0,
) -> dict[str, Any]:
    """`award_body` with the reviewers' share split evenly over `reviews_to_pay`
    instead of §6.4's plain-median honest reviews; the winners' even split is
    made from what that leaves. Still the mentor's signed choice: the fold's
    rules (reviewers ≤ the share, reviews of this bounty) are unchanged."""

    b = state.bounties.get(bounty_id)
    if b is None:
        raise LocalProtocolError("unknown_bounty", "no such bounty")
    for s in winners:
        if s not in b.submissions:
            raise LocalProtocolError(
                "bad_submission", f"{s.hex()[:12]} is not a submission of this bounty"
            )
    from ._author import award_body  # _author imports _state, which this module must not

    return award_body(
        state, bounty_id, winners, paid=reviews_to_pay(state, view, bounty_id, min_trust)
    )
