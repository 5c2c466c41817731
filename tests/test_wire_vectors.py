"""The node-to-node vectors (tests/vectors/wire.json, PROTOCOL.md §11) against
the code: genesis.json to canonical bytes and network id, topic and protocol
ids, the gossip envelope and its message id, every sync and blob message and
frame, the refusals; the frames as a real P2PStream writes them; and the
generator reproduces the file, so a wire change cannot slip in unregenerated."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pathlib
from typing import Any

import pytest
import trio
from learnmesh.node._libp2p_patches import message_id
from learnmesh.node._p2p import P2PConfig, P2PHost
from learnmesh.node._wire import (
    MAX_GOSSIP_BYTES,
    blob_protocol,
    decode_gossip,
    decode_msg,
    encode_gossip,
    encode_msg,
    frame,
    gossip_topic,
    sync_protocol,
)
from learnmesh.protocol import Genesis, RemoteProtocolError, canonical_pack, decode_event
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.pubsub.pb import rpc_pb2

DIR = pathlib.Path(__file__).resolve().parent / "vectors"
V: dict[str, Any] = json.loads((DIR / "wire.json").read_text())
GENESIS = Genesis.decode(bytes.fromhex(V["genesis"]["canonical"]))
NET = GENESIS.network_id


def _value(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"bin"}:
        return bytes.fromhex(v["bin"])
    if isinstance(v, dict):
        return {k: _value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_value(x) for x in v]
    return v


def test_genesis_json_maps_to_canonical_bytes_and_network_id() -> None:
    g = V["genesis"]
    assert Genesis.from_json(g["json"]).encode().hex() == g["canonical"]
    assert NET.hex() == g["network_id"]
    assert (
        hashlib.sha256(b"learnmesh/genesis\x00" + bytes.fromhex(g["canonical"])).hexdigest()
        == g["network_id"]
    )
    minimal = Genesis.from_json(g["minimal_json"])  # defaults for what is left out
    assert minimal.encode().hex() == g["minimal_canonical"]
    assert minimal.network_id.hex() == g["minimal_network_id"]
    assert set(g["minimal_json"]) == {"name", "created_ms", "allocations"}


def test_names() -> None:
    names = V["names"]
    assert gossip_topic(NET) == names["gossip_topic"] == f"/learnmesh/{NET.hex()}/events/1"
    assert sync_protocol(NET) == names["sync_protocol"] == f"/learnmesh/{NET.hex()[:32]}/sync/1.0.0"
    assert blob_protocol(NET) == names["blob_protocol"] == f"/learnmesh/{NET.hex()[:32]}/blob/1.0.0"


def test_gossip_envelope_and_message_id() -> None:
    raws = [bytes.fromhex(e["raw"]) for e in V["events"]]
    for e, raw in zip(V["events"], raws, strict=True):
        ev = decode_event(raw, GENESIS.params.max_event_bytes, NET)
        assert ev.id.hex() == e["id"] and ev.seq == e["seq"] and ev.author.hex() == e["author"]
    data = bytes.fromhex(V["gossip"]["data"])
    assert encode_gossip(NET, raws) == data
    assert canonical_pack(["lmg", 1, NET, raws]) == data
    assert decode_gossip(data, NET) == raws
    # The id libp2p is configured with, on the message as it travels.
    msg = rpc_pb2.Message(data=data, from_id=b"any origin", seqno=os.urandom(8))
    assert message_id(msg).hex() == V["gossip"]["message_id"] == hashlib.sha256(data).hexdigest()
    assert V["gossip"]["max_bytes"] == MAX_GOSSIP_BYTES == 262144


@pytest.mark.parametrize("case", V["gossip_refused"], ids=[c["name"] for c in V["gossip_refused"]])
def test_gossip_refused(case: dict[str, str]) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        decode_gossip(bytes.fromhex(case["data"]), NET)
    assert exc.value.code == case["code"]


def test_gossip_over_the_cap_is_refused() -> None:
    raw = bytes.fromhex(V["events"][0]["raw"])
    big = encode_gossip(NET, [raw] * (MAX_GOSSIP_BYTES // len(raw) + 1))
    assert len(big) > MAX_GOSSIP_BYTES
    with pytest.raises(RemoteProtocolError) as exc:
        decode_gossip(big, NET)
    assert exc.value.code == "oversize"


@pytest.mark.parametrize("case", V["sync"], ids=[c["name"] for c in V["sync"]])
def test_stream_message(case: dict[str, Any]) -> None:
    value = _value(case["value"])
    fields = {k: v for k, v in value.items() if k not in ("t", "v")}
    raw = encode_msg(value["t"], **fields)
    assert raw.hex() == case["message"]
    assert frame(raw).hex() == case["frame"]
    assert int(case["frame"][:8], 16) == len(raw)
    assert decode_msg(raw) == value
    assert case["protocol"] in (sync_protocol(NET), blob_protocol(NET))


@pytest.mark.parametrize("case", V["sync_refused"], ids=[c["name"] for c in V["sync_refused"]])
def test_stream_message_refused(case: dict[str, str]) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        decode_msg(bytes.fromhex(case["message"]))
    assert exc.value.code == case["code"]


def test_blob_hash() -> None:
    assert hashlib.sha256(bytes.fromhex(V["blob"]["content"])).hexdigest() == V["blob"]["hash"]


async def test_p2p_stream_writes_the_vector_frames() -> None:
    """The bytes on a real libp2p stream, read raw on the far side, are the
    frames of the vectors, and P2PStream reads them back."""
    wanted = b"".join(bytes.fromhex(c["frame"]) for c in V["sync"])
    got = bytearray()
    done = trio.Event()

    async def raw_reader(stream: INetStream) -> None:
        while len(got) < len(wanted):
            chunk = await stream.read(len(wanted) - len(got))
            if not chunk:
                break
            got.extend(chunk)
        done.set()
        await stream.close()

    proto = sync_protocol(NET)
    async with (
        P2PHost.open(P2PConfig(identity_seed=os.urandom(32))) as a,
        P2PHost.open(P2PConfig(identity_seed=os.urandom(32))) as b,
    ):
        b._host.set_stream_handler(TProtocol(proto), raw_reader)
        await a.connect(b.listen_addrs()[0])
        stream = await a.open_stream(b.peer_id, proto)
        with trio.fail_after(30):
            for c in V["sync"]:
                await stream.send_frame(bytes.fromhex(c["message"]))
            await done.wait()
        await stream.close()
    assert bytes(got) == wanted


def test_the_generator_reproduces_the_file() -> None:
    spec = importlib.util.spec_from_file_location("make_wire_vectors", DIR / "make_wire_vectors.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.render() == (DIR / "wire.json").read_text()
