"""The node service: everything a node *decides*, and nothing it *does*.

In the style of Radicle heartwood's `service.rs`: `NodeCore` takes inputs (a
gossip message from a peer, a sync page, the node's own events, the peers now
connected, `tick(now)`) and answers with values (what became of each event,
whether to forward a message) plus a queue of `Io` requests for its runtime to
carry out (publish these bytes, block this peer, sync with that one, fetch
this blob, react to these applied events). It opens no socket, reads no clock
(every input carries `Now`) and draws randomness only from the `random.Random`
it is given. Its one dependency with side effects is the store it is handed
(the ledger: a SQLite file in a real node, an in-memory SQLite in the
simulator), the way heartwood's service holds its storage.

Two runtimes drive it: `node/_runtime.py` (trio and libp2p, the real node) and
`node/_sim.py` (many nodes in one process on a simulated network and clock).
The sync protocol's client is a generator (`node/_sync.py`) both runtimes
drive the same way.

**Where an event enters:** `NodeCore.admit`, for every entrance (gossip, sync
pages, the raw-event API, the node's own authoring, held events whose time
came). PROTOCOL.md §10 describes what it decides.

Parts that own their state: `PeerBook` (scores, bans, liveness), `RelayPolicy`
(what gossip is forwarded), `HeldEvents` (dated ahead of the clock),
`SyncPlanner` (whom to sync with, and which chain each session fetches),
`BlobWants` (attachments to fetch again, backing off).
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from learnmesh.protocol import (
    BAD_SIGNATURE,
    EquivocationProof,
    Event,
    Genesis,
    RemoteProtocolError,
    check_signature,
    decode_event,
)
from learnmesh.protocol._replica import Replica

from ._peers import BAN_SECONDS, PeerBook
from ._relay_policy import RelayPolicy
from ._wire import MAX_SYNC_FRAME, decode_gossip, decode_msg, encode_msg

if TYPE_CHECKING:  # the service is handed its store; it imports no database code
    from learnmesh.ledger import AppendResults

__all__ = [
    "Admitted",
    "Applied",
    "BlobWants",
    "Block",
    "CoreSettings",
    "FetchBlob",
    "HeldEvents",
    "Io",
    "NodeCore",
    "Now",
    "Publish",
    "Store",
    "SyncPlanner",
    "SyncWanted",
    "Unblock",
]

log = logging.getLogger("learnmesh.node")

PAGE = 500  # events per sync page
SYNC_BACKOFF = 2.0  # seconds between deps-triggered syncs with one peer
MAX_QUEUED = 20_000  # events decoded from gossip and waiting for admission
BLOB_TRIES = 12  # fetch attempts of a wanted blob (backing off from 2 s to 5 min)


@dataclass(frozen=True, slots=True)
class Now:
    """The time an input happens at: wall-clock milliseconds (event dates,
    deadlines) and monotonic seconds (rate limits, bans, backoff)."""

    wall_ms: int
    mono: float


# -- what the service asks its runtime to do ---------------------------------------


@dataclass(frozen=True, slots=True)
class Publish:
    """Gossip these event bytes to the network (the runtime batches them)."""

    raw: bytes


@dataclass(frozen=True, slots=True)
class Block:
    """Refuse and drop this peer's connections (a ban or a devnet partition)."""

    peer: str


@dataclass(frozen=True, slots=True)
class Unblock:
    peer: str


@dataclass(frozen=True, slots=True)
class SyncWanted:
    """Peers are waiting in `SyncPlanner.wanted`: start sessions (`take_wanted`)."""


@dataclass(frozen=True, slots=True)
class FetchBlob:
    hash: bytes
    size: int | None


@dataclass(frozen=True, slots=True)
class Applied:
    """Events newly applied: the node's domain reactions (reveal accepted
    drafts, fetch attachments and credentials). Only when some were: the
    runtime calls the same reactions once with none at start."""

    events: tuple[Event, ...]


Io = Publish | Block | Unblock | SyncWanted | FetchBlob | Applied


class Store(Protocol):
    """What the service needs of its ledger (`learnmesh.ledger.Ledger`)."""

    replica: Replica

    def append_events(self, events: Iterable[Event], *, durable: bool = True) -> AppendResults: ...

    def events_range(self, author: bytes, from_seq: int, limit: int) -> list[bytes]: ...

    def get_raw(self, ids: Iterable[bytes]) -> dict[bytes, bytes]: ...


@dataclass
class CoreSettings:
    """The service's own knobs (the runtime's are in NodeSettings)."""

    sync_interval: float = 3.0  # seconds between anti-entropy rounds
    peer_msgs_per_s: float = 200.0  # inbound gossip messages per peer before dropping
    future_hold_ms: int = 24 * 3600 * 1000  # hold events dated up to this past the skew
    max_held: int = 10_000  # events held aside until their time comes
    relay_per_author_per_min: int = 300


@dataclass(frozen=True, slots=True)
class Admitted:
    """What the node did with one event, the same whichever way it came in:
    applied (possibly void: `code` says why it had no effect), pending (waits
    for its prev or refs), duplicate, held (dated ahead of this node's clock:
    kept aside and admitted when its time comes), or rejected."""

    status: str
    id: bytes | None
    code: str | None = None
    reason: str | None = None


# -- the parts ----------------------------------------------------------------------


class HeldEvents:
    """Events dated past the node's clock plus the network's skew: kept aside
    (not stored, not forwarded) and admitted when their time comes. Bounded:
    past `limit`, the one furthest ahead goes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.events: dict[bytes, Event] = {}
        self._top: dict[bytes, int] = {}  # author -> highest seq held

    def add(self, ev: Event) -> bool:
        if ev.id in self.events:
            return False
        self.events[ev.id] = ev
        self._top[ev.author] = max(self._top.get(ev.author, 0), ev.seq)
        if len(self.events) > self.limit:
            far = max(self.events.values(), key=lambda e: (e.timestamp, e.id))
            self._remove([far])
        return True

    def top(self, author: bytes) -> int:
        """The highest seq of the author's held events (0 if none): a sync
        client need not fetch them again."""
        return self._top.get(author, 0)

    def _remove(self, events: list[Event]) -> None:
        for e in events:
            del self.events[e.id]
        gone = {e.author for e in events}
        tops: dict[bytes, int] = {}
        for x in self.events.values():  # one pass, however many authors left
            if x.author in gone:
                tops[x.author] = max(tops.get(x.author, 0), x.seq)
        for author in gone:
            if author in tops:
                self._top[author] = tops[author]
            else:
                self._top.pop(author, None)

    def due(self, horizon: int) -> list[Event]:
        """Take out the held events dated at or before `horizon`, in chain order."""
        due = sorted(
            (e for e in self.events.values() if e.timestamp <= horizon),
            key=lambda e: (e.author, e.seq),
        )
        self._remove(due)
        return due

    def listed(self) -> list[Event]:
        return sorted(self.events.values(), key=lambda e: (e.timestamp, e.id))


class SyncPlanner:
    """Whom to sync with and when: every newly connected peer at once, a random
    live peer every interval, a peer that sent events with missing deps (at
    most every SYNC_BACKOFF seconds); and which chains running sessions are
    fetching, so that sessions with several peers bring different chains."""

    def __init__(self) -> None:
        self.wanted: set[str] = set()
        self.last: dict[str, float] = {}  # peer -> when its last sync ended well
        self.synced: set[str] = set()  # live peers already synced once since they came
        self.fetching: dict[bytes, int] = {}  # author -> sessions pulling its chain
        self.last_round = float("-inf")

    def take_wanted(self, running: set[str]) -> list[str]:
        """Peers to start a session with now (not those running one already:
        they stay wanted and start when it ends)."""
        out = sorted(self.wanted - running)
        self.wanted -= set(out)
        return out

    def forget(self, connected: set[str]) -> None:
        for peer in [p for p in self.last if p not in connected]:
            del self.last[peer]
        self.wanted &= connected


class BlobWants:
    """Attachments no neighbour had yet (one may still be fetching it from the
    node that made it): asked for again later, backing off, so a blob spreads
    hop by hop however sparse the mesh. Bounded: the oldest wishes go first."""

    def __init__(self) -> None:
        self.wants: dict[bytes, tuple[int, float, int | None]] = {}  # tries, due, size

    def failed(self, h: bytes, size: int | None, now: float) -> None:
        tries, _, _ = self.wants.get(h, (0, 0.0, size))
        if tries >= BLOB_TRIES:
            self.wants.pop(h, None)
            return
        self.wants[h] = (tries + 1, now + min(2.0 * 2**tries, 300.0), size)
        while len(self.wants) > 1000:
            del self.wants[next(iter(self.wants))]

    def due(self, now: float) -> list[tuple[bytes, int | None]]:
        return [(h, size) for h, (_, due, size) in self.wants.items() if due <= now]


def new_stats() -> dict[str, int]:
    return {
        "gossip_published": 0,
        "gossip_events_out": 0,
        "gossip_received": 0,
        "gossip_rejected": 0,
        "events_applied": 0,
        "events_void": 0,
        "sync_rounds": 0,
        "sync_events_in": 0,
        "blobs_fetched": 0,
        "peers_banned": 0,
        "events_held": 0,
        "events_refused": 0,
        "admission_dropped": 0,
        "forks_relayed": 0,
        "peers_dropped": 0,
        # events applied, by the entrance they came in by (the rest of
        # events_applied came in as raw events through the API)
        "events_applied_gossip": 0,
        "events_applied_sync": 0,
        "events_applied_own": 0,
        "events_applied_held": 0,
        "gossip_events_in": 0,  # valid events received in gossip messages
        "peer_penalties": 0,
        "sync_failures": 0,
        "relay_blocked": 0,  # gossiped events not forwarded: author blocked here
        "relay_over_limit": 0,  # not forwarded: author over the per-minute relay limit
        "sync_last_events": 0,  # events the latest sync round took in (not a counter)
        "sync_last_ms": 0,  # when the latest sync round ended (ms since the epoch)
        # and "rejected:<code>" / "void:<code>": events refused / applied
        # without effect, by their protocol code (added when first seen)
    }


# -- the service --------------------------------------------------------------------


class NodeCore:
    """The node's decisions. See the module's docstring."""

    def __init__(
        self,
        *,
        genesis: Genesis,
        store: Store,
        settings: CoreSettings,
        rng: random.Random,
        blocked: Callable[[bytes], bool] = lambda author: False,
        on_io: Callable[[], None] = lambda: None,
        decode_one: Callable[[Any], Event | RemoteProtocolError] | None = None,
    ) -> None:
        self.genesis = genesis
        self.network = genesis.network_id
        self.store = store
        self.settings = settings
        self.rng = rng
        self.blocked = blocked  # moderation: this node's blocklist (a node policy)
        self.on_io = on_io  # called when `io` gets something: the runtime's wake-up
        # Decode and verify one raw event (a simulator shares one memo among its nodes).
        self.decode_one = decode_one
        self.io: deque[Io] = deque()
        self.stats = new_stats()
        self.peers = PeerBook(settings.peer_msgs_per_s)
        self.relay = RelayPolicy(settings.relay_per_author_per_min)
        self.held = HeldEvents(settings.max_held)
        self.sync = SyncPlanner()
        self.blobs = BlobWants()
        self.connected: set[str] = set()  # as of the last tick
        self.sync_peers: list[str] = []  # live and speaking sync, as of the last tick
        # gossip awaiting admission: events, peer, wall ms it arrived
        self.queue: deque[tuple[list[Event], str | None, int]] = deque()
        self.queued = 0
        # (id, created ms, applied ms, arrived ms): arrived is when a gossiped
        # event passed this node's validator (and was forwarded); the rest are
        # applied as they arrive. devnet's propagation figures read both.
        self.applied_log: deque[tuple[bytes, int, int, int]] = deque(maxlen=20_000)

    def _emit(self, item: Io) -> None:
        self.io.append(item)
        self.on_io()

    def take_io(self) -> list[Io]:
        out = list(self.io)
        self.io.clear()
        return out

    def count(self, what: str, code: str | None) -> None:
        """Count a refused or void event by its protocol code (for /metrics)."""
        key = f"{what}:{code or 'unknown'}"
        self.stats[key] = self.stats.get(key, 0) + 1

    # -- peers ------------------------------------------------------------------------

    def penalise(self, peer: str, reason: str, now: Now, weight: float = 10.0) -> None:
        """Bad data costs a peer score; past a threshold it is disconnected and
        refused for a while (node/_peers.py)."""
        banned = self.peers.penalise(peer, reason, now.mono, weight)
        self.stats["peer_penalties"] += 1
        log.warning(
            "peer %s sent bad data: %s (score %.0f)",
            peer,
            reason,
            self.peers.score(peer, now.mono),
        )
        if banned:
            self.stats["peers_banned"] += 1
            log.warning("banning peer %s for %.0f s", peer, BAN_SECONDS)
            self._emit(Block(peer))  # lifted by `tick` when the ban ends

    def partition(self, peers: Iterable[str]) -> None:
        """Devnet faults: refuse these peers until `heal`."""
        for p in peers:
            self.peers.partitioned.add(p)
            self._emit(Block(p))

    def heal(self) -> list[str]:
        healed = sorted(self.peers.partitioned)
        for p in healed:
            self._emit(Unblock(p))
        self.peers.partitioned.clear()
        return healed

    def usable(self, peers: Iterable[str], now: Now) -> list[str]:
        """Of these peers, those worth syncing with or dialing: not partitioned
        off, not banned, not one whose last stream would not open."""
        return [p for p in peers if self.peers.usable(p, now.mono)]

    def peer_silent(self, peer: str, now: Now) -> None:
        """A stream or ping to the peer did not finish in time (its sockets
        were closed): skip it for a while."""
        self.peers.mark_dead(peer, now.mono)

    # -- admission: the one way in --------------------------------------------------

    def decode(self, raws: Iterable[Any]) -> tuple[list[Event], list[RemoteProtocolError]]:
        """Decode and signature-check each raw event on its own: one bad event
        does not take the valid ones in its batch down with it. (A runtime may
        do this on worker threads instead: `decode_share`, then `split_decoded`.)"""
        if self.decode_one is not None:
            return split_decoded(map(self.decode_one, raws), self)
        out = decode_share(list(raws), self.genesis.params.max_event_bytes, self.network)
        return split_decoded(out, self)

    def admit(
        self, events: Iterable[Event], peer: str | None, now: Now, arrived_ms: int | None = None
    ) -> list[Admitted]:
        """Every event from every entrance (gossip, sync, the raw-event API, the
        node's own authoring) comes in here, with the same checks in the same
        order: decoded and signed (by the caller, `decode`); then the clock
        policy: an event dated past this node's clock plus the network's skew is
        not stored or forwarded now but held aside and admitted when its time
        comes (beyond `future_hold_ms` more it is refused); then the replica's
        rules (PROTOCOL.md §6). The state never depends on the clock: a held
        event is admitted by every honest node once its time has come.
        `arrived_ms`: when queued gossip arrived (`applied_log`)."""
        horizon = now.wall_ms + self.genesis.params.max_clock_skew_ms
        out: dict[bytes, Admitted] = {}
        order: list[Event] = []

        def ready() -> Iterator[Event]:
            # Lazily: the ledger folds each event before it asks for the next,
            # so batch authoring can make each next event on the state just left.
            for ev in events:
                order.append(ev)
                if ev.timestamp > horizon:
                    out[ev.id] = self._hold(ev, now)
                else:
                    yield ev

        for r in self._store(ready(), peer, now, arrived_ms):
            out[r.id] = Admitted(r.status, r.id, r.code, r.reason)
        return [out[ev.id] for ev in order]

    def _hold(self, ev: Event, now: Now) -> Admitted:
        if self.store.replica.has(ev.id):
            return Admitted("duplicate", ev.id)
        ahead = ev.timestamp - now.wall_ms
        if ahead > self.genesis.params.max_clock_skew_ms + self.settings.future_hold_ms:
            self.stats["events_refused"] += 1
            self.count("rejected", "future")
            return Admitted(
                "rejected",
                ev.id,
                "future",
                f"the event is dated {ahead // 1000} s ahead of this node's clock, more "
                "than a day past the network's clock skew; it is refused until its time",
            )
        if self.held.add(ev):
            self.stats["events_held"] += 1
        return Admitted(
            "held",
            ev.id,
            "future",
            f"the event is dated {ahead // 1000} s ahead of this node's clock; it is "
            "held and admitted when its time comes",
        )

    def _store(
        self, events: Iterable[Event], peer: str | None, now: Now, arrived_ms: int | None = None
    ) -> AppendResults:
        """Store and fold events admission let through, in one ledger transaction."""
        by_id: dict[bytes, Event] = {}

        def seen() -> Iterator[Event]:
            for e in events:
                by_id[e.id] = e
                yield e

        # From a peer (gossip, sync): no disk flush per message, see Ledger.append_events.
        results = self.store.append_events(seen(), durable=peer is None)
        if not by_id:
            return results
        applied: list[Event] = []
        missing = False
        voids = 0
        for r in results:
            if r.status == "applied":
                ev = by_id.get(r.id)
                if ev is not None:
                    applied.append(ev)
            elif r.status == "pending":
                missing = True
            elif r.status == "rejected":
                self.count("rejected", r.code)
            if r.void:
                voids += 1
                self.count("void", r.code)
            # A rejection here (bad_prev) is a validly signed claim by its author:
            # the author is at fault, not the peer that relayed it, and the event
            # is kept as fork evidence.
        at = now.wall_ms
        arrived = at if arrived_ms is None else arrived_ms
        for ev in applied:
            self.applied_log.append((ev.id, ev.timestamp, at, arrived))
        for ev in results.released:  # waited for what they name: applied now
            self.applied_log.append((ev.id, ev.timestamp, at, at))
        applied += results.released
        self.stats["events_applied"] += len(applied)
        self.stats["events_void"] += voids
        for proof in results.forks:
            self._relay_proof(proof)
        if missing:
            # gossip names the event's origin, which may not be a neighbour
            if peer in self.sync_peers:
                self.request_sync(peer, now, urgent=False)
            elif self.sync_peers:
                self.request_sync(self.rng.choice(self.sync_peers), now, urgent=False)
        if applied:
            self._emit(Applied(tuple(applied)))
        return results

    def _relay_proof(self, proof: EquivocationProof) -> None:
        """Fork evidence travels: every node that learns of a fork passes both
        events on, so every node records the same forks whichever saw it first."""
        log.warning("fork detected: relaying the equivocation proof")
        self.stats["forks_relayed"] += 1
        self.publish(proof.first)
        self.publish(proof.second)

    def publish(self, raw: bytes) -> None:
        self._emit(Publish(raw))

    def admit_own(self, events: Iterable[Event], now: Now) -> list[Admitted]:
        """The node's own events (authoring): admitted like any other, then
        published when applied."""
        made: list[Event] = []

        def track() -> Iterator[Event]:
            for ev in events:
                made.append(ev)
                yield ev

        before = self.stats["events_applied"]
        results = self.admit(track(), None, now)
        self.stats["events_applied_own"] += self.stats["events_applied"] - before
        for ev, r in zip(made, results, strict=True):
            if r.status == "applied":
                self.publish(ev.raw)
        return results

    # -- gossip in ------------------------------------------------------------------

    def gossip_welcome(self, peer: str, now: Now) -> bool:
        """Whether a gossip message from `peer` would get past `on_gossip`'s
        first checks (partition, rate limit) now, without taking from its rate:
        a runtime asks before it spends CPU on a large message ahead of
        `on_gossip` (which then takes the rate as for any message)."""
        return peer not in self.peers.partitioned and self.peers.rate_would_allow(peer, now.mono)

    def on_gossip(
        self,
        peer: str,
        data: bytes,
        now: Now,
        decoded: tuple[list[Event], list[RemoteProtocolError]] | None = None,
    ) -> bool:
        """A gossip message arrived (before libp2p forwards it). Its valid events
        are queued for admission whatever is decided here; True forwards the
        message: only if every event in it is valid and not dated ahead of our
        clock (the same policy every entrance applies), and the relay policy
        (moderation) lets all of them through. `decoded`: the message's events
        already decoded and checked by the runtime (`decode_share`,
        `signature_failures`, `split_decoded`; a large message, off the loop)."""
        if peer in self.peers.partitioned:
            return False
        if not self.peers.rate_ok(peer, now.mono):
            self.stats["gossip_rejected"] += 1
            return False
        if decoded is None:
            try:
                raws = decode_gossip(data, self.network)
            except RemoteProtocolError as exc:
                self.stats["gossip_rejected"] += 1
                self.count("rejected", exc.code)
                self.penalise(peer, f"{exc.code}: {exc.reason}", now)
                return False
            decoded = self.decode(raws)
        events, bad = decoded
        self.stats["gossip_events_in"] += len(events)
        if bad:
            self.penalise(peer, f"{bad[0].code}: {bad[0].reason}", now)
        horizon = now.wall_ms + self.genesis.params.max_clock_skew_ms
        forward = not bad and all(ev.timestamp <= horizon for ev in events)
        if not forward:
            self.stats["gossip_rejected"] += 1
        if forward and events:
            forward = self._relay_filter(events, now)  # moderation: node/_relay_policy.py
        if events:
            self._enqueue(events, peer, now)  # admitted whatever the relay policy said
        return forward

    def _relay_filter(self, events: list[Event], now: Now) -> bool:
        """The relay policy (node/_relay_policy.py): True to forward the message
        as it came. A blocked author's events and an author's events over the
        per-minute limit are not forwarded (they are still admitted, and other
        nodes get them by sync); when a message mixes them with others, the
        others go on in a gossip message of this node's own."""
        d = self.relay.decide([(e.author, e.id) for e in events], now.mono, self.blocked)
        self.stats["relay_blocked"] += d.blocked
        self.stats["relay_over_limit"] += d.over_limit
        if d.all_forwarded:
            return True
        for i in d.forward:
            self.publish(events[i].raw)
        return False

    def _enqueue(self, events: list[Event], peer: str | None, now: Now) -> None:
        if self.queued + len(events) > MAX_QUEUED:
            self.stats["admission_dropped"] += len(events)  # sync brings them later
            return
        self.queue.append((events, peer, now.wall_ms))
        self.queued += len(events)

    def admit_queued(self, now: Now) -> bool:
        """Admit the oldest queued gossip message's events; False if none waits."""
        if not self.queue:
            return False
        events, peer, arrived_ms = self.queue.popleft()
        self.queued -= len(events)
        self.stats["gossip_received"] += 1
        before = self.stats["events_applied"]
        try:
            self.admit(events, peer, now, arrived_ms)
        except Exception:  # a bug here must not end the node
            log.exception("admitting %d gossiped events failed", len(events))
        self.stats["events_applied_gossip"] += self.stats["events_applied"] - before
        return True

    # -- time -------------------------------------------------------------------------

    def tick(self, now: Now, connected: Iterable[str], speaks_sync: Iterable[str]) -> None:
        """Called about twice a second with the peers connected now and those of
        them that announced the sync protocol: held events whose time came are
        admitted and passed on; newly connected peers are synced at once, and a
        random live peer every `sync_interval` (another if events wait for
        deps); ended bans are lifted; peers that are gone are forgotten; blobs
        due for another try are asked for."""
        self._release_held(now)
        now_connected = set(connected)
        for p in now_connected - self.connected:
            self.peers.revive(p)  # whatever made it look dead is past
        self.connected = now_connected
        speaks = set(speaks_sync)
        peers = [p for p in sorted(now_connected & speaks) if self.peers.usable(p, now.mono)]
        self.sync_peers = peers
        for p in peers:
            if p not in self.sync.synced:
                self.sync.synced.add(p)
                self.request_sync(p, now)
        self.sync.synced &= set(peers)
        if now.mono - self.sync.last_round >= self.settings.sync_interval:
            self.sync.last_round = now.mono
            if peers:
                self.request_sync(self.rng.choice(peers), now)
            if self.store.replica.pending and peers:
                self.request_sync(self.rng.choice(peers), now, urgent=False)
            for peer in self.peers.lift_expired_bans(now.mono):
                self._emit(Unblock(peer))
            self.peers.forget_gone(now_connected, now.mono)
            self.sync.forget(now_connected)
        for h, size in self.blobs.due(now.mono):
            self.blobs.wants[h] = (self.blobs.wants[h][0], float("inf"), size)  # in flight
            self._emit(FetchBlob(h, size))

    def _release_held(self, now: Now) -> None:
        if not self.held.events:
            return
        due = self.held.due(now.wall_ms + self.genesis.params.max_clock_skew_ms)
        if not due:
            return
        before = self.stats["events_applied"]
        admitted = self.admit(due, None, now)
        self.stats["events_applied_held"] += self.stats["events_applied"] - before
        for ev, r in zip(due, admitted, strict=True):
            if r.status in ("applied", "pending"):
                self.publish(ev.raw)

    # -- sync ---------------------------------------------------------------------------

    def request_sync(self, peer: str, now: Now, *, urgent: bool = True) -> None:
        """Ask for a sync with `peer`. A non-urgent ask (events waiting on
        missing deps, which gossip usually fills within moments) is dropped if
        that peer was synced very recently: under load, out-of-order arrivals
        would otherwise turn into a storm of syncs that adds to the load."""
        if not urgent and now.mono - self.sync.last.get(peer, float("-inf")) < SYNC_BACKOFF:
            return
        self.sync.wanted.add(peer)
        self._emit(SyncWanted())

    def sync_ended(self, peer: str, got: int, now: Now) -> None:
        self.sync.last[peer] = now.mono
        self.stats["sync_rounds"] += 1
        self.stats["sync_events_in"] += got
        self.stats["sync_last_events"] = got
        self.stats["sync_last_ms"] = now.wall_ms

    def sync_failed(
        self, peer: str, reason: str, now: Now, *, peer_at_fault: bool, silent: bool = False
    ) -> None:
        """A session ended badly: with `peer_at_fault` (bad data) the peer is
        penalised; when `silent` (a request went unanswered until the timeout:
        a connection that died without a word) it is skipped for a while
        rather than given a sync slot again at once."""
        log.info("sync with %s failed: %s", peer, reason)
        self.stats["sync_failures"] += 1
        if peer_at_fault:
            self.penalise(peer, f"sync: {reason}", now)
        if silent:
            self.peer_silent(peer, now)

    def take_page(
        self, events: list[Event], bad: list[RemoteProtocolError], peer: str, now: Now
    ) -> int:
        """A sync reply's events, decoded each on its own (as every entrance
        does): the valid ones are admitted; a peer that serves bad events is
        penalised. Returns how many were valid."""
        if bad:
            self.penalise(peer, f"sync: {bad[0].code}: {bad[0].reason}", now)
        if events:
            before = self.stats["events_applied"]
            self.admit(events, peer, now)
            self.stats["events_applied_sync"] += self.stats["events_applied"] - before
        return len(events)

    def serve_sync(self, peer: str, frame: bytes, now: Now) -> tuple[bytes, bool]:
        """One request frame from a peer's sync session: (reply, close). A
        request that breaks the protocol costs the peer, is answered with
        `error`, and the stream is closed (True)."""
        try:
            return self.answer_sync(decode_msg(frame)), False
        except RemoteProtocolError as exc:
            self.penalise(peer, f"sync request: {exc.reason}", now)
            return encode_msg("error", reason=exc.reason), True

    def answer_sync(self, req: dict[str, Any]) -> bytes:
        """The sync protocol's server side (PROTOCOL.md §11.5): one reply to
        one request. RemoteProtocolError for a request that breaks the protocol."""
        t = req["t"]
        replica = self.store.replica
        if t == "heads":
            if req.get("ids") is True:  # with each head's id: equal seqs that differ are forks
                tips = [[a, s, replica.head(a)[1]] for a, s in sorted(replica.heads.items())]
                return encode_msg("reply", heads=tips)
            heads = [[a, s] for a, s in sorted(replica.heads.items())]
            return encode_msg("reply", heads=heads)
        if t == "range":
            author, start, limit = req.get("author"), req.get("start"), req.get("limit")
            if not (
                isinstance(author, bytes) and isinstance(start, int) and isinstance(limit, int)
            ):
                raise RemoteProtocolError("sync", "range needs author, start and limit")
            raws = self.store.events_range(author, start, max(1, min(limit, PAGE)))
            return encode_msg("reply", events=cap_frame(raws))
        if t == "get":
            ids = req.get("ids")
            if not isinstance(ids, list) or len(ids) > 512:
                raise RemoteProtocolError("sync", "get takes a list of at most 512 ids")
            found = self.store.get_raw([i for i in ids if isinstance(i, bytes)])
            return encode_msg("reply", events=cap_frame(list(found.values())))
        if t == "forks":
            proofs = [[p.first, p.second] for p in replica.proofs.values()]
            if len(proofs) > 64:  # a different 64 each time, so every proof gets round
                proofs = self.rng.sample(proofs, 64)
            return encode_msg("reply", proofs=proofs)
        raise RemoteProtocolError("sync", f"unexpected request {t!r}")

    # -- blobs --------------------------------------------------------------------------

    def blob_failed(self, h: bytes, size: int | None, now: Now) -> None:
        """No neighbour had the blob: ask again later (backing off)."""
        self.blobs.failed(h, size, now.mono)

    def blob_fetched(self, h: bytes) -> None:
        self.stats["blobs_fetched"] += 1
        self.blobs.wants.pop(h, None)


def decode_share(
    raws: list[Any], limit: int, network: bytes, verify: bool = True
) -> list[Event | RemoteProtocolError]:
    """Decode (and with `verify`, signature-check) raw events, each on its own."""
    out: list[Event | RemoteProtocolError] = []
    for raw in raws:
        try:
            out.append(decode_event(raw, limit, network, verify=verify))
        except RemoteProtocolError as exc:
            out.append(exc)
    return out


def signature_failures(decoded: list[Event | RemoteProtocolError], positions: range) -> list[int]:
    """Of the decoded events at `positions`, those whose signature does not
    verify. Only libsodium and slicing: for worker threads, which then hold
    the GIL for a few µs an event (a whole decode on them fought the loop's
    fold for it)."""
    return [
        i for i in positions if isinstance(ev := decoded[i], Event) and not check_signature(ev.raw)
    ]


def refuse_signatures(decoded: list[Event | RemoteProtocolError], bad: Iterable[int]) -> None:
    """Replace the events at `bad` by the error `decode_event` gives for them
    (the signature is its last check, so nothing else was wrong with them)."""
    for i in bad:
        decoded[i] = RemoteProtocolError("bad_signature", BAD_SIGNATURE)


def split_decoded(
    decoded: Iterable[Event | RemoteProtocolError], core: NodeCore
) -> tuple[list[Event], list[RemoteProtocolError]]:
    events: list[Event] = []
    bad: list[RemoteProtocolError] = []
    for r in decoded:
        if isinstance(r, RemoteProtocolError):
            bad.append(r)
            core.count("rejected", r.code)
        else:
            events.append(r)
    return events, bad


def cap_frame(raws: list[bytes]) -> list[bytes]:
    """Keep a reply under the sync frame limit."""
    out, size = [], 1024
    for r in raws:
        size += len(r) + 8
        if size > MAX_SYNC_FRAME:
            break
        out.append(r)
    return out
