"""The node: one ledger, one libp2p host, and the tasks that keep them in step.

Gossip is best-effort (batched, paced); the sync protocol is what makes every
node converge: on connect, periodically, and whenever an event arrives whose
dependencies are missing. Attachments travel by the blob protocol.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trio
from learnmesh.ledger import AppendResults, BlobStore, Ledger
from learnmesh.protocol import (
    KINDS,
    EquivocationProof,
    Event,
    Genesis,
    KeyPair,
    RemoteProtocolError,
    award_body,
    commit_body,
    decode_event,
    make_event,
    reveal_body,
)
from learnmesh.protocol._kinds import check_body

from ._blocklist import Blocklist
from ._p2p import P2PConfig, P2PError, P2PHost, P2PStream
from ._peers import BAN_SECONDS, PeerBook
from ._relay_policy import RelayPolicy, default_relay_limit
from ._wire import (
    MAX_GOSSIP_BYTES,
    MAX_SYNC_FRAME,
    blob_protocol,
    decode_gossip,
    decode_msg,
    encode_gossip,
    encode_msg,
    gossip_topic,
    sync_protocol,
)

__all__ = ["Admitted", "Node", "NodeSettings", "UserError"]

T = TypeVar("T")

log = logging.getLogger("learnmesh.node")

_PAGE = 500  # events per sync page
_BLOB_CHUNK = 256 * 1024
_SYNC_BACKOFF = 2.0  # seconds between deps-triggered syncs with one peer
_ASK_TIMEOUT = 20.0  # seconds for one sync request and its reply
_BLOB_TRIES = 12  # fetch attempts of a wanted blob (backing off from 2 s to 5 min)
_OPEN_TIMEOUT = 5.0  # seconds to open a sync stream: a peer slower than this is gone
_MAX_QUEUED = 20_000  # events decoded from gossip and waiting for admission
_THREADED_MIN = 64  # events per worker thread at least when a sync page is verified


class PeerSilent(P2PError):
    """A peer did not answer in time: its connection was closed."""


class UserError(Exception):
    """A request the node refuses, with a sentence for the person who made it."""

    def __init__(self, message: str, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass
class NodeSettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    api_host: str = "127.0.0.1"
    api_port: int = 0
    bootstrap: list[str] = field(default_factory=list)
    log_level: str = "info"
    sync_interval: float = 3.0
    gossip_delay: float = 0.05  # batching window for outgoing events
    gossip_rate: float = 40.0  # gossip messages per second at most
    peer_msgs_per_s: float = 200.0  # inbound gossip messages per peer before dropping
    fetch_attachments: bool = True
    heartbeat_interval: float = 1.0
    mdns: bool = False  # discover peers on the local network
    min_peers: int = 3  # below this, remembered peers are dialed again
    redial_interval: float = 10.0
    future_hold_ms: int = 24 * 3600 * 1000  # hold events dated up to this past the skew
    max_held: int = 10_000  # events held aside until their time comes
    ping_interval: float = 10.0  # seconds between liveness pings of each peer
    ping_timeout: float = 10.0  # a peer that does not answer a ping in this long is dropped
    # node/_relay_policy.py (LEARNMESH_RELAY_PER_AUTHOR_PER_MIN overrides the default)
    relay_per_author_per_min: int = field(default_factory=default_relay_limit)


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


class Node:
    def __init__(
        self,
        *,
        data_dir: Path,
        key: KeyPair,
        p2p_seed: bytes,
        genesis: Genesis,
        ledger: Ledger,
        blobs: BlobStore,
        settings: NodeSettings,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        restored_marker: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.key = key
        self.p2p_seed = p2p_seed
        self.genesis = genesis
        self.network = genesis.network_id
        self.ledger = ledger
        self.blobs = blobs
        self.settings = settings
        self.clock = clock
        self.monotonic = monotonic
        self.topic = gossip_topic(self.network)
        self.p2p: P2PHost | None = None
        self.started_at = clock()
        self._outbox: list[bytes] = []
        self._outbox_ready = trio.Event()
        self._author_lock = trio.Lock()
        self._own_head: tuple[bytes, int] | None = None  # (id, timestamp) of our last event
        self._sync_wanted: set[str] = set()
        self._synced_peers: set[str] = set()  # live peers already synced once since they came
        self._chains_fetching: dict[bytes, int] = {}  # author -> sync sessions pulling its chain
        self._sync_wake = trio.Event()
        self._last_sync: dict[str, float] = {}
        self._synced_once = trio.Event()
        self.peers = PeerBook(settings.peer_msgs_per_s)
        # Moderation, a node policy (never in the state): whose events this node
        # hides and does not forward, and the per-author relay limit.
        self.blocklist = Blocklist(data_dir)
        self.relay = RelayPolicy(settings.relay_per_author_per_min)
        self._queue: deque[tuple[list[Event], str | None]] = deque()
        self._queued = 0
        self._queue_ready = trio.Event()
        self._held: dict[bytes, Event] = {}
        self._fetching: set[bytes] = set()
        self._blobs_wanted: dict[bytes, tuple[int, float, int | None]] = {}  # tries, due, size
        self._known_peers_file = data_dir / "peers.json"
        self._drafts_dir = data_dir / "drafts"
        self.applied_log: deque[tuple[bytes, int, int]] = deque(maxlen=20_000)
        self.stats: dict[str, int] = {
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
        # After `key import` the node must learn its own chain's head from a peer
        # before it signs, or it could fork its own chain (Scuttlebutt's failure).
        self._restored_marker = restored_marker
        self.key_imported = restored_marker is not None and restored_marker.exists()
        # Private messages (node/_messages.py): their own topic, stores and fetch protocol.
        from ._messages import Messages

        self.messages = Messages(self)

    # -- the running node -----------------------------------------------------------

    @property
    def peer_id(self) -> str:
        return self.p2p.peer_id if self.p2p else ""

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        cfg = P2PConfig(
            identity_seed=self.p2p_seed,
            listen_host=self.settings.listen_host,
            listen_port=self.settings.listen_port,
            heartbeat_interval=self.settings.heartbeat_interval,
            max_message_bytes=MAX_GOSSIP_BYTES + 1024,
            mdns=self.settings.mdns,
        )
        async with P2PHost.open(cfg) as host:
            self.p2p = host
            host.on_misbehaviour = self.penalise  # oversize or unparsable gossip costs its sender
            host.set_stream_handler(sync_protocol(self.network), self._serve_sync)
            host.set_stream_handler(blob_protocol(self.network), self._serve_blob)
            await host.subscribe(self.topic, self._validate_gossip)
            await self.messages.start(host)  # private messages: own topic, fetch protocol
            async with trio.open_nursery() as nursery:
                self._spawner = nursery
                nursery.start_soon(self._gossip_in)
                nursery.start_soon(self._admission_worker)
                nursery.start_soon(self._release_held)
                nursery.start_soon(self._liveness_loop)
                nursery.start_soon(self._blob_retry_loop)
                nursery.start_soon(self._gossip_out)
                nursery.start_soon(self._sync_loop)
                nursery.start_soon(self._sync_worker)
                nursery.start_soon(self._dial_known)
                nursery.start_soon(self._redial_loop)
                nursery.start_soon(_dispute_duties, self)  # node/_disputes.py: reveal, claim
                nursery.start_soon(self.messages.run)  # fetch what peers hold for us
                self._after_apply([])  # reveal drafts whose close arrived while we were down
                task_status.started()
                log.info("node %s listening on %s", host.peer_id, ", ".join(host.listen_addrs()))
                await trio.sleep_forever()

    # -- dialing and peers ------------------------------------------------------------

    def _remember_peer(self, addr: str) -> None:
        known = self._load_known_peers()
        if addr not in known:
            known.append(addr)
            tmp = self._known_peers_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(known[-64:]))
            os.replace(tmp, self._known_peers_file)

    def _load_known_peers(self) -> list[str]:
        try:
            data = json.loads(self._known_peers_file.read_text())
            return [a for a in data if isinstance(a, str)]
        except (OSError, ValueError):
            return []

    async def connect(self, addr: str) -> str:
        assert self.p2p is not None
        peer = await self.p2p.connect(addr)
        self._remember_peer(addr)
        self.request_sync(peer)
        return peer

    async def _dial_known(self) -> None:
        """Dial bootstrap and remembered peers, retrying with backoff until connected."""
        addrs = list(dict.fromkeys(self.settings.bootstrap + self._load_known_peers()))
        own = set(self.p2p.listen_addrs()) if self.p2p else set()
        addrs = [a for a in addrs if a not in own and self.peer_id not in a]
        async with trio.open_nursery() as nursery:
            for addr in addrs:
                nursery.start_soon(self._dial_until_up, addr, addr in self.settings.bootstrap)

    async def _redial_loop(self) -> None:
        """Keep a few connections: when peers drop (a partition healed, a peer
        restarted), dial remembered and bootstrap peers again."""
        while True:
            await trio.sleep(self.settings.redial_interval)
            connected = set(self.connected_peers())
            if len(connected) >= self.settings.min_peers:
                continue
            for addr in dict.fromkeys(self.settings.bootstrap + self._load_known_peers()):
                peer = addr.rsplit("/p2p/", 1)[-1]
                if peer == self.peer_id or peer in connected:
                    continue
                if not self.peers.usable(peer, self.monotonic()):
                    continue
                try:
                    with trio.move_on_after(10):
                        await self.connect(addr)
                except P2PError as exc:
                    log.debug("redial %s failed: %s", addr, exc)

    async def _dial_until_up(self, addr: str, persistent: bool) -> None:
        delay = 0.5
        for _ in range(40 if persistent else 3):
            try:
                await self.connect(addr)
                return
            except P2PError as exc:
                log.debug("dial %s failed: %s", addr, exc)
            await trio.sleep(delay)
            delay = min(delay * 2, 10.0)
        log.warning("gave up dialing %s", addr)

    def stored_event(self, eid: bytes) -> Event:
        """An applied event, decoded from the bytes this node verified when it stored them."""
        raw = self.ledger.replica.raw[eid]
        return decode_event(raw, self.genesis.params.max_event_bytes, self.network, verify=False)

    def connected_peers(self) -> list[str]:
        return self.p2p.connected_peers() if self.p2p else []

    def live_peers(self) -> list[str]:
        """Connected peers worth syncing with: not partitioned off, not banned,
        and not a peer whose last stream would not open (it left or hangs)."""
        now = self.monotonic()
        return [p for p in self.connected_peers() if self.peers.usable(p, now)]

    def mesh_peers(self) -> list[str]:
        """Neighbours grafted into this node's gossip mesh for the network topic."""
        return self.p2p.mesh_peers(self.topic) if self.p2p else []

    def dial_addrs(self) -> list[str]:
        """Addresses others can dial: a wildcard listen address becomes loopback
        (a LAN peer would use this machine's own address instead)."""
        addrs = self.p2p.listen_addrs() if self.p2p else []
        return [a.replace("/ip4/0.0.0.0/", "/ip4/127.0.0.1/") for a in addrs]

    def penalise(self, peer: str, reason: str, weight: float = 10.0) -> None:
        """Bad data costs a peer score; past a threshold it is disconnected and
        refused for a while (node/_peers.py)."""
        banned = self.peers.penalise(peer, reason, self.monotonic(), weight)
        self.stats["peer_penalties"] += 1
        log.warning(
            "peer %s sent bad data: %s (score %.0f)",
            peer,
            reason,
            self.peers.score(peer, self.monotonic()),
        )
        if banned:
            self.stats["peers_banned"] += 1
            log.warning("banning peer %s for %.0f s", peer, BAN_SECONDS)
            if self.p2p is not None:
                self.p2p.block_peer(peer)  # lifted by _unban_expired

    def partition(self, peers: Iterable[str]) -> None:
        """Admin: refuse these peers' connections (how devnet splits a network)."""
        assert self.p2p is not None
        for p in peers:
            self.peers.partitioned.add(p)
            self.p2p.block_peer(p)

    def heal(self) -> None:
        assert self.p2p is not None
        for p in self.peers.partitioned:
            self.p2p.unblock_peer(p)
        self.peers.partitioned.clear()

    # -- admission: the one way in ------------------------------------------------

    def decode_raws(self, raws: Iterable[Any]) -> tuple[list[Event], list[RemoteProtocolError]]:
        """Decode and signature-check each raw event on its own: one bad event
        does not take the valid ones in its batch down with it."""
        limit = self.genesis.params.max_event_bytes
        events: list[Event] = []
        bad: list[RemoteProtocolError] = []
        for raw in raws:
            try:
                events.append(decode_event(raw, limit, self.network))
            except RemoteProtocolError as exc:
                bad.append(exc)
                self._count("rejected", exc.code)
        return events, bad

    async def _decode_on_threads(
        self, raws: list[Any]
    ) -> tuple[list[Event], list[RemoteProtocolError]]:
        """`decode_raws` for a sync page: the signature checks, most of a
        catch-up's CPU, run on worker threads, one share per core (PyNaCl
        releases the GIL), while the node's loop goes on serving."""
        shares = min(os.cpu_count() or 1, len(raws) // _THREADED_MIN)
        if shares < 2:
            return self.decode_raws(raws)
        limit = self.genesis.params.max_event_bytes
        size = -(-len(raws) // shares)
        parts: list[list[Event | RemoteProtocolError]] = [[] for _ in range(shares)]

        def work(chunk: list[Any]) -> list[Event | RemoteProtocolError]:
            out: list[Event | RemoteProtocolError] = []
            for raw in chunk:
                try:
                    out.append(decode_event(raw, limit, self.network))
                except RemoteProtocolError as exc:
                    out.append(exc)
            return out

        async def share(i: int) -> None:
            parts[i] = await trio.to_thread.run_sync(work, raws[i * size : (i + 1) * size])

        async with trio.open_nursery() as nursery:
            for i in range(shares):
                nursery.start_soon(share, i)
        events: list[Event] = []
        bad: list[RemoteProtocolError] = []
        for part in parts:
            for r in part:
                if isinstance(r, RemoteProtocolError):
                    bad.append(r)
                    self._count("rejected", r.code)
                else:
                    events.append(r)
        return events, bad

    def _count(self, what: str, code: str | None) -> None:
        """Count a refused or void event by its protocol code (for /metrics)."""
        key = f"{what}:{code or 'unknown'}"
        self.stats[key] = self.stats.get(key, 0) + 1

    def admit(self, events: Iterable[Event], peer: str | None = None) -> list[Admitted]:
        """Every event from every entrance (gossip, sync, the raw-event API, the
        node's own authoring) comes in here, with the same checks in the same
        order: decoded and signed (by the caller, `decode_raws`); then the clock
        policy: an event dated past this node's clock plus the network's skew is
        not stored or forwarded now but held aside and admitted when its time
        comes (beyond `future_hold_ms` more it is refused); then the replica's
        rules (PROTOCOL.md §6). The state never depends on the clock: a held
        event is admitted by every honest node once its time has come."""
        now = self.now_ms()
        horizon = now + self.genesis.params.max_clock_skew_ms
        out: dict[bytes, Admitted] = {}
        order: list[Event] = []

        def ready() -> Iterator[Event]:
            # Lazily: the ledger folds each event before it asks for the next,
            # so `author_batch` can make each next event on the state just left.
            for ev in events:
                order.append(ev)
                if ev.timestamp > horizon:
                    out[ev.id] = self._hold(ev, now)
                else:
                    yield ev

        for r in self.ingest(ready(), peer):
            out[r.id] = Admitted(r.status, r.id, r.code, r.reason)
        return [out[ev.id] for ev in order]

    def _hold(self, ev: Event, now: int) -> Admitted:
        if self.ledger.replica.has(ev.id):
            return Admitted("duplicate", ev.id)
        ahead = ev.timestamp - now
        if ahead > self.genesis.params.max_clock_skew_ms + self.settings.future_hold_ms:
            self.stats["events_refused"] += 1
            self._count("rejected", "future")
            return Admitted(
                "rejected",
                ev.id,
                "future",
                f"the event is dated {ahead // 1000} s ahead of this node's clock, more "
                "than a day past the network's clock skew; it is refused until its time",
            )
        if ev.id not in self._held:
            self._held[ev.id] = ev
            self.stats["events_held"] += 1
            if len(self._held) > self.settings.max_held:  # drop the furthest ahead
                far = max(self._held.values(), key=lambda e: (e.timestamp, e.id))
                del self._held[far.id]
        return Admitted(
            "held",
            ev.id,
            "future",
            f"the event is dated {ahead // 1000} s ahead of this node's clock; it is "
            "held and admitted when its time comes",
        )

    async def _release_held(self) -> None:
        """Admit held events whose time has come, and pass them on."""
        while True:
            await trio.sleep(1.0)
            if not self._held:
                continue
            horizon = self.now_ms() + self.genesis.params.max_clock_skew_ms
            due = sorted(
                (e for e in self._held.values() if e.timestamp <= horizon),
                key=lambda e: (e.author, e.seq),
            )
            for e in due:
                del self._held[e.id]
            if due:
                before = self.stats["events_applied"]
                admitted = self.admit(due)
                self.stats["events_applied_held"] += self.stats["events_applied"] - before
                for ev, r in zip(due, admitted, strict=True):
                    if r.status in ("applied", "pending"):
                        self.publish(ev.raw)

    def held(self) -> list[Event]:
        return sorted(self._held.values(), key=lambda e: (e.timestamp, e.id))

    # -- gossip in ------------------------------------------------------------------

    def _validate_gossip(self, peer: str, data: bytes) -> bool:
        """Runs before libp2p forwards a message. Its valid events are handed to
        admission whatever is decided here; the message goes on to other peers
        only if every event in it is valid and not dated ahead of our clock (the
        same policy every entrance applies, so nothing depends on the path)."""
        if peer in self.peers.partitioned:
            return False
        if not self.peers.rate_ok(peer, self.monotonic()):
            self.stats["gossip_rejected"] += 1
            return False
        try:
            raws = decode_gossip(data, self.network)
        except RemoteProtocolError as exc:
            self.stats["gossip_rejected"] += 1
            self._count("rejected", exc.code)
            self.penalise(peer, f"{exc.code}: {exc.reason}")
            return False
        events, bad = self.decode_raws(raws)
        self.stats["gossip_events_in"] += len(events)
        if bad:
            self.penalise(peer, f"{bad[0].code}: {bad[0].reason}")
        horizon = self.now_ms() + self.genesis.params.max_clock_skew_ms
        forward = not bad and all(ev.timestamp <= horizon for ev in events)
        if not forward:
            self.stats["gossip_rejected"] += 1
        if forward and events:
            forward = self._relay_filter(events)  # moderation: node/_relay_policy.py
        if events:
            self._enqueue(events, peer)  # admitted whatever the relay policy said
        return forward

    def _relay_filter(self, events: list[Event]) -> bool:
        """The relay policy (node/_relay_policy.py): True to forward the message
        as it came. A blocked author's events and an author's events over the
        per-minute limit are not forwarded (they are still admitted, and other
        nodes get them by sync); when a message mixes them with others, the
        others go on in a gossip message of this node's own."""
        d = self.relay.decide(
            [(e.author, e.id) for e in events], self.monotonic(), self.blocklist.is_blocked
        )
        self.stats["relay_blocked"] += d.blocked
        self.stats["relay_over_limit"] += d.over_limit
        if d.all_forwarded:
            return True
        for i in d.forward:
            self.publish(events[i].raw)
        return False

    def _enqueue(self, events: list[Event], peer: str | None) -> None:
        if self._queued + len(events) > _MAX_QUEUED:
            self.stats["admission_dropped"] += len(events)  # sync brings them later
            return
        self._queue.append((events, peer))
        self._queued += len(events)
        self._queue_ready.set()

    async def _admission_worker(self) -> None:
        while True:
            await self._queue_ready.wait()
            self._queue_ready = trio.Event()
            while self._queue:
                events, peer = self._queue.popleft()
                self._queued -= len(events)
                self.stats["gossip_received"] += 1
                before = self.stats["events_applied"]
                try:
                    self.admit(events, peer)
                except Exception:  # a bug here must not end the node
                    log.exception("admitting %d gossiped events failed", len(events))
                self.stats["events_applied_gossip"] += self.stats["events_applied"] - before
                await trio.sleep(0)  # let the API and sync run between batches

    async def _gossip_in(self) -> None:
        """Admission happens in the validator; the delivered copy only needs draining."""
        assert self.p2p is not None
        async for _ in self.p2p.messages():
            pass

    def ingest(self, events: Iterable[Event], peer: str | None = None) -> AppendResults:
        """Store and fold events that admission let through (use `admit`), in
        one ledger transaction; `events` may be a generator (see `admit`)."""
        by_id: dict[bytes, Event] = {}

        def seen() -> Iterator[Event]:
            for e in events:
                by_id[e.id] = e
                yield e

        # From a peer (gossip, sync): no disk flush per message, see Ledger.append_events.
        results = self.ledger.append_events(seen(), durable=peer is None)
        if not by_id:
            return results
        applied: list[Event] = []
        now = self.now_ms()
        missing = False
        for r in results:
            if r.status == "applied":
                ev = by_id.get(r.id)
                if ev is not None:
                    applied.append(ev)
            elif r.status == "pending":
                missing = True
            elif r.status == "rejected":
                self._count("rejected", r.code)
            if r.void:
                self._count("void", r.code)
            # A rejection here (bad_prev) is a validly signed claim by its author:
            # the author is at fault, not the peer that relayed it, and the event
            # is kept as fork evidence.
        applied += results.released
        for ev in applied:
            self.applied_log.append((ev.id, ev.timestamp, now))
        self.stats["events_applied"] += len(applied)
        self.stats["events_void"] += sum(1 for r in results if r.void)
        for proof in results.forks:
            self._relay_proof(proof)
        if missing:
            # gossip names the event's origin, which may not be a neighbour
            peers = self.live_peers()
            if peer in peers:
                self.request_sync(peer, urgent=False)
            elif peers:
                self.request_sync(random.choice(peers), urgent=False)
        self._after_apply(applied)
        return results

    def _relay_proof(self, proof: EquivocationProof) -> None:
        """Fork evidence travels: every node that learns of a fork passes both
        events on, so every node records the same forks whichever saw it first."""
        log.warning("fork detected: relaying the equivocation proof")
        self.stats["forks_relayed"] += 1
        self.publish(proof.first)
        self.publish(proof.second)

    # -- gossip out -----------------------------------------------------------------

    def publish(self, raw: bytes) -> None:
        self._outbox.append(raw)
        self._outbox_ready.set()

    async def _gossip_out(self) -> None:
        """Batch outgoing events into few gossip messages, paced so libp2p's
        32-message per-peer queue never overflows. An event after a quiet spell
        goes out at once; events made within `gossip_delay` of the last message
        wait for the rest of that window and share the next one."""
        assert self.p2p is not None
        last = -math.inf
        while True:
            await self._outbox_ready.wait()
            await trio.sleep_until(last + self.settings.gossip_delay)
            self._outbox_ready = trio.Event()
            while self._outbox:
                batch: list[bytes] = []
                size = 64
                while self._outbox and size + len(self._outbox[0]) + 8 < MAX_GOSSIP_BYTES:
                    raw = self._outbox.pop(0)
                    batch.append(raw)
                    size += len(raw) + 8
                if not batch:  # one event larger than a gossip message: sync carries it
                    self._outbox.pop(0)
                    continue
                try:
                    await self.p2p.publish(self.topic, encode_gossip(self.network, batch))
                    self.stats["gossip_published"] += 1
                    self.stats["gossip_events_out"] += len(batch)
                except P2PError as exc:
                    log.warning("publish failed: %s", exc)
                last = trio.current_time()
                await trio.sleep(1.0 / self.settings.gossip_rate)

    # -- sync -------------------------------------------------------------------------

    def request_sync(self, peer: str, *, urgent: bool = True) -> None:
        """Ask for a sync with `peer`. A non-urgent ask (events waiting on
        missing deps, which gossip usually fills within moments) is dropped if
        that peer was synced very recently: under load, out-of-order arrivals
        would otherwise turn into a storm of syncs that adds to the load."""
        if not urgent and self.monotonic() - self._last_sync.get(peer, 0.0) < _SYNC_BACKOFF:
            return
        self._sync_wanted.add(peer)
        self._sync_wake.set()

    async def _sync_worker(self) -> None:
        """Run wanted syncs, a few peers at a time, so one slow or silent peer
        cannot hold up syncing with the others."""
        limiter = trio.CapacityLimiter(3)
        running: set[str] = set()

        async def one(peer: str) -> None:
            try:
                async with limiter:
                    await self.sync_with(peer)
            except Exception:  # a bug here must not end the worker (and the node)
                log.exception("sync with %s crashed", peer)
            finally:
                running.discard(peer)
                if peer in self._sync_wanted:  # asked for again while it ran
                    self._sync_wake.set()

        async with trio.open_nursery() as nursery:
            while True:
                await self._sync_wake.wait()
                self._sync_wake = trio.Event()
                for peer in list(self._sync_wanted - running):
                    self._sync_wanted.discard(peer)
                    running.add(peer)
                    nursery.start_soon(one, peer)

    async def _sync_loop(self) -> None:
        """Anti-entropy: sync with every newly connected peer at once (checked
        twice a second, so a peer that dialed us, or one back after a partition,
        is synced within moments), and with a random live peer every interval.
        Peers that left are forgotten, and a peer whose stream would not open is
        skipped for a while, so churn cannot fill the sync slots with peers that
        will never answer; a peer that connects again is given a fresh chance."""
        connected: set[str] = set()
        last_round = -math.inf
        while True:
            now_connected = set(self.connected_peers())
            now = self.monotonic()
            for p in now_connected - connected:
                self.peers.revive(p)
            connected = now_connected
            proto = sync_protocol(self.network)
            peers = [
                p for p in self.live_peers() if self.p2p is None or self.p2p.speaks(p, proto)
            ]
            for p in peers:
                if p not in self._synced_peers:
                    self._synced_peers.add(p)
                    self.request_sync(p)
            self._synced_peers &= set(peers)
            if now - last_round >= self.settings.sync_interval:
                last_round = now
                if peers:
                    self.request_sync(random.choice(peers))
                if self.ledger.replica.pending and peers:
                    self.request_sync(random.choice(peers), urgent=False)
                self._unban_expired()
                self._forget_gone(connected)
            await trio.sleep(0.5)

    def _forget_gone(self, connected: set[str]) -> None:
        """Drop bookkeeping of peers that are gone and hold no ban or penalty."""
        self.peers.forget_gone(connected, self.monotonic())
        for peer in [p for p in self._last_sync if p not in connected]:
            del self._last_sync[peer]
        self._sync_wanted &= connected

    def _unban_expired(self) -> None:
        for peer in self.peers.lift_expired_bans(self.monotonic()):
            if self.p2p is not None:
                self.p2p.unblock_peer(peer)

    async def sync_with(self, peer: str) -> int:
        """Pull what `peer` has and we lack. Returns the number of events taken in."""
        if self.p2p is None or peer in self.peers.partitioned:
            return 0
        if not await self.p2p.supports(peer, sync_protocol(self.network), wait=_OPEN_TIMEOUT):
            return 0  # it announced (identify) or answered that it has no sync: not a failure
        got = 0
        try:
            try:
                stream = await self._open_or_drop(peer)
            except (P2PError, trio.TooSlowError):
                # Gone or hanging: skip it for a while, so anti-entropy goes to
                # peers that answer (a peer that just refused the protocol is
                # not dead: it is not asked again while it stays connected).
                if self.p2p.speaks(peer, sync_protocol(self.network)):
                    self.peers.mark_dead(peer, self.monotonic())
                raise
            try:
                got = await self._sync_session(stream)
            finally:
                await stream.close()
        except (P2PError, trio.TooSlowError, RemoteProtocolError) as exc:
            log.info("sync with %s failed: %s", peer, exc)
            self.stats["sync_failures"] += 1
            if isinstance(exc, RemoteProtocolError):
                self.penalise(peer, f"sync: {exc.reason}")
            return got
        self._last_sync[peer] = self.monotonic()
        self.stats["sync_rounds"] += 1
        self.stats["sync_events_in"] += got
        self.stats["sync_last_events"] = got
        self.stats["sync_last_ms"] = self.now_ms()
        self._synced_once.set()
        if self.key_imported and self._restored_marker is not None:
            self._restored_marker.unlink(missing_ok=True)
            self.key_imported = False
        return got

    async def _open_or_drop(self, peer: str) -> P2PStream:
        """Open a sync stream, or give up on the peer after _OPEN_TIMEOUT."""
        assert self.p2p is not None
        p2p = self.p2p

        async def abandoned(stream: P2PStream) -> None:
            await stream.close()  # opened after all, but nobody waits for it now

        return await self._within(
            _OPEN_TIMEOUT,
            peer,
            lambda: p2p.open_stream(peer, sync_protocol(self.network)),
            abandoned,
        )

    async def _within(
        self,
        seconds: float,
        peer: str,
        fn: Callable[[], Awaitable[T]],
        late: Callable[[T], Awaitable[None]] | None = None,
    ) -> T:
        """Run `fn` (a libp2p call involving `peer`) for at most `seconds`. It
        runs in a task of its own: with a peer that stopped answering (no FIN
        from a suspended laptop), libp2p's shielded clean-up can wait forever on
        the connection's locks, so a cancel alone does not come back. On time
        out the peer's sockets are closed, which unblocks everything waiting on
        them, and P2PError is raised; `late` gets a result that arrives after."""
        assert self.p2p is not None
        p2p = self.p2p
        box: list[Any] = []
        done = trio.Event()
        gave_up = False

        async def runner() -> None:
            try:
                box.append(await fn())
            except Exception as exc:
                box.append(exc)
            finally:
                done.set()
            if gave_up and late is not None and not isinstance(box[0], BaseException):
                await late(box[0])

        self._spawn(runner)
        with trio.move_on_after(seconds):
            await done.wait()
        if not done.is_set():
            gave_up = True
            closed = p2p.kill_peer(peer)
            self.stats["peers_dropped"] += 1
            log.warning("peer %s does not answer: dropped (%d sockets closed)", peer, closed)
            raise PeerSilent(f"peer {peer} did not answer within {seconds:.0f} s")
        if isinstance(box[0], BaseException):
            raise box[0]
        result: T = box[0]
        return result

    async def _liveness_loop(self) -> None:
        """Ping every connected peer now and then; one that does not answer is
        dropped, so a peer that vanished without a goodbye does not stay listed
        (and in the gossip mesh) for ever."""
        assert self.p2p is not None
        p2p = self.p2p
        while True:
            await trio.sleep(self.settings.ping_interval)
            for peer in self.connected_peers():
                self._spawn(self._check_alive, p2p, peer)

    async def _check_alive(self, p2p: P2PHost, peer: str) -> None:
        try:
            await self._within(self.settings.ping_timeout, peer, lambda: p2p.ping(peer))
        except PeerSilent:
            self.peers.mark_dead(peer, self.monotonic())  # and its sockets are closed
        except P2PError as exc:  # refused or already gone: not a sign of a hung peer
            log.debug("ping %s: %s", peer, exc)

    async def _ask(self, stream: P2PStream, t: str, **fields: Any) -> dict[str, Any]:
        # Each request has its own bound: a long catch-up is many quick pages,
        # and a peer that stops answering is dropped after one timeout.
        with trio.fail_after(_ASK_TIMEOUT):
            await stream.send_frame(encode_msg(t, **fields))
            reply = decode_msg(await stream.recv_frame(MAX_SYNC_FRAME))
        if reply["t"] == "error":
            raise P2PError(f"peer refused {t}: {reply.get('reason')}")
        return reply

    async def _fetch_chain(self, stream: P2PStream, author: bytes, seq: int) -> int:
        """Pull `author`'s events after our head up to `seq` from the peer, a
        page at a time; returns how many valid events came."""
        replica = self.ledger.replica
        peer = stream.remote_peer
        got = 0
        mine = replica.heads.get(author, 0)
        asked = False  # a page asked for and not read yet
        while seq > mine or asked:
            if not asked:
                await self._send(stream, "range", author=author, start=mine + 1, limit=_PAGE)
            raws = (await self._reply(stream, "range")).get("events")
            # Pipelined: the next page is asked for before this one is
            # verified and stored, so the peer reads and sends it meanwhile.
            last = self._last_seq(raws)
            asked = last is not None and mine < last < seq
            if asked and last is not None:
                await self._send(stream, "range", author=author, start=last + 1, limit=_PAGE)
            n = await self._take(raws, peer)
            got += n
            new = replica.heads.get(author, 0)
            if not n or new <= mine:  # nothing applied (waiting on deps): fetch those next
                if asked:  # the page already asked for is read (and taken) first
                    rest = (await self._reply(stream, "range")).get("events")
                    got += await self._take(rest, peer)
                break
            mine = new
        return got

    async def _send(self, stream: P2PStream, t: str, **fields: Any) -> None:
        with trio.fail_after(_ASK_TIMEOUT):
            await stream.send_frame(encode_msg(t, **fields))

    async def _reply(self, stream: P2PStream, t: str) -> dict[str, Any]:
        with trio.fail_after(_ASK_TIMEOUT):
            reply = decode_msg(await stream.recv_frame(MAX_SYNC_FRAME))
        if reply["t"] == "error":
            raise P2PError(f"peer refused {t}: {reply.get('reason')}")
        return reply

    def _last_seq(self, raws: Any) -> int | None:
        """The seq of a sync page's last event (decoded, not yet verified: only
        to ask for the page after it), or None."""
        if not isinstance(raws, list) or not raws:
            return None
        try:
            limit = self.genesis.params.max_event_bytes
            return decode_event(raws[-1], limit, self.network, verify=False).seq
        except RemoteProtocolError:
            return None

    async def _take(self, raws: Any, peer: str) -> int:
        """Admit a sync reply's events (each on its own, as every entrance does);
        a peer that serves bad events is penalised. Returns how many were valid."""
        if not isinstance(raws, list):
            raise RemoteProtocolError("sync", "events must be a list")
        events, bad = await self._decode_on_threads(raws)
        if bad:
            self.penalise(peer, f"sync: {bad[0].code}: {bad[0].reason}")
        if events:
            before = self.stats["events_applied"]
            self.admit(events, peer)
            self.stats["events_applied_sync"] += self.stats["events_applied"] - before
        return len(events)

    async def _sync_session(self, stream: P2PStream) -> int:
        peer = stream.remote_peer
        got = 0
        # A peer's reply is remote data: a missing field or a wrong type is its
        # fault (RemoteProtocolError, penalised), never a KeyError/TypeError that
        # would end the sync worker and with it the node.
        heads = (await self._ask(stream, "heads")).get("heads")
        if not isinstance(heads, list):
            raise RemoteProtocolError("sync", "malformed heads")
        replica = self.ledger.replica
        for entry in heads:
            if not (
                isinstance(entry, list)
                and len(entry) == 2
                and isinstance(entry[0], bytes)
                and len(entry[0]) == 32
                and isinstance(entry[1], int)
                and not isinstance(entry[1], bool)
            ):
                raise RemoteProtocolError("sync", "malformed heads")
        # A chain another sync session is fetching now (from another peer) is
        # left to it and looked at again at the end: several peers at once
        # bring different chains instead of the same pages twice.
        todo: deque[tuple[bytes, int]] = deque((a, s) for a, s in heads)
        deferred: set[bytes] = set()
        while todo:
            author, seq = todo.popleft()
            if seq <= replica.heads.get(author, 0):
                continue
            if self._chains_fetching.get(author):
                if author not in deferred and todo:
                    deferred.add(author)
                    todo.append((author, seq))
                    continue
                with trio.move_on_after(_ASK_TIMEOUT):
                    while self._chains_fetching.get(author):
                        await trio.sleep(0.05)
            self._chains_fetching[author] = self._chains_fetching.get(author, 0) + 1
            try:
                got += await self._fetch_chain(stream, author, seq)
            finally:
                left = self._chains_fetching.pop(author) - 1
                if left:
                    self._chains_fetching[author] = left
        for _ in range(20):
            missing = sorted(replica.missing_deps())[:256]
            if not missing:
                break
            n = await self._take((await self._ask(stream, "get", ids=missing)).get("events"), peer)
            if not n:
                break
            got += n
        proofs = (await self._ask(stream, "forks")).get("proofs")
        for pair in proofs if isinstance(proofs, list) else []:
            await self._take(pair, peer)
        return got

    async def _serve_sync(self, stream: P2PStream) -> None:
        peer = stream.remote_peer
        if peer in self.peers.partitioned:
            await stream.close()
            return
        try:
            while True:
                try:
                    req = decode_msg(await stream.recv_frame(64 * 1024))
                except P2PError:
                    return  # the client is done
                await stream.send_frame(self._answer_sync(req))
        except RemoteProtocolError as exc:
            self.penalise(peer, f"sync request: {exc.reason}")
            await stream.send_frame(encode_msg("error", reason=exc.reason))
        except P2PError as exc:
            log.debug("sync serve to %s ended: %s", peer, exc)
        finally:
            await stream.close()

    def _answer_sync(self, req: dict[str, Any]) -> bytes:
        t = req["t"]
        if t == "heads":
            heads = [[a, s] for a, s in sorted(self.ledger.replica.heads.items())]
            return encode_msg("reply", heads=heads)
        if t == "range":
            author, start, limit = req.get("author"), req.get("start"), req.get("limit")
            if not (
                isinstance(author, bytes) and isinstance(start, int) and isinstance(limit, int)
            ):
                raise RemoteProtocolError("sync", "range needs author, start and limit")
            raws = self.ledger.events_range(author, start, max(1, min(limit, _PAGE)))
            return encode_msg("reply", events=_cap(raws))
        if t == "get":
            ids = req.get("ids")
            if not isinstance(ids, list) or len(ids) > 512:
                raise RemoteProtocolError("sync", "get takes a list of at most 512 ids")
            found = self.ledger.get_raw([i for i in ids if isinstance(i, bytes)])
            return encode_msg("reply", events=_cap(list(found.values())))
        if t == "forks":
            proofs = [[p.first, p.second] for p in self.ledger.replica.proofs.values()]
            return encode_msg("reply", proofs=proofs[:64])
        raise RemoteProtocolError("sync", f"unexpected request {t!r}")

    # -- blobs ------------------------------------------------------------------------

    async def _serve_blob(self, stream: P2PStream) -> None:
        try:
            while True:
                try:
                    req = decode_msg(await stream.recv_frame(4096))
                except P2PError:
                    return
                h, off = req.get("hash"), req.get("offset", 0)
                if req["t"] != "blob" or not isinstance(h, bytes) or not isinstance(off, int):
                    await stream.send_frame(encode_msg("error", reason="bad blob request"))
                    return
                if not self.blobs.has(h):
                    await stream.send_frame(encode_msg("error", reason="not found"))
                    return
                data = self.blobs.get(h)
                chunk = data[off : off + _BLOB_CHUNK]
                await stream.send_frame(encode_msg("reply", size=len(data), data=chunk))
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("blob serve ended: %s", exc)
        finally:
            await stream.close()

    async def fetch_blob(self, h: bytes, expected_size: int | None = None) -> bool:
        """Fetch a blob by hash from any peer that has it; the hash is checked
        before anything is stored."""
        if self.blobs.has(h) or self.p2p is None or h in self._fetching:
            return self.blobs.has(h)
        cap = self.genesis.params.max_blob_bytes
        self._fetching.add(h)
        try:
            proto = blob_protocol(self.network)
            for peer in self.connected_peers():
                if not self.p2p.speaks(peer, proto):
                    continue
                try:
                    with trio.fail_after(60):
                        data = await self._fetch_from(peer, h, cap)
                except (P2PError, trio.TooSlowError, RemoteProtocolError) as exc:
                    log.debug("blob %s from %s: %s", h.hex()[:12], peer, exc)
                    continue
                if data is None:
                    continue
                try:
                    self.blobs.put_expected(h, data)
                except Exception as exc:  # wrong content or size: try another peer
                    self.penalise(peer, f"blob: {exc}")
                    continue
                self.stats["blobs_fetched"] += 1
                self._blobs_wanted.pop(h, None)
                return True
        finally:
            self._fetching.discard(h)
        self._want_blob(h, expected_size)
        return False

    def _want_blob(self, h: bytes, size: int | None) -> None:
        """No neighbour had it yet (a neighbour may still be fetching it from
        the node that made it): try again later, backing off, so a blob spreads
        hop by hop however sparse the mesh. Bounded: the oldest wishes go first."""
        tries, _, _ = self._blobs_wanted.get(h, (0, 0.0, size))
        if tries >= _BLOB_TRIES:
            self._blobs_wanted.pop(h, None)
            return
        delay = min(2.0 * 2**tries, 300.0)
        self._blobs_wanted[h] = (tries + 1, self.monotonic() + delay, size)
        while len(self._blobs_wanted) > 1000:
            del self._blobs_wanted[next(iter(self._blobs_wanted))]

    async def _blob_retry_loop(self) -> None:
        while True:
            await trio.sleep(2.0)
            now = self.monotonic()
            for h, (_, due, size) in list(self._blobs_wanted.items()):
                if due <= now and h not in self._fetching:
                    if self.blobs.has(h):
                        self._blobs_wanted.pop(h, None)
                    else:
                        self._spawn(self.fetch_blob, h, size)

    async def _fetch_from(self, peer: str, h: bytes, cap: int) -> bytes | None:
        assert self.p2p is not None
        stream = await self.p2p.open_stream(peer, blob_protocol(self.network))
        try:
            buf = bytearray()
            total: int | None = None
            while total is None or len(buf) < total:
                await stream.send_frame(encode_msg("blob", hash=h, offset=len(buf)))
                reply = decode_msg(await stream.recv_frame(_BLOB_CHUNK + 1024))
                if reply["t"] == "error":
                    return None
                total, data = reply.get("size"), reply.get("data")
                if not isinstance(total, int) or not isinstance(data, bytes) or total > cap:
                    raise RemoteProtocolError("blob", "blob too large or malformed")
                if not data and len(buf) < total:
                    raise RemoteProtocolError("blob", "blob ended early")
                buf += data
            if hashlib.sha256(bytes(buf)).digest() != h:
                raise RemoteProtocolError("blob", "blob content does not match its hash")
            return bytes(buf)
        finally:
            await stream.close()

    # -- writing our own chain -------------------------------------------------------------

    async def author(
        self,
        kind: str,
        body: dict[str, Any],
        refs: Iterable[bytes] = (),
        *,
        claims: bool = False,
    ) -> Event:
        """Sign, check, store and publish the next event of our chain. A rule the
        event would break is refused here, before it enters the chain. With
        `claims`, the credits to claim are read inside the same critical section
        that signs: two spends at once never claim one credit twice."""
        await self._wait_own_chain()
        async with self._author_lock:
            return self._author_locked(kind, body, refs, claims=claims)

    async def _wait_own_chain(self) -> None:
        if self.key_imported and not self._synced_once.is_set():
            with trio.move_on_after(30):
                await self._synced_once.wait()
            if not self._synced_once.is_set():
                raise UserError(
                    "this key was imported: the node must sync its own chain from a peer "
                    "before it writes (no peer answered yet)",
                    status=409,
                    code="not_synced",
                )

    def _author_locked(
        self, kind: str, body: dict[str, Any], refs: Iterable[bytes], *, claims: bool
    ) -> Event:
        """`author`'s work, run while holding `_author_lock` (so a caller that
        must write two events back to back, like a bounty and its terms, holds
        the lock across both)."""
        ev = self._sign_next(kind, body, refs, claims=claims)
        before = self.stats["events_applied"]
        result = self.admit([ev])[0]
        self.stats["events_applied_own"] += self.stats["events_applied"] - before
        if result.status != "applied":
            raise UserError(
                f"event not applied: {result.status} {result.reason or ''}".strip(),
                status=500,
                code="internal",
            )
        self.publish(ev.raw)
        return ev

    def _sign_next(
        self, kind: str, body: dict[str, Any], refs: Iterable[bytes], *, claims: bool
    ) -> Event:
        """The next event of our chain, signed on the live state (head, claims),
        or UserError if the rules would make it void. Holds `_author_lock`."""
        replica = self.ledger.replica
        seq, head = replica.head(self.key.public_key)
        if head is None:
            last = 0
        elif self._own_head is not None and self._own_head[0] == head:
            last = self._own_head[1]  # kept in memory: no read of the head's bytes per event
        else:
            last = self.stored_event(head).timestamp
        ts = max(self.now_ms(), last + 1)  # our own chain's times never go backwards
        refs = sorted({*refs, *(self._claims() if claims else ())})
        missing = [r for r in refs if r not in replica.raw]
        if missing:
            raise UserError(
                f"unknown event {missing[0].hex()[:16]}", status=404, code="not_found"
            )
        try:
            ev = make_event(self.key, self.network, seq + 1, head, ts, kind, body, refs)
        except Exception as exc:  # LocalProtocolError: the user's input breaks a schema
            raise UserError(str(getattr(exc, "reason", exc)), code="invalid") from exc
        void = replica.state.would_void(ev)
        if void is not None:
            raise UserError(void[1], status=409, code=void[0])
        # Used only while it is still the replica's head (a fork rebuild or a
        # reload may change that; then the head's bytes are read back).
        self._own_head = (ev.id, ev.timestamp)
        return ev

    async def author_batch(
        self, items: list[tuple[str, dict[str, Any], bool]]
    ) -> tuple[list[Event], int | None, UserError | None]:
        """Sign, store and publish many events of our chain (kind, body,
        claims) in one ledger transaction. Each is made on the state the one
        before it left and goes through `admit` like any other; the first that
        the rules would refuse stops the batch: the events before it stay.
        Returns (events made, index of the refused item or None, its error)."""
        await self._wait_own_chain()
        made: list[Event] = []
        stop: list[tuple[int, UserError]] = []

        def make() -> Iterator[Event]:
            for i, (kind, body, claims) in enumerate(items):
                try:
                    ev = self._sign_next(kind, body, (), claims=claims)
                except UserError as exc:
                    stop.append((i, exc))
                    return
                made.append(ev)
                yield ev

        async with self._author_lock:
            before = self.stats["events_applied"]
            results = self.admit(make())
            self.stats["events_applied_own"] += self.stats["events_applied"] - before
            for ev, r in zip(made, results, strict=True):
                if r.status != "applied":
                    raise UserError(
                        f"event {ev.id.hex()[:16]} not applied: {r.status} {r.reason or ''}",
                        status=500,
                        code="internal",
                    )
                self.publish(ev.raw)
        return made, (stop[0][0] if stop else None), (stop[0][1] if stop else None)

    def _claims(self) -> list[bytes]:
        credits = self.ledger.replica.state.unclaimed_credits(self.key.public_key)
        return sorted(c for c, _ in credits)[:64]

    async def post_bounty(self, body: dict[str, Any], terms: dict[str, Any] | None = None) -> Event:
        """Post a bounty; with `terms` (a bounty_terms body without `bounty`), write
        them as the very next event of our chain, as PROTOCOL.md requires, in the
        same critical section so nothing of ours comes between."""
        if terms is None:
            return await self.author("bounty", body, claims=True)
        self._check_terms(terms)  # before the bounty: never a bounty without its terms
        async with self._author_lock:
            ev = self._author_locked("bounty", body, (), claims=True)
            t = {**terms, "bounty": ev.id}
            self._author_locked("bounty_terms", t, {ev.id, *t["prereq_bounties"]}, claims=False)
            return ev

    def _check_terms(self, terms: dict[str, Any]) -> None:
        probe = {**terms, "bounty": bytes(32)}
        refs = tuple(sorted({bytes(32), *terms.get("prereq_bounties", [])}))
        try:
            check_body(KINDS["bounty_terms"], probe, refs, self.key.public_key)
        except RemoteProtocolError as exc:
            raise UserError(exc.reason, code="invalid") from exc
        known = self.ledger.replica.state.bounties
        for p in terms["prereq_bounties"]:
            if p not in known:
                raise UserError(
                    f"prerequisite {p.hex()[:16]} is not a bounty this node knows",
                    status=404,
                    code="not_found",
                )

    async def transfer(self, to: bytes, amount: int, memo: str = "") -> Event:
        return await self.author(
            "transfer", {"to": to, "amount": amount, "memo": memo}, claims=True
        )

    async def submit(self, bounty: bytes, text: str, files: list[tuple[str, bytes]]) -> Event:
        """Commit now; keep content and salt; reveal by ourselves once the close lists us."""
        b = self.ledger.replica.state.bounties.get(bounty)
        if b is None:
            raise UserError("no such bounty", status=404, code="not_found")
        if self.now_ms() > b.submit_by:
            raise UserError("the submission deadline has passed", status=409, code="late")
        attachments: list[dict[str, Any]] = []
        for name, data in files:
            if len(data) > self.genesis.params.max_blob_bytes:
                raise UserError(f"{name} is over the network's attachment limit", code="too_large")
            h = self.blobs.put(data)
            attachments.append({"hash": h, "name": name[:128] or "file", "size": len(data)})
        salt = os.urandom(16)
        body = commit_body(bounty, self.key.public_key, text, attachments, salt)
        # The draft (content and salt) is on disk before the commit is signed:
        # a node killed in between still holds what it needs to reveal.
        draft: dict[str, Any] = {
            "bounty": bounty.hex(),
            "commitment": body["commitment"].hex(),
            "commit": None,
            "text": text,
            "salt": salt.hex(),
            "attachments": [
                {"hash": a["hash"].hex(), "name": a["name"], "size": a["size"]} for a in attachments
            ],
            "revealed": None,
        }
        self._save_draft(draft)
        try:
            ev = await self.author("commit", body, [bounty])
        except BaseException:
            (self._drafts_dir / f"{draft['commitment']}.json").unlink(missing_ok=True)
            raise
        draft["commit"] = ev.id.hex()
        self._save_draft(draft)
        return ev

    def _save_draft(self, d: dict[str, Any]) -> None:
        self._drafts_dir.mkdir(mode=0o700, exist_ok=True)
        path = self._drafts_dir / f"{d['commitment']}.json"
        tmp = path.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(json.dumps(d))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def drafts(self) -> list[dict[str, Any]]:
        out = []
        if self._drafts_dir.exists():
            for p in sorted(self._drafts_dir.glob("*.json")):
                try:
                    out.append(json.loads(p.read_text()))
                except (OSError, ValueError):
                    log.warning("unreadable draft %s", p)
        return out

    def _after_apply(self, applied: list[Event]) -> None:
        """Reactions to new events: reveal our accepted drafts, fetch attachments."""
        if not applied or any(e.kind.name == "close" for e in applied):
            self._spawn(self._reveal_ready)
        if self.settings.fetch_attachments:
            for e in applied:
                if e.kind.name == "reveal":
                    for a in e.body["attachments"]:
                        if not self.blobs.has(a["hash"]):
                            self._spawn(self.fetch_blob, a["hash"], a["size"])
        self._after_apply_credentials(applied)

    def _after_apply_credentials(self, applied: list[Event]) -> None:
        """Credentials (node/_credentials.py): fetch the blobs `credential` events
        name; on start, sign those our own awards still lack."""
        from ._credentials import fetch_credential_blobs, issue_missing_credentials

        fetch_credential_blobs(self, applied)
        if not applied:
            self._spawn(issue_missing_credentials, self)

    _spawner: trio.Nursery | None = None

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._spawner is not None:
            self._spawner.start_soon(fn, *args)

    async def _reveal_ready(self) -> None:
        state = self.ledger.replica.state
        me = state.accounts.get(self.key.public_key)
        for d in self.drafts():
            if d.get("revealed"):
                continue
            if d.get("commit") is None:  # killed between saving and signing: find it
                want = bytes.fromhex(d["commitment"])
                found = [
                    cid
                    for cid, c in state.commits.items()
                    if c.commitment == want and c.learner == self.key.public_key
                ]
                if not found:
                    continue
                d["commit"] = found[0].hex()
                self._save_draft(d)
            commit, bounty_id = bytes.fromhex(d["commit"]), bytes.fromhex(d["bounty"])
            b = state.bounties.get(bounty_id)
            if b is None or b.close_id is None or commit not in b.accepted:
                continue
            if me is not None and commit in me.revealed:
                self._mark_revealed(d, "already")
                continue
            atts = [
                {"hash": bytes.fromhex(a["hash"]), "name": a["name"], "size": a["size"]}
                for a in d["attachments"]
            ]
            body = reveal_body(
                bounty_id, commit, b.close_id, d["text"], atts, bytes.fromhex(d["salt"])
            )
            try:
                ev = await self.author("reveal", body, [commit, b.close_id])
            except UserError as exc:
                log.warning("could not reveal %s: %s", d["commit"][:12], exc.message)
                continue
            self._mark_revealed(d, ev.id.hex())
            log.info("revealed submission %s for bounty %s", ev.id.hex()[:12], d["bounty"][:12])

    def _mark_revealed(self, d: dict[str, Any], value: str) -> None:
        d["revealed"] = value
        self._save_draft(d)

    async def close(self, bounty: bytes, accept: list[bytes] | None = None) -> Event:
        b = self.ledger.replica.state.bounties.get(bounty)
        if b is None:
            raise UserError("no such bounty", status=404, code="not_found")
        if b.author != self.key.public_key:
            raise UserError("only the bounty's author closes it", status=403, code="not_mentor")
        accepted = sorted(b.commits) if accept is None else sorted(set(accept))
        return await self.author(
            "close", {"bounty": bounty, "accepted": accepted}, [bounty, *accepted]
        )

    async def review(self, submission: bytes, scores: dict[str, int], comment: str) -> Event:
        found = self.ledger.replica.state.find_submission(submission)
        if found is None:
            raise UserError(
                "no such submission (is it revealed yet?)", status=404, code="not_found"
            )
        b, _ = found
        names = [n for n, _ in b.rubric]
        unknown = set(scores) - set(names)
        if unknown:
            raise UserError(
                f"unknown rubric criteria {sorted(unknown)}; the rubric is {names}",
                code="bad_scores",
            )
        missing = [n for n in names if n not in scores]
        if missing:
            raise UserError(
                f"a score is needed for every criterion; missing {missing}", code="bad_scores"
            )
        body = {
            "bounty": b.id,
            "submission": submission,
            "scores": [scores[n] for n in names],
            "comment": comment,
        }
        return await self.author("review", body, [submission])

    async def award(
        self,
        bounty: bytes,
        winners: dict[bytes, int | None],
        reviewers: str = "median",
        min_trust: int = 0,
    ) -> Event:
        """Pay `winners`; the reviewers' share goes evenly to the reviews judged
        honest by `reviewers`: "median" (§6.4's plain median) or "trusted" (near
        the trust-weighted median of the reviews whose reviewer has at least
        `min_trust` in the bounty's skills, PROTOCOL.md §6.5)."""
        if reviewers not in ("median", "trusted"):
            raise UserError("reviewers is 'median' or 'trusted'", code="bad_request")
        state = self.ledger.replica.state
        try:
            if reviewers == "trusted":
                from learnmesh.protocol._trust import trust_view, trusted_award_body

                view = trust_view(state, self.now_ms())
                body = trusted_award_body(state, view, bounty, winners, min_trust)
            else:
                body = award_body(state, bounty, winners)
        except Exception as exc:
            raise UserError(str(getattr(exc, "reason", exc)), code="invalid") from exc
        refs = [
            bounty,
            *(w["submission"] for w in body["winners"]),
            *(r["review"] for r in body["reviewers"]),
        ]
        ev = await self.author("award", body, refs)
        from ._credentials import issue_credentials  # each winner's signed Open Badge

        await issue_credentials(self, ev)
        return ev

    async def refund(self, bounty: bytes) -> Event:
        return await self.author("refund", {"bounty": bounty}, [bounty])


async def _dispute_duties(node: Node) -> None:
    from ._disputes import duty_loop  # late: node/_disputes.py imports this module

    await duty_loop(node)


def _cap(raws: list[bytes]) -> list[bytes]:
    """Keep a reply under the sync frame limit."""
    out, size = [], 1024
    for r in raws:
        size += len(r) + 8
        if size > MAX_SYNC_FRAME:
            break
        out.append(r)
    return out
