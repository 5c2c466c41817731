"""Open Badges 3.0 credentials as W3C Verifiable Credentials, signed with a
Data Integrity proof of the `eddsa-rdfc-2022` cryptosuite.

This is the deterministic core: the did:key form of an Ed25519 key, the
unsigned OpenBadgeCredential built from the award's events, and the proof's
creation and check. JSON-LD canonicalisation (RDF Dataset Canonicalization) is
not done here: the caller passes a `Canonicalize` function (the node's uses
pyld with the bundled contexts). No I/O, no clock: times come from the events
or from the caller.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from ._credential import make_credential
from ._errors import RemoteProtocolError
from ._event import Event
from ._genesis import Genesis
from ._identity import KeyPair, account_text, verify_signature

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "OB_CONTEXT",
    "VC_CONTEXT",
    "Canonicalize",
    "VCError",
    "b58decode",
    "b58encode",
    "build_credential",
    "did_key",
    "did_key_public_key",
    "iso_time",
    "parse_time",
    "proof_hash_data",
    "sign_credential",
    "vc_bytes",
    "verify_proof",
]

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
BUNDLE_MEDIA_TYPE = "application/x-learnmesh-credential"
SUITE = "eddsa-rdfc-2022"

# A canonicaliser: a JSON-LD document in, its RDFC-1.0 canonical N-Quads out.
Canonicalize = Callable[[dict[str, Any]], str]


class VCError(RemoteProtocolError):
    """A verifiable credential is malformed or does not verify (code `vc`)."""

    def __init__(self, reason: str) -> None:
        super().__init__("vc", reason)


# -- base58btc and did:key ---------------------------------------------------------------

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_ED25519_PUB = b"\xed\x01"  # multicodec ed25519-pub, as an unsigned varint


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        i = _B58_INDEX.get(c)
        if i is None:
            raise VCError(f"{c!r} is not a base58btc character")
        n = n * 58 + i
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * zeros + body


def did_key(public_key: bytes) -> str:
    """`did:key:z6Mk…` of an Ed25519 public key (multicodec 0xed01, base58btc)."""
    if len(public_key) != 32:
        raise VCError("an Ed25519 public key is 32 bytes")
    return "did:key:z" + b58encode(_ED25519_PUB + public_key)


def verification_method(public_key: bytes) -> str:
    did = did_key(public_key)
    return f"{did}#{did[len('did:key:') :]}"


def did_key_public_key(did: str) -> bytes:
    """The Ed25519 key of a `did:key` (optionally with its `#fragment`, which must
    then be the key's own multibase form, as did:key resolution gives)."""
    if not isinstance(did, str) or not did.startswith("did:key:z"):
        raise VCError(f"{did!r} is not a did:key with a base58btc (z…) key")
    base, _, frag = did.partition("#")
    mb = base[len("did:key:") :]
    raw = b58decode(mb[1:])
    if len(raw) != 34 or raw[:2] != _ED25519_PUB:
        raise VCError(f"{base} is not an Ed25519 did:key (z6Mk…)")
    if frag and frag != mb:
        raise VCError(f"the key fragment #{frag} is not the did:key's own key {mb}")
    return raw[2:]


# -- times -------------------------------------------------------------------------------

_DATETIME = re.compile(
    r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)


def iso_time(ms: int) -> str:
    """An event's timestamp (ms since the epoch) as an XML Schema dateTime in UTC,
    to the second."""
    t = _dt.datetime.fromtimestamp(ms // 1000, tz=_dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, what: str) -> _dt.datetime:
    """A dateTimeStamp (a dateTime with a time zone), or VCError."""
    if not isinstance(value, str) or not _DATETIME.match(value):
        raise VCError(f"{what} must be a date and time with a time zone, got {value!r}")
    try:
        return _dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise VCError(f"{what} is not a valid date and time: {value!r}") from None


# -- building the credential ------------------------------------------------------------


def _urn_uuid(*parts: bytes) -> str:
    """A name-based UUID (version 8, RFC 9562) from SHA-256 of the parts."""
    h = bytearray(hashlib.sha256(b"learnmesh/vc\x00" + b"".join(parts)).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x80
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"urn:uuid:{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _median(values: list[int]) -> str:
    v = sorted(values)
    n = len(v)
    if n % 2:
        return str(v[n // 2])
    twice = v[n // 2 - 1] + v[n // 2]
    return str(twice // 2) if twice % 2 == 0 else f"{twice // 2}.5"


def submission_urn(network: bytes, submission: bytes) -> str:
    return f"urn:learnmesh:{network.hex()}:submission:{submission.hex()}"


def build_credential(
    genesis: Genesis,
    bounty: Event,
    commit: Event,
    close: Event,
    reveal: Event,
    award: Event,
    reviews: Sequence[Event] = (),
    issuer_name: str | None = None,
) -> dict[str, Any]:
    """The unsigned OpenBadgeCredential for one winner of an award.

    Every value comes from the events, so anyone holding them rebuilds the same
    document. `reviews` are reviews of this submission (others are ignored); the
    result is their median score per rubric criterion. The evidence holds the
    submission and the learnmesh proof bundle (§8 of PROTOCOL.md), which this
    function checks before building anything.
    """
    bundle = make_credential(genesis, bounty, commit, close, reveal, award)
    net = genesis.network_id
    mentor, learner = bounty.author, reveal.author
    b = bounty.body
    when = iso_time(award.timestamp)
    rubric = b["rubric"]
    rd_ids = [_urn_uuid(bounty.id, b"criterion", bytes([i])) for i in range(len(rubric))]
    scores = [
        r.body["scores"]
        for r in reviews
        if r.kind.name == "review"
        and r.body["submission"] == reveal.id
        and len(r.body["scores"]) == len(rubric)
    ]
    narrative = (
        f"Submitted as a sealed commitment before {iso_time(b['submit_by'])}, revealed after "
        f"the mentor closed submissions, reviewed by peers (quorum {b['quorum']}) against the "
        "rubric: "
        + "; ".join(f"{c['name']} (0 to {c['max']})" for c in rubric)
        + ". The mentor awarded it on the learnmesh network "
        f"\u201c{genesis.name}\u201d."
    )
    achievement: dict[str, Any] = {
        "id": _urn_uuid(bounty.id, b"achievement"),
        "type": ["Achievement"],
        "name": b["title"],
        "description": b["description"] or b["title"],
        "criteria": {"narrative": narrative},
        "resultDescription": [
            {
                "id": rd_ids[i],
                "type": ["ResultDescription"],
                "name": c["name"],
                "resultType": "RawScore",
                "valueMin": "0",
                "valueMax": str(c["max"]),
            }
            for i, c in enumerate(rubric)
        ],
    }
    if b["skills"]:
        achievement["tag"] = list(b["skills"])
    subject: dict[str, Any] = {
        "id": did_key(learner),
        "type": ["AchievementSubject"],
        "achievement": achievement,
    }
    if scores:
        subject["result"] = [
            {
                "type": ["Result"],
                "resultDescription": rd_ids[i],
                "value": _median([s[i] for s in scores]),
            }
            for i in range(len(rubric))
        ]
    amount = next(w["amount"] for w in award.body["winners"] if w["submission"] == reveal.id)
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": _urn_uuid(award.id, reveal.id),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": b["title"],
        "description": (
            f"Awarded {amount} tokens for accepted work on the learnmesh network "
            f"\u201c{genesis.name}\u201d ({net.hex()})."
        ),
        "issuer": {
            "id": did_key(mentor),
            "type": ["Profile"],
            "name": issuer_name or account_text(mentor),
        },
        "validFrom": when,
        "awardedDate": when,
        "credentialSubject": subject,
        "evidence": [
            {
                "id": submission_urn(net, reveal.id),
                "type": ["Evidence"],
                "name": "The submission",
                "description": (
                    f"The learner's revealed work, event {reveal.id.hex()} of the learnmesh "
                    f"network \u201c{genesis.name}\u201d ({net.hex()})."
                ),
                "narrative": reveal.body["text"],
            },
            {
                "id": f"data:{BUNDLE_MEDIA_TYPE};base64,{base64.b64encode(bundle).decode()}",
                "type": ["Evidence"],
                "name": "learnmesh proof bundle",
                "description": (
                    "The network's genesis and the signed events (bounty, commit, close, "
                    "reveal, award) that prove the award; `learnmesh credential verify` "
                    "checks them offline."
                ),
                "genre": "learnmesh-proof-bundle",
            },
        ],
    }


# -- the Data Integrity proof (eddsa-rdfc-2022) ------------------------------------------


def vc_bytes(document: dict[str, Any]) -> bytes:
    """The file form of a credential (the blob the `credential` event names)."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _unsecured(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "proof"}


def proof_hash_data(
    document: dict[str, Any], proof_options: dict[str, Any], canonicalize: Canonicalize
) -> bytes:
    """sha256(canonical proof configuration) || sha256(canonical document), the
    bytes eddsa-rdfc-2022 signs (vc-di-eddsa §3.3.4–3.3.6)."""
    config = {k: v for k, v in proof_options.items() if k != "proofValue"}
    config["@context"] = document.get("@context")
    config_hash = hashlib.sha256(canonicalize(config).encode()).digest()
    doc_hash = hashlib.sha256(canonicalize(_unsecured(document)).encode()).digest()
    return config_hash + doc_hash


def sign_credential(
    document: dict[str, Any], key: KeyPair, created: str, canonicalize: Canonicalize
) -> dict[str, Any]:
    """The document with a DataIntegrityProof by `key` (its did:key is the
    verification method). `created` is a dateTime the caller chooses."""
    options: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "cryptosuite": SUITE,
        "created": created,
        "verificationMethod": verification_method(key.public_key),
        "proofPurpose": "assertionMethod",
    }
    signature = key.sign(proof_hash_data(document, options, canonicalize))
    return {**_unsecured(document), "proof": {**options, "proofValue": "z" + b58encode(signature)}}


def verify_proof(document: dict[str, Any], canonicalize: Canonicalize) -> bytes:
    """Check the document's eddsa-rdfc-2022 proof; return the signer's public key.
    Raises VCError with the reason."""
    proof = document.get("proof")
    if isinstance(proof, list):
        ours = [p for p in proof if isinstance(p, dict) and p.get("cryptosuite") == SUITE]
        if len(ours) != 1 or len(proof) != 1:
            raise VCError("expected exactly one proof, of the eddsa-rdfc-2022 cryptosuite")
        proof = ours[0]
    if not isinstance(proof, dict):
        raise VCError("the credential has no proof")
    if proof.get("type") != "DataIntegrityProof":
        raise VCError(f"the proof type is {proof.get('type')!r}, not DataIntegrityProof")
    if proof.get("cryptosuite") != SUITE:
        raise VCError(f"the cryptosuite is {proof.get('cryptosuite')!r}, not {SUITE}")
    if proof.get("proofPurpose") != "assertionMethod":
        raise VCError(f"the proof purpose is {proof.get('proofPurpose')!r}, not assertionMethod")
    if "created" in proof:
        parse_time(proof["created"], "the proof's created")
    public_key = did_key_public_key(proof.get("verificationMethod", ""))
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise VCError("the proofValue must be base58btc multibase (z…)")
    signature = b58decode(value[1:])
    if len(signature) != 64:
        raise VCError(f"the signature is {len(signature)} bytes, not 64")
    if "@context" in proof:  # a proof that names contexts must match the document's head
        ctx, doc_ctx = proof["@context"], document.get("@context")
        ctx = ctx if isinstance(ctx, list) else [ctx]
        doc_ctx = doc_ctx if isinstance(doc_ctx, list) else [doc_ctx]
        if doc_ctx[: len(ctx)] != ctx:
            raise VCError("the proof's @context does not match the document's")
    options = {k: v for k, v in proof.items() if k not in ("proofValue", "@context")}
    data = proof_hash_data(document, options, canonicalize)
    if not verify_signature(public_key, data, signature):
        raise VCError(
            "the signature does not match the document: it was changed after signing, "
            "or signed by another key"
        )
    return public_key
