"""`learnmesh devnet run --scenario disputes` (issue 12): disputes decided by
juries drawn from the network, on at least 5 node processes.

Roles: n00 is the mentor, n01 the better learner (A), n02 the weaker (B), and
every other node a member trusted by the genesis who reviews and sits on
juries. With 5 nodes, one more trusted member runs no node (a juror who never
shows up: a panel still decides by a strict majority of the others).

1. Bounty "unfair": A and B submit; one member reviews both honestly, another
   scores A's good work 0 (careless); the mentor awards B, the weaker work.
2. Bounty "fair": A and B submit; the mentor awards A.
3. A disputes the unfair award (the jury upholds it), B disputes the fair award
   (a frivolous dispute: the jury rejects it) and A disputes the careless review
   (upheld). Each dispute's jury is drawn by the disputant's node with the
   protocol's draw; the drawn members vote on their own nodes; once every
   vote is in, the devnet moves every node's clock past `vote_by` (node/_clock.py:
   the voting window is generous but never waited out), and the nodes reveal
   the sealed votes and claim the bonds owed.
4. The moderation step (devnet/_scenario_moderation.py): a spammer flagged by
   members and blocked by one node.

The report: each dispute's outcome, the jurors every node shows (equal), the
votes and the bond's movements, `converged`, `supply_conserved` (bonds still
locked count as escrow), plus the moderation step's own report.
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from learnmesh.protocol import FINAL_PHASES, KeyPair
from rich.table import Table

from ._cluster import ApiError, Cluster, DevnetError, NodeProc, poll, sparse_topology
from ._report import LiveView, bounty_phases, supply_check
from ._scenarios import devnet_session, publish_report

if TYPE_CHECKING:
    from ._scenarios import RunOptions

__all__ = ["MIN_NODES", "run_disputes"]

MIN_NODES = 5
_MENTOR_FUNDS = 100_000
_LEARNER_FUNDS = 2_000
_MEMBER_FUNDS = 1_000
_BOND = 30
_REVEAL_S = 180  # seconds (real ones) for the jurors' nodes to reveal after voting closes


def _vote_s(n: int) -> int:
    """The voting window: long enough for every juror's node to hear of the
    dispute and vote on a loaded machine. Once the votes are in, the devnet moves
    the clocks past it instead of waiting."""
    return 120 + 3 * n


class _DisputesRun:
    def __init__(self, opts: RunOptions, cluster: Cluster, view: LiveView) -> None:
        self.opts = opts
        self.c = cluster
        self.view = view
        self.rng = random.Random(opts.seed)
        self.t0 = time.time()
        nodes = cluster.nodes
        self.mentor, self.a, self.b = nodes[0], nodes[1], nodes[2]
        self.members = nodes[3:]
        self.absent: KeyPair | None = None
        if len(self.members) < 3:  # the jury needs three non-parties: one runs no node
            seed = hashlib.sha256(b"learnmesh/devnet/absent-juror\x00" + str(opts.seed).encode())
            self.absent = KeyPair(seed.digest())
        self.names: dict[str, str] = {}

    def log(self, msg: str) -> None:
        self.view.log(msg)

    def name(self, acct: str) -> str:
        return self.names.get(acct, acct[:12] + "…")

    # -- set-up ----------------------------------------------------------------------

    def setup(self) -> None:
        self.view.set_phase("making data directories and the genesis")
        self.c.init_all()
        alloc = {self.mentor.account: _MENTOR_FUNDS}
        alloc.update({n.account: _LEARNER_FUNDS for n in (self.a, self.b)})
        alloc.update({n.account: _MEMBER_FUNDS for n in self.members})
        trusted = [self.mentor.account, *(n.account for n in self.members)]
        if self.absent is not None:
            alloc[self.absent.account] = _MEMBER_FUNDS
            trusted.append(self.absent.account)
            self.names[self.absent.account] = "absent juror (no node)"
        self.c.make_genesis(f"devnet-disputes-{self.opts.seed}", alloc, trusted=trusted)
        for n, role in ((self.mentor, "mentor"), (self.a, "learner A"), (self.b, "learner B")):
            self.names[n.account] = f"{n.name} ({role})"
        for n in self.members:
            self.names[n.account] = f"{n.name} (member)"
        self.view.set_phase(f"starting {len(self.c.nodes)} nodes")
        self.c.start_all(sparse_topology(len(self.c.nodes), self.rng))
        self.c.wait_connected(timeout=90)
        self.log("every node is connected to its bootstrap peers")

    # -- helpers ---------------------------------------------------------------------------

    def wait_bounty(
        self, node: NodeProc, bid: str, check: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        def ok() -> dict[str, Any] | None:
            try:
                b: dict[str, Any] = node.get(f"/api/bounties/{bid}")
            except ApiError as exc:
                if exc.status == 404:
                    return None
                raise
            return b if check(b) else None

        return poll(ok, 120.0, f"{what} on {node.name}", 0.25)

    def bounty(self, title: str, winner: NodeProc, careless: bool) -> dict[str, Any]:
        """A and B submit; members review (one carelessly if asked); the mentor
        awards `winner`. Returns the bounty's id, award id, submissions, reviews."""
        rubric = [{"name": "correctness", "max": 10}, {"name": "clarity", "max": 10}]
        now = self.c.now_ms()
        bid = self.mentor.post(
            "/api/bounties",
            {
                "title": title,
                "description": "Explain it with one worked example.",
                "reward": 600,
                "rubric": rubric,
                "skills": ["distributed-systems"],
                "submit_by": now + 600_000,
                "review_by": now + 1_800_000,
                "quorum": 1,
                "reviewer_share_bp": 1000,
            },
        )["id"]
        work = [
            (self.a, "A complete answer: the model, a worked example and its limits. " * 8),
            (self.b, "two lines"),
        ]
        for n, text in work:
            self.wait_bounty(n, bid, lambda _b: True, f"bounty {title!r}")
            n.post("/api/submit", {"bounty": bid, "text": text})
        self.wait_bounty(self.mentor, bid, lambda b: b["commits"] == 2, "both commits")
        self.mentor.post(f"/api/bounties/{bid}/close", {})
        subs = self.wait_bounty(self.mentor, bid, lambda b: b["submissions"] == 2, "both reveals")
        by = {s["learner"]: s["id"] for s in subs["submissions_detail"]}
        sa, sb = by[self.a.account], by[self.b.account]
        honest, sloppy = self.members[0], self.members[1]
        reviews: dict[str, str] = {}
        plan = [(honest, sa, 9), (honest, sb, 3)]
        if careless:
            plan.append((sloppy, sa, 0))
        for rv, sid, score in plan:
            self.wait_bounty(
                rv,
                bid,
                functools.partial(_has_submission, sid),
                "a reveal",
            )
            comment = "skimmed it" if score == 0 else "read it through"
            rid = rv.post(
                "/api/review",
                {
                    "submission": sid,
                    "scores": {"correctness": score, "clarity": score},
                    "comment": comment,
                },
            )["id"]
            reviews[f"{rv.name}:{'A' if sid == sa else 'B'}"] = rid
        self.wait_bounty(
            self.mentor,
            bid,
            lambda b: sum(len(s["reviews"]) for s in b["submissions_detail"]) == len(plan),
            "the reviews",
        )
        award = self.mentor.post(
            f"/api/bounties/{bid}/award", {"winners": {by[winner.account]: None}}
        )["id"]
        which = "weaker" if winner is self.b else "better"
        self.log(f"bounty {title!r}: awarded {winner.name} ({which} work)")
        return {"id": bid, "award": award, "subs": {"A": sa, "B": sb}, "reviews": reviews}

    # -- the disputes ------------------------------------------------------------------------

    def file(self, who: NodeProc, target: str, claim: str) -> dict[str, Any]:
        now = self.c.now_ms()
        vote_by = now + _vote_s(len(self.c.nodes)) * 1000
        d: dict[str, Any] = who.post(
            "/api/disputes",
            {
                "target": target,
                "claim": claim,
                "bond": _BOND,
                "vote_by": vote_by,
                "reveal_by": vote_by + _REVEAL_S * 1000,
            },
        )
        return d

    def vote(self, d: dict[str, Any], verdict: str, dissent: bool) -> list[str]:
        """Each drawn juror that runs a node votes on it; with `dissent` and a
        full panel of nodes, the last juror votes the other way."""
        by_acct = {n.account: n for n in self.c.nodes}
        jurors = [j["account"] for j in d["jurors"]]
        voters = [by_acct[j] for j in jurors if j in by_acct]
        other = "reject" if verdict == "uphold" else "uphold"
        cast = []
        for i, n in enumerate(voters):
            poll(
                functools.partial(_seen, n, d["id"]),
                120.0,
                f"{n.name} to hear of dispute {d['id'][:8]}",
                0.25,
            )
            v = other if dissent and len(voters) == 3 and i == 2 else verdict
            n.post(
                f"/api/disputes/{d['id']}/vote",
                {"verdict": v, "reason": f"{self.name(n.account)} read the work and the claim"},
            )
            cast.append(f"{n.name}:{v}")
        return cast

    def settled(self, n: NodeProc, did: str) -> dict[str, Any] | None:
        """The dispute as `n` shows it once decided and everything owed to a
        live account claimed; None before."""
        d: dict[str, Any] = n.get(f"/api/disputes/{did}")
        if d["phase"] not in ("upheld", "rejected"):
            return None
        live = {x.account for x in self.c.nodes if x.live}
        if any(m["account"] in live for m in d["must_act"]):
            return None
        return d

    def run(self) -> dict[str, Any]:
        self.view.set_phase("two bounties: one awarded unfairly, one fairly")
        unfair = self.bounty("Explain consensus", self.b, careless=True)
        fair = self.bounty("Explain gossip", self.a, careless=False)
        for n in self.c.nodes:
            for bid in (unfair["id"], fair["id"]):
                self.wait_bounty(n, bid, lambda b: b["phase"] == "awarded", "the award")

        points_before = self.points()
        self.view.set_phase("disputes filed: juries drawn")
        sloppy = self.members[1]
        plans = [
            (
                "unfair award",
                self.a,
                unfair["award"],
                "My answer meets both criteria; the paid one is two lines.",
                "uphold",
                True,
            ),
            ("frivolous dispute", self.b, fair["award"], "I should have won.", "reject", False),
            (
                "careless review",
                self.a,
                unfair["reviews"][f"{sloppy.name}:A"],
                "Scored 0 on both criteria without reading; the other review gave 9.",
                "uphold",
                False,
            ),
        ]
        filed: list[tuple[str, NodeProc, dict[str, Any], str, bool]] = []
        for label, who, target, claim, expect, dissent in plans:
            d = self.file(who, target, claim)
            jurors = ", ".join(self.name(j["account"]) for j in d["jurors"])
            self.log(f"{label}: {who.name} filed {d['id'][:8]}; jurors {jurors}")
            filed.append((label, who, d, expect, dissent))
        refused = self.refused(unfair["award"])

        self.view.set_phase("jurors vote on their own nodes (sealed)")
        cast = {label: self.vote(d, expect, dissent) for label, _, d, expect, dissent in filed}
        self.view.set_phase("voting closes (the clocks move past it); the nodes reveal and claim")
        closes = max(d["vote_by"] for _, _, d, _, _ in filed)
        self.c.advance_clock(max(closes - self.c.now_ms() + 2000, 1))
        last = max(d["reveal_by"] for _, _, d, _, _ in filed)
        timeout = (last - self.c.now_ms()) / 1000 + 120
        live = [n for n in self.c.nodes if n.live]
        out = []
        for label, who, d, expect, _ in filed:
            views = {}
            for n in live:
                views[n.name] = poll(
                    functools.partial(self.settled, n, d["id"]),
                    timeout,
                    f"{n.name} to see {label} decided and claimed",
                    0.5,
                )
            out.append(self.describe(label, who, d, expect, views, cast[label]))
            self.log(f"{label}: {out[-1]['outcome']} on every node")
        after = self.points()
        points = {
            k: {
                "before": points_before.get(k, 0),
                "after": v,
                "change": v - points_before.get(k, 0),
            }
            for k, v in sorted(after.items())
            if v != points_before.get(k, 0)
        }
        return {"disputes": out, "refused": refused, "points": points}

    def points(self) -> dict[str, int]:
        """Reputation points by participant (the fold's outcomes move them)."""
        rep = self.mentor.get("/api/reputation")["reputation"]
        return {self.name(k): int(v["points"]) for k, v in rep.items() if k in self.names}

    def refused(self, award: str) -> list[dict[str, Any]]:
        """Disputes the node refuses before writing anything: no standing, a bond
        under the minimum, the same dispute twice."""
        tries = [
            ("no standing (not a learner of the bounty)", self.members[-1], {"bond": _BOND}),
            ("bond under the minimum", self.a, {"bond": 1}),
            ("the same dispute twice", self.a, {"bond": _BOND}),
        ]
        out = []
        for what, who, extra in tries:
            try:
                who.post("/api/disputes", {"target": award, "claim": "again", **extra})
                out.append({"case": what, "refused": False})
            except ApiError as exc:
                out.append({"case": what, "refused": True, "status": exc.status, "error": exc.code})
        return out

    def describe(
        self,
        label: str,
        who: NodeProc,
        d: dict[str, Any],
        expect: str,
        views: dict[str, dict[str, Any]],
        cast: list[str],
    ) -> dict[str, Any]:
        ref = next(iter(views.values()))
        same = {
            k: all(v[k] == ref[k] for v in views.values())
            for k in ("jurors", "phase", "outcome", "votes", "bond_movements", "escrow")
        }
        moves = [
            {
                "kind": m["kind"],
                "account": self.name(m.get("from") or m.get("to") or ""),
                "amount": m["amount"],
            }
            for m in ref["bond_movements"]
        ]
        return {
            "dispute": label,
            "id": d["id"],
            "target_kind": d["target_kind"],
            "disputant": self.name(d["disputant"]),
            "respondent": self.name(d["respondent"]),
            "expected": "upheld" if expect == "uphold" else "rejected",
            "phase": ref["phase"],
            "outcome": ref["outcome"],
            "as_expected": ref["phase"] == ("upheld" if expect == "uphold" else "rejected"),
            "panel_fair": ref["panel_fair"],
            "jurors": [self.name(j["account"]) for j in ref["jurors"]],
            "jurors_equal_on_nodes": same["jurors"],
            "agreed_on_nodes": all(same.values()),
            "nodes_checked": len(views),
            "votes_cast": cast,
            "votes": ref["votes"],
            "bond": ref["bond"],
            "bond_movements": moves,
            "bond_still_locked": ref["escrow"],
        }


def _has_submission(sid: str, b: dict[str, Any]) -> bool:
    return any(x["id"] == sid for x in b["submissions_detail"])


def _seen(n: NodeProc, did: str) -> bool:
    try:
        n.get(f"/api/disputes/{did}")
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _moderation(cluster: Cluster, log: Callable[[str], None]) -> dict[str, Any]:
    """The spammer-flagged-and-blocked step (devnet/_scenario_moderation.py)."""
    from ._scenario_moderation import moderation_step

    try:
        return moderation_step(cluster, log=log)
    except DevnetError as exc:
        return {"ok": False, "error": str(exc)}


def _table(report: dict[str, Any]) -> Table:
    t = Table(title="disputes")
    for col in ("dispute", "disputant", "outcome", "jurors (same on every node)", "votes", "bond"):
        t.add_column(col)
    for d in report.get("disputes", []):
        v = d["votes"]
        moves = "; ".join(
            f"{m['kind']} {m['amount']} {'from' if m['kind'] == 'bond' else 'to'} {m['account']}"
            for m in d["bond_movements"]
        )
        t.add_row(
            d["dispute"],
            d["disputant"],
            f"{d['outcome']} ({'as expected' if d['as_expected'] else 'NOT as expected'})",
            ", ".join(d["jurors"]) + ("" if d["jurors_equal_on_nodes"] else " — DIFFER"),
            f"{v['uphold']} uphold, {v['reject']} reject",
            moves + f"; still locked {d['bond_still_locked']}",
        )
    mod = report.get("moderation") or {}
    t.caption = (
        f"moderation: {'ok' if mod.get('ok') else 'NOT ok'}"
        + (f" ({mod.get('error')})" if mod.get("error") else "")
        + f" · converged {'yes' if report.get('converged') else 'NO'}"
        + f" · supply conserved {'yes' if report.get('supply_conserved') else 'NO'}"
    )
    return t


def run_disputes(opts: RunOptions) -> dict[str, Any]:
    """Run the disputes scenario end to end; return (and write) its report.
    Every process started is stopped before this returns or raises."""
    if opts.nodes < MIN_NODES:
        raise DevnetError(
            f"the disputes scenario needs at least {MIN_NODES} nodes "
            "(a mentor, two learners and jurors who are not parties)"
        )
    with devnet_session(opts, f"devnet disputes · {opts.nodes} nodes") as sess:
        cluster, view, root = sess.cluster, sess.view, sess.root
        run = _DisputesRun(opts, cluster, view)
        run.setup()
        cluster.write_state(root / "devnet.json", {"kind": "run"})
        got = run.run()
        view.set_phase("moderation: a spammer flagged and blocked")
        moderation = _moderation(cluster, view.log)
        view.set_phase("waiting for convergence")
        live = [n for n in cluster.nodes if n.live]
        try:
            cluster.wait_converged(opts.converge_timeout, live)
            converged = True
        except DevnetError as exc:
            view.log(f"[red]{exc}[/]")
            converged = False
        st = cluster.statuses(live)
        balances = cluster.each(lambda n: n.get("/api/balances"), live)
        bounties = live[0].get("/api/bounties")["bounties"]
        disputes = got["disputes"]
        sess.report = {
            "scenario": "disputes",
            "seed": opts.seed,
            "nodes": len(cluster.nodes),
            "live_nodes": len(live),
            "events": max((s["events"] for s in st.values()), default=0),
            "converged": converged,
            "digests": {k: s["digest"] for k, s in st.items()},
            "supply_conserved": all(supply_check(b) for b in balances),
            "genesis_supply": balances[0]["genesis_supply"] if balances else None,
            "bounties": bounty_phases(bounties),
            "bounties_final": all(
                b["phase"] in FINAL_PHASES
                for b in bounties
                if b["title"].startswith("Explain")  # the moderation step's spam stays open
            ),
            "disputes": disputes,
            "jurors_equal": all(d["jurors_equal_on_nodes"] for d in disputes),
            "disputes_agreed": all(d["agreed_on_nodes"] for d in disputes),
            "outcomes_as_expected": all(d["as_expected"] for d in disputes),
            "refused": got["refused"],
            "points_changed_by_disputes": got["points"],
            "absent_juror": run.absent.account if run.absent is not None else None,
            "moderation": moderation,
            "wall_s": round(time.time() - run.t0, 1),
            "dir": str(root),
        }
        view.set_phase("done: stopping nodes")
    return publish_report(opts, sess.report, _table(sess.report))
