"""No single flipped byte of a signed event is accepted as that event (or as any
event): every position of events of every kind, with several flip masks."""

from __future__ import annotations

import pytest
from learnmesh.protocol import Event, RemoteProtocolError, decode_event
from test_protocol_support import Net

MASKS = (0x01, 0x80, 0xFF)


def _one_of_each_kind() -> dict[str, Event]:
    net = Net()
    net.emit(5, "profile", {"name": "Ada", "bio": "maths", "skills": ["math"]})
    lc = net.lifecycle()
    b2 = net.bounty(0)
    net.emit(0, "refund", {"bounty": b2.id})
    assert lc.award is not None
    t = net.transfer(1, 2, 10, claims=[lc.award.id])
    net.emit(3, "vouch", {"account": net.pk(4)})
    assert net.state.void == {}
    out: dict[str, Event] = {}
    for e in net.events:
        out.setdefault(e.kind.name, e)
    assert t.kind.name in out
    return out


EVENTS = _one_of_each_kind()
NETWORK = Net().network


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_every_single_byte_flip_is_refused(kind: str) -> None:
    ev = EVENTS[kind]
    assert decode_event(ev.raw, 1 << 20, NETWORK).id == ev.id
    refused = 0
    for i in range(len(ev.raw)):
        for mask in MASKS:
            bad = bytearray(ev.raw)
            bad[i] ^= mask
            try:
                got = decode_event(bytes(bad), 1 << 20, NETWORK)
            except RemoteProtocolError:
                refused += 1
                continue
            # Decoding succeeded: that would be a forgery of the author's signature.
            raise AssertionError(f"flip {mask:#x} at {i} accepted as {got.short()}")
    assert refused == len(ev.raw) * len(MASKS)


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_truncation_and_extension_are_refused(kind: str) -> None:
    raw = EVENTS[kind].raw
    for bad in (raw[:-1], raw[1:], raw + b"\x00", b"\x00" + raw, raw[: len(raw) // 2]):
        with pytest.raises(RemoteProtocolError):
            decode_event(bad, 1 << 20, NETWORK)


def test_every_kind_is_covered() -> None:
    assert len(EVENTS) == 10
