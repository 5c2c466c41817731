"""Rules (fold handlers) for a bounty's extra terms.

Schemas are in protocol/_kinds_terms.py. A bounty's terms are fixed when it is
posted: the `bounty_terms` event must come directly after the bounty on the
mentor's chain (its prev is the bounty), so no learner or reviewer ever acts
under terms that change later, and no arrival order can make two sets of terms
compete (a chain has one event per seq; a fork voids both)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._rules import _rule

if TYPE_CHECKING:
    from ._event import Event
    from ._state import Account, State

__all__ = ["HANDLERS", "BountyTerms", "TermsBook"]


@dataclass(frozen=True, slots=True)
class BountyTerms:
    bounty: bytes
    min_reviewer_trust_ppm: int
    prereq_bounties: tuple[bytes, ...]
    prereq_skills: tuple[str, ...]
    resources: tuple[dict[str, str], ...]


@dataclass(slots=True)
class TermsBook:
    """Each bounty's terms (bounty_terms events), by bounty id."""

    by_bounty: dict[bytes, BountyTerms] = field(default_factory=dict)

    def get(self, bounty: bytes) -> BountyTerms | None:
        return self.by_bounty.get(bounty)

    def min_reviewer_trust_ppm(self, bounty: bytes) -> int:
        t = self.by_bounty.get(bounty)
        return t.min_reviewer_trust_ppm if t else 0

    def to_plain(self) -> Any:
        """This book as plain data (msgpack types only) for the state snapshot."""
        return [
            [
                t.bounty,
                t.min_reviewer_trust_ppm,
                list(t.prereq_bounties),
                list(t.prereq_skills),
                [dict(r) for r in t.resources],
            ]
            for _, t in sorted(self.by_bounty.items())
        ]

    @classmethod
    def from_plain(cls, data: Any) -> TermsBook:
        """The book `to_plain` described; raise ValueError for anything else."""
        book = cls()
        if not isinstance(data, list):
            raise ValueError("terms: not a list")
        for row in data:
            bid, ppm, pre, skills, res = row
            if not (
                isinstance(bid, bytes)
                and isinstance(ppm, int)
                and all(isinstance(p, bytes) for p in pre)
                and all(isinstance(s, str) for s in skills)
                and all(isinstance(r, dict) for r in res)
            ):
                raise ValueError("terms: a malformed row")
            book.by_bounty[bid] = BountyTerms(
                bid, ppm, tuple(pre), tuple(skills), tuple(dict(r) for r in res)
            )
        return book


def _bounty_terms(s: State, ev: Event, a: Account) -> None:
    body = ev.body
    bid = body["bounty"]
    b = s._bounty_of(bid)
    _rule(ev.author == b.author, "not_mentor", "only the bounty's author sets its terms")
    _rule(
        ev.prev == bid,
        "terms_late",
        "a bounty's terms must be the next event of its author's chain after the bounty",
    )
    for p in body["prereq_bounties"]:
        _rule(p in s.bounties, "bad_prereq", "a prerequisite is not a bounty")
    s._checked()
    s.terms.by_bounty[bid] = BountyTerms(
        bounty=bid,
        min_reviewer_trust_ppm=body["min_reviewer_trust_ppm"],
        prereq_bounties=tuple(body["prereq_bounties"]),
        prereq_skills=tuple(body["prereq_skills"]),
        resources=tuple(dict(r) for r in body["resources"]),
    )


HANDLERS: dict[str, Callable[[State, Event, Account], None]] = {
    "bounty_terms": _bounty_terms,
}
