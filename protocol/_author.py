"""Writing one's own chain: seq, prev and the bodies of each kind.

Pure helpers: the caller passes the timestamp and the salt (no clock, no
randomness here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import LocalProtocolError
from ._event import Event, make_event
from ._identity import KeyPair
from ._reputation import honest_reviews
from ._state import State, commitment_of, content_hash

__all__ = ["ChainWriter", "award_body", "commit_body", "reveal_body"]


@dataclass(slots=True)
class ChainWriter:
    """Signs the next event of one author's chain."""

    key: KeyPair
    network: bytes
    seq: int = 0
    head: bytes | None = None

    def sign(
        self,
        kind: str,
        body: dict[str, Any],
        timestamp: int,
        refs: list[bytes] | tuple[bytes, ...] = (),
    ) -> Event:
        ev = make_event(
            self.key, self.network, self.seq + 1, self.head, timestamp, kind, body, refs
        )
        self.seq, self.head = ev.seq, ev.id
        return ev

    def resume(self, seq: int, head: bytes | None) -> None:
        self.seq, self.head = seq, head


def commit_body(
    bounty: bytes, learner: bytes, text: str, attachments: list[dict[str, Any]], salt: bytes
) -> dict[str, Any]:
    return {
        "bounty": bounty,
        "commitment": commitment_of(bounty, learner, content_hash(text, attachments), salt),
    }


def reveal_body(
    bounty: bytes,
    commit: bytes,
    close: bytes,
    text: str,
    attachments: list[dict[str, Any]],
    salt: bytes,
) -> dict[str, Any]:
    return {
        "bounty": bounty,
        "commit": commit,
        "close": close,
        "salt": salt,
        "text": text,
        "attachments": attachments,
    }


def award_body(
    state: State,
    bounty_id: bytes,
    winners: dict[bytes, int | None],
    paid: list[bytes] | None = None,
) -> dict[str, Any]:
    """An award for `winners` (submission id -> amount, or None to split evenly).

    The reviewers' share of the reward goes, in equal parts, to `paid`: by
    default the honest reviews of the bounty (those near their submission's
    median, §6.4); what is not paid returns to the mentor.
    """
    b = state.bounties.get(bounty_id)
    if b is None:
        raise LocalProtocolError("unknown_bounty", "no such bounty")
    share = b.reward * b.reviewer_share_bp // 10000
    if paid is None:
        honest = honest_reviews(state, [b])  # this bounty only: awards stay O(its reviews)
        reviews = sorted(rid for s in b.submissions.values() for rid in s.reviews)
        paid = [rid for rid in reviews if rid in honest] or (reviews if len(reviews) == 1 else [])
    reviewers: list[dict[str, Any]] = []
    if paid and share:
        each = share // len(paid)
        reviewers = [{"review": rid, "amount": each} for rid in paid if each > 0]
    pool = b.escrow - sum(r["amount"] for r in reviewers)
    fixed = {s: n for s, n in winners.items() if n is not None}
    even = sorted(s for s, n in winners.items() if n is None)
    left = pool - sum(fixed.values())
    if left < 0:
        raise LocalProtocolError(
            "over_escrow", f"winners ask {sum(fixed.values())} but {pool} is left"
        )
    out: list[dict[str, Any]] = [{"submission": s, "amount": n} for s, n in fixed.items()]
    if even:
        each = left // len(even)
        out += [{"submission": s, "amount": each} for s in even if each > 0]
    for s in winners:
        if s not in b.submissions:
            raise LocalProtocolError(
                "bad_submission", f"{s.hex()[:12]} is not a submission of this bounty"
            )
    return {
        "bounty": bounty_id,
        "winners": sorted(out, key=lambda w: w["submission"]),
        "reviewers": reviewers,
    }
