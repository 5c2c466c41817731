"""Scenarios a devnet runs through the nodes' APIs: a classroom, and the same
with an adversary; faults (kill/restart, partition/heal, pause); the verdict.

Seeded: the seed decides the topology, the roles, who submits what, the
scores, which bounties are refunded and which node each fault hits. (Wall-clock
timings and the event ids that depend on them still differ between runs.)
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnmesh.protocol import (
    FINAL_PHASES,
    KeyPair,
)
from rich.console import Console
from rich.table import Table

from ._cluster import ApiError, Cluster, DevnetError, NodeProc, poll, sparse_topology
from ._report import LiveView, bounty_phases, propagation, resources, summary_table, supply_check

if TYPE_CHECKING:
    pass
# libp2p (node/_p2p.py) and JSON-LD (node/_credentials.py) are imported where they
# are used: every `learnmesh` command loads this module (the devnet's commands),
# and those imports would cost each one about a second of CPU.

__all__ = [
    "SCENARIOS",
    "DevnetSession",
    "RunOptions",
    "devnet_session",
    "publish_report",
    "run_devnet",
]

SCENARIOS = ("classroom", "adversarial", "disputes")  # disputes: devnet/_scenario_disputes.py
_MENTOR_FUNDS = 100_000
_LEARNER_FUNDS = 1_000
_ADVERSARY_FUNDS = 5_000
_WORDS = [
    "graph",
    "recursion",
    "proof",
    "sketch",
    "essay",
    "tests",
    "parser",
    "sorting",
    "heap",
    "lemma",
    "chord",
    "melody",
    "circuit",
    "cell",
    "enzyme",
    "rhythm",
    "vector",
    "matrix",
    "kernel",
    "proof",
    "draft",
]


@dataclass
class RunOptions:
    nodes: int = 8
    scenario: str = "classroom"
    faults: bool = False
    duration: float = 0.0  # keep running rounds until this many seconds have passed
    seed: int = 1
    report: Path | None = None
    dir: Path | None = None
    keep: bool = False  # keep a temporary folder afterwards
    console: Console | None = None
    converge_timeout: float = 120.0
    flood: int = 150  # adversarial: events in the adversary's flood


@dataclass
class DevnetSession:
    """What a scenario runs in (see `devnet_session`); it sets `report`."""

    root: Path
    cluster: Cluster
    view: LiveView
    report: dict[str, Any] | None = None


@contextmanager
def devnet_session(opts: RunOptions, title: str) -> Iterator[DevnetSession]:
    """The devnet's folder (a fresh temporary one, or `opts.dir` if it holds no
    devnet yet), its cluster and live view, started and stopped around the
    scenario; afterwards the run marker is removed, and a temporary folder too
    when the run converged (unless `opts.keep`)."""
    tmp = opts.dir is None
    root = Path(tempfile.mkdtemp(prefix="learnmesh-devnet-")) if opts.dir is None else opts.dir
    if not tmp and (root / "n00").exists():
        raise DevnetError(f"{root} already holds a devnet; pick another --dir or remove it")
    cluster = Cluster(root, opts.nodes)
    view = LiveView(cluster, opts.console, title)
    cluster.log = view.log
    sess = DevnetSession(root, cluster, view)
    try:
        with cluster, view:
            yield sess
    finally:
        (root / "devnet.json").unlink(missing_ok=True)
        if tmp and not opts.keep and sess.report is not None and sess.report.get("converged"):
            shutil.rmtree(root, ignore_errors=True)


def publish_report(
    opts: RunOptions, report: dict[str, Any] | None, *tables: Table
) -> dict[str, Any]:
    """Write the report where `--report` asks and print its summary (and any
    scenario tables) on the console; returns it."""
    assert report is not None
    if opts.report is not None:
        opts.report.write_text(json.dumps(report, indent=2))
    if opts.console is not None:
        opts.console.print(summary_table(report))
        for t in tables:
            opts.console.print(t)
    return report


@dataclass
class _Bounty:
    id: str
    mentor: NodeProc
    refund: bool
    rubric: list[dict[str, Any]]
    quorum: int
    commits: list[tuple[NodeProc, str]] = field(default_factory=list)


class _Run:
    """One devnet run: the cluster, the seeded choices, the record of what happened."""

    def __init__(self, opts: RunOptions, cluster: Cluster, view: LiveView) -> None:
        self.opts = opts
        self.c = cluster
        self.view = view
        self.rng = random.Random(opts.seed)
        self.t0 = time.time()
        self.t0_ms = int(self.t0 * 1000)
        n = len(cluster.nodes)
        m = max(1, n // 4)
        self.mentors = cluster.nodes[:m]
        self.learners = cluster.nodes[m:]
        self.faults: list[dict[str, Any]] = []
        self.stable: set[str] = {x.name for x in cluster.nodes}  # never killed
        self.heal_s: float | None = None
        self.catch_up_s: float | None = None
        self.adversary: KeyPair | None = None
        self.adv_stats: dict[str, Any] = {}
        self.ring: list[str] = []
        self.rounds = 0
        self._timers: list[threading.Timer] = []
        self.dms: list[dict[str, Any]] = []  # private feedback sent (private_feedback)
        self.comments: dict[str, list[str]] = {}  # bounty -> its comment ids (questions)

    def log(self, msg: str) -> None:
        self.view.log(msg)

    def since(self) -> float:
        return round(time.time() - self.t0, 2)

    # -- set-up ----------------------------------------------------------------------

    def setup(self) -> None:
        self.view.set_phase("making data directories and the genesis")
        self.c.init_all()
        alloc = {n.account: _MENTOR_FUNDS for n in self.mentors}
        alloc.update({n.account: _LEARNER_FUNDS for n in self.learners})
        if self.opts.scenario == "adversarial":
            seed = hashlib.sha256(b"learnmesh/devnet/adversary\x00" + str(self.opts.seed).encode())
            self.adversary = KeyPair(seed.digest())
            alloc[self.adversary.account] = _ADVERSARY_FUNDS
        self.c.make_genesis(
            f"devnet-{self.opts.seed}", alloc, trusted=[n.account for n in self.mentors]
        )
        self.view.set_phase(f"starting {len(self.c.nodes)} nodes")
        topo = sparse_topology(len(self.c.nodes), self.rng)
        self.c.start_all(topo)
        self.c.wait_connected(timeout=90)
        self.log("every node is connected to its bootstrap peers")

    # -- helpers --------------------------------------------------------------------------

    def live(self, nodes: list[NodeProc]) -> list[NodeProc]:
        return [n for n in nodes if n.live]

    def wait_bounty(
        self,
        node: NodeProc,
        bid: str,
        check: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = 90.0,
    ) -> dict[str, Any]:
        def ok() -> dict[str, Any] | None:
            b: dict[str, Any] = node.get(f"/api/bounties/{bid}")
            return b if check(b) else None

        return poll(ok, timeout, f"{what} on {node.name}", 0.25)

    def text(self) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(self.rng.randint(8, 30)))

    # -- the classroom -------------------------------------------------------------------

    def classroom_round(self, first: bool) -> None:
        self.rounds += 1
        r = self.rounds
        faults = self.opts.faults and first
        # 1. mentors post bounties with rubrics
        self.view.set_phase(f"round {r}: mentors post bounties")
        per_mentor = 3 if len(self.mentors) == 1 else 2
        bounties: list[_Bounty] = []
        now = int(time.time() * 1000)
        for m in self.mentors:
            for k in range(per_mentor):
                rubric = [
                    {"name": "correctness", "max": 10},
                    {"name": "clarity", "max": self.rng.choice([5, 10])},
                ]
                quorum = self.rng.choice([1, 2]) if len(self.learners) >= 3 else 1
                body = {
                    "title": f"round {r} task {k + 1} by {m.name}",
                    "description": self.text(),
                    "reward": self.rng.randrange(200, 2000, 50),
                    "rubric": rubric,
                    "skills": self.rng.sample(["python", "math", "writing", "music"], 2),
                    "submit_by": now + 180_000,
                    "review_by": now + 900_000,
                    "quorum": quorum,
                    "reviewer_share_bp": 1000,
                }
                bid = m.post("/api/bounties", body)["id"]
                bounties.append(_Bounty(bid, m, False, rubric, quorum))
        # "some are refunded": about a quarter, at least one
        for b in self.rng.sample(bounties, max(1, len(bounties) // 4)):
            b.refund = True
        self.log(f"{len(bounties)} bounties posted ({sum(b.refund for b in bounties)} to refund)")
        self.questions(bounties)  # learners ask in the open before submitting; mentors answer

        # 2. learners commit work with attachments (every bounty gets commits)
        self.view.set_phase(f"round {r}: learners submit")
        learners = self.live(self.learners)
        plan: list[tuple[NodeProc, _Bounty]] = []
        for b in bounties:
            for ln in self.rng.sample(learners, min(len(learners), self.rng.choice([1, 2, 2]))):
                plan.append((ln, b))

        def submit(item: tuple[NodeProc, _Bounty]) -> tuple[NodeProc, _Bounty, str]:
            ln, b = item
            self.wait_bounty(ln, b.id, lambda _b: True, f"bounty {b.id[:8]}")
            data = hashlib.sha256(f"{ln.name}{b.id}".encode()).digest() * 64
            files = [{"name": f"{ln.name}-answer.txt", "data_b64": base64.b64encode(data).decode()}]
            res = ln.post(
                "/api/submit",
                {"bounty": b.id, "text": f"answer of {ln.name}: {self.text()}", "files": files},
            )
            return ln, b, str(res["id"])

        with ThreadPoolExecutor(max_workers=4) as ex:
            for ln, b, cid in ex.map(submit, plan):
                b.commits.append((ln, cid))
        self.log(f"{len(plan)} commits made")
        for b in bounties:
            want = len(b.commits)
            self.wait_bounty(b.mentor, b.id, _at_least("commits", want), "commits")

        victim: NodeProc | None = None
        kill_fault: dict[str, Any] | None = None
        if faults and len(learners) >= 2:
            # Crash a learner that has work to reveal: it must reveal after its restart.
            committed = sorted({ln.index for b in bounties if not b.refund for ln, _ in b.commits})
            victim = self.c.nodes[self.rng.choice(committed or [x.index for x in learners])]
            self.c.kill(victim)
            self.stable.discard(victim.name)
            kill_fault = {"kind": "kill", "node": victim.name, "at_s": self.since()}
            self.faults.append(kill_fault)
            self.log(f"[red]fault[/]: SIGKILL {victim.name}")

        # 3. mentors close (accepting every commit) or refund
        self.view.set_phase(f"round {r}: mentors close or refund")
        for b in bounties:
            if b.refund:
                b.mentor.post(f"/api/bounties/{b.id}/refund")
            else:
                b.mentor.post(f"/api/bounties/{b.id}/close", {})
        self.log("bounties closed or refunded")

        if victim is not None and kill_fault is not None:
            self.restart_fault(victim, kill_fault)

        # 4. learners reveal by themselves; wait for every reveal at the mentor's node
        self.view.set_phase(f"round {r}: learners reveal")
        to_award = [b for b in bounties if not b.refund]
        for b in to_award:
            want = len(b.commits)
            self.wait_bounty(b.mentor, b.id, _at_least("submissions", want), "reveals", 150)
        self.log("every accepted commit revealed")

        # 5. peers review (a node may be paused meanwhile: its calls just wait)
        if faults:
            self.pause_fault()
        self.view.set_phase(f"round {r}: peers review")
        reviews: list[tuple[NodeProc, str, str, dict[str, int]]] = []
        for b in to_award:
            detail = b.mentor.get(f"/api/bounties/{b.id}")
            for s in detail["submissions_detail"]:
                eligible = [x for x in self.live(self.learners) if x.account != s["learner"]]
                for rv in self.rng.sample(eligible, min(b.quorum, len(eligible))):
                    scores = {
                        c["name"]: self.rng.randint(c["max"] // 2, c["max"]) for c in b.rubric
                    }
                    reviews.append((rv, b.id, s["id"], scores))

        def review(item: tuple[NodeProc, str, str, dict[str, int]]) -> None:
            rv, bid, sid, scores = item
            self.wait_bounty(
                rv, bid, lambda j: any(x["id"] == sid for x in j["submissions_detail"]), "a reveal"
            )
            rv.post("/api/review", {"submission": sid, "scores": scores, "comment": self.text()})

        with ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(review, reviews))
        self.log(f"{len(reviews)} reviews written")

        # 6. mentors award the best work (sometimes split between the top two)
        self.view.set_phase(f"round {r}: mentors award")
        for b in to_award:
            count = sum(1 for _rv, bid, _s, _sc in reviews if bid == b.id)

            def reviewed(j: dict[str, Any], want: int = count) -> bool:
                return sum(len(s["reviews"]) for s in j["submissions_detail"]) >= want

            detail = self.wait_bounty(b.mentor, b.id, reviewed, "reviews")
            subs = detail["submissions_detail"]
            ranked = sorted(
                subs,
                key=lambda s: (-_mean_score(s["reviews"]), s["id"]),
            )
            top = ranked[:2] if len(ranked) > 1 and self.rng.random() < 0.4 else ranked[:1]
            b.mentor.post(f"/api/bounties/{b.id}/award", {"winners": {s["id"]: None for s in top}})
        self.log(f"{len(to_award)} bounties awarded")
        # 7. private feedback after review (node/_messages.py); one recipient offline
        self.private_feedback(to_award, offline=first)

    def questions(self, bounties: list[_Bounty]) -> None:
        """A learner asks each bounty's mentor a question in a comment; the
        mentor sees it on its own node and answers in the same thread."""
        self.view.set_phase(f"round {self.rounds}: questions in the open")
        learners = self.live(self.learners)

        def ask(b: _Bounty) -> None:
            ln = self.rng.choice(learners)
            self.wait_bounty(ln, b.id, lambda _b: True, f"bounty {b.id[:8]}")
            text = f"**Question** from {ln.name}: may I use `{self.rng.choice(_WORDS)}`?"
            qid = str(ln.post("/api/comments", {"target": b.id, "text": text})["id"])

            def seen() -> bool:
                got = b.mentor.get(f"/api/bounties/{b.id}/comments")["comments"]
                return any(c["id"] == qid for c in got)

            poll(seen, 90, f"the question on {b.mentor.name}", 0.25)
            answer = f"Yes, {ln.name}: see the rubric. _{self.text()}_"
            aid = str(b.mentor.post("/api/comments", {"target": qid, "text": answer})["id"])
            self.comments.setdefault(b.id, []).extend([qid, aid])

        with ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(ask, bounties))
        self.log(f"{2 * len(bounties)} comments: a question and its answer per bounty")

    def comments_check(self, live: list[NodeProc]) -> dict[str, Any]:
        """`posted`, the comments each live node shows under those bounties
        (`seen`), and whether every node shows exactly those, in one order."""
        threads = self.c.each(
            lambda n: [
                [c["id"] for c in n.get(f"/api/bounties/{bid}/comments")["comments"]]
                for bid in sorted(self.comments)
            ],
            live,
        )
        want = sum(len(v) for v in self.comments.values())
        return {
            "posted": want,
            "seen": {n.name: sum(map(len, t)) for n, t in zip(live, threads, strict=True)},
            "equal": all(t == threads[0] for t in threads)
            and sum(map(len, threads[0] if threads else [])) == want,
        }

    def transfers(self, count: int) -> int:
        """Mentors pay learners; learners pass tokens on; some update profiles."""
        made = 0
        everyone = self.live(self.c.nodes)
        for _ in range(count):
            src = self.rng.choice(everyone)
            dst = self.rng.choice([x for x in self.c.nodes if x is not src])
            amount = self.rng.randint(5, 60) if src in self.mentors else self.rng.randint(1, 20)
            try:
                src.post("/api/transfer", {"to": dst.account, "amount": amount, "memo": "thanks"})
                made += 1
            except ApiError as exc:
                if exc.status != 409:  # not enough balance is a fair answer
                    raise
        for x in self.rng.sample(everyone, max(1, len(everyone) // 3)):
            x.post("/api/profile", {"name": x.name, "bio": self.text()[:200], "skills": ["python"]})
            made += 1
        return made

    # -- private messages (node/_messages.py) -------------------------------------------------

    def private_feedback(self, awarded: list[_Bounty], offline: bool) -> None:
        """Each mentor sends private feedback to each learner whose work it
        reviewed for award. With `offline`, one recipient's node is stopped
        before its message is sent and started again after: it must fetch the
        message from a node that relayed it."""
        self.view.set_phase(f"round {self.rounds}: private feedback")
        keys = sorted({(b.mentor.index, ln.index) for b in awarded for ln, _ in b.commits})
        pairs = [(self.c.nodes[m], self.c.nodes[x]) for m, x in keys]
        pairs = [(m, x) for m, x in pairs if m.live and x.live and m is not x]
        down: NodeProc | None = None
        if offline:
            cands = sorted({x.index for _, x in pairs if x.state == "up" and x not in self.mentors})
            if cands:
                down = self.c.nodes[self.rng.choice(cands)]
                self.c.stop(down)
                self.stable.discard(down.name)
                self.log(f"{down.name} stopped: its private feedback is sent while it is down")
        sent: list[dict[str, Any]] = []
        for m, x in pairs:
            token = hashlib.sha256(f"{m.name}>{x.name}@{time.time_ns()}".encode()).hexdigest()[:20]
            text = f"private feedback {token} for {x.name}: {self.text()}"
            m.post("/api/messages", {"to": x.account, "text": text})
            sent.append(
                {
                    "from": m,
                    "to": x,
                    "token": token,
                    "text": text,
                    "offline": x is down,
                    "delivered": False,
                    "sent_s": self.since(),
                }
            )
        self.dms += sent
        self.log(f"{len(sent)} private messages sent")
        if down is not None:
            self.c.restart(down)
            self.log(f"{down.name} started again")
        for d in sent:
            try:
                poll(functools.partial(self._dm_arrived, d), 120, f"feedback at {d['to'].name}")
            except DevnetError as exc:
                self.log(f"[red]{exc}[/]")
                continue
            d["delivered"] = True
            d["delivered_s"] = round(self.since() - d["sent_s"], 2)
        ok = sum(d["delivered"] for d in sent)
        self.log(f"{ok} of {len(sent)} private messages delivered")

    def _dm_arrived(self, d: dict[str, Any]) -> bool:
        conv = d["to"].get(f"/api/messages/{d['from'].account}")
        return any(m["text"] == d["text"] for m in conv["messages"])

    def dm_report(self) -> dict[str, Any]:
        """dms_sent, dms_delivered (re-checked now) and dm_plaintext_found_elsewhere:
        each message's unique token searched for in every file (databases,
        their journals, logs) of every node's data directory but its sender's
        and recipient's; found at both ends too, so the search is shown to work."""
        for d in self.dms:
            if not d["delivered"] and d["to"].live:
                with contextlib.suppress(ApiError, DevnetError, OSError):
                    d["delivered"] = self._dm_arrived(d)
        found: dict[tuple[str, str], bool] = {}
        for n in self.c.nodes:
            for p in sorted(n.data.rglob("*")):
                try:
                    data = p.read_bytes() if p.is_file() else b""
                except OSError:
                    continue
                for d in self.dms:
                    if d["token"].encode() in data:
                        found[(d["token"], n.name)] = True
        ends = {(d["from"].name, d["to"].name) for d in self.dms}
        elsewhere = sum(
            1
            for (token, name) in found
            for d in self.dms
            if d["token"] == token and name not in (d["from"].name, d["to"].name)
        )
        at_ends = sum(
            1
            for d in self.dms
            if found.get((d["token"], d["from"].name)) and found.get((d["token"], d["to"].name))
        )
        return {
            "dms_sent": len(self.dms),
            "dms_delivered": sum(bool(d["delivered"]) for d in self.dms),
            "dms_to_offline_node": sum(d["offline"] for d in self.dms),
            "dms_delivered_to_offline_node": sum(
                bool(d["delivered"]) for d in self.dms if d["offline"]
            ),
            "dm_delivery_s": sorted(d["delivered_s"] for d in self.dms if "delivered_s" in d),
            "dm_plaintext_found_elsewhere": elsewhere,
            "dm_plaintext_found_at_both_ends": at_ends,
            "dm_pairs": len(ends),
        }

    # -- faults -----------------------------------------------------------------------------

    def restart_fault(self, victim: NodeProc, fault: dict[str, Any]) -> None:
        """Restart a killed node; catch-up is from its spawn until it holds every
        event a live node held at that moment."""
        ref = next(x for x in self.c.live if x is not victim)
        target = ref.status()["heads"]
        t = time.monotonic()
        fault["down_s"] = round(time.time() - self.t0 - fault["at_s"], 2)
        self.c.restart(victim)
        self.log(f"{victim.name} restarted")

        def caught_up() -> bool:
            heads = victim.status()["heads"]
            return all(heads.get(a, 0) >= s for a, s in target.items())

        poll(caught_up, 120, f"{victim.name} to catch up after its restart", 0.2)
        self.catch_up_s = round(time.monotonic() - t, 2)
        fault["catch_up_s"] = self.catch_up_s
        self.log(f"{victim.name} caught up in {self.catch_up_s:.1f} s")

    def pause_fault(self, seconds: float = 4.0) -> None:
        """SIGSTOP a learner for a few seconds (a slow node), SIGCONT by a timer."""
        cands = [x for x in self.live(self.learners) if x.state == "up"]
        fresh = [x for x in cands if x.name in self.stable]  # spread faults over nodes
        cands = fresh or cands
        if not cands:
            return
        node = self.rng.choice(cands)
        self.c.pause(node)
        self.faults.append(
            {"kind": "pause", "node": node.name, "at_s": self.since(), "duration_s": seconds}
        )
        self.log(f"[yellow]fault[/]: SIGSTOP {node.name} for {seconds:.0f} s")

        def wake() -> None:
            self.c.resume(node)
            self.view.log(f"SIGCONT {node.name}")

        timer = threading.Timer(seconds, wake)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def partition_fault(self, during: Callable[[], int]) -> None:
        """Split the live nodes in two groups that refuse each other, let both
        write, heal, reconnect the cut links, and time the convergence."""
        for timer in self._timers:
            timer.join()
        nodes = self.live(self.c.nodes)
        # Split by index: every node dialed its predecessor, so both halves stay
        # connected inside (a random split could leave a group in pieces).
        half = len(nodes) // 2
        g1, g2 = nodes[:half], nodes[half:]
        self.view.set_phase("fault: partition")
        for a, b in ((g1, g2), (g2, g1)):
            for x in a:
                x.post("/api/admin/partition", {"peers": [y.peer_id for y in b]})
        fault: dict[str, Any] = {
            "kind": "partition",
            "groups": [[x.name for x in g1], [x.name for x in g2]],
            "at_s": self.since(),
        }
        self.faults.append(fault)
        self.log(f"[magenta]fault[/]: partition {fault['groups'][0]} | {fault['groups'][1]}")
        ids1, ids2 = {x.peer_id for x in g1}, {x.peer_id for x in g2}

        def cut() -> bool:
            st = self.c.statuses(nodes)
            return len(st) == len(nodes) and all(
                not (set(st[x.name]["peers"]) & (ids2 if x in g1 else ids1)) for x in nodes
            )

        poll(cut, 30, "the partition to cut every link between the groups", 0.2)
        made = during()
        self.log(f"{made} events written while partitioned")
        for g in (g1, g2):
            if len(g) > 1:
                self.c.wait_converged(60, g)
        diverged = self.c.converged(nodes) is None
        fault["diverged"] = diverged
        self.view.set_phase("healing the partition")
        t_heal = time.monotonic()
        fault["healed_at_s"] = self.since()
        for x in nodes:
            x.post("/api/admin/heal")
        # Links that the partition cut are dialed again from the side that had dialed them.
        for x in nodes:
            for p in x.bootstrap:
                y = self.c.nodes[p]
                if y.live and ((x in g1) != (y in g1)):
                    try:
                        x.post("/api/admin/connect", {"addr": self.c.addr_of(y)})
                    except ApiError as exc:
                        self.log(f"reconnect {x.name} -> {y.name}: {exc}")
        self.c.wait_converged(self.opts.converge_timeout, nodes)
        self.heal_s = round(time.monotonic() - t_heal, 2)
        fault["converged_after_s"] = self.heal_s
        self.log(f"converged {self.heal_s:.1f} s after the heal")

    # -- the adversary ------------------------------------------------------------------------

    def credentials_check(self, live: list[NodeProc]) -> dict[str, Any]:
        """Each learner's Open Badges credentials, signed by the mentors' nodes,
        reach the learner's node and verify here, offline (no node, no network)."""
        names = {n.name for n in self.learners}
        learners = [n for n in live if n.name in names]

        def lists() -> list[list[dict[str, Any]]] | None:
            got = self.c.each(lambda n: n.get("/api/credentials")["credentials"], learners)
            ready = all(c["status"] == "ready" for cs in got for c in cs)
            return got if ready and any(got) else None

        try:
            got = poll(lists, 60, "the learners' credentials to arrive", 0.5)
        except DevnetError:
            got = self.c.each(lambda n: n.get("/api/credentials")["credentials"], learners)
        issued = verified = 0
        failures: list[str] = []
        for node, creds in zip(learners, got, strict=True):
            for c in creds:
                issued += 1
                if c["status"] != "ready":
                    failures.append(f"{node.name}: {c['submission'][:12]} is {c['status']}")
                    continue
                doc = json.loads(node.call("GET", f"/api/credentials/{c['submission']}"))
                from learnmesh.node._credentials import verify_document

                r = verify_document(doc, time.time())
                if r.valid:
                    verified += 1
                else:
                    bad = next((f"{n}: {why}" for n, ok, why in r.checks if not ok), "?")
                    failures.append(f"{node.name}: {c['submission'][:12]}: {bad}")
        return {"issued": issued, "verified_offline": verified, "failures": failures[:10]}

    def trust_view(self, live: list[NodeProc]) -> dict[str, Any]:
        """Every node's trust digest (all must be equal: trust is a view of the
        state) and the farming ring's share of trust beside its share of points."""
        views = dict(
            zip(
                [n.name for n in live],
                self.c.each(lambda n: n.get("/api/trust?limit=1000"), live),
                strict=True,
            )
        )
        digests = {k: v["trust_digest"] for k, v in views.items()}
        rows = next(iter(views.values()))["accounts"] if views else []
        ring = set(self.ring)
        ring_ppm = sum(r["overall_ppm"] for r in rows if r["account"] in ring)
        points = live[0].get("/api/reputation")["reputation"] if live else {}
        total_pts = sum(max(0, v["points"]) for v in points.values()) or 1
        ring_pts = sum(max(0, v["points"]) for k, v in points.items() if k in ring)
        return {
            "trust_digests": digests,
            "trust_digests_equal": len(set(digests.values())) == 1,
            "ring_trust_share": round(ring_ppm / 1_000_000, 4),
            "ring_points_share": round(ring_pts / total_pts, 4),
        }

    def finish(self) -> dict[str, Any]:
        for t in self._timers:
            t.join()
        self.view.set_phase("waiting for convergence")
        live = self.live(self.c.nodes)
        converged_at = None
        try:
            self.c.wait_converged(self.opts.converge_timeout, live)
            converged = True
            converged_at = self.since()
        except DevnetError as exc:
            self.log(f"[red]{exc}[/]")
            converged = False
        st = self.c.statuses(live)
        ref = live[0]
        balances = self.c.each(lambda n: n.get("/api/balances"), live)
        bounties = ref.get("/api/bounties")["bounties"]
        phases = bounty_phases(bounties)
        applied = dict(
            zip(
                [n.name for n in live],
                self.c.each(lambda n: n.get(f"/api/applied?since={self.t0_ms}")["applied"], live),
                strict=True,
            )
        )
        stable = [n.name for n in live if n.name in self.stable]
        self.c.sample_all()
        res = resources(
            {n.name: n.rss_mb for n in self.c.nodes}, {n.name: n.cpu_s for n in self.c.nodes}
        )
        for f in self.faults:
            node = f.get("node")
            if node is not None:
                f["survived"] = converged and node in st
            else:
                f["survived"] = converged and f.get("converged_after_s") is not None
        detected = None
        if self.adversary is not None:
            detected = sum(1 for s in st.values() if self.adversary.account in s["forks"])
        report: dict[str, Any] = {
            "scenario": self.opts.scenario,
            "seed": self.opts.seed,
            "nodes": len(self.c.nodes),
            "live_nodes": len(live),
            "rounds": self.rounds,
            "events": max((s["events"] for s in st.values()), default=0),
            "pending": {k: s["pending"] for k, s in st.items() if s["pending"]},
            "converged": converged,
            "converged_at_s": converged_at,
            "digests": {k: s["digest"] for k, s in st.items()},
            "heads_equal": len({tuple(sorted(s["heads"].items())) for s in st.values()}) == 1,
            "supply_conserved": all(supply_check(b) for b in balances),
            "genesis_supply": balances[0]["genesis_supply"] if balances else None,
            "bounties": phases,
            "bounties_final": all(b["phase"] in FINAL_PHASES for b in bounties),
            "propagation_ms": propagation(applied, stable, created_after_ms=self.t0_ms),
            "convergence_after_heal_s": self.heal_s,
            "catch_up_after_restart_s": self.catch_up_s,
            "rss_mb": res["rss_mb"],
            "cpu_s": res["cpu_s"],
            "faults": self.faults,
            "credentials": self.credentials_check(live) if converged else None,
            "comments": self.comments_check(live),  # discussion: questions and answers
            "equivocations_detected": detected,
            "fork_sets": {k: s["forks"] for k, s in st.items()},
            "fork_sets_equal": len({tuple(s["forks"]) for s in st.values()}) <= 1,
            "honest_nodes": len(live),
            "wall_s": round(time.time() - self.t0, 1),
            "dir": str(self.c.root),
        }
        if self.adversary is not None:
            report["adversary"] = self.adv_stats
            report["trust"] = self.trust_view(live)
        report.update(self.dm_report())  # private messages: sent, delivered, plaintext leaks
        return report


def _at_least(key: str, want: int) -> Callable[[dict[str, Any]], bool]:
    return lambda j: int(j[key]) >= want


def _mean_score(reviews: list[dict[str, Any]]) -> float:
    if not reviews:
        return 0.0
    return sum(sum(r["scores"].values()) for r in reviews) / len(reviews)


def run_devnet(opts: RunOptions) -> dict[str, Any]:
    """Run one scenario end to end and return (and write) its report. Every
    process started is stopped before this returns or raises."""
    if opts.scenario not in SCENARIOS:
        raise DevnetError(f"unknown scenario {opts.scenario!r}; choose from {', '.join(SCENARIOS)}")
    if opts.scenario == "disputes":
        from ._scenario_disputes import run_disputes

        return run_disputes(opts)
    if opts.nodes < 3:
        raise DevnetError("a classroom needs at least 3 nodes (a mentor and two learners)")
    with devnet_session(opts, f"devnet {opts.scenario} · {opts.nodes} nodes") as sess:
        cluster, view = sess.cluster, sess.view
        run = _Run(opts, cluster, view)
        run.setup()
        cluster.write_state(sess.root / "devnet.json", {"kind": "run"})
        first = True
        while first or time.time() - run.t0 < opts.duration:
            run.classroom_round(first)
            if first and opts.scenario == "adversarial":
                from ._scenario_adversarial import adversarial

                adversarial(run)
            count = max(4, len(cluster.nodes))
            if first and opts.faults:
                run.partition_fault(functools.partial(run.transfers, count))
            else:
                view.set_phase("transfers")
                run.transfers(count)
            first = False
        sess.report = run.finish()
        view.set_phase("done: stopping nodes")
    return publish_report(opts, sess.report)
