"""The published test vectors (tests/vectors/events.json) against the code: the
genesis and network id, every event's bytes, signing input and id, the void
codes, the final digest, commitments, the credential and the invalid events.
Also: the generator reproduces the file exactly, so a format change cannot
slip in without regenerating the vectors on purpose."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pathlib
from typing import Any

import pytest
from learnmesh.protocol import (
    DOMAIN,
    Genesis,
    KeyPair,
    RemoteProtocolError,
    Replica,
    account_text,
    canonical_pack,
    commitment_of,
    content_hash,
    decode_event,
    verify_credential,
    verify_signature,
)

DIR = pathlib.Path(__file__).resolve().parent / "vectors"
V: dict[str, Any] = json.loads((DIR / "events.json").read_text())
GENESIS = Genesis.decode(bytes.fromhex(V["genesis"]["raw"]))
NET = GENESIS.network_id
MAX = GENESIS.params.max_event_bytes


def test_keys() -> None:
    for k in V["keys"]:
        kp = KeyPair(bytes.fromhex(k["seed"]))
        assert kp.public_key.hex() == k["public_key"]
        assert account_text(kp.public_key) == k["account"]


def test_genesis_and_network_id() -> None:
    raw = bytes.fromhex(V["genesis"]["raw"])
    assert GENESIS.encode() == raw
    assert NET.hex() == V["genesis"]["network_id"]
    assert hashlib.sha256(b"learnmesh/genesis\x00" + raw).hexdigest() == V["genesis"]["network_id"]
    assert Genesis.from_json(V["genesis"]["json"]).network_id == NET


@pytest.mark.parametrize("i", range(len(V["events"])))
def test_event(i: int) -> None:
    e = V["events"][i]
    raw = bytes.fromhex(e["raw"])
    ev = decode_event(raw, MAX, NET)
    assert ev.id.hex() == e["id"] == hashlib.sha256(raw).hexdigest()
    assert ev.kind.name == e["kind"] and ev.seq == e["seq"]
    signed = bytes.fromhex(e["signed"])
    assert signed == DOMAIN + raw[:-66]
    assert raw[-66:-64] == b"\xc4\x40"  # the signature is the last field, a bin8 of 64
    assert verify_signature(ev.author, signed, ev.signature)


def _events() -> list[Any]:
    return [decode_event(bytes.fromhex(e["raw"]), MAX, NET) for e in V["events"]]


def test_fold_void_codes_and_digest() -> None:
    r = Replica(GENESIS)
    for ev in _events():
        r.add(ev)
    for e in V["events"]:
        got = r.state.void.get(bytes.fromhex(e["id"]))
        assert (got[0] if got else None) == e["void"], e
    assert canonical_pack(r.state.digest_map()).hex() == V["final"]["digest_input"]
    assert r.digest().hex() == V["final"]["digest"]
    digest_input = bytes.fromhex(V["final"]["digest_input"])
    assert hashlib.sha256(b"learnmesh/state\x00" + digest_input).hexdigest() == V["final"]["digest"]
    names = {bytes.fromhex(k["public_key"]): k["name"] for k in V["keys"]}
    assert {names[a]: s for a, s in r.state.forks.items()} == V["final"]["forks"]
    assert {names[a]: r.state.balance(a) for a in names} == V["final"]["balances"]


def test_reverse_order_gives_the_same_digest() -> None:
    r = Replica(GENESIS)
    for ev in reversed(_events()):
        r.add(ev)
    assert r.pending == {}
    assert r.digest().hex() == V["final"]["digest"]


def test_commitment() -> None:
    c = V["commitment"]
    atts = [{**a, "hash": bytes.fromhex(a["hash"])} for a in c["attachments"]]
    ch = content_hash(c["text"], atts)
    assert ch.hex() == c["content_hash"]
    pre = b"learnmesh/content\x00" + canonical_pack({"text": c["text"], "attachments": atts})
    assert hashlib.sha256(pre).hexdigest() == c["content_hash"]
    got = commitment_of(
        bytes.fromhex(c["bounty"]), bytes.fromhex(c["learner"]), ch, bytes.fromhex(c["salt"])
    )
    assert got.hex() == c["commitment"]


def test_credential() -> None:
    cred = verify_credential(bytes.fromhex(V["credential"]["raw"]), expected_network=NET)
    assert cred.learner == V["credential"]["learner"]
    assert cred.amount == V["credential"]["amount"]


@pytest.mark.parametrize("case", V["invalid"], ids=[c["name"] for c in V["invalid"]])
def test_invalid_event(case: dict[str, str]) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        decode_event(bytes.fromhex(case["raw"]), MAX, NET)
    assert exc.value.code == case["code"]


def test_the_generator_reproduces_the_file() -> None:
    spec = importlib.util.spec_from_file_location("make_vectors", DIR / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.render() == (DIR / "events.json").read_text()


# -- disputes (PROTOCOL.md §6.8): tests/vectors/disputes.json ----------------------------------

DV: dict[str, Any] = json.loads((DIR / "disputes.json").read_text())
D_GENESIS = Genesis.decode(bytes.fromhex(DV["genesis"]["raw"]))


def test_dispute_vectors_decode_fold_and_digest() -> None:
    from learnmesh.protocol import dispute_outcomes

    net = D_GENESIS.network_id
    assert net.hex() == DV["genesis"]["network_id"]
    kinds = {e["kind"] for e in DV["events"]}
    assert {"dispute", "jury_commit", "jury_reveal", "dispute_claim"} <= kinds
    r = Replica(D_GENESIS)
    for e in DV["events"]:
        raw = bytes.fromhex(e["raw"])
        ev = decode_event(raw, D_GENESIS.params.max_event_bytes, net)
        assert ev.id.hex() == e["id"] and ev.kind.name == e["kind"] and ev.seq == e["seq"]
        assert DOMAIN + raw[:-66] == bytes.fromhex(e["signed"])
        r.add(ev)
    for e in DV["events"]:
        got = r.state.void.get(bytes.fromhex(e["id"]))
        assert (got[0] if got else None) == e["void"], e
    assert canonical_pack(r.state.digest_map()).hex() == DV["final"]["digest_input"]
    assert r.digest().hex() == DV["final"]["digest"]
    names = {bytes.fromhex(k["public_key"]): k["name"] for k in DV["keys"]}
    assert {names[a]: r.state.balance(a) for a in names} == DV["final"]["balances"]
    assert r.state.disputes.escrow() == DV["final"]["escrow"]
    assert list(dispute_outcomes(r.state).final.values()) == [DV["final"]["outcome"]]


def test_dispute_vectors_vote_commitment_and_jury() -> None:
    from learnmesh.protocol import draw_jury, vote_commitment

    c = DV["vote_commitment"]
    d, j, salt = (bytes.fromhex(c[k]) for k in ("dispute", "juror", "salt"))
    pre = b"learnmesh/vote\x00" + d + j + c["verdict"].encode() + salt
    assert hashlib.sha256(pre).hexdigest() == c["commitment"]
    assert vote_commitment(d, j, c["verdict"], salt).hex() == c["commitment"]
    r = Replica(D_GENESIS)
    for e in DV["events"]:
        r.add(decode_event(bytes.fromhex(e["raw"]), 1 << 20, D_GENESIS.network_id))
    (dispute,) = r.state.disputes.disputes.values()
    target, subject, disputant = dispute.target, dispute.subject, dispute.disputant
    assert hashlib.sha256(target + subject + disputant).hexdigest() == DV["jury"]["seed"]
    assert [x.hex() for x in draw_jury(r.state, dispute)] == DV["jury"]["drawn"]


def test_the_dispute_generator_reproduces_the_file() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_dispute_vectors", DIR / "make_dispute_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.render() == (DIR / "disputes.json").read_text()
