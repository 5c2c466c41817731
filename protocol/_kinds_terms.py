"""Event kinds for a bounty's extra terms (minimum reviewer trust, prerequisites,
the mentor's resources).

Schemas only; the rules are in protocol/_terms.py.

Wire codes are assigned in protocol/_kinds.py:
19 bounty_terms.
"""

from __future__ import annotations

from typing import Any

from ._kinds import Kind
from ._kinds_learning import RESOURCE_KINDS, check_resource_record
from ._schema import fail, hash_id, integer, records

__all__ = [
    "EXTRA_KINDS",
    "MAX_PREREQS",
    "MAX_RESOURCES",
    "PPM",
    "RESOURCE_KINDS",
    "check_resource",
]

PPM = 1_000_000
MAX_PREREQS = 8
MAX_RESOURCES = 16


def check_resource(kind: str, r: dict[str, Any]) -> None:
    """A learning resource record {title, url, kind, licence}: the same check as
    the `resource` kind's (protocol/_kinds_learning.py), decided by characters
    alone so every implementation decides alike."""
    check_resource_record(kind, r)


def _bounty_terms(body: dict[str, Any], author: bytes) -> None:
    k = "bounty_terms"
    bid = hash_id(k, body["bounty"], "bounty")
    integer(k, body, "min_reviewer_trust_ppm", 0, PPM)
    pre = body["prereq_bounties"]
    if not isinstance(pre, list) or len(pre) > MAX_PREREQS:
        raise fail(k, f"prereq_bounties must be a list of at most {MAX_PREREQS} bounty ids")
    for p in pre:
        hash_id(k, p, "prerequisite bounty")
    if len(set(pre)) != len(pre) or bid in pre:
        raise fail(k, "prerequisite bounties must not repeat or name the bounty itself")
    sk = body["prereq_skills"]
    if not isinstance(sk, list) or len(sk) > MAX_PREREQS:
        raise fail(k, f"prereq_skills must be a list of at most {MAX_PREREQS} skills")
    for s in sk:
        if not isinstance(s, str) or not 1 <= len(s) <= 32:
            raise fail(k, "each prerequisite skill is 1..32 characters")
    if len(set(sk)) != len(sk):
        raise fail(k, "prerequisite skills must not repeat")
    for r in records(k, body, "resources", {"title", "url", "kind", "licence"}, MAX_RESOURCES):
        check_resource(k, r)


def _terms_refs(body: dict[str, Any]) -> set[bytes]:
    return {body["bounty"], *body["prereq_bounties"]}


EXTRA_KINDS: list[Kind] = [
    Kind(
        19,
        "bounty_terms",
        frozenset(
            ["bounty", "min_reviewer_trust_ppm", "prereq_bounties", "prereq_skills", "resources"]
        ),
        16384,
        _bounty_terms,
        refs=_terms_refs,
    )
]
