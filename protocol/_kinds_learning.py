"""Event kinds for learning together (discussion and resources).

Schemas only; the rules are in protocol/_learning.py.

Wire codes are assigned in protocol/_kinds.py:
17 comment, 18 resource.
"""

from __future__ import annotations

from ._kinds import Kind

__all__ = ["EXTRA_KINDS"]

EXTRA_KINDS: list[Kind] = []
