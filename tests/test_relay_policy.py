"""The relay policy (node/_relay_policy.py) and the blocklist (node/_blocklist.py):
pure rules with the time passed in, and a file in a real data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from learnmesh.node._blocklist import Blocklist
from learnmesh.node._relay_policy import (
    BLOCKED,
    FORWARD,
    OVER_LIMIT,
    RELAY_PER_AUTHOR_PER_MIN,
    RelayPolicy,
)

A, B = b"\x0a" * 32, b"\x0b" * 32


def eid(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_the_default_limit_lets_a_person_through_and_stops_a_flood() -> None:
    assert 60 <= RELAY_PER_AUTHOR_PER_MIN <= 1000


def test_at_most_the_limit_per_author_per_minute() -> None:
    p = RelayPolicy(per_min=3)
    got = [p.decide_one(A, eid(i), 10.0 + i, False) for i in range(5)]
    assert got == [FORWARD, FORWARD, FORWARD, OVER_LIMIT, OVER_LIMIT]
    # another author has its own window
    assert p.decide_one(B, eid(100), 14.0, False) == FORWARD
    assert p.recent(A, 14.0) == 3
    # the window slides: the first event is a minute old at t=70
    assert p.decide_one(A, eid(10), 69.9, False) == OVER_LIMIT
    assert p.decide_one(A, eid(11), 70.0, False) == FORWARD
    assert p.decide_one(A, eid(12), 70.5, False) == OVER_LIMIT
    assert p.counts == {FORWARD: 5, BLOCKED: 0, OVER_LIMIT: 4}


def test_a_copy_of_a_counted_event_is_not_counted_again() -> None:
    p = RelayPolicy(per_min=2)
    assert p.decide_one(A, eid(1), 0.0, False) == FORWARD
    for t in (0.1, 0.2, 0.3):
        assert p.decide_one(A, eid(1), t, False) == FORWARD
    assert p.recent(A, 0.3) == 1
    assert p.decide_one(A, eid(2), 0.4, False) == FORWARD
    assert p.decide_one(A, eid(3), 0.5, False) == OVER_LIMIT


def test_a_blocked_author_is_never_forwarded_and_uses_no_quota() -> None:
    p = RelayPolicy(per_min=1)
    assert p.decide_one(A, eid(1), 0.0, True) == BLOCKED
    assert p.recent(A, 0.0) == 0
    assert p.decide_one(A, eid(2), 0.0, False) == FORWARD


def test_a_message_decision_lists_what_goes_on() -> None:
    p = RelayPolicy(per_min=2)
    msg = [(A, eid(1)), (B, eid(2)), (A, eid(3)), (A, eid(4)), (B, eid(5))]
    d = p.decide(msg, 0.0, is_blocked=lambda a: a == B)
    assert d.forward == [0, 2]
    assert (d.blocked, d.over_limit) == (2, 1)
    assert not d.all_forwarded
    clean = p.decide([(A, eid(1))], 1.0)
    assert clean.all_forwarded and clean.forward == [0]


def test_tracked_authors_are_bounded() -> None:
    p = RelayPolicy(per_min=1, max_authors=10)
    for i in range(50):
        p.decide_one(i.to_bytes(32, "big"), eid(i), 0.0, False)
    assert len(p._authors) == 10


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        RelayPolicy(per_min=-1)


# -- the blocklist file ------------------------------------------------------------------


def test_blocklist_persists_and_instances_see_each_others_changes(tmp_path: Path) -> None:
    one, two = Blocklist(tmp_path), Blocklist(tmp_path)
    assert one.add(A, "spam", 5) is True
    assert one.add(A, "again", 6) is False
    assert two.is_blocked(A)  # another instance reads the changed file
    e = two.get(A)
    assert e is not None and (e.reason, e.at_ms) == ("spam", 5)
    assert two.add(B, "x" * 500, 7)
    assert one.is_blocked(B) and len(one.get(B).reason) == 200  # type: ignore[union-attr]
    assert [e.account for e in Blocklist(tmp_path).entries()] == [A, B]
    assert one.remove(A) is True and one.remove(A) is False
    assert not two.is_blocked(A)
    data = json.loads((tmp_path / "blocklist.json").read_text())
    assert list(data) == [B.hex()]
    assert oct((tmp_path / "blocklist.json").stat().st_mode & 0o777) == "0o600"


def test_blocklist_survives_a_damaged_file(tmp_path: Path) -> None:
    (tmp_path / "blocklist.json").write_text("{not json")
    bl = Blocklist(tmp_path)
    assert bl.entries() == []
    (tmp_path / "blocklist.json").write_text(
        json.dumps({A.hex(): {"reason": "r", "at_ms": 1}, "zz": {}, B.hex()[:10]: {}})
    )
    assert bl.is_blocked(A) and len(bl.entries()) == 1
    with pytest.raises(ValueError):
        bl.add(b"short")


# -- the node's gossip validator applies the policy (in-process, no network) -------------


def _node(tmp_path: Path, per_min: int) -> tuple[Any, Any, list[Any]]:
    import os
    import time

    from _service import service_node
    from learnmesh.node._service import NodeSettings
    from learnmesh.protocol import ChainWriter, Genesis, KeyPair

    me, spammer, other = (KeyPair(os.urandom(32)) for _ in range(3))
    now_ms = int(time.time() * 1000)
    genesis = Genesis(
        name="relay",
        created_ms=now_ms - 60_000,
        allocations=tuple(sorted((k.public_key, 1000) for k in (me, spammer, other))),
    )
    node = service_node(
        tmp_path, me, genesis, settings=NodeSettings(relay_per_author_per_min=per_min)
    )
    chains = []
    for k in (spammer, other):
        w = ChainWriter(k, genesis.network_id)
        chains.append(
            [
                w.sign("profile", {"name": f"p{i}", "bio": "", "skills": []}, now_ms - 1000 + i)
                for i in range(5)
            ]
        )
    return node, genesis, chains


def test_the_gossip_validator_holds_back_over_the_limit_and_blocked(tmp_path: Path) -> None:
    from learnmesh.node._core import Publish
    from learnmesh.node._wire import encode_gossip

    node, genesis, (spam, other) = _node(tmp_path, per_min=2)
    net = genesis.network_id

    def msg(events: list[Any]) -> bytes:
        return encode_gossip(net, [e.raw for e in events])

    core = node.core  # the node service: its gossip input, as the runtime calls it

    def gossip(peer: str, data: bytes) -> bool:
        return core.on_gossip(peer, data, node.now())

    def published() -> list[bytes]:
        return [io.raw for io in core.take_io() if isinstance(io, Publish)]

    assert gossip("peerA", msg(spam[:2])) is True
    # the third of the spammer's events in a minute: admitted, not forwarded
    assert gossip("peerA", msg(spam[2:3])) is False
    assert node.stats["relay_over_limit"] == 1
    assert core.queued == 3  # every valid event still goes to admission
    assert published() == []
    # a mixed message: not forwarded as it came; the other author's event is
    # published again by this node on its own
    assert gossip("peerB", msg([spam[3], other[0]])) is False
    assert published() == [other[0].raw]
    # a copy of an event already forwarded does not count again
    assert gossip("peerC", msg(spam[:1])) is True
    # blocked: never forwarded, whatever the limit
    node.blocklist.add(other[1].author, "test")
    assert gossip("peerA", msg(other[1:2])) is False
    assert node.stats["relay_blocked"] == 1
    assert node.stats["relay_over_limit"] == 2
    # the queued events are admitted one gossip message at a time
    while core.admit_queued(node.now()):
        pass
    assert core.queued == 0
    assert node.ledger.replica.heads[spam[0].author] == 4
    node.ledger.close()


def test_the_environment_may_raise_the_default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from learnmesh.node._relay_policy import default_relay_limit
    from learnmesh.node._service import NodeSettings

    monkeypatch.delenv("LEARNMESH_RELAY_PER_AUTHOR_PER_MIN", raising=False)
    assert default_relay_limit() == RELAY_PER_AUTHOR_PER_MIN
    assert NodeSettings().relay_per_author_per_min == RELAY_PER_AUTHOR_PER_MIN
    monkeypatch.setenv("LEARNMESH_RELAY_PER_AUTHOR_PER_MIN", "100000")
    assert NodeSettings().relay_per_author_per_min == 100_000
    monkeypatch.setenv("LEARNMESH_RELAY_PER_AUTHOR_PER_MIN", "lots")
    assert default_relay_limit() == RELAY_PER_AUTHOR_PER_MIN
