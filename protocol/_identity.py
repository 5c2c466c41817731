"""Ed25519 identities: key pairs, the readable text form of account ids, signing."""

from __future__ import annotations

import base64
import hashlib

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ._errors import LocalProtocolError, RemoteProtocolError

__all__ = ["KeyPair", "account_from_text", "account_text", "verify_signature"]

_PREFIX = "lm"
_CHECK = b"learnmesh/account\x00"


def _checksum(public_key: bytes) -> bytes:
    return hashlib.sha256(_CHECK + public_key).digest()[:3]


def account_text(public_key: bytes) -> str:
    """`lm` + base32 of the 32-byte key and a 3-byte checksum (56 characters)."""
    if len(public_key) != 32:
        raise LocalProtocolError("account", "an account key is 32 bytes")
    raw = public_key + _checksum(public_key)
    return _PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def account_from_text(text: str) -> bytes:
    """Parse an account id, refusing a wrong prefix, length or checksum (typos)."""
    text = text.strip()
    if not text.startswith(_PREFIX):
        raise RemoteProtocolError("account", f"account ids start with '{_PREFIX}': {text[:12]!r}")
    body = text[len(_PREFIX) :].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError as exc:
        raise RemoteProtocolError("account", f"not a valid account id: {text[:12]!r}…") from exc
    if len(raw) != 35 or _checksum(raw[:32]) != raw[32:]:
        raise RemoteProtocolError("account", f"account id has a bad length or checksum: {text!r}")
    return raw[:32]


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if (
        type(public_key) is bytes
        and len(public_key) == 32
        and type(signature) is bytes
        and len(signature) == 64
        and type(message) is bytes
    ):
        # The common case straight to libsodium (PyNaCl releases the GIL while
        # it checks), without a VerifyKey object per call.
        try:
            crypto_sign_open(signature + message, public_key)
        except BadSignatureError:
            return False
        return True
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError):
        return False
    return True


class KeyPair:
    """A signing key made from a 32-byte seed that the caller supplies (the
    protocol has no randomness). Keep the seed out of logs."""

    __slots__ = ("_signing_key", "public_key", "seed")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise LocalProtocolError("seed", "a key seed is 32 bytes")
        self.seed = bytes(seed)
        self._signing_key = SigningKey(self.seed)
        self.public_key = bytes(self._signing_key.verify_key)

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        return cls(seed)

    @property
    def account(self) -> str:
        return account_text(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(message).signature

    def __repr__(self) -> str:
        return f"KeyPair({self.account})"
