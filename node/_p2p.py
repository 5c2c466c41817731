"""Thin trio wrapper over py-libp2p 0.8.1: Noise-only host, GossipSub, framed streams.

It moves bytes and knows nothing about learnmesh events. Every change to
py-libp2p's own behaviour (CPU per message, content-addressed message ids,
reporting oversize RPCs) lives in _libp2p_patches, which checks the installed
libp2p before it patches anything. Here: the mesh is 3 neighbours, not 6
(P2PConfig); libp2p's per-message signature is optional (P2PConfig.sign_messages).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

# Before libp2p's first import: stand-ins for the QUIC, mDNS, AutoTLS and DNS
# modules a node never uses (start-up time and memory, issue 14).
from . import _libp2p_slim  # noqa: F401

# isort: split
import multiaddr
import trio
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
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12
from libp2p.pubsub.pb import rpc_pb2
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service

from . import _libp2p_patches as patches

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
            patches.forget_peer(self._host._host, peer)
            self._host._unsupported = {u for u in self._host._unsupported if u[0] != peer}

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
        try:
            patches.install()
        except patches.Libp2pMismatch as exc:
            raise P2PError(str(exc)) from exc
        # Called as on_misbehaviour(peer_id, reason) when a neighbour sends gossip
        # that libp2p or this host drops before the validator sees it: data over
        # max_message_bytes, an RPC over libp2p's frame cap, an unparsable RPC. The
        # node sets it to its penalise function, so such traffic is not free.
        self.on_misbehaviour: Callable[[str, str], None] | None = None
        # (peer, protocol) pairs whose stream would not negotiate: the peer does not
        # speak it. Forgotten when the peer disconnects.
        self._unsupported: set[tuple[ID, str]] = set()
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
        self._router = patches.LearnmeshGossipSub(
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
        self._pubsub = patches.LearnmeshPubsub(
            self._host,
            self._router,
            # Content-addressed: SHA-256 of the data, the same in every
            # implementation (libp2p's default is origin + seqno, js-libp2p's key +
            # seqno, so IHAVE ids never matched). LearnmeshGossipSub's message cache
            # uses the same id for IHAVE/IWANT.
            msg_id_constructor=patches.message_id,
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
        self._prevalidators: dict[str, Callable[[str, bytes], Awaitable[None]]] = {}
        self._pubsub.on_bad_rpc = self._bad_rpc
        self._host.get_network().register_notifee(_BlockNotifee(self))
        patches.register_host(self._host, self._id)

    def _report(self, peer: ID, reason: str) -> None:
        report = self.on_misbehaviour
        if report is None or peer == self._id:
            return
        try:
            report(peer.to_base58(), reason)
        except Exception:  # the node's bookkeeping must not break libp2p's reader
            log.exception("on_misbehaviour for %s raised", peer)

    def _bad_rpc(self, peer: ID, reason: str) -> None:
        self._report(peer, reason)

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

    async def ping(self, peer_id: str) -> float:
        """One libp2p ping round trip (/ipfs/ping/1.0.0, served by every libp2p
        host); returns the RTT in ms, raises P2PError. The caller bounds it in
        time (see Node's liveness check)."""
        try:
            stream = await self._host.new_stream(_parse_id(peer_id), [PING_PROTOCOL])
        except Exception as exc:
            raise P2PError(f"ping {peer_id}: {exc}") from exc
        try:
            return float(await perform_ping_roundtrip(stream))
        except Exception as exc:
            raise P2PError(f"ping {peer_id}: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):
                await stream.close()

    def kill_peer(self, peer_id: str) -> int:
        """Close a peer's TCP sockets at once, without any libp2p handshake: for
        a peer that stopped answering (a suspended laptop sends no FIN), whose
        connection would otherwise hold locks and stream slots forever while
        libp2p waits on it. Every task blocked on those sockets fails and
        unwinds; the swarm then drops the connection. Returns sockets closed."""
        closed = 0
        try:
            conns = self._host.get_network().get_connections(_parse_id(peer_id))
        except P2PError:
            return 0
        for conn in conns:
            sock = _socket_of(conn)
            if sock is not None:
                with contextlib.suppress(Exception):
                    trio.lowlevel.notify_closing(sock)
                    sock.close()
                    closed += 1
        return closed

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

    async def subscribe(
        self,
        topic: str,
        validator: Validator,
        prevalidate: Callable[[str, bytes], Awaitable[None]] | None = None,
        prevalidate_bytes: int = 32 * 1024,
    ) -> None:
        """Join ``topic``. ``validator(forwarder_peer_id, data)`` runs before a message
        is delivered or forwarded; the peer id is the neighbour that handed it to us
        (the one to punish), not the original author. Exceptions count as reject.
        ``prevalidate(forwarder_peer_id, data)``, if given, is awaited first for a
        message of at least ``prevalidate_bytes`` not seen before (libp2p's
        validator is synchronous: slow checks of a large message go there, off
        the event loop, and leave their result for ``validator``)."""
        if topic in self._topics:
            raise P2PError(f"already subscribed to {topic!r}")
        if self._nursery is None:
            raise P2PError("host is not running")
        cap = self.config.max_message_bytes

        def check(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            if forwarder == self._id:
                return True  # our own publish: libp2p validates those too
            if forwarder in self._blocked:
                return False
            if len(msg.data) > cap:
                self._report(forwarder, f"gossip: message of {len(msg.data)} bytes exceeds {cap}")
                return False
            try:
                return bool(validator(forwarder.to_base58(), msg.data))
            except Exception:
                log.exception("validator for %s raised; rejecting", topic)
                return False

        self._pubsub.set_topic_validator(topic, check, False)
        if prevalidate is not None:
            self._prevalidators[topic] = prevalidate
            self._pubsub.prevalidate = self._prevalidate
            self._pubsub.prevalidate_bytes = min(
                self._pubsub.prevalidate_bytes, prevalidate_bytes
            )
        sub = await self._pubsub.subscribe(topic)
        self._topics.add(topic)
        self._nursery.start_soon(self._drain, topic, sub)

    async def _prevalidate(self, forwarder: ID, msg: rpc_pb2.Message) -> None:
        if forwarder == self._id or forwarder in self._blocked:
            return
        for topic in msg.topicIDs:
            hook = self._prevalidators.get(topic)
            if hook is not None:
                try:
                    await hook(forwarder.to_base58(), msg.data)
                except Exception:  # the validator still runs, and decides
                    log.exception("prevalidation for %s raised", topic)
                return

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
        """Publish ``data`` signed by this host. The message id is SHA-256 of the
        data, so bytes this host published or accepted in the last 120 s (libp2p's
        seen cache) are a duplicate: they are silently not sent again."""
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
        if self.connected_peers():  # they identified us without it: tell them
            self._spawn(patches.push_identify, self._host)

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
            if patches.protocol_refused(exc):
                self._unsupported.add((peer, protocol_id))
                raise P2PError(f"{peer_id} does not speak {protocol_id}") from exc
            raise P2PError(f"opening {protocol_id} to {peer_id} failed: {exc}") from exc
        return P2PStream(stream, self.config.max_frame_bytes)

    def peer_protocols(self, peer_id: str) -> list[str] | None:
        """The protocols ``peer_id`` announced by identify (libp2p runs it on every
        new connection), or None while that has not completed."""
        try:
            protocols = self._host.get_peerstore().get_protocols(_parse_id(peer_id))
        except Exception:  # not in the peerstore yet
            return None
        return [str(p) for p in protocols] or None

    def speaks(self, peer_id: str, protocol_id: str) -> bool:
        """False if ``peer_id`` is known not to speak ``protocol_id``: identify
        listed its protocols without it, or a stream for it was refused during
        negotiation on the current connection. True otherwise, including while
        identify has not completed (then the first try settles it)."""
        peer = _parse_id(peer_id)
        if (peer, protocol_id) in self._unsupported:
            return False
        announced = self.peer_protocols(peer_id)
        return announced is None or protocol_id in announced

    async def supports(self, peer_id: str, protocol_id: str, wait: float) -> bool:
        """``speaks``, after waiting up to ``wait`` seconds for identify to tell
        (it runs in the background after every new connection, so a sync asked
        for the moment a peer connects would otherwise race it). A peer that has
        not identified by then is presumed to speak the protocol: the first
        stream settles it."""
        with trio.move_on_after(wait):
            # Identify usually answers within a few ms of the connection: a
            # coarse poll here held every first sync after a connect up to 50 ms.
            while self.peer_protocols(peer_id) is None and peer_id in self.connected_peers():
                await trio.sleep(0.005)
        return self.speaks(peer_id, protocol_id)


_CONN_LAYERS = ("muxed_conn", "secured_conn", "conn", "read_writer", "read_write_closer", "stream")


def _socket_of(conn: Any) -> Any:
    """The socket under a swarm connection (muxer, security, raw connection,
    TCP stream), found by walking its attributes; None if there is none."""
    queue: list[Any] = [conn]
    seen: set[int] = set()
    while queue:
        obj = queue.pop(0)
        if id(obj) in seen or len(seen) > 64:
            continue
        seen.add(id(obj))
        if isinstance(obj, trio.SocketStream):
            return obj.socket
        for name in _CONN_LAYERS:
            child = getattr(obj, name, None)
            if child is not None and not isinstance(child, int | str | bytes):
                queue.append(child)
    return None


def _conn_closed(conn: Any) -> bool:
    try:
        muxed = getattr(conn, "muxed_conn", None)
        return bool(conn.is_closed) or bool(muxed is not None and muxed.is_closed)
    except Exception:
        return True


PING_PROTOCOL = TProtocol("/ipfs/ping/1.0.0")


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
