"""The state: a deterministic fold of the set of valid events.

Everything that decides what an event *does* lives here, in one table of
handlers (`_HANDLERS`), the way h11 keeps its state machine in `_state.py`.

An event reaches `State.apply` only after its prev and refs were applied. Its
effect is decided from its causal past alone (its author's chain and the events
it refs), so any arrival order gives the same state. An event that breaks a rule
is kept in its author's chain (so the chain continues) but has no effect: it is
*void*, with a reason a person can read. Events of an author who forked its
chain are void from the fork on, and so is anything that depends on them.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._disputes import DisputeBook
from ._encoding import canonical_pack
from ._event import Event
from ._genesis import Genesis
from ._kinds import required_refs
from ._learning import LearningBook
from ._moderation import FlagBook
from ._rules import _DryRunDone, _rule, _Void
from ._terms import TermsBook

__all__ = [
    "BOUNTY_PHASES",
    "FINAL_PHASES",
    "Bounty",
    "Review",
    "State",
    "Submission",
    "commitment_of",
    "content_hash",
]

BOUNTY_PHASES = ("open", "closed", "awarded", "refunded")
FINAL_PHASES = ("awarded", "refunded")
_MOD = 2**256


def content_hash(text: str, attachments: list[dict[str, Any]]) -> bytes:
    """Hash of a submission's content: its text and its attachment list."""
    return hashlib.sha256(
        b"learnmesh/content\x00" + canonical_pack({"text": text, "attachments": attachments})
    ).digest()


def commitment_of(bounty: bytes, learner: bytes, content: bytes, salt: bytes) -> bytes:
    """What a commit publishes. Binding the learner's key stops anyone from
    re-publishing another learner's commitment as their own."""
    return hashlib.sha256(b"learnmesh/commit\x00" + bounty + learner + content + salt).digest()


@dataclass(slots=True)
class Submission:
    id: bytes  # the reveal event
    bounty: bytes
    learner: bytes
    commit: bytes
    text: str
    attachments: list[dict[str, Any]]
    revealed_at: int
    reviews: list[bytes] = field(default_factory=list)
    awarded: int = 0


@dataclass(slots=True)
class Review:
    id: bytes
    bounty: bytes
    submission: bytes
    reviewer: bytes
    scores: tuple[int, ...]
    comment: str
    timestamp: int
    paid: int = 0


@dataclass(slots=True)
class Bounty:
    id: bytes
    author: bytes
    title: str
    description: str
    rubric: tuple[tuple[str, int], ...]
    skills: tuple[str, ...]
    reward: int
    reviewer_share_bp: int
    submit_by: int
    review_by: int
    quorum: int
    posted_at: int
    escrow: int
    phase: str = "open"
    commits: dict[bytes, bytes] = field(default_factory=dict)  # commit id -> learner
    accepted: tuple[bytes, ...] = ()
    close_id: bytes | None = None
    submissions: dict[bytes, Submission] = field(default_factory=dict)
    settled_by: bytes | None = None
    settled_at: int | None = None

    @property
    def max_score(self) -> int:
        return sum(m for _, m in self.rubric)


@dataclass(slots=True)
class _Commit:
    bounty: bytes
    learner: bytes
    commitment: bytes
    timestamp: int


@dataclass(slots=True)
class Account:
    balance: int = 0  # everything credited minus everything debited
    spendable: int = 0  # allocation + credits claimed on its own chain - debits
    claimed: set[bytes] = field(default_factory=set)
    points: int = 0
    reviewed: set[bytes] = field(default_factory=set)  # submission ids
    revealed: set[bytes] = field(default_factory=set)  # commit ids
    committed: set[bytes] = field(default_factory=set)  # bounty ids
    vouches: set[bytes] = field(default_factory=set)
    profile: dict[str, Any] | None = None
    events: int = 0
    void: int = 0


class State:
    """Balances, escrows, bounties, reviews, reputation points and forks."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.network = genesis.network_id
        self.params = genesis.params
        self.accounts: dict[bytes, Account] = {}
        for acct, amount in genesis.allocations:
            a = self.account(acct)
            a.balance = a.spendable = amount
        self.bounties: dict[bytes, Bounty] = {}
        self.commits: dict[bytes, _Commit] = {}
        self.reviews: dict[bytes, Review] = {}
        self.credits: dict[bytes, dict[bytes, int]] = {}  # event id -> account -> amount
        self.void: dict[bytes, tuple[str, str]] = {}  # event id -> (code, reason)
        self.forks: dict[bytes, int] = {}  # author -> lowest forked seq
        # The parts of the state that kinds defined in their own modules keep:
        # each book encodes itself for the snapshot (to_plain / from_plain).
        self.disputes = DisputeBook()
        self.moderation = FlagBook()
        self.learning = LearningBook()
        self.terms = TermsBook()
        self.event_count = 0
        self._dry = False
        self._set_acc = 0  # sum of all applied ids: an order-free digest of the set
        self._void_acc = 0

    # -- reading -------------------------------------------------------------

    def account(self, key: bytes) -> Account:
        a = self.accounts.get(key)
        if a is None:
            a = self.accounts[key] = Account()
        return a

    def balance(self, key: bytes) -> int:
        a = self.accounts.get(key)
        return a.balance if a else 0

    def find_submission(self, sid: bytes) -> tuple[Bounty, Submission] | None:
        """The bounty and submission of a reveal id, or None."""
        for b in self.bounties.values():
            sub = b.submissions.get(sid)
            if sub is not None:
                return b, sub
        return None

    def unclaimed_credits(self, key: bytes) -> list[tuple[bytes, int]]:
        """Credits paid to `key` that its chain has not claimed yet (oldest first
        is not knowable here; callers sort as they like)."""
        a = self.accounts.get(key)
        claimed = a.claimed if a else set()
        return [
            (cid, pays[key])
            for cid, pays in self.credits.items()
            if key in pays and cid not in claimed and cid not in self.void
        ]

    def total_supply(self) -> int:
        return (
            sum(a.balance for a in self.accounts.values())
            + sum(b.escrow for b in self.bounties.values())
            + self.disputes.escrow()  # dispute bonds still locked
        )

    def check_invariants(self) -> list[str]:
        """Problems found; an empty list means every invariant holds."""
        problems = []
        if self.total_supply() != self.genesis.total_supply:
            problems.append(
                f"supply {self.total_supply()} != genesis total {self.genesis.total_supply}"
            )
        for k, a in self.accounts.items():
            if a.balance < 0 or a.spendable < 0:
                problems.append(f"negative balance for {k.hex()[:12]}")
            if a.spendable > a.balance:
                problems.append(f"spendable above balance for {k.hex()[:12]}")
        for b in self.bounties.values():
            if b.escrow < 0 or b.escrow > b.reward:
                problems.append(f"escrow out of range on bounty {b.id.hex()[:12]}")
            if b.phase in FINAL_PHASES and b.escrow != 0:
                problems.append(f"settled bounty {b.id.hex()[:12]} still holds escrow")
        for d in self.disputes.disputes.values():
            if not 0 <= d.escrow <= d.bond:
                problems.append(f"bond out of range on dispute {d.id.hex()[:12]}")
        return problems

    # -- applying --------------------------------------------------------------

    def apply(self, ev: Event) -> tuple[str, str] | None:
        """Apply one event whose prev and refs were applied before. Returns None
        when it took effect, or (code, reason) when it is void."""
        self.event_count += 1
        self._set_acc = (self._set_acc + int.from_bytes(ev.id, "big")) % _MOD
        author = self.account(ev.author)
        author.events += 1
        try:
            self._run(ev, author)
        except _Void as v:
            self.void[ev.id] = (v.code, v.reason)
            self._void_acc = (self._void_acc + int.from_bytes(ev.id, "big")) % _MOD
            author.void += 1
            return (v.code, v.reason)
        return None

    def would_void(self, ev: Event) -> tuple[str, str] | None:
        """Dry run: the reason `ev` would be void, or None, changing nothing.
        Every handler checks all its rules before its first change and marks
        that point with `_checked()`, which stops a dry run there."""
        self._dry = True
        try:
            self._run(ev, self.accounts.get(ev.author) or Account())
        except _DryRunDone:
            return None
        except _Void as v:
            return (v.code, v.reason)
        finally:
            self._dry = False
        raise AssertionError(f"the {ev.kind.name} handler never called _checked()")

    def _checked(self) -> None:
        if self._dry:
            raise _DryRunDone

    def _run(self, ev: Event, author: Account) -> None:
        fork_seq = self.forks.get(ev.author)
        # Rules whose reason is formatted raise directly: _rule's arguments would
        # format the reason for every event, not only for a void one.
        if fork_seq is not None and ev.seq >= fork_seq:
            raise _Void("equivocation", f"the author forked its chain at seq {fork_seq}")
        # A void credit claimed by a spend counts as zero (see _spend); any
        # other void dependency voids this event too. The prev may be void:
        # the chain goes on through it.
        for r in required_refs(ev.kind.name, ev.body) if ev.kind.spends else ev.refs:
            if r in self.void:
                raise _Void("void_dependency", f"depends on void event {r.hex()[:12]}")
        _HANDLERS[ev.kind.name](self, ev, author)

    def _spend(self, ev: Event, author: Account, amount: int, what: str = "spends") -> None:
        """Debit the author, funding the spend from its own chain's balance plus
        the payments it claims in refs (each payment claimable once). The claims
        are the refs beyond the events the body names (a dispute names its
        target and subject; a bounty or a transfer names none)."""
        gain = 0
        seen: set[bytes] = set()
        named = required_refs(ev.kind.name, ev.body)
        for cid in ev.refs:
            if cid in named:
                continue
            _rule(
                cid not in author.claimed and cid not in seen,
                "double_claim",
                "a payment is claimed twice",
            )
            seen.add(cid)
            if cid in self.void:
                continue  # a payment voided by a fork is worth nothing
            pays = self.credits.get(cid)
            _rule(pays is not None, "bad_claim", "a claimed ref is not a payment")
            assert pays is not None
            _rule(ev.author in pays, "bad_claim", "a claimed payment does not pay the author")
            gain += pays[ev.author]
        if author.spendable + gain < amount:
            raise _Void(
                "insufficient_funds",
                f"{what} {amount} but only {author.spendable + gain} is available on its chain",
            )
        self._checked()
        author.claimed |= seen
        author.spendable += gain - amount
        author.balance -= amount

    def _bounty_of(self, bid: bytes) -> Bounty:
        b = self.bounties.get(bid)
        _rule(b is not None, "unknown_bounty", "the referenced bounty does not exist")
        assert b is not None
        return b

    # -- digest ------------------------------------------------------------------

    def digest_map(self) -> dict[str, Any]:
        from ._reputation import reputation_points

        return {
            "v": 1,
            "network": self.network,
            "events": self.event_count,
            "set": self._set_acc.to_bytes(32, "big"),
            "void": [len(self.void), self._void_acc.to_bytes(32, "big")],
            "balances": sorted(
                [k, a.balance, a.spendable]
                for k, a in self.accounts.items()
                if a.balance or a.spendable
            ),
            "bounties": sorted(
                [
                    b.id,
                    b.phase,
                    b.escrow,
                    len(b.commits),
                    len(b.submissions),
                    sum(len(s.reviews) for s in b.submissions.values()),
                ]
                for b in self.bounties.values()
            ),
            "reputation": sorted([k, p] for k, p in reputation_points(self).items() if p),
            "forks": sorted([k, s] for k, s in self.forks.items()),
        }

    def digest(self) -> bytes:
        """The state digest: equal on every node that holds the same events."""
        return hashlib.sha256(b"learnmesh/state\x00" + canonical_pack(self.digest_map())).digest()


# -- one handler per kind: the whole rulebook -------------------------------------------


def _profile(s: State, ev: Event, a: Account) -> None:
    s._checked()
    a.profile = dict(ev.body)


def _bounty(s: State, ev: Event, a: Account) -> None:
    b = ev.body
    _rule(b["submit_by"] > ev.timestamp, "deadline", "the submission deadline is before the post")
    if b["quorum"] < s.params.min_quorum:
        raise _Void("quorum", f"quorum is below the network's {s.params.min_quorum}")
    s._spend(ev, a, b["reward"])
    s.bounties[ev.id] = Bounty(
        id=ev.id,
        author=ev.author,
        title=b["title"],
        description=b["description"],
        rubric=tuple((c["name"], c["max"]) for c in b["rubric"]),
        skills=tuple(b["skills"]),
        reward=b["reward"],
        reviewer_share_bp=b["reviewer_share_bp"],
        submit_by=b["submit_by"],
        review_by=b["review_by"],
        quorum=b["quorum"],
        posted_at=ev.timestamp,
        escrow=b["reward"],
    )


def _commit(s: State, ev: Event, a: Account) -> None:
    bounty = s._bounty_of(ev.body["bounty"])
    _rule(ev.author != bounty.author, "own_bounty", "a mentor cannot submit to its own bounty")
    _rule(ev.timestamp <= bounty.submit_by, "late", "the commit is after the submission deadline")
    _rule(
        bounty.id not in a.committed,
        "duplicate_commit",
        "the learner already committed to this bounty",
    )
    s._checked()
    a.committed.add(bounty.id)
    s.commits[ev.id] = _Commit(bounty.id, ev.author, ev.body["commitment"], ev.timestamp)
    bounty.commits[ev.id] = ev.author


def _close(s: State, ev: Event, a: Account) -> None:
    bounty = s._bounty_of(ev.body["bounty"])
    _rule(ev.author == bounty.author, "not_mentor", "only the bounty's author closes it")
    if bounty.phase != "open":
        raise _Void("phase", f"the bounty is already {bounty.phase}")
    for cid in ev.body["accepted"]:
        c = s.commits.get(cid)
        _rule(
            c is not None and c.bounty == bounty.id,
            "bad_commit",
            "an accepted ref is not a commit to this bounty",
        )
    s._checked()
    bounty.phase = "closed"
    bounty.accepted = tuple(ev.body["accepted"])
    bounty.close_id = ev.id


def _reveal(s: State, ev: Event, a: Account) -> None:
    body = ev.body
    c = s.commits.get(body["commit"])
    _rule(c is not None, "bad_commit", "the revealed commit does not exist")
    assert c is not None
    bounty = s._bounty_of(c.bounty)
    _rule(body["bounty"] == bounty.id, "bad_commit", "the commit belongs to another bounty")
    _rule(c.learner == ev.author, "not_learner", "only the learner who committed reveals")
    _rule(bounty.close_id == body["close"], "bad_close", "the close ref is not this bounty's close")
    _rule(
        body["commit"] in bounty.accepted,
        "not_accepted",
        "the mentor's close did not accept this commit",
    )
    _rule(body["commit"] not in a.revealed, "duplicate_reveal", "this commit was already revealed")
    _rule(ev.timestamp <= bounty.review_by, "late", "the reveal is after the review deadline")
    digest = content_hash(body["text"], body["attachments"])
    _rule(
        commitment_of(bounty.id, ev.author, digest, body["salt"]) == c.commitment,
        "commitment_mismatch",
        "the revealed content does not match the commitment",
    )
    s._checked()
    a.revealed.add(body["commit"])
    bounty.submissions[ev.id] = Submission(
        id=ev.id,
        bounty=bounty.id,
        learner=ev.author,
        commit=body["commit"],
        text=body["text"],
        attachments=list(body["attachments"]),
        revealed_at=ev.timestamp,
    )


def _submission(s: State, bounty_id: bytes, sid: bytes) -> tuple[Bounty, Submission]:
    bounty = s._bounty_of(bounty_id)
    sub = bounty.submissions.get(sid)
    _rule(sub is not None, "bad_submission", "the submission is not a reveal for this bounty")
    assert sub is not None
    return bounty, sub


def _review(s: State, ev: Event, a: Account) -> None:
    body = ev.body
    # body["bounty"] is not a ref, so whether that bounty is known yet depends on
    # arrival order: only ask whether the submission belongs to it (one void code).
    bounty = s.bounties.get(body["bounty"])
    sub = bounty.submissions.get(body["submission"]) if bounty else None
    _rule(sub is not None, "bad_submission", "the submission is not a reveal for this bounty")
    assert bounty is not None and sub is not None
    _rule(ev.author != sub.learner, "self_review", "a learner cannot review its own submission")
    _rule(ev.author != bounty.author, "mentor_review", "the mentor awards; it does not review")
    _rule(ev.timestamp <= bounty.review_by, "late", "the review is after the review deadline")
    _rule(
        sub.id not in a.reviewed,
        "duplicate_review",
        "this reviewer already reviewed the submission",
    )
    scores = tuple(body["scores"])
    _rule(
        len(scores) == len(bounty.rubric), "bad_scores", "one score per rubric criterion is needed"
    )
    for sc, (name, mx) in zip(scores, bounty.rubric, strict=True):
        if sc > mx:
            raise _Void("bad_scores", f"score {sc} for {name!r} is over its maximum {mx}")
    s._checked()
    a.reviewed.add(sub.id)
    r = Review(ev.id, bounty.id, sub.id, ev.author, scores, body["comment"], ev.timestamp)
    s.reviews[ev.id] = r
    sub.reviews.append(ev.id)


def _settle_check(bounty: Bounty, ev: Event) -> None:
    _rule(ev.author == bounty.author, "not_mentor", "only the bounty's author settles it")
    if bounty.phase in FINAL_PHASES:
        raise _Void("settled", f"the bounty was already {bounty.phase}")


def _award(s: State, ev: Event, a: Account) -> None:
    body = ev.body
    bounty = s._bounty_of(body["bounty"])
    _settle_check(bounty, ev)
    pays: dict[bytes, int] = {}
    winners = []
    for w in body["winners"]:
        _, sub = _submission(s, bounty.id, w["submission"])
        winners.append((sub, w["amount"]))
    reviews = []
    for r in body["reviewers"]:
        rv = s.reviews.get(r["review"])
        _rule(
            rv is not None and rv.bounty == bounty.id,
            "bad_review",
            "a paid review is not a review of this bounty",
        )
        assert rv is not None
        reviews.append((rv, r["amount"]))
    to_reviewers = sum(n for _, n in reviews)
    total = sum(n for _, n in winners) + to_reviewers
    if total > bounty.escrow:
        raise _Void("over_escrow", f"pays {total} but the escrow holds {bounty.escrow}")
    share = bounty.reward * bounty.reviewer_share_bp // 10000
    if to_reviewers > share:
        raise _Void("over_share", f"pays reviewers {to_reviewers}, over their share {share}")
    s._checked()
    for sub, n in winners:
        sub.awarded += n
        pays[sub.learner] = pays.get(sub.learner, 0) + n
        s.account(sub.learner).points += s.params.points_awarded_work
    for rv, n in reviews:
        rv.paid += n
        pays[rv.reviewer] = pays.get(rv.reviewer, 0) + n
    for acct, n in pays.items():
        s.account(acct).balance += n
    if pays:
        s.credits[ev.id] = pays
    rest = bounty.escrow - total
    a.balance += rest
    a.spendable += rest
    a.points += s.params.points_settled_bounty
    bounty.escrow = 0
    bounty.phase = "awarded"
    bounty.settled_by, bounty.settled_at = ev.id, ev.timestamp


def _refund(s: State, ev: Event, a: Account) -> None:
    bounty = s._bounty_of(ev.body["bounty"])
    _settle_check(bounty, ev)
    s._checked()
    a.balance += bounty.escrow
    a.spendable += bounty.escrow
    bounty.escrow = 0
    bounty.phase = "refunded"
    bounty.settled_by, bounty.settled_at = ev.id, ev.timestamp


def _transfer(s: State, ev: Event, a: Account) -> None:
    amount = ev.body["amount"]
    s._spend(ev, a, amount)
    s.account(ev.body["to"]).balance += amount
    s.credits[ev.id] = {ev.body["to"]: amount}


def _vouch(s: State, ev: Event, a: Account) -> None:
    s._checked()
    a.vouches.add(ev.body["account"])


def _credential(s: State, ev: Event, a: Account) -> None:
    s._checked()  # no effect: the signed credential is a blob the event names


_Handler = Callable[[State, Event, Account], None]
_HANDLERS: dict[str, _Handler] = {
    "profile": _profile,
    "bounty": _bounty,
    "commit": _commit,
    "close": _close,
    "reveal": _reveal,
    "review": _review,
    "award": _award,
    "refund": _refund,
    "transfer": _transfer,
    "vouch": _vouch,
    "credential": _credential,
}


def _extra_handlers() -> None:
    """Handlers of the kinds defined in their own modules (see protocol/_kinds.py):
    each module exports HANDLERS, a map from kind name to handler."""
    for mod in ("._disputes", "._moderation", "._learning", "._terms"):
        _HANDLERS.update(importlib.import_module(mod, __package__).HANDLERS)


_extra_handlers()
