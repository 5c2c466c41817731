"""`learnmesh bench sybil`: how much trust a farming ring captures.

An honest community does realistic work (bounties with several learners and
reviewers, awards that pay honest reviews, some refunds, profiles, vouches),
then a ring of S keys funded by one member farms as hard as it can: every ring
key posts bounties, the others commit, reveal, review in agreement (so every
review is "honest") and get paid, and every ring key vouches for others. Then K
honest accounts each make one attack edge (alternately: an award paying a ring
member's work, or a vouch for one). Reported: the ring's share of all trust
(overall and in its best skill) under the trust view, and of today's points,
for K = 0, 1, 3, 10 and the K asked; the time to compute; optionally the time
for a large graph (10,000 accounts, 200,000 edges).

The events go through the real fold (`State.apply`: every rule checked, every
event asserted effective); by default they are not signed, which only saves
time: trust depends on accounts and amounts, never on signatures or ids
(`sign=True` builds the same community with signed events through a Replica,
which the tests compare).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from learnmesh.protocol import KINDS, Event, Genesis, KeyPair, Params, Replica, State, award_body
from learnmesh.protocol._author import ChainWriter, commit_body, reveal_body
from learnmesh.protocol._kinds import required_refs
from learnmesh.protocol._prng import SplitMix64
from learnmesh.protocol._reputation import reputation_points, trusted_accounts
from learnmesh.protocol._trust import _CACHE, _GRAPHS, ONE, trust_view

__all__ = ["Community", "SybilBenchError", "register_bench", "run_sybil_bench"]

_DAY = 86_400_000
SKILLS = ("python", "rust", "math", "writing", "design", "networks", "music", "biology")
_RUBRIC = [{"name": "correctness", "max": 10}, {"name": "clarity", "max": 10}]


class SybilBenchError(Exception):
    """A bad argument: printed as one line."""


@dataclass
class Community:
    """Accounts 0..n-1 with allocations; events applied through the real fold."""

    n: int
    seed: int = 1
    trusted: int = 2
    each: int = 10_000_000
    rich: dict[int, int] = field(default_factory=dict)  # index -> allocation
    sign: bool = False
    start_ms: int = 1_700_000_000_000

    def __post_init__(self) -> None:
        self.rng = SplitMix64(self.seed)
        self.keys = [
            KeyPair(hashlib.sha256(b"bench-sybil/%d/%d" % (self.seed, i)).digest())
            for i in range(self.n)
        ]
        self.pk = [k.public_key for k in self.keys]
        self.genesis = Genesis(
            name="bench-sybil",
            created_ms=self.start_ms,
            allocations=tuple(
                sorted(
                    (pk, self.rich.get(i, self.each))
                    for i, pk in enumerate(self.pk)
                    if self.rich.get(i, self.each) > 0
                )
            ),
            trusted=tuple(sorted(self.pk[: self.trusted])),
            params=Params(),
        )
        self.network = self.genesis.network_id
        self.replica = Replica(self.genesis) if self.sign else None
        self.state: State = self.replica.state if self.replica else State(self.genesis)
        self.writers = [ChainWriter(k, self.network) for k in self.keys] if self.sign else []
        self.seq = [0] * self.n
        self.head: list[bytes | None] = [None] * self.n
        self.unclaimed: list[list[bytes]] = [[] for _ in range(self.n)]
        self.index = {pk: i for i, pk in enumerate(self.pk)}
        self.now = self.start_ms + 1000
        self.events = 0
        self._fake = 0

    # -- one event -------------------------------------------------------------------

    def emit(
        self, who: int, kind: str, body: dict[str, Any], extra: list[bytes] | None = None
    ) -> Event:
        self.now += 1000
        refs = sorted({*required_refs(kind, body), *(extra or [])})
        if self.sign:
            ev = self.writers[who].sign(kind, body, self.now, refs)
            assert self.replica is not None
            out = self.replica.add(ev)
            if out.status != "applied" or out.void:
                raise AssertionError(f"bench made a bad {kind}: {out.status} {out.void}")
        else:
            self._fake += 1
            eid = hashlib.sha256(b"fake-event/%d" % self._fake).digest()
            self.seq[who] += 1
            ev = Event(
                id=eid,
                network=self.network,
                author=self.pk[who],
                seq=self.seq[who],
                prev=self.head[who],
                timestamp=self.now,
                kind=KINDS[kind],
                body=body,
                refs=tuple(refs),
                signature=b"",
                raw=b"",
            )
            self.head[who] = eid
            void = self.state.apply(ev)
            if void is not None:
                raise AssertionError(f"bench made a bad {kind}: {void}")
        self.events += 1
        return ev

    def _claims(self, who: int) -> list[bytes]:
        mine = self.unclaimed[who]
        got, self.unclaimed[who] = mine[:64], mine[64:]
        return sorted(got)

    def _credit(self, ev: Event) -> None:
        for acct in self.state.credits.get(ev.id, {}):
            self.unclaimed[self.index[acct]].append(ev.id)

    # -- event stories ---------------------------------------------------------------

    def transfer(self, src: int, dst: int, amount: int) -> None:
        ev = self.emit(
            src, "transfer", {"to": self.pk[dst], "amount": amount, "memo": ""}, self._claims(src)
        )
        self._credit(ev)

    def vouch(self, src: int, dst: int) -> None:
        self.emit(src, "vouch", {"account": self.pk[dst]})

    def profile(self, who: int, skills: list[str]) -> None:
        self.emit(who, "profile", {"name": f"member {who}", "bio": "", "skills": skills})

    def bounty(
        self,
        mentor: int,
        learners: list[int],
        reviewers: list[int],
        reward: int,
        skills: list[str],
        refund: bool = False,
        winners: int | None = None,
        quality: list[int] | None = None,
        jitter: int = 1,
    ) -> bytes:
        """One bounty's whole life: post, commits, close, reveals, reviews, award
        (the first `winners` submissions, evenly; honest reviews paid) or refund."""
        b = self.emit(
            mentor,
            "bounty",
            {
                "title": "farm" if quality is not None else "explain a concept",
                "description": "",
                "rubric": _RUBRIC,
                "skills": sorted(set(skills)),
                "reward": reward,
                "reviewer_share_bp": 1000,
                "submit_by": self.now + _DAY,
                "review_by": self.now + 2 * _DAY,
                "quorum": 1,
            },
            self._claims(mentor),
        )
        commits = []
        for who in learners:
            text, salt = f"answer {who}", self.rng.bytes(16)
            c = self.emit(who, "commit", commit_body(b.id, self.pk[who], text, [], salt))
            commits.append((who, c, text, salt))
        if refund:
            self.emit(mentor, "refund", {"bounty": b.id})
            return b.id
        close = self.emit(
            mentor, "close", {"bounty": b.id, "accepted": sorted(c.id for _, c, _, _ in commits)}
        )
        reveals = []
        for i, (who, c, text, salt) in enumerate(commits):
            r = self.emit(who, "reveal", reveal_body(b.id, c.id, close.id, text, [], salt))
            q = quality[i] if quality else 4 + self.rng.below(6)
            reveals.append(r)
            for rv in reviewers:
                if rv == who:
                    continue
                sc = [
                    max(0, min(10, q + self.rng.below(2 * jitter + 1) - jitter)),
                    max(0, min(10, q + self.rng.below(2 * jitter + 1) - jitter)),
                ]
                self.emit(
                    rv,
                    "review",
                    {"bounty": b.id, "submission": r.id, "scores": sc, "comment": ""},
                )
        k = len(reveals) if winners is None else winners
        body = award_body(self.state, b.id, {r.id: None for r in reveals[:k]})
        aw = self.emit(
            mentor,
            "award",
            body,
            [
                *(w["submission"] for w in body["winners"]),
                *(r["review"] for r in body["reviewers"]),
            ],
        )
        self._credit(aw)
        return b.id


# -- the scenario ---------------------------------------------------------------------------


@dataclass
class Sybil:
    community: Community
    honest: int
    ring: list[int]
    attackers: list[int]  # honest accounts that will make the attack edges, in order
    made: int = 0

    def attack(self, upto: int) -> None:
        c = self.community
        while self.made < upto:
            i = self.made
            src = self.attackers[i % len(self.attackers)]
            dst = self.ring[1 + i % (len(self.ring) - 1)] if len(self.ring) > 1 else self.ring[0]
            if i % 2 == 0:  # an honest mentor pays a ring member's work
                c.bounty(src, [dst], [], 1000 * (1 + c.rng.below(20)), [c.rng.choice(SKILLS)])
            else:
                c.vouch(src, dst)
            self.made += 1


def build(
    honest: int,
    sybils: int,
    seed: int = 1,
    rounds: int = 3,
    farm_rounds: int = 5,
    sign: bool = False,
    trusted: int | None = None,
) -> Sybil:
    """An honest community of `honest` accounts (about `rounds` bounties each)
    and a ring of `sybils` keys, all funded by its first key, farming."""
    if honest < 8:
        raise SybilBenchError("--honest must be at least 8")
    if sybils < 2:
        raise SybilBenchError("--sybils must be at least 2 (one funder and one more key)")
    n = honest + sybils
    funder = honest
    c = Community(
        n,
        seed=seed,
        trusted=trusted if trusted is not None else max(2, honest // 100),
        rich={i: 0 for i in range(honest + 1, n)},
        sign=sign,
    )
    rng = c.rng
    for i in range(honest):
        if rng.chance(300):
            c.profile(i, [rng.choice(SKILLS)])
    # honest work: mentors pay learners and honest reviewers, some refund
    for _ in range(rounds * honest):
        mentor = rng.below(honest)
        others = [x for x in (rng.below(honest) for _ in range(12)) if x != mentor]
        others = list(dict.fromkeys(others))
        k = 1 + rng.below(4)
        learners, reviewers = others[:k], others[k : k + 3]
        skills = [rng.choice(SKILLS) for _ in range(1 + rng.below(2))]
        c.bounty(
            mentor,
            learners,
            reviewers,
            1000 * (1 + rng.below(20)),
            skills,
            refund=rng.chance(15),
            winners=1 + rng.below(len(learners)),
        )
        if rng.chance(100):
            a, b = rng.below(honest), rng.below(honest)
            if a != b:
                c.vouch(a, b)
    # the ring: one funder hands its tokens out, then every key farms
    ring = list(range(honest, n))
    share = c.each // (2 * sybils)
    for r in ring[1:]:
        c.transfer(funder, r, share)
    for _ in range(farm_rounds):
        for mentor in ring:
            others = [r for r in ring if r != mentor]
            picks = list(dict.fromkeys(others[rng.below(len(others))] for _ in range(7)))
            learners, reviewers = picks[:4], picks[4:7]
            c.bounty(
                mentor,
                learners,
                reviewers,
                max(100, share // (farm_rounds + 1)),
                [rng.choice(SKILLS)],
                quality=[10] * len(learners),
                jitter=0,
            )
    for r in ring:  # every key vouches for three others (vouches are capped)
        for j in range(1, 4):
            c.vouch(r, ring[(ring.index(r) + j) % len(ring)])
    attackers = [c.trusted + rng.below(honest - c.trusted) for _ in range(64)]
    return Sybil(c, honest, ring, attackers)


def _forget(state: State) -> None:
    """Drop what the trust view keeps for `state`, so the next one is cold."""
    _CACHE.pop(state, None)
    _GRAPHS.pop(state, None)


def _shares(s: Sybil) -> dict[str, Any]:
    c = s.community
    ring = {c.pk[i] for i in s.ring}
    _forget(c.state)
    t0 = time.process_time()
    view = trust_view(c.state)  # from cold
    compute = time.process_time() - t0
    t0 = time.process_time()
    trust_view(c.state)
    cached = time.process_time() - t0
    total = sum(view.overall.values()) or 1
    ring_t = sum(x for k, x in view.overall.items() if k in ring)
    skill_shares = {}
    for sk, sc in view.skills.items():
        tot = sum(sc.values()) or 1
        skill_shares[sk] = sum(x for k, x in sc.items() if k in ring) * 1_000_000 // tot
    pts = {k: p for k, p in reputation_points(c.state).items() if p > 0}
    ptot = sum(pts.values()) or 1
    ring_p = sum(p for k, p in pts.items() if k in ring)
    old_trusted = trusted_accounts(c.state)
    return {
        "k": s.made,
        "ring_trust_ppm": ring_t * 1_000_000 // total,
        "honest_trust_ppm": (total - ring_t) * 1_000_000 // total,
        "ring_best_skill_ppm": max(skill_shares.values(), default=0),
        "ring_points_ppm": ring_p * 1_000_000 // ptot,
        "ring_keys_trusted_today": len(ring & old_trusted),
        "compute_s": round(compute, 4),
        "cached_s": round(cached, 6),
        "trust_digest": view.digest.hex(),
        "trust_edges": view.edge_count,
        "mass_ppm": total * 1_000_000 // ONE,
    }


def time_large(accounts: int, edges: int, seed: int = 1) -> dict[str, Any]:
    """Build a community whose trust graph has about `edges` distinct
    (src, dst) pairs among `accounts` accounts, through the fold, then time the
    trust view from cold and cached."""
    if accounts < 16 or edges < 1:
        raise SybilBenchError("--large-accounts must be at least 16 and --large-edges positive")
    c = Community(accounts, seed=seed, trusted=max(2, accounts // 100))
    rng = c.rng
    t0 = time.process_time()
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < edges:
        mentor = rng.below(accounts)
        picks = [x for x in (rng.below(accounts) for _ in range(8)) if x != mentor]
        picks = list(dict.fromkeys(picks))
        learners, reviewers = picks[:4], picks[4:7]
        c.bounty(
            mentor,
            learners,
            reviewers,
            1000 * (1 + rng.below(20)),
            [rng.choice(SKILLS) for _ in range(1 + rng.below(2))],
        )
        pairs.update((mentor, x) for x in learners + reviewers)
        if rng.chance(50):
            a, b = rng.below(accounts), rng.below(accounts)
            if a != b:
                c.vouch(a, b)
                pairs.add((a, b))
    build_s = time.process_time() - t0
    _forget(c.state)
    t0 = time.process_time()
    view = trust_view(c.state)
    compute = time.process_time() - t0
    t0 = time.process_time()
    trust_view(c.state)
    cached = time.process_time() - t0
    edge_list = view.all_edges()
    # One more bounty awarded: the edges are updated, the propagation redone.
    mentor = rng.below(accounts)
    c.bounty(mentor, [(mentor + 1) % accounts], [], 5000, [SKILLS[0]])
    t0 = time.process_time()
    trust_view(c.state)
    incremental = time.process_time() - t0
    return {
        "accounts": accounts,
        "trust_edges": len(edge_list),
        "distinct_pairs": len({(e.src, e.dst) for e in edge_list}),
        "skills": len(view.skills),
        "events": c.events,
        "build_s": round(build_s, 2),
        "compute_s": round(compute, 3),
        "after_one_award_s": round(incremental, 3),
        "cached_s": round(cached, 6),
    }


def run_sybil_bench(
    honest: int,
    sybils: int,
    attack_edges: int,
    seed: int = 1,
    rounds: int = 3,
    farm_rounds: int = 5,
    large: tuple[int, int] | None = None,
) -> dict[str, Any]:
    if attack_edges < 0:
        raise SybilBenchError("--attack-edges must be 0 or more")
    if rounds < 1 or farm_rounds < 1:
        raise SybilBenchError("--rounds and --farm-rounds must be at least 1")
    if large is not None and (large[0] < 16 or large[1] < 1):
        raise SybilBenchError("--large-accounts must be at least 16 and --large-edges positive")
    t0 = time.process_time()
    s = build(honest, sybils, seed, rounds, farm_rounds)
    build_s = time.process_time() - t0
    scan = []
    for k in sorted({0, 1, 3, 10, attack_edges}):
        s.attack(k)
        scan.append(_shares(s))
    head = next(r for r in scan if r["k"] == attack_edges)
    # The worst case: a genesis seed itself pays one ring member's work and
    # vouches for another (on top of the largest K).
    c = s.community
    c.bounty(0, [s.ring[-1]], [], 10_000, [SKILLS[0]])
    c.vouch(0, s.ring[-1])
    worst = _shares(s)
    base = scan[0]["ring_trust_ppm"]
    for r in scan:
        r["ring_trust_ppm_per_edge"] = (r["ring_trust_ppm"] - base) // r["k"] if r["k"] else 0
    out: dict[str, Any] = {
        "honest": honest,
        "sybils": sybils,
        "attack_edges": attack_edges,
        "seed": seed,
        "rounds": rounds,
        "farm_rounds": farm_rounds,
        "events": s.community.events,
        "build_s": round(build_s, 2),
        "ring_trust_ppm": head["ring_trust_ppm"],
        "honest_trust_ppm": head["honest_trust_ppm"],
        "ring_points_ppm": head["ring_points_ppm"],
        "ring_best_skill_ppm": head["ring_best_skill_ppm"],
        "compute_s": head["compute_s"],
        "goal_ring_at_most_5pct": head["ring_trust_ppm"] <= 50_000,
        "seed_edges": {
            "k": worst["k"],
            "ring_trust_ppm": worst["ring_trust_ppm"],
            "ring_best_skill_ppm": worst["ring_best_skill_ppm"],
            "ring_keys_trusted_today": worst["ring_keys_trusted_today"],
        },
        "scan": scan,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_1m": round(os.getloadavg()[0], 2),
        },
    }
    if large is not None:
        out["large"] = time_large(large[0], large[1], seed)
    return out


def _print_human(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=(
            f"bench sybil: {r['honest']} honest, {r['sybils']} ring keys, "
            f"{r['events']:,} events (built in {r['build_s']} s)"
        )
    )
    for col in (
        "K",
        "ring",
        "ring best skill",
        "honest",
        "per edge",
        "s",
        "points",
        "vouch-trusted",
    ):
        t.add_column(col, justify="right")
    for row in r["scan"]:
        t.add_row(
            str(row["k"]),
            f"{row['ring_trust_ppm'] / 10_000:.3f} %",
            f"{row['ring_best_skill_ppm'] / 10_000:.3f} %",
            f"{row['honest_trust_ppm'] / 10_000:.3f} %",
            f"{row['ring_trust_ppm_per_edge'] / 10_000:.3f} %",
            f"{row['compute_s']:.2f}",
            f"{row['ring_points_ppm'] / 10_000:.2f} %",
            f"{row['ring_keys_trusted_today']}/{r['sybils']}",
        )
    con = Console()
    con.print(t)
    con.print(
        "K: honest edges into the ring; ring / honest: share of all trust (trust view); "
        "s: seconds to compute it; points: the ring's share of today's points; "
        "vouch-trusted: ring keys trusted by today's vouch rule"
    )
    verdict = "met" if r["goal_ring_at_most_5pct"] else "MISSED"
    con.print(
        f"K={r['attack_edges']}: ring holds {r['ring_trust_ppm'] / 10_000:.3f} % of trust "
        f"(goal <= 5 %: {verdict}); today's points give it {r['ring_points_ppm'] / 10_000:.2f} %"
    )
    w = r["seed_edges"]
    con.print(
        f"worst case, a genesis seed pays one ring key's work and vouches for it too: ring "
        f"{w['ring_trust_ppm'] / 10_000:.3f} % (best skill {w['ring_best_skill_ppm'] / 10_000:.3f}"
        f" %); today's vouch rule would trust {w['ring_keys_trusted_today']} of "
        f"{r['sybils']} ring keys"
    )
    if "large" in r:
        g = r["large"]
        con.print(
            f"large graph: {g['accounts']:,} accounts, {g['trust_edges']:,} trust edges "
            f"({g['distinct_pairs']:,} distinct pairs, {g['skills']} skills): "
            f"trust view {g['compute_s']} s cold, {g['after_one_award_s']} s after one more "
            f"award, {g['cached_s']} s cached"
        )


def _cmd(args: argparse.Namespace) -> int:
    large = (args.large_accounts, args.large_edges) if args.large_accounts else None
    try:
        r = run_sybil_bench(
            args.honest,
            args.sybils,
            args.attack_edges,
            seed=args.seed,
            rounds=args.rounds,
            farm_rounds=args.farm_rounds,
            large=large,
        )
    except SybilBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2, sort_keys=True))
    else:
        _print_human(r)
    return 0


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `sybil` under `learnmesh bench`."""
    p = bench_subparsers.add_parser(
        "sybil", help="the share of trust a farming ring of fake accounts captures"
    )
    p.add_argument("--honest", type=int, default=1000, metavar="N", help="honest accounts")
    p.add_argument("--sybils", type=int, default=200, metavar="S", help="ring keys")
    p.add_argument(
        "--attack-edges", type=int, default=3, metavar="K", help="honest edges into the ring"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="honest bounties per honest account")
    p.add_argument("--farm-rounds", type=int, default=5, help="bounties per ring key")
    p.add_argument(
        "--large-accounts",
        type=int,
        default=0,
        metavar="N",
        help="also time the trust view on a community of N accounts (0: skip)",
    )
    p.add_argument(
        "--large-edges",
        type=int,
        default=200_000,
        metavar="E",
        help="trust edges of that community",
    )
    p.set_defaults(func=_cmd)
