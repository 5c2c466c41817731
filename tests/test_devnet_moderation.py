"""The devnet's moderation step (devnet/_scenario_moderation.py) on a small real
cluster: 4 node processes in a sparse topology, the first one a trusted seed.
The disputes scenario calls the same function on its 5+ nodes."""

from __future__ import annotations

import random
from pathlib import Path

from learnmesh.devnet._cluster import Cluster, sparse_topology
from learnmesh.devnet._scenario_moderation import moderation_step


def test_a_spammer_is_flagged_hidden_everywhere_and_blocked(tmp_path: Path) -> None:
    with Cluster(tmp_path / "devnet", 4) as c:
        c.init_all()
        alloc = {n.account: 10_000 for n in c.nodes}
        c.make_genesis("devnet-moderation", alloc, trusted=[c.nodes[0].account, c.nodes[1].account])
        c.start_all(sparse_topology(4, random.Random(7)))
        c.wait_connected(timeout=120)
        logs: list[str] = []
        r = moderation_step(c, timeout=180.0, log=logs.append)
    assert r["error"] is None, (r, logs)
    assert r["spammer"] == "n03"
    assert set(r["flaggers"]) == {"n00", "n01"}  # the two seeds hold all the trust
    assert r["blocker"] not in (r["spammer"], *r["flaggers"])
    assert len(r["spam_bounties"]) == 3 and len(r["spam_after_block"]) == 2
    assert r["spam_hidden_on_nodes"] == r["live_nodes"] == 4
    assert r["hidden_agreed"] and "of all trust" in r["hidden_why"]
    assert r["spam_reached_all"] and r["blocked_hidden_on_blocker"]
    assert r["blocked_relay_stopped"] and r["relay_blocked_events"] >= 1
    assert r["converged"] and r["ok"], r
