"""API routes for trust (PROTOCOL.md §6.5; the page and the CLI use them):

- `GET /api/trust?skill=S&limit=N`: accounts ranked by trust in skill S (or
  overall without `skill`), each with its overall and per-skill scores.
- `GET /api/trust/{account}`: one account's trust per skill with its rank, the
  edges that gave it (paid work, honest paid reviews, vouches) and what each
  passed, its penalties, no-shows and review calibration.
- `GET /api/trust/reviews/{bid}?min_trust=N`: for each submission of a bounty,
  the trust-weighted median of its reviews and each review's judgement (what a
  mentor may pay as honest; the award stays the mentor's signed choice).
  Without `min_trust`, the bounty's minimum set on this node (else 0).

The bounty view (`GET /api/bounties/{id}`, node/_api.py) carries
`review_trust` from `bounty_review_trust`: which reviews count toward quorum
under the bounty's minimum reviewer trust and which the mentor's award would
pay under each rule. The minimum is in the bounty's terms (PROTOCOL.md §6.6),
so every node knows it; `ReviewerThresholds` (`reviewer_trust.json`) is only
read for bounties a node posted before terms existed.

The propagation runs on a worker thread (`trust_refresh_loop`): the event loop
only brings the edge graph up to date and copies it out, so a node with 10,000
accounts keeps taking in gossip while its trust is recomputed.

Every answer carries `trust_digest` (the clock-free digest nodes compare) and
`events` (the applied events it was computed at). Scores are integers in units
of `one` (all trust); `ppm` is parts per million of all trust. The view is
recomputed when the state changed, at most every `REFRESH_S` seconds (a busy
node may answer from a view a few seconds old: `events` says which).
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from learnmesh.protocol import State, account_from_text, account_text
from learnmesh.protocol._errors import RemoteProtocolError
from learnmesh.protocol._reputation import honest_reviews
from learnmesh.protocol._state import Bounty
from learnmesh.protocol._trust import (
    BLEND_PM,
    ITERATIONS,
    ONE,
    TrustEdge,
    TrustView,
    compute_raw,
    min_trust_of_ppm,
    prepare,
    review_judgements,
    reviewer_calibration,
    reviews_to_pay,
    trust_view,
)
from starlette.requests import Request

from ._service import Node, UserError

__all__ = [
    "MAX_PPM",
    "REFRESH_S",
    "REVIEWER_RULES",
    "ReviewerThresholds",
    "TrustCache",
    "account_trust",
    "bounty_min_ppm",
    "bounty_review_trust",
    "node_trust",
    "trust_ranking",
    "trust_refresh_loop",
    "trust_routes",
]

Handler = Callable[[Request], Awaitable[Any]]
REFRESH_S = 3.0
_MAX_LIMIT = 10_000
MAX_PPM = 1_000_000
REVIEWER_RULES = ("median", "trusted")  # how an award picks the reviews it pays


@dataclass
class _Snapshot:
    key: tuple[int, int, int]
    events: int
    at: float
    view: TrustView  # with now: penalties for abandoned bounties, no-shows
    clock_free: TrustView  # its digest is the one nodes compare
    state: State
    _calibration: dict[bytes, tuple[int, int]] | None = None

    @property
    def calibration(self) -> dict[bytes, tuple[int, int]]:
        """Review calibration, computed on first use (about half a refresh's
        cost on a big network, and only the trust pages show it)."""
        if self._calibration is None:
            self._calibration = reviewer_calibration(self.state, self.view)
        return self._calibration


class TrustCache:
    """The trust view of a state, recomputed when the state changed and the
    last one is older than `refresh_s` seconds."""

    def __init__(self, refresh_s: float = REFRESH_S) -> None:
        self.refresh_s = refresh_s
        self._snap: _Snapshot | None = None
        self._state_id = 0

        self.background = False  # a refresh loop runs: answer from the last view

    @staticmethod
    def _key(state: State) -> tuple[int, int, int]:
        return (state.event_count, len(state.void), len(state.forks))

    def stale(self, state: State) -> bool:
        snap = self._snap
        return snap is None or self._state_id != id(state) or snap.key != self._key(state)

    def get(self, state: State, now_ms: int) -> _Snapshot:
        key = self._key(state)
        snap = self._snap
        fresh = time.monotonic()
        if (
            snap is not None
            and self._state_id == id(state)
            and (snap.key == key or fresh - snap.at < self.refresh_s or self.background)
        ):
            return snap
        return self._build(state, now_ms, key, None)

    def _build(
        self, state: State, now_ms: int, key: tuple[int, int, int], raw: Any
    ) -> _Snapshot:
        clock_free = trust_view(state, None, raw)
        view = trust_view(state, now_ms, raw)
        snap = _Snapshot(
            key,
            state.event_count,
            time.monotonic(),
            view,
            clock_free,
            state,
        )
        self._snap, self._state_id = snap, id(state)
        return snap

    async def refresh(self, state: State, now_ms: int) -> _Snapshot:
        """Recompute with the propagation on a worker thread; the state may move
        on meanwhile (the snapshot says which `events` it was computed at)."""
        key = self._key(state)
        p = prepare(state)
        raw = await trio.to_thread.run_sync(compute_raw, p)
        return self._build(state, now_ms, key, raw)


async def trust_refresh_loop(node: Node, interval_s: float = 0.5) -> None:
    """Keep the node's trust view current off the event loop: at most every
    REFRESH_S seconds, when the state changed. Started by the API server."""
    cache = _CACHES.get(node)
    if cache is None:
        cache = _CACHES[node] = TrustCache()
    cache.background = True
    try:
        while True:
            state = node.ledger.replica.state
            snap = cache._snap
            due = snap is None or time.monotonic() - snap.at >= cache.refresh_s
            if due and cache.stale(state):
                await cache.refresh(state, node.now_ms())
            await trio.sleep(interval_s)
    finally:
        cache.background = False


_CACHES: weakref.WeakKeyDictionary[Node, TrustCache] = weakref.WeakKeyDictionary()


def node_trust(node: Node) -> tuple[State, _Snapshot]:
    """The node's live state and its (shared, cached) trust snapshot."""
    cache = _CACHES.get(node)
    if cache is None:
        cache = _CACHES[node] = TrustCache()
    state = node.ledger.replica.state  # the live state: a rebuild replaces it
    return state, cache.get(state, node.now_ms())


class ReviewerThresholds:
    """Minimum reviewer trust per bounty, in parts per million of all trust:
    node-side data the mentor sets when posting (`reviewer_trust.json`)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "reviewer_trust.json"

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, int) and 0 <= v <= MAX_PPM}

    def get(self, bid: bytes) -> int:
        return self._load().get(bid.hex(), 0)

    def set(self, bid: bytes, ppm: int) -> None:
        if not 0 <= ppm <= MAX_PPM:
            raise UserError(f"min_reviewer_trust_ppm must be an integer in 0..{MAX_PPM}")
        data = self._load()
        if ppm:
            data[bid.hex()] = ppm
        else:
            data.pop(bid.hex(), None)
        tmp = self.path.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(json.dumps(data, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def bounty_min_ppm(node: Node, bid: bytes) -> int:
    """A bounty's minimum reviewer trust in ppm: from its `bounty_terms` (PROTOCOL.md
    §6.6), or, for a bounty this node posted before terms existed, the value it
    kept in `reviewer_trust.json`."""
    t = node.ledger.replica.state.terms.get(bid)
    if t is not None:
        return t.min_reviewer_trust_ppm
    return ReviewerThresholds(node.data_dir).get(bid)


def bounty_review_trust(node: Node, b: Bounty) -> dict[str, Any]:
    """The reviews of a bounty judged by trust: per submission the weighted
    median of the reviews that count (reviewers with at least the bounty's
    minimum trust in its skills), whether they reach the quorum, each review's
    weight, and what an award pays each review under each rule
    (`median`: §6.4's plain median; `trusted`: the trust-weighted one)."""
    state, snap = node_trust(node)
    ppm = bounty_min_ppm(node, b.id)
    min_trust = min_trust_of_ppm(ppm)
    share = b.reward * b.reviewer_share_bp // 10000
    judged = review_judgements(state, snap.view, b.id, min_trust)
    # award_body's rule (§6.4), which also holds once the escrow is spent
    every = [rid for sub in b.submissions.values() for rid in sub.reviews]
    by_median = honest_reviews(state, [b]) or (set(every) if len(every) == 1 else set())
    by_trust = set(reviews_to_pay(state, snap.view, b.id, min_trust))
    each = {
        "median": share // len(by_median) if by_median else 0,
        "trusted": share // len(by_trust) if by_trust else 0,
    }
    subs: dict[str, Any] = {}
    for sid, (med, rows) in judged.items():
        counted = sum(1 for j in rows if j.counts)
        reviews = {}
        for j in rows:
            tol = state.params.honest_review_tolerance_pm
            if not j.counts:
                why = "its reviewer is below the bounty's minimum trust: it does not count"
            elif counted < 2:
                why = (
                    "the only review that counts in this bounty"
                    if j.review in by_trust
                    else "the only review that counts on this work: nothing to compare it with"
                )
            elif j.near:
                why = f"within {tol} ‰ of the weighted median"
            else:
                why = f"{abs(j.total - (med or 0))} ‰ from the weighted median (over {tol} ‰)"
            reviews[j.review.hex()] = {
                "reviewer": account_text(j.reviewer),
                "total": j.total,
                "weight": j.weight,
                "weight_ppm": _ppm(j.weight, ONE),
                "counts": j.counts,
                "near": j.near,
                "paid_by_trusted": each["trusted"] if j.review in by_trust else 0,
                "paid_by_median": each["median"] if j.review in by_median else 0,
                "why": why,
            }
        subs[sid.hex()] = {
            "weighted_median": med,
            "counted": counted,
            "quorum_met": counted >= b.quorum,
            "reviews": reviews,
        }
    return {
        "min_reviewer_trust_ppm": ppm,
        "min_trust": min_trust,
        "tolerance_pm": state.params.honest_review_tolerance_pm,
        "share": share,
        "paid_by": {
            "median": sorted(r.hex() for r in by_median),
            "trusted": sorted(r.hex() for r in by_trust),
        },
        "trust_digest": snap.clock_free.digest.hex(),
        "events": snap.events,
        "submissions": subs,
    }


def _ppm(x: int, total: int) -> int:
    return x * 1_000_000 // total if total > 0 else 0


def _rank(scores: dict[bytes, int], account: bytes) -> int | None:
    mine = scores.get(account, 0)
    if mine <= 0:
        return None
    return 1 + sum(1 for k, x in scores.items() if x > mine or (x == mine and k < account))


def _edge_json(e: TrustEdge, view: TrustView, total: int, inbound: bool) -> dict[str, Any]:
    gives = view.rates.get(e.src, 0) * e.weight
    return {
        ("from" if inbound else "to"): account_text(e.src if inbound else e.dst),
        "kind": e.kind,
        "bounty": e.bounty.hex() if e.bounty else None,
        "skills": list(e.skills),
        "amount": e.amount,
        "weight": e.weight,
        "gives": gives,
        "gives_ppm": _ppm(gives, total),
    }


def trust_ranking(
    state: State, snap: _Snapshot, skill: str | None, limit: int = 100
) -> dict[str, Any]:
    view = snap.view
    if skill is not None and skill not in view.skills:
        scores: dict[bytes, int] = {}
    else:
        scores = view.overall if skill is None else view.skills[skill]
    total = sum(scores.values())
    overall_total = sum(view.overall.values())
    skill_totals = {s: sum(sc.values()) for s, sc in view.skills.items()}
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    rows = []
    for i, (k, x) in enumerate(ranked):
        near, judged = snap.calibration.get(k, (0, 0))
        rows.append(
            {
                "rank": i + 1,
                "account": account_text(k),
                "score": x,
                "ppm": _ppm(x, total),
                "overall": view.overall.get(k, 0),
                "overall_ppm": _ppm(view.overall.get(k, 0), overall_total),
                "skills": {
                    s: _ppm(sc[k], skill_totals[s])
                    for s, sc in sorted(view.skills.items())
                    if sc.get(k)
                },
                "seed": k in view.seeds,
                "penalties": view.penalties.get(k, {}).get("", 0),
                "no_shows": view.no_shows.get(k, 0),
                "calibration": {"near": near, "judged": judged},
            }
        )
    return {
        "trust_digest": snap.clock_free.digest.hex(),
        "events": snap.events,
        "skill": skill,
        "skills": [
            {"skill": s, "accounts": len(sc), "total": skill_totals[s]}
            for s, sc in sorted(view.skills.items())
        ],
        "one": ONE,
        "blend_pm": BLEND_PM,
        "iterations": ITERATIONS,
        "total": total,
        "count": len(scores),
        "accounts": rows,
    }


def account_trust(state: State, snap: _Snapshot, account: bytes) -> dict[str, Any]:
    view = snap.view
    overall_total = sum(view.overall.values())
    skills = {}
    for s, sc in sorted(view.skills.items()):
        x = sc.get(account, 0)
        if x:
            skills[s] = {
                "score": x,
                "ppm": _ppm(x, sum(sc.values())),
                "rank": _rank(sc, account),
                "of": len(sc),
            }
    near, judged = snap.calibration.get(account, (0, 0))
    pen = view.penalties.get(account, {})
    return {
        "account": account_text(account),
        "trust_digest": snap.clock_free.digest.hex(),
        "events": snap.events,
        "one": ONE,
        "overall": {
            "score": view.overall.get(account, 0),
            "ppm": _ppm(view.overall.get(account, 0), overall_total),
            "rank": _rank(view.overall, account),
            "of": len(view.overall),
        },
        "skills": skills,
        "seed": account in view.seeds,
        "forked": account in state.forks,
        "penalties": {
            "bounties": pen.get("", 0),
            "by_skill": {s: n for s, n in sorted(pen.items()) if s},
        },
        "no_shows": view.no_shows.get(account, 0),
        "calibration": {"near": near, "judged": judged},
        "edges_in": [_edge_json(e, view, overall_total, True) for e in view.edges_to(account)],
        "edges_out": [_edge_json(e, view, overall_total, False) for e in view.edges_from(account)],
    }


def review_quality(state: State, snap: _Snapshot, bid: bytes, min_trust: int) -> dict[str, Any]:
    b = state.bounties.get(bid)
    if b is None:
        raise UserError("no such bounty", code="not_found", status=404)
    out = []
    for sid, (med, rows) in review_judgements(state, snap.view, bid, min_trust).items():
        out.append(
            {
                "submission": sid.hex(),
                "weighted_median": med,
                "counted": sum(1 for j in rows if j.counts),
                "reviews": [
                    {
                        "review": j.review.hex(),
                        "reviewer": account_text(j.reviewer),
                        "total": j.total,
                        "weight": j.weight,
                        "counts": j.counts,
                        "near": j.near,
                    }
                    for j in rows
                ],
            }
        )
    return {
        "bounty": bid.hex(),
        "skills": list(b.skills),
        "min_trust": min_trust,
        "tolerance_pm": state.params.honest_review_tolerance_pm,
        "quorum": b.quorum,
        "trust_digest": snap.clock_free.digest.hex(),
        "events": snap.events,
        "submissions": out,
    }


def _account_arg(text: str) -> bytes:
    try:
        return account_from_text(text)
    except RemoteProtocolError as exc:
        raise UserError(exc.reason, code="bad_request") from None


def _int_arg(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise UserError(f"{name} must be an integer", code="bad_request") from None
    if not lo <= v <= hi:
        raise UserError(f"{name} must be between {lo} and {hi}", code="bad_request")
    return v


def trust_routes(node: Node) -> list[tuple[str, str, Handler]]:
    def snapshot() -> tuple[State, _Snapshot]:
        return node_trust(node)

    async def ranking(request: Request) -> Any:
        skill = request.query_params.get("skill") or None
        if skill is not None and len(skill) > 32:
            raise UserError("a skill is at most 32 characters", code="bad_request")
        limit = _int_arg(request, "limit", 100, 1, _MAX_LIMIT)
        state, snap = snapshot()
        return trust_ranking(state, snap, skill, limit)

    async def one(request: Request) -> Any:
        acct = _account_arg(request.path_params["account"])
        state, snap = snapshot()
        return account_trust(state, snap, acct)

    async def reviews(request: Request) -> Any:
        text = request.path_params["bid"]
        try:
            bid = bytes.fromhex(text)
        except ValueError:
            bid = b""
        if len(bid) != 32:
            raise UserError("a bounty id is 64 hex characters", code="bad_request")
        # by default the minimum the mentor set on this node when posting (if any)
        dflt = min_trust_of_ppm(bounty_min_ppm(node, bid))
        min_trust = _int_arg(request, "min_trust", dflt, 0, ONE)
        state, snap = snapshot()
        return review_quality(state, snap, bid, min_trust)

    return [
        ("GET", "/api/trust", ranking),
        ("GET", "/api/trust/reviews/{bid}", reviews),
        ("GET", "/api/trust/{account}", one),
    ]
