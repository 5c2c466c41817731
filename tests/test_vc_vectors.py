"""The W3C vc-di-eddsa test vectors for eddsa-rdfc-2022 (TestVectors/ of
https://github.com/w3c/vc-di-eddsa, copied verbatim into tests/vectors/vc-di-eddsa):
our canonicalisation, hashes, signature and proof value reproduce them exactly.
Also the bundled contexts are the published bytes, and did:key / base58btc."""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

import pytest
from learnmesh.node._vc import BUNDLED_CONTEXTS, CONTEXT_SHA256, Canonicalizer
from learnmesh.protocol import KeyPair
from learnmesh.protocol._vc import (
    VC_CONTEXT,
    VCError,
    b58decode,
    b58encode,
    did_key,
    did_key_public_key,
    proof_hash_data,
    sign_credential,
    verify_proof,
)

D = pathlib.Path(__file__).resolve().parent / "vectors" / "vc-di-eddsa"
EXAMPLES = "https://www.w3.org/ns/credentials/examples/v2"


def _text(name: str) -> str:
    return (D / name).read_text()


def _json(name: str) -> Any:
    return json.loads(_text(name))


@pytest.fixture(scope="module")
def canon() -> Canonicalizer:
    # The vectors use the W3C examples context too (tests only; never bundled).
    return Canonicalizer(
        {**BUNDLED_CONTEXTS, EXAMPLES: (D / "credentials-examples-v2.jsonld").read_bytes()}
    )


def _key() -> KeyPair:
    priv = b58decode(_json("keyPair.json")["privateKeyMultibase"][1:])
    assert priv[:2] == b"\x80\x26"  # multicodec ed25519-priv
    return KeyPair(priv[2:])


def test_bundled_contexts_are_the_published_bytes() -> None:
    # The VC 2.0 Recommendation publishes the SHA-256 of its context file.
    assert (
        CONTEXT_SHA256[VC_CONTEXT][1]
        == "59955ced6697d61e03f2b2556febe5308ab16842846f5b586d7f1f7adec92734"
    )
    for url, data in BUNDLED_CONTEXTS.items():
        assert hashlib.sha256(data).hexdigest() == CONTEXT_SHA256[url][1]


def test_key_pair_and_did_key() -> None:
    k = _key()
    mb = _json("keyPair.json")["publicKeyMultibase"]
    assert did_key(k.public_key) == f"did:key:{mb}"
    assert did_key_public_key(f"did:key:{mb}#{mb}") == k.public_key


def test_canonical_document_and_hash(canon: Canonicalizer) -> None:
    nq = canon(_json("unsigned.json"))
    assert nq == _text("canonDocDataInt.txt")
    assert hashlib.sha256(nq.encode()).hexdigest() == _text("docHashDataInt.txt").strip()


def test_canonical_proof_config_and_hash(canon: Canonicalizer) -> None:
    nq = canon(_json("proofConfigDataInt.json"))
    assert nq == _text("proofCanonDataInt.txt")
    assert hashlib.sha256(nq.encode()).hexdigest() == _text("proofHashDataInt.txt").strip()


def test_combined_hash_signature_and_proof_value(canon: Canonicalizer) -> None:
    config = _json("proofConfigDataInt.json")
    options = {k: v for k, v in config.items() if k != "@context"}
    data = proof_hash_data(_json("unsigned.json"), options, canon)
    assert data.hex() == _text("combinedHashDataInt.txt").strip()
    sig = _key().sign(data)
    assert sig.hex() == _text("sigHexDataInt.txt").strip()
    assert "z" + b58encode(sig) == _text("sigBTC58DataInt.txt").strip()


def test_signed_document_is_reproduced_and_verifies(canon: Canonicalizer) -> None:
    signed = sign_credential(
        _json("unsigned.json"), _key(), _json("proofConfigDataInt.json")["created"], canon
    )
    assert signed == _json("signedDataInt.json")
    assert verify_proof(_json("signedDataInt.json"), canon) == _key().public_key


def test_signed_vector_tampered_fails(canon: Canonicalizer) -> None:
    doc = _json("signedDataInt.json")
    doc["credentialSubject"]["alumniOf"] = "Another School"
    with pytest.raises(VCError, match="signature does not match"):
        verify_proof(doc, canon)


@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\x00\x00\x01", bytes(range(40)), b"\xff" * 64, b"hello"]
)
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


@pytest.mark.parametrize(
    ("did", "why"),
    [
        ("did:web:example.org", "not a did:key"),
        ("did:key:zDnaegE6RR3atJtHKwTRTWHsJ3kNHqFwv7n9YjTgmU7TyfU76", "not an Ed25519"),
        ("did:key:z6Mk0OIl", "not a base58btc character"),
        (
            "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#key-1",
            "not the did:key's own key",
        ),
    ],
)
def test_did_key_refusals(did: str, why: str) -> None:
    with pytest.raises(VCError, match=why):
        did_key_public_key(did)
