"""Generate tests/vectors/dm.json: private message vectors (PROTOCOL.md "Private messages").

Fixed seeds, times and nonces: the X25519 keys converted from the Ed25519
accounts, the padded sizes, the signed message and the inner box (both
deterministic given the nonces), and one sealed wire message (the seal's
ephemeral key is random, so this one is kept as generated: a decoder must open
it). Run `python tests/vectors/make_dm_vectors.py` only after a deliberate
change to the envelope (tests/test_dm_crypto.py fails until you do).
"""

from __future__ import annotations

import json
import pathlib

from learnmesh.node._dm import (
    SIGN_DOMAIN,
    pad,
    seal_dm,
    x25519_private,
    x25519_public,
)
from learnmesh.protocol import KeyPair, canonical_pack
from nacl.public import Box

OUT = pathlib.Path(__file__).with_name("dm.json")
T0 = 1_700_000_000_000
NETWORK = bytes(range(32))
SENDER = KeyPair(bytes([0xA1]) * 32)
RECIPIENT = KeyPair(bytes([0xB2]) * 32)
NONCE = bytes([0x11]) * 16
BOX_NONCE = bytes([0x22]) * 24
TEXT = "Good work on the recursion task; the base case needs a test. — M."


def main() -> None:
    message = canonical_pack(
        {
            "body": TEXT,
            "from": SENDER.public_key,
            "nonce": NONCE,
            "sent_ms": T0,
            "to": RECIPIENT.public_key,
        }
    )
    signature = SENDER.sign(SIGN_DOMAIN + NETWORK + message)
    padded = pad(canonical_pack([message, signature]))
    inner = Box(x25519_private(SENDER), x25519_public(RECIPIENT.public_key)).encrypt(
        padded, BOX_NONCE
    )
    wire, mid = seal_dm(
        SENDER,
        NETWORK,
        RECIPIENT.public_key,
        TEXT,
        T0,
        T0 + 86_400_000,
        nonce=NONCE,
        box_nonce=BOX_NONCE,
    )
    out = {
        "network": NETWORK.hex(),
        "sender_seed": SENDER.seed.hex(),
        "sender_account": SENDER.public_key.hex(),
        "sender_x25519_public": bytes(x25519_public(SENDER.public_key)).hex(),
        "sender_x25519_private": bytes(x25519_private(SENDER)).hex(),
        "recipient_seed": RECIPIENT.seed.hex(),
        "recipient_account": RECIPIENT.public_key.hex(),
        "recipient_x25519_public": bytes(x25519_public(RECIPIENT.public_key)).hex(),
        "text": TEXT,
        "sent_ms": T0,
        "expiry_ms": T0 + 86_400_000,
        "nonce": NONCE.hex(),
        "box_nonce": BOX_NONCE.hex(),
        "message": message.hex(),
        "message_id": mid.hex(),
        "signature": signature.hex(),
        "padded_len": len(padded),
        "inner_box": bytes(inner).hex(),
        "wire": wire.hex(),
        "pad_sizes": {str(n): len(pad(bytes(n))) for n in (0, 1, 254, 255, 500, 1000, 8190)},
    }
    OUT.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
