"""Rules (fold handlers) for disputes and juries.

Schemas are in protocol/_kinds_disputes.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._event import Event
    from ._state import Account, State

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Callable[[State, Event, Account], None]] = {}
