"""PROTOCOL.md §11 against real node processes: a peer that does not speak the
sync protocol is not asked (and not dropped for it), and gossip over the size
cap, which libp2p's layer drops before the node's validator, still costs its
sender until it is banned."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _nodes import WAIT, Network, await_for
from learnmesh.node._p2p import P2PConfig, P2PHost
from learnmesh.node._wire import MAX_GOSSIP_BYTES, gossip_topic, sync_protocol

pytestmark = pytest.mark.slow


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    network = Network(tmp_path, ["a", "c"])
    try:
        network.start(edges=[("c", "a")])
        yield network
    finally:
        network.close()


def _accept_all(_peer: str, _data: bytes) -> bool:
    return True


async def test_no_sync_with_peers_without_it_and_oversize_gossip_is_banned(net: Network) -> None:
    a = net["a"]
    topic = gossip_topic(net.network_id)
    # A peer that relays gossip but serves no sync protocol, like a light client.
    cfg = P2PConfig(identity_seed=os.urandom(32), max_message_bytes=1 << 20)
    async with P2PHost.open(cfg) as x:
        await x.subscribe(topic, _accept_all)
        await x.connect(a.addr)
        assert await x.supports(a.peer_id, sync_protocol(net.network_id), wait=WAIT)
        rounds = a.status()["stats"]["sync_rounds"]
        # a syncs with every new peer at once and with c every few seconds:
        # several rounds later it has not tried x (which would have failed, and a
        # failed open marks a peer gone and drops its connection).
        with trio.fail_after(WAIT):
            while a.status()["stats"]["sync_rounds"] < rounds + 3:
                assert a.peer_id in x.connected_peers()
                await trio.sleep(0.2)
        assert a.peer_id in x.connected_peers()
        assert x.peer_id in a.status()["peers"]
        peers: dict[str, Any] = a.get("/api/peers")
        assert x.peer_id not in peers["scores"], peers

        # Now x misbehaves: gossip bigger than the cap (but under libp2p's 1 MiB).
        for _ in range(8):
            if x.peer_id not in a.status()["peers"]:
                break
            await x.publish(topic, os.urandom(MAX_GOSSIP_BYTES + 64 * 1024))
            await trio.sleep(0.2)
        await await_for(
            lambda: x.peer_id not in a.status()["peers"],
            "a to ban the sender of oversize gossip",
            describe=lambda: a.get("/api/peers"),
        )
        view: dict[str, Any] = a.get("/api/peers")
        reasons = [r["reason"] for r in view["rejections"] if r["peer"] == x.peer_id]
        assert reasons and all("exceeds" in r for r in reasons), reasons
        assert a.status()["stats"]["peers_banned"] >= 1
