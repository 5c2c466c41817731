"""An Open Badge built from a real award (the published protocol vectors: signed
events of a bounty, commit, close, reveal, review and award) verifies offline,
and every tamper gives the right answer with its reason. No network access
happens during verification."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import pathlib
import socket
from collections.abc import Callable
from typing import Any

import pytest
from _nodes import cli
from learnmesh.node._vc import Canonicalizer, VCReport, default_canonicalizer, verify_vc
from learnmesh.protocol import Event, Genesis, KeyPair, decode_event
from learnmesh.protocol._vc import (
    OB_CONTEXT,
    VC_CONTEXT,
    b58decode,
    b58encode,
    build_credential,
    did_key,
    iso_time,
    sign_credential,
    vc_bytes,
)

DIR = pathlib.Path(__file__).resolve().parent / "vectors"
V: dict[str, Any] = json.loads((DIR / "events.json").read_text())
GENESIS = Genesis.decode(bytes.fromhex(V["genesis"]["raw"]))
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
MENTOR = KeyPair(bytes([0xA0]) * 32)
OTHER = KeyPair(bytes([0x42]) * 32)


def _events() -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for e in V["events"]:
        ev = decode_event(bytes.fromhex(e["raw"]), GENESIS.params.max_event_bytes)
        if e["void"] is None:
            out.setdefault(ev.kind.name, []).append(ev)
    return out


EV = _events()
ORIGINAL: dict[str, Any] = json.loads(V["open_badge"]["json"])


def _doc() -> dict[str, Any]:
    return copy.deepcopy(ORIGINAL)


def _verify(doc: Any, now: dt.datetime = NOW) -> VCReport:
    return verify_vc(doc, now)


def _failed(r: VCReport) -> dict[str, str]:
    return dict(r.failures)


def _resign(doc: dict[str, Any], key: KeyPair = MENTOR) -> dict[str, Any]:
    return sign_credential(doc, key, doc["proof"]["created"], default_canonicalizer())


def test_built_from_the_award_events_exactly() -> None:
    """Anyone holding the events rebuilds the same signed document, and its
    bytes are the blob the mentor's `credential` event names."""
    doc = build_credential(
        GENESIS,
        EV["bounty"][0],
        EV["commit"][0],
        EV["close"][0],
        EV["reveal"][0],
        EV["award"][0],
        EV["review"],
        "Mentor",
    )
    signed = sign_credential(
        doc, MENTOR, iso_time(EV["award"][0].timestamp), default_canonicalizer()
    )
    raw = vc_bytes(signed)
    assert raw.decode() == V["open_badge"]["json"]
    announced = EV["credential"][0].body
    assert announced["vc"] == hashlib.sha256(raw).digest() and announced["size"] == len(raw)
    assert announced["submission"] == EV["reveal"][0].id


def test_the_credential_is_a_standard_open_badge() -> None:
    d = ORIGINAL
    assert d["@context"] == [VC_CONTEXT, OB_CONTEXT]
    assert d["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert d["id"].startswith("urn:uuid:") and d["id"][23] == "8"  # a version-8 UUID
    assert d["issuer"] == {"id": did_key(MENTOR.public_key), "type": ["Profile"], "name": "Mentor"}
    assert d["validFrom"].endswith("Z")
    subject = d["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"]
    assert subject["id"] == did_key(EV["reveal"][0].author)
    ach = subject["achievement"]
    assert ach["name"] == "Prove that sqrt(2) is irrational" and ach["tag"] == ["math", "writing"]
    assert "correctness (0 to 10)" in ach["criteria"]["narrative"]
    assert [r["value"] for r in subject["result"]] == ["9", "4"]  # the one review's scores
    assert d["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    vm = d["proof"]["verificationMethod"]
    assert vm == f"{d['issuer']['id']}#{d['issuer']['id'][8:]}"


def test_verifies_offline_and_says_what_it_is() -> None:
    r = _verify(_doc())
    assert r.valid, r.failures
    assert [n for n, _, _ in r.checks] == [
        "fields",
        "dates",
        "terms",
        "proof",
        "issuer key",
        "learnmesh",
    ]
    assert r.issuer_name == "Mentor" and r.issuer == did_key(MENTOR.public_key)
    assert r.network == "vectors" and r.network_id == GENESIS.network_id.hex()
    assert r.achievement == "Prove that sqrt(2) is irrational"
    assert r.work is not None and EV["reveal"][0].id.hex() in r.work
    assert r.learnmesh is not None and r.learnmesh["amount"] == 8000
    assert r.learnmesh["award_seq"] == EV["award"][0].seq


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        *head, last = path.split(".")
        for k in head:
            d = d[k]
        d[last] = value

    return f


def _flip_proof_value(d: dict[str, Any]) -> None:
    sig = bytearray(b58decode(d["proof"]["proofValue"][1:]))
    sig[10] ^= 1
    d["proof"]["proofValue"] = "z" + b58encode(bytes(sig))


OTHER_DID = did_key(OTHER.public_key)

TAMPERS: list[tuple[str, Callable[[dict[str, Any]], None], set[str], str]] = [
    (
        "subject",
        _set("credentialSubject.id", OTHER_DID),
        {"proof", "learnmesh"},
        "signature does not match",
    ),
    (
        "issuer",
        _set("issuer.id", OTHER_DID),
        {"proof", "learnmesh"},
        "signature does not match",
    ),
    ("issuer name", _set("issuer.name", "Someone Famous"), {"proof"}, "signature does not match"),
    ("name", _set("name", "PhD in Mathematics"), {"proof"}, "signature does not match"),
    (
        "achievement",
        _set("credentialSubject.achievement.name", "Fields Medal"),
        {"proof"},
        "signature does not match",
    ),
    ("validFrom", _set("validFrom", "2020-01-01T00:00:00Z"), {"proof"}, "signature"),
    (
        "validFrom without a time zone",
        _set("validFrom", "2023-11-14T22:13:28"),
        {"dates", "proof"},
        "time zone",
    ),
    ("validUntil added", _set("validUntil", "2040-01-01T00:00:00Z"), {"proof"}, "signature"),
    ("proof value", _flip_proof_value, {"proof"}, "signature does not match"),
    ("proof value not multibase", _set("proof.proofValue", "abc"), {"proof"}, "multibase"),
    ("cryptosuite", _set("proof.cryptosuite", "eddsa-jcs-2022"), {"proof"}, "eddsa-jcs-2022"),
    (
        "verification method",
        _set("proof.verificationMethod", f"{OTHER_DID}#{OTHER_DID[8:]}"),
        {"proof"},
        "signature does not match",
    ),
    (
        "an added undefined term",
        _set("degree", "PhD"),
        {"terms"},  # not signed, so the signature alone would still pass
        "terms no context defines: degree",
    ),
    (
        "an undefined term inside the subject",
        _set("credentialSubject.grade", "A+"),
        {"terms"},
        "grade",
    ),
    (
        "another context",
        lambda d: d["@context"].append("https://example.org/my-context.jsonld"),
        {"terms", "proof"},
        "https://example.org/my-context.jsonld is not bundled; it is never fetched",
    ),
    (
        "an undefined type",
        lambda d: d["type"].append("DoctoralDegree"),
        {"terms", "proof"},
        "type DoctoralDegree",
    ),
    (
        "an unsigned @graph",
        _set("@graph", [{"@id": "urn:x:1", "https://schema.org/name": "PhD"}]),
        {"terms", "proof"},
        "JSON-LD keywords a credential may not use: @graph",
    ),
    ("no proof", lambda d: d.pop("proof"), {"proof"}, "no proof"),
    ("not a badge", _set("type", ["VerifiableCredential"]), {"fields", "proof"}, "OpenBadge"),
]


@pytest.mark.parametrize(
    ("mutate", "fails", "reason"),
    [t[1:] for t in TAMPERS],
    ids=[t[0] for t in TAMPERS],
)
def test_tamper(mutate: Callable[[dict[str, Any]], None], fails: set[str], reason: str) -> None:
    d = _doc()
    mutate(d)
    r = _verify(d)
    assert not r.valid
    got = _failed(r)
    assert set(got) == fails, got
    assert any(reason in why for why in got.values()), got


def test_resigned_by_another_key_is_not_the_mentors() -> None:
    """A forger re-signs with its own key and names itself issuer: the proof and
    the did:key binding hold, but the learnmesh evidence says who the mentor was."""
    d = _doc()
    d["issuer"]["id"] = OTHER_DID
    r = _verify(_resign(d, OTHER))
    assert set(_failed(r)) == {"learnmesh"}
    assert "not the bounty's mentor" in _failed(r)["learnmesh"]


def test_proof_by_a_key_other_than_the_issuer() -> None:
    r = _verify(_resign(_doc(), OTHER))  # issuer still the mentor
    assert set(_failed(r)) == {"issuer key"}
    assert "not by the issuer" in _failed(r)["issuer key"]


def test_dates_against_the_callers_clock() -> None:
    d = _doc()
    early = dt.datetime(2023, 11, 1, tzinfo=dt.UTC)  # before validFrom
    assert "not valid yet" in _failed(_verify(d, early))["dates"]
    valid_from = dt.datetime.fromisoformat(d["validFrom"].replace("Z", "+00:00"))
    assert _verify(d, valid_from - dt.timedelta(minutes=4)).valid  # the issuer's clock ran ahead
    d["validUntil"] = "2025-01-01T00:00:00Z"
    r = _verify(_resign(d))
    assert set(_failed(r)) == {"dates"} and "expired" in _failed(r)["dates"]
    d["validUntil"] = "2020-01-01T00:00:00Z"
    assert "before validFrom" in _failed(_verify(_resign(d)))["dates"]


def _reorder(v: Any, key: str = "") -> Any:
    if isinstance(v, dict):
        return {k: _reorder(v[k], k) for k in reversed(list(v))}
    if isinstance(v, list) and key != "@context":  # JSON-LD arrays are sets
        return [_reorder(x) for x in reversed(v)]
    return v


def test_online_fork_answer() -> None:
    """What `verify --online` and POST /api/credentials/verify report about the
    issuer: whether the node holds an equivocation proof against its key."""
    from types import SimpleNamespace

    from learnmesh.node._api_credentials import issuer_fork

    forks: dict[bytes, int] = {MENTOR.public_key: 7}
    node: Any = SimpleNamespace(
        ledger=SimpleNamespace(replica=SimpleNamespace(state=SimpleNamespace(forks=forks)))
    )
    assert issuer_fork(node, did_key(MENTOR.public_key)) == {
        "checked": True,
        "forked": True,
        "fork_seq": 7,
    }
    assert issuer_fork(node, did_key(MENTOR.public_key), 6)["award_stands"] is True
    assert issuer_fork(node, did_key(MENTOR.public_key), 7)["award_stands"] is False
    assert issuer_fork(node, OTHER_DID) == {"checked": True, "forked": False}
    assert issuer_fork(node, "https://example.org/issuer")["checked"] is False


def _nest(n: int) -> Any:
    d: Any = "leaf"
    for _ in range(n):
        d = {"a": d}
    return d


@pytest.mark.parametrize(
    ("doc", "check", "reason"),
    [
        ([1, 2], "shape", "a credential is a JSON object"),
        ({**ORIGINAL, "credentialSubject": _nest(5000)}, "shape", "nests deeper than 64"),
        ({**ORIGINAL, "name": 10**400}, "terms", "cannot process the document"),
        ({**ORIGINAL, "@context": 5}, "fields", "@context must be a list"),
        ({**ORIGINAL, "proof": [ORIGINAL["proof"]] * 2}, "proof", "exactly one proof"),
        ({**ORIGINAL, "proof": {**ORIGINAL["proof"], "created": "yesterday"}}, "proof", "created"),
        ({**ORIGINAL, "validFrom": "2020-13-01T00:00:00Z"}, "dates", "not a valid date"),
        (
            {**ORIGINAL, "evidence": [{"id": "data:application/x-learnmesh-credential;base64,@"}]},
            "learnmesh",
            "not valid base64",
        ),
    ],
    ids=["list", "deep", "huge int", "context int", "two proofs", "created", "month 13", "b64"],
)
def test_hostile_documents_fail_with_a_reason(doc: Any, check: str, reason: str) -> None:
    r = _verify(doc)
    assert not r.valid and reason in _failed(r)[check], r.failures


def test_a_reordered_equivalent_document_still_verifies() -> None:
    d = _reorder(_doc())
    assert list(d) != list(ORIGINAL) and d["type"] == [
        "OpenBadgeCredential",
        "VerifiableCredential",
    ]
    assert json.dumps(d) != json.dumps(ORIGINAL)
    r = _verify(d)
    assert r.valid, r.failures


def test_a_badge_from_elsewhere_verifies() -> None:
    """Any eddsa-rdfc-2022 OpenBadgeCredential with a did:key issuer, not only ours."""
    issuer = did_key(OTHER.public_key)
    doc = {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": "http://example.edu/credentials/3732",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": issuer, "type": ["Profile"], "name": "Example University"},
        "validFrom": "2024-01-01T00:00:00Z",
        "validUntil": "2034-01-01T00:00:00+01:00",
        "name": "Teamwork Badge",
        "credentialSubject": {
            "id": "did:example:ebfeb1f712ebc6f1c276e12ec21",
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "https://example.com/achievements/21st-century-skills/teamwork",
                "type": ["Achievement"],
                "criteria": {"narrative": "Team members are nominated for this badge."},
                "description": "This badge recognizes the development of teamwork.",
                "name": "Teamwork",
            },
        },
    }
    signed = sign_credential(doc, OTHER, "2024-01-01T00:00:00Z", default_canonicalizer())
    r = _verify(signed)
    assert r.valid, r.failures
    assert r.network is None and r.learnmesh is None and r.issuer_name == "Example University"
    issuer_string = {**signed, "issuer": issuer}
    assert "issuer must be a Profile object" in _failed(_verify(issuer_string))["fields"]


@pytest.mark.parametrize(
    ("name", "issuer"),
    [
        ("signed-by-digitalbazaar.json", "Elsewhere Academy"),  # VC 2.0, OB 3.0.3
        ("signed-by-digitalbazaar-vc11.json", "Older Academy"),  # VC 1.1, OB 3.0.2, DI v2
    ],
)
def test_a_badge_signed_by_digital_bazaars_stack_verifies(name: str, issuer: str) -> None:
    """Signed by jsonld-signatures + @digitalbazaar/eddsa-rdfc-2022-cryptosuite
    (tests/vectors/vc-interop/sign*.mjs), the stack of the DCC's verifier."""
    doc = json.loads((DIR / "vc-interop" / name).read_text())
    r = _verify(doc)
    assert r.valid, r.failures
    assert r.issuer_name == issuer and r.learnmesh is None
    doc["credentialSubject"]["id"] = "did:example:someone-else"
    assert set(_failed(_verify(doc))) == {"proof"}
    doc = json.loads((DIR / "vc-interop" / name).read_text())
    start = "issuanceDate" if "issuanceDate" in doc else "validFrom"
    doc[start] = "2099-01-01T00:00:00Z"
    assert set(_failed(_verify(doc))) == {"dates", "proof"}


def test_no_network_access_during_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("network access during verification")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    fresh = Canonicalizer()  # nothing cached: every context is loaded under the patch
    assert verify_vc(_doc(), NOW, fresh).valid
    assert verify_vc(_reorder(_doc()), NOW, fresh).valid
    d = _doc()
    d["@context"].append("https://w3id.org/security/suites/ed25519-2020/v1")
    r = verify_vc(d, NOW, fresh)
    assert not r.valid and "never fetched" in _failed(r)["proof"]
    assert fresh.refused and set(fresh.refused) == {
        "https://w3id.org/security/suites/ed25519-2020/v1"
    }


def test_the_loader_refuses_every_unbundled_url() -> None:
    c = Canonicalizer()
    for url in (
        "https://www.w3.org/2018/credentials/examples/v1",
        "http://localhost/x",
        "file:///etc",
    ):
        with pytest.raises(Exception, match="never fetched"):
            c.canonicalize({"@context": url, "@id": "urn:x:1", "urn:p": "v"})
    assert len(c.refused) == 3


def test_cli_verify_offline_and_refusals(tmp_path: pathlib.Path) -> None:
    good = tmp_path / "badge.json"
    good.write_text(V["open_badge"]["json"])
    r = cli("--data", str(tmp_path / "none"), "--json", "credential", "verify", str(good))
    assert json.loads(r.stdout)["valid"] is True
    bad = copy.deepcopy(ORIGINAL)
    bad["degree"] = "PhD"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    r = cli("credential", "verify", str(tmp_path / "bad.json"), check=False)
    assert r.returncode == 1 and "NOT VALID" in r.stdout and "degree" in r.stdout
    (tmp_path / "junk.json").write_text("{not json")
    r = cli("credential", "verify", str(tmp_path / "junk.json"), check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "neither JSON nor a learnmesh bundle" in r.stderr + r.stdout
    r = cli("credential", "verify", str(tmp_path / "missing.json"), check=False)
    assert r.returncode == 2 and "cannot read" in r.stderr + r.stdout
    # The old bundle keeps verifying.
    (tmp_path / "old.credential").write_bytes(bytes.fromhex(V["credential"]["raw"]))
    r = cli("--json", "credential", "verify", str(tmp_path / "old.credential"))
    assert json.loads(r.stdout)["learner"] == V["credential"]["learner"]
