"""Event kinds for moderation (flags).

Schemas only; the rules are in protocol/_moderation.py.

Wire codes are assigned in protocol/_kinds.py:
16 flag.

`flag` `{target, account, category, note}`: `target` is the flagged event's id
or b"" (a flag of an account as a whole; refs `{target}` when set), `account`
the flagged author, `category` one of `FLAG_CATEGORIES`, `note` text 0..1000
(the evidence for plagiarism: what was copied from where). Whether `account`
is really the target's author, and whether the flagger already flagged it, are
rules of the fold (protocol/_moderation.py), not of the schema.
"""

from __future__ import annotations

from typing import Any

from ._kinds import Kind
from ._schema import fail, hash_id, text

__all__ = ["EXTRA_KINDS", "FLAG_CATEGORIES", "MAX_FLAG_NOTE"]

FLAG_CATEGORIES = ("spam", "abuse", "plagiarism", "other")
MAX_FLAG_NOTE = 1000


def _flag(body: dict[str, Any], author: bytes) -> None:
    k = "flag"
    target = body["target"]
    if target != b"":
        hash_id(k, target, "target (an event id, or empty bytes to flag the account)")
    hash_id(k, body["account"], "account")
    cat = body["category"]
    if not isinstance(cat, str) or cat not in FLAG_CATEGORIES:
        raise fail(k, f"category must be one of {', '.join(FLAG_CATEGORIES)}")
    text(k, body, "note", 0, MAX_FLAG_NOTE)


def _flag_refs(body: dict[str, Any]) -> set[bytes]:
    t = body.get("target")
    return {t} if isinstance(t, bytes) and t else set()


EXTRA_KINDS: list[Kind] = [
    Kind(
        16,
        "flag",
        frozenset({"target", "account", "category", "note"}),
        4096,
        _flag,
        refs=_flag_refs,
    ),
]
