"""Private messages on a node (PROTOCOL.md "Private messages").

- Sealed messages (node/_dm.py) travel on their own GossipSub topic, never in
  the ledger or the state digest. A node keeps the messages it relays for an
  offline recipient in `dm_relay.sqlite`, sealed (it cannot open them), for at
  most 7 days, 200 per recipient and 16 MiB in all, oldest dropped first.
- A node fetches what its peers hold for its account over the stream protocol
  `/learnmesh/<net>/dm-fetch/1.0.0`, when a peer connects and then every 30 s
  (a cursor per peer, so a repeat costs nothing): a request signed by the
  account, so only the recipient can take its messages from a relay.
- Plaintext lives only in `messages.sqlite` on the sender's node (its sent
  copy) and the recipient's (opened on arrival); never in logs.
- Limits: per forwarding peer and per recipient on relays (they cannot see the
  author), per sender on the recipient's node, per send on our own; the
  recipient drops messages from accounts in its blocklist.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from learnmesh.protocol import RemoteProtocolError, canonical_pack, strict_unpack
from learnmesh.protocol._identity import verify_signature

from ._blocklist import Blocklist
from ._dm import (
    MAX_OUTER_BYTES,
    RETENTION_MS,
    DMError,
    Opened,
    Outer,
    decode_outer,
    open_dm,
    seal_dm,
)

if TYPE_CHECKING:
    from ._p2p import P2PHost, P2PStream
    from ._service import Node

__all__ = ["Inbox", "Messages", "RelayStore", "dm_topic", "fetch_protocol"]

log = logging.getLogger("learnmesh.messages")

RELAY_MAX_BYTES = 16 * 1024 * 1024
RELAY_MAX_PER_RECIPIENT = 200
FETCH_PAGE_BYTES = 1024 * 1024
FETCH_SKEW_MS = 5 * 60 * 1000
FETCH_INTERVAL = 30.0
FETCH_DOMAIN = b"learnmesh/dm-fetch/1"
_FETCH_TIMEOUT = 20.0


def dm_topic(network: bytes) -> str:
    return f"/learnmesh/{network.hex()}/dm/1"


def fetch_protocol(network: bytes) -> str:
    return f"/learnmesh/{network.hex()[:32]}/dm-fetch/1.0.0"


def _connect(path: Path) -> sqlite3.Connection:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # created private, before SQLite opens it
    os.close(fd)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


# -- the stores -------------------------------------------------------------------------


class RelayStore:
    """Sealed messages held for their recipients: bounded in time, count and size."""

    def __init__(
        self,
        path: Path,
        max_bytes: int = RELAY_MAX_BYTES,
        per_recipient: int = RELAY_MAX_PER_RECIPIENT,
    ) -> None:
        self.db = _connect(path)
        self.max_bytes = max_bytes
        self.per_recipient = per_recipient
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS relay (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "id BLOB UNIQUE NOT NULL, recipient BLOB NOT NULL, expiry_ms INTEGER NOT NULL, "
            "size INTEGER NOT NULL, raw BLOB NOT NULL)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS relay_recipient ON relay (recipient, seq)")

    def has(self, mid: bytes) -> bool:
        return self.db.execute("SELECT 1 FROM relay WHERE id = ?", (mid,)).fetchone() is not None

    def put(self, outer: Outer, now_ms: int) -> bool:
        """Keep a message; False if it was already here. The oldest go first
        when the recipient's count or the total size is over its bound."""
        self.expire(now_ms)
        cur = self.db.execute(
            "INSERT OR IGNORE INTO relay (id, recipient, expiry_ms, size, raw) VALUES (?,?,?,?,?)",
            (outer.id, outer.recipient, outer.expiry_ms, len(outer.raw), outer.raw),
        )
        if cur.rowcount == 0:
            return False
        self.db.execute(
            "DELETE FROM relay WHERE recipient = ? AND seq NOT IN "
            "(SELECT seq FROM relay WHERE recipient = ? ORDER BY seq DESC LIMIT ?)",
            (outer.recipient, outer.recipient, self.per_recipient),
        )
        total = self.total_bytes()
        while total > self.max_bytes:
            row = self.db.execute("SELECT seq, size FROM relay ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                break
            self.db.execute("DELETE FROM relay WHERE seq = ?", (row[0],))
            total -= row[1]
        return True

    def expire(self, now_ms: int) -> None:
        self.db.execute("DELETE FROM relay WHERE expiry_ms <= ?", (now_ms,))

    def total_bytes(self) -> int:
        return int(self.db.execute("SELECT COALESCE(SUM(size), 0) FROM relay").fetchone()[0])

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM relay").fetchone()[0])

    def for_recipient(
        self, recipient: bytes, after: int, now_ms: int, max_bytes: int = FETCH_PAGE_BYTES
    ) -> tuple[list[bytes], int, bool]:
        """(messages, the cursor to ask from next, whether more remain)."""
        rows = self.db.execute(
            "SELECT seq, raw FROM relay WHERE recipient = ? AND seq > ? AND expiry_ms > ? "
            "ORDER BY seq",
            (recipient, after, now_ms),
        ).fetchall()
        out: list[bytes] = []
        size = 0
        cursor = after
        for seq, raw in rows:
            if out and size + len(raw) > max_bytes:
                return out, cursor, True
            out.append(bytes(raw))
            size += len(raw)
            cursor = seq
        return out, cursor, False


@dataclass(frozen=True, slots=True)
class Stored:
    id: bytes
    peer: bytes  # the other account of the conversation
    outgoing: bool
    sent_ms: int
    received_ms: int
    body: str
    read: bool


class Inbox:
    """This account's own conversations, in plaintext: `messages.sqlite`."""

    def __init__(self, path: Path) -> None:
        self.db = _connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS messages (id BLOB PRIMARY KEY, peer BLOB NOT NULL, "
            "outgoing INTEGER NOT NULL, sent_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, "
            "body TEXT NOT NULL, read INTEGER NOT NULL)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS messages_peer ON messages (peer, sent_ms)")

    def has(self, mid: bytes) -> bool:
        row = self.db.execute("SELECT 1 FROM messages WHERE id = ?", (mid,)).fetchone()
        return row is not None

    def add(self, m: Stored) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,?,?)",
            (m.id, m.peer, int(m.outgoing), m.sent_ms, m.received_ms, m.body, int(m.read)),
        )
        return cur.rowcount > 0

    def conversations(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT peer, COUNT(*), SUM(CASE WHEN outgoing = 0 AND read = 0 THEN 1 ELSE 0 END), "
            "MAX(sent_ms) FROM messages GROUP BY peer ORDER BY MAX(sent_ms) DESC"
        ).fetchall()
        out = []
        for peer, count, unread, last_ms in rows:
            last = self.db.execute(
                "SELECT body, outgoing FROM messages WHERE peer = ? "
                "ORDER BY sent_ms DESC, received_ms DESC LIMIT 1",
                (peer,),
            ).fetchone()
            out.append(
                {
                    "peer": bytes(peer),
                    "count": int(count),
                    "unread": int(unread or 0),
                    "last_ms": int(last_ms),
                    "last_text": last[0],
                    "last_outgoing": bool(last[1]),
                }
            )
        return out

    def conversation(self, peer: bytes, limit: int = 500) -> list[Stored]:
        rows = self.db.execute(
            "SELECT id, peer, outgoing, sent_ms, received_ms, body, read FROM messages "
            "WHERE peer = ? ORDER BY sent_ms DESC, received_ms DESC LIMIT ?",
            (peer, limit),
        ).fetchall()
        return [
            Stored(bytes(r[0]), bytes(r[1]), bool(r[2]), r[3], r[4], r[5], bool(r[6]))
            for r in reversed(rows)
        ]

    def mark_read(self, peer: bytes) -> int:
        cur = self.db.execute(
            "UPDATE messages SET read = 1 WHERE peer = ? AND outgoing = 0 AND read = 0", (peer,)
        )
        return cur.rowcount

    def unread(self) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM messages WHERE outgoing = 0 AND read = 0"
        ).fetchone()
        return int(row[0])


class Bucket:
    """A token bucket: `rate` per second, bursts of `burst`."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Buckets:
    """Token buckets by key, forgetting the idle ones (bounded memory)."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._b: dict[Any, Bucket] = {}

    def take(self, key: Any, now: float) -> bool:
        b = self._b.get(key)
        if b is None:
            if len(self._b) >= self.max_keys:
                full = [
                    k for k, v in self._b.items() if v.tokens + (now - v.last) * v.rate >= v.burst
                ]
                for k in full or list(self._b)[: self.max_keys // 2]:
                    del self._b[k]
            b = self._b[key] = Bucket(self.rate, self.burst, now)
        return b.take(now)


# -- the node's part ---------------------------------------------------------------------


class Messages:
    """Private messages for one node: send, relay, fetch, deliver, list."""

    # per forwarding peer: messages a second (and burst); per recipient on a relay;
    # per sender at the recipient; our own sends
    PEER_RATE = (5.0, 50.0)
    RECIPIENT_RATE = (0.5, 60.0)
    SENDER_RATE = (0.5, 60.0)
    SEND_RATE = (1.0, 30.0)

    def __init__(self, node: Node) -> None:
        self.node = node
        self.network = node.network
        self.topic = dm_topic(node.network)
        self.protocol = fetch_protocol(node.network)
        self.relay = RelayStore(node.data_dir / "dm_relay.sqlite")
        self.inbox = Inbox(node.data_dir / "messages.sqlite")
        self._blocklist: Blocklist | None = None
        self._blocklist_mtime: float | None = None
        self._by_peer = Buckets(*self.PEER_RATE)
        self._by_recipient = Buckets(*self.RECIPIENT_RATE)
        self._by_sender = Buckets(*self.SENDER_RATE)
        self._sends = Bucket(*self.SEND_RATE, now=node.monotonic())
        self._cursors: dict[str, int] = {}  # peer -> its relay cursor for our account
        self._fetching: set[str] = set()
        self._unsent: list[tuple[bytes, int]] = []  # sent while no mesh peer was there
        self.changed = trio.Event()  # set when a message arrives or is sent (the page's stream)
        self.version = 0
        for k in (
            "dm_sent",
            "dm_received",
            "dm_relayed",
            "dm_refused",
            "dm_blocked",
            "dm_rate_limited",
            "dm_fetched",
            "dm_handed_off",
        ):
            node.stats.setdefault(k, 0)

    # -- wiring (called from Node.run) --------------------------------------------------

    async def start(self, host: P2PHost) -> None:
        await host.subscribe(self.topic, self._validate)
        host.set_stream_handler(self.protocol, self._serve_fetch)

    async def run(self) -> None:
        """Fetch from each peer that connects, then from every peer now and then."""
        seen: set[str] = set()
        last_round = self.node.monotonic()
        while True:
            await trio.sleep(1.0)
            try:
                await self._publish_unsent()
                connected = set(self.node.live_peers())
                for gone in seen - connected:
                    self._cursors.pop(gone, None)  # it may come back with another store
                periodic = self.node.monotonic() - last_round >= FETCH_INTERVAL
                if periodic:
                    last_round = self.node.monotonic()
                    self.relay.expire(self.node.now_ms())
                for peer in connected:
                    if (peer not in seen or periodic) and peer not in self._fetching:
                        self._fetching.add(peer)
                        self.node._spawn(self._fetch_guarded, peer)
                seen = connected
            except Exception:  # a bug (or a full disk) here must not end the node
                log.exception("the private message loop failed; trying again")

    # -- sending ----------------------------------------------------------------------

    async def send(self, to: bytes, text: str) -> dict[str, Any]:
        from ._service import UserError

        node = self.node
        if not self._sends.take(node.monotonic()):
            raise UserError(
                "too many messages sent just now; wait a little", status=429, code="rate_limited"
            )
        now = node.now_ms()
        try:
            raw, mid = seal_dm(node.key, self.network, to, text, now, now + RETENTION_MS)
            outer = decode_outer(raw, self.network, now)
        except DMError as exc:
            raise UserError(exc.reason, code=exc.code) from None
        self.inbox.add(Stored(mid, to, True, now, now, text, True))
        self.relay.put(outer, now)  # served to the recipient when it fetches from us
        node.stats["dm_sent"] += 1
        self._changed()
        await self._hand_off(raw, outer.expiry_ms)
        return {"id": mid.hex(), "sent_ms": now, "bytes": len(raw)}

    async def _hand_off(self, raw: bytes, expiry_ms: int) -> None:
        """Give the message to one random neighbour, which publishes it as its
        own (a one-hop stem, as in Dandelion): gossip carries the publishing
        peer's id, so nodes past the first hop see that neighbour as the
        origin, not this node. If no neighbour takes it, publish it ourselves."""
        from ._p2p import P2PError

        p2p = self.node.p2p
        if p2p is not None:
            peers = [p for p in self.node.live_peers() if p2p.speaks(p, self.protocol)]
            random.shuffle(peers)
            for peer in peers[:2]:
                try:
                    with trio.fail_after(_FETCH_TIMEOUT):
                        if await self._push(peer, raw):
                            self.node.stats["dm_handed_off"] += 1
                            return
                except (P2PError, trio.TooSlowError, RemoteProtocolError) as exc:
                    log.info("handing a private message to %s failed: %s", peer, exc)
        await self._publish(raw, expiry_ms)

    async def _push(self, peer: str, raw: bytes) -> bool:
        assert self.node.p2p is not None
        stream = await self.node.p2p.open_stream(peer, self.protocol)
        try:
            await stream.send_frame(canonical_pack({"msg": raw, "t": "dmpush", "v": 1}))
            reply = strict_unpack(await stream.recv_frame(4096), 4096)
        finally:
            await stream.close()
        if not isinstance(reply, dict) or reply.get("t") not in ("dmok", "error"):
            raise RemoteProtocolError("dm_push", "a malformed answer to a hand-off")
        if reply["t"] == "error":
            log.info("peer %s refused a private message: %s", peer, reply.get("reason"))
            return False
        return True

    async def _publish(self, raw: bytes, expiry_ms: int) -> None:
        """Publish now if the topic's mesh has a peer; otherwise (just started,
        or alone) hold it and publish once one is grafted. Our relay store also
        serves it to the recipient's fetch, if the recipient connects to us."""
        from ._p2p import P2PError

        p2p = self.node.p2p
        if p2p is None or not p2p.mesh_peers(self.topic):
            self._unsent.append((raw, expiry_ms))
            del self._unsent[:-RELAY_MAX_PER_RECIPIENT]
            return
        try:
            await p2p.publish(self.topic, raw)
        except P2PError as exc:
            log.warning("publishing a private message failed: %s", exc)
            self._unsent.append((raw, expiry_ms))

    async def _publish_unsent(self) -> None:
        p2p = self.node.p2p
        if not self._unsent or p2p is None or not p2p.mesh_peers(self.topic):
            return
        now = self.node.now_ms()
        todo, self._unsent = self._unsent, []
        for raw, expiry in todo:
            if expiry > now:
                await self._publish(raw, expiry)

    # -- receiving ----------------------------------------------------------------------

    def receive(self, raw: bytes, now_ms: int | None = None) -> str:
        """Take a wire message in (from gossip or a fetch). Returns "delivered"
        (ours, opened, stored), "duplicate", "blocked" (ours, from a blocked
        account: dropped), or "stored" (for another account: kept sealed, and
        to be passed on). Raises DMError with the reason it was refused."""
        node = self.node
        now = node.now_ms() if now_ms is None else now_ms
        outer = decode_outer(raw, self.network, now)
        if outer.recipient == node.key.public_key:
            return self._deliver(outer, now)
        if self.relay.has(outer.id):
            return "duplicate"
        if not self._by_recipient.take(outer.recipient, node.monotonic()):
            node.stats["dm_rate_limited"] += 1
            raise DMError("rate_limited", "too many messages for this recipient just now")
        self.relay.put(outer, now)
        node.stats["dm_relayed"] += 1
        return "stored"

    def _deliver(self, outer: Outer, now: int) -> str:
        opened: Opened = open_dm(outer, self.node.key, now)
        if self.inbox.has(opened.id):
            return "duplicate"  # a replay, or the same message from another relay
        if self._blocked(opened.sender):
            self.node.stats["dm_blocked"] += 1
            return "blocked"
        if not self._by_sender.take(opened.sender, self.node.monotonic()):
            self.node.stats["dm_rate_limited"] += 1
            raise DMError("rate_limited", "too many messages from this sender just now")
        self.inbox.add(
            Stored(opened.id, opened.sender, False, opened.sent_ms, now, opened.body, False)
        )
        self.node.stats["dm_received"] += 1
        self._changed()
        return "delivered"

    def _blocked(self, account: bytes) -> bool:
        """The blocklist file as it is now (another part of the node may edit it)."""
        path = self.node.data_dir / "blocklist.json"
        try:
            mtime: float | None = path.stat().st_mtime
        except OSError:
            mtime = None
        if self._blocklist is None or mtime != self._blocklist_mtime:
            self._blocklist = Blocklist(self.node.data_dir)
            self._blocklist_mtime = mtime
        return self._blocklist.is_blocked(account)

    def _changed(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = trio.Event()

    def _validate(self, peer: str, data: bytes) -> bool:
        """The DM topic's validator: True passes the message on (a sealed message
        for another account, now kept here too); ours and bad ones stop here."""
        node = self.node
        if peer in node.peers.partitioned:
            return False
        if not self._by_peer.take(peer, node.monotonic()):
            node.stats["dm_rate_limited"] += 1
            return False
        try:
            status = self.receive(data)
        except DMError as exc:
            node.stats["dm_refused"] += 1
            node._count("dm_refused", exc.code)
            log.info("private message via %s refused: %s", peer, exc.reason)
            if exc.code in ("malformed", "version", "too_large", "wrong_network"):
                node.penalise(peer, f"dm: {exc.reason}", weight=5.0)  # a relay could tell
            return False
        return status == "stored"

    # -- fetching what peers hold for us ------------------------------------------------

    def _fetch_request(self, peer: str, after: int) -> bytes:
        at = self.node.now_ms()
        sig = self.node.key.sign(_fetch_signed(self.network, peer, at))
        return canonical_pack(
            {
                "account": self.node.key.public_key,
                "after": after,
                "at_ms": at,
                "sig": sig,
                "t": "dmfetch",
                "v": 1,
            }
        )

    async def _fetch_guarded(self, peer: str) -> None:
        try:
            await self.fetch_from(peer)
        except Exception as exc:  # a peer that leaves mid-fetch is not our failure
            log.debug("private message fetch from %s: %s", peer, exc)
        finally:
            self._fetching.discard(peer)

    async def fetch_from(self, peer: str) -> int:
        """Ask `peer` for the messages it holds for our account; returns how many
        were new to us."""
        p2p = self.node.p2p
        if p2p is None or not await p2p.supports(peer, self.protocol, wait=5.0):
            return 0
        got = 0
        with trio.fail_after(_FETCH_TIMEOUT):
            stream = await p2p.open_stream(peer, self.protocol)
            try:
                for _ in range(64):
                    after = self._cursors.get(peer, 0)
                    await stream.send_frame(self._fetch_request(peer, after))
                    reply = strict_unpack(
                        await stream.recv_frame(FETCH_PAGE_BYTES + MAX_OUTER_BYTES + 1024),
                        FETCH_PAGE_BYTES + MAX_OUTER_BYTES + 1024,
                    )
                    msgs, cursor, more = _reply_fields(reply)
                    for raw in msgs:
                        try:
                            if self.receive(raw) == "delivered":
                                got += 1
                        except DMError as exc:
                            self.node.stats["dm_refused"] += 1
                            log.info("fetched private message refused: %s", exc.reason)
                    self._cursors[peer] = max(after, cursor)
                    if not more:
                        break
            finally:
                await stream.close()
        self.node.stats["dm_fetched"] += got
        return got

    async def _serve_fetch(self, stream: P2PStream) -> None:
        peer = stream.remote_peer
        node = self.node
        if peer in node.peers.partitioned:
            return
        served = 0
        while served < 64:
            try:
                data = await stream.recv_frame(MAX_OUTER_BYTES + 1024)
            except Exception:
                return  # the client is done
            try:
                req = strict_unpack(data, MAX_OUTER_BYTES + 1024)
                if isinstance(req, dict) and req.get("t") == "dmpush":
                    await stream.send_frame(await self._take_push(peer, req))
                    return
                account, after = self._check_fetch(req, node.peer_id)
            except RemoteProtocolError as exc:
                node.penalise(peer, f"dm fetch: {exc.reason}", weight=5.0)
                await stream.send_frame(
                    canonical_pack({"reason": exc.reason, "t": "error", "v": 1})
                )
                return
            msgs, cursor, more = self.relay.for_recipient(account, after, node.now_ms())
            await stream.send_frame(
                canonical_pack(
                    {"cursor": cursor, "more": more, "msgs": msgs, "t": "dmmsgs", "v": 1}
                )
            )
            served += 1

    async def _take_push(self, peer: str, req: dict[str, Any]) -> bytes:
        """A neighbour hands us a message to publish as ours (see _hand_off):
        the same checks and limits as gossip, then we publish it."""
        node = self.node
        raw = req.get("msg")
        if req.get("v") != 1 or not isinstance(raw, bytes):
            raise RemoteProtocolError("dm_push", "not a private message hand-off")
        if not self._by_peer.take(peer, node.monotonic()):
            node.stats["dm_rate_limited"] += 1
            return canonical_pack({"reason": "too many messages just now", "t": "error", "v": 1})
        try:
            status = self.receive(raw)
        except DMError as exc:
            node.stats["dm_refused"] += 1
            node._count("dm_refused", exc.code)
            if exc.code in ("malformed", "version", "too_large", "wrong_network"):
                node.penalise(peer, f"dm: {exc.reason}", weight=5.0)
            return canonical_pack({"reason": exc.reason, "t": "error", "v": 1})
        if status == "stored":
            await self._publish(raw, decode_outer(raw, self.network, node.now_ms()).expiry_ms)
        return canonical_pack({"status": status, "t": "dmok", "v": 1})

    def _check_fetch(self, req: Any, my_peer_id: str) -> tuple[bytes, int]:
        if not (
            isinstance(req, dict)
            and req.get("t") == "dmfetch"
            and req.get("v") == 1
            and isinstance(req.get("account"), bytes)
            and len(req["account"]) == 32
            and type(req.get("after")) is int
            and type(req.get("at_ms")) is int
            and isinstance(req.get("sig"), bytes)
        ):
            raise RemoteProtocolError("dm_fetch", "not a private message fetch request")
        if abs(req["at_ms"] - self.node.now_ms()) > FETCH_SKEW_MS:
            raise RemoteProtocolError("dm_fetch", "the fetch request is stale or from the future")
        signed = _fetch_signed(self.network, my_peer_id, req["at_ms"])
        if not verify_signature(req["account"], signed, req["sig"]):
            raise RemoteProtocolError("dm_fetch", "the fetch request is not signed by the account")
        return req["account"], req["after"]


def _fetch_signed(network: bytes, server_peer: str, at_ms: int) -> bytes:
    """What a fetch request signs: only the relay it was made for accepts it."""
    return FETCH_DOMAIN + network + server_peer.encode() + at_ms.to_bytes(8, "big")


def _reply_fields(reply: Any) -> tuple[list[bytes], int, bool]:
    if isinstance(reply, dict) and reply.get("t") == "error":
        raise RemoteProtocolError("dm_fetch", f"the peer refused: {reply.get('reason')}")
    if not (
        isinstance(reply, dict)
        and reply.get("t") == "dmmsgs"
        and isinstance(reply.get("msgs"), list)
        and all(isinstance(m, bytes) for m in reply["msgs"])
        and type(reply.get("cursor")) is int
        and isinstance(reply.get("more"), bool)
    ):
        raise RemoteProtocolError("dm_fetch", "a malformed fetch reply")
    return list(reply["msgs"]), reply["cursor"], reply["more"]
