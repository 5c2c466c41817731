"""Event kinds for moderation (flags).

Schemas only; the rules are in protocol/_moderation.py.

Wire codes are assigned in protocol/_kinds.py:
16 flag.
"""

from __future__ import annotations

from ._kinds import Kind

__all__ = ["EXTRA_KINDS"]

EXTRA_KINDS: list[Kind] = []
