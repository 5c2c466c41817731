"""Signed events: the wire format, signing, strict decoding and verification.

Wire form (canonical msgpack array, PROTOCOL.md has the exact bytes):
    [version, network, author, seq, prev, timestamp, kind, body, refs, signature]
The signature covers DOMAIN + every byte of the encoding before the signature
field; the event id is sha256 of the whole encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256 as _sha256
from typing import Any

from ._encoding import canonical_pack, strict_unpack
from ._errors import LocalProtocolError, RemoteProtocolError
from ._identity import KeyPair, account_text, verify_signature
from ._kinds import KINDS, Kind, check_body

__all__ = [
    "BAD_SIGNATURE",
    "DOMAIN",
    "MAX_REFS",
    "MAX_TIMESTAMP",
    "WIRE_VERSION",
    "Event",
    "check_signature",
    "decode_event",
    "make_event",
]

WIRE_VERSION = 1
DOMAIN = b"learnmesh/event/v1\x00"
# decode_event's reason for a bad signature; a pass that checks signatures
# apart from the decode (check_signature) reports the same words.
BAD_SIGNATURE = "signature does not match the author's key"
MAX_REFS = 512
MAX_TIMESTAMP = 2**48 - 1  # milliseconds since the Unix epoch
_SIG_TAIL = 66  # bin8 header (0xc4 0x40) + 64 signature bytes
# Where a canonical encoding puts the fields a signature check needs: an array
# of 10 (0x9a), version 1, the network as bin8 of 32 (0xc4 0x20 + 32 bytes),
# then the author the same way; the signature is the last 64 bytes (bin8 of 64).
_HEAD = b"\x9a\x01\xc4\x20"
_AUTHOR_HEAD = b"\xc4\x20"
_SIG_HEAD = b"\xc4\x40"


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded, signature-checked event. `raw` is its exact wire bytes."""

    id: bytes
    network: bytes
    author: bytes
    seq: int
    prev: bytes | None
    timestamp: int
    kind: Kind
    body: dict[str, Any]
    refs: tuple[bytes, ...]
    signature: bytes
    raw: bytes

    @property
    def author_text(self) -> str:
        return account_text(self.author)

    def short(self) -> str:
        return f"{self.kind.name}#{self.id.hex()[:12]} by {self.author_text[:12]}… seq {self.seq}"


def _fields(
    network: bytes,
    author: bytes,
    seq: int,
    prev: bytes | None,
    timestamp: int,
    kind: int,
    body: dict[str, Any],
    refs: list[bytes],
    signature: bytes,
) -> list[Any]:
    return [WIRE_VERSION, network, author, seq, prev, timestamp, kind, body, refs, signature]


def make_event(
    key: KeyPair,
    network: bytes,
    seq: int,
    prev: bytes | None,
    timestamp: int,
    kind: str,
    body: dict[str, Any],
    refs: list[bytes] | tuple[bytes, ...] = (),
) -> Event:
    """Sign a new event. Raises LocalProtocolError for anything a peer would reject."""
    k = KINDS.get(kind)
    if k is None:
        raise LocalProtocolError("unknown_kind", f"no event kind named {kind!r}")
    ordered = sorted(set(refs))
    raw = canonical_pack(
        _fields(network, key.public_key, seq, prev, timestamp, k.code, body, ordered, bytes(64))
    )
    sig = key.sign(DOMAIN + raw[:-_SIG_TAIL])
    raw = raw[:-64] + sig
    try:
        # Just signed with our key: checking the signature again would only cost time.
        return decode_event(raw, max(k.max_bytes, len(raw)), network, verify=False)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(exc.code, exc.reason) from exc


def check_signature(raw: bytes) -> bool | None:
    """Check only the signature of an event's bytes, reading the author and the
    signature at the places every canonical encoding has them (no decoding):
    True or False, or None when the bytes are not laid out as an event is
    (`decode_event` then says why). For an event that `decode_event` accepts,
    this is exactly its signature check; alone it proves nothing about the
    other fields. Meant for worker threads (libsodium runs without the GIL)."""
    if (
        len(raw) < 70 + _SIG_TAIL
        or raw[:4] != _HEAD
        or raw[36:38] != _AUTHOR_HEAD
        or raw[-_SIG_TAIL:-64] != _SIG_HEAD
    ):
        return None
    return verify_signature(raw[38:70], DOMAIN + raw[:-_SIG_TAIL], raw[-64:])


_BY_CODE = {k.code: k for k in KINDS}
_MAX_SEQ = 2**63


def decode_event(
    raw: bytes, max_event_bytes: int, network: bytes | None = None, verify: bool = True
) -> Event:
    """Decode and verify one event: size, canonical encoding, version, field types,
    network, kind schema and size, refs order, and the signature. Raises
    RemoteProtocolError with a readable reason for the first problem found."""
    # Every event a node takes in or replays passes here: the checks are written
    # out (no helper call, no reason formatted unless it is raised), in the
    # order the reasons are documented. type() and not isinstance: msgpack
    # gives exact types, and `true` is an int to isinstance (and == 1).
    if type(raw) is not bytes:
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise RemoteProtocolError("type", "an event is a byte string")
        raw = bytes(raw)
    v = strict_unpack(raw, max_event_bytes)
    if type(v) is not list or len(v) != 10:
        raise RemoteProtocolError("shape", "an event is an array of 10 fields")
    version, net, author, seq, prev, ts, kind_code, body, refs, sig = v
    if type(version) is not int or version != WIRE_VERSION:
        raise RemoteProtocolError("version", f"unsupported wire version {version!r}")
    if type(net) is not bytes or len(net) != 32:
        raise RemoteProtocolError("field", "network must be 32 bytes")
    if network is not None and net != network:
        raise RemoteProtocolError("wrong_network", "event belongs to another network")
    if type(author) is not bytes or len(author) != 32:
        raise RemoteProtocolError("field", "author must be a 32-byte public key")
    if type(seq) is not int or not 1 <= seq < _MAX_SEQ:
        raise RemoteProtocolError("field", "seq must be a positive integer")
    if seq == 1:
        if prev is not None:
            raise RemoteProtocolError("prev", "the first event of a chain has no prev")
    elif type(prev) is not bytes or len(prev) != 32:
        raise RemoteProtocolError("prev", "prev must be the 32-byte id of the previous event")
    if type(ts) is not int or not 0 <= ts <= MAX_TIMESTAMP:
        raise RemoteProtocolError("field", "timestamp must be milliseconds since the epoch")
    kind = _BY_CODE.get(kind_code) if type(kind_code) is int else None
    if kind is None:
        raise RemoteProtocolError("unknown_kind", f"unknown event kind {kind_code!r}")
    if len(raw) > kind.max_bytes:
        raise RemoteProtocolError(
            "oversize", f"a {kind.name} event is at most {kind.max_bytes} bytes"
        )
    if type(refs) is not list or len(refs) > MAX_REFS:
        raise RemoteProtocolError("refs", f"refs is a list of at most {MAX_REFS} ids")
    if refs:
        for r in refs:
            if type(r) is not bytes or len(r) != 32:
                raise RemoteProtocolError("refs", "every ref is a 32-byte event id")
        last = refs[0]
        for r in refs[1:]:
            if not last < r:
                raise RemoteProtocolError("refs", "refs must be sorted and unique")
            last = r
    if type(sig) is not bytes or len(sig) != 64:
        raise RemoteProtocolError("field", "signature must be 64 bytes")
    if type(body) is not dict:
        raise RemoteProtocolError("body", "body must be a map")
    refs_t = tuple(refs)
    check_body(kind, body, refs_t, author)
    # verify=False is only for bytes this node already verified and stored.
    if verify and not verify_signature(author, DOMAIN + raw[:-_SIG_TAIL], sig):
        raise RemoteProtocolError("bad_signature", BAD_SIGNATURE)
    return Event(_sha256(raw).digest(), net, author, seq, prev, ts, kind, body, refs_t, sig, raw)
