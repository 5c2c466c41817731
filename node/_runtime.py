"""The node's runtime: trio and libp2p carrying inputs into the node service
(`node/_core.py`) and its `Io` requests out. Nothing here decides what the
node does; it does what the service says, at the pace the transport allows:

- a gossip message → `NodeCore.on_gossip` (in libp2p's validator), queued
  events → `NodeCore.admit_queued` (one message at a time, between other work);
- `Publish` → batched into few gossip messages, paced;
- `SyncWanted` → sessions (`node/_sync.py`) driven over sync streams, a few
  peers at a time, each request with its own timeout, signature checks on
  worker threads; an incoming sync stream → `NodeCore.answer_sync`;
- every half second → `NodeCore.tick` with the peers connected now;
- `FetchBlob` → the blob protocol; `Block`/`Unblock` → libp2p's connection gate;
- `Applied` → the node's domain reactions (a callback);
- dialing bootstrap and remembered peers, and pinging peers so one that
  vanished without a goodbye is dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import trio
from learnmesh.ledger import BlobStore
from learnmesh.protocol import Event, RemoteProtocolError

from ._core import (
    Applied,
    Block,
    FetchBlob,
    NodeCore,
    Now,
    Publish,
    SyncWanted,
    Unblock,
    decode_share,
    refuse_signatures,
    signature_failures,
    split_decoded,
)
from ._p2p import P2PConfig, P2PError, P2PHost, P2PStream
from ._sync import Admit, Ask, Pause, Recv, Send, Session, SyncRefused, session
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

__all__ = ["PeerSilent", "Runtime"]

T = TypeVar("T")

log = logging.getLogger("learnmesh.node")

_BLOB_CHUNK = 256 * 1024
_ASK_TIMEOUT = 20.0  # seconds for one sync request and its reply
_OPEN_TIMEOUT = 5.0  # seconds to open a sync stream: a peer slower than this is gone
_THREADED_MIN = 64  # events per worker thread at least when a sync page is verified
_PREVALIDATE_BYTES = 40 * 1024  # gossip this large (about 100 events) is checked off the loop
_TICK = 0.5  # seconds between NodeCore.tick calls


class PeerSilent(P2PError):
    """A peer did not answer in time: its connection was closed."""


class Runtime:
    """Runs one node service over one libp2p host. `settings` is the node's
    NodeSettings; `on_applied` gets the events of each `Applied` request;
    `on_synced` is called after each sync session that ended well; `on_host`
    is awaited once the host is up (more protocols: private messages);
    `tasks` run beside the runtime's own for as long as it runs."""

    def __init__(
        self,
        core: NodeCore,
        *,
        settings: Any,
        p2p_seed: bytes,
        blobs: BlobStore,
        data_dir: Path,
        now: Callable[[], Now],
        on_applied: Callable[[list[Event]], None],
        on_synced: Callable[[], None],
        on_host: Callable[[P2PHost], Awaitable[None]],
        tasks: Iterable[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.core = core
        self.settings = settings
        self.p2p_seed = p2p_seed
        self.blobs = blobs
        self.network = core.network
        self.topic = gossip_topic(self.network)
        self.now = now
        self.on_applied = on_applied
        self.on_synced = on_synced
        self.on_host = on_host
        self.tasks = list(tasks)
        self.p2p: P2PHost | None = None
        self.outbox: list[bytes] = []
        self._outbox_ready = trio.Event()
        self._io_ready = trio.Event()
        self._queue_ready = trio.Event()
        self._sync_wake = trio.Event()
        self._fetching: set[bytes] = set()
        self._predecoded: dict[bytes, tuple[list[Event], list[RemoteProtocolError]]] = {}
        self._known_peers_file = data_dir / "peers.json"
        self._nursery: trio.Nursery | None = None
        core.on_io = lambda: self._io_ready.set()  # the current event, whichever it is

    # -- running --------------------------------------------------------------------

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
            # oversize or unparsable gossip costs its sender
            host.on_misbehaviour = lambda peer, reason, weight=10.0: self.core.penalise(
                peer, reason, self.now(), weight
            )
            host.set_stream_handler(sync_protocol(self.network), self._serve_sync)
            host.set_stream_handler(blob_protocol(self.network), self._serve_blob)
            await host.subscribe(
                self.topic,
                self._validate_gossip,
                prevalidate=self._prevalidate_gossip,
                prevalidate_bytes=_PREVALIDATE_BYTES,
            )
            await self.on_host(host)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for fn in (
                    self._io_loop,
                    self._gossip_in,
                    self._admission_worker,
                    self._tick_loop,
                    self._liveness_loop,
                    self._gossip_out,
                    self._sync_worker,
                    self._dial_known,
                    self._redial_loop,
                    *self.tasks,
                ):
                    nursery.start_soon(fn)
                self.on_applied([])  # reactions to what arrived while the node was down
                task_status.started()
                log.info("node %s listening on %s", host.peer_id, ", ".join(host.listen_addrs()))
                await trio.sleep_forever()

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    async def _io_loop(self) -> None:
        """Carry out what the service asked for."""
        while True:
            await self._io_ready.wait()
            self._io_ready = trio.Event()
            for item in self.core.take_io():
                try:
                    self._carry_out(item)
                except Exception:  # a bug here must not end the node
                    log.exception("carrying out %r failed", item)

    def _carry_out(self, item: object) -> None:
        if isinstance(item, Publish):
            self.outbox.append(item.raw)
            self._outbox_ready.set()
        elif isinstance(item, SyncWanted):
            self._sync_wake.set()
        elif isinstance(item, Applied):
            self.on_applied(list(item.events))
        elif isinstance(item, FetchBlob):
            self.spawn(self.fetch_blob, item.hash, item.size)
        elif isinstance(item, Block):
            if self.p2p is not None:
                self.p2p.block_peer(item.peer)
        elif isinstance(item, Unblock) and self.p2p is not None:
            self.p2p.unblock_peer(item.peer)

    # -- peers and dialing -------------------------------------------------------------

    def connected_peers(self) -> list[str]:
        return self.p2p.connected_peers() if self.p2p else []

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
        self.core.request_sync(peer, self.now())
        return peer

    async def _dial_known(self) -> None:
        """Dial bootstrap and remembered peers, retrying with backoff until connected."""
        assert self.p2p is not None
        addrs = list(dict.fromkeys(self.settings.bootstrap + self._load_known_peers()))
        own = set(self.p2p.listen_addrs())
        addrs = [a for a in addrs if a not in own and self.p2p.peer_id not in a]
        async with trio.open_nursery() as nursery:
            for addr in addrs:
                nursery.start_soon(self._dial_until_up, addr, addr in self.settings.bootstrap)

    async def _redial_loop(self) -> None:
        """Keep a few connections: when peers drop (a partition healed, a peer
        restarted), dial remembered and bootstrap peers again."""
        assert self.p2p is not None
        while True:
            await trio.sleep(self.settings.redial_interval)
            connected = set(self.connected_peers())
            if len(connected) >= self.settings.min_peers:
                continue
            for addr in dict.fromkeys(self.settings.bootstrap + self._load_known_peers()):
                peer = addr.rsplit("/p2p/", 1)[-1]
                if peer == self.p2p.peer_id or peer in connected:
                    continue
                if not self.core.usable([peer], self.now()):
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
        them, and PeerSilent is raised; `late` gets a result that arrives after."""
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

        self.spawn(runner)
        with trio.move_on_after(seconds):
            await done.wait()
        if not done.is_set():
            gave_up = True
            closed = p2p.kill_peer(peer)
            self.core.stats["peers_dropped"] += 1
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
                self.spawn(self._check_alive, p2p, peer)

    async def _check_alive(self, p2p: P2PHost, peer: str) -> None:
        try:
            await self._within(self.settings.ping_timeout, peer, lambda: p2p.ping(peer))
        except PeerSilent:
            self.core.peer_silent(peer, self.now())  # and its sockets are closed
        except P2PError as exc:  # refused or already gone: not a sign of a hung peer
            log.debug("ping %s: %s", peer, exc)

    async def _tick_loop(self) -> None:
        assert self.p2p is not None
        proto = sync_protocol(self.network)
        while True:
            connected = self.connected_peers()
            speaks = [p for p in connected if self.p2p.speaks(p, proto)]
            self.core.tick(self.now(), connected, speaks)
            await trio.sleep(_TICK)

    # -- gossip ---------------------------------------------------------------------------

    async def _prevalidate_gossip(self, peer: str, data: bytes) -> None:
        """A large gossip message (a batch of hundreds of events) is decoded
        and its signatures checked here, as a sync page is (`_decode_on_threads`),
        before libp2p's synchronous validator runs: checked in the validator,
        one such message held the event loop 30 ms, and a node that joins right
        after a burst is handed dozens of them while it starts its catch-up."""
        if not self.core.gossip_welcome(peer, self.now()):
            return  # refused by the validator before any decoding, as any message
        try:
            raws = decode_gossip(data, self.network)
        except RemoteProtocolError:
            return  # the validator says why, and charges the peer
        if len(raws) < 2 * _THREADED_MIN:
            return
        decoded = await self._decode_on_threads(raws)
        if len(self._predecoded) >= 16:  # never validated (the peer went): forget
            self._predecoded.clear()
        self._predecoded[data] = decoded

    def _validate_gossip(self, peer: str, data: bytes) -> bool:
        decoded = self._predecoded.pop(data, None) if self._predecoded else None
        forward = self.core.on_gossip(peer, data, self.now(), decoded)
        if self.core.queue:
            self._queue_ready.set()
        return forward

    async def _admission_worker(self) -> None:
        while True:
            await self._queue_ready.wait()
            self._queue_ready = trio.Event()
            while self.core.admit_queued(self.now()):
                await trio.sleep(0)  # let the API and sync run between batches

    async def _gossip_in(self) -> None:
        """Admission happens in the validator; the delivered copy only needs draining."""
        assert self.p2p is not None
        async for _ in self.p2p.messages():
            pass

    async def _gossip_out(self) -> None:
        """Batch outgoing events into few gossip messages, paced so libp2p's
        32-message per-peer queue never overflows. An event after a quiet spell
        goes out at once; events made within `gossip_delay` of the last message
        wait for the rest of that window and share the next one."""
        assert self.p2p is not None
        stats = self.core.stats
        last = -math.inf
        while True:
            await self._outbox_ready.wait()
            await trio.sleep_until(last + self.settings.gossip_delay)
            self._outbox_ready = trio.Event()
            while self.outbox:
                batch: list[bytes] = []
                size = 64
                while self.outbox and size + len(self.outbox[0]) + 8 < MAX_GOSSIP_BYTES:
                    raw = self.outbox.pop(0)
                    batch.append(raw)
                    size += len(raw) + 8
                if not batch:  # one event larger than a gossip message: sync carries it
                    self.outbox.pop(0)
                    continue
                try:
                    await self.p2p.publish(self.topic, encode_gossip(self.network, batch))
                    stats["gossip_published"] += 1
                    stats["gossip_events_out"] += len(batch)
                except P2PError as exc:
                    log.warning("publish failed: %s", exc)
                last = trio.current_time()
                await trio.sleep(1.0 / self.settings.gossip_rate)

    # -- sync ---------------------------------------------------------------------------

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
                if peer in self.core.sync.wanted:  # asked for again while it ran
                    self._sync_wake.set()

        async with trio.open_nursery() as nursery:
            while True:
                await self._sync_wake.wait()
                self._sync_wake = trio.Event()
                for peer in self.core.sync.take_wanted(running):
                    running.add(peer)
                    nursery.start_soon(one, peer)

    async def sync_with(self, peer: str) -> int:
        """Pull what `peer` has and we lack. Returns the number of events taken in."""
        core = self.core
        proto = sync_protocol(self.network)
        if self.p2p is None or peer in core.peers.partitioned:
            return 0
        if not await self.p2p.supports(peer, proto, wait=_OPEN_TIMEOUT):
            return 0  # it announced (identify) or answered that it has no sync: not a failure
        got = 0
        began = trio.current_time()
        try:
            try:
                stream = await self._open_or_drop(peer)
            except (P2PError, trio.TooSlowError):
                # Gone or hanging: skip it for a while, so anti-entropy goes to
                # peers that answer (a peer that just refused the protocol is
                # not dead: it is not asked again while it stays connected).
                if self.p2p.speaks(peer, proto):
                    core.peer_silent(peer, self.now())
                raise
            try:
                got = await self._drive(session(core, peer), stream)
            finally:
                await stream.close()
        except (P2PError, SyncRefused, trio.TooSlowError, RemoteProtocolError) as exc:
            reason = exc.reason if isinstance(exc, RemoteProtocolError) else str(exc)
            silent = isinstance(exc, trio.TooSlowError)  # found by the simulator
            if silent:
                reason = f"no answer within {_ASK_TIMEOUT:.0f} s"
            core.sync_failed(
                peer,
                reason,
                self.now(),
                peer_at_fault=isinstance(exc, RemoteProtocolError),
                silent=silent,
            )
            return got
        core.sync_ended(peer, got, self.now())
        if got:
            took = trio.current_time() - began
            log.info("synced %d events from %s in %.2f s", got, peer, took)
        self.on_synced()
        return got

    async def _drive(self, steps: Session, stream: P2PStream) -> int:
        """Carry a sync session's steps over one stream. Each request has its own
        bound: a long catch-up is many quick pages, and a peer that stops
        answering is dropped after one timeout. Replies are read as soon as
        they arrive (`_ReadAhead`), and a page's signatures are checked on
        worker threads from then on, so the next page is verified while the
        loop folds this one."""
        peer = stream.remote_peer
        ahead = _ReadAhead(self, stream)
        self.spawn(ahead.run)
        try:
            value: Any = None
            while True:
                try:
                    step = steps.send(value)
                except StopIteration as done:
                    result: int = done.value
                    return result
                value = None
                if isinstance(step, Send | Ask):
                    with trio.fail_after(_ASK_TIMEOUT):
                        await stream.send_frame(step.msg)
                    ahead.expect()
                if isinstance(step, Recv | Ask):
                    with trio.fail_after(_ASK_TIMEOUT):
                        value = await ahead.reply()
                elif isinstance(step, Admit):
                    events, bad = await ahead.verified(step.raws)
                    value = self.core.take_page(events, bad, peer, self.now())
                elif isinstance(step, Pause):
                    await trio.sleep(0.05)
        finally:
            ahead.stop()

    async def _decode_on_threads(
        self, raws: list[Any]
    ) -> tuple[list[Event], list[RemoteProtocolError]]:
        """Decode a sync page: the loop decodes it (strict, without the
        signatures), and the signature checks, most of a catch-up's CPU, run on
        worker threads, one share per core (libsodium releases the GIL), while
        the loop goes on folding and serving. Decoding on the workers too was
        slower: it holds the GIL, which the loop's fold wants at the same time."""
        shares = min(os.cpu_count() or 1, len(raws) // _THREADED_MIN)
        if shares < 2:
            return self.core.decode(raws)
        decoded = decode_share(
            raws, self.core.genesis.params.max_event_bytes, self.network, verify=False
        )
        size = -(-len(decoded) // shares)
        bad: list[int] = []

        async def share(i: int) -> None:
            span = range(i * size, min(len(decoded), (i + 1) * size))
            bad.extend(await trio.to_thread.run_sync(signature_failures, decoded, span))

        async with trio.open_nursery() as nursery:
            for i in range(shares):
                nursery.start_soon(share, i)
        refuse_signatures(decoded, bad)
        return split_decoded(decoded, self.core)

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

    async def _serve_sync(self, stream: P2PStream) -> None:
        peer = stream.remote_peer
        if peer in self.core.peers.partitioned:
            await stream.close()
            return
        try:
            while True:
                try:
                    frame = await stream.recv_frame(64 * 1024)
                except P2PError:
                    return  # the client is done
                reply, close = self.core.serve_sync(peer, frame, self.now())
                await stream.send_frame(reply)
                if close:
                    return
        except P2PError as exc:
            log.debug("sync serve to %s ended: %s", peer, exc)
        finally:
            await stream.close()

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
        before anything is stored. One that no peer has is asked for again
        later (NodeCore.blob_failed)."""
        if self.blobs.has(h):
            self.core.blobs.wants.pop(h, None)
            return True
        if self.p2p is None or h in self._fetching:
            return False
        cap = self.core.genesis.params.max_blob_bytes
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
                    self.core.penalise(peer, f"blob: {exc}", self.now())
                    continue
                self.core.blob_fetched(h)
                return True
        finally:
            self._fetching.discard(h)
        self.core.blob_failed(h, expected_size, self.now())
        return False

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


class _Verifying:
    """A page's events being decoded and verified on worker threads."""

    def __init__(self, raws: list[Any]) -> None:
        self.raws = raws
        self.done = trio.Event()
        self.result: tuple[list[Event], list[RemoteProtocolError]] | BaseException | None = None


class _ReadAhead:
    """Reads a sync session's replies in order as they arrive and starts
    verifying each page's events at once (one task for the stream, never
    raising: a failure is handed to whoever waits for the reply)."""

    def __init__(self, runtime: Runtime, stream: P2PStream) -> None:
        self.runtime = runtime
        self.stream = stream
        self.scope = trio.CancelScope()
        self.wanted, self._wanted_out = trio.open_memory_channel[None](math.inf)
        self._replies_in, self.replies = trio.open_memory_channel[Any](math.inf)
        self.pages: list[_Verifying] = []

    def expect(self) -> None:
        self.wanted.send_nowait(None)

    async def reply(self) -> Any:
        item = await self.replies.receive()
        if isinstance(item, BaseException):
            raise item
        return item

    async def verified(self, raws: list[Any]) -> tuple[list[Event], list[RemoteProtocolError]]:
        for page in self.pages:
            if page.raws is raws:
                self.pages.remove(page)
                await page.done.wait()
                if isinstance(page.result, BaseException):
                    raise page.result
                assert page.result is not None
                return page.result
        return await self.runtime._decode_on_threads(raws)

    def stop(self) -> None:
        self.scope.cancel()

    async def run(self) -> None:
        with self.scope:
            async for _ in self._wanted_out:
                try:
                    msg = decode_msg(await self.stream.recv_frame(MAX_SYNC_FRAME))
                except (P2PError, RemoteProtocolError) as exc:
                    self._replies_in.send_nowait(exc)
                    return
                raws = msg.get("events")
                if isinstance(raws, list) and raws:
                    page = _Verifying(raws)
                    self.pages.append(page)
                    self.runtime.spawn(self._verify, page)
                self._replies_in.send_nowait(msg)

    async def _verify(self, page: _Verifying) -> None:
        try:
            page.result = await self.runtime._decode_on_threads(page.raws)
        except Exception as exc:  # handed to the session
            page.result = exc
        except BaseException:  # the node is stopping
            page.result = P2PError("sync stopped")
            raise
        finally:
            page.done.set()
