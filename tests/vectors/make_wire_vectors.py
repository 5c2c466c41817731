"""Generate tests/vectors/wire.json: node-to-node test vectors (PROTOCOL.md §11).

genesis.json to canonical genesis bytes and network id; the topic and protocol
ids; a gossip message and its message id; every sync and blob request and reply
as message bytes and as stream frames; gossip messages a node refuses, with
their codes. Deterministic: fixed seeds and timestamps. Run
`python tests/vectors/make_wire_vectors.py` after a deliberate change
(tests/test_wire_vectors.py fails until you do).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

from learnmesh.node._wire import (
    MAX_GOSSIP_BYTES,
    blob_protocol,
    encode_gossip,
    encode_msg,
    frame,
    gossip_message_id,
    gossip_topic,
    sync_protocol,
)
from learnmesh.protocol import ChainWriter, Genesis, KeyPair, canonical_pack

OUT = pathlib.Path(__file__).with_name("wire.json")
T0 = 1_700_000_000_000


def _key(i: int) -> KeyPair:
    return KeyPair(bytes([0xB0 + i]) * 32)


def _hex(b: bytes) -> str:
    return b.hex()


def _jsonable(v: Any) -> Any:
    """A msgpack value for reading in JSON: bin as {"bin": hex}."""
    if isinstance(v, bytes):
        return {"bin": v.hex()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _msg(name: str, protocol: str, t: str, **fields: Any) -> dict[str, Any]:
    raw = encode_msg(t, **fields)
    return {
        "name": name,
        "protocol": protocol,
        "value": _jsonable({"t": t, "v": 1, **fields}),
        "message": _hex(raw),
        "frame": _hex(frame(raw)),
    }


def build() -> dict[str, Any]:
    k0, k1 = _key(0), _key(1)
    genesis = Genesis(
        name="wire vectors",
        description="learnmesh node-to-node test vectors",
        created_ms=T0,
        allocations=tuple(sorted([(k0.public_key, 1000), (k1.public_key, 500)])),
        trusted=(k0.public_key,),
    )
    net = genesis.network_id
    # A genesis.json as people write it: no description, no trusted, no params.
    minimal = Genesis(name="minimal", created_ms=T0, allocations=((k1.public_key, 7),))
    minimal_json = {
        "name": "minimal",
        "created_ms": T0,
        "allocations": minimal.to_json()["allocations"],
    }
    assert Genesis.from_json(minimal_json) == minimal

    w0, w1 = ChainWriter(k0, net), ChainWriter(k1, net)
    e1 = w0.sign("profile", {"name": "Ada", "bio": "", "skills": ["math"]}, T0 + 1000)
    e2 = w0.sign("transfer", {"to": k1.public_key, "amount": 25, "memo": "hi"}, T0 + 2000)
    e3 = w1.sign("profile", {"name": "Grace", "bio": "compilers", "skills": []}, T0 + 3000)
    gossip = encode_gossip(net, [e1.raw, e2.raw, e3.raw])
    blob = b"an attachment\n"
    blob_hash = hashlib.sha256(blob).digest()
    sync = sync_protocol(net)
    blobp = blob_protocol(net)

    other = Genesis(name="elsewhere", created_ms=T0, allocations=((k0.public_key, 1),))
    refused = [
        ("not msgpack", b"\xc1junk", "undecodable"),
        (
            "not canonical (uint8 for 1)",
            b"\x94\xa3lmg\xcc\x01\xc4\x20" + net + b"\x91\xc4\x01x",
            "non_canonical",
        ),
        ("wrong magic", canonical_pack(["lmx", 1, net, [e1.raw]]), "gossip"),
        ("version 2", canonical_pack(["lmg", 2, net, [e1.raw]]), "gossip"),
        ("version true", canonical_pack(["lmg", True, net, [e1.raw]]), "gossip"),
        ("another network", encode_gossip(other.network_id, [e1.raw]), "wrong_network"),
        ("no events", canonical_pack(["lmg", 1, net, []]), "gossip"),
        ("an event as str", canonical_pack(["lmg", 1, net, ["x"]]), "gossip"),
        ("a map", canonical_pack({"t": "lmg"}), "gossip"),
    ]
    sync_refused = [
        ("unknown type", canonical_pack({"t": "push", "v": 1}), "sync"),
        ("version 2", canonical_pack({"t": "heads", "v": 2}), "sync"),
        ("version true", canonical_pack({"t": "heads", "v": True}), "sync"),
        ("no version", canonical_pack({"t": "heads"}), "sync"),
        ("an array", canonical_pack(["heads", 1]), "sync"),
        ("keys out of order", b"\x82\xa1v\x01\xa1t\xa5heads", "non_canonical"),
    ]
    return {
        "sync_refused": [
            {"name": name, "message": _hex(data), "code": code} for name, data, code in sync_refused
        ],
        "genesis": {
            "json": genesis.to_json(),
            "canonical": _hex(genesis.encode()),
            "network_id": _hex(net),
            "minimal_json": minimal_json,
            "minimal_canonical": _hex(minimal.encode()),
            "minimal_network_id": _hex(minimal.network_id),
        },
        "names": {
            "gossip_topic": gossip_topic(net),
            "sync_protocol": sync,
            "blob_protocol": blobp,
        },
        "events": [
            {"id": _hex(e.id), "author": _hex(e.author), "seq": e.seq, "raw": _hex(e.raw)}
            for e in (e1, e2, e3)
        ],
        "gossip": {
            "data": _hex(gossip),
            "message_id": _hex(gossip_message_id(gossip)),
            "max_bytes": MAX_GOSSIP_BYTES,
        },
        "gossip_refused": [
            {"name": name, "data": _hex(data), "code": code} for name, data, code in refused
        ],
        "sync": [
            _msg("heads request", sync, "heads"),
            _msg(
                "heads reply",
                sync,
                "reply",
                heads=sorted([[k0.public_key, 2], [k1.public_key, 1]]),
            ),
            _msg("heads request with ids", sync, "heads", ids=True),
            _msg(
                "heads reply with ids",
                sync,
                "reply",
                heads=sorted([[k0.public_key, 2, e2.id], [k1.public_key, 1, e3.id]]),
            ),
            _msg("range request", sync, "range", author=k0.public_key, start=1, limit=500),
            _msg("range reply", sync, "reply", events=[e1.raw, e2.raw]),
            _msg("get request", sync, "get", ids=sorted([e2.id, e3.id])),
            _msg("get reply", sync, "reply", events=[e2.raw, e3.raw]),
            _msg("forks request", sync, "forks"),
            _msg("forks reply (none)", sync, "reply", proofs=[]),
            _msg("error reply", sync, "error", reason="range needs author, start and limit"),
            _msg("blob request", blobp, "blob", hash=blob_hash, offset=0),
            _msg("blob reply", blobp, "reply", size=len(blob), data=blob),
            _msg("blob not found", blobp, "error", reason="not found"),
        ],
        "blob": {"content": _hex(blob), "hash": _hex(blob_hash)},
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
