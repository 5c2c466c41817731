"""An in-process network simulator: many replicas, one logical clock, seeded faults.

Like radicle heartwood's `test/simulator.rs`: no sockets and no real time. Each
simulated node holds a `Replica`; events come from a `Workload` and are published
by their author's home node; delivery is lossy gossip (random delay, loss,
duplication, hence reordering, and partitions) plus a periodic anti-entropy
step modelled on the real sync protocol: a node sends a random peer its heads
(author -> seq), the ids it holds of authors it knows forked, and the ids it is
missing as dependencies; the peer answers with the missing ranges, those
events, and the fork proofs the asker lacks. The same seed gives the same
report, byte for byte.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._event import Event, decode_event, make_event
from ._genesis import Genesis
from ._prng import SplitMix64
from ._replica import Replica
from ._workload import Workload

__all__ = ["Partition", "SimNode", "SimReport", "Simulation"]


@dataclass(frozen=True, slots=True)
class Partition:
    """From step `start` (inclusive) to `end` (exclusive), nodes in `group` and
    nodes outside it cannot reach each other."""

    start: int
    end: int
    group: frozenset[int]

    def splits(self, a: int, b: int, now: int) -> bool:
        return self.start <= now < self.end and ((a in self.group) != (b in self.group))


@dataclass(frozen=True, slots=True)
class SimReport:
    seed: int
    nodes: int
    events: int  # published by the workload, plus injected fork twins
    expected: bytes  # digest of a replica that holds every published event
    digests: tuple[bytes, ...]  # one per node, at the end
    pending: tuple[int, ...]  # events still waiting for deps, per node
    forks: tuple[int, ...]  # forked authors known, per node
    converged: bool  # every node ends on `expected` with nothing pending
    steps: int
    sent: int
    dropped: int
    duplicated: int
    delivered: int


# Messages carried by the simulated network (the payload of a queue entry).
@dataclass(frozen=True, slots=True)
class _Gossip:
    raw: bytes


@dataclass(frozen=True, slots=True)
class _SyncRequest:
    heads: dict[bytes, int]
    forked: dict[bytes, frozenset[bytes]]  # author the asker knows forked -> ids it holds
    want: tuple[bytes, ...]  # missing dependencies, by id


@dataclass(frozen=True, slots=True)
class _SyncResponse:
    raws: tuple[bytes, ...]


_Message = _Gossip | _SyncRequest | _SyncResponse


@dataclass(slots=True)
class SimNode:
    """One simulated node: its replica plus the indexes its sync server needs."""

    index: int
    replica: Replica
    slots: dict[bytes, dict[int, list[bytes]]] = field(default_factory=dict)  # author->seq->ids
    order: dict[bytes, int] = field(default_factory=dict)  # applied id -> apply position

    def record(self, applied: Sequence[Event]) -> None:
        for e in applied:
            self.order[e.id] = len(self.order)
            self.slots.setdefault(e.author, {}).setdefault(e.seq, []).append(e.id)

    def answer(self, req: _SyncRequest, limit: int) -> tuple[bytes, ...]:
        """The events the asker lacks, in this node's apply order (a causal order)."""
        r = self.replica
        ids: set[bytes] = set()
        for author, seqs in self.slots.items():
            # Heads cannot describe two branches: for a forked author, compare ids.
            have = req.forked.get(author)
            fork_seq = r.state.forks.get(author)
            if have is not None:
                ids.update(i for xs in seqs.values() for i in xs if i not in have)
            elif fork_seq is not None:
                ids.update(i for s, xs in seqs.items() if s >= fork_seq for i in xs)
            theirs = req.heads.get(author, 0)
            for s in range(theirs + 1, max(seqs) + 1):
                ids.update(seqs.get(s, ()))
        ids.update(w for w in req.want if w in r.raw)
        out = [r.raw[i] for i in sorted(ids, key=self.order.__getitem__)][:limit]
        # Fork proofs the asker has not got: both events, applied or not.
        for author in sorted(r.proofs):
            if author not in req.forked:
                p = r.proofs[author]
                out += [p.first, p.second]
        return tuple(out)


class Simulation:
    """Simulate `nodes` replicas exchanging a workload's events under faults.

    loss_pm / dup_pm: per-mille chance that a message is lost / delivered twice;
    max_delay: a message takes 1..max_delay steps; partitions: (start, end,
    group) triples; sync_every: steps between anti-entropy rounds; fanout: peers
    a node relays a new gossiped event to; equivocations: authors that, after
    the workload, sign a second event at the seq of their last one (a fork
    every node must detect and fold the same way).
    """

    def __init__(
        self,
        seed: int,
        nodes: int = 5,
        loss_pm: int = 0,
        dup_pm: int = 0,
        max_delay: int = 5,
        partitions: Sequence[tuple[int, int, Sequence[int]] | Partition] = (),
        *,
        actors: int = 12,
        sync_every: int = 4,
        fanout: int = 2,
        equivocations: int = 0,
        sync_limit: int = 256,
        verify: bool = True,
    ) -> None:
        if nodes < 2:
            raise ValueError("a simulation needs at least two nodes")
        if max_delay < 1 or not 0 <= loss_pm < 1000 or not 0 <= dup_pm <= 1000:
            raise ValueError("max_delay >= 1, loss_pm in 0..999, dup_pm in 0..1000")
        self.seed = seed
        self.rng = SplitMix64(seed ^ 0x5EED5EED)
        self.workload = Workload(seed=seed, actors=actors)
        self.genesis: Genesis = self.workload.genesis
        self.nodes = [SimNode(i, Replica(self.genesis)) for i in range(nodes)]
        self.home = [self.rng.below(nodes) for _ in range(actors)]
        self.loss_pm, self.dup_pm, self.max_delay = loss_pm, dup_pm, max_delay
        self.partitions = [
            p if isinstance(p, Partition) else Partition(p[0], p[1], frozenset(p[2]))
            for p in partitions
        ]
        self.sync_every, self.fanout, self.sync_limit = sync_every, fanout, sync_limit
        self.equivocations = equivocations
        self.verify = verify
        self.now = 0
        self._queue: list[tuple[int, int, int, int, _Message]] = []
        self._msg_seq = 0
        self._decoded: dict[bytes, Event] = {}  # decoding is a pure function: share it
        self.sent = self.dropped = self.duplicated = self.delivered = 0

    # -- the network ------------------------------------------------------------

    def _cut(self, a: int, b: int) -> bool:
        return any(p.splits(a, b, self.now) for p in self.partitions)

    def _send(self, src: int, dst: int, msg: _Message) -> None:
        self.sent += 1
        if self._cut(src, dst) or self.rng.chance(self.loss_pm):
            self.dropped += 1
            return
        copies = 2 if self.rng.chance(self.dup_pm) else 1
        self.duplicated += copies - 1
        for _ in range(copies):
            at = self.now + 1 + self.rng.below(self.max_delay)
            self._msg_seq += 1
            heapq.heappush(self._queue, (at, self._msg_seq, src, dst, msg))

    def _peers(self, of: int, k: int, skip: int = -1) -> list[int]:
        others = [i for i in range(len(self.nodes)) if i not in (of, skip)]
        self.rng.shuffle(others)
        return others[:k]

    # -- a node's behaviour -------------------------------------------------------

    def _decode(self, raw: bytes) -> Event:
        ev = self._decoded.get(raw)
        if ev is None:
            # What a GossipSub validator does before anything else.
            ev = decode_event(
                raw,
                self.genesis.params.max_event_bytes,
                self.genesis.network_id,
                verify=self.verify,
            )
            self._decoded[raw] = ev
        return ev

    def _receive(self, node: SimNode, raw: bytes) -> bool:
        """Add one event; True when it was new to this node."""
        ev = self._decode(raw)
        if node.replica.has(ev.id) or ev.id in node.replica.rejected:
            return False
        out = node.replica.add(ev)
        node.record(out.applied)
        return out.status in ("applied", "pending")

    def _publish(self, at: int, raw: bytes) -> None:
        node = self.nodes[at]
        self._receive(node, raw)
        for p in range(len(self.nodes)):
            if p != at:
                self._send(at, p, _Gossip(raw))

    def _deliver(self, src: int, dst: int, msg: _Message) -> None:
        if self._cut(src, dst):
            self.dropped += 1
            return
        self.delivered += 1
        node = self.nodes[dst]
        if isinstance(msg, _Gossip):
            if self._receive(node, msg.raw):
                for p in self._peers(dst, self.fanout, skip=src):
                    self._send(dst, p, msg)
        elif isinstance(msg, _SyncRequest):
            self._send(dst, src, _SyncResponse(node.answer(msg, self.sync_limit)))
        else:
            for raw in msg.raws:
                self._receive(node, raw)

    def _anti_entropy(self) -> None:
        for node in self.nodes:
            (peer,) = self._peers(node.index, 1)
            r = node.replica
            forked = {
                a: frozenset(i for xs in node.slots.get(a, {}).values() for i in xs)
                for a in sorted(r.state.forks)
            }
            want = tuple(sorted(r.missing_deps()))[: self.sync_limit]
            self._send(node.index, peer, _SyncRequest(dict(r.heads), forked, want))

    # -- running ------------------------------------------------------------------

    def _twins(self) -> list[tuple[int, bytes]]:
        """Forks to inject: a second, validly signed event at an author's last seq."""
        w = self.workload
        out: list[tuple[int, bytes]] = []
        authors = [i for i, wr in enumerate(w.writers) if wr.seq > 0]
        self.rng.shuffle(authors)
        for i in authors[: self.equivocations]:
            last = w.replica.head(w.keys[i].public_key)[1]
            assert last is not None
            orig = self._decode(w.replica.raw[last])
            twin = make_event(
                w.keys[i],
                w.network,
                orig.seq,
                orig.prev,
                orig.timestamp + 1,
                "profile",
                {"name": f"twin of member {i}", "bio": "a restored key", "skills": []},
            )
            w.replica.add(twin)  # the reference holds every event, twins too
            at = (self.home[i] + 1 + self.rng.below(len(self.nodes) - 1)) % len(self.nodes)
            out.append((at, twin.raw))
        return out

    def _converged(self, expected: bytes) -> bool:
        return all(n.replica.digest() == expected and not n.replica.pending for n in self.nodes)

    def run(self, events: int = 200, max_steps: int = 20_000) -> SimReport:
        w = self.workload
        to_publish: list[tuple[int, bytes]] = []
        actor = {k.public_key: i for i, k in enumerate(w.keys)}
        for ev in w.events(events):
            to_publish.append((self.home[actor[ev.author]], ev.raw))
        to_publish += self._twins()
        expected = w.replica.digest()
        heal = max((p.end for p in self.partitions), default=0)
        done = False
        i = 0
        while self.now < max_steps:
            if i < len(to_publish):
                self._publish(*to_publish[i])
                i += 1
            while self._queue and self._queue[0][0] <= self.now:
                _, _, src, dst, msg = heapq.heappop(self._queue)
                self._deliver(src, dst, msg)
            if self.now % self.sync_every == 0:
                self._anti_entropy()
            self.now += 1
            if i == len(to_publish) and self.now >= heal and self.now % self.sync_every == 0:
                done = self._converged(expected)
                if done:
                    break
        return SimReport(
            seed=self.seed,
            nodes=len(self.nodes),
            events=len(to_publish),
            expected=expected,
            digests=tuple(n.replica.digest() for n in self.nodes),
            pending=tuple(len(n.replica.pending) for n in self.nodes),
            forks=tuple(len(n.replica.state.forks) for n in self.nodes),
            converged=done,
            steps=self.now,
            sent=self.sent,
            dropped=self.dropped,
            duplicated=self.duplicated,
            delivered=self.delivered,
        )
