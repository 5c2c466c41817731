"""Every rejection a peer's data can earn, fed the exact bad input: event decoding,
kind schemas and refs, genesis documents, account text, fork proofs. Each bad
event is validly signed, so the rejection is the rule under test and not the
signature. A coverage test reads the sources for codes without a case."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from learnmesh.protocol import (
    KINDS,
    EquivocationProof,
    Genesis,
    KeyPair,
    LocalProtocolError,
    Params,
    RemoteProtocolError,
    account_from_text,
    account_text,
    canonical_pack,
    decode_event,
    make_event,
)
from learnmesh.protocol._kinds import MAX_AMOUNT, MAX_TS
from test_protocol_support import T0, Net, event_fields, key, refs_for, sign_fields

PROTOCOL = pathlib.Path(__file__).resolve().parent.parent / "protocol"
K = key(0)
OTHER = key(1).public_key
NET = Net().network
H = bytes(range(32))  # some 32-byte id
H2 = bytes(range(1, 33))
BIG = 1 << 20


def _decode(raw: bytes, network: bytes | None = NET) -> Any:
    return decode_event(raw, BIG, network)


def _code(f: Callable[[], Any]) -> str:
    with pytest.raises(RemoteProtocolError) as exc:
        f()
    return exc.value.code


def signed(fields: list[Any], k: KeyPair = K) -> bytes:
    return sign_fields(k, fields)


def vouch_fields(**over: Any) -> list[Any]:
    f = event_fields(K, NET, 10, {"account": OTHER})
    names = ["version", "network", "author", "seq", "prev", "ts", "kind", "body", "refs", "sig"]
    for name, v in over.items():
        f[names.index(name)] = v
    return f


def test_a_well_formed_event_decodes() -> None:
    ev = _decode(signed(vouch_fields()))
    assert ev.kind.name == "vouch"
    assert ev.body == {"account": OTHER}


# -- the envelope --------------------------------------------------------------------------

ENVELOPE: list[tuple[str, Callable[[], Any], str]] = [
    ("not bytes", lambda: decode_event("text", BIG), "type"),  # type: ignore[arg-type]
    ("not an array", lambda: _decode(canonical_pack({"a": 1})), "shape"),
    ("nine fields", lambda: _decode(canonical_pack(vouch_fields()[:9])), "shape"),
    ("eleven fields", lambda: _decode(canonical_pack([*vouch_fields(), 0])), "shape"),
    ("version 2", lambda: _decode(signed(vouch_fields(version=2))), "version"),
    ("version true", lambda: _decode(signed(vouch_fields(version=True))), "version"),
    ("network 31 bytes", lambda: _decode(signed(vouch_fields(network=H[:31]))), "field"),
    ("network not bytes", lambda: _decode(signed(vouch_fields(network="x" * 32))), "field"),
    ("wrong network", lambda: _decode(signed(vouch_fields(network=H))), "wrong_network"),
    ("author 33 bytes", lambda: _decode(signed(vouch_fields(author=H + b"x"))), "field"),
    ("seq 0", lambda: _decode(signed(vouch_fields(seq=0))), "field"),
    ("seq -1", lambda: _decode(signed(vouch_fields(seq=-1))), "field"),
    ("seq 2**63", lambda: _decode(signed(vouch_fields(seq=2**63, prev=H))), "field"),
    ("seq true", lambda: _decode(signed(vouch_fields(seq=True))), "field"),
    ("seq 1 with a prev", lambda: _decode(signed(vouch_fields(prev=H))), "prev"),
    ("seq 2 without a prev", lambda: _decode(signed(vouch_fields(seq=2))), "prev"),
    ("prev 31 bytes", lambda: _decode(signed(vouch_fields(seq=2, prev=H[:31]))), "prev"),
    ("timestamp negative", lambda: _decode(signed(vouch_fields(ts=-1))), "field"),
    ("timestamp 2**48", lambda: _decode(signed(vouch_fields(ts=2**48))), "field"),
    ("timestamp text", lambda: _decode(signed(vouch_fields(ts="now"))), "field"),
    ("kind 99", lambda: _decode(signed(vouch_fields(kind=99))), "unknown_kind"),
    ("kind 0", lambda: _decode(signed(vouch_fields(kind=0))), "unknown_kind"),
    ("kind true", lambda: _decode(signed(vouch_fields(kind=True))), "unknown_kind"),
    ("kind name", lambda: _decode(signed(vouch_fields(kind="vouch"))), "unknown_kind"),
    (
        "over the kind's size",
        lambda: _decode(signed(vouch_fields(refs=sorted(bytes([i]) * 32 for i in range(40))))),
        "oversize",
    ),
    (
        "over the network's size",
        lambda: decode_event(signed(vouch_fields()), 100, NET),
        "oversize",
    ),
    ("refs not a list", lambda: _decode(signed(vouch_fields(refs=H))), "refs"),
    ("ref 31 bytes", lambda: _decode(signed(vouch_fields(refs=[H[:31]]))), "refs"),
    ("refs unsorted", lambda: _decode(signed(vouch_fields(refs=[H2, H]))), "refs"),
    ("refs repeat", lambda: _decode(signed(vouch_fields(refs=[H, H]))), "refs"),
    (
        "more than 512 refs",
        lambda: decode_event(
            signed(event_fields(K, NET, 7, {}, sorted(i.to_bytes(32, "big") for i in range(513)))),
            BIG,
            NET,
        ),
        "refs",
    ),
    ("body not a map", lambda: _decode(signed(vouch_fields(body=[OTHER]))), "body"),
    (
        "signature 63 bytes",
        lambda: _decode(canonical_pack([*vouch_fields()[:9], bytes(63)])),
        "field",
    ),
    (
        "signature by another key",
        lambda: _decode(signed(vouch_fields(), k=key(5))),
        "bad_signature",
    ),
    (
        "signature zeroed",
        lambda: _decode(canonical_pack(vouch_fields())),
        "bad_signature",
    ),
    (
        "non-canonical bytes",
        lambda: _decode(b"\xdc\x00\x0a" + signed(vouch_fields())[1:]),
        "non_canonical",
    ),
]


@pytest.mark.parametrize(("what", "f", "code"), ENVELOPE, ids=[c[0] for c in ENVELOPE])
def test_envelope(what: str, f: Callable[[], Any], code: str) -> None:
    assert _code(f) == code


# -- the schema of each kind ----------------------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "profile": {"name": "Ada", "bio": "", "skills": ["math"]},
    "bounty": {
        "title": "t",
        "description": "",
        "rubric": [{"name": "c", "max": 10}],
        "skills": [],
        "reward": 100,
        "reviewer_share_bp": 0,
        "submit_by": T0 + 1,
        "review_by": T0 + 2,
        "quorum": 1,
    },
    "commit": {"bounty": H, "commitment": H2},
    "close": {"bounty": H, "accepted": [H2]},
    "reveal": {
        "bounty": H,
        "commit": H2,
        "close": bytes(32),
        "salt": bytes(16),
        "text": "",
        "attachments": [{"hash": H, "name": "a.txt", "size": 3}],
    },
    "review": {"bounty": H, "submission": H2, "scores": [1], "comment": ""},
    "award": {
        "bounty": H,
        "winners": [{"submission": H2, "amount": 1}],
        "reviewers": [{"review": bytes(32), "amount": 1}],
    },
    "refund": {"bounty": H},
    "transfer": {"to": OTHER, "amount": 1, "memo": ""},
    "vouch": {"account": OTHER},
}

# (kind, field, bad value): each makes exactly that kind's schema fail.
SCHEMA: list[tuple[str, str, Any]] = [
    ("profile", "name", ""),
    ("profile", "name", "x" * 65),
    ("profile", "name", 5),
    ("profile", "bio", "x" * 501),
    ("profile", "skills", "math"),
    ("profile", "skills", [f"s{i}" for i in range(17)]),
    ("profile", "skills", [""]),
    ("profile", "skills", ["x" * 33]),
    ("profile", "skills", [1]),
    ("profile", "skills", ["a", "a"]),
    ("bounty", "title", ""),
    ("bounty", "title", "x" * 201),
    ("bounty", "description", "x" * 8001),
    ("bounty", "rubric", {}),
    ("bounty", "rubric", []),
    ("bounty", "rubric", [{"name": f"c{i}", "max": 1} for i in range(17)]),
    ("bounty", "rubric", [{"name": "c"}]),
    ("bounty", "rubric", ["c"]),
    ("bounty", "rubric", [{"name": "", "max": 1}]),
    ("bounty", "rubric", [{"name": "x" * 65, "max": 1}]),
    ("bounty", "rubric", [{"name": "c", "max": 0}]),
    ("bounty", "rubric", [{"name": "c", "max": 101}]),
    ("bounty", "rubric", [{"name": "c", "max": 1}, {"name": "c", "max": 2}]),
    ("bounty", "skills", ["a", "a"]),
    ("bounty", "reward", 0),
    ("bounty", "reward", MAX_AMOUNT + 1),
    ("bounty", "reward", True),
    ("bounty", "reviewer_share_bp", 5001),
    ("bounty", "reviewer_share_bp", -1),
    ("bounty", "submit_by", -1),
    ("bounty", "submit_by", MAX_TS + 1),
    ("bounty", "review_by", T0 + 1),  # not after submit_by
    ("bounty", "review_by", MAX_TS + 1),
    ("bounty", "quorum", 0),
    ("bounty", "quorum", 17),
    ("commit", "bounty", H[:31]),
    ("commit", "commitment", "x" * 32),
    ("close", "bounty", None),
    ("close", "accepted", H),
    ("close", "accepted", [i.to_bytes(32, "big") for i in range(257)]),
    ("close", "accepted", [H[:31]]),
    ("close", "accepted", [H2, H2]),
    ("reveal", "bounty", b""),
    ("reveal", "commit", H + b"x"),
    ("reveal", "close", 0),
    ("reveal", "salt", bytes(15)),
    ("reveal", "salt", bytes(33)),
    ("reveal", "salt", "x" * 16),
    ("reveal", "text", "x" * 16001),
    ("reveal", "attachments", [{"hash": H, "name": "a", "size": 1}] * 17),
    ("reveal", "attachments", [{"hash": H, "name": "a"}]),
    ("reveal", "attachments", [{"hash": H[:5], "name": "a", "size": 1}]),
    ("reveal", "attachments", [{"hash": H, "name": "", "size": 1}]),
    ("reveal", "attachments", [{"hash": H, "name": "x" * 129, "size": 1}]),
    ("reveal", "attachments", [{"hash": H, "name": "a", "size": -1}]),
    ("reveal", "attachments", [{"hash": H, "name": "a", "size": 2**40 + 1}]),
    ("review", "bounty", H[:1]),
    ("review", "submission", None),
    ("review", "scores", []),
    ("review", "scores", [1] * 17),
    ("review", "scores", 5),
    ("review", "scores", [101]),
    ("review", "scores", [-1]),
    ("review", "scores", [True]),
    ("review", "comment", "x" * 2001),
    ("award", "bounty", b"x"),
    ("award", "winners", [{"submission": H2}]),
    ("award", "winners", [{"submission": H2[:3], "amount": 1}]),
    ("award", "winners", [{"submission": H2, "amount": 0}]),
    ("award", "winners", [{"submission": H2, "amount": 1}, {"submission": H2, "amount": 2}]),
    ("award", "winners", [{"submission": i.to_bytes(32, "big"), "amount": 1} for i in range(65)]),
    ("award", "reviewers", [{"review": H2, "amount": 1, "x": 1}]),
    ("award", "reviewers", [{"review": 7, "amount": 1}]),
    ("award", "reviewers", [{"review": H2, "amount": MAX_AMOUNT + 1}]),
    ("award", "reviewers", [{"review": H2, "amount": 1}, {"review": H2, "amount": 1}]),
    ("award", "reviewers", [{"review": i.to_bytes(32, "big"), "amount": 1} for i in range(257)]),
    ("refund", "bounty", "x"),
    ("transfer", "to", H[:31]),
    ("transfer", "to", K.public_key),  # to yourself
    ("transfer", "amount", 0),
    ("transfer", "amount", -5),
    ("transfer", "memo", "x" * 201),
    ("vouch", "account", b""),
    ("vouch", "account", K.public_key),  # yourself
]


def _schema_event(kind: str, body: dict[str, Any], refs: list[bytes] | None = None) -> bytes:
    return signed(
        event_fields(K, NET, KINDS[kind].code, body, refs_for(kind, body) if refs is None else refs)
    )


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_bodies_decode(kind: str) -> None:
    ev = _decode(_schema_event(kind, VALID[kind]))
    assert ev.kind.name == kind


@pytest.mark.parametrize(
    ("kind", "name", "bad"), SCHEMA, ids=[f"{k}.{n}-{i}" for i, (k, n, _) in enumerate(SCHEMA)]
)
def test_schema(kind: str, name: str, bad: Any) -> None:
    body = {**VALID[kind], name: bad}
    with pytest.raises(RemoteProtocolError) as exc:
        _decode(_schema_event(kind, body, refs=refs_for(kind, VALID[kind])))
    assert exc.value.code == "schema"
    assert exc.value.reason.startswith(f"{kind}:")
    # and make_event refuses to sign it, with the same code
    with pytest.raises(LocalProtocolError) as local:
        make_event(K, NET, 1, None, T0, kind, body, refs_for(kind, VALID[kind]))
    assert local.value.code == "schema"


@pytest.mark.parametrize("kind", sorted(VALID))
def test_missing_and_extra_fields(kind: str) -> None:
    first = sorted(VALID[kind])[0]
    missing = {k: v for k, v in VALID[kind].items() if k != first}
    extra = {**VALID[kind], "zzz": 1}
    for body in (missing, extra):
        with pytest.raises(RemoteProtocolError) as exc:
            _decode(_schema_event(kind, body, refs=[]))
        assert exc.value.code == "schema"


REFS: list[tuple[str, str, Callable[[], list[bytes]]]] = [
    ("commit", "the bounty is not in refs", lambda: []),
    ("close", "an accepted commit is not in refs", lambda: [H]),
    ("reveal", "the close is not in refs", lambda: [H2]),
    ("review", "the submission is not in refs", lambda: []),
    ("award", "a paid review is not in refs", lambda: [H, H2]),
    ("refund", "the bounty is not in refs", lambda: []),
    ("vouch", "a non-spend names an extra ref", lambda: [H]),
    ("commit", "a non-spend names an extra ref", lambda: sorted([H, H2])),
    (
        "transfer",
        "a spend claims more than 64 credits",
        lambda: [i.to_bytes(32, "big") for i in range(65)],
    ),
    (
        "bounty",
        "a spend claims more than 64 credits",
        lambda: [i.to_bytes(32, "big") for i in range(65)],
    ),
]


@pytest.mark.parametrize(("kind", "what", "refs"), REFS, ids=[f"{k}: {w}" for k, w, _ in REFS])
def test_refs_rules(kind: str, what: str, refs: Callable[[], list[bytes]]) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        _decode(_schema_event(kind, VALID[kind], refs=refs()))
    assert exc.value.code == "refs"


def test_spends_may_claim_up_to_64_credits() -> None:
    claims = [i.to_bytes(32, "big") for i in range(64)]
    ev = _decode(_schema_event("transfer", VALID["transfer"], refs=claims))
    assert len(ev.refs) == 64


def test_make_event_refuses_an_unknown_kind() -> None:
    with pytest.raises(LocalProtocolError) as exc:
        make_event(K, NET, 1, None, T0, "gift", {})
    assert exc.value.code == "unknown_kind"


def test_make_event_sorts_and_dedupes_refs() -> None:
    ev = make_event(K, NET, 1, None, T0, "transfer", VALID["transfer"], [H2, H, H2])
    assert ev.refs == (H, H2)


# -- genesis --------------------------------------------------------------------------------

GOOD_GENESIS = Genesis(
    name="g",
    created_ms=T0,
    allocations=tuple(sorted([(K.public_key, 10), (OTHER, 5)])),
    trusted=(K.public_key,),
)


def _gmap(**over: Any) -> dict[str, Any]:
    return {**GOOD_GENESIS.to_map(), **over}


def _genesis_bytes(**over: Any) -> bytes:
    return canonical_pack(_gmap(**over))


GENESIS: list[tuple[str, Callable[[], Any]]] = [
    ("empty name", lambda: Genesis("", T0, ((K.public_key, 1),))),
    ("name of 65", lambda: Genesis("x" * 65, T0, ((K.public_key, 1),))),
    ("account of 31 bytes", lambda: Genesis("g", T0, ((H[:31], 1),))),
    ("allocated twice", lambda: Genesis("g", T0, ((H, 1), (H, 2)))),
    ("zero allocation", lambda: Genesis("g", T0, ((H, 0),))),
    ("supply over 63 bits", lambda: Genesis("g", T0, ((H, 2**62), (H2, 2**62)))),
    ("trusted of 31 bytes", lambda: Genesis("g", T0, ((H, 1),), trusted=(H[:31],))),
    ("not a map", lambda: Genesis.decode(canonical_pack([1]))),
    ("missing a field", lambda: Genesis.decode(canonical_pack({"v": 1}))),
    ("extra field", lambda: Genesis.decode(_genesis_bytes(extra=1))),
    ("version 2", lambda: Genesis.decode(_genesis_bytes(v=2))),
    ("version true", lambda: Genesis.decode(_genesis_bytes(v=True))),
    ("allocations not pairs", lambda: Genesis.decode(_genesis_bytes(allocations=[1]))),
    ("allocation amount text", lambda: Genesis.decode(_genesis_bytes(allocations=[[H, "x"]]))),
    ("allocation amount true", lambda: Genesis.decode(_genesis_bytes(allocations=[[H, True]]))),
    ("trusted not bytes", lambda: Genesis.decode(_genesis_bytes(trusted=[1]))),
    ("name not text", lambda: Genesis.decode(_genesis_bytes(name=b"g"))),
    ("description not text", lambda: Genesis.decode(_genesis_bytes(description=1))),
    ("created_ms text", lambda: Genesis.decode(_genesis_bytes(created_ms="now"))),
    ("created_ms true", lambda: Genesis.decode(_genesis_bytes(created_ms=True))),
    ("params not a map", lambda: Genesis.decode(_genesis_bytes(params=[]))),
    (
        "unknown parameter",
        lambda: Genesis.decode(_genesis_bytes(params={**Params().to_map(), "x": 1})),
    ),
    (
        "negative parameter",
        lambda: Genesis.decode(_genesis_bytes(params={**Params().to_map(), "min_quorum": -1})),
    ),
    (
        "boolean parameter",
        lambda: Genesis.decode(_genesis_bytes(params={**Params().to_map(), "min_quorum": True})),
    ),
    (
        "max_event_bytes too small",
        lambda: Genesis.decode(
            _genesis_bytes(params={**Params().to_map(), "max_event_bytes": 1023})
        ),
    ),
    (
        "allocations out of order",
        lambda: Genesis.decode(
            _genesis_bytes(
                allocations=[[a, n] for a, n in sorted(GOOD_GENESIS.allocations, reverse=True)]
            )
        ),
    ),
    ("trusted out of order", lambda: Genesis.decode(_genesis_bytes(trusted=[H2, H]))),
    ("json not an object", lambda: Genesis.from_json([])),
    ("json lacking a name", lambda: Genesis.from_json({"created_ms": 1, "allocations": {}})),
    (
        "json with a bad account",
        lambda: Genesis.from_json({"name": "g", "created_ms": 1, "allocations": {"lmx": 1}}),
    ),
]


@pytest.mark.parametrize(("what", "f"), GENESIS, ids=[c[0] for c in GENESIS])
def test_genesis_rejections(what: str, f: Callable[[], Any]) -> None:
    assert _code(f) in ("genesis", "account")
    if what.startswith("json with"):
        assert _code(f) == "account"
    else:
        assert _code(f) == "genesis"


def test_genesis_round_trips() -> None:
    data = GOOD_GENESIS.encode()
    g = Genesis.decode(data)
    assert g == GOOD_GENESIS
    assert g.network_id == GOOD_GENESIS.network_id
    assert Genesis.from_json(GOOD_GENESIS.to_json()).network_id == GOOD_GENESIS.network_id


def test_genesis_bytes_must_be_canonical_msgpack() -> None:
    assert _code(lambda: Genesis.decode(GOOD_GENESIS.encode() + b"\x00")) == "trailing_bytes"


# -- account text -----------------------------------------------------------------------------


def test_account_text_round_trip() -> None:
    text = account_text(K.public_key)
    assert text.startswith("lm") and len(text) == 58
    assert account_from_text(text) == K.public_key
    assert account_from_text(f"  {text}\n") == K.public_key
    assert K.account == text


ACCOUNT_TEXT: list[tuple[str, str]] = [
    ("wrong prefix", "xx" + account_text(K.public_key)[2:]),
    ("empty", ""),
    ("not base32", "lm!!!!"),
    ("non-ascii", "lmé" + account_text(K.public_key)[3:]),
    (
        "typo flips the checksum",
        "lm"
        + ("b" if account_text(K.public_key)[2] != "b" else "c")
        + account_text(K.public_key)[3:],
    ),
    ("too short", account_text(K.public_key)[:-8]),
    ("too long", account_text(K.public_key) + "aaaaaaaa"),
]


@pytest.mark.parametrize(("what", "text"), ACCOUNT_TEXT, ids=[c[0] for c in ACCOUNT_TEXT])
def test_account_text_rejections(what: str, text: str) -> None:
    assert _code(lambda: account_from_text(text)) == "account"


def test_local_identity_errors() -> None:
    with pytest.raises(LocalProtocolError) as exc:
        account_text(bytes(31))
    assert exc.value.code == "account"
    with pytest.raises(LocalProtocolError) as exc:
        KeyPair(bytes(31))
    assert exc.value.code == "seed"


# -- equivocation proofs -----------------------------------------------------------------------


def _two_at_seq_1() -> tuple[bytes, bytes]:
    a = make_event(K, NET, 1, None, T0, "vouch", {"account": OTHER})
    b = make_event(K, NET, 1, None, T0, "vouch", {"account": H})
    return a.raw, b.raw


def test_proof_of_a_real_fork_verifies() -> None:
    a, b = _two_at_seq_1()
    assert EquivocationProof(a, b).verify(NET) == (K.public_key, 1)
    assert EquivocationProof(b, a).verify(NET) == (K.public_key, 1)


PROOFS: list[tuple[str, Callable[[], EquivocationProof], str]] = [
    (
        "same event twice",
        lambda: EquivocationProof(_two_at_seq_1()[0], _two_at_seq_1()[0]),
        "bad_proof",
    ),
    (
        "different seq",
        lambda: EquivocationProof(
            _two_at_seq_1()[0],
            make_event(K, NET, 2, H, T0, "vouch", {"account": OTHER}).raw,
        ),
        "bad_proof",
    ),
    (
        "different authors",
        lambda: EquivocationProof(
            _two_at_seq_1()[0],
            make_event(key(2), NET, 1, None, T0, "vouch", {"account": OTHER}).raw,
        ),
        "bad_proof",
    ),
    (
        "forged second event",
        lambda: EquivocationProof(
            _two_at_seq_1()[0],
            _two_at_seq_1()[1][:-1] + bytes([_two_at_seq_1()[1][-1] ^ 1]),
        ),
        "bad_signature",
    ),
    (
        "events of another network",
        lambda: EquivocationProof(
            make_event(K, H, 1, None, T0, "vouch", {"account": OTHER}).raw,
            make_event(K, H, 1, None, T0, "vouch", {"account": H2}).raw,
        ),
        "wrong_network",
    ),
]


@pytest.mark.parametrize(("what", "proof", "code"), PROOFS, ids=[c[0] for c in PROOFS])
def test_bad_proofs_are_refused(
    what: str, proof: Callable[[], EquivocationProof], code: str
) -> None:
    assert _code(lambda: proof().verify(NET)) == code


def test_replay_of_a_bad_store_is_refused() -> None:
    from learnmesh.protocol import Replica

    net = Net()
    ev = net.emit(0, "vouch", {"account": net.pk(1)})
    second = net.emit(0, "vouch", {"account": net.pk(2)})
    r = Replica(net.genesis)
    assert _code(lambda: r.load([second.raw])) == "replay"  # its prev is not stored
    r2 = Replica(net.genesis)
    r2.load([ev.raw, second.raw])
    assert r2.digest() == net.replica.digest()


# -- coverage ------------------------------------------------------------------------------


def _remote_codes(path: pathlib.Path) -> set[str]:
    codes: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        name, args = node.func.id, node.args
        if name in ("RemoteProtocolError", "CredentialError") and args:
            arg = args[0]
        elif name == "_need" and len(args) == 3:  # _event.py: _need(cond, code, reason)
            arg = args[1]
        elif name in ("_need", "_fail"):
            continue  # _credential.py's _need and _kinds.py's _fail have one code each
        else:
            continue
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            codes.add(arg.value)
    return codes


def _tested_codes() -> set[str]:
    from test_protocol_encoding import REMOTE_CASES

    codes = {c for _, _, c in ENVELOPE} | {c for _, _, c in PROOFS} | {"schema", "refs"}
    codes |= {c for _, _, c in REMOTE_CASES} | {"oversize", "genesis", "account", "replay"}
    return codes | {"credential"}  # test_protocol_credential.py


def test_every_remote_rejection_code_has_a_case() -> None:
    files = ["_encoding.py", "_event.py", "_kinds.py", "_genesis.py", "_credential.py"]
    files += ["_identity.py", "_replica.py", "_schema.py"]
    files += [p.name for p in PROTOCOL.glob("_kinds_*.py")]
    found: set[str] = set()
    for f in files:
        found |= _remote_codes(PROTOCOL / f)
    assert {"non_canonical", "bad_signature", "schema", "genesis", "credential"} <= found
    assert found - _tested_codes() == set()
