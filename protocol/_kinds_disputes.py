"""Event kinds for disputes and juries.

Schemas only; the rules are in protocol/_disputes.py.

Wire codes are assigned in protocol/_kinds.py:
12 dispute, 13 jury_commit, 14 jury_reveal, 15 dispute_claim.
"""

from __future__ import annotations

from ._kinds import Kind

__all__ = ["EXTRA_KINDS"]

EXTRA_KINDS: list[Kind] = []
