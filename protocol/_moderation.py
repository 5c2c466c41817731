"""Rules (fold handlers) for moderation (flags).

Schemas are in protocol/_kinds_moderation.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._event import Event
    from ._state import Account, State

__all__ = ["HANDLERS", "FlagBook"]

HANDLERS: dict[str, Callable[[State, Event, Account], None]] = {}


@dataclass(slots=True)
class FlagBook:
    """Flags, by target."""

    def to_plain(self) -> Any:
        """This book as plain data (msgpack types only) for the state snapshot."""
        return []

    @classmethod
    def from_plain(cls, data: Any) -> FlagBook:
        """The book `to_plain` described; raise ValueError for anything else."""
        if data != []:
            raise ValueError("unexpected FlagBook data")
        return cls()
