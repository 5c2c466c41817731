"""Rules (fold handlers) for moderation (flags).

Schemas are in protocol/_kinds_moderation.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._event import Event
    from ._state import Account, State

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Callable[[State, Event, Account], None]] = {}
