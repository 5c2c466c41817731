"""`learnmesh devnet run --scenario adversarial`: after the first classroom
round, a participant that floods, forges, overspends and forks its chain; a
reputation-farming ring; and the hostile inputs of issue 9 (future
timestamps, bad-prev events, fork evidence sent to one node, peer churn, a
flood from a raw libp2p peer). The classroom itself, the faults and the
report are devnet/_scenarios.py's `_Run`; this module is the adversary."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import trio
from learnmesh.node._wire import encode_gossip, gossip_topic
from learnmesh.protocol import (
    ChainWriter,
    Event,
    KeyPair,
    account_from_text,
    commit_body,
    make_event,
    reveal_body,
)

from ._cluster import ApiError, DevnetError, NodeProc, poll
from ._scenarios import _ADVERSARY_FUNDS

if TYPE_CHECKING:
    # libp2p (node/_p2p.py) is imported where it is used: the hostile peer only.
    from learnmesh.node._p2p import P2PHost

    from ._scenarios import _Run

_RING_KEYS = 6  # a farming ring: one funded key and its accomplices
_RING_ROUNDS = 3

__all__ = ["adversarial"]


def adversarial(run: _Run) -> None:
    """A misbehaving participant: flood, malformed and forged events, an
    overspend, then an equivocation that double-spends its whole balance."""
    assert run.adversary is not None
    run.view.set_phase("adversary: flood, forgeries, equivocation")
    honest = run.live(run.c.nodes)
    net = bytes.fromhex(honest[0].status()["network_id"])
    key = run.adversary
    w = ChainWriter(key, net)
    x, y = honest[0], honest[-1]
    stats: dict[str, Any] = {"account": key.account, "entry_nodes": [x.name, y.name]}

    def now() -> int:
        return int(time.time() * 1000)

    def post_raw(node: NodeProc, raw: bytes) -> int:
        try:
            node.call("POST", "/api/events", raw=raw)
            return 200
        except ApiError as exc:
            if exc.status == 0:
                raise
            return exc.status

    # A first honest-looking event.
    ev = w.sign("profile", {"name": "mallory", "bio": "totally legit", "skills": []}, now())
    if post_raw(x, ev.raw) != 200:
        raise DevnetError("the adversary's first (valid) event was refused")
    # Overspend on its own chain: the node refuses an event it would void.
    over = ChainWriter(key, net, w.seq, w.head).sign(
        "transfer",
        {
            "to": account_from_text(run.learners[0].account),
            "amount": _ADVERSARY_FUNDS * 10,
            "memo": "overspend",
        },
        now(),
    )
    # The node either refuses it (422) or applies it as void (no effect; its
    # seq is spent, so the chain goes on after it): both leave the money alone.
    try:
        out = x.call("POST", "/api/events", raw=over.raw)
        stats["overspend"] = {"status": out.get("status"), "error": out.get("error")}
        if out.get("status") == "applied":
            w.resume(over.seq, over.id)
    except ApiError as exc:
        if exc.status == 0:
            raise
        body = exc.body if isinstance(exc.body, dict) else {}
        stats["overspend"] = {"status": body.get("status"), "error": body.get("error")}
    stats["overspend_no_effect"] = stats["overspend"]["status"] == "rejected" or (
        stats["overspend"]["error"] == "insufficient_funds"
    )
    # Malformed and forged events: each must be refused (422).
    garbage = [random.Random(run.opts.seed + i).randbytes(40 + i) for i in range(20)]
    forged = bytearray(ev.raw)
    forged[-1] ^= 0xFF  # signature no longer matches
    other = KeyPair(hashlib.sha256(b"not-in-genesis").digest())
    wrong_net = ChainWriter(other, hashlib.sha256(b"another network").digest()).sign(
        "profile", {"name": "x", "bio": "", "skills": []}, now()
    )
    victim_acct = account_from_text(run.mentors[0].account)
    impersonation = bytearray(ev.raw)
    start = impersonation.find(key.public_key)
    impersonation[start : start + 32] = victim_acct  # claims a mentor wrote it
    bad = [*garbage, bytes(forged), wrong_net.raw, bytes(impersonation), ev.raw[:-10], b""]
    refused = sum(post_raw(honest[i % len(honest)], raw) == 422 for i, raw in enumerate(bad))
    stats["malformed_sent"] = len(bad)
    stats["malformed_refused"] = refused
    # Flood: a burst of valid events, as fast as the API takes them.
    t = time.monotonic()
    accepted = 0
    for i in range(run.opts.flood):  # signed just before it is sent: honest timestamps
        e = w.sign("profile", {"name": "mallory", "bio": f"spam {i}", "skills": []}, now())
        accepted += post_raw(x, e.raw) == 200
    stats["flood_events"] = run.opts.flood
    stats["flood_accepted"] = accepted
    stats["flood_s"] = round(time.monotonic() - t, 2)
    head = w.seq
    adv = key.account

    def flood_seen() -> bool:
        st = run.c.statuses(honest)
        return len(st) == len(honest) and all(
            s["heads"].get(adv, 0) >= head for s in st.values()
        )

    poll(flood_seen, 90, "every node to hold the adversary's flood", 0.3)
    run.log(f"flood of {run.opts.flood} events reached every node")
    # Equivocation: two transfers of its whole balance at the same seq, each
    # sent to a different end of the network at the same time.
    seq, prev = w.seq, w.head
    a = ChainWriter(key, net, seq, prev).sign(
        "transfer",
        {
            "to": account_from_text(run.learners[0].account),
            "amount": _ADVERSARY_FUNDS,
            "memo": "branch A",
        },
        now(),
    )
    b = ChainWriter(key, net, seq, prev).sign(
        "transfer",
        {
            "to": account_from_text(run.learners[-1].account),
            "amount": _ADVERSARY_FUNDS,
            "memo": "branch B",
        },
        now(),
    )
    with ThreadPoolExecutor(max_workers=2) as ex:
        ra, rb = ex.map(lambda p: post_raw(p[0], p[1]), [(x, a.raw), (y, b.raw)])
    stats["equivocation"] = {"seq": a.seq, "branch_a": [x.name, ra], "branch_b": [y.name, rb]}
    if 422 in (ra, rb):
        # One branch reached the other node first and its spend was refused there:
        # fork with an event that spends nothing, at the same seq, on the refusing node.
        c = ChainWriter(key, net, seq, prev).sign(
            "profile", {"name": "mallory", "bio": "branch C", "skills": []}, now()
        )
        rc = post_raw(x if ra == 422 else y, c.raw)
        stats["equivocation"]["branch_c"] = [(x if ra == 422 else y).name, rc]
    run.log(f"equivocation at seq {a.seq}: {x.name} -> {ra}, {y.name} -> {rb}")
    run.adv_stats = stats
    farming_ring(run, net, honest, stats)
    hostile_inputs(run, net, honest, stats)

def farming_ring(run: _Run, net: bytes, honest: list[NodeProc], stats: dict[str, Any]) -> None:
    """A ring of keys funded by one member farms reputation (issue 11): it
    posts bounties to itself, submits, reviews itself "honestly" and awards
    itself, round after round, through the raw-event API. Trust flows only
    from the genesis's trusted accounts along paid work, so the ring's share
    of trust must stay near zero while its points grow."""
    run.view.set_phase("adversary: a reputation-farming ring")
    keys = [
        KeyPair(hashlib.sha256(b"devnet-ring/%d/%d" % (run.opts.seed, i)).digest())
        for i in range(_RING_KEYS)
    ]
    ring = [ChainWriter(k, net) for k in keys]
    entry = honest[0]
    funded = run.mentors[0].post(
        "/api/transfer",
        {"to": keys[0].account, "amount": 20_000, "memo": "ring funds"},
    )
    claim = bytes.fromhex(funded["id"])
    poll(
        lambda: entry.get(f"/api/balance/{keys[0].account}")["balance"] >= 20_000,
        60,
        "the ring's funds to reach the entry node",
    )

    def now() -> int:
        return int(time.time() * 1000)

    def send(i: int, kind: str, body: dict[str, Any], refs: list[bytes]) -> Event:
        ev = ring[i].sign(kind, body, now(), sorted(set(refs)))
        out = entry.call("POST", "/api/events", raw=ev.raw)
        if out.get("status") != "applied" or out.get("error"):
            raise DevnetError(f"the ring's {kind} was not applied: {out}")
        return ev

    mentor, learner, reviewers = 0, 1, list(range(2, _RING_KEYS))
    rubric = [{"name": "quality", "max": 10}]
    reward = 2_000
    for r in range(_RING_ROUNDS):
        b = send(
            mentor,
            "bounty",
            {
                "title": f"ring bounty {r}",
                "description": "",
                "rubric": rubric,
                "skills": ["networks"],
                "reward": reward,
                "reviewer_share_bp": 2000,
                "submit_by": now() + 86_400_000,
                "review_by": now() + 2 * 86_400_000,
                "quorum": 1,
            },
            [claim] if r == 0 else [],
        )
        salt = hashlib.sha256(b"ring-salt/%d" % r).digest()[:16]
        text = f"ring work {r}"
        c = send(
            learner,
            "commit",
            commit_body(b.id, keys[learner].public_key, text, [], salt),
            [b.id],
        )
        close = send(mentor, "close", {"bounty": b.id, "accepted": [c.id]}, [b.id, c.id])
        rv = send(
            learner,
            "reveal",
            reveal_body(b.id, c.id, close.id, text, [], salt),
            [c.id, close.id],
        )
        reviews = [
            send(
                i,
                "review",
                {"bounty": b.id, "submission": rv.id, "scores": [10], "comment": ""},
                [rv.id],
            )
            for i in reviewers
        ]
        share = reward * 2000 // 10_000 // len(reviews)
        body = {
            "bounty": b.id,
            "winners": [{"submission": rv.id, "amount": reward - share * len(reviews)}],
            "reviewers": [{"review": x.id, "amount": share} for x in reviews],
        }
        send(mentor, "award", body, [b.id, rv.id, *(x.id for x in reviews)])
    for i in reviewers:
        send(i, "vouch", {"account": keys[mentor].public_key}, [])
    stats["ring"] = {
        "keys": [k.account for k in keys],
        "rounds": _RING_ROUNDS,
        "events": sum(w.seq for w in ring),
    }
    run.ring = [k.account for k in keys]
    run.log(f"a farming ring of {_RING_KEYS} keys ran {_RING_ROUNDS} self-awarded bounties")

def hostile_inputs(run: _Run, net: bytes, honest: list[NodeProc], stats: dict[str, Any]) -> None:
    """The hostile inputs of issue 9, through every entrance, then the verdict
    that matters: every node on one digest and one fork set, and how many
    seconds after the last attack that took.

    - future timestamps (an hour and a year ahead, 2^48-1) through one node's raw-event API,
      and the same times by gossip from a hostile peer at another node: the two
      entrances must give the same fate;
    - a bad_prev event (seq 2 whose prev is another author's event) published once
      by gossip to one node;
    - a fork with bad_prev evidence: a bad_prev event then a valid event at the
      same (author, seq), both to one node's API only;
    - peer churn: CHURN short-lived libp2p peers connect to the nodes and leave;
    - a flood: presigned chains through one node's API while the hostile peer
      publishes the same events to another node, newest first.
    """
    run.view.set_phase("adversary: future timestamps, bad_prev, fork evidence, churn, flood")
    x, y = honest[0], honest[-1]
    rng = random.Random(run.opts.seed * 7919)

    def fresh(tag: str) -> KeyPair:
        seed = f"learnmesh/devnet/hostile/{run.opts.seed}/{tag}".encode()
        return KeyPair(hashlib.sha256(seed).digest())

    def profile(k: KeyPair, seq: int, prev: bytes | None, ts: int, name: str) -> Event:
        body = {"name": name, "bio": "hostile", "skills": []}
        return make_event(k, net, seq, prev, ts, "profile", body)

    def answer(node: NodeProc, raw: bytes) -> dict[str, Any]:
        try:
            out: dict[str, Any] = node.call("POST", "/api/events", raw=raw)
            return {"http": "2xx", "status": out.get("status"), "error": out.get("error")}
        except ApiError as exc:
            if exc.status == 0:
                raise
            body = exc.body if isinstance(exc.body, dict) else {}
            return {
                "http": exc.status,
                "status": body.get("status"),
                "error": body.get("error"),
            }

    def seen_everywhere(k: KeyPair, seq: int) -> None:
        poll(
            lambda: all(
                s["heads"].get(k.account, 0) >= seq for s in run.c.statuses(honest).values()
            ),
            60,
            f"every node to hold {k.account[:12]}…'s event {seq}",
            0.3,
        )

    def now() -> int:
        return int(time.time() * 1000)

    attacks: list[dict[str, Any]] = []

    # 1. future timestamps: the API entrance (x) and the gossip entrance (y).
    times = {
        "hour": now() + 3600 * 1000,
        "year": now() + 365 * 24 * 3600 * 1000,
        "max": 2**48 - 1,
    }
    fut_api = {w: fresh(f"future-api-{w}") for w in times}
    fut_gossip = {w: fresh(f"future-gossip-{w}") for w in times}
    api_answers = {
        w: answer(x, profile(fut_api[w], 1, None, ts, f"future-{w}").raw)
        for w, ts in times.items()
    }
    gossip_future = [
        profile(fut_gossip[w], 1, None, ts, f"future-{w}").raw for w, ts in times.items()
    ]
    attacks.append({"attack": "future timestamps", "api": x.name, "answers": api_answers})

    # 2 and 3: authors with an applied first event.
    k_bad, k_fork = fresh("bad-prev"), fresh("fork")
    firsts = {}
    for k in (k_bad, k_fork):
        firsts[k.account] = profile(k, 1, None, now(), "first")
        answer(x, firsts[k.account].raw)
    for k in (k_bad, k_fork):
        seen_everywhere(k, 1)
    foreign = bytes.fromhex(x.post("/api/profile", {"name": f"{x.name}-again"})["id"])
    bad_prev = profile(k_bad, 2, foreign, now(), "bad-prev")

    # 5 (prepared): the flood's chains, and the hostile copy newest first.
    flood_keys = [fresh(f"flood-{i}") for i in range(4)]
    per = max(1, run.opts.flood // len(flood_keys))
    chains = []
    t = now()
    for k in flood_keys:
        w = ChainWriter(k, net)
        chains.append(
            [
                w.sign("profile", {"name": "flood", "bio": f"{i}", "skills": []}, t + i).raw
                for i in range(per)
            ]
        )
    backwards = [raw for ch in chains for raw in reversed(ch[per // 2 :])]
    gossip_flood = [backwards[i : i + 40] for i in range(0, len(backwards), 40)]

    churn_targets = [
        [run.c.addr_of(n) for n in rng.sample(honest, min(2, len(honest)))]
        for _ in range(_CHURN)
    ]
    session = _Hostile(
        net,
        y_addr=run.c.addr_of(y),
        y_peer=y.peer_id,
        future=gossip_future,
        bad_prev=bad_prev.raw,
        flood=gossip_flood,
        churn=churn_targets,
    )

    def post_flood() -> int:
        with ThreadPoolExecutor(max_workers=2) as ex:
            return sum(
                ex.map(lambda ch: sum(answer(x, r)["http"] == "2xx" for r in ch), chains)
            )

    # The hostile peer's own session (a libp2p host in this thread's trio loop):
    # gossip to y, churn everywhere; the flood's API copy goes to x meanwhile.
    # libp2p logs its teardown races (a closed peer's streams) at ERROR; in
    # this driver process they are noise over the live view.
    lib_log = logging.getLogger("libp2p")
    level = lib_log.level
    lib_log.setLevel(logging.CRITICAL)
    try:
        with ThreadPoolExecutor(max_workers=1) as ex:
            flood_api = ex.submit(post_flood)
            trio.run(session.run)
            flood_accepted = flood_api.result()
    finally:
        lib_log.setLevel(level)
    attacks.append({"attack": "bad_prev by gossip", "node": y.name, "author": k_bad.account})
    attacks.append({"attack": "future timestamps by gossip", "node": y.name, **session.notes})
    attacks.append({"attack": "peer churn", "peers": _CHURN, "left": session.churned})
    attacks.append(
        {
            "attack": "flood",
            "api": x.name,
            "gossip": y.name,
            "events": per * len(flood_keys),
            "api_accepted": flood_accepted,
            "gossip_messages": session.flood_sent,
        }
    )
    # 3. the fork with bad_prev evidence, to y's API only (the last attack).
    fork_bad = profile(k_fork, 2, foreign, now(), "fork-bad-prev")
    fork_good = profile(k_fork, 2, firsts[k_fork.account].id, now() + 1, "fork-valid")
    fork_answers = [answer(y, fork_bad.raw), answer(y, fork_good.raw)]
    attacks.append(
        {"attack": "fork with bad_prev evidence", "node": y.name, "answers": fork_answers}
    )
    t_last = time.monotonic()
    stats["attacks"] = attacks
    run.log("hostile inputs sent; waiting for one digest and one fork set")

    def agreed() -> dict[str, Any] | None:
        st = run.c.statuses(honest)
        if len(st) != len(honest):
            return None
        if len({s["digest"] for s in st.values()}) != 1:
            return None
        if len({tuple(s["forks"]) for s in st.values()}) != 1:
            return None
        return st

    after: float | None = None
    try:
        st = poll(agreed, run.opts.converge_timeout, "one digest and one fork set", 0.2)
        after = round(time.monotonic() - t_last, 2)
    except DevnetError as exc:
        run.log(f"[red]{exc}[/]")
        st = run.c.statuses(honest)
    stats["converged_after_last_attack_s"] = after
    stats["converged_within_10s"] = after is not None and after <= 10.0
    stats["fork_sets"] = {k: v["forks"] for k, v in st.items()}
    stats["fork_sets_equal"] = len({tuple(v["forks"]) for v in st.values()}) == 1
    stats["digests_after_attacks"] = {k: v["digest"][:16] for k, v in st.items()}
    # The two entrances give the same fate to the same kind of event.
    fates = {
        w: {
            "api": sorted(n for n, v in st.items() if v["heads"].get(fut_api[w].account)),
            "gossip": sorted(n for n, v in st.items() if v["heads"].get(fut_gossip[w].account)),
        }
        for w in times
    }
    stats["future_fates"] = fates
    stats["future_entrances_agree"] = all(f["api"] == f["gossip"] for f in fates.values())
    stats["bad_prev_fork_detected"] = sum(
        1 for v in st.values() if k_fork.account in v["forks"]
    )
    # The churn's peers are gone: no node may go on listing them as connected.
    gone = set(session.churn_ids)

    def listed() -> dict[str, int]:
        return {k: len(gone & set(v["peers"])) for k, v in run.c.statuses(honest).items()}

    stats["churn_peers_listed_after_attacks"] = listed()
    try:
        poll(lambda: not any(listed().values()), 30, "the churn's peers to be dropped", 0.5)
        stats["churn_peers_dropped_after_s"] = round(time.monotonic() - t_last, 2)
    except DevnetError:
        stats["churn_peers_dropped_after_s"] = None
    stats["churn_peers_listed_at_end"] = listed()
    run.log(
        f"after the last attack: {'one digest' if after is not None else 'NO agreement'}"
        + (f" in {after:.1f} s" if after is not None else "")
    )

# -- the verdict -------------------------------------------------------------------------



_CHURN = 30  # short-lived peers in the adversarial scenario's churn


class _Hostile:
    """A hostile libp2p peer's session, run with trio.run: connect to one node,
    publish what it is given there, and run the churn of short-lived peers."""

    def __init__(
        self,
        net: bytes,
        *,
        y_addr: str,
        y_peer: str,
        future: list[bytes],
        bad_prev: bytes,
        flood: list[list[bytes]],
        churn: list[list[str]],
    ) -> None:
        self.net = net
        self.topic = gossip_topic(net)
        self.y_addr, self.y_peer = y_addr, y_peer
        self.future, self.bad_prev, self.flood, self.churn = future, bad_prev, flood, churn
        self.notes: dict[str, Any] = {}
        self.churned = 0
        self.churn_ids: list[str] = []
        self.flood_sent = 0

    @staticmethod
    def _accept(_peer: str, _data: bytes) -> bool:
        return True

    async def _send(self, host: P2PHost, raws: list[bytes]) -> bool:
        from learnmesh.node._p2p import P2PError

        try:
            await host.publish(self.topic, encode_gossip(self.net, raws))
            return True
        except P2PError:
            return False  # banned: what the node makes of the rest is its business

    async def run(self) -> None:
        from learnmesh.node._p2p import P2PConfig, P2PError, P2PHost

        async with P2PHost.open(P2PConfig(identity_seed=os.urandom(32))) as h:
            await h.subscribe(self.topic, self._accept)
            try:
                await h.connect(self.y_addr)
            except P2PError as exc:
                self.notes["connect_error"] = str(exc)
                return
            with trio.move_on_after(30):
                while self.y_peer not in h.mesh_peers(self.topic):
                    await trio.sleep(0.1)
            self.notes["future_published"] = [await self._send(h, [r]) for r in self.future]
            self.notes["bad_prev_published"] = await self._send(h, [self.bad_prev])
            async with trio.open_nursery() as nursery:
                for i, addrs in enumerate(self.churn):
                    nursery.start_soon(self._visitor, i, addrs)
                for batch in self.flood:
                    if not await self._send(h, batch):
                        break
                    self.flood_sent += 1
                    await trio.sleep(0.05)

    async def _visitor(self, i: int, addrs: list[str]) -> None:
        from learnmesh.node._p2p import P2PConfig, P2PError, P2PHost

        await trio.sleep(0.1 * i)
        with contextlib.suppress(P2PError):
            async with P2PHost.open(P2PConfig(identity_seed=os.urandom(32))) as p:
                self.churn_ids.append(p.peer_id)
                await p.subscribe(self.topic, self._accept)
                for addr in addrs:
                    with trio.move_on_after(10), contextlib.suppress(P2PError):
                        await p.connect(addr)
                with trio.move_on_after(3):
                    while not p.mesh_peers(self.topic):
                        await trio.sleep(0.1)
                await trio.sleep(0.5)
        self.churned += 1
