"""`learnmesh bench recommend`: how long one recommendation takes on a large network.

A network of `--accounts` accounts and `--bounties` bounties is generated in
this process through the real fold (devnet/_bench_sybil.py's `Community`:
every rule checked, every event asserted effective; unsigned, which only
saves time, since nothing here depends on signatures or ids): profiles with
skills, settled bounties with several learners, reviews and awards (some
refunded after a commit, some left unsettled past their review deadline),
bounty_terms with prerequisite bounties and skills and resources on a share
of them, and open bounties (some with commits) for the recommendations to rank.

Then, as a node does: the trust view is computed once (node/_api_trust.py's
`TrustCache`, which a node keeps and refreshes only when its state changed),
and `--learners` recommendations for different accounts are timed one by one,
each the API's whole work without HTTP: score and sort every open bounty for
the account, explain the first `--limit` (`rank`) and encode them as JSON. The per-recommendation
figures do not include the trust view; its cold time is reported beside them,
and so is a recommendation that first refreshes it after one more award (what
a request on a busy node waits for at most once per refresh period).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

from learnmesh.node._recommend import rank
from learnmesh.protocol import award_body
from learnmesh.protocol._author import commit_body, reveal_body
from learnmesh.protocol._trust import _CACHE, _GRAPHS

from ._bench_sybil import SKILLS, Community

__all__ = ["RecommendBenchError", "build_network", "register_bench", "run_recommend_bench"]

_HOUR = 3_600_000
_DAY = 24 * _HOUR
_RUBRIC = [{"name": "correctness", "max": 10}, {"name": "clarity", "max": 10}]
_RESOURCE = {
    "title": "Open course notes",
    "url": "https://ocw.mit.edu/",
    "kind": "course",
    "licence": "CC-BY-NC-SA-4.0",
}


class RecommendBenchError(Exception):
    """A bad argument: printed as one line."""


class _Net:
    """The generated network: a Community plus the bounties it posted."""

    def __init__(self, accounts: int, seed: int) -> None:
        self.c = Community(accounts, seed=seed, trusted=max(2, accounts // 100), each=10_000_000)
        self.rng = self.c.rng
        self.posted: list[bytes] = []
        self.terms = 0
        self.open = 0

    def _others(self, mentor: int, k: int) -> list[int]:
        n = self.c.n
        picks = [x for x in (self.rng.below(n) for _ in range(k + 4)) if x != mentor]
        return list(dict.fromkeys(picks))[:k]

    def post(self, mentor: int, submit_in: int, review_in: int) -> bytes:
        c, rng = self.c, self.rng
        skills = sorted({rng.choice(SKILLS) for _ in range(1 + rng.below(2))})
        b = c.emit(
            mentor,
            "bounty",
            {
                "title": f"Task {len(self.posted)}: {' and '.join(skills)}",
                "description": "",
                "rubric": _RUBRIC,
                "skills": skills,
                "reward": 500 * (1 + rng.below(40)),
                "reviewer_share_bp": 1000,
                "submit_by": c.now + submit_in,
                "review_by": c.now + review_in,
                "quorum": 1,
            },
            c._claims(mentor),
        )
        # A third of the bounties fix terms: prerequisites among earlier bounties
        # and skills, and a resource (the very next event of the mentor's chain).
        if self.posted and rng.below(3) == 0:
            pre = list(
                dict.fromkeys(
                    self.posted[len(self.posted) - 1 - rng.below(min(len(self.posted), 200))]
                    for _ in range(1 + rng.below(2))
                )
            )
            c.emit(
                mentor,
                "bounty_terms",
                {
                    "bounty": b.id,
                    "min_reviewer_trust_ppm": 0,
                    "prereq_bounties": pre,
                    "prereq_skills": [rng.choice(SKILLS)] if rng.below(2) else [],
                    "resources": [_RESOURCE],
                },
            )
            self.terms += 1
        self.posted.append(b.id)
        return b.id

    def settled(self, mentor: int, fate: str) -> None:
        """One bounty's whole life: `award`, `refund` (after a commit) or `lapse`
        (closed and never settled, its review deadline a few hours away)."""
        c, rng = self.c, self.rng
        lapse = fate == "lapse"
        bid = self.post(mentor, _HOUR if lapse else _DAY, 2 * _HOUR if lapse else 2 * _DAY)
        people = self._others(mentor, 7)
        k = 1 + rng.below(4)
        learners, reviewers = people[:k], people[k : k + 3]
        commits = []
        for who in learners:
            text, salt = f"answer {who}", rng.bytes(16)
            ev = c.emit(who, "commit", commit_body(bid, c.pk[who], text, [], salt))
            commits.append((who, ev, text, salt))
        if fate == "refund":
            c.emit(mentor, "refund", {"bounty": bid})
            return
        close = c.emit(
            mentor, "close", {"bounty": bid, "accepted": sorted(ev.id for _, ev, _, _ in commits)}
        )
        reveals = []
        for who, ev, text, salt in commits:
            r = c.emit(who, "reveal", reveal_body(bid, ev.id, close.id, text, [], salt))
            reveals.append(r)
            q = 3 + rng.below(8)
            for rv in reviewers:
                if rv != who:
                    sc = [min(10, q + rng.below(2)), min(10, q + rng.below(2))]
                    rbody = {"bounty": bid, "submission": r.id, "scores": sc, "comment": ""}
                    c.emit(rv, "review", rbody)
        if lapse:
            return
        body = award_body(
            c.state, bid, {r.id: None for r in reveals[: 1 + rng.below(len(reveals))]}
        )
        aw = c.emit(
            mentor,
            "award",
            body,
            [
                *(w["submission"] for w in body["winners"]),
                *(x["review"] for x in body["reviewers"]),
            ],
        )
        c._credit(aw)

    def opened(self, mentor: int) -> None:
        c, rng = self.c, self.rng
        submit_in = [6 * _HOUR, 2 * _DAY, 5 * _DAY, 14 * _DAY][rng.below(4)]
        bid = self.post(mentor, submit_in, submit_in + 3 * _DAY)
        for who in self._others(mentor, rng.below(4)):
            c.emit(who, "commit", commit_body(bid, c.pk[who], f"w {who}", [], rng.bytes(16)))
        self.open += 1


def build_network(accounts: int, bounties: int, open_share_pm: int, seed: int) -> _Net:
    if accounts < 16:
        raise RecommendBenchError("--accounts must be at least 16")
    if bounties < 2:
        raise RecommendBenchError("--bounties must be at least 2")
    if not 1 <= open_share_pm <= 1000:
        raise RecommendBenchError("--open-pm must be in 1..1000")
    net = _Net(accounts, seed)
    c, rng = net.c, net.rng
    for i in range(accounts):
        if rng.below(10) < 6:
            skills = sorted({rng.choice(SKILLS) for _ in range(1 + rng.below(2))})
            c.profile(i, skills)
    n_open = max(1, bounties * open_share_pm // 1000)
    # Settled and open bounties interleaved, as a living network has them.
    order = ["open"] * n_open + ["settled"] * (bounties - n_open)
    for j in range(len(order) - 1, 0, -1):  # a seeded Fisher-Yates shuffle
        k = rng.below(j + 1)
        order[j], order[k] = order[k], order[j]
    for what in order:
        mentor = rng.below(accounts)
        if what == "open":
            net.opened(mentor)
        else:
            r = rng.below(100)
            net.settled(mentor, "refund" if r < 8 else "lapse" if r < 11 else "award")
    return net


def _pct(xs: list[float], p: int) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, (len(s) * p) // 100)]


def run_recommend_bench(
    accounts: int = 5000,
    bounties: int = 2000,
    learners: int = 100,
    limit: int = 20,
    open_share_pm: int = 300,
    seed: int = 1,
) -> dict[str, Any]:
    # the node's API modules load starlette and libp2p: here, not on every `learnmesh` run
    from learnmesh.node._api_recommend import recommendation_json
    from learnmesh.node._api_trust import TrustCache

    if learners < 1:
        raise RecommendBenchError("--learners must be at least 1")
    if not 1 <= limit <= 500:
        raise RecommendBenchError("--limit must be in 1..500")
    t0 = time.perf_counter()
    net = build_network(accounts, bounties, open_share_pm, seed)
    build_s = time.perf_counter() - t0
    c = net.c
    state = c.state
    now = c.now + 1000
    # The trust view, cold, as a node computes it (then cached until the state changes).
    _CACHE.pop(state, None)
    _GRAPHS.pop(state, None)
    cache = TrustCache()
    t0 = time.perf_counter()
    snap = cache.get(state, now)
    trust_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cache.get(state, now)
    cached_s = time.perf_counter() - t0
    # Learners spread over the accounts: some with much history, some with none.
    step = max(1, accounts // learners)
    who = [c.pk[(i * step + 1) % accounts] for i in range(learners)]
    times: list[float] = []
    counts: list[int] = []
    tops: set[tuple[bytes, ...]] = set()
    for acct in who:
        t0 = time.perf_counter()
        ranked = rank(state, snap.view, acct, now, limit)
        answer = [recommendation_json(state, r) for r in ranked.items]
        times.append(time.perf_counter() - t0)
        counts.append(ranked.count)
        tops.add(tuple(r.bounty.id for r in ranked.items[:5]))
        assert len(answer) == min(limit, ranked.count)
    ms = [t * 1000 for t in times]
    open_now = sum(1 for b in state.bounties.values() if b.phase == "open" and b.submit_by > now)
    sizes = {  # the network the recommendations were timed on
        "bounties": len(state.bounties),
        "open_bounties": open_now,
        "bounties_with_terms": net.terms,
        "submissions": sum(len(b.submissions) for b in state.bounties.values()),
        "reviews": len(state.reviews),
        "events": c.events,
    }
    # The worst case on a running node: the state changed (one more award) and
    # the cached trust view is older than its refresh time, so this request
    # recomputes it (its edges kept up to date per bounty) before ranking.
    fresh: list[float] = []
    for i in range(5):
        net.settled(net.rng.below(accounts), "award")
        later = c.now + 1000
        t0 = time.perf_counter()
        snap2 = TrustCache().get(state, later)
        rank(state, snap2.view, who[i % len(who)], later, limit)
        fresh.append((time.perf_counter() - t0) * 1000)
    return {
        "accounts": accounts,
        **sizes,
        "seed": seed,
        "build_s": round(build_s, 2),
        "trust_view_cold_s": round(trust_s, 3),
        "trust_view_cached_s": round(cached_s, 6),
        "trust_edges": snap.view.edge_count,
        "learners": learners,
        "limit": limit,
        "includes_trust_view": False,
        "recommend_ms": {
            "p50": round(statistics.median(ms), 2),
            "p95": round(_pct(ms, 95), 2),
            "max": round(max(ms), 2),
            "mean": round(statistics.fmean(ms), 2),
        },
        "after_one_award_with_trust_view_ms": {
            "p50": round(statistics.median(fresh), 1),
            "max": round(max(fresh), 1),
        },
        "candidates_mean": round(statistics.fmean(counts), 1),
        "distinct_top5_lists": len(tops),
        "goal_under_200ms": max(ms) < 200,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_1m": round(os.getloadavg()[0], 2),
        },
    }


def _print_human(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(
        f"bench recommend: {r['accounts']:,} accounts, {r['bounties']:,} bounties "
        f"({r['open_bounties']:,} open, {r['bounties_with_terms']:,} with terms), "
        f"{r['submissions']:,} submissions, {r['reviews']:,} reviews, {r['events']:,} events "
        f"(built in {r['build_s']} s)"
    )
    t = Table(title=f"one recommendation for each of {r['learners']} learners (limit {r['limit']})")
    for col in ("p50 ms", "p95 ms", "max ms", "mean ms", "goal < 200 ms"):
        t.add_column(col, justify="right")
    m = r["recommend_ms"]
    t.add_row(
        f"{m['p50']:.2f}",
        f"{m['p95']:.2f}",
        f"{m['max']:.2f}",
        f"{m['mean']:.2f}",
        "met" if r["goal_under_200ms"] else "MISSED",
    )
    con.print(t)
    con.print(
        f"without the trust view, which the node computes once per state change: "
        f"{r['trust_view_cold_s']} s cold ({r['trust_edges']:,} edges), "
        f"{r['trust_view_cached_s'] * 1000:.3f} ms cached; a request right after one "
        f"more award that refreshes it: {r['after_one_award_with_trust_view_ms']['p50']} ms "
        f"(max {r['after_one_award_with_trust_view_ms']['max']} ms); "
        f"{r['candidates_mean']} candidates per learner on average, "
        f"{r['distinct_top5_lists']} distinct top-5 lists; load {r['machine']['load_1m']}"
    )


def _cmd(args: argparse.Namespace) -> int:
    try:
        r = run_recommend_bench(
            args.accounts, args.bounties, args.learners, args.limit, args.open_pm, args.seed
        )
    except RecommendBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2, sort_keys=True))
    else:
        _print_human(r)
    return 0


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `recommend` under `learnmesh bench`."""
    p = bench_subparsers.add_parser(
        "recommend", help="time one recommendation on a generated network (issue 15)"
    )
    p.add_argument("--accounts", type=int, default=5000)
    p.add_argument("--bounties", type=int, default=2000)
    p.add_argument(
        "--open-pm", type=int, default=300, help="per mille of the bounties left open (300)"
    )
    p.add_argument("--learners", type=int, default=100, help="recommendations to time")
    p.add_argument("--limit", type=int, default=20, help="results per recommendation")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_cmd)
