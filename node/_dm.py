"""Private messages: the envelope (pure: no I/O, no clock; randomness only for
nonces and the seal's ephemeral key, each of which a caller may pass in).

The layering follows NIP-17/NIP-59 with libsodium (PyNaCl), PROTOCOL.md
"Private messages":

1. the message `{body, from, nonce, sent_ms, to}` (canonical msgpack) is signed
   by the sender's Ed25519 account key (domain `learnmesh/dm/1` + network id);
2. `[message, signature]` is padded to a bucket (the next power of two of at
   least 256 bytes, a 2-byte length in front), so its length says little;
3. that is encrypted with a `Box` from the sender's to the recipient's X25519
   keys (both converted from the Ed25519 account keys);
4. `[sender public key, box]` goes inside a `SealedBox` to the recipient: a
   fresh ephemeral key per message, so nothing outside names the sender;
5. the wire message carries only what a relay needs: magic, version, network
   id, the recipient's account (routing), an expiry time and the sealed bytes.

A relay sees the recipient, the time and a bucketed size; never the sender or
the text. Only the recipient's key opens it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from learnmesh.protocol import KeyPair, RemoteProtocolError, canonical_pack, strict_unpack
from learnmesh.protocol._identity import verify_signature
from nacl.bindings import (
    crypto_sign_ed25519_pk_to_curve25519,
)
from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

__all__ = [
    "DM_MAGIC",
    "DM_VERSION",
    "MAX_OUTER_BYTES",
    "MAX_SEALED_BYTES",
    "MAX_TEXT_BYTES",
    "MAX_TEXT_CHARS",
    "RETENTION_MS",
    "DMError",
    "Opened",
    "Outer",
    "decode_outer",
    "dm_id",
    "encode_outer",
    "open_dm",
    "pad",
    "seal_dm",
    "unpad",
    "x25519_private",
    "x25519_public",
]

DM_MAGIC = "lmdm"
DM_VERSION = 1
SIGN_DOMAIN = b"learnmesh/dm/1"
MIN_BUCKET = 256
MAX_BUCKET = 8192
MAX_SEALED_BYTES = 16 * 1024  # the hard cap a relay enforces
MAX_OUTER_BYTES = MAX_SEALED_BYTES + 256  # the sealed bytes plus the routing fields
MAX_TEXT_CHARS = 4000
MAX_TEXT_BYTES = 7680  # UTF-8; the signed message then fits the largest bucket
RETENTION_MS = 7 * 24 * 3600 * 1000  # the longest a message is kept or accepted
EXPIRY_SLACK_MS = 10 * 60 * 1000  # clock skew allowed on an expiry time
_NONCE = 16


class DMError(RemoteProtocolError):
    """A private message that is refused: `code` is stable, `reason` for people."""


@dataclass(frozen=True, slots=True)
class Outer:
    """What a relay sees of a private message."""

    network: bytes
    recipient: bytes
    expiry_ms: int
    sealed: bytes
    raw: bytes

    @property
    def id(self) -> bytes:
        """The wire message's id (its SHA-256): what relays store and dedupe by."""
        return hashlib.sha256(self.raw).digest()


@dataclass(frozen=True, slots=True)
class Opened:
    """A private message opened by its recipient, signature checked."""

    id: bytes  # SHA-256 of the signed message: the same however often it is re-sealed
    sender: bytes
    recipient: bytes
    sent_ms: int
    body: str


# -- keys -------------------------------------------------------------------------------


def x25519_private(key: KeyPair) -> PrivateKey:
    """The X25519 key of an Ed25519 account key (libsodium's conversion)."""
    return SigningKey(key.seed).to_curve25519_private_key()


def x25519_public(account: bytes) -> PublicKey:
    """The X25519 public key of an Ed25519 account; DMError if it is not a point."""
    if len(account) != 32:
        raise DMError("bad_account", "an account is 32 bytes")
    try:
        return VerifyKey(account).to_curve25519_public_key()
    except (CryptoError, ValueError) as exc:
        raise DMError("bad_account", "the account is not a valid public key") from exc


def _x25519_ok(account: bytes) -> bool:
    try:
        crypto_sign_ed25519_pk_to_curve25519(account)
        return True
    except (CryptoError, ValueError):
        return False


# -- padding ------------------------------------------------------------------------------


def _bucket(n: int) -> int:
    size = MIN_BUCKET
    while size < n:
        size *= 2
    return size


def pad(data: bytes) -> bytes:
    """A 2-byte big-endian length, the data, then zeros up to the bucket: the
    next power of two of at least 256 bytes (at most MAX_BUCKET)."""
    size = _bucket(len(data) + 2)
    if size > MAX_BUCKET:
        raise DMError("too_large", f"the message is over {MAX_BUCKET - 2} bytes once signed")
    return len(data).to_bytes(2, "big") + data + bytes(size - 2 - len(data))


def unpad(padded: bytes) -> bytes:
    if len(padded) < 2:
        raise DMError("bad_padding", "the padded message is too short")
    n = int.from_bytes(padded[:2], "big")
    if len(padded) != _bucket(n + 2) or any(padded[2 + n :]):
        raise DMError("bad_padding", "the padding does not match the message length")
    return padded[2 : 2 + n]


# -- the wire message --------------------------------------------------------------------


def encode_outer(network: bytes, recipient: bytes, expiry_ms: int, sealed: bytes) -> bytes:
    return canonical_pack([DM_MAGIC, DM_VERSION, network, recipient, expiry_ms, sealed])


def decode_outer(raw: bytes, network: bytes, now_ms: int) -> Outer:
    """Check what a relay can check: the shape, the network, the size cap and
    the expiry (not passed, and not further ahead than the retention)."""
    if len(raw) > MAX_OUTER_BYTES:
        raise DMError(
            "too_large", f"a private message of {len(raw)} bytes is over the {MAX_OUTER_BYTES} cap"
        )
    try:
        v = strict_unpack(raw, MAX_OUTER_BYTES)
    except RemoteProtocolError as exc:
        raise DMError("malformed", f"not a private message ({exc.reason})") from exc
    if not (isinstance(v, list) and len(v) == 6 and v[0] == DM_MAGIC):
        raise DMError("malformed", "not a learnmesh private message")
    _, version, net, recipient, expiry, sealed = v
    if type(version) is not int or version != DM_VERSION:
        raise DMError("version", f"unsupported private message version {version!r}")
    if net != network:
        raise DMError("wrong_network", "a private message from another network")
    if not isinstance(recipient, bytes) or len(recipient) != 32 or not _x25519_ok(recipient):
        raise DMError("malformed", "the recipient is not an account")
    if type(expiry) is not int:
        raise DMError("malformed", "the expiry is not a time")
    if not isinstance(sealed, bytes) or not sealed:
        raise DMError("malformed", "the sealed part is missing")
    if len(sealed) > MAX_SEALED_BYTES:
        raise DMError(
            "too_large",
            f"the sealed part is {len(sealed)} bytes, over the {MAX_SEALED_BYTES}-byte cap",
        )
    if expiry <= now_ms:
        raise DMError("expired", "the private message has expired")
    if expiry > now_ms + RETENTION_MS + EXPIRY_SLACK_MS:
        raise DMError("expiry_too_far", "the expiry is further ahead than the 7-day retention")
    return Outer(net, recipient, expiry, sealed, raw)


# -- sealing and opening -----------------------------------------------------------------


def check_text(text: str) -> None:
    """The body a person may send; DMError with the reason otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise DMError("empty", "a message needs some text")
    if len(text) > MAX_TEXT_CHARS:
        raise DMError("too_long", f"a message is at most {MAX_TEXT_CHARS} characters")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise DMError("too_long", f"a message is at most {MAX_TEXT_BYTES} bytes of UTF-8")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DMError("bad_text", "the text is not valid Unicode") from exc


def dm_id(message: bytes) -> bytes:
    return hashlib.sha256(message).digest()


def seal_dm(
    key: KeyPair,
    network: bytes,
    recipient: bytes,
    text: str,
    sent_ms: int,
    expiry_ms: int,
    *,
    nonce: bytes | None = None,
    box_nonce: bytes | None = None,
) -> tuple[bytes, bytes]:
    """(wire message, message id). `nonce` and `box_nonce` are random unless given
    (test vectors); the seal's ephemeral key is always fresh."""
    check_text(text)
    if recipient == key.public_key:
        raise DMError("self", "a message to yourself is not sent")
    message = canonical_pack(
        {
            "body": text,
            "from": key.public_key,
            "nonce": os.urandom(_NONCE) if nonce is None else nonce,
            "sent_ms": sent_ms,
            "to": recipient,
        }
    )
    signature = key.sign(SIGN_DOMAIN + network + message)
    padded = pad(canonical_pack([message, signature]))
    inner = Box(x25519_private(key), x25519_public(recipient)).encrypt(padded, box_nonce)
    sealed = SealedBox(x25519_public(recipient)).encrypt(
        canonical_pack([key.public_key, bytes(inner)])
    )
    return encode_outer(network, recipient, expiry_ms, bytes(sealed)), dm_id(message)


def open_dm(outer: Outer, key: KeyPair, now_ms: int) -> Opened:
    """Open a message addressed to `key`'s account and check every layer: the
    seal, the inner box, the padding, the signed message, that it names this
    account and the sealing sender, and that it is not older than the retention.
    Replays are the caller's to refuse (by `Opened.id`)."""
    me = key.public_key
    if outer.recipient != me:
        raise DMError("wrong_recipient", "the message is addressed to another account")
    try:
        payload = SealedBox(x25519_private(key)).decrypt(outer.sealed)
    except CryptoError as exc:
        raise DMError(
            "unsealable",
            "the seal does not open with this account's key (tampered or misaddressed)",
        ) from exc
    try:
        seal = strict_unpack(payload, MAX_SEALED_BYTES)
    except RemoteProtocolError as exc:
        raise DMError("malformed", f"the seal's content is malformed ({exc.reason})") from exc
    if not (
        isinstance(seal, list)
        and len(seal) == 2
        and isinstance(seal[0], bytes)
        and isinstance(seal[1], bytes)
    ):
        raise DMError("malformed", "the seal's content is malformed")
    sender, inner = seal
    try:
        padded = Box(x25519_private(key), x25519_public(sender)).decrypt(inner)
    except CryptoError as exc:
        raise DMError("tampered", "the inner box does not open (tampered)") from exc
    try:
        signed = strict_unpack(unpad(padded), MAX_BUCKET)
    except RemoteProtocolError as exc:
        raise DMError("malformed", f"the signed message is malformed ({exc.reason})") from exc
    if not (
        isinstance(signed, list)
        and len(signed) == 2
        and isinstance(signed[0], bytes)
        and isinstance(signed[1], bytes)
    ):
        raise DMError("malformed", "the signed message is malformed")
    message, signature = signed
    m = strict_unpack(message, MAX_BUCKET)
    if not (
        isinstance(m, dict)
        and set(m) == {"body", "from", "nonce", "sent_ms", "to"}
        and isinstance(m["body"], str)
        and isinstance(m["from"], bytes)
        and isinstance(m["to"], bytes)
        and isinstance(m["nonce"], bytes)
        and type(m["sent_ms"]) is int
    ):
        raise DMError("malformed", "the message does not have the fields of a private message")
    if m["to"] != me:
        raise DMError("wrong_recipient", "the signed message names another recipient")
    if m["from"] != sender:
        raise DMError("forged", "the signed sender is not the one who sealed the message")
    if not verify_signature(sender, SIGN_DOMAIN + outer.network + message, signature):
        raise DMError("bad_signature", "the sender's signature does not verify")
    if m["sent_ms"] < now_ms - RETENTION_MS:
        raise DMError("expired", "the message was sent more than 7 days ago")
    try:
        check_text(m["body"])
    except DMError as exc:
        raise DMError("malformed", exc.reason) from exc
    return Opened(dm_id(message), sender, me, m["sent_ms"], m["body"])
