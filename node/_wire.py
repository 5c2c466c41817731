"""Messages between nodes: gossip batches and the sync and blob stream protocols.

Every message is canonical msgpack with a magic string and a version, and the
network id is part of each topic and protocol name, so two communities never
exchange a byte. Unknown message types are refused. PROTOCOL.md §11 specifies
all of it; tests/vectors/wire.json holds the vectors.
"""

from __future__ import annotations

import hashlib
from typing import Any

from learnmesh.protocol import RemoteProtocolError, canonical_pack, strict_unpack

__all__ = [
    "GOSSIP_MAGIC",
    "MAX_GOSSIP_BYTES",
    "MAX_SYNC_FRAME",
    "WIRE_VERSION",
    "blob_protocol",
    "decode_gossip",
    "decode_msg",
    "encode_gossip",
    "encode_msg",
    "frame",
    "gossip_message_id",
    "gossip_topic",
    "sync_protocol",
]

WIRE_VERSION = 1
GOSSIP_MAGIC = "lmg"
MAX_GOSSIP_BYTES = 256 * 1024
MAX_SYNC_FRAME = 2 * 1024 * 1024
FRAME_HEADER = 4  # stream frames: a 4-byte big-endian length, then the message
_MSG_TYPES = frozenset({"heads", "range", "get", "forks", "blob", "reply", "error"})


def gossip_topic(network: bytes) -> str:
    return f"/learnmesh/{network.hex()}/events/1"


def sync_protocol(network: bytes) -> str:
    return f"/learnmesh/{network.hex()[:32]}/sync/1.0.0"


def blob_protocol(network: bytes) -> str:
    return f"/learnmesh/{network.hex()[:32]}/blob/1.0.0"


def gossip_message_id(data: bytes) -> bytes:
    """The GossipSub message id of a gossip message: SHA-256 of its data."""
    return hashlib.sha256(data).digest()


def frame(message: bytes) -> bytes:
    """A message as it travels on a sync or blob stream."""
    return len(message).to_bytes(FRAME_HEADER, "big") + message


def encode_gossip(network: bytes, raws: list[bytes]) -> bytes:
    return canonical_pack([GOSSIP_MAGIC, WIRE_VERSION, network, raws])


def decode_gossip(data: bytes, network: bytes) -> list[bytes]:
    """The raw events in one gossip message; raises RemoteProtocolError."""
    v = strict_unpack(data, MAX_GOSSIP_BYTES)
    if not (isinstance(v, list) and len(v) == 4 and v[0] == GOSSIP_MAGIC):
        raise RemoteProtocolError("gossip", "not a learnmesh gossip message")
    if type(v[1]) is not int or v[1] != WIRE_VERSION:
        raise RemoteProtocolError("gossip", f"unsupported gossip version {v[1]!r}")
    if v[2] != network:
        raise RemoteProtocolError("wrong_network", "gossip from another network")
    raws = v[3]
    if not isinstance(raws, list) or not raws or not all(isinstance(r, bytes) for r in raws):
        raise RemoteProtocolError("gossip", "a gossip message carries a list of events")
    return list(raws)


def encode_msg(t: str, **fields: Any) -> bytes:
    return canonical_pack({"t": t, "v": WIRE_VERSION, **fields})


def decode_msg(data: bytes) -> dict[str, Any]:
    m = strict_unpack(data, MAX_SYNC_FRAME)
    if (
        not isinstance(m, dict)
        or type(m.get("v")) is not int
        or m.get("v") != WIRE_VERSION
        or m.get("t") not in _MSG_TYPES
    ):
        raise RemoteProtocolError("sync", "not a learnmesh sync message of a known type")
    return m
