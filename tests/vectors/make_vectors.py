"""Generate tests/vectors/events.json: test vectors for other implementations.

Deterministic: keys come from fixed seeds, timestamps are fixed, salts are
fixed. Run `python tests/vectors/make_vectors.py` to regenerate after a
deliberate format change (tests/test_protocol_vectors.py fails until you do).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

from learnmesh.node._vc import canonicalize
from learnmesh.protocol import (
    DOMAIN,
    ChainWriter,
    Event,
    Genesis,
    KeyPair,
    Params,
    RemoteProtocolError,
    Replica,
    canonical_pack,
    commit_body,
    commitment_of,
    content_hash,
    decode_event,
    make_credential,
    reveal_body,
)
from learnmesh.protocol._vc import build_credential, iso_time, sign_credential, vc_bytes

OUT = pathlib.Path(__file__).with_name("events.json")
T0 = 1_700_000_000_000
DAY = 86_400_000
NAMES = ["mentor", "learner", "reviewer", "friend"]


def _seed(i: int) -> bytes:
    return bytes([0xA0 + i]) * 32


def _sign_raw(key: KeyPair, fields: list[Any]) -> bytes:
    """Sign an arbitrary 10-field array as make_event does (for invalid vectors)."""
    raw = canonical_pack([*fields[:9], bytes(64)])
    return raw[:-64] + key.sign(DOMAIN + raw[:-66])


def _resign(key: KeyPair, raw: bytes) -> bytes:
    return raw[:-64] + key.sign(DOMAIN + raw[:-66])


def build() -> dict[str, Any]:
    keys = [KeyPair(_seed(i)) for i in range(4)]
    pk = [k.public_key for k in keys]
    genesis = Genesis(
        name="vectors",
        description="learnmesh test vectors",
        created_ms=T0,
        allocations=tuple(sorted([(pk[0], 50_000), (pk[1], 1_000), (pk[2], 1_000), (pk[3], 10)])),
        trusted=(pk[0],),
        params=Params(),
    )
    net = genesis.network_id
    w = [ChainWriter(k, net) for k in keys]
    events: list[tuple[Event, str]] = []
    t = T0

    def emit(
        i: int, kind: str, body: dict[str, Any], refs: list[bytes] = (), note: str = ""
    ) -> Event:  # type: ignore[assignment]
        nonlocal t
        t += 1000
        ev = w[i].sign(kind, body, t, refs)
        events.append((ev, note))
        return ev

    emit(0, "profile", {"name": "Mentor", "bio": "teaches maths", "skills": ["math"]})
    bounty = emit(
        0,
        "bounty",
        {
            "title": "Prove that sqrt(2) is irrational",
            "description": "A short proof, in your own words.",
            "rubric": [{"name": "correctness", "max": 10}, {"name": "clarity", "max": 5}],
            "skills": ["math", "writing"],
            "reward": 10_000,
            "reviewer_share_bp": 1000,
            "submit_by": T0 + DAY,
            "review_by": T0 + 2 * DAY,
            "quorum": 1,
        },
    )
    text = "Suppose sqrt(2) = p/q in lowest terms; then p^2 = 2q^2 ..."
    atts = [{"hash": bytes(range(32)), "name": "proof.pdf", "size": 12345}]
    salt = bytes(range(16))
    commit = emit(1, "commit", commit_body(bounty.id, pk[1], text, atts, salt), [bounty.id])
    late = commit_body(bounty.id, pk[3], "too late", [], salt)
    t_late = t
    t = T0 + DAY + 1  # after submit_by: void (late)
    late_commit = emit(3, "commit", late, [bounty.id], note="late")
    t = t_late + 1000
    close = emit(0, "close", {"bounty": bounty.id, "accepted": [commit.id]}, [bounty.id, commit.id])
    reveal = emit(
        1,
        "reveal",
        reveal_body(bounty.id, commit.id, close.id, text, atts, salt),
        [commit.id, close.id],
    )
    review = emit(
        2,
        "review",
        {"bounty": bounty.id, "submission": reveal.id, "scores": [9, 4], "comment": "clear"},
        [reveal.id],
    )
    award = emit(
        0,
        "award",
        {
            "bounty": bounty.id,
            "winners": [{"submission": reveal.id, "amount": 8000}],
            "reviewers": [{"review": review.id, "amount": 1000}],
        },
        [bounty.id, reveal.id, review.id],
    )
    # The mentor's node signs the winner's Open Badge and names its blob in an event.
    vc = sign_credential(
        build_credential(genesis, bounty, commit, close, reveal, award, [review], "Mentor"),
        keys[0],
        iso_time(award.timestamp),
        canonicalize,
    )
    vc_raw = vc_bytes(vc)
    vc_hash = hashlib.sha256(vc_raw).digest()
    emit(
        0,
        "credential",
        {"award": award.id, "submission": reveal.id, "vc": vc_hash, "size": len(vc_raw)},
        [award.id],
    )
    emit(1, "transfer", {"to": pk[3], "amount": 1500, "memo": "thanks"}, [award.id])
    emit(3, "transfer", {"to": pk[0], "amount": 100, "memo": ""}, note="insufficient_funds")
    emit(0, "vouch", {"account": pk[1]})
    b2 = emit(
        0,
        "bounty",
        {
            "title": "Nobody came",
            "description": "",
            "rubric": [{"name": "done", "max": 1}],
            "skills": [],
            "reward": 500,
            "reviewer_share_bp": 0,
            "submit_by": t + DAY,
            "review_by": t + 2 * DAY,
            "quorum": 1,
        },
    )
    emit(0, "refund", {"bounty": b2.id}, [b2.id])
    # The friend forks its chain: two different events at its seq 3.
    head = (w[3].seq, w[3].head)
    emit(3, "vouch", {"account": pk[1]}, note="equivocation")
    w[3].resume(*head)
    emit(3, "vouch", {"account": pk[2]}, note="equivocation")

    replica = Replica(genesis)
    for ev, _ in events:
        replica.add(ev)
    void = replica.state.void
    for ev, note in events:
        assert (void[ev.id][0] if ev.id in void else "") == note, (ev.short(), void.get(ev.id))
    assert replica.state.check_invariants() == []

    # -- invalid events: each signed, each with exactly one thing wrong ------------------
    k1 = keys[1]
    good_fields = [1, net, pk[1], 1, None, T0, 10, {"account": pk[2]}, [], bytes(64)]

    def with_(i: int, v: Any) -> list[Any]:
        f = list(good_fields)
        f[i] = v
        return f

    good_raw = _sign_raw(k1, good_fields)
    flipped = bytearray(good_raw)
    flipped[-1] ^= 1
    # Non-canonical forms canonical_pack cannot produce: patched by hand, then signed.
    seq_at = good_raw.index(b"\x01\xc0")  # seq 1 (a fixint), then prev (nil)
    ts_at = good_raw.index(b"\xcf" + T0.to_bytes(8, "big"))
    float_ts = b"\xcb" + bytes.fromhex("4278bcfe56800000")  # 1.7e12 as a float64
    commit_no_refs = [1, net, pk[1], 1, None, T0, 3, {"bounty": bounty.id, "commitment": bytes(32)}]
    invalid = [
        ("bad signature (last byte flipped)", bytes(flipped)),
        ("another network", _sign_raw(k1, with_(1, bytes(32)))),
        ("wire version 2", _sign_raw(k1, with_(0, 2))),
        ("unknown kind 99", _sign_raw(k1, with_(6, 99))),
        ("seq 1 with a prev", _sign_raw(k1, with_(4, bytes(32)))),
        ("vouch for yourself", _sign_raw(k1, with_(7, {"account": pk[1]}))),
        ("an extra body field", _sign_raw(k1, with_(7, {"account": pk[2], "why": "x"}))),
        ("a ref a vouch does not use", _sign_raw(k1, with_(8, [bytes(32)]))),
        ("a commit without its bounty in refs", _sign_raw(k1, [*commit_no_refs, [], b""])),
        ("trailing byte", good_raw + b"\x00"),
        (
            "uint8 where a fixint fits (seq)",
            _resign(k1, good_raw[:seq_at] + b"\xcc\x01" + good_raw[seq_at + 1 :]),
        ),
        ("a float timestamp", _resign(k1, good_raw[:ts_at] + float_ts + good_raw[ts_at + 9 :])),
        ("array16 header", _resign(k1, b"\xdc\x00\x0a" + good_raw[1:])),
    ]
    invalid_out = []
    for name, raw in invalid:
        try:
            decode_event(raw, genesis.params.max_event_bytes, net)
        except RemoteProtocolError as exc:
            invalid_out.append({"name": name, "raw": raw.hex(), "code": exc.code})
        else:
            raise AssertionError(f"invalid vector {name!r} decoded")

    cred = make_credential(genesis, bounty, commit, close, reveal, award)
    ch = content_hash(text, atts)
    return {
        "about": "learnmesh protocol test vectors; see PROTOCOL.md. Regenerate with "
        "tests/vectors/make_vectors.py. All byte strings are lowercase hex.",
        "keys": [
            {
                "name": NAMES[i],
                "seed": _seed(i).hex(),
                "public_key": pk[i].hex(),
                "account": keys[i].account,
            }
            for i in range(4)
        ],
        "genesis": {
            "raw": genesis.encode().hex(),
            "network_id": net.hex(),
            "json": genesis.to_json(),
        },
        "events": [
            {
                "kind": ev.kind.name,
                "author": NAMES[pk.index(ev.author)],
                "seq": ev.seq,
                "raw": ev.raw.hex(),
                "signed": (DOMAIN + ev.raw[:-66]).hex(),
                "id": ev.id.hex(),
                "void": note or None,
            }
            for ev, note in events
        ],
        "final": {
            "digest_input": canonical_pack(replica.state.digest_map()).hex(),
            "digest": replica.digest().hex(),
            "forks": {NAMES[pk.index(a)]: s for a, s in replica.state.forks.items()},
            "balances": {NAMES[i]: replica.state.balance(pk[i]) for i in range(4)},
        },
        "commitment": {
            "bounty": bounty.id.hex(),
            "learner": pk[1].hex(),
            "text": text,
            "attachments": [{**a, "hash": a["hash"].hex()} for a in atts],
            "salt": salt.hex(),
            "content_hash": ch.hex(),
            "commitment": commitment_of(bounty.id, pk[1], ch, salt).hex(),
        },
        "credential": {"raw": cred.hex(), "learner": keys[1].account, "amount": 8000},
        "open_badge": {"json": vc_raw.decode(), "sha256": vc_hash.hex()},
        "invalid": invalid_out,
        "late_commit": late_commit.id.hex(),
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
