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
