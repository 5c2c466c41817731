"""Event kinds for disputes and juries.

Schemas only; the rules are in protocol/_disputes.py (PROTOCOL.md "Disputes and
juries" says the same in prose).

Wire codes are assigned in protocol/_kinds.py:
12 dispute, 13 jury_commit, 14 jury_reveal, 15 dispute_claim.

- `dispute` `{target, subject, claim, evidence, bond, jurors, vote_by,
  reveal_by, appeal_of}` (spends: the bond is locked from the disputant's own
  chain; extra refs claim credits like a bounty's): refs `{target, subject}`
  and `appeal_of` when set.
- `jury_commit` `{dispute, commitment}`: refs `{dispute}`.
- `jury_reveal` `{dispute, commit, verdict, salt, reason}`: refs `{commit}`.
- `dispute_claim` `{dispute, votes}`: refs `{dispute, *votes}`.

Whether a target is an award, a refund or a review, whether the subject is
the disputant's standing, who is a party, the deadlines against the event's
timestamp: rules of the fold (they need the state), not of the schema.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ._kinds import Kind
from ._schema import MAX_AMOUNT, MAX_TS, fail, hash_id, integer, records, text

__all__ = [
    "APPEAL_JURY_SIZE",
    "DISPUTE_WINDOW_MS",
    "EXTRA_KINDS",
    "JURY_SIZE",
    "MAX_DISPUTE_SPAN_MS",
    "MAX_EVIDENCE",
    "MIN_BOND",
    "POINTS_JUROR",
    "POINTS_OVERTURNED",
    "VERDICTS",
    "VOTE_DOMAIN",
    "vote_commitment",
]

_DAY_MS = 86_400_000
MIN_BOND = 10  # tokens locked by a dispute, at least
JURY_SIZE = 3  # jurors of a dispute
APPEAL_JURY_SIZE = 5  # jurors of an appeal (disjoint from the first jury)
MAX_DISPUTE_SPAN_MS = 30 * _DAY_MS  # reveal_by <= the dispute's timestamp + this
DISPUTE_WINDOW_MS = 30 * _DAY_MS  # a dispute is filed within this of its target
MAX_EVIDENCE = 8
POINTS_OVERTURNED = 5  # a mentor or reviewer whose award, refund or review is overturned
POINTS_JUROR = 1  # won by a juror voting with a decided majority, lost otherwise
VERDICTS = ("uphold", "reject")
VOTE_DOMAIN = b"learnmesh/vote\x00"


def vote_commitment(dispute: bytes, juror: bytes, verdict: str, salt: bytes) -> bytes:
    """What a `jury_commit` publishes: binding the juror's key stops another
    juror from copying the commitment, and the salt hides the verdict."""
    return hashlib.sha256(VOTE_DOMAIN + dispute + juror + verdict.encode() + salt).digest()


def _dispute(body: dict[str, Any], author: bytes) -> None:
    k = "dispute"
    target = hash_id(k, body["target"], "target")
    subject = hash_id(k, body["subject"], "subject")
    if target == subject:
        raise fail(k, "subject must be another event than the target")
    text(k, body, "claim", 1, 2000)
    for a in records(k, body, "evidence", {"hash", "name", "size"}, MAX_EVIDENCE):
        hash_id(k, a["hash"], "evidence hash")
        text(k, a, "name", 1, 128)
        integer(k, a, "size", 0, 2**40)
    integer(k, body, "bond", MIN_BOND, MAX_AMOUNT)
    vote_by = integer(k, body, "vote_by", 0, MAX_TS)
    reveal_by = integer(k, body, "reveal_by", 0, MAX_TS)
    if reveal_by <= vote_by:
        raise fail(k, "reveal_by must be after vote_by")
    appeal_of = body["appeal_of"]
    if appeal_of != b"":
        hash_id(k, appeal_of, "appeal_of (a dispute id, or empty bytes)")
        if appeal_of in (target, subject):
            raise fail(k, "appeal_of must be a dispute, not the target or subject")
    size = APPEAL_JURY_SIZE if appeal_of else JURY_SIZE
    jurors = body["jurors"]
    if not isinstance(jurors, list) or len(jurors) != size:
        what = "an appeal" if appeal_of else "a dispute"
        raise fail(k, f"jurors must list exactly {size} accounts for {what}")
    for j in jurors:
        hash_id(k, j, "juror")
    if len(set(jurors)) != len(jurors):
        raise fail(k, "jurors must be distinct")


def _dispute_refs(body: dict[str, Any]) -> set[bytes]:
    out = {body["target"], body["subject"]}
    if body["appeal_of"]:
        out.add(body["appeal_of"])
    return out


def _jury_commit(body: dict[str, Any], author: bytes) -> None:
    hash_id("jury_commit", body["dispute"], "dispute")
    hash_id("jury_commit", body["commitment"], "commitment")


def _jury_reveal(body: dict[str, Any], author: bytes) -> None:
    k = "jury_reveal"
    hash_id(k, body["dispute"], "dispute")
    hash_id(k, body["commit"], "commit")
    if body["verdict"] not in VERDICTS:
        raise fail(k, "verdict must be uphold or reject")
    salt = body["salt"]
    if not isinstance(salt, bytes) or not 16 <= len(salt) <= 32:
        raise fail(k, "salt must be 16..32 bytes")
    text(k, body, "reason", 0, 1000)


def _dispute_claim(body: dict[str, Any], author: bytes) -> None:
    k = "dispute_claim"
    d = hash_id(k, body["dispute"], "dispute")
    votes = body["votes"]
    if not isinstance(votes, list) or not 1 <= len(votes) <= APPEAL_JURY_SIZE:
        raise fail(k, f"votes must list 1..{APPEAL_JURY_SIZE} jury_reveal ids")
    for v in votes:
        hash_id(k, v, "vote")
    if len(set(votes)) != len(votes):
        raise fail(k, "votes must not repeat")
    if d in votes:
        raise fail(k, "votes are jury_reveal ids, not the dispute")


EXTRA_KINDS: list[Kind] = [
    Kind(
        12,
        "dispute",
        frozenset(
            [
                "target",
                "subject",
                "claim",
                "evidence",
                "bond",
                "jurors",
                "vote_by",
                "reveal_by",
                "appeal_of",
            ]
        ),
        16384,
        _dispute,
        spends=True,
        refs=_dispute_refs,
    ),
    Kind(
        13,
        "jury_commit",
        frozenset({"dispute", "commitment"}),
        1024,
        _jury_commit,
        refs=lambda body: {body["dispute"]},
    ),
    Kind(
        14,
        "jury_reveal",
        frozenset({"dispute", "commit", "verdict", "salt", "reason"}),
        8192,
        _jury_reveal,
        refs=lambda body: {body["commit"]},
    ),
    Kind(
        15,
        "dispute_claim",
        frozenset({"dispute", "votes"}),
        1024,
        _dispute_claim,
        refs=lambda body: {body["dispute"], *body["votes"]},
    ),
]
