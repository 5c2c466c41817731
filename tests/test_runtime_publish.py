"""The node's own events go out from the request that made them (Runtime.send_own),
and the outgoing pace still holds: a real node service with its libp2p host."""

from __future__ import annotations

import os
import time
from pathlib import Path

import trio
from learnmesh.ledger import BlobStore, Ledger
from learnmesh.node._service import Node as ServiceNode
from learnmesh.node._service import NodeSettings
from learnmesh.protocol import Genesis, KeyPair


def _service_node(data: Path, settings: NodeSettings) -> ServiceNode:
    key = KeyPair(os.urandom(32))
    genesis = Genesis(
        name="publish",
        created_ms=int(time.time() * 1000) - 60_000,
        allocations=((key.public_key, 1000),),
    )
    data.mkdir(parents=True, exist_ok=True)
    return ServiceNode(
        data_dir=data,
        key=key,
        p2p_seed=os.urandom(32),
        genesis=genesis,
        ledger=Ledger.open(str(data / "ledger.db"), genesis),
        blobs=BlobStore(data / "blobs"),
        settings=settings,
    )


async def test_an_own_event_is_published_before_author_returns_and_the_pace_holds(
    tmp_path: Path,
) -> None:
    # A long batching window: the second event must wait for it, not go at once.
    node = _service_node(tmp_path / "n", NodeSettings(gossip_delay=2.0, gossip_rate=40.0))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            assert node.runtime is not None
            stats = node.core.stats
            first = await node.author("profile", {"name": "a", "bio": "one", "skills": []})
            # Out already, from this task: no io-loop or gossip-task switch between.
            assert stats["gossip_published"] == 1 and stats["gossip_events_out"] == 1
            assert node.runtime.outbox == []
            t1 = trio.current_time()
            await node.author("profile", {"name": "a", "bio": "two", "skills": []})
            # Inside the window: kept for the gossip task, which sends it when the window ends.
            assert stats["gossip_published"] == 1 and len(node.runtime.outbox) == 1
            with trio.fail_after(60):
                while stats["gossip_published"] < 2:
                    await trio.sleep(0.05)
            assert trio.current_time() - t1 >= 1.9  # not before the window's end
            assert stats["gossip_events_out"] == 2 and node.runtime.outbox == []
            assert node.ledger.replica.head(node.key.public_key)[0] != first.id
            nursery.cancel_scope.cancel()
    finally:
        node.ledger.close()


async def test_a_gossiped_event_is_logged_with_its_arrival_and_its_application(
    tmp_path: Path,
) -> None:
    """Two real nodes of one network over libp2p: B's applied log has, for A's
    event, when it arrived through gossip (passed B's checks) and when B applied
    it; /api/applied (devnet's propagation figures) reads both."""
    ka, kb = KeyPair(os.urandom(32)), KeyPair(os.urandom(32))
    genesis = Genesis(
        name="arrival",
        created_ms=int(time.time() * 1000) - 60_000,
        allocations=((ka.public_key, 1000), (kb.public_key, 1000)),
    )

    def make(name: str, key: KeyPair) -> ServiceNode:
        d = tmp_path / name
        d.mkdir()
        return ServiceNode(
            data_dir=d,
            key=key,
            p2p_seed=os.urandom(32),
            genesis=genesis,
            ledger=Ledger.open(str(d / "ledger.db"), genesis),
            blobs=BlobStore(d / "blobs"),
            settings=NodeSettings(),
        )

    a, b = make("a", ka), make("b", kb)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)
            assert a.p2p is not None and b.p2p is not None and b.runtime is not None
            await b.runtime.connect(a.p2p.listen_addrs()[0])
            topic = b.runtime.topic
            with trio.fail_after(60):  # both in each other's mesh, so gossip (not sync) carries it
                while not (a.p2p.mesh_peers(topic) and b.p2p.mesh_peers(topic)):
                    await trio.sleep(0.05)
            ev = await a.author("profile", {"name": "a", "bio": "hello", "skills": []})
            with trio.fail_after(60):
                while not any(r[0] == ev.id for r in b.applied_log):
                    await trio.sleep(0.05)
            row = next(r for r in b.applied_log if r[0] == ev.id)
            _, created, applied, arrived = row
            assert created == ev.timestamp and created <= arrived <= applied
            assert b.core.stats["events_applied_gossip"] >= 1  # it came by gossip
            own = next(r for r in a.applied_log if r[0] == ev.id)
            assert own[2] == own[3]  # the origin's own event: applied as it was made
            nursery.cancel_scope.cancel()
    finally:
        a.ledger.close()
        b.ledger.close()
