"""Thin trio wrapper over py-libp2p 0.8.1: Noise-only host, GossipSub, framed streams.

It moves bytes and knows nothing about learnmesh events; every libp2p quirk stays here.

py-libp2p spends several milliseconds of CPU per gossip message per node; three
process-wide adjustments, installed by the first P2PHost and applied only to our
own hosts' connections (see _install_libp2p_patches), cut that about fourfold:
yamux credit returned per half window instead of on every read, each neighbour's
signed peer record verified once instead of on every RPC, our own record built
once every few seconds instead of per RPC. IDONTWANT is limited to large
messages and libp2p's peer scoring is off (_GossipSub); received messages are
handled in their stream's reader, which reads whatever the muxer has buffered
instead of a byte at a time (_Pubsub); the mesh is 3 neighbours, not 6
(P2PConfig). libp2p's per-message signature is optional (P2PConfig.sign_messages).
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import libp2p.pubsub.gossipsub as _gossipsub_mod
import libp2p.pubsub.pubsub as _pubsub_mod
import multiaddr
import trio
from google.protobuf.message import DecodeError
from libp2p import new_host
from libp2p.abc import (
    IHost,
    INetConn,
    INetStream,
    INetwork,
    INotifee,
    IRawConnection,
    ISecureConn,
)
from libp2p.crypto import ed25519, x25519
from libp2p.custom_types import TProtocol
from libp2p.io.exceptions import IOException, MessageTooLarge
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.utils import maybe_consume_signed_record
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import YamuxStream
from libp2p.tools.anyio_service import background_trio_service

__all__ = ["P2PConfig", "P2PError", "P2PHost", "P2PStream", "Validator"]

log = logging.getLogger(__name__)

Validator = Callable[[str, bytes], bool]
StreamHandler = Callable[["P2PStream"], Awaitable[None]]

_FRAME_HEADER = 4  # 4-byte big-endian length prefix
# Room for the protobuf envelope (signature, key, topic, seqno) around the payload.
_RPC_OVERHEAD = 64 * 1024


class P2PError(Exception):
    """Any networking failure, with a message fit for logs and users."""


@dataclass(frozen=True, kw_only=True)
class P2PConfig:
    identity_seed: bytes  # 32 bytes -> stable ed25519 identity
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    heartbeat_interval: float = 1.0
    max_message_bytes: int = 512 * 1024
    max_frame_bytes: int = 4 * 1024 * 1024  # cap for send_frame
    inbox_size: int = 1024  # messages() buffer; overflow is dropped and counted
    connect_timeout: float = 20.0
    # GossipSub's mesh: 3 neighbours (2..4) rather than the spec's 6 (4..12). A
    # learnmesh node has a few connections, and every extra mesh link is one more
    # copy of each message to send, receive, decrypt and parse (about 0.9 ms of
    # CPU per event per link here); sync repairs what a thin mesh misses.
    mesh_degree: int = 3
    mesh_degree_low: int = 2
    mesh_degree_high: int = 4
    # libp2p's StrictSign: every message signed by its origin and checked at every
    # hop. All nodes of a network must agree: a signing node drops unsigned
    # messages. Off, the origin peer id in messages() is only a claim (any
    # neighbour can forge it), so never punish it; learnmesh payloads carry their
    # own author signatures, checked by the validator. Turning it off saved no
    # measurable CPU (4.8 vs 4.9 ms per message per node), so it stays on.
    sign_messages: bool = True
    # GossipSub v1.2 IDONTWANT, one control RPC per mesh peer per message, only
    # for payloads of at least this many bytes (go-libp2p's threshold is 1 KiB).
    idontwant_min_bytes: int = 1024
    # Find peers on the local network by mDNS and dial them. Multicast: off for
    # loopback devnets and tests.
    mdns: bool = False


class P2PStream:
    """A libp2p stream carrying length-prefixed frames."""

    def __init__(self, stream: INetStream, max_frame_bytes: int) -> None:
        self._stream = stream
        self._max_frame = max_frame_bytes
        self.remote_peer: str = stream.muxed_conn.peer_id.to_base58()

    async def send_frame(self, data: bytes) -> None:
        if len(data) > self._max_frame:
            raise P2PError(f"frame of {len(data)} bytes exceeds cap {self._max_frame}")
        try:
            await self._stream.write(len(data).to_bytes(_FRAME_HEADER, "big") + data)
        except Exception as exc:  # libp2p raises a zoo of stream/muxer errors
            raise P2PError(f"send to {self.remote_peer} failed: {exc!r}") from exc

    async def recv_frame(self, max_bytes: int) -> bytes:
        size = int.from_bytes(await self._read_exactly(_FRAME_HEADER), "big")
        if size > max_bytes:
            # The rest of the stream is unusable once we refuse a frame; reset it.
            await self._reset()
            raise P2PError(f"frame of {size} bytes from {self.remote_peer} exceeds {max_bytes}")
        return await self._read_exactly(size)

    async def close(self) -> None:
        try:
            await self._stream.close()
        except Exception:  # already closed/reset by the peer: nothing left to do
            log.debug("close of stream to %s failed", self.remote_peer, exc_info=True)

    async def _reset(self) -> None:
        try:
            await self._stream.reset()
        except Exception:
            log.debug("reset of stream to %s failed", self.remote_peer, exc_info=True)

    async def _read_exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = await self._stream.read(n - len(buf))
            except Exception as exc:
                raise P2PError(f"read from {self.remote_peer} failed: {exc!r}") from exc
            if not chunk:
                raise P2PError(f"stream from {self.remote_peer} ended mid-frame")
            buf += chunk
        return bytes(buf)


# ---- py-libp2p CPU per message ------------------------------------------------------
#
# Measured (10 node processes, 5 msgs/s of 400 B): about 13-23 ms CPU per message per
# node before, 4-5 ms after. Each piece only touches connections and hosts of ours
# (_OUR_PEERS, _RECORD_CACHE) and falls through to libp2p's code for anything else.

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
_patched = False


def _install_libp2p_patches() -> None:
    """Replace three hot spots of py-libp2p 0.8.1, once per process.

    - Yamux: ``YamuxStream._auto_tune_and_send_window_update`` sends a WINDOW_UPDATE
      frame (a Noise encryption and a socket write here, a decryption there) after
      nearly every read, and pubsub reads each RPC in 2-3 reads (the varint prefix
      byte by byte). For our connections credit is returned once half the window is
      consumed, as go-yamux does; the 256 KiB window still bounds what a peer can send
      ahead of our reads.
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
    """
    global _patched
    if _patched:
        return
    _patched = True
    consume = maybe_consume_signed_record
    envelope_for = env_to_send_in_RPC
    autotune = YamuxStream._auto_tune_and_send_window_update

    def consume_cached(msg: rpc_pb2.RPC, host: IHost, peer_id: ID) -> bool:
        seen = _RECORD_CACHE.get(host)
        if seen is None or not msg.HasField("senderRecord"):
            return consume(msg, host, peer_id)
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

    def envelope_cached(host: IHost) -> tuple[bytes, bool]:
        if host not in _RECORD_CACHE:
            return envelope_for(host)
        now = time.monotonic()
        hit = _LOCAL_RECORD.get(host)
        if hit is not None and now - hit[1] < _LOCAL_RECORD_TTL_S:
            return hit[0], False
        envelope, fresh = envelope_for(host)
        _LOCAL_RECORD[host] = (envelope, now)
        return envelope, fresh

    async def credit_at_half_window(self: YamuxStream, *, bytes_read: int = 0) -> None:
        conn: Any = self.conn
        ours = getattr(conn, "_learnmesh_ours", None)
        if ours is None:
            try:
                ours = conn.secured_conn.get_local_peer() in _OUR_PEERS
            except Exception:
                ours = False
            conn._learnmesh_ours = ours
        if not ours:
            await autotune(self, bytes_read=bytes_read)
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

    for mod in (_pubsub_mod, _gossipsub_mod):
        mod.maybe_consume_signed_record = consume_cached  # type: ignore[attr-defined]
        mod.env_to_send_in_RPC = envelope_cached  # type: ignore[attr-defined]
    YamuxStream._auto_tune_and_send_window_update = credit_at_half_window  # type: ignore[method-assign]


_GOSSIP_PROTOCOLS = frozenset({PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID})


class _GossipSub(GossipSub):
    """GossipSub whose IDONTWANT (v1.2) goes only with payloads of at least
    ``idontwant_min_bytes``, and never to the peer that forwarded the message or
    its origin. libp2p sends one to every mesh peer for every message: for small
    messages that is an extra RPC per peer costing as much as the message itself."""

    def __init__(self, *args: Any, idontwant_min_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # libp2p's peer scoring runs on every message and every mesh peer; the node
        # keeps its own scores (penalties and bans for invalid data), so it is off.
        self.scorer = None
        self._idontwant_min = idontwant_min_bytes
        self._idontwant_skip: dict[bytes, tuple[ID, ID]] = {}

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


class _Pubsub(Pubsub):
    """Pubsub that handles each received message in its stream's reader task.

    libp2p 0.8.1 spawns a service task per received message (``manager.run_task``)
    just to run ``push_msg``, whose only wait is the send queue; that spawn and
    its bookkeeping cost about as much as the message's validation. Here the
    reader awaits ``push_msg`` itself: messages from one neighbour are handled in
    order, and a slow one holds back only that neighbour's stream. Otherwise the
    loop is libp2p's ``continuously_read_stream``.
    """

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
                # Looked up at call time: _install_libp2p_patches swaps this name.
                consume = _pubsub_mod.maybe_consume_signed_record  # type: ignore[attr-defined]
                if not consume(rpc_incoming, self.host, peer_id):
                    log.debug("invalid signed record from %s: RPC ignored", peer_id)
                    continue
                for msg in rpc_incoming.publish:
                    if self._is_subscribed_to_msg(msg) and self.manager.is_running:
                        try:
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
            with contextlib.suppress(Exception):
                await stream.reset()
            self._handle_dead_peer(peer_id)
        except IOException:  # EOF, reset, closed connection: the peer is gone
            log.debug("pubsub stream from %s ended", peer_id)


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


class _GatedNoise(NoiseTransport):
    """Noise that refuses blocked peers right after the handshake, in both directions.

    Refusing here (rather than after the swarm registers the connection) makes the
    blocked side's connect() fail instead of succeeding and then silently dropping.
    """

    def __init__(self, key_pair: Any, blocked: set[ID]) -> None:
        super().__init__(key_pair, noise_privkey=x25519.create_new_key_pair().private_key)
        self._blocked = blocked

    async def _gate(self, conn: ISecureConn) -> ISecureConn:
        peer = conn.get_remote_peer()
        if peer in self._blocked:
            await conn.close()
            raise HandshakeFailure(f"peer {peer} is blocked")
        return conn

    async def secure_inbound(self, conn: IRawConnection) -> ISecureConn:
        return await self._gate(await super().secure_inbound(conn))

    async def secure_outbound(self, conn: IRawConnection, peer_id: ID) -> ISecureConn:
        return await self._gate(await super().secure_outbound(conn, peer_id))


class _BlockNotifee(INotifee):
    """Closes connections to blocked peers that slipped past the handshake gate
    (those mid-upgrade when block_peer was called), and forgets a departed peer's
    cached record so a reconnect re-runs libp2p's full check and peerstore update."""

    def __init__(self, host: P2PHost) -> None:
        self._host = host

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        if peer in self._host._blocked:
            self._host._spawn(self._host._close_peer, peer)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        if not network.get_connections(peer):
            _RECORD_CACHE.get(self._host._host, {}).pop(peer, None)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None: ...
    async def closed_stream(self, network: INetwork, stream: INetStream) -> None: ...
    async def listen(self, network: INetwork, maddr: multiaddr.Multiaddr) -> None: ...
    async def listen_close(self, network: INetwork, maddr: multiaddr.Multiaddr) -> None: ...


def _is_teardown_noise(exc: BaseException) -> bool:
    # py-libp2p tasks that outlive their nursery during shutdown (e.g.
    # Pubsub.continuously_read_stream) raise this; it carries no information.
    return isinstance(exc, RuntimeError) and "closed to new arrivals" in str(exc)


class P2PHost:
    """One libp2p node. Create with ``async with P2PHost.open(config) as host``."""

    def __init__(self, config: P2PConfig) -> None:
        if len(config.identity_seed) != 32:
            raise P2PError("identity_seed must be exactly 32 bytes")
        try:
            self._key_pair = ed25519.create_new_key_pair(config.identity_seed)
        except ValueError as exc:
            raise P2PError(f"unusable identity seed: {exc}") from exc
        self.config = config
        _install_libp2p_patches()
        self.dropped = 0  # accepted messages lost because the messages() consumer lagged
        self._blocked: set[ID] = set()
        self._listen = multiaddr.Multiaddr(f"/ip4/{config.listen_host}/tcp/{config.listen_port}")
        # Noise only: the default sec_opt also offers plaintext (spoofable ids).
        sec_opt = {TProtocol(NOISE_PROTOCOL_ID): _GatedNoise(self._key_pair, self._blocked)}
        self._host: IHost = new_host(
            key_pair=self._key_pair,
            sec_opt=sec_opt,
            listen_addrs=[self._listen],
            enable_mDNS=config.mdns,
        )
        self._id: ID = self._host.get_id()
        self.peer_id: str = self._id.to_base58()
        self._router = _GossipSub(
            idontwant_min_bytes=config.idontwant_min_bytes,
            protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=config.mesh_degree,
            degree_low=config.mesh_degree_low,
            degree_high=config.mesh_degree_high,
            # Default is 120 s; annotated int but only ever passed to trio.sleep.
            heartbeat_interval=config.heartbeat_interval,  # type: ignore[arg-type]
            # Adaptive gossip would reset the heartbeat to >= 60 s when unhealthy.
            adaptive_gossip_enabled=False,
            # Own rate limiting lives in the node; libp2p's caps at 10 msg/s/topic.
            spam_protection_enabled=False,
            # All local peers share 127.0.0.1, which eclipse protection rejects.
            eclipse_protection_enabled=False,
        )
        # Message ids stay libp2p's default (origin + seqno): GossipSub's mcache
        # hard-codes that form for IHAVE, so a content-hash id would make every
        # IHAVE look unseen and trigger redundant IWANTs.
        self._pubsub = _Pubsub(
            self._host,
            self._router,
            max_inbound_rpc_size=max(1024 * 1024, config.max_message_bytes + _RPC_OVERHEAD),
            # libp2p caches each verdict by message id for 300 s, so a message refused
            # because of who forwarded it would be refused from every other neighbour
            # too. Rejected messages are not marked seen, so without the cache each
            # copy is judged on its own forwarder; accepted ones are deduped anyway.
            validation_cache_ttl=0,
            validation_cache_size=1,
            strict_signing=config.sign_messages,
        )
        # Seqnos start at int(time.time()) and count up per publish, so a node that
        # published faster than 1/s and restarts would reuse seqnos still in peers'
        # seen caches, and its new messages would vanish. Nanoseconds avoid that.
        self._pubsub.counter = time.time_ns()
        self._send, self._recv = trio.open_memory_channel[tuple[str, str, bytes]](config.inbox_size)
        self._nursery: trio.Nursery | None = None
        self._topics: set[str] = set()
        self._host.get_network().register_notifee(_BlockNotifee(self))
        _OUR_PEERS.add(self._id)
        _RECORD_CACHE[self._host] = {}

    # ---- lifecycle -------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(cls, config: P2PConfig) -> AsyncIterator[P2PHost]:
        self = cls(config)
        started = False
        body_exc: BaseException | None = None
        try:
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(self._host.run(listen_addrs=[self._listen]))
                await stack.enter_async_context(background_trio_service(self._pubsub))
                await stack.enter_async_context(background_trio_service(self._router))
                await self._pubsub.wait_until_ready()
                if not self._host.get_addrs():  # libp2p only logs a failed listen
                    raise P2PError(f"could not listen on {self._listen}")
                nursery = await stack.enter_async_context(trio.open_nursery())
                self._nursery = nursery
                if config.mdns:
                    nursery.start_soon(self._dial_discovered)
                started = True
                try:
                    yield self
                except BaseException as exc:
                    body_exc = exc
                    raise
                finally:
                    self._nursery = None
                    nursery.cancel_scope.cancel()
                    self._send.close()  # consumers of messages() see EndOfChannel
                    # Closing connections first lets pubsub's read loops end on EOF
                    # instead of racing the service teardown.
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        for peer in list(self._host.get_network().connections):
                            await self._close_peer(peer)
        except BaseException as exc:
            if body_exc is not None:
                # Whatever the teardown added, the caller's own error is what matters.
                raise body_exc from None
            rest = _strip_teardown_noise(exc)
            if rest is not None and not started:
                rest = _single(rest)
                if isinstance(rest, Exception) and not isinstance(rest, P2PError):
                    raise P2PError(f"could not start libp2p host: {rest!r}") from rest
            if rest is not None:
                raise rest from None
            log.debug("contained libp2p teardown error: %r", exc)

    async def _dial_discovered(self) -> None:
        """Dial peers that mDNS finds. Zeroconf calls back from its own thread,
        so the callback only hands the peer to trio."""
        from libp2p.discovery.events.peerDiscovery import peerDiscovery

        token = trio.lowlevel.current_trio_token()
        send, recv = trio.open_memory_channel[Any](64)

        def found(info: Any) -> None:
            def put() -> None:
                with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
                    send.send_nowait(info)

            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(put)

        peerDiscovery.register_peer_discovered_handler(found)
        try:
            async for info in recv:
                if info.peer_id == self._id or info.peer_id in self._blocked:
                    continue
                try:
                    with trio.move_on_after(self.config.connect_timeout):
                        await self._host.connect(info)
                    log.info("mDNS: connected to %s", info.peer_id)
                except Exception as exc:  # a stale or unreachable announcement
                    log.debug("mDNS peer %s not reachable: %s", info.peer_id, exc)
        finally:
            peerDiscovery.unregister_peer_discovered_handler(found)

    def _swarm(self) -> Swarm:
        # new_host always builds a Swarm; the IHost interface hides its extras.
        return cast(Swarm, self._host.get_network())

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    # ---- connections -----------------------------------------------------

    def listen_addrs(self) -> list[str]:
        return [str(a) for a in self._host.get_addrs()]

    async def connect(self, maddr: str) -> str:
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(maddr))
        except Exception as exc:
            raise P2PError(f"bad multiaddr {maddr!r}: {exc}") from exc
        peer = info.peer_id.to_base58()
        if info.peer_id == self._id:
            raise P2PError("refusing to connect to self")
        if info.peer_id in self._blocked:
            raise P2PError(f"peer {peer} is blocked")
        # A failed dial puts the peer in the swarm's 60 s negative cache; an explicit
        # connect should always try again.
        self._swarm().unblock_peer(info.peer_id)
        network = self._host.get_network()
        conns = network.get_connections(info.peer_id)
        if conns and all(_conn_closed(c) for c in conns):
            await self._close_peer(info.peer_id)  # only dead ones left: dial afresh
        try:
            with trio.fail_after(self.config.connect_timeout):
                await self._host.connect(info)
        except trio.TooSlowError as exc:
            raise P2PError(f"connect to {maddr} timed out") from exc
        except Exception as exc:
            raise P2PError(f"connect to {maddr} failed: {exc}") from exc
        if all(_conn_closed(c) for c in network.get_connections(info.peer_id)):
            raise P2PError(f"connect to {maddr} failed: connection closed by peer")
        return peer

    async def disconnect(self, peer_id: str) -> None:
        await self._close_peer(_parse_id(peer_id))

    async def _close_peer(self, peer: ID) -> None:
        try:
            await self._host.disconnect(peer)
        except Exception:
            log.debug("disconnect from %s failed", peer, exc_info=True)

    def connected_peers(self) -> list[str]:
        # A connection whose peer left may linger in the swarm's table for a while
        # (py-libp2p cleans up lazily): only open ones count.
        network = self._host.get_network()
        return [
            p.to_base58()
            for p, conns in network.connections.items()
            if any(not _conn_closed(c) for c in conns)
        ]

    def block_peer(self, peer_id: str) -> None:
        peer = _parse_id(peer_id)
        self._blocked.add(peer)
        self._spawn(self._close_peer, peer)

    def unblock_peer(self, peer_id: str) -> None:
        peer = _parse_id(peer_id)
        self._blocked.discard(peer)
        self._swarm().unblock_peer(peer)

    def blocked_peers(self) -> list[str]:
        return [p.to_base58() for p in self._blocked]

    # ---- pubsub ------------------------------------------------------------

    async def subscribe(self, topic: str, validator: Validator) -> None:
        """Join ``topic``. ``validator(forwarder_peer_id, data)`` runs before a message
        is delivered or forwarded; the peer id is the neighbour that handed it to us
        (the one to punish), not the original author. Exceptions count as reject."""
        if topic in self._topics:
            raise P2PError(f"already subscribed to {topic!r}")
        if self._nursery is None:
            raise P2PError("host is not running")
        cap = self.config.max_message_bytes

        def check(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            if forwarder == self._id:
                return True  # our own publish: libp2p validates those too
            if len(msg.data) > cap or forwarder in self._blocked:
                return False
            try:
                return bool(validator(forwarder.to_base58(), msg.data))
            except Exception:
                log.exception("validator for %s raised; rejecting", topic)
                return False

        self._pubsub.set_topic_validator(topic, check, False)
        sub = await self._pubsub.subscribe(topic)
        self._topics.add(topic)
        self._nursery.start_soon(self._drain, topic, sub)

    async def _drain(self, topic: str, sub: Any) -> None:
        # libp2p's per-topic buffer holds 32 and drops on overflow, so empty it
        # promptly into our larger channel and never block on the consumer.
        own = self._id.to_bytes()
        while True:
            try:
                msg = await sub.get()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return
            if msg.from_id == own:
                continue
            try:
                origin = ID(msg.from_id).to_base58()
                self._send.send_nowait((topic, origin, msg.data))
            except trio.WouldBlock:
                self.dropped += 1
            except trio.ClosedResourceError:
                return

    def messages(self) -> trio.MemoryReceiveChannel[tuple[str, str, bytes]]:
        """(topic, origin_peer_id, data) of accepted messages from others. One
        shared channel: meant for a single consumer."""
        return self._recv

    async def publish(self, topic: str, data: bytes) -> None:
        if len(data) > self.config.max_message_bytes:
            raise P2PError(
                f"message of {len(data)} bytes exceeds cap {self.config.max_message_bytes}"
            )
        try:
            await self._pubsub.publish(topic, data)
        except Exception as exc:
            raise P2PError(f"publish to {topic!r} failed: {exc!r}") from exc

    def topic_peers(self, topic: str) -> list[str]:
        return [p.to_base58() for p in self._pubsub.peer_topics.get(topic, ())]

    def mesh_peers(self, topic: str) -> list[str]:
        return [p.to_base58() for p in self._router.mesh.get(topic, ())]

    # ---- streams -----------------------------------------------------------

    def set_stream_handler(self, protocol_id: str, handler: StreamHandler) -> None:
        max_frame = self.config.max_frame_bytes

        async def run(stream: INetStream) -> None:
            wrapped = P2PStream(stream, max_frame)
            if stream.muxed_conn.peer_id in self._blocked:
                await wrapped._reset()
                return
            try:
                await handler(wrapped)
            except P2PError as exc:  # peer misbehaved or vanished: not our crash
                log.debug("stream handler %s: %s", protocol_id, exc)
            except Exception:  # a handler bug must not take the swarm down
                log.exception("stream handler %s crashed", protocol_id)
            finally:
                await wrapped.close()

        self._host.set_stream_handler(TProtocol(protocol_id), run)

    async def open_stream(self, peer_id: str, protocol_id: str) -> P2PStream:
        peer = _parse_id(peer_id)
        if peer in self._blocked:
            raise P2PError(f"peer {peer_id} is blocked")
        try:
            with trio.fail_after(self.config.connect_timeout):
                stream = await self._host.new_stream(peer, [TProtocol(protocol_id)])
        except trio.TooSlowError as exc:
            raise P2PError(f"opening {protocol_id} to {peer_id} timed out") from exc
        except Exception as exc:
            raise P2PError(f"opening {protocol_id} to {peer_id} failed: {exc}") from exc
        return P2PStream(stream, self.config.max_frame_bytes)


def _conn_closed(conn: Any) -> bool:
    try:
        muxed = getattr(conn, "muxed_conn", None)
        return bool(conn.is_closed) or bool(muxed is not None and muxed.is_closed)
    except Exception:
        return True


def _parse_id(peer_id: str) -> ID:
    try:
        return ID.from_base58(peer_id)
    except Exception as exc:
        raise P2PError(f"bad peer id {peer_id!r}") from exc


def _single(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _strip_teardown_noise(exc: BaseException) -> BaseException | None:
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(_is_teardown_noise)
        return rest
    return None if _is_teardown_noise(exc) else exc
