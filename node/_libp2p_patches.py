"""Every change learnmesh makes to py-libp2p's behaviour, in one place.

py-libp2p is pinned (PINNED_VERSION). Each change below replaces or overrides a
name inside libp2p, and a renamed name upstream would make a plain assignment or
override add an unused attribute, silently turning the change off. So `install()`
first checks the installed version and that every name a change relies on exists
(`check()`), and raises Libp2pMismatch naming the missing piece otherwise; only
then does it patch. The checks cover the subclasses here too (their overrides
only take effect if libp2p still calls those names).

The changes:

- Yamux credit (`YamuxStream._auto_tune_and_send_window_update`, process-wide,
  for our own hosts' connections only): a WINDOW_UPDATE once half the window is
  consumed, as go-yamux does, instead of after nearly every read.
- Sender records (`maybe_consume_signed_record`, swapped in libp2p.pubsub.pubsub
  and libp2p.pubsub.gossipsub): a neighbour's signed peer record that is
  byte-identical to the one last verified from it is not re-verified on every RPC.
- Our own record (`env_to_send_in_RPC`, same two modules): rebuilt at most every
  few seconds rather than for every RPC sent.
- `LearnmeshGossipSub` (a GossipSub subclass): IDONTWANT only for large
  payloads and never back to the forwarder or origin; own messages flood to
  every topic peer; libp2p's scorer off; the message cache keyed by the
  content-addressed message id; IWANT capped (`max_iwant` ids asked for per
  IHAVE, and served per IWANT), as go-libp2p caps it (MaxIHaveLength): libp2p
  asks for, and serves, every id an IHAVE lists.
- `LearnmeshPubsub` (a Pubsub subclass): each received message handled in its
  stream's reader (no task per message), reading whatever the muxer buffered;
  an RPC over the size cap or one that does not parse is reported to
  `on_bad_rpc` before the stream is reset.
- Dial delay (`libp2p.network.swarm._HAPPY_EYEBALLS_DELAY`, process-wide): 0
  instead of 250 ms. libp2p's dial waits that long after starting each
  address's dial, the last one included, unless a dial fails: every successful
  connect took at least 250 ms (measured 252-254 ms on loopback, 8-42 ms
  without). learnmesh dials TCP only, one address per peer, so the head start
  it gives a preferred transport has nothing to prefer.
- `message_id`: the gossip message id is SHA-256 of the message data (PROTOCOL.md
  §11), so every implementation computes the same id for the same bytes.

Measured (10 node processes, 5 msgs/s of 400 B): about 13-23 ms of CPU per message
per node without the first three and the subclasses, 4-5 ms with them.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from types import ModuleType
from typing import Any

import libp2p.network.swarm as _swarm_mod
import libp2p.protocol_muxer.multiselect_client as _multiselect_client_mod
import libp2p.pubsub.gossipsub as _gossipsub_mod
import libp2p.pubsub.mcache as _mcache_mod
import libp2p.pubsub.pubsub as _pubsub_mod
import trio
from google.protobuf.message import DecodeError
from libp2p.abc import IHost, INetStream
from libp2p.host.basic_host import BasicHost
from libp2p.io.exceptions import IOException, MessageTooLarge
from libp2p.peer.id import ID
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.protocol_muxer.exceptions import MultiselectClientError
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.mcache import CacheEntry, MessageCache
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.utils import maybe_consume_signed_record, safe_bytes_from_hex
from libp2p.stream_muxer.yamux.yamux import Yamux, YamuxStream

from . import _libp2p_slim

__all__ = [
    "PINNED_VERSION",
    "LearnmeshGossipSub",
    "LearnmeshPubsub",
    "Libp2pMismatch",
    "check",
    "forget_peer",
    "install",
    "installed",
    "message_id",
    "register_host",
]

log = logging.getLogger(__name__)

PINNED_VERSION = "0.8.1"


class Libp2pMismatch(RuntimeError):
    """The installed py-libp2p is not the one these patches were written for."""


# ---- the checks ------------------------------------------------------------------


def _installed_version() -> str:
    return _libp2p_slim.installed_version("libp2p")


def _has_method(owner: type | ModuleType, name: str) -> bool:
    return callable(getattr(owner, name, None))


def _sets_attribute(cls: type, name: str) -> bool:
    """True if ``cls.__init__`` assigns ``self.<name>`` (instance attributes do
    not exist on the class, so their presence is read from the constructor)."""
    # The names its code stores or loads, not its source: reading and tokenizing
    # the source file cost 30-40 ms of every node's start.
    code = getattr(vars(cls).get("__init__"), "__code__", None)
    return code is not None and name in code.co_names


# (owner, name, kind, what the patch does). kind: "fn" a function or method that
# must exist; "attr" an instance attribute the class's constructor must set;
# "float" a module-level number.
_Requirement = tuple[type | ModuleType, str, str, str]

_REQUIREMENTS: list[_Requirement] = [
    # Yamux credit at half window
    (YamuxStream, "_auto_tune_and_send_window_update", "fn", "yamux credit"),
    (YamuxStream, "_grow_threshold", "fn", "yamux credit"),
    (YamuxStream, "_apply_autotune_epoch", "fn", "yamux credit"),
    (YamuxStream, "send_window_update", "fn", "yamux credit"),
    (YamuxStream, "conn", "attr", "yamux credit"),
    (YamuxStream, "stream_id", "attr", "yamux credit"),
    (YamuxStream, "recv_window", "attr", "yamux credit"),
    (YamuxStream, "target_recv_window", "attr", "yamux credit"),
    (YamuxStream, "window_lock", "attr", "yamux credit"),
    (Yamux, "stream_buffers", "attr", "yamux credit"),
    (Yamux, "secured_conn", "attr", "yamux credit"),
    # Sender records verified once per neighbour; our own record reused
    (_pubsub_mod, "maybe_consume_signed_record", "fn", "cached sender records"),
    (_gossipsub_mod, "maybe_consume_signed_record", "fn", "cached sender records"),
    (_pubsub_mod, "env_to_send_in_RPC", "fn", "reused own record"),
    (_gossipsub_mod, "env_to_send_in_RPC", "fn", "reused own record"),
    # LearnmeshGossipSub overrides
    (GossipSub, "publish", "fn", "LearnmeshGossipSub (IDONTWANT, flood publish)"),
    (GossipSub, "_get_peers_to_send", "fn", "LearnmeshGossipSub (flood publish)"),
    (GossipSub, "_emit_idontwant_for_message", "fn", "LearnmeshGossipSub (IDONTWANT)"),
    (GossipSub, "emit_idontwant", "fn", "LearnmeshGossipSub (IDONTWANT)"),
    (GossipSub, "scorer", "attr", "LearnmeshGossipSub (scoring off)"),
    (GossipSub, "mcache", "attr", "LearnmeshGossipSub (content-addressed message cache)"),
    (GossipSub, "mesh", "attr", "LearnmeshGossipSub (IDONTWANT)"),
    (GossipSub, "peer_protocol", "attr", "LearnmeshGossipSub (flood publish)"),
    (GossipSub, "handle_ihave", "fn", "LearnmeshGossipSub (IWANT cap)"),
    (GossipSub, "handle_iwant", "fn", "LearnmeshGossipSub (IWANT cap)"),
    (MessageCache, "put", "fn", "content-addressed message cache"),
    (MessageCache, "msgs", "attr", "content-addressed message cache"),
    (MessageCache, "history", "attr", "content-addressed message cache"),
    (_mcache_mod, "CacheEntry", "fn", "content-addressed message cache"),
    # LearnmeshPubsub overrides and what its reader calls
    (Pubsub, "continuously_read_stream", "fn", "LearnmeshPubsub (reader)"),
    (Pubsub, "push_msg", "fn", "LearnmeshPubsub (reader)"),
    (Pubsub, "handle_subscription", "fn", "LearnmeshPubsub (reader)"),
    (Pubsub, "_is_subscribed_to_msg", "fn", "LearnmeshPubsub (reader)"),
    (Pubsub, "_handle_dead_peer", "fn", "LearnmeshPubsub (reader)"),
    (Pubsub, "get_message_id", "fn", "content-addressed message ids"),
    (Pubsub, "max_inbound_rpc_size", "attr", "LearnmeshPubsub (reader)"),
    (Pubsub, "max_subscriptions_per_rpc", "attr", "LearnmeshPubsub (reader)"),
    (Pubsub, "_msg_id_constructor", "attr", "content-addressed message ids"),
    (Pubsub, "counter", "attr", "P2PHost seqno start"),
    (Pubsub, "peer_topics", "attr", "LearnmeshGossipSub (flood publish)"),
    # identify push when a protocol handler is added after peers connected
    (BasicHost, "_push_identify_to_all_peers", "fn", "push_identify"),
    # no 250 ms wait after a connect's only dial
    (_swarm_mod, "_HAPPY_EYEBALLS_DELAY", "float", "dial delay"),
    # telling "does not speak this protocol" from a failed stream
    (_multiselect_client_mod, "_build_protocols_not_supported_message", "fn", "protocol_refused"),
]


def _name(owner: type | ModuleType) -> str:
    return owner.__name__


def check() -> None:
    """Raise Libp2pMismatch unless libp2p is the pinned version and every name the
    patches rely on is where they expect it."""
    found = _installed_version()
    if found != PINNED_VERSION:
        raise Libp2pMismatch(f"learnmesh needs libp2p {PINNED_VERSION}; found {found}")
    if "msg_id_constructor" not in inspect.signature(Pubsub.__init__).parameters:
        raise Libp2pMismatch(
            "libp2p changed: Pubsub() takes no msg_id_constructor; "
            "the content-addressed message id cannot apply"
        )
    for owner, name, kind, what in _REQUIREMENTS:
        if kind == "fn":
            ok = _has_method(owner, name)
        elif kind == "float":
            ok = isinstance(getattr(owner, name, None), float)
        else:
            ok = _sets_attribute(owner, name)  # type: ignore[arg-type]
        if not ok:
            raise Libp2pMismatch(
                f"libp2p changed: {_name(owner)}.{name} is missing; "
                f"the patch for {what} cannot apply"
            )


# ---- the process-wide patches -------------------------------------------------------

_OUR_PEERS: set[ID] = set()  # local peer ids of every P2PHost in this process
_RECORD_RECHECK_S = 300.0  # re-run the full check (and peerstore TTL refresh) this often
_LOCAL_RECORD_TTL_S = 5.0  # our own record is rebuilt at most this often
_RECORD_CACHE_MAX = 4096
# host -> {neighbour: (its last verified senderRecord bytes, when)}
_RECORD_CACHE: weakref.WeakKeyDictionary[IHost, dict[ID, tuple[bytes, float]]] = (
    weakref.WeakKeyDictionary()
)
# host -> (our own senderRecord bytes, when built)
_LOCAL_RECORD: weakref.WeakKeyDictionary[IHost, tuple[bytes, float]] = weakref.WeakKeyDictionary()
# The originals, kept so a test can show what each patch changes.
ORIGINALS: dict[str, Any] = {
    "maybe_consume_signed_record": maybe_consume_signed_record,
    "env_to_send_in_RPC": env_to_send_in_RPC,
    "_auto_tune_and_send_window_update": YamuxStream._auto_tune_and_send_window_update,
    "_HAPPY_EYEBALLS_DELAY": _swarm_mod._HAPPY_EYEBALLS_DELAY,  # type: ignore[attr-defined]
}
_installed = False
DIAL_DELAY_S = 0.0  # libp2p's head start between a peer's addresses (250 ms)


def installed() -> bool:
    return _installed


def register_host(host: IHost, peer: ID) -> None:
    """Apply the process-wide patches to this host's connections."""
    _OUR_PEERS.add(peer)
    _RECORD_CACHE[host] = {}


def forget_peer(host: IHost, peer: ID) -> None:
    """A neighbour left: its next record gets libp2p's full check again."""
    _RECORD_CACHE.get(host, {}).pop(peer, None)


def _consume_cached(msg: rpc_pb2.RPC, host: IHost, peer_id: ID) -> bool:
    consume = ORIGINALS["maybe_consume_signed_record"]
    seen = _RECORD_CACHE.get(host)
    if seen is None or not msg.HasField("senderRecord"):
        return bool(consume(msg, host, peer_id))
    record = msg.senderRecord
    now = time.monotonic()
    hit = seen.get(peer_id)
    if hit is not None and hit[0] == record and now - hit[1] < _RECORD_RECHECK_S:
        return True
    if not consume(msg, host, peer_id):
        return False
    if len(seen) >= _RECORD_CACHE_MAX:
        seen.clear()
    seen[peer_id] = (record, now)
    return True


def _envelope_cached(host: IHost) -> tuple[bytes, bool]:
    envelope_for = ORIGINALS["env_to_send_in_RPC"]
    if host not in _RECORD_CACHE:
        return envelope_for(host)  # type: ignore[no-any-return]
    now = time.monotonic()
    hit = _LOCAL_RECORD.get(host)
    if hit is not None and now - hit[1] < _LOCAL_RECORD_TTL_S:
        return hit[0], False
    envelope, fresh = envelope_for(host)
    _LOCAL_RECORD[host] = (envelope, now)
    return envelope, fresh


async def _credit_at_half_window(self: YamuxStream, *, bytes_read: int = 0) -> None:
    conn: Any = self.conn
    ours = getattr(conn, "_learnmesh_ours", None)
    if ours is None:
        try:
            ours = conn.secured_conn.get_local_peer() in _OUR_PEERS
        except Exception:
            ours = False
        conn._learnmesh_ours = ours
    if not ours:
        await ORIGINALS["_auto_tune_and_send_window_update"](self, bytes_read=bytes_read)
        return

    def consumed_credit() -> tuple[int, int]:
        buffered = len(conn.stream_buffers.get(self.stream_id, b""))
        return self.target_recv_window - (self.recv_window + buffered), buffered

    consumed, _ = consumed_credit()
    if consumed < max(1, self._grow_threshold()):
        return  # the common case: no lock, no checkpoint
    async with self.window_lock:
        consumed, buffered = consumed_credit()
        if consumed < max(1, self._grow_threshold()):
            return
        self.recv_window += consumed
        consumed += self._apply_autotune_epoch(buffered)  # grows a busy window
    await self.send_window_update(consumed, skip_lock=True)


def install() -> None:
    """Check libp2p, then apply the process-wide patches (once per process).

    - Yamux: ``YamuxStream._auto_tune_and_send_window_update`` sends a WINDOW_UPDATE
      frame (a Noise encryption and a socket write here, a decryption there) after
      nearly every read, and pubsub reads each RPC in 2-3 reads. For our connections
      credit is returned once half the window is consumed, as go-yamux does; the
      256 KiB window still bounds what a peer can send ahead of our reads.
    - GossipSub puts a signed peer record (``senderRecord``) in every RPC, and both
      ``Pubsub.continuously_read_stream`` and ``GossipSub.handle_rpc`` verify it
      (Ed25519, envelope and multiaddr parsing, a peerstore rewrite) on every RPC.
      For our hosts, a record byte-identical to the one last verified from the same
      neighbour is accepted without redoing that, for up to _RECORD_RECHECK_S; any
      other record gets libp2p's full check. The names are swapped in the two pubsub
      modules that call them, not in libp2p.pubsub.utils / libp2p.peer.peerstore.
    - ``env_to_send_in_RPC`` rebuilds our listen multiaddrs on every RPC sent just to
      see that our record is still current; for our hosts it is reused for
      _LOCAL_RECORD_TTL_S.
    - libp2p's dial gives each of a peer's addresses a 250 ms head start over
      the next and waits it out after the last one too, so every connect took
      250 ms; learnmesh dials one TCP address per peer, so no wait
      (DIAL_DELAY_S).
    """
    global _installed
    if _installed:
        return
    check()
    for mod in (_pubsub_mod, _gossipsub_mod):
        mod.maybe_consume_signed_record = _consume_cached  # type: ignore[attr-defined]
        mod.env_to_send_in_RPC = _envelope_cached  # type: ignore[attr-defined]
    YamuxStream._auto_tune_and_send_window_update = _credit_at_half_window  # type: ignore[method-assign]
    _swarm_mod._HAPPY_EYEBALLS_DELAY = DIAL_DELAY_S  # type: ignore[attr-defined]
    _installed = True


# ---- message ids -------------------------------------------------------------------


def message_id(msg: rpc_pb2.Message) -> bytes:
    """The gossip message id: SHA-256 of the message's data, 32 bytes. The same
    bytes from any origin are one message (PROTOCOL.md §11)."""
    return hashlib.sha256(msg.data).digest()


class _ContentMessageCache(MessageCache):
    """libp2p's message cache keys entries by ``from || seqno`` whatever id
    function Pubsub was given, so the ids it announces in IHAVE and looks up for
    IWANT would not be the ids every other table uses. Keyed by ``message_id``."""

    def put(self, msg: rpc_pb2.Message) -> None:
        mid = message_id(msg)
        if mid in self.msgs:
            return
        self.msgs[mid] = msg
        self.history[0].append(CacheEntry(mid, msg.topicIDs))


# ---- GossipSub -------------------------------------------------------------------

_GOSSIP_PROTOCOLS = frozenset({PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID})


class LearnmeshGossipSub(GossipSub):
    """GossipSub whose IDONTWANT (v1.2) goes only with payloads of at least
    ``idontwant_min_bytes``, and never to the peer that forwarded the message or
    its origin. libp2p sends one to every mesh peer for every message: for small
    messages that is an extra RPC per peer costing as much as the message itself.
    Its message cache uses the content-addressed id.

    IWANT is capped at ``max_iwant`` message ids, both asked for (per IHAVE
    received) and served (per IWANT received). libp2p 0.8.1 asks for every
    unseen id an IHAVE lists and answers an IWANT with all of them in one RPC.
    After a partition heals, each side's IHAVE lists every message of the last
    few heartbeats (thousands under a burst of one-event messages), so each
    side pulled the other's recent traffic twice: once by sync, in bulk, and
    again as gossip, each message validated and admitted on its own. go-libp2p
    caps the same thing (MaxIHaveLength). What the
    cap leaves out is fetched by sync, which runs with every new connection."""

    def __init__(
        self, *args: Any, idontwant_min_bytes: int, max_iwant: int = 64, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._max_iwant = max_iwant
        # libp2p's peer scoring runs on every message and every mesh peer; the node
        # keeps its own scores (penalties and bans for invalid data), so it is off.
        self.scorer = None
        self.mcache = _ContentMessageCache(self.mcache.window_size, self.mcache.history_size)
        self._idontwant_min = idontwant_min_bytes
        self._idontwant_skip: dict[bytes, tuple[ID, ID]] = {}

    async def handle_ihave(self, ihave_msg: rpc_pb2.ControlIHave, sender_peer_id: ID) -> None:
        ids = ihave_msg.messageIDs
        if len(ids) > self._max_iwant and self.pubsub is not None:
            # The newest unseen ones: the cache lists oldest first. (Ids arrive as
            # the text libp2p puts on the wire; libp2p parses them itself.)
            seen = self.pubsub.seen_messages
            unseen = [m for m in ids if not _seen_wire_id(seen, m)]
            capped = rpc_pb2.ControlIHave(topicID=ihave_msg.topicID)
            capped.messageIDs.extend(unseen[-self._max_iwant :])
            ihave_msg = capped
        await super().handle_ihave(ihave_msg, sender_peer_id)

    async def handle_iwant(self, iwant_msg: rpc_pb2.ControlIWant, sender_peer_id: ID) -> None:
        if len(iwant_msg.messageIDs) > self._max_iwant:
            capped = rpc_pb2.ControlIWant()
            capped.messageIDs.extend(iwant_msg.messageIDs[: self._max_iwant])
            iwant_msg = capped
        await super().handle_iwant(iwant_msg, sender_peer_id)

    async def publish(self, msg_forwarder: ID, pubsub_msg: rpc_pb2.Message) -> None:
        big = len(pubsub_msg.data) >= self._idontwant_min and self.pubsub is not None
        if big:
            assert self.pubsub is not None
            msg_id = self.pubsub.get_message_id(pubsub_msg)
            self._idontwant_skip[msg_id] = (msg_forwarder, ID(pubsub_msg.from_id))
        try:
            await super().publish(msg_forwarder, pubsub_msg)
        finally:
            if big:
                self._idontwant_skip.pop(msg_id, None)

    def _get_peers_to_send(
        self,
        topic_ids: Iterable[str],
        msg_forwarder: ID,
        origin: ID,
        msg_id: bytes | None = None,
    ) -> Iterable[ID]:
        """Our own messages go to every neighbour in the topic, mesh or not (go-libp2p's
        flood publish); forwarded ones follow the mesh. A node that just connected has
        an empty mesh until its next heartbeat grafts one: without this its first
        events would reach nobody until a sync round."""
        topic_ids = list(topic_ids)
        peers = set(super()._get_peers_to_send(topic_ids, msg_forwarder, origin, msg_id))
        if self.pubsub is not None and msg_forwarder == self.pubsub.my_id:
            for topic in topic_ids:
                for peer in self.pubsub.peer_topics.get(topic, ()):
                    if self.peer_protocol.get(peer) in _GOSSIP_PROTOCOLS:
                        peers.add(peer)
            peers.discard(msg_forwarder)
        return peers

    async def _emit_idontwant_for_message(self, msg_id: bytes, topic_ids: Any) -> None:
        skip = self._idontwant_skip.pop(msg_id, None)
        if skip is None:
            return  # small message (or one libp2p publishes some other way)
        peers: set[ID] = set()
        for topic in topic_ids:
            peers.update(self.mesh.get(topic, ()))
        for peer in peers.difference(skip):
            # We offer at most v1.2, so no peer negotiates a later version.
            if self.peer_protocol.get(peer) == PROTOCOL_ID_V12:
                await self.emit_idontwant([msg_id], peer)


def _seen_wire_id(seen: Any, wire_id: str | bytes) -> bool:
    mid = safe_bytes_from_hex(wire_id)
    return mid is not None and bool(seen.has(mid))


# ---- Pubsub --------------------------------------------------------------------------

_READ_BYTES = 256 * 1024


class _FrameError(Exception):
    pass


def _take_frame(buf: bytearray, limit: int) -> bytes | None:
    """Remove and return one uvarint-length-prefixed frame from the front of
    `buf`, or None if it is not all there yet."""
    size = shift = 0
    for i in range(min(len(buf), 10)):
        b = buf[i]
        size |= (b & 0x7F) << shift
        if not b & 0x80:
            if size > limit:
                raise MessageTooLarge(f"RPC of {size} bytes exceeds {limit}")
            end = i + 1 + size
            if len(buf) < end:
                return None
            frame = bytes(buf[i + 1 : end])
            del buf[:end]
            return frame
        shift += 7
    if len(buf) >= 10:
        raise _FrameError("length prefix longer than 10 bytes")
    return None


BadRpcReport = Callable[[ID, str], None]


class LearnmeshPubsub(Pubsub):
    """Pubsub that handles each received message in its stream's reader task.

    libp2p 0.8.1 spawns a service task per received message (``manager.run_task``)
    just to run ``push_msg``, whose only wait is the send queue; that spawn and
    its bookkeeping cost about as much as the message's validation. Here the
    reader awaits ``push_msg`` itself: messages from one neighbour are handled in
    order, and a slow one holds back only that neighbour's stream. Otherwise the
    loop is libp2p's ``continuously_read_stream``, except that an RPC larger than
    ``max_inbound_rpc_size`` or one that does not parse is reported to
    ``on_bad_rpc(peer, reason)`` (libp2p only resets the stream: free for the
    sender) before the stream is reset. A message of at least
    ``prevalidate_bytes`` not seen before is first handed to ``prevalidate(peer,
    msg)``, awaited in the same reader task: libp2p's topic validator is
    synchronous, so a large message's checks (hundreds of signatures) would
    otherwise hold the event loop; the hook can do them on worker threads
    first and leave the result for the validator.
    """

    on_bad_rpc: BadRpcReport | None = None
    prevalidate: Callable[[ID, rpc_pb2.Message], Awaitable[None]] | None = None
    prevalidate_bytes: int = 1 << 62

    async def continuously_read_stream(self, stream: INetStream) -> None:
        peer_id = stream.muxed_conn.peer_id
        buf = bytearray()
        limit = self.max_inbound_rpc_size
        try:
            while self.manager.is_running:
                frame = _take_frame(buf, limit)
                if frame is None:
                    # Whatever the muxer has buffered, in one read: libp2p reads the
                    # varint prefix byte by byte, a lock and a checkpoint per byte.
                    chunk = await stream.read(_READ_BYTES)
                    if not chunk:
                        return
                    buf += chunk
                    continue
                rpc_incoming = rpc_pb2.RPC()
                rpc_incoming.ParseFromString(frame)
                # Looked up at call time: install() swaps this name.
                consume = _pubsub_mod.maybe_consume_signed_record  # type: ignore[attr-defined]
                if not consume(rpc_incoming, self.host, peer_id):
                    log.debug("invalid signed record from %s: RPC ignored", peer_id)
                    continue
                for msg in rpc_incoming.publish:
                    if self._is_subscribed_to_msg(msg) and self.manager.is_running:
                        try:
                            pre = self.prevalidate
                            if (
                                pre is not None
                                and len(msg.data) >= self.prevalidate_bytes
                                and not self._is_msg_seen(msg)
                            ):
                                await pre(peer_id, msg)
                            await self.push_msg(peer_id, msg)
                        except (trio.Cancelled, KeyboardInterrupt):
                            raise
                        except Exception:  # one bad message must not end the stream
                            log.debug("push_msg from %s failed", peer_id, exc_info=True)
                subs = rpc_incoming.subscriptions
                if subs and len(subs) <= self.max_subscriptions_per_rpc:
                    for sub in subs:
                        self.handle_subscription(peer_id, sub)
                if rpc_incoming.HasField("control"):
                    await self.router.handle_rpc(rpc_incoming, peer_id)
        except (MessageTooLarge, _FrameError, DecodeError) as exc:
            log.debug("bad pubsub RPC from %s (%s): stream reset", peer_id, exc)
            report = self.on_bad_rpc
            if report is not None:
                try:
                    report(peer_id, f"gossip: bad pubsub RPC: {exc}")
                except Exception:
                    log.exception("on_bad_rpc for %s raised", peer_id)
            with contextlib.suppress(Exception):
                await stream.reset()
            self._handle_dead_peer(peer_id)
        except IOException:  # EOF, reset, closed connection: the peer is gone
            log.debug("pubsub stream from %s ended", peer_id)


# ---- stream negotiation --------------------------------------------------------------


def protocol_refused(exc: BaseException) -> bool:
    """True if ``host.new_stream`` failed because the peer answered "na" to every
    protocol offered (multistream-select), as opposed to a timeout or a dead
    connection. libp2p 0.8.1 raises StreamFailure from a MultiselectClientError
    whose message starts "protocols not supported"."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, MultiselectClientError) and str(cause).startswith(
            "protocols not supported"
        ):
            return True
        cause = cause.__cause__
    return False


async def push_identify(host: IHost) -> None:
    """Tell connected peers our protocols again (identify push). libp2p pushes
    when its listen addresses change but not when a stream handler is added, so
    a peer that identified us before the handler existed would never learn of it."""
    push = getattr(host, "_push_identify_to_all_peers", None)
    if push is None:
        return
    try:
        await push()
    except Exception:  # best effort, as libp2p's own pushes are
        log.debug("identify push failed", exc_info=True)
