"""How a fold handler voids an event: `_rule(cond, code, reason)` raises `_Void`,
and a dry run stops at `State._checked()` with `_DryRunDone`. In their own module
so the kinds defined outside protocol/_state.py use the same two words."""

from __future__ import annotations

__all__ = ["_DryRunDone", "_Void", "_rule"]


class _DryRunDone(Exception):
    """Raised by `_checked()` in a dry run: every rule passed."""


class _Void(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _rule(cond: bool, code: str, reason: str) -> None:
    if not cond:
        raise _Void(code, reason)
