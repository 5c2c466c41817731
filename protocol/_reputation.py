"""Reputation: a first, simple rule, computed from the state alone.

- awarded work: `points_awarded_work` per submission that received tokens;
- settling a bounty (award): `points_settled_bounty` to its mentor;
- an honest review: `points_honest_review` when its total score is within
  `honest_review_tolerance_pm` (per mille of the rubric maximum) of the median
  of all reviews of the same submission (needs at least two reviews);
- disputes (PROTOCOL.md §6.8): an overturned award, refund or review costs
  its mentor or reviewer `POINTS_OVERTURNED` and an overturned review is no
  longer honest; jurors of a decided panel gain or lose `POINTS_JUROR`;
- abandonment (a view that needs `now`): a bounty still unsettled past its review
  deadline costs its mentor `penalty_abandoned_bounty`;
- trust: the genesis's pre-trusted accounts, and whoever a trusted account
  vouches for, transitively. One careless vouch admits a whole ring, and the
  points above can be farmed by a few keys paying each other: per-skill trust
  that resists both is `_trust.trust_view` (PROTOCOL.md §6.5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._state import Bounty, State

__all__ = ["Reputation", "honest_reviews", "reputation", "reputation_points", "trusted_accounts"]


def _median(xs: list[int]) -> int:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2


def honest_reviews(state: State, bounties: Iterable[Bounty] | None = None) -> set[bytes]:
    """Ids of reviews close to the median of their submission's reviews (of
    every bounty, or only of `bounties`). A review a dispute overturned is
    left out, of the median too (protocol/_disputes.py)."""
    out: set[bytes] = set()
    tol = state.params.honest_review_tolerance_pm
    gone = _overturned_reviews(state)
    for b in state.bounties.values() if bounties is None else bounties:
        mx = b.max_score
        for sub in b.submissions.values():
            rids = [r for r in sub.reviews if r not in gone] if gone else sub.reviews
            if len(rids) < 2:
                continue
            # per mille of the maximum, integers only: the digest must not see floats
            totals = {rid: sum(state.reviews[rid].scores) * 1000 // mx for rid in rids}
            med = _median(list(totals.values()))
            out.update(rid for rid, t in totals.items() if abs(t - med) <= tol)
    return out


def reputation_points(state: State) -> dict[bytes, int]:
    """Points that depend only on the events: part of the state digest. Decided
    disputes add theirs (overturned mentors and reviewers, jurors)."""
    pts = {k: a.points for k, a in state.accounts.items()}
    bonus = state.params.points_honest_review
    for rid in honest_reviews(state):
        r = state.reviews[rid].reviewer
        pts[r] = pts.get(r, 0) + bonus
    if state.disputes.disputes:
        from ._disputes import dispute_outcomes

        for k, p in dispute_outcomes(state).points.items():
            pts[k] = pts.get(k, 0) + p
    return pts


def _overturned_reviews(state: State) -> frozenset[bytes]:
    if not state.disputes.disputes:
        return frozenset()
    from ._disputes import dispute_outcomes

    return dispute_outcomes(state).overturned_reviews


def trusted_accounts(state: State) -> set[bytes]:
    """Trusted accounts, less any that forked its chain (as in `reputation`)."""
    trusted = set(state.genesis.trusted)
    frontier = list(trusted)
    while frontier:
        k = frontier.pop()
        a = state.accounts.get(k)
        if a is None or k in state.forks:
            continue
        for v in a.vouches:
            if v not in trusted:
                trusted.add(v)
                frontier.append(v)
    return trusted - state.forks.keys()


@dataclass(frozen=True, slots=True)
class Reputation:
    account: bytes
    points: int
    abandoned: int
    score: int
    trusted: bool
    equivocated: bool


def reputation(state: State, now_ms: int | None = None) -> dict[bytes, Reputation]:
    """The reputation view. With `now_ms`, abandoned bounties count against
    their mentors; without it, nothing depends on a clock."""
    pts = reputation_points(state)
    abandoned: dict[bytes, int] = {}
    if now_ms is not None:
        for b in state.bounties.values():
            if b.phase not in ("awarded", "refunded") and now_ms > b.review_by:
                abandoned[b.author] = abandoned.get(b.author, 0) + 1
    trusted = trusted_accounts(state)
    out = {}
    for k in set(pts) | set(abandoned) | set(state.forks):
        p = pts.get(k, 0)
        ab = abandoned.get(k, 0)
        eq = k in state.forks
        score = p - ab * state.params.penalty_abandoned_bounty
        out[k] = Reputation(k, p, ab, min(score, 0) if eq else score, k in trusted and not eq, eq)
    return out
