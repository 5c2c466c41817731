"""What the ledger's calls return: plain data, importable by every part."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from learnmesh.protocol import EquivocationProof, Event

__all__ = ["AppendResult", "AppendResults", "StoredEvent", "VerifyReport"]


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What happened to one input of `append`: status is applied, pending,
    duplicate or rejected; code/reason explain a rejection, or a void event
    (applied, kept in its chain, without effect)."""

    status: str
    id: bytes
    code: str | None = None
    reason: str | None = None

    @property
    def void(self) -> bool:
        return self.status == "applied" and self.code is not None


class AppendResults(list[AppendResult]):
    """One result per input, in input order; `released` lists the events that
    were waiting (stored as pending by an earlier call) and applied in this one."""

    def __init__(
        self,
        results: Iterable[AppendResult],
        released: list[Event],
        forks: list[EquivocationProof] | None = None,
    ) -> None:
        super().__init__(results)
        self.released = released
        # Equivocation proofs first seen in this call: evidence a node passes on.
        self.forks: list[EquivocationProof] = forks or []


@dataclass(frozen=True, slots=True)
class StoredEvent:
    idx: int  # apply order
    id: bytes
    author: bytes
    seq: int
    kind: str
    timestamp: int
    raw: bytes
    void_code: str | None  # as decided when it was applied
    void_reason: str | None


@dataclass(slots=True)
class VerifyReport:
    ok: bool
    events: int
    pending: int
    rejected: int
    forks: int
    void: int
    digest: bytes  # of the from-scratch replay
    live_digest: bytes
    seconds: float
    problems: list[str] = field(default_factory=list)
    # Of `seconds`, the pass that checked every signature (0 without one); the
    # rest is the fold (decoding, hash links, state, digest).
    signature_seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def fold_seconds(self) -> float:
        return self.seconds - self.signature_seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "pending": self.pending,
            "rejected": self.rejected,
            "forks": self.forks,
            "void": self.void,
            "digest": self.digest.hex(),
            "live_digest": self.live_digest.hex(),
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events_per_s, 1),
            "signature_seconds": round(self.signature_seconds, 3),
            "fold_seconds": round(self.fold_seconds, 3),
            "problems": self.problems,
        }
