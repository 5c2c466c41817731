"""PROTOCOL.md §11 at the libp2p layer, on real in-process hosts over 127.0.0.1:
content-addressed message ids, what a peer announces by identify, and gossip
that is dropped before the validator still costing its sender."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import trio
from _hosts import WAIT, accept_all, hosts, wait_for
from learnmesh.node._p2p import P2PHost, P2PStream

TOPIC = "lm/wire"


async def recv_until(host: P2PHost, data: bytes) -> list[tuple[str, bytes]]:
    seen: list[tuple[str, bytes]] = []
    with trio.fail_after(WAIT):
        while not seen or seen[-1][1] != data:
            _topic, origin, got = await host.messages().receive()
            seen.append((origin, got))
    return seen


async def test_same_bytes_from_two_publishers_are_one_message() -> None:
    """The id is SHA-256 of the data, whoever signs it: a second origin
    publishing bytes already seen is a duplicate (libp2p's default id, origin +
    seqno, would deliver it twice)."""
    async with hosts(3) as (a, b, c):
        await a.subscribe(TOPIC, accept_all)
        await c.subscribe(TOPIC, accept_all)  # b publishes without subscribing
        await a.connect(c.listen_addrs()[0])
        await b.connect(c.listen_addrs()[0])
        await wait_for(lambda: c.peer_id in a.mesh_peers(TOPIC), "mesh a-c")
        await wait_for(lambda: c.peer_id in b.topic_peers(TOPIC), "b sees c's subscription")
        same = b"the same batch" * 10
        msg_ids = {h._pubsub.get_message_id(_message(same, h)) for h in (a, b, c)}
        assert msg_ids == {hashlib.sha256(same).digest()}
        await a.publish(TOPIC, same)
        assert await recv_until(c, same) == [(a.peer_id, same)]
        await b.publish(TOPIC, same)  # another origin, another signature, same bytes
        await b.publish(TOPIC, b"b's marker")
        assert await recv_until(c, b"b's marker") == [(b.peer_id, b"b's marker")]


def _message(data: bytes, h: P2PHost) -> Any:
    from libp2p.pubsub.pb import rpc_pb2

    return rpc_pb2.Message(data=data, from_id=h._id.to_bytes(), seqno=os.urandom(8))


async def test_mesh_relays_with_content_ids() -> None:
    """A chain a-b-c: b forwards a's messages to c, IHAVE gossip names content
    ids, and nothing is delivered twice."""
    async with hosts(3) as (a, b, c):
        for h in (a, b, c):
            await h.subscribe(TOPIC, accept_all)
        await a.connect(b.listen_addrs()[0])
        await c.connect(b.listen_addrs()[0])
        await wait_for(
            lambda: (
                {a.peer_id, c.peer_id} <= set(b.mesh_peers(TOPIC))
                and b.peer_id in c.mesh_peers(TOPIC)
            ),
            "mesh a-b-c",
        )
        payloads = [b"m%02d" % i + os.urandom(200) for i in range(20)]
        for p in payloads:
            await a.publish(TOPIC, p)
            await trio.sleep(0.01)  # libp2p's queues hold 32: pace, as the node does
        got = await recv_until(c, payloads[-1])
        assert [d for _o, d in got] == payloads
        ids = set(b._router.mcache.window(TOPIC)) | {
            e.mid for entries in b._router.mcache.history for e in entries
        }
        assert {hashlib.sha256(p).digest() for p in payloads} <= ids


async def test_identify_tells_which_peers_speak_a_protocol() -> None:
    async with hosts(2) as (a, b):

        async def echo(stream: P2PStream) -> None:
            await stream.send_frame(await stream.recv_frame(1024))

        a.set_stream_handler("/lm/test-sync/1", echo)
        await b.connect(a.listen_addrs()[0])
        # b does not serve it: a learns that from identify without trying.
        assert not await a.supports(b.peer_id, "/lm/test-sync/1", wait=WAIT)
        assert a.peer_protocols(b.peer_id) is not None
        assert await b.supports(a.peer_id, "/lm/test-sync/1", wait=WAIT)
        assert "/lm/test-sync/1" in (b.peer_protocols(a.peer_id) or [])


async def test_a_refused_negotiation_is_remembered_until_the_peer_leaves() -> None:
    async with hosts(2) as (a, b):
        await b.connect(a.listen_addrs()[0])
        await wait_for(lambda: a.peer_id in b.connected_peers(), "connected")
        # As if identify had not told yet: the first stream settles it.
        b._host.get_peerstore().clear_protocol_data(a._id)
        assert b.speaks(a.peer_id, "/lm/nobody/1")
        try:
            await b.open_stream(a.peer_id, "/lm/nobody/1")
        except Exception as exc:
            assert "does not speak" in str(exc), exc
        else:
            raise AssertionError("a has no handler for /lm/nobody/1")
        assert not b.speaks(a.peer_id, "/lm/nobody/1")
        assert a.peer_id in b.connected_peers()  # not a failure of the connection
        await b.disconnect(a.peer_id)
        await wait_for(lambda: not b._unsupported, "forgotten on disconnect")


async def test_gossip_over_the_cap_is_reported_not_free() -> None:
    """A message bigger than the receiver's cap is dropped before the validator
    runs; the receiver still reports the forwarder (the node penalises it)."""
    async with hosts(1) as (b,), hosts(1, max_message_bytes=1024 * 1024) as (big,):
        reports: list[tuple[str, str]] = []
        validated: list[bytes] = []
        b.on_misbehaviour = lambda peer, reason: reports.append((peer, reason))

        def validator(_peer: str, data: bytes) -> bool:
            validated.append(data)
            return True

        await b.subscribe(TOPIC, validator)
        await big.subscribe(TOPIC, accept_all)
        await big.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in big.mesh_peers(TOPIC), "mesh")
        await big.publish(TOPIC, b"y" * (600 * 1024))
        await wait_for(lambda: bool(reports), "report of the oversize message")
        assert reports[0][0] == big.peer_id
        assert "exceeds" in reports[0][1], reports
        assert validated == []
        await big.publish(TOPIC, b"after")
        assert (await recv_until(b, b"after"))[-1] == (big.peer_id, b"after")


async def test_rpc_over_libp2p_frame_cap_is_reported() -> None:
    """An RPC over the inbound frame cap (1 MiB) never reaches pubsub: libp2p
    resets the stream. The host reports the sender before it does."""
    async with hosts(2) as (b, big):
        reports: list[tuple[str, str]] = []
        b.on_misbehaviour = lambda peer, reason: reports.append((peer, reason))
        await b.subscribe(TOPIC, accept_all)
        await big.subscribe(TOPIC, accept_all)
        await big.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in big.mesh_peers(TOPIC), "mesh")
        # py-libp2p will not send it (its outbound queue drops RPCs over 1 MiB), so
        # write the frame on the pubsub stream as a hostile implementation would.
        stream = big._pubsub.peers[b._id]
        size = 2 * 1024 * 1024
        prefix = bytearray()
        while True:
            byte, size = size & 0x7F, size >> 7
            prefix.append(byte | (0x80 if size else 0))
            if not size:
                break
        await stream.write(bytes(prefix) + os.urandom(64 * 1024))
        await wait_for(lambda: bool(reports), "report of the oversize RPC")
        assert reports[0][0] == big.peer_id
        assert "bad pubsub RPC" in reports[0][1], reports


async def test_a_protocol_added_after_connecting_is_announced() -> None:
    """libp2p does not push identify when a handler is added; the host does, so
    a peer that identified it earlier learns that it now speaks the protocol."""
    async with hosts(2) as (a, b):
        await b.connect(a.listen_addrs()[0])
        await wait_for(lambda: b.peer_protocols(a.peer_id) is not None, "b identifies a")
        assert not b.speaks(a.peer_id, "/lm/late/1")

        async def echo(stream: P2PStream) -> None:
            await stream.send_frame(await stream.recv_frame(1024))

        a.set_stream_handler("/lm/late/1", echo)
        await wait_for(lambda: b.speaks(a.peer_id, "/lm/late/1"), "identify push")
