"""Rules (fold handlers) for a bounty's extra terms (minimum reviewer trust).

Schemas are in protocol/_kinds_terms.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._event import Event
    from ._state import Account, State

__all__ = ["HANDLERS", "TermsBook"]

HANDLERS: dict[str, Callable[[State, Event, Account], None]] = {}


@dataclass(slots=True)
class TermsBook:
    """Each bounty's terms (bounty_terms events), by bounty id."""

    def to_plain(self) -> Any:
        """This book as plain data (msgpack types only) for the state snapshot."""
        return []

    @classmethod
    def from_plain(cls, data: Any) -> TermsBook:
        """The book `to_plain` described; raise ValueError for anything else."""
        if data != []:
            raise ValueError("unexpected TermsBook data")
        return cls()
