"""Rules (fold handlers) for disputes and juries, and their views.

Schemas are in protocol/_kinds_disputes.py; PROTOCOL.md "Disputes and juries"
says all of this in prose.

The fold (money, causal rules only): a `dispute` locks a bond from its
disputant's own chain, like a bounty's escrow, and names its jurors; jurors
`jury_commit` then `jury_reveal` a verdict; once a strict majority of the panel
revealed the same verdict, a `dispute_claim` that refs those reveals takes the
bond back (upheld: the disputant) or a juror's share of it (rejected: each
juror of the majority, `bond // panel`). Each rule looks only at the event's
causal past: the events it refs and its author's own chain.

The views (functions of the whole event set, never deciding validity):
`draw_jury` (who should sit on a jury, weighted by trust), `panel_check`
(whether a dispute's named jurors are among the first 2 x size of the current
draw), `dispute_status` (phase, votes, who must act next, bond movements) and
`dispute_outcomes` (decided verdicts, overturned awards and reviews, points),
which the reputation view (and so the state digest) and the trust view use.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import LocalProtocolError
from ._kinds_disputes import (
    APPEAL_JURY_SIZE,
    DISPUTE_WINDOW_MS,
    JURY_SIZE,
    MAX_DISPUTE_SPAN_MS,
    MAX_EVIDENCE,
    MIN_BOND,
    POINTS_JUROR,
    POINTS_OVERTURNED,
    VERDICTS,
    vote_commitment,
)
from ._rules import _rule, _Void

if TYPE_CHECKING:
    from ._event import Event
    from ._state import Account, State
    from ._trust import TrustView

__all__ = [
    "APPEAL_JURY_SIZE",
    "DISPUTE_WINDOW_MS",
    "HANDLERS",
    "JURY_SIZE",
    "MAX_DISPUTE_SPAN_MS",
    "MIN_BOND",
    "POINTS_JUROR",
    "POINTS_OVERTURNED",
    "Dispute",
    "DisputeBook",
    "DisputeOutcomes",
    "DisputeStatus",
    "JuryCommit",
    "JuryReveal",
    "dispute_body",
    "dispute_claim_body",
    "dispute_outcomes",
    "dispute_status",
    "draw_jury",
    "jury_commit_body",
    "jury_reveal_body",
    "jury_seed",
    "panel_check",
    "vote_commitment",
]

TARGET_KINDS = ("award", "refund", "review")
JURY_DOMAIN = b"learnmesh/jury\x00"


# -- the book -----------------------------------------------------------------------------


@dataclass(slots=True)
class Dispute:
    """One effective dispute (an appeal is a dispute with `appeal_of` set)."""

    id: bytes
    disputant: bytes  # its author (an appeal's: the appellant)
    kind: str  # what the target is: award | refund | review
    target: bytes
    subject: bytes
    bounty: bytes
    respondent: bytes  # the target's author (an appeal's: the other side of the first round)
    parties: tuple[bytes, ...]  # sorted; never on the jury
    claim: str
    evidence: list[dict[str, Any]]
    bond: int
    escrow: int  # what is still locked
    jurors: tuple[bytes, ...]  # in the body's order
    vote_by: int
    reveal_by: int
    appeal_of: bytes  # b"" for a first-round dispute
    filed_at: int
    commits: dict[bytes, bytes] = field(default_factory=dict)  # juror -> jury_commit id
    reveals: dict[bytes, bytes] = field(default_factory=dict)  # juror -> jury_reveal id
    claims: dict[bytes, bytes] = field(default_factory=dict)  # account -> dispute_claim id

    @property
    def panel(self) -> int:
        return len(self.jurors)

    def share(self) -> int:
        """What each juror of a rejecting majority claims."""
        return self.bond // len(self.jurors)


@dataclass(frozen=True, slots=True)
class JuryCommit:
    id: bytes
    dispute: bytes
    juror: bytes
    commitment: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class JuryReveal:
    id: bytes
    dispute: bytes
    juror: bytes
    commit: bytes
    verdict: str
    reason: str
    timestamp: int


def _is_id(x: Any, empty: bool = False) -> bool:
    return isinstance(x, bytes) and (len(x) == 32 or (empty and x == b""))


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _pairs(x: Any) -> list[tuple[bytes, bytes]]:
    if not isinstance(x, list):
        raise ValueError("a DisputeBook map is a list of pairs")
    out = []
    for p in x:
        if not (isinstance(p, list) and len(p) == 2 and _is_id(p[0]) and _is_id(p[1])):
            raise ValueError("malformed DisputeBook pair")
        out.append((p[0], p[1]))
    if [k for k, _ in out] != sorted({k for k, _ in out}):
        raise ValueError("DisputeBook pairs are not sorted and distinct")
    return out


@dataclass(slots=True)
class DisputeBook:
    """Disputes, their bonds and their juries' votes."""

    disputes: dict[bytes, Dispute] = field(default_factory=dict)
    commits: dict[bytes, JuryCommit] = field(default_factory=dict)  # jury_commit id ->
    reveals: dict[bytes, JuryReveal] = field(default_factory=dict)  # jury_reveal id ->
    # (author, appeal_of or target): one first-round dispute per disputant and
    # target, one appeal per appellant and dispute. Derived from `disputes`.
    filed: set[tuple[bytes, bytes]] = field(default_factory=set)

    def add(self, d: Dispute) -> None:
        self.disputes[d.id] = d
        self.filed.add((d.disputant, d.appeal_of or d.target))

    def escrow(self) -> int:
        """Every bond still locked (part of the total supply)."""
        return sum(d.escrow for d in self.disputes.values())

    def author_of(self, eid: bytes) -> bytes | None:
        """The author of a dispute, jury commit or jury reveal (for flags)."""
        d = self.disputes.get(eid)
        if d is not None:
            return d.disputant
        c = self.commits.get(eid)
        if c is not None:
            return c.juror
        r = self.reveals.get(eid)
        return r.juror if r is not None else None

    def appeals_of(self, did: bytes) -> list[Dispute]:
        """The effective appeals of a dispute, by id."""
        return sorted((d for d in self.disputes.values() if d.appeal_of == did), key=lambda d: d.id)

    def verdicts(self, d: Dispute) -> dict[bytes, str]:
        """juror -> revealed verdict."""
        return {j: self.reveals[r].verdict for j, r in d.reveals.items()}

    def majority(self, d: Dispute) -> str | None:
        """The verdict a strict majority of the panel revealed, if any. Once
        reached it is final: each juror reveals once."""
        counts = {v: 0 for v in VERDICTS}
        for v in self.verdicts(d).values():
            counts[v] += 1
        for v, n in counts.items():
            if 2 * n > d.panel:
                return v
        return None

    def to_plain(self) -> Any:
        """This book as plain data (msgpack types only) for the state snapshot."""
        return [
            [
                [
                    d.id,
                    d.disputant,
                    d.kind,
                    d.target,
                    d.subject,
                    d.bounty,
                    d.respondent,
                    list(d.parties),
                    d.claim,
                    [dict(e) for e in d.evidence],
                    d.bond,
                    d.escrow,
                    list(d.jurors),
                    d.vote_by,
                    d.reveal_by,
                    d.appeal_of,
                    d.filed_at,
                    sorted([j, c] for j, c in d.commits.items()),
                    sorted([j, r] for j, r in d.reveals.items()),
                    sorted([a, c] for a, c in d.claims.items()),
                ]
                for d in sorted(self.disputes.values(), key=lambda d: d.id)
            ],
            [
                [c.id, c.dispute, c.juror, c.commitment, c.timestamp]
                for c in sorted(self.commits.values(), key=lambda c: c.id)
            ],
            [
                [r.id, r.dispute, r.juror, r.commit, r.verdict, r.reason, r.timestamp]
                for r in sorted(self.reveals.values(), key=lambda r: r.id)
            ],
        ]

    @classmethod
    def from_plain(cls, data: Any) -> DisputeBook:
        """The book `to_plain` described; raise ValueError for anything else."""
        if not (isinstance(data, list) and len(data) == 3):
            raise ValueError("DisputeBook data is a list of 3 tables")
        if not all(isinstance(t, list) for t in data):
            raise ValueError("a DisputeBook table is not a list")
        book = cls()
        for row in data[1]:
            if not (isinstance(row, list) and len(row) == 5):
                raise ValueError("a jury commit row is a list of 5 fields")
            cid, did, juror, commitment, ts = row
            if not (_is_id(cid) and _is_id(did) and _is_id(juror) and _is_id(commitment)):
                raise ValueError("malformed jury commit row")
            if not _is_int(ts) or cid in book.commits:
                raise ValueError("malformed jury commit row")
            book.commits[cid] = JuryCommit(cid, did, juror, commitment, ts)
        for row in data[2]:
            if not (isinstance(row, list) and len(row) == 7):
                raise ValueError("a jury reveal row is a list of 7 fields")
            rid, did, juror, cid, verdict, reason, ts = row
            ok = (
                _is_id(rid)
                and _is_id(did)
                and _is_id(juror)
                and _is_id(cid)
                and verdict in VERDICTS
                and isinstance(reason, str)
                and _is_int(ts)
                and rid not in book.reveals
            )
            c = book.commits.get(cid) if ok else None
            if c is None or c.juror != juror or c.dispute != did:
                raise ValueError("malformed jury reveal row")
            book.reveals[rid] = JuryReveal(rid, did, juror, cid, verdict, reason, ts)
        for row in data[0]:
            book.add(_dispute_from_row(row))
        if list(book.disputes) != sorted(book.disputes):
            raise ValueError("DisputeBook disputes are not sorted")
        for c in book.commits.values():
            d = book.disputes.get(c.dispute)
            if d is None or d.commits.get(c.juror) != c.id:
                raise ValueError("a jury commit of no dispute")
        for r in book.reveals.values():
            if book.disputes[r.dispute].reveals.get(r.juror) != r.id:
                raise ValueError("a jury reveal of no dispute")
        if book.to_plain() != data:
            raise ValueError("DisputeBook data is not in its canonical order")
        return book


def _dispute_from_row(row: Any) -> Dispute:
    if not (isinstance(row, list) and len(row) == 20):
        raise ValueError("a dispute row is a list of 20 fields")
    (did, disputant, kind, target, subject, bounty, respondent, parties, claim, evidence) = row[:10]
    (bond, escrow, jurors, vote_by, reveal_by, appeal_of, filed_at, commits, reveals) = row[10:19]
    claims = row[19]
    ok = (
        all(_is_id(x) for x in (did, disputant, target, subject, bounty, respondent))
        and kind in TARGET_KINDS
        and isinstance(parties, list)
        and all(_is_id(p) for p in parties)
        and isinstance(claim, str)
        and isinstance(evidence, list)
        and len(evidence) <= MAX_EVIDENCE
        and all(isinstance(e, dict) and set(e) == {"hash", "name", "size"} for e in evidence)
        and _is_int(bond)
        and bond >= MIN_BOND
        and _is_int(escrow)
        and escrow <= bond
        and isinstance(jurors, list)
        and len(jurors) in (JURY_SIZE, APPEAL_JURY_SIZE)
        and all(_is_id(j) for j in jurors)
        and len(set(jurors)) == len(jurors)
        and all(_is_int(x) for x in (vote_by, reveal_by, filed_at))
        and _is_id(appeal_of, empty=True)
    )
    if not ok:
        raise ValueError("malformed dispute row")
    d = Dispute(
        id=did,
        disputant=disputant,
        kind=kind,
        target=target,
        subject=subject,
        bounty=bounty,
        respondent=respondent,
        parties=tuple(parties),
        claim=claim,
        evidence=[dict(e) for e in evidence],
        bond=bond,
        escrow=escrow,
        jurors=tuple(jurors),
        vote_by=vote_by,
        reveal_by=reveal_by,
        appeal_of=appeal_of,
        filed_at=filed_at,
        commits=dict(_pairs(commits)),
        reveals=dict(_pairs(reveals)),
        claims=dict(_pairs(claims)),
    )
    if not set(d.commits) <= set(d.jurors) or not set(d.reveals) <= set(d.commits):
        raise ValueError("a dispute's votes are not by its jurors")
    return d


# -- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Standing:
    kind: str
    bounty: bytes
    respondent: bytes
    parties: tuple[bytes, ...]
    target_ts: int


def _standing(s: State, disputant: bytes, target: bytes, subject: bytes) -> _Standing:
    """What `target` is and whether `subject` gives `disputant` standing to
    dispute it; voids (`bad_target`, `bad_subject`) otherwise. Both are refs of
    a dispute, so this reads only its causal past."""
    rv = s.reviews.get(target)
    if rv is not None:
        bounty = s.bounties[rv.bounty]
        sub = bounty.submissions[rv.submission]
        own = s.reviews.get(subject)
        _rule(
            (subject == sub.id and sub.learner == disputant)
            or (
                own is not None
                and own.reviewer == disputant
                and own.submission == sub.id
                and own.id != target
            ),
            "bad_subject",
            "a review is disputed by the reviewed learner (subject: the submission) or "
            "by another reviewer of the same work (subject: its own review)",
        )
        parties = {disputant, rv.reviewer, bounty.author, sub.learner}
        return _Standing("review", bounty.id, rv.reviewer, tuple(sorted(parties)), rv.timestamp)
    settled = [b for b in s.bounties.values() if b.settled_by == target]
    _rule(bool(settled), "bad_target", "the target is not an award, a refund or a review")
    b = settled[0]
    assert b.settled_at is not None
    if b.phase == "awarded":
        mine = b.submissions.get(subject)
        _rule(
            mine is not None and mine.learner == disputant,
            "bad_subject",
            "an award is disputed by a learner of the bounty (subject: its submission)",
        )
        # The learners the award paid have a stake in it too.
        paid = {x.learner for x in b.submissions.values() if x.awarded > 0}
        parties = {disputant, b.author} | paid
        return _Standing("award", b.id, b.author, tuple(sorted(parties)), b.settled_at)
    _rule(
        subject in b.accepted and b.commits.get(subject) == disputant,
        "bad_subject",
        "a refund is disputed by a learner whose commit the mentor's close accepted "
        "(subject: that commit)",
    )
    return _Standing("refund", b.id, b.author, tuple(sorted({disputant, b.author})), b.settled_at)


def _dispute(s: State, ev: Event, a: Account) -> None:
    body = ev.body
    book = s.disputes
    target, subject, appeal_of = body["target"], body["subject"], body["appeal_of"]
    jurors: list[bytes] = body["jurors"]
    ts = ev.timestamp
    if appeal_of:
        orig = book.disputes.get(appeal_of)
        _rule(orig is not None, "bad_appeal", "appeal_of is not a dispute")
        assert orig is not None
        _rule(not orig.appeal_of, "bad_appeal", "an appeal cannot be appealed")
        _rule(
            orig.target == target and orig.subject == subject,
            "bad_appeal",
            "an appeal names the same target and subject as the dispute it appeals",
        )
        _rule(
            ev.author in (orig.disputant, orig.respondent),
            "not_party",
            "only the dispute's disputant or respondent appeals it",
        )
        _rule(
            body["bond"] >= 2 * orig.bond,
            "appeal_bond",
            f"an appeal's bond is at least twice the dispute's ({2 * orig.bond})",
        )
        _rule(
            not set(jurors) & set(orig.jurors),
            "appeal_jurors",
            "an appeal's jurors must not have sat on the first jury",
        )
        _rule(
            ts <= orig.reveal_by + DISPUTE_WINDOW_MS,
            "window",
            "an appeal is filed within 30 days of the first round's reveal deadline",
        )
        other = orig.respondent if ev.author == orig.disputant else orig.disputant
        st = _Standing(orig.kind, orig.bounty, other, orig.parties, orig.filed_at)
    else:
        st = _standing(s, ev.author, target, subject)
        _rule(
            ts <= st.target_ts + DISPUTE_WINDOW_MS,
            "window",
            "a dispute is filed within 30 days of the event it disputes",
        )
    _rule(
        ts < body["vote_by"] < body["reveal_by"] <= ts + MAX_DISPUTE_SPAN_MS,
        "deadline",
        "deadlines must satisfy timestamp < vote_by < reveal_by <= timestamp + 30 days",
    )
    _rule(
        not set(jurors) & set(st.parties),
        "party_juror",
        "a party to the dispute (disputant, respondent, mentor, learner) cannot be a juror",
    )
    _rule(
        (ev.author, appeal_of or target) not in book.filed,
        "duplicate_dispute",
        "this author already appealed this dispute"
        if appeal_of
        else "this author already disputed this event",
    )
    s._spend(ev, a, body["bond"], "locks a bond of")  # calls s._checked()
    book.add(
        Dispute(
            id=ev.id,
            disputant=ev.author,
            kind=st.kind,
            target=target,
            subject=subject,
            bounty=st.bounty,
            respondent=st.respondent,
            parties=st.parties,
            claim=body["claim"],
            evidence=[dict(e) for e in body["evidence"]],
            bond=body["bond"],
            escrow=body["bond"],
            jurors=tuple(jurors),
            vote_by=body["vote_by"],
            reveal_by=body["reveal_by"],
            appeal_of=appeal_of,
            filed_at=ts,
        )
    )


def _dispute_of(s: State, did: bytes) -> Dispute:
    d = s.disputes.disputes.get(did)
    _rule(d is not None, "unknown_dispute", "the referenced dispute does not exist")
    assert d is not None
    return d


def _jury_commit(s: State, ev: Event, a: Account) -> None:
    d = _dispute_of(s, ev.body["dispute"])
    _rule(ev.author in d.jurors, "not_juror", "the author is not on this dispute's jury")
    _rule(ev.author not in d.commits, "duplicate_vote", "this juror already voted on this dispute")
    _rule(ev.timestamp <= d.vote_by, "late", "the vote is after the dispute's vote_by")
    s._checked()
    d.commits[ev.author] = ev.id
    s.disputes.commits[ev.id] = JuryCommit(
        ev.id, d.id, ev.author, ev.body["commitment"], ev.timestamp
    )


def _jury_reveal(s: State, ev: Event, a: Account) -> None:
    body = ev.body
    c = s.disputes.commits.get(body["commit"])
    _rule(
        c is not None and c.dispute == body["dispute"],
        "bad_commit",
        "the revealed ref is not a jury commit on this dispute",
    )
    assert c is not None
    d = s.disputes.disputes[c.dispute]
    _rule(ev.author == c.juror, "not_juror", "only the juror who committed reveals")
    _rule(
        vote_commitment(d.id, ev.author, body["verdict"], body["salt"]) == c.commitment,
        "commitment_mismatch",
        "the revealed verdict and salt do not match the commitment",
    )
    _rule(ev.timestamp <= d.reveal_by, "late", "the reveal is after the dispute's reveal_by")
    _rule(ev.author not in d.reveals, "duplicate_reveal", "this vote was already revealed")
    s._checked()
    d.reveals[ev.author] = ev.id
    s.disputes.reveals[ev.id] = JuryReveal(
        ev.id, d.id, ev.author, c.id, body["verdict"], body["reason"], ev.timestamp
    )


def _dispute_claim(s: State, ev: Event, a: Account) -> None:
    body = ev.body
    d = _dispute_of(s, body["dispute"])
    votes = []
    for vid in body["votes"]:
        r = s.disputes.reveals.get(vid)
        _rule(
            r is not None and r.dispute == d.id,
            "bad_vote",
            "a vote is not a jury reveal on this dispute",
        )
        assert r is not None
        votes.append(r)
    verdicts = {r.verdict for r in votes}
    _rule(len(verdicts) == 1, "split_vote", "the votes claimed on do not agree")
    _rule(
        2 * len(votes) > d.panel,
        "no_majority",
        f"{len(votes)} of {d.panel} votes are not a strict majority of the panel",
    )
    (verdict,) = verdicts
    if verdict == "uphold":
        _rule(ev.author == d.disputant, "not_disputant", "only the disputant claims an upheld bond")
        amount = d.escrow  # all of it: no rejecting majority can exist beside this one
    else:
        _rule(
            any(r.juror == ev.author for r in votes),
            "not_juror",
            "a rejected bond is claimed by a juror whose own vote is among the votes",
        )
        amount = d.share()
    _rule(ev.author not in d.claims, "duplicate_claim", "this account already claimed on it")
    s._checked()
    d.claims[ev.author] = ev.id
    d.escrow -= amount
    s.account(ev.author).balance += amount
    if amount:
        s.credits[ev.id] = {ev.author: amount}


HANDLERS: dict[str, Callable[[State, Event, Account], None]] = {
    "dispute": _dispute,
    "jury_commit": _jury_commit,
    "jury_reveal": _jury_reveal,
    "dispute_claim": _dispute_claim,
}


# -- bodies a node signs ------------------------------------------------------------------


def dispute_body(
    target: bytes,
    subject: bytes,
    claim: str,
    bond: int,
    jurors: list[bytes],
    vote_by: int,
    reveal_by: int,
    evidence: list[dict[str, Any]] | None = None,
    appeal_of: bytes = b"",
) -> dict[str, Any]:
    """A dispute body; its refs are {target, subject} (+ appeal_of) plus any
    credits the bond is funded from."""
    return {
        "target": target,
        "subject": subject,
        "claim": claim,
        "evidence": list(evidence or []),
        "bond": bond,
        "jurors": list(jurors),
        "vote_by": vote_by,
        "reveal_by": reveal_by,
        "appeal_of": appeal_of,
    }


def jury_commit_body(dispute: bytes, juror: bytes, verdict: str, salt: bytes) -> dict[str, Any]:
    if verdict not in VERDICTS:
        raise LocalProtocolError("bad_verdict", "the verdict is uphold or reject")
    return {"dispute": dispute, "commitment": vote_commitment(dispute, juror, verdict, salt)}


def jury_reveal_body(
    dispute: bytes, commit: bytes, verdict: str, salt: bytes, reason: str = ""
) -> dict[str, Any]:
    return {
        "dispute": dispute,
        "commit": commit,
        "verdict": verdict,
        "salt": salt,
        "reason": reason,
    }


def dispute_claim_body(state: State, dispute: bytes, account: bytes) -> dict[str, Any]:
    """The claim `account` can make on a decided dispute: the majority's
    reveals, sorted. LocalProtocolError says why when there is nothing to claim."""
    book = state.disputes
    d = book.disputes.get(dispute)
    if d is None:
        raise LocalProtocolError("unknown_dispute", "no such dispute")
    verdict = book.majority(d)
    if verdict is None:
        raise LocalProtocolError("undecided", "no strict majority of the jury has revealed yet")
    if account in d.claims:
        raise LocalProtocolError("duplicate_claim", "already claimed")
    votes = sorted(r for j, r in d.reveals.items() if book.reveals[r].verdict == verdict)
    if verdict == "uphold" and account != d.disputant:
        raise LocalProtocolError("not_disputant", "the dispute was upheld: the disputant claims")
    if verdict == "reject" and account not in {book.reveals[r].juror for r in votes}:
        raise LocalProtocolError(
            "not_juror", "the dispute was rejected: jurors of the majority claim"
        )
    return {"dispute": dispute, "votes": votes}


# -- the jury draw (a view) -------------------------------------------------------------


def jury_seed(target: bytes, subject: bytes, disputant: bytes) -> bytes:
    """The draw's seed. It leaves out the dispute id (and so the claim text), or
    a disputant could reword its claim until the jury suited it."""
    return hashlib.sha256(target + subject + disputant).digest()


@dataclass(frozen=True, slots=True)
class _Draw:
    seed: bytes
    skills: tuple[str, ...]
    parties: frozenset[bytes]
    excluded: frozenset[bytes]  # parties, their vouch relations, forked, a first jury


def _draw_inputs(state: State, dispute: Dispute | Mapping[str, Any]) -> _Draw:
    book = state.disputes
    if isinstance(dispute, Dispute):
        target, subject, who = dispute.target, dispute.subject, dispute.disputant
        appeal_of = dispute.appeal_of
        parties = set(dispute.parties)
        bounty = dispute.bounty
    else:
        try:
            target, subject, who = dispute["target"], dispute["subject"], dispute["disputant"]
            appeal_of = dispute.get("appeal_of", b"") or b""
        except (KeyError, TypeError) as e:
            raise LocalProtocolError(
                "bad_dispute", "a draw needs target, subject, disputant (and appeal_of)"
            ) from e
        if appeal_of:
            orig = book.disputes.get(appeal_of)
            if orig is None:
                raise LocalProtocolError("unknown_dispute", "the appealed dispute is unknown")
            parties, bounty = set(orig.parties), orig.bounty
        else:
            try:
                st = _standing(state, who, target, subject)
            except _Void as v:
                raise LocalProtocolError(v.code, v.reason) from None
            parties, bounty = set(st.parties), st.bounty
    first: set[bytes] = set()
    if appeal_of:
        orig = book.disputes.get(appeal_of)
        if orig is not None:
            first = set(orig.jurors)
    vouching = {k for k, a in state.accounts.items() if a.vouches & parties}
    for p in parties:
        acc = state.accounts.get(p)
        if acc is not None:
            vouching |= acc.vouches
    b = state.bounties.get(bounty)
    return _Draw(
        seed=jury_seed(target, subject, who),
        skills=b.skills if b is not None else (),
        parties=frozenset(parties),
        excluded=frozenset(parties | vouching | set(state.forks) | first),
    )


def _ranked(state: State, d: _Draw, trust: TrustView, n: int) -> list[bytes]:
    def order(acct: bytes, weight: int) -> tuple[int, bytes]:
        h = hashlib.sha256(JURY_DOMAIN + d.seed + acct).digest()
        return int.from_bytes(h, "big") // (weight + 1), acct

    if d.skills:
        pool: set[bytes] = set()
        for s in d.skills:
            pool.update(trust.skills.get(s, {}))
    else:
        pool = set(trust.overall)
    weights = {k: trust.skill_weight(k, d.skills) for k in pool if k not in d.excluded}
    eligible = sorted((order(k, w), k) for k, w in weights.items() if w > 0)
    out = [k for _, k in eligible[:n]]
    if len(out) < n:  # too few with trust: the genesis's trusted accounts fill the panel
        taken = set(out)
        fill = sorted(
            (order(k, trust.skill_weight(k, d.skills)), k)
            for k in set(state.genesis.trusted)
            if k not in d.excluded and k not in taken
        )
        out += [k for _, k in fill[: n - len(out)]]
    return out


def _trust_of(state: State, trust: TrustView | None) -> TrustView:
    if trust is not None:
        return trust
    from ._trust import jury_trust

    return jury_trust(state)


def draw_jury(
    state: State,
    dispute: Dispute | Mapping[str, Any],
    trust: TrustView | None = None,
    size: int = JURY_SIZE,
) -> list[bytes]:
    """The jury a dispute should have: at most `size` accounts, best first
    (fewer when too few are eligible; the caller then cannot file).

    `dispute` is a `Dispute` or a mapping with `target`, `subject`,
    `disputant` and `appeal_of` (b"" or the appealed dispute's id). Eligible:
    accounts with trust > 0 in the bounty's skills (overall trust if it has
    none), less the parties, accounts that vouch for a party or that a party
    vouches for, forked accounts and, for an appeal, the first jury. Ordered by
    `int(sha256("learnmesh/jury\\x00" || seed || account)) // (weight + 1)`;
    when short, the genesis's trusted accounts (not excluded) fill by the same
    order. `trust` defaults to `jury_trust(state)` (the trust view before
    dispute outcomes, which is what `panel_check` uses for outcomes)."""
    return _ranked(state, _draw_inputs(state, dispute), _trust_of(state, trust), size)


def panel_check(state: State, dispute: Dispute | bytes, trust: TrustView | None = None) -> bool:
    """Whether the dispute's named jurors are all among the first 2 x panel of
    the current draw (trust moves a little between filing and checking; the
    tolerance keeps an honest panel valid). A failing panel's outcome counts
    for nothing in the reputation and trust views. A juror that forked its
    chain since is left out of the check (its votes are void anyway): a juror
    must not be able to annul a dispute by forking."""
    d = state.disputes.disputes.get(dispute) if isinstance(dispute, bytes) else dispute
    if d is None:
        raise LocalProtocolError("unknown_dispute", "no such dispute")
    drawn = _ranked(state, _draw_inputs(state, d), _trust_of(state, trust), 2 * d.panel)
    return set(d.jurors) - state.forks.keys() <= set(drawn)


# -- outcomes (a view that the reputation view, and so the digest, includes) ------------------


@dataclass(frozen=True, slots=True)
class DisputeOutcomes:
    """What decided disputes change, as a function of the event set.

    `verdicts`: dispute id -> the strict majority's verdict, for panels that
    pass `panel_check` (under `jury_trust`); `unfair`: decided disputes whose
    panel failed it (ignored). `final`: first-round dispute id -> "upheld" or
    "rejected" after its appeals (an appeal's majority, else the first
    round's). The overturned sets and `upheld_submissions` follow from `final`;
    `points` is the change to each account's reputation points."""

    verdicts: dict[bytes, str] = field(default_factory=dict)
    unfair: frozenset[bytes] = frozenset()
    final: dict[bytes, str] = field(default_factory=dict)
    overturned_awards: frozenset[bytes] = frozenset()
    overturned_award_bounties: frozenset[bytes] = frozenset()
    overturned_refunds: frozenset[bytes] = frozenset()
    overturned_reviews: frozenset[bytes] = frozenset()
    upheld_submissions: frozenset[bytes] = frozenset()
    points: dict[bytes, int] = field(default_factory=dict)


_NONE = DisputeOutcomes()
_CACHE: weakref.WeakKeyDictionary[State, tuple[tuple[object, ...], DisputeOutcomes]] = (
    weakref.WeakKeyDictionary()
)


def _effect(book: DisputeBook, d: Dispute, verdict: str) -> str:
    """A verdict read as the first round's claim: "upheld" means the target is
    overturned. An appeal by the first round's respondent upholds the target."""
    if d.appeal_of:
        orig = book.disputes[d.appeal_of]
        if d.disputant != orig.disputant:
            verdict = "reject" if verdict == "uphold" else "uphold"
    return "upheld" if verdict == "uphold" else "rejected"


def dispute_outcomes(state: State) -> DisputeOutcomes:
    """Decided verdicts and what they change; deterministic, cached per state."""
    book = state.disputes
    decided = {did: v for did, d in book.disputes.items() if (v := book.majority(d)) is not None}
    if not decided:
        return _NONE
    key = (state.event_count, len(state.void), tuple(sorted(state.forks.items())))
    hit = _CACHE.get(state)
    if hit is not None and hit[0] == key:
        return hit[1]
    from ._trust import jury_trust

    trust = jury_trust(state)
    verdicts: dict[bytes, str] = {}
    unfair: set[bytes] = set()
    points: dict[bytes, int] = {}
    for did in sorted(decided):
        d = book.disputes[did]
        if not panel_check(state, d, trust):
            unfair.add(did)
            continue
        v = decided[did]
        verdicts[did] = v
        votes = book.verdicts(d)
        for j in d.jurors:
            delta = POINTS_JUROR if votes.get(j) == v else -POINTS_JUROR
            points[j] = points.get(j, 0) + delta
    final: dict[bytes, str] = {}
    for did in sorted(book.disputes):
        d = book.disputes[did]
        if d.appeal_of:
            continue
        effects = {
            _effect(book, a, verdicts[a.id]) for a in book.appeals_of(did) if a.id in verdicts
        }
        if len(effects) == 1:
            final[did] = effects.pop()
        elif did in verdicts:  # no decided appeal, or decided appeals that disagree
            final[did] = _effect(book, d, verdicts[did])
    awards: set[bytes] = set()
    award_bounties: set[bytes] = set()
    refunds: set[bytes] = set()
    reviews: set[bytes] = set()
    upheld: set[bytes] = set()
    for did, f in final.items():
        if f != "upheld":
            continue
        d = book.disputes[did]
        points[d.respondent] = points.get(d.respondent, 0) - POINTS_OVERTURNED
        if d.kind == "award":
            awards.add(d.target)
            award_bounties.add(d.bounty)
            upheld.add(d.subject)
        elif d.kind == "refund":
            refunds.add(d.target)
        else:
            reviews.add(d.target)
    out = DisputeOutcomes(
        verdicts=verdicts,
        unfair=frozenset(unfair),
        final=final,
        overturned_awards=frozenset(awards),
        overturned_award_bounties=frozenset(award_bounties),
        overturned_refunds=frozenset(refunds),
        overturned_reviews=frozenset(reviews),
        upheld_submissions=frozenset(upheld),
        points={k: p for k, p in sorted(points.items()) if p},
    )
    _CACHE[state] = (key, out)
    return out


# -- status (a view with a clock) -------------------------------------------------------------


@dataclass
class DisputeStatus:
    """Where one dispute stands at `now_ms` (a plain dataclass: `vars()` gives a dict)."""

    id: bytes
    kind: str
    target: bytes
    subject: bytes
    bounty: bytes
    disputant: bytes
    respondent: bytes
    parties: list[bytes]
    jurors: list[bytes]
    appeal_of: bytes
    vote_by: int
    reveal_by: int
    phase: str  # voting | revealing | upheld | rejected | undecided
    verdict: str | None  # the strict majority's, once there is one
    votes: dict[str, int]  # revealed verdicts counted
    committed: list[bytes]
    revealed: list[bytes]
    waiting: list[tuple[bytes, str]]  # (account, "commit" | "reveal" | "claim"), sorted
    bond: int
    escrow: int
    paid: list[tuple[bytes, int, bytes]]  # (account, amount, dispute_claim id), sorted
    panel_fair: bool
    appeals: list[bytes]
    final: str | None  # the first round's claim after appeals: upheld | rejected | None


def dispute_status(
    state: State, dispute: bytes, now_ms: int, trust: TrustView | None = None
) -> DisputeStatus:
    """The dispute's phase at `now_ms`, its votes, who must act next and the
    bond's movements. `final` is the whole appeal chain's outcome (as
    `dispute_outcomes`); `panel_fair` is `panel_check` under `trust`
    (default `jury_trust(state)`)."""
    book = state.disputes
    d = book.disputes.get(dispute)
    if d is None:
        raise LocalProtocolError("unknown_dispute", "no such dispute")
    verdicts = book.verdicts(d)
    majority = book.majority(d)
    if majority is not None:
        phase = "upheld" if majority == "uphold" else "rejected"
    elif now_ms <= d.vote_by:
        phase = "voting"
    elif now_ms <= d.reveal_by:
        phase = "revealing"
    else:
        phase = "undecided"
    waiting: list[tuple[bytes, str]] = []
    for j in d.jurors:
        if j not in d.commits and now_ms <= d.vote_by and majority is None:
            waiting.append((j, "commit"))
        elif j in d.commits and j not in d.reveals and now_ms <= d.reveal_by:
            waiting.append((j, "reveal"))
    if majority == "uphold" and d.disputant not in d.claims:
        waiting.append((d.disputant, "claim"))
    elif majority == "reject":
        waiting += [
            (j, "claim") for j, v in verdicts.items() if v == majority and j not in d.claims
        ]
    paid = []
    for acct, cid in d.claims.items():
        paid.append((acct, state.credits.get(cid, {}).get(acct, 0), cid))
    root = d.appeal_of or d.id
    return DisputeStatus(
        id=d.id,
        kind=d.kind,
        target=d.target,
        subject=d.subject,
        bounty=d.bounty,
        disputant=d.disputant,
        respondent=d.respondent,
        parties=list(d.parties),
        jurors=list(d.jurors),
        appeal_of=d.appeal_of,
        vote_by=d.vote_by,
        reveal_by=d.reveal_by,
        phase=phase,
        verdict=majority,
        votes={v: sum(1 for x in verdicts.values() if x == v) for v in VERDICTS},
        committed=sorted(d.commits),
        revealed=sorted(d.reveals),
        waiting=sorted(waiting),
        bond=d.bond,
        escrow=d.escrow,
        paid=sorted(paid),
        panel_fair=panel_check(state, d, trust),
        appeals=[a.id for a in book.appeals_of(d.id)],
        final=dispute_outcomes(state).final.get(root),
    )
