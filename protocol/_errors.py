"""Errors split by blame, as in h11: our own misuse versus bad data from a peer.

Every rejection carries a stable machine code and a sentence a person can read.
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(Exception):
    """Base of every protocol rejection: `code` is stable, `reason` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class RemoteProtocolError(ProtocolError):
    """Data that came from outside (a peer, a file, an API client) is bad.

    The node drops it, keeps running, and may penalise the peer that sent it.
    """


class LocalProtocolError(ProtocolError):
    """We asked the protocol to do something it cannot: a bug or a user mistake
    caught before anything was signed or sent."""
