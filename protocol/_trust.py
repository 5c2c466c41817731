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
  across them per round.
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
from dataclasses import dataclass, field
from math import isqrt
from operator import mul
from typing import TYPE_CHECKING

from ._encoding import canonical_pack
from ._reputation import _median, honest_reviews

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
    "propagate",
    "review_judgements",
    "reviewer_calibration",
    "trust_digest",
    "trust_edges",
    "trust_view",
    "weighted_median",
]

ONE = 1 << 40  # all trust of one graph, before rounding
BLEND_PM = 150  # per mille of each account's trust that goes back to the seeds each round
ITERATIONS = 32
MIN_OUT_WEIGHT = 16  # an account passes all its trust on only once its edges weigh this much
VOUCH_WEIGHT = 4  # one vouch; paid work of 16 tokens or more weighs more
VOUCH_CAP = 12  # all of one account's vouches together
TRUST_DOMAIN = b"learnmesh/trust\x00"

WORK, REVIEW, VOUCH = "work", "review", "vouch"


@dataclass(frozen=True, slots=True)
class TrustEdge:
    """One reason `src` passes trust to `dst`."""

    src: bytes
    dst: bytes
    kind: str  # "work" | "review" | "vouch"
    weight: int
    amount: int = 0  # tokens paid (work, review)
    bounty: bytes | None = None
    skills: tuple[str, ...] = ()


@dataclass(slots=True)
class TrustView:
    """Scores in units of `ONE` (the whole trust of one graph). Accounts with
    zero trust are left out of `overall` and `skills`."""

    overall: dict[bytes, int]
    skills: dict[str, dict[bytes, int]]
    edges: list[TrustEdge]
    seeds: tuple[bytes, ...]
    penalties: dict[bytes, dict[str, int]] = field(default_factory=dict)  # "" = overall
    no_shows: dict[bytes, int] = field(default_factory=dict)
    digest: bytes = b""

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

    def edges_to(self, account: bytes) -> list[TrustEdge]:
        return [e for e in self.edges if e.dst == account]

    def edges_from(self, account: bytes) -> list[TrustEdge]:
        return [e for e in self.edges if e.src == account]


# -- edges ------------------------------------------------------------------------------


def trust_edges(state: State) -> list[TrustEdge]:
    """Every trust edge the state holds, sorted by (dst, src, kind, bounty)."""
    forked = state.forks
    honest = honest_reviews(state)
    out: list[TrustEdge] = []
    for b in state.bounties.values():
        if b.phase != "awarded" or b.author in forked:
            continue
        m = b.author
        for sub in b.submissions.values():
            if sub.awarded > 0 and sub.learner not in forked and sub.learner != m:
                out.append(
                    TrustEdge(m, sub.learner, WORK, isqrt(sub.awarded), sub.awarded, b.id, b.skills)
                )
            for rid in sub.reviews:
                rv = state.reviews[rid]
                if rv.paid > 0 and rid in honest and rv.reviewer not in forked:
                    out.append(
                        TrustEdge(m, rv.reviewer, REVIEW, isqrt(rv.paid), rv.paid, b.id, b.skills)
                    )
    for k, a in state.accounts.items():
        if not a.vouches or k in forked:
            continue
        w = min(VOUCH_WEIGHT, VOUCH_CAP // len(a.vouches))
        if w == 0:
            continue
        for v in a.vouches:
            if v not in forked and v != k:
                out.append(TrustEdge(k, v, VOUCH, w))
    out.sort(key=lambda e: (e.dst, e.src, e.kind, e.bounty or b""))
    return out


# -- propagation ------------------------------------------------------------------------


def propagate(adj: Mapping[bytes, Mapping[bytes, int]], seeds: Iterable[bytes]) -> dict[bytes, int]:
    """Personalised PageRank in integers. `adj[src][dst]` is a positive weight.
    Returns the trust of every account with non-zero trust (sums to at most ONE)."""
    seed_set = set(seeds)
    if not seed_set:
        return {}
    names: set[bytes] = set(seed_set)
    for u, outs in adj.items():
        names.add(u)
        names.update(outs)
    order = sorted(names)
    idx = {k: i for i, k in enumerate(order)}
    n = len(order)
    den = [1000 * MIN_OUT_WEIGHT] * n
    ins_src: list[list[int]] = [[] for _ in range(n)]
    ins_w: list[list[int]] = [[] for _ in range(n)]
    for u, outs in adj.items():
        ui = idx[u]
        total = 0
        for v, w in outs.items():
            if w <= 0 or v == u:
                continue
            vi = idx[v]
            ins_src[vi].append(ui)
            ins_w[vi].append(w)
            total += w
        den[ui] = 1000 * max(total, MIN_OUT_WEIGHT)
    pull = [(tuple(s), tuple(w)) for s, w in zip(ins_src, ins_w, strict=True) if s]
    targets = [i for i in range(n) if ins_src[i]]
    seed_idx = sorted(idx[s] for s in seed_set)
    ns = len(seed_idx)
    each = ONE // ns
    mass = each * ns
    keep = 1000 - BLEND_PM
    t = [0] * n
    for i in seed_idx:
        t[i] = each
    for _ in range(ITERATIONS):
        q = [x * keep // d for x, d in zip(t, den, strict=True)]
        get = q.__getitem__
        flows = [sum(map(mul, map(get, s), w)) for s, w in pull]
        new = [0] * n
        for i, f in zip(targets, flows, strict=True):
            new[i] = f
        share = (mass - sum(flows)) // ns
        for i in seed_idx:
            new[i] += share
        t = new
    return {order[i]: x for i, x in enumerate(t) if x}


@dataclass(slots=True)
class _Raw:
    overall: dict[bytes, int]
    skills: dict[str, dict[bytes, int]]
    edges: list[TrustEdge]
    seeds: tuple[bytes, ...]


_CACHE: weakref.WeakKeyDictionary[State, tuple[tuple[object, ...], _Raw]] = (
    weakref.WeakKeyDictionary()
)


def _state_key(state: State) -> tuple[object, ...]:
    return (state.event_count, len(state.void), tuple(sorted(state.forks.items())))


def _raw(state: State) -> _Raw:
    key = _state_key(state)
    hit = _CACHE.get(state)
    if hit is not None and hit[0] == key:
        return hit[1]
    edges = trust_edges(state)
    seeds = tuple(sorted(k for k in state.genesis.trusted if k not in state.forks))
    overall: dict[bytes, dict[bytes, int]] = {}
    per_skill: dict[str, dict[bytes, dict[bytes, int]]] = {}
    for e in edges:
        o = overall.setdefault(e.src, {})
        o[e.dst] = o.get(e.dst, 0) + e.weight
        for s in e.skills:
            g = per_skill.setdefault(s, {}).setdefault(e.src, {})
            g[e.dst] = g.get(e.dst, 0) + e.weight
    raw = _Raw(
        overall=propagate(overall, seeds),
        skills={s: propagate(per_skill[s], seeds) for s in sorted(per_skill)},
        edges=edges,
        seeds=seeds,
    )
    _CACHE[state] = (key, raw)
    return raw


# -- the view -----------------------------------------------------------------------------


def _penalised(b: Bounty, now_ms: int | None) -> bool:
    if b.phase == "refunded":
        return bool(b.commits)  # cancel after delivery
    if b.phase == "awarded":
        return False
    return now_ms is not None and now_ms > b.review_by


def trust_view(state: State, now_ms: int | None = None) -> TrustView:
    """The trust view. Without `now_ms` nothing depends on a clock, and the
    digest is the one nodes compare."""
    raw = _raw(state)
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
        out = {}
        for k, x in scores.items():
            n = pen.get(k, {}).get(skill, 0)
            x >>= n
            if x:
                out[k] = x
        return out

    overall = cut(raw.overall, "")
    skills = {s: cut(sc, s) for s, sc in raw.skills.items()}
    view = TrustView(overall, skills, raw.edges, raw.seeds, pen, no_shows)
    view.digest = trust_digest(view)
    return view


def trust_digest(view: TrustView) -> bytes:
    """sha256 over the canonical encoding of every non-zero score."""
    m = {
        "v": 1,
        "overall": sorted([k, x] for k, x in view.overall.items() if x),
        "skills": [
            [s, sorted([k, x] for k, x in view.skills[s].items() if x)]
            for s in sorted(view.skills)
            if any(view.skills[s].values())
        ],
    }
    return hashlib.sha256(TRUST_DOMAIN + canonical_pack(m)).digest()


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
    skills; None when no review counts) and each review's judgement."""
    b = state.bounties.get(bounty_id)
    if b is None:
        return {}
    tol = state.params.honest_review_tolerance_pm
    mx = b.max_score
    out: dict[bytes, tuple[int | None, list[ReviewJudgement]]] = {}
    for sid in sorted(b.submissions):
        sub = b.submissions[sid]
        rows = []
        for rid in sub.reviews:
            rv = state.reviews[rid]
            w = 0 if rv.reviewer in state.forks else view.skill_weight(rv.reviewer, b.skills)
            rows.append((rid, rv.reviewer, sum(rv.scores) * 1000 // mx, w))
        counted = [(t, w) for _, _, t, w in rows if w >= min_trust]
        med = weighted_median(counted) if counted else None
        out[sid] = (
            med,
            [
                ReviewJudgement(
                    rid, r, t, w, w >= min_trust, med is not None and abs(t - med) <= tol
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
