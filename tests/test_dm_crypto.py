"""The private message envelope (node/_dm.py) and the stores that hold it
(node/_messages.py): test vectors, round trips, and each way a message is refused
with a reason a person can read: a flipped byte anywhere, a wrong recipient, a
forged sender, a replay, an expired or oversized message, a bad fetch request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from learnmesh.node._dm import (
    MAX_OUTER_BYTES,
    MAX_SEALED_BYTES,
    MAX_TEXT_CHARS,
    RETENTION_MS,
    SIGN_DOMAIN,
    DMError,
    decode_outer,
    encode_outer,
    open_dm,
    pad,
    seal_dm,
    unpad,
    x25519_private,
    x25519_public,
)
from learnmesh.node._messages import Inbox, RelayStore, Stored
from learnmesh.protocol import KeyPair, canonical_pack, strict_unpack
from nacl.public import Box, SealedBox

VECTORS = json.loads((Path(__file__).parent / "vectors" / "dm.json").read_text())
NET = bytes.fromhex(VECTORS["network"])
T0 = VECTORS["sent_ms"]
ALICE = KeyPair(bytes.fromhex(VECTORS["sender_seed"]))
BOB = KeyPair(bytes.fromhex(VECTORS["recipient_seed"]))
CAROL = KeyPair(bytes([0xC3]) * 32)


def _seal(text: str = "hello bob", to: KeyPair = BOB, sender: KeyPair = ALICE) -> bytes:
    raw, _ = seal_dm(sender, NET, to.public_key, text, T0, T0 + 3_600_000)
    return raw


def _open(raw: bytes, key: KeyPair = BOB, now: int = T0 + 1000) -> str:
    return open_dm(decode_outer(raw, NET, now), key, now).body


# -- vectors -------------------------------------------------------------------------


def test_vectors_keys_message_and_inner_box() -> None:
    v = VECTORS
    assert ALICE.public_key.hex() == v["sender_account"]
    assert bytes(x25519_public(ALICE.public_key)).hex() == v["sender_x25519_public"]
    assert bytes(x25519_private(ALICE)).hex() == v["sender_x25519_private"]
    assert bytes(x25519_public(BOB.public_key)).hex() == v["recipient_x25519_public"]
    # the X25519 key pair converted from Ed25519 is a real pair
    assert bytes(x25519_private(ALICE).public_key) == bytes(x25519_public(ALICE.public_key))
    message = canonical_pack(
        {
            "body": v["text"],
            "from": ALICE.public_key,
            "nonce": bytes.fromhex(v["nonce"]),
            "sent_ms": T0,
            "to": BOB.public_key,
        }
    )
    assert message.hex() == v["message"]
    sig = ALICE.sign(SIGN_DOMAIN + NET + message)
    assert sig.hex() == v["signature"]
    padded = pad(canonical_pack([message, sig]))
    assert len(padded) == v["padded_len"]
    inner = Box(x25519_private(ALICE), x25519_public(BOB.public_key)).encrypt(
        padded, bytes.fromhex(v["box_nonce"])
    )
    assert bytes(inner).hex() == v["inner_box"]
    for n, size in v["pad_sizes"].items():
        assert len(pad(bytes(int(n)))) == size


def test_vector_wire_message_opens() -> None:
    wire = bytes.fromhex(VECTORS["wire"])
    outer = decode_outer(wire, NET, T0 + 1)
    assert outer.recipient == BOB.public_key
    assert outer.expiry_ms == VECTORS["expiry_ms"]
    got = open_dm(outer, BOB, T0 + 1)
    assert got.body == VECTORS["text"]
    assert got.sender == ALICE.public_key
    assert got.sent_ms == T0
    assert got.id.hex() == VECTORS["message_id"]
    # the relay's view: routing fields only, the sender's key appears nowhere
    assert ALICE.public_key not in wire
    assert VECTORS["text"].encode() not in wire


# -- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["hi", "ünïcødé ✓ 学习", "x" * 250, "y" * 1000, "z" * MAX_TEXT_CHARS, "é" * 3800],
)
def test_round_trip(text: str) -> None:
    raw = _seal(text)
    assert len(raw) <= MAX_OUTER_BYTES
    assert _open(raw) == text


def test_lengths_are_bucketed() -> None:
    """Messages of different lengths in one bucket are the same size on the wire."""
    sizes = {len(_seal("a" * n)) for n in (1, 20, 40, 60)}
    assert len(sizes) == 1, sizes
    assert len(_seal("a" * 400)) > len(_seal("a"))


def test_each_message_is_sealed_afresh() -> None:
    """Same text, same people: nothing on the wire repeats (ephemeral keys, nonces)."""
    a, b = _seal("same"), _seal("same")
    assert a != b
    sa, sb = decode_outer(a, NET, T0).sealed, decode_outer(b, NET, T0).sealed
    assert sa[:32] != sb[:32]  # the ephemeral public keys differ


def test_unpad_refuses_bad_padding() -> None:
    p = pad(b"abc")
    assert unpad(p) == b"abc"
    with pytest.raises(DMError, match="padding"):
        unpad(p[:-1])
    with pytest.raises(DMError, match="padding"):
        unpad(p[:-1] + b"\x01")


# -- refusals, each with a reason ------------------------------------------------------


def test_every_flipped_byte_of_the_sealed_part_is_refused() -> None:
    raw = _seal("flip me")
    outer = decode_outer(raw, NET, T0)
    sealed = outer.sealed
    for i in range(0, len(sealed), 7):
        bad = bytearray(sealed)
        bad[i] ^= 0x01
        wire = encode_outer(NET, BOB.public_key, outer.expiry_ms, bytes(bad))
        with pytest.raises(DMError) as info:
            _open(wire)
        assert info.value.code == "unsealable", i
        assert "tampered" in info.value.reason


def test_a_flipped_byte_in_the_frame_is_refused_readably() -> None:
    """The routing fields: magic, version, network, recipient. (The expiry is a
    relay's hint only, bounded to 7 days; the recipient judges the signed time.)"""
    raw = _seal("frame")
    head = len(canonical_pack(["lmdm", 1, NET, BOB.public_key]))
    assert raw[1:head] == canonical_pack(["lmdm", 1, NET, BOB.public_key])[1:]
    for i in range(head):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        with pytest.raises(DMError) as info:
            _open(bytes(bad))
        assert info.value.reason and info.value.code, i


def test_wrong_recipient_is_refused() -> None:
    raw = _seal("for bob only")
    with pytest.raises(DMError, match="another account") as info:
        _open(raw, CAROL)
    assert info.value.code == "wrong_recipient"
    # readdressed on the outside to carol: her key does not open bob's seal
    outer = decode_outer(raw, NET, T0)
    readdressed = encode_outer(NET, CAROL.public_key, outer.expiry_ms, outer.sealed)
    with pytest.raises(DMError, match="does not open") as info:
        _open(readdressed, CAROL)
    assert info.value.code == "unsealable"


def test_resealed_to_another_recipient_is_refused() -> None:
    """Bob re-seals alice's signed message to carol: the signed `to` is bob."""
    outer = decode_outer(_seal("private to bob"), NET, T0)
    payload = SealedBox(x25519_private(BOB)).decrypt(outer.sealed)
    sender, inner = strict_unpack(payload, MAX_SEALED_BYTES)
    padded = Box(x25519_private(BOB), x25519_public(sender)).decrypt(inner)
    # bob cannot make a Box from alice to carol, but he can try one of his own
    forged_inner = Box(x25519_private(BOB), x25519_public(CAROL.public_key)).encrypt(padded)
    payload2 = canonical_pack([BOB.public_key, bytes(forged_inner)])
    sealed2 = SealedBox(x25519_public(CAROL.public_key)).encrypt(payload2)
    wire = encode_outer(NET, CAROL.public_key, outer.expiry_ms, bytes(sealed2))
    with pytest.raises(DMError) as info:
        _open(wire, CAROL)
    assert info.value.code == "wrong_recipient"
    # and with alice named as the sealer, the inner box does not open
    payload3 = canonical_pack([ALICE.public_key, bytes(forged_inner)])
    sealed3 = SealedBox(x25519_public(CAROL.public_key)).encrypt(payload3)
    wire3 = encode_outer(NET, CAROL.public_key, outer.expiry_ms, bytes(sealed3))
    with pytest.raises(DMError, match="tampered") as info:
        _open(wire3, CAROL)


def test_forged_sender_is_refused() -> None:
    """Mallory signs a message claiming to be alice: the seal names mallory."""
    mallory = KeyPair(os.urandom(32))
    message = canonical_pack(
        {
            "body": "pay me",
            "from": ALICE.public_key,
            "nonce": bytes(16),
            "sent_ms": T0,
            "to": BOB.public_key,
        }
    )
    padded = pad(canonical_pack([message, mallory.sign(SIGN_DOMAIN + NET + message)]))
    inner = Box(x25519_private(mallory), x25519_public(BOB.public_key)).encrypt(padded)
    sealed = SealedBox(x25519_public(BOB.public_key)).encrypt(
        canonical_pack([mallory.public_key, bytes(inner)])
    )
    wire = encode_outer(NET, BOB.public_key, T0 + 3_600_000, bytes(sealed))
    with pytest.raises(DMError, match="not the one who sealed") as info:
        _open(wire)
    assert info.value.code == "forged"
    # claiming alice in the seal too: the signature is mallory's
    message2 = canonical_pack(
        {
            "body": "pay me",
            "from": mallory.public_key,
            "nonce": bytes(16),
            "sent_ms": T0,
            "to": BOB.public_key,
        }
    )
    padded2 = pad(canonical_pack([message2, ALICE.sign(b"other" + message2)]))
    inner2 = Box(x25519_private(mallory), x25519_public(BOB.public_key)).encrypt(padded2)
    sealed2 = SealedBox(x25519_public(BOB.public_key)).encrypt(
        canonical_pack([mallory.public_key, bytes(inner2)])
    )
    wire2 = encode_outer(NET, BOB.public_key, T0 + 3_600_000, bytes(sealed2))
    with pytest.raises(DMError, match="signature") as info:
        _open(wire2)
    assert info.value.code == "bad_signature"


def test_expired_and_far_future_expiry_are_refused() -> None:
    raw, _ = seal_dm(ALICE, NET, BOB.public_key, "late", T0, T0 + 1000)
    with pytest.raises(DMError, match="expired") as info:
        decode_outer(raw, NET, T0 + 1000)
    assert info.value.code == "expired"
    far, _ = seal_dm(ALICE, NET, BOB.public_key, "far", T0, T0 + RETENTION_MS + 3_600_000)
    with pytest.raises(DMError, match="7-day") as info:
        decode_outer(far, NET, T0)
    # an old signed message given a fresh expiry is still refused by its recipient
    old, _ = seal_dm(ALICE, NET, BOB.public_key, "old", T0, T0 + RETENTION_MS)
    outer = decode_outer(old, NET, T0)
    now = T0 + RETENTION_MS + 60_000
    fresh = encode_outer(NET, BOB.public_key, now + 1000, outer.sealed)
    with pytest.raises(DMError, match="more than 7 days ago"):
        open_dm(decode_outer(fresh, NET, now), BOB, now)


def test_oversized_and_malformed_are_refused() -> None:
    big = encode_outer(NET, BOB.public_key, T0 + 1000, os.urandom(MAX_SEALED_BYTES + 1))
    with pytest.raises(DMError, match="cap") as info:
        decode_outer(big, NET, T0)
    assert info.value.code == "too_large"
    huge = encode_outer(NET, BOB.public_key, T0 + 1000, os.urandom(MAX_OUTER_BYTES))
    with pytest.raises(DMError, match="cap"):
        decode_outer(huge, NET, T0)
    with pytest.raises(DMError, match="characters"):
        _seal("x" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(DMError, match="some text"):
        _seal("   ")
    with pytest.raises(DMError, match="yourself"):
        _seal("me", to=ALICE)
    with pytest.raises(DMError, match="another network"):
        decode_outer(_seal(), os.urandom(32), T0)
    for junk in (
        b"",
        b"\xc1",
        canonical_pack(["lmdm", 2, NET, BOB.public_key, T0 + 1, b"x"]),
        canonical_pack({"a": 1}),
        canonical_pack(["lmdm", 1, NET, b"short", T0 + 1, b"x"]),
    ):
        with pytest.raises(DMError) as info:
            decode_outer(junk, NET, T0)
        assert info.value.reason


# -- the stores: replays, bounds ----------------------------------------------------------


def test_replay_is_noticed_by_the_inbox(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "messages.sqlite")
    raw = _seal("once")
    got = open_dm(decode_outer(raw, NET, T0), BOB, T0)
    assert inbox.add(Stored(got.id, got.sender, False, got.sent_ms, T0, got.body, False))
    again = open_dm(decode_outer(raw, NET, T0 + 5), BOB, T0 + 5)
    assert inbox.has(again.id)  # the same signed message, however it is re-sealed
    assert not inbox.add(Stored(again.id, again.sender, False, again.sent_ms, T0, "x", False))
    [conv] = inbox.conversations()
    assert conv["count"] == 1 and conv["unread"] == 1 and conv["last_text"] == "once"
    assert inbox.mark_read(ALICE.public_key) == 1
    assert inbox.unread() == 0


def test_relay_store_bounds(tmp_path: Path) -> None:
    store = RelayStore(tmp_path / "relay.sqlite", max_bytes=20_000, per_recipient=5)
    for i in range(8):
        store.put(decode_outer(_seal(f"m{i}"), NET, T0), T0)
    msgs, cursor, more = store.for_recipient(BOB.public_key, 0, T0)
    assert len(msgs) == 5 and not more  # the oldest three dropped
    assert store.for_recipient(BOB.public_key, cursor, T0)[0] == []
    for i in range(40):
        store.put(decode_outer(_seal(f"c{i}", to=CAROL), NET, T0), T0)
    assert store.total_bytes() <= 20_000
    store.expire(T0 + 3_600_000)
    assert store.count() == 0
    # a repeat is not stored twice
    raw = _seal("dup")
    assert store.put(decode_outer(raw, NET, T0), T0)
    assert not store.put(decode_outer(raw, NET, T0), T0)
    # plaintext never reaches the relay store
    assert b"dup" not in (tmp_path / "relay.sqlite").read_bytes()
