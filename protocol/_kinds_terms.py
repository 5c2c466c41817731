"""Event kinds for a bounty's extra terms (minimum reviewer trust).

Schemas only; the rules are in protocol/_terms.py.

Wire codes are assigned in protocol/_kinds.py:
19 bounty_terms.
"""

from __future__ import annotations

from ._kinds import Kind

__all__ = ["EXTRA_KINDS"]

EXTRA_KINDS: list[Kind] = []
