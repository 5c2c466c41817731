"""A network is defined by its genesis: name, allocations, trusted accounts, parameters.

The network id is the sha256 of the canonical genesis encoding, so two
communities with different genesis documents can never mix events.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ._encoding import canonical_pack, strict_unpack
from ._errors import RemoteProtocolError
from ._identity import account_from_text, account_text

__all__ = ["GENESIS_VERSION", "Genesis", "Params"]

GENESIS_VERSION = 1
_MAX_GENESIS_BYTES = 1 << 20
_MAX_SUPPLY = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Params:
    """Network-wide rules every node applies identically."""

    max_event_bytes: int = 32 * 1024
    max_blob_bytes: int = 8 * 1024 * 1024
    min_quorum: int = 1
    max_clock_skew_ms: int = 10 * 60 * 1000  # node policy: do not forward events from the future
    honest_review_tolerance_pm: int = 150  # per mille of the rubric's maximum
    points_awarded_work: int = 10
    points_honest_review: int = 2
    points_settled_bounty: int = 1
    penalty_abandoned_bounty: int = 5

    def to_map(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_map(cls, m: Any) -> Params:
        if not isinstance(m, dict):
            raise RemoteProtocolError("genesis", "params must be a map")
        known = set(cls.__slots__)
        extra = set(m) - known
        if extra:
            raise RemoteProtocolError("genesis", f"unknown parameters: {sorted(extra)}")
        for k, v in m.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise RemoteProtocolError("genesis", f"parameter {k} must be a non-negative int")
        p = cls(**m)
        if not 1024 <= p.max_event_bytes <= 1 << 20:
            raise RemoteProtocolError("genesis", "max_event_bytes must be within 1 KiB..1 MiB")
        return p


@dataclass(frozen=True, slots=True)
class Genesis:
    name: str
    created_ms: int
    allocations: tuple[tuple[bytes, int], ...]
    trusted: tuple[bytes, ...] = ()
    params: Params = field(default_factory=Params)
    description: str = ""

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= 64:
            raise RemoteProtocolError("genesis", "network name must be 1..64 characters")
        seen: set[bytes] = set()
        for acct, amount in self.allocations:
            if len(acct) != 32:
                raise RemoteProtocolError("genesis", "allocation account must be 32 bytes")
            if acct in seen:
                raise RemoteProtocolError("genesis", "an account is allocated twice")
            seen.add(acct)
            if not isinstance(amount, int) or amount <= 0:
                raise RemoteProtocolError("genesis", "allocations must be positive integers")
        if self.total_supply > _MAX_SUPPLY:
            raise RemoteProtocolError("genesis", "total supply does not fit in 63 bits")
        if any(len(t) != 32 for t in self.trusted):
            raise RemoteProtocolError("genesis", "trusted accounts must be 32 bytes")

    @property
    def total_supply(self) -> int:
        return sum(a for _, a in self.allocations)

    def to_map(self) -> dict[str, Any]:
        return {
            "v": GENESIS_VERSION,
            "name": self.name,
            "description": self.description,
            "created_ms": self.created_ms,
            "allocations": [[a, n] for a, n in sorted(self.allocations)],
            "trusted": sorted(self.trusted),
            "params": self.params.to_map(),
        }

    def encode(self) -> bytes:
        return canonical_pack(self.to_map())

    @property
    def network_id(self) -> bytes:
        return hashlib.sha256(b"learnmesh/genesis\x00" + self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> Genesis:
        m = strict_unpack(data, _MAX_GENESIS_BYTES)
        g = cls.from_map(m)
        # from_map compares with ==, where `true` == 1: only the exact bytes are canonical.
        if g.encode() != data:
            raise RemoteProtocolError("genesis", "genesis does not re-encode to the same bytes")
        return g

    @classmethod
    def from_map(cls, m: Any) -> Genesis:
        want = {"v", "name", "description", "created_ms", "allocations", "trusted", "params"}
        if not isinstance(m, dict) or set(m) != want:
            raise RemoteProtocolError("genesis", f"a genesis is a map with exactly {sorted(want)}")
        if m["v"] != GENESIS_VERSION:
            raise RemoteProtocolError("genesis", f"unsupported genesis version {m['v']!r}")
        try:
            allocations = tuple((bytes(a), int(n)) for a, n in m["allocations"])
            trusted = tuple(bytes(t) for t in m["trusted"])
        except (TypeError, ValueError) as exc:
            raise RemoteProtocolError("genesis", "malformed allocations or trusted list") from exc
        if not isinstance(m["name"], str) or not isinstance(m["description"], str):
            raise RemoteProtocolError("genesis", "name and description must be text")
        if not isinstance(m["created_ms"], int) or isinstance(m["created_ms"], bool):
            raise RemoteProtocolError("genesis", "created_ms must be an integer")
        g = cls(
            name=m["name"],
            description=m["description"],
            created_ms=m["created_ms"],
            allocations=tuple(sorted(allocations)),
            trusted=tuple(sorted(trusted)),
            params=Params.from_map(m["params"]),
        )
        if g.to_map() != m:
            raise RemoteProtocolError("genesis", "genesis lists are not in canonical order")
        return g

    def to_json(self) -> dict[str, Any]:
        """A readable form for files people edit (accounts in text form)."""
        return {
            "name": self.name,
            "description": self.description,
            "created_ms": self.created_ms,
            "allocations": {account_text(a): n for a, n in sorted(self.allocations)},
            "trusted": [account_text(t) for t in sorted(self.trusted)],
            "params": self.params.to_map(),
        }

    @classmethod
    def from_json(cls, j: Any) -> Genesis:
        if not isinstance(j, dict):
            raise RemoteProtocolError("genesis", "a genesis file holds a JSON object")
        try:
            allocations = tuple(
                sorted((account_from_text(k), int(v)) for k, v in j["allocations"].items())
            )
            trusted = tuple(sorted(account_from_text(t) for t in j.get("trusted", [])))
            return cls(
                name=str(j["name"]),
                description=str(j.get("description", "")),
                created_ms=int(j["created_ms"]),
                allocations=allocations,
                trusted=trusted,
                params=Params.from_map(j.get("params", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RemoteProtocolError("genesis", f"malformed genesis: {exc}") from exc
