"""Rules (fold handlers) for disputes and juries.

Schemas are in protocol/_kinds_disputes.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._event import Event
    from ._state import Account, State

__all__ = ["HANDLERS", "DisputeBook"]

HANDLERS: dict[str, Callable[[State, Event, Account], None]] = {}


@dataclass(slots=True)
class DisputeBook:
    """Disputes, their bonds and their juries' votes."""

    def to_plain(self) -> Any:
        """This book as plain data (msgpack types only) for the state snapshot."""
        return []

    @classmethod
    def from_plain(cls, data: Any) -> DisputeBook:
        """The book `to_plain` described; raise ValueError for anything else."""
        if data != []:
            raise ValueError("unexpected DisputeBook data")
        return cls()
