"""Real py-libp2p hosts on 127.0.0.1, all in one process, through learnmesh.node._p2p.

Async tests run under pytest-trio's trio_mode (pyproject.toml).
"""

from __future__ import annotations

import os
import socket

import libp2p.pubsub.pubsub as _pubsub_mod
import libp2p.pubsub.utils as libp2p_pubsub_utils
import multiaddr
import pytest
import trio
from _hosts import WAIT, accept_all, hosts, wait_for
from learnmesh.node._p2p import P2PConfig, P2PError, P2PHost, P2PStream, _strip_teardown_noise
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.pb import rpc_pb2
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.stream_muxer.yamux.yamux import YamuxStream

TOPIC = "lm/test"


async def chain(a: P2PHost, b: P2PHost, c: P2PHost) -> None:
    """Connect a-b-c and wait until b meshes with both ends."""
    await a.connect(b.listen_addrs()[0])
    await c.connect(b.listen_addrs()[0])
    await wait_for(
        lambda: (
            b.peer_id in a.mesh_peers(TOPIC)
            and b.peer_id in c.mesh_peers(TOPIC)
            and {a.peer_id, c.peer_id} <= set(b.mesh_peers(TOPIC))
        ),
        "mesh a-b-c",
    )


async def recv_until(host: P2PHost, data: bytes) -> list[bytes]:
    """Collect message payloads until ``data`` arrives."""
    seen: list[bytes] = []
    with trio.fail_after(WAIT):
        while not seen or seen[-1] != data:
            _topic, _origin, got = await host.messages().receive()
            seen.append(got)
    return seen


async def test_chain_forwarding_and_no_echo() -> None:
    async with hosts(3) as (a, b, c):
        for h in (a, b, c):
            await h.subscribe(TOPIC, accept_all)
        await chain(a, b, c)
        assert b.peer_id in a.topic_peers(TOPIC)
        assert a.peer_id not in c.connected_peers()

        await a.publish(TOPIC, b"from-a")
        with trio.fail_after(WAIT):
            assert await c.messages().receive() == (TOPIC, a.peer_id, b"from-a")
            assert await b.messages().receive() == (TOPIC, a.peer_id, b"from-a")
        # A's own publish must not come back: the first thing A sees is C's marker.
        await c.publish(TOPIC, b"marker-c")
        with trio.fail_after(WAIT):
            assert await a.messages().receive() == (TOPIC, c.peer_id, b"marker-c")


async def test_own_messages_reach_neighbours_before_the_mesh_forms() -> None:
    # A low watermark of 0 and no heartbeat after the first: no mesh is ever
    # grafted, as for a node whose neighbours' subscriptions have not been acted
    # on yet. What arrives was sent by its author to every neighbour in the topic.
    cfg = {"heartbeat_interval": 300.0, "mesh_degree": 1, "mesh_degree_low": 0}
    async with hosts(3, mesh_degree_high=1, **cfg) as (a, b, c):
        for h in (a, b, c):
            await h.subscribe(TOPIC, accept_all)
        await b.connect(a.listen_addrs()[0])
        await c.connect(a.listen_addrs()[0])
        await wait_for(lambda: {b.peer_id, c.peer_id} <= set(a.topic_peers(TOPIC)), "subs")
        assert a.mesh_peers(TOPIC) == [] and b.mesh_peers(TOPIC) == []
        await a.publish(TOPIC, b"first")
        for h in (b, c):
            assert await recv_until(h, b"first") == [b"first"]
        # b's message goes to its only neighbour, a; with no mesh a does not forward it.
        await b.publish(TOPIC, b"from b")
        assert await recv_until(a, b"from b") == [b"from b"]


async def test_validator_reject_stops_forwarding() -> None:
    calls: list[tuple[str, bytes]] = []

    def b_validator(peer: str, data: bytes) -> bool:
        calls.append((peer, data))
        return not data.startswith(b"bad")

    async with hosts(3) as (a, b, c):
        # A rejects everything from others; its own publishes must still go out.
        await a.subscribe(TOPIC, lambda _p, _d: False)
        await b.subscribe(TOPIC, b_validator)
        await c.subscribe(TOPIC, accept_all)
        await chain(a, b, c)

        await a.publish(TOPIC, b"bad-1")
        await a.publish(TOPIC, b"good-1")
        await a.publish(TOPIC, b"bad-2")
        await a.publish(TOPIC, b"good-2")
        assert await recv_until(c, b"good-2") in ([b"good-1", b"good-2"], [b"good-2", b"good-1"])
        seen_b = await recv_until(b, b"good-2")
        assert not any(d.startswith(b"bad") for d in seen_b)
        assert (a.peer_id, b"bad-1") in calls  # validator sees the forwarding neighbour
        # A sentinel sent after everything else proves nothing bad is still in flight.
        await a.publish(TOPIC, b"sentinel")
        assert await recv_until(c, b"sentinel") == [b"sentinel"]


async def test_large_message_and_caps() -> None:
    async with hosts(2) as (a, b), hosts(1, max_message_bytes=700 * 1024) as (big,):
        for h in (a, b, big):
            await h.subscribe(TOPIC, accept_all)
        await a.connect(b.listen_addrs()[0])
        await big.connect(b.listen_addrs()[0])
        await wait_for(
            lambda: a.peer_id in b.mesh_peers(TOPIC) and big.peer_id in b.mesh_peers(TOPIC),
            "mesh",
        )
        payload = os.urandom(200 * 1024)
        await a.publish(TOPIC, payload)
        with trio.fail_after(WAIT):
            assert await b.messages().receive() == (TOPIC, a.peer_id, payload)

        with pytest.raises(P2PError):
            await a.publish(TOPIC, b"x" * (512 * 1024 + 1))
        # Receive side: B (512 KiB cap) drops a 600 KiB message from a host allowed
        # to send it, and keeps working.
        await big.publish(TOPIC, b"y" * (600 * 1024))
        await big.publish(TOPIC, b"after-big")
        assert await recv_until(b, b"after-big") == [b"after-big"]


async def test_stream_frames() -> None:
    async with hosts(2, max_frame_bytes=64 * 1024) as (a, b):

        async def echo(stream: P2PStream) -> None:
            req = await stream.recv_frame(1024)
            await stream.send_frame(req[::-1])
            await stream.send_frame(b"z" * 2000)

        b.set_stream_handler("/lm/test-echo/1", echo)
        await a.connect(b.listen_addrs()[0])
        s = await a.open_stream(b.peer_id, "/lm/test-echo/1")
        assert s.remote_peer == b.peer_id
        await s.send_frame(b"hello")
        with trio.fail_after(WAIT):
            assert await s.recv_frame(1024) == b"olleh"
            with pytest.raises(P2PError, match="exceeds"):
                await s.recv_frame(1000)
        with pytest.raises(P2PError):
            await s.send_frame(b"q" * (64 * 1024 + 1))
        await s.close()

        with pytest.raises(P2PError):
            await a.open_stream(b.peer_id, "/lm/no-such-protocol/1")


async def test_block_and_unblock() -> None:
    async with hosts(2) as (a, b):
        for h in (a, b):
            await h.subscribe(TOPIC, accept_all)
        await a.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in a.topic_peers(TOPIC), "subscription")

        a.block_peer(b.peer_id)
        await wait_for(lambda: not a.connected_peers() and not b.connected_peers(), "disconnect")
        with pytest.raises(P2PError):
            await a.connect(b.listen_addrs()[0])
        with pytest.raises(P2PError):
            await b.connect(a.listen_addrs()[0])
        assert a.connected_peers() == [] and a.peer_id not in b.connected_peers()

        a.unblock_peer(b.peer_id)
        assert await b.connect(a.listen_addrs()[0]) == a.peer_id
        await wait_for(lambda: b.peer_id in a.topic_peers(TOPIC), "resubscription")
        await wait_for(lambda: a.peer_id in b.mesh_peers(TOPIC), "mesh")
        await b.publish(TOPIC, b"after-unblock")
        assert await recv_until(a, b"after-unblock") == [b"after-unblock"]


async def test_plaintext_peer_refused() -> None:
    async with hosts(1) as (p2p,):
        kp = create_new_key_pair()
        listen = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")
        plain = new_host(
            key_pair=kp,
            sec_opt={TProtocol(PLAINTEXT_PROTOCOL_ID): InsecureTransport(kp)},
            listen_addrs=[listen],
        )
        async with plain.run(listen_addrs=[listen]):
            target = info_from_p2p_addr(multiaddr.Multiaddr(p2p.listen_addrs()[0]))
            with trio.fail_after(WAIT), pytest.raises(Exception):  # noqa: B017
                await plain.connect(target)
            with pytest.raises(P2PError):
                await p2p.connect(str(plain.get_addrs()[0]))
            assert p2p.connected_peers() == []


async def test_restart_keeps_peer_id() -> None:
    seed = os.urandom(32)
    async with P2PHost.open(P2PConfig(identity_seed=seed)) as h1:
        first = h1.peer_id
        assert all(addr.endswith(f"/p2p/{first}") for addr in h1.listen_addrs())
        assert "/tcp/0/" not in h1.listen_addrs()[0]
    async with P2PHost.open(P2PConfig(identity_seed=seed)) as h2:
        assert h2.peer_id == first
    assert P2PHost(P2PConfig(identity_seed=os.urandom(32))).peer_id != first
    with pytest.raises(P2PError):
        P2PHost(P2PConfig(identity_seed=b"short"))


async def test_slow_consumer_drops_and_counts() -> None:
    async with hosts(1) as (a,), hosts(1, inbox_size=2) as (b,):
        for h in (a, b):
            await h.subscribe(TOPIC, accept_all)
        await a.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in a.mesh_peers(TOPIC), "mesh")
        for i in range(10):
            await a.publish(TOPIC, b"m%d" % i)
        await wait_for(lambda: b.dropped == 8, "drops")
        got = [b.messages().receive_nowait()[2] for _ in range(2)]
        assert len(got) == 2


async def test_restart_publishes_are_not_deduplicated() -> None:
    """A restarted node (same seed, same id) must not reuse seqnos peers still remember."""
    seed = os.urandom(32)
    async with hosts(1) as (b,):
        await b.subscribe(TOPIC, accept_all)
        for round_ in range(2):
            async with P2PHost.open(P2PConfig(identity_seed=seed)) as a:
                await a.subscribe(TOPIC, accept_all)
                await a.connect(b.listen_addrs()[0])
                await wait_for(lambda: b.peer_id in a.mesh_peers(TOPIC), "mesh")
                for i in range(5):
                    await a.publish(TOPIC, b"r%d-%d" % (round_, i))
                assert len(await recv_until(b, b"r%d-4" % round_)) == 5
            await wait_for(lambda: not b.connected_peers(), "disconnect")


async def test_body_error_propagates_unwrapped_and_channel_ends() -> None:
    with pytest.raises(KeyError):
        async with P2PHost.open(P2PConfig(identity_seed=os.urandom(32))):
            raise KeyError("boom")
    async with P2PHost.open(P2PConfig(identity_seed=os.urandom(32))) as h:
        inbox = h.messages()
    with pytest.raises(trio.EndOfChannel):
        await inbox.receive()


def test_teardown_noise_is_stripped() -> None:
    noise = RuntimeError("Nursery is closed to new arrivals")
    assert _strip_teardown_noise(noise) is None
    assert _strip_teardown_noise(BaseExceptionGroup("x", [noise])) is None
    real = ValueError("real")
    rest = _strip_teardown_noise(BaseExceptionGroup("x", [noise, real]))
    assert isinstance(rest, BaseExceptionGroup) and rest.exceptions == (real,)


async def test_port_in_use_raises() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        cfg = P2PConfig(identity_seed=os.urandom(32), listen_port=sock.getsockname()[1])
        with pytest.raises(P2PError, match="could not listen"):
            async with P2PHost.open(cfg):
                pass


async def test_rejection_is_per_forwarder() -> None:
    """C refuses everything relayed by B1; the same messages still arrive via B2."""
    async with hosts(4) as (a, b1, b2, c):

        def not_from_b1(peer: str, _data: bytes) -> bool:
            return peer != b1.peer_id

        for h in (a, b1, b2):
            await h.subscribe(TOPIC, accept_all)
        await c.subscribe(TOPIC, not_from_b1)
        for mid in (b1, b2):
            await a.connect(mid.listen_addrs()[0])
            await c.connect(mid.listen_addrs()[0])
        await wait_for(
            lambda: all({a.peer_id, c.peer_id} <= set(mid.mesh_peers(TOPIC)) for mid in (b1, b2)),
            "diamond mesh",
        )
        want = {b"d%d" % i for i in range(10)}
        for data in sorted(want):
            await a.publish(TOPIC, data)
        got: list[bytes] = []
        with trio.fail_after(WAIT):
            while set(got) != want:
                got.append((await c.messages().receive())[2])
        assert len(got) == len(want)  # each delivered once


async def test_unsigned_messages_deliver_and_signers_refuse_them() -> None:
    """sign_messages=False: no libp2p signature, delivery and forwarder-validation
    unchanged; a signing node drops unsigned messages (a network must agree)."""
    calls: list[str] = []

    def b_validator(peer: str, _data: bytes) -> bool:
        calls.append(peer)
        return True

    async with hosts(3, sign_messages=False) as (a, b, c), hosts(1) as (signer,):
        await a.subscribe(TOPIC, accept_all)
        await b.subscribe(TOPIC, b_validator)
        await c.subscribe(TOPIC, accept_all)
        await signer.subscribe(TOPIC, accept_all)
        await chain(a, b, c)
        await signer.connect(b.listen_addrs()[0])
        await wait_for(lambda: signer.peer_id in b.mesh_peers(TOPIC), "signer meshed")

        await a.publish(TOPIC, b"unsigned-1")
        with trio.fail_after(WAIT):
            assert await c.messages().receive() == (TOPIC, a.peer_id, b"unsigned-1")
        assert calls == [a.peer_id]  # the validator still sees the forwarding neighbour
        # Own publishes are still filtered out by origin: A's first message is C's.
        await c.publish(TOPIC, b"from-c")
        with trio.fail_after(WAIT):
            assert await a.messages().receive() == (TOPIC, c.peer_id, b"from-c")
        # The signer got both messages from B and refused them; its own signed
        # message is accepted by the unsigned nodes.
        await signer.publish(TOPIC, b"signed")
        assert await recv_until(c, b"signed") == [b"signed"]
        with pytest.raises(trio.WouldBlock):
            signer.messages().receive_nowait()


async def test_idontwant_only_for_large_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    async with hosts(3, idontwant_min_bytes=1024) as (a, b, c):
        for h in (a, b, c):
            await h.subscribe(TOPIC, accept_all)
        await chain(a, b, c)
        sent: list[str] = []
        router = b._router
        emit = router.emit_idontwant

        async def counting(msg_ids: list[bytes], to_peer: object) -> None:
            sent.append(str(to_peer))
            await emit(msg_ids, to_peer)  # type: ignore[arg-type]

        monkeypatch.setattr(router, "emit_idontwant", counting)
        await a.publish(TOPIC, b"s" * 1023)
        assert await recv_until(c, b"s" * 1023) == [b"s" * 1023]
        assert sent == []
        await a.publish(TOPIC, b"L" * 1024)
        assert await recv_until(c, b"L" * 1024) == [b"L" * 1024]
        assert sent == [c.peer_id]  # not back to A, the forwarder and origin


async def test_yamux_credit_per_half_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small messages cost no window updates; a frame far larger than the
    256 KiB window still gets through (credit is returned as it is read)."""
    updates: list[int] = []
    orig = YamuxStream.send_window_update

    async def counting(self: YamuxStream, increment: int, skip_lock: bool = False) -> None:
        updates.append(increment)
        await orig(self, increment, skip_lock)

    monkeypatch.setattr(YamuxStream, "send_window_update", counting)
    async with hosts(2) as (a, b):
        for h in (a, b):
            await h.subscribe(TOPIC, accept_all)
        await a.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in a.mesh_peers(TOPIC), "mesh")
        updates.clear()
        for i in range(100):
            await a.publish(TOPIC, b"m%03d" % i + b"x" * 400)
            await trio.sleep(0.01)  # libp2p's queues hold 32: pace, as the node does
        assert len(await recv_until(b, b"m099" + b"x" * 400)) == 100
        assert len(updates) <= 2  # ~50 KiB read: under half a window

        async def echo(stream: P2PStream) -> None:
            await stream.send_frame(await stream.recv_frame(4 * 1024 * 1024))

        b.set_stream_handler("/lm/test-big/1", echo)
        big = os.urandom(3 * 1024 * 1024)
        s = await a.open_stream(b.peer_id, "/lm/test-big/1")
        with trio.fail_after(WAIT):
            await s.send_frame(big)
            assert await s.recv_frame(4 * 1024 * 1024) == big
        await s.close()


async def test_sender_record_verified_once_per_neighbour(monkeypatch: pytest.MonkeyPatch) -> None:
    verified: list[bytes] = []
    orig = libp2p_pubsub_utils.consume_envelope

    def counting(data: bytes, domain: str) -> object:
        verified.append(data)
        return orig(data, domain)

    monkeypatch.setattr(libp2p_pubsub_utils, "consume_envelope", counting)
    async with hosts(2) as (a, b):
        for h in (a, b):
            await h.subscribe(TOPIC, accept_all)
        await a.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in a.mesh_peers(TOPIC), "mesh")
        verified.clear()
        for i in range(30):
            await a.publish(TOPIC, b"r%d" % i)
        assert len(await recv_until(b, b"r29")) == 30
        assert len(verified) <= 2  # at most once on each side, not once per RPC

        # A record that differs from the cached one gets the full check: B's
        # record presented as coming from A is refused.
        forged = rpc_pb2.RPC(senderRecord=own_record(b))
        assert not _pubsub_mod.maybe_consume_signed_record(forged, b._host, a._id)
        genuine = rpc_pb2.RPC(senderRecord=own_record(a))
        assert _pubsub_mod.maybe_consume_signed_record(genuine, b._host, a._id)


def own_record(h: P2PHost) -> bytes:
    envelope = h._host.get_peerstore().get_local_record()
    assert envelope is not None
    return envelope.marshal_envelope()


async def test_a_large_message_is_prevalidated_once_before_the_validator() -> None:
    """A message of at least `prevalidate_bytes` is handed to the async
    prevalidation hook (off the loop's synchronous validator) before the
    validator sees it; a small one, and a duplicate, are not."""
    calls: list[tuple[str, str, int]] = []  # (what, from, size)

    async def pre(peer: str, data: bytes) -> None:
        await trio.sleep(0.01)  # a real hook awaits worker threads
        calls.append(("pre", peer, len(data)))

    def validate(peer: str, data: bytes) -> bool:
        calls.append(("validate", peer, len(data)))
        return True

    async with hosts(3) as (a, b, c):
        await b.subscribe(TOPIC, validate, prevalidate=pre, prevalidate_bytes=10_000)
        for h in (a, c):
            await h.subscribe(TOPIC, accept_all)
        await chain(a, b, c)
        big, small = os.urandom(50_000), os.urandom(100)
        await a.publish(TOPIC, big)
        await a.publish(TOPIC, small)
        assert await recv_until(b, small) == [big, small]
        assert calls == [
            ("pre", a.peer_id, 50_000),
            ("validate", a.peer_id, 50_000),
            ("validate", a.peer_id, 100),
        ]
        # The same big message again from c: seen, so neither runs again.
        await c.publish(TOPIC, big)
        await a.publish(TOPIC, b"after")
        await recv_until(b, b"after")
        assert [x for x in calls if x[2] == 50_000] == calls[:2]
