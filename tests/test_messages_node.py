"""Private messages between real node processes: three nodes in a line, A–B–C.

A sends to C through B; C reads it; B, the relay, holds it sealed and has no
plaintext anywhere in its data directory or logs (the same search finds the
text on A and C, so it would find it on B). C is stopped while A sends, started
again, and fetches the message from B. A hostile peer then hands C a tampered
and an oversized message: each is refused with its reason counted, and C keeps
running and still takes honest messages.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _nodes import WAIT, ApiError, Network, Node, await_for, cli, wait_for
from jsonschema import Draft202012Validator
from learnmesh.node._blocklist import Blocklist
from learnmesh.node._dm import MAX_SEALED_BYTES, decode_outer, encode_outer, open_dm, seal_dm
from learnmesh.node._messages import FETCH_DOMAIN, dm_topic, fetch_protocol
from learnmesh.node._p2p import P2PConfig, P2PHost
from learnmesh.protocol import KeyPair, canonical_pack, strict_unpack

pytestmark = pytest.mark.slow


@pytest.fixture
def line(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path, ["a", "b", "c"])
    try:
        net.start(edges=[("a", "b"), ("b", "c")])
        yield net
    finally:
        net.close()


def _texts(node: Node, other: Node) -> list[str]:
    conv: dict[str, Any] = node.get(f"/api/messages/{other.account}")
    return [m["text"] for m in conv["messages"]]


def _files_containing(root: Path, needle: str) -> list[str]:
    """Every file under `root` (databases, their journals, logs) whose bytes hold `needle`."""
    data = needle.encode()
    found = []
    for p in root.rglob("*"):
        if p.is_file():
            try:
                if data in p.read_bytes():
                    found.append(str(p.relative_to(root)))
            except OSError:
                continue
    return found


def _stats(node: Node) -> dict[str, int]:
    s: dict[str, int] = node.status()["stats"]
    return s


def test_message_crosses_a_relay_sealed_and_reaches_an_offline_recipient(line: Network) -> None:
    a, b, c = line["a"], line["b"], line["c"]
    first = f"private feedback {uuid.uuid4().hex}: the proof in part 2 skips a case"
    sent = a.post("/api/messages", {"to": c.account, "text": first})
    assert len(sent["id"]) == 64 and sent["to"] == c.account

    wait_for(lambda: first in _texts(c, a), "c to receive a's message through b")
    [msg] = c.get(f"/api/messages/{a.account}")["messages"]
    assert msg["from"] == a.account and msg["to"] == c.account and not msg["outgoing"]
    convs = c.get("/api/messages")
    assert convs["conversations"][0]["account"] == a.account
    assert convs["unread"] == 0  # reading the conversation marked it read
    [out] = a.get(f"/api/messages/{c.account}")["messages"]
    assert out["outgoing"] and out["text"] == first

    # b relayed it and holds it sealed; no plaintext anywhere on b
    wait_for(lambda: _stats(b)["dm_relayed"] >= 1, "b to count the relayed message")
    assert b.get("/api/messages")["conversations"] == []
    assert _files_containing(b.data, first) == []
    # the same search does find it where it belongs (so it would find it on b)
    assert any("messages.sqlite" in f for f in _files_containing(a.data, first))
    assert any("messages.sqlite" in f for f in _files_containing(c.data, first))
    for node in (a, c):  # and never in a log
        assert [f for f in _files_containing(node.data, first) if "log" in f] == []

    # c is offline when a sends: b keeps it, and c fetches it when it is back
    code, _ = c.stop()
    assert code == 0
    second = f"second note {uuid.uuid4().hex}, sent while you were away"
    a.post("/api/messages", {"to": c.account, "text": second})
    wait_for(lambda: _stats(b)["dm_relayed"] >= 2, "b to hold the message for offline c")
    c.start(bootstrap=[b.addr])
    c.wait_ready()
    wait_for(
        lambda: second in _texts(c, a),
        "c, back online, to fetch a's message from b",
        describe=lambda: [c.log_tail(20), _stats(c), _stats(b)],
    )
    assert _texts(c, a) == [first, second]  # the first is not delivered twice
    # (gossip's own memory of recent messages may bring it before c's fetch does:
    # the fetch protocol's serving side is tested on its own below)
    assert _files_containing(b.data, second) == []

    # the command line: send a reply; read it on the other side, terminal escapes made harmless
    reply = f"thanks! {uuid.uuid4().hex} \x1b[31mred\x1b[0m"
    r = cli("--data", str(c.data), "message", "send", a.account, reply)
    assert "sent to" in r.stdout, r.stdout + r.stderr
    wait_for(lambda: reply in _texts(a, c), "a to receive c's reply")
    shown = cli("--data", str(a.data), "messages", c.account).stdout
    assert reply.split(" ")[1] in shown and first.split(":")[0] in shown
    assert "\x1b" not in shown and "\ufffd[31mred" in shown
    listing = json.loads(cli("--data", str(a.data), "--json", "messages").stdout)
    assert listing["conversations"][0]["account"] == c.account
    assert "red" in cli("--data", str(a.data), "messages").stdout
    bad = cli("--data", str(a.data), "message", "send", "lmnope", "hi", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr

    # a retried send with the same Idempotency-Key is one message
    once = f"exactly once {uuid.uuid4().hex}"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    r1 = a.request("POST", "/api/messages", json_body={"to": c.account, "text": once}, headers=key)
    r2 = a.request("POST", "/api/messages", json_body={"to": c.account, "text": once}, headers=key)
    assert r1.status_code == r2.status_code == 200 and r1.json() == r2.json()
    assert r2.headers.get("idempotent-replayed") == "true"
    wait_for(lambda: once in _texts(c, a), "c to receive the retried message")
    assert _texts(a, c).count(once) == 1 and _texts(c, a).count(once) == 1

    # the answers match the API description (node/_openapi.py)
    spec = a.get("/api/openapi.json")
    for method, template, path, answer in (
        ("post", "/api/messages", None, sent),
        ("get", "/api/messages", "/api/messages", None),
        ("get", "/api/messages/{account}", f"/api/messages/{a.account}", None),
    ):
        got = answer if path is None else c.get(path)
        ok = spec["paths"][template][method]["responses"]["200"]["content"]["application/json"]
        root = {**ok["schema"], "components": spec["components"]}
        errors = [e.message for e in Draft202012Validator(root).iter_errors(got)]
        assert not errors, (method, template, errors)
    assert spec["paths"]["/api/messages"]["post"]["responses"].get("429")

    # c blocks a (node/_blocklist.py, however it is edited): a's messages are dropped unread
    Blocklist(c.data).add(a.key.public_key, "test")
    blocked = f"after the block {uuid.uuid4().hex}"
    a.post("/api/messages", {"to": c.account, "text": blocked})
    wait_for(lambda: _stats(c)["dm_blocked"] >= 1, "c to drop the blocked account's message")
    assert blocked not in _texts(c, a)
    assert _files_containing(c.data, blocked) == []

    # bad input through the API: a readable refusal, nothing sent
    for body, words in (
        ({"to": c.account, "text": ""}, "some text"),
        ({"to": c.account, "text": "x" * 4001}, "4000 characters"),
        ({"to": "lmnotanaccount", "text": "hi"}, "to:"),
        ({"to": a.account, "text": "hi"}, "yourself"),
        ({"text": "hi"}, "account"),
    ):
        with pytest.raises(ApiError) as info:
            a.post("/api/messages", body)
        assert words in str(info.value), (body, str(info.value))


async def _join(host: P2PHost, topic: str, target: Node) -> None:
    await host.subscribe(topic, lambda _p, _d: True)
    await host.connect(target.addr)
    with trio.fail_after(WAIT):
        while target.peer_id not in host.mesh_peers(topic):
            await trio.sleep(0.1)


async def test_tampered_and_oversized_messages_are_refused_and_the_node_runs_on(
    line: Network,
) -> None:
    a, c = line["a"], line["c"]
    net = line.network_id
    topic = dm_topic(net)
    mallory = KeyPair(os.urandom(32))
    now = int(time.time() * 1000)
    secret = f"tampered {uuid.uuid4().hex}"
    raw, _ = seal_dm(mallory, net, c.key.public_key, secret, now, now + 3_600_000)
    outer = decode_outer(raw, net, now)
    flipped = bytearray(outer.sealed)
    flipped[len(flipped) // 2] ^= 0x01
    tampered = encode_outer(net, c.key.public_key, outer.expiry_ms, bytes(flipped))
    oversized = encode_outer(
        net, c.key.public_key, outer.expiry_ms, os.urandom(MAX_SEALED_BYTES + 1)
    )

    async with P2PHost.open(P2PConfig(identity_seed=os.urandom(32))) as x:
        await _join(x, topic, c)
        await x.publish(topic, tampered)
        await await_for(
            lambda: _stats(c).get("dm_refused:unsealable", 0) >= 1,
            "c to refuse the tampered message",
            describe=lambda: _stats(c),
        )
        await x.publish(topic, oversized)
        await await_for(
            lambda: _stats(c).get("dm_refused:too_large", 0) >= 1,
            "c to refuse the oversized message",
            describe=lambda: _stats(c),
        )
        # the untampered one from the same hostile peer is a valid message
        await x.publish(topic, raw)
        await await_for(
            lambda: bool(c.get(f"/api/messages/{mallory.account}")["messages"]),
            "c to take the intact message",
        )
    assert c.get("/api/messages")["conversations"][0]["account"] == mallory.account
    # c runs on: an honest message from a still arrives
    honest = f"still here {uuid.uuid4().hex}"
    a.post("/api/messages", {"to": c.account, "text": honest})
    await await_for(lambda: honest in _texts(c, a), "c to receive a's message after the attack")
    log = (c.data / "logs" / "stdout.log").read_text(errors="replace")
    assert "Traceback" not in log


async def test_nodes_past_the_first_hop_see_the_first_hop_as_origin(line: Network) -> None:
    """A hands its message to a neighbour (B) that publishes it as its own: an
    observer joined at B gets the message with B, not A, as its gossip origin,
    and nothing in the bytes names A or holds the text."""
    a, b, c = line["a"], line["b"], line["c"]
    topic = dm_topic(line.network_id)
    text = f"first hop {uuid.uuid4().hex}"
    async with P2PHost.open(P2PConfig(identity_seed=os.urandom(32))) as x:
        await _join(x, topic, b)
        await trio.to_thread.run_sync(
            lambda: a.post("/api/messages", {"to": c.account, "text": text})
        )
        with trio.fail_after(WAIT):
            async for got in x.messages():
                if got[0] == topic:
                    break
        _, origin, data = got
        assert origin == b.peer_id != a.peer_id
        assert a.key.public_key not in data and text.encode() not in data
        assert decode_outer(data, line.network_id, int(time.time() * 1000)).recipient == (
            c.key.public_key
        )
    await await_for(lambda: text in _texts(c, a), "c to receive the handed-off message")
    assert _stats(a)["dm_handed_off"] >= 1


async def test_a_relay_serves_held_messages_only_to_the_recipients_signed_fetch(
    line: Network,
) -> None:
    a, b, c = line["a"], line["b"], line["c"]
    code, _ = c.stop()
    assert code == 0
    text = f"held for c {uuid.uuid4().hex}"
    a.post("/api/messages", {"to": c.account, "text": text})
    wait_for(lambda: _stats(b)["dm_relayed"] >= 1, "b to hold the message for c")

    def request(key: KeyPair, account: bytes, server: str, at_ms: int) -> bytes:
        signed = FETCH_DOMAIN + line.network_id + server.encode() + at_ms.to_bytes(8, "big")
        body = {"account": account, "after": 0, "at_ms": at_ms, "sig": key.sign(signed)}
        return canonical_pack({**body, "t": "dmfetch", "v": 1})

    async def ask(x: P2PHost, req: bytes) -> dict[str, Any]:
        stream = await x.open_stream(b.peer_id, fetch_protocol(line.network_id))
        try:
            await stream.send_frame(req)
            reply: dict[str, Any] = strict_unpack(await stream.recv_frame(4 << 20), 4 << 20)
        finally:
            await stream.close()
        return reply

    now = int(time.time() * 1000)
    async with P2PHost.open(P2PConfig(identity_seed=os.urandom(32))) as x:
        await x.connect(b.addr)
        got = await ask(x, request(c.key, c.key.public_key, b.peer_id, now))
        assert got["t"] == "dmmsgs" and len(got["msgs"]) == 1 and not got["more"]
        opened = open_dm(decode_outer(got["msgs"][0], line.network_id, now), c.key, now)
        assert opened.body == text and opened.sender == a.key.public_key
        # signed by someone else, made for another relay, or stale: refused
        mallory = KeyPair(os.urandom(32))
        for req, why in (
            (request(mallory, c.key.public_key, b.peer_id, now), "not signed"),
            (request(c.key, c.key.public_key, a.peer_id, now), "not signed"),
            (request(c.key, c.key.public_key, b.peer_id, now - 3_600_000), "stale"),
        ):
            refused = await ask(x, req)  # three offences of weight 5: far from a ban
            assert refused["t"] == "error" and why in refused["reason"], refused


def test_a_relay_that_restarted_still_hands_over_what_it_held(line: Network) -> None:
    """Only the fetch protocol can deliver here: c is offline when a sends, then
    b (the relay) restarts, so nothing of the message is left in any gossip
    memory; b's sealed store survives its restart and c fetches from it."""
    a, b, c = line["a"], line["b"], line["c"]
    code, _ = c.stop()
    assert code == 0
    text = f"kept across a restart {uuid.uuid4().hex}"
    a.post("/api/messages", {"to": c.account, "text": text})
    wait_for(lambda: _stats(b)["dm_relayed"] >= 1, "b to hold the message for c")
    code, _ = b.stop()
    assert code == 0
    b.start()
    b.wait_ready()
    c.start(bootstrap=[b.addr])
    c.wait_ready()
    wait_for(
        lambda: text in _texts(c, a),
        "c to fetch the message from the restarted relay",
        describe=lambda: [c.log_tail(20), _stats(c), _stats(b)],
    )
    assert _stats(c)["dm_fetched"] >= 1
    assert _files_containing(b.data, text) == []
