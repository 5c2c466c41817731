"""What a node logs of each event it applies (devnet's propagation figures):
real node services with their libp2p hosts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import trio
from _service import service_node
from learnmesh.protocol import Genesis, KeyPair


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

    a, b = service_node(tmp_path / "a", ka, genesis), service_node(tmp_path / "b", kb, genesis)
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
