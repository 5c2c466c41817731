"""The node's private message logic (node/_messages.py) on a real Node object
with real SQLite files and a hand-driven clock, fed through the same validator
gossip uses: relaying (kept sealed, forwarded), delivery (opened, stored, not
forwarded), replays, the blocklist, and each rate limit: per forwarding peer,
per recipient on a relay, per sender at the recipient, and per own send.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from _service import service_node
from learnmesh.node._blocklist import Blocklist
from learnmesh.node._dm import RETENTION_MS, encode_outer, seal_dm
from learnmesh.node._messages import Messages
from learnmesh.node._service import Node, UserError
from learnmesh.protocol import Genesis, KeyPair

T0 = 1_800_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = T0
        self.mono = 1000.0

    def wall(self) -> float:
        return self.ms / 1000

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
        self.mono += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def node(tmp_path: Path, clock: Clock) -> Iterator[Node]:
    key = KeyPair(os.urandom(32))
    genesis = Genesis(name="dm", created_ms=T0 - 60_000, allocations=((key.public_key, 10),))
    n = service_node(tmp_path, key, genesis, clock=clock.wall, monotonic=clock.monotonic)
    try:
        yield n
    finally:
        n.ledger.close()


def _msg(sender: KeyPair, to: bytes, node: Node, text: str = "hi") -> bytes:
    raw, _ = seal_dm(sender, node.network, to, text, node.now_ms(), node.now_ms() + 3_600_000)
    return raw


def test_relays_sealed_and_delivers_its_own(node: Node, tmp_path: Path) -> None:
    m: Messages = node.messages
    alice, bob = KeyPair(os.urandom(32)), KeyPair(os.urandom(32))
    for_bob = _msg(alice, bob.public_key, node, "for bob, relayed")
    assert m._validate("peerA", for_bob) is True  # kept sealed and passed on
    assert node.stats["dm_relayed"] == 1
    assert m._validate("peerB", for_bob) is False  # already here: not again
    assert m.relay.count() == 1
    for_me = _msg(alice, node.key.public_key, node, "for this node")
    assert m._validate("peerA", for_me) is False  # ours: opened, not forwarded
    [conv] = m.inbox.conversations()
    assert conv["peer"] == alice.public_key and conv["last_text"] == "for this node"
    # replayed (the same bytes, or the same signed message re-sealed): one copy
    assert m.receive(for_me) == "duplicate"
    assert m.inbox.conversations()[0]["count"] == 1
    # no plaintext of the relayed message anywhere on this node
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert b"for bob, relayed" not in p.read_bytes(), p


def test_refused_messages_are_counted_by_code_and_bad_shapes_cost_the_peer(node: Node) -> None:
    m = node.messages
    alice = KeyPair(os.urandom(32))
    good = _msg(alice, node.key.public_key, node)
    bad = bytearray(good)
    bad[-5] ^= 0x01  # inside the sealed part
    assert m._validate("peerA", bytes(bad)) is False
    assert node.stats["dm_refused:unsealable"] == 1
    assert node.peers.score("peerA", node.monotonic()) == 0  # a relay could not tell
    huge = encode_outer(node.network, alice.public_key, node.now_ms() + 1000, os.urandom(20_000))
    assert m._validate("peerB", huge) is False
    assert node.stats["dm_refused:too_large"] == 1
    assert node.peers.score("peerB", node.monotonic()) > 0  # any relay could tell
    expired = encode_outer(node.network, alice.public_key, node.now_ms() - 1, b"x")
    assert m._validate("peerC", expired) is False
    assert node.stats["dm_refused:expired"] == 1


def test_blocklist_drops_a_senders_messages(node: Node) -> None:
    m = node.messages
    alice, carol = KeyPair(os.urandom(32)), KeyPair(os.urandom(32))
    Blocklist(node.data_dir).add(alice.public_key, "spam")
    assert m.receive(_msg(alice, node.key.public_key, node)) == "blocked"
    assert m.receive(_msg(carol, node.key.public_key, node)) == "delivered"
    assert node.stats["dm_blocked"] == 1
    assert [c["peer"] for c in m.inbox.conversations()] == [carol.public_key]


def test_rate_limits(node: Node, clock: Clock) -> None:
    m = node.messages
    # per forwarding peer: a burst, then dropped until tokens come back
    _, burst = Messages.PEER_RATE
    senders = [KeyPair(os.urandom(32)) for _ in range(int(burst) + 5)]
    took = sum(
        m._validate("flooder", _msg(s, KeyPair(os.urandom(32)).public_key, node)) for s in senders
    )
    assert took == burst and node.stats["dm_rate_limited"] == 5
    other = KeyPair(os.urandom(32)).public_key
    assert m._validate("someone-else", _msg(senders[0], other, node))  # its own bucket
    clock.advance(1.0)
    assert m._validate("flooder", _msg(senders[0], KeyPair(os.urandom(32)).public_key, node))

    # per recipient on a relay (the author is sealed away)
    victim = KeyPair(os.urandom(32)).public_key
    _, rburst = Messages.RECIPIENT_RATE
    results = [
        m._validate(f"peer{i}", _msg(KeyPair(os.urandom(32)), victim, node))
        for i in range(int(rburst) + 3)
    ]
    assert sum(results) == rburst

    # per sender at the recipient
    alice = KeyPair(os.urandom(32))
    _, sburst = Messages.SENDER_RATE
    delivered = 0
    for i in range(int(sburst) + 3):
        try:
            delivered += m.receive(_msg(alice, node.key.public_key, node, f"m{i}")) == "delivered"
        except Exception as exc:
            assert "too many messages from this sender" in str(exc)
    assert delivered == sburst


async def test_own_sends_are_limited_and_bad_input_is_a_user_error(node: Node) -> None:
    m = node.messages
    bob = KeyPair(os.urandom(32)).public_key
    _, burst = Messages.SEND_RATE
    sent = 0
    with pytest.raises(UserError) as info:
        for i in range(int(burst) + 1):
            await m.send(bob, f"note {i}")
            sent += 1
    assert sent == burst and info.value.status == 429
    for text, words in (("", "some text"), ("x" * 4001, "4000"), ("hi", "yourself")):
        node.messages._sends.tokens = 10
        to = node.key.public_key if words == "yourself" else bob
        with pytest.raises(UserError, match=words):
            await m.send(to, text)
    # the sent copies are kept, in order, and sealed copies wait in the relay store
    conv = m.inbox.conversation(bob)
    assert [s.body for s in conv][:2] == ["note 0", "note 1"] and all(s.outgoing for s in conv)
    assert m.relay.count() == burst
    await trio.sleep(0)


def test_relay_store_forgets_after_the_retention(node: Node, clock: Clock) -> None:
    m = node.messages
    m.receive(_msg(KeyPair(os.urandom(32)), KeyPair(os.urandom(32)).public_key, node))
    assert m.relay.count() == 1
    clock.advance(RETENTION_MS / 1000)
    m.relay.expire(node.now_ms())
    assert m.relay.count() == 0
