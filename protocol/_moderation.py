"""Rules (fold handlers) for moderation (flags), and the hidden view.

Schemas are in protocol/_kinds_moderation.py. PROTOCOL.md "Flags" says the same.

A `flag` is a signed statement "this event (or this account) is spam / abuse /
plagiarism / other". The fold only records it, under rules that look at the
flag's causal past alone:

- `self_flag`: an author cannot flag itself (nor its own events);
- `wrong_account`: a flag of an event names that event's author as `account`;
- `bad_target`: a flag by id targets a bounty, a submission (reveal) or a review
  (or an event of a kind whose book says who wrote it, see `_author_of`); flag
  the account for anything else;
- `duplicate_flag`: one flag per (flagger, target, account).

Whether a flag *hides* anything depends on trust, which is a function of the
whole event set, so hiding is a view (`hidden`), never a rule: a flagged event
is still valid, still moves money, still counts in the digest. Hidden when the
distinct flaggers together hold at least `HIDE_TRUST_PPM` of all trust, or when
at least `HIDE_MIN_FLAGGERS` distinct flaggers with positive trust agree. A
forked flagger counts for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._kinds_moderation import FLAG_CATEGORIES, MAX_FLAG_NOTE
from ._rules import _rule

if TYPE_CHECKING:
    from ._event import Event
    from ._state import Account, State
    from ._trust import TrustView

__all__ = [
    "HANDLERS",
    "HIDE_MIN_FLAGGERS",
    "HIDE_TRUST_PPM",
    "Flag",
    "FlagBook",
    "FlagVote",
    "Hidden",
    "HiddenItem",
    "hidden",
]

HIDE_TRUST_PPM = 20_000  # flaggers holding 2% of all (overall) trust hide an item
HIDE_MIN_FLAGGERS = 3  # or this many distinct flaggers with positive trust
_PPM = 1_000_000


@dataclass(frozen=True, slots=True)
class Flag:
    id: bytes
    flagger: bytes
    target: bytes  # the flagged event, b"" for a flag of the account as a whole
    account: bytes  # the flagged author
    category: str
    note: str
    timestamp: int

    @property
    def subject(self) -> bytes:
        """What the flag is about: the event, or the account for an account flag."""
        return self.target or self.account


@dataclass(slots=True)
class FlagBook:
    """Every valid flag, by flag id; `keys` (derived) stops a second flag by the
    same flagger of the same thing."""

    flags: dict[bytes, Flag] = field(default_factory=dict)
    keys: set[tuple[bytes, bytes, bytes]] = field(default_factory=set)

    def add(self, f: Flag) -> None:
        self.flags[f.id] = f
        self.keys.add((f.flagger, f.target, f.account))

    def to_plain(self) -> Any:
        """This book as plain data (msgpack types only) for the state snapshot."""
        return [
            [f.id, f.flagger, f.target, f.account, f.category, f.note, f.timestamp]
            for f in sorted(self.flags.values(), key=lambda f: f.id)
        ]

    @classmethod
    def from_plain(cls, data: Any) -> FlagBook:
        """The book `to_plain` described; raise ValueError for anything else."""
        if not isinstance(data, list):
            raise ValueError("FlagBook data is not a list")
        book = cls()
        last = b""
        for row in data:
            if not isinstance(row, list) or len(row) != 7:
                raise ValueError("a FlagBook row is a list of 7 fields")
            fid, flagger, target, account, category, note, ts = row
            ok = (
                isinstance(fid, bytes)
                and len(fid) == 32
                and fid > last
                and isinstance(flagger, bytes)
                and len(flagger) == 32
                and isinstance(target, bytes)
                and len(target) in (0, 32)
                and isinstance(account, bytes)
                and len(account) == 32
                and category in FLAG_CATEGORIES
                and isinstance(note, str)
                and len(note) <= MAX_FLAG_NOTE
                and isinstance(ts, int)
                and not isinstance(ts, bool)
                and ts >= 0
            )
            if not ok:
                raise ValueError("malformed FlagBook row")
            f = Flag(fid, flagger, target, account, category, note, ts)
            if (f.flagger, f.target, f.account) in book.keys:
                raise ValueError("two flags by one flagger of one thing")
            book.add(f)
            last = fid
        return book


def _author_of(s: State, eid: bytes) -> bytes | None:
    """The author of a flaggable event: a bounty, a submission (reveal), a review,
    or an event a feature book knows the author of (a book may define
    `author_of(event_id) -> bytes | None`). The target is in the flag's refs, so
    this is decided by the flag's causal past."""
    b = s.bounties.get(eid)
    if b is not None:
        return b.author
    r = s.reviews.get(eid)
    if r is not None:
        return r.reviewer
    found = s.find_submission(eid)
    if found is not None:
        return found[1].learner
    for book in (s.learning, s.disputes, s.terms):
        fn: Callable[[bytes], bytes | None] | None = getattr(book, "author_of", None)
        if fn is not None:
            who = fn(eid)
            if who is not None:
                return who
    return None


def _flag(s: State, ev: Event, a: Account) -> None:
    body = ev.body
    target: bytes = body["target"]
    account: bytes = body["account"]
    _rule(account != ev.author, "self_flag", "an author cannot flag itself or its own events")
    if target:
        author = _author_of(s, target)
        _rule(
            author is not None,
            "bad_target",
            "only a bounty, a submission or a review can be flagged by id; "
            "flag the account for anything else",
        )
        _rule(
            author == account,
            "wrong_account",
            "the flagged account is not the author of the flagged event",
        )
    _rule(
        (ev.author, target, account) not in s.moderation.keys,
        "duplicate_flag",
        "this author already flagged this " + ("event" if target else "account"),
    )
    s._checked()
    s.moderation.add(
        Flag(ev.id, ev.author, target, account, body["category"], body["note"], ev.timestamp)
    )


HANDLERS: dict[str, Callable[[State, Event, Account], None]] = {"flag": _flag}


# -- the hidden view ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlagVote:
    """One flag behind a flagged item, with its flagger's trust in the view."""

    flag: bytes
    flagger: bytes
    category: str
    note: str
    trust: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class HiddenItem:
    """Everything flagged about one subject (an event id, or an account for
    account flags), and whether it is hidden."""

    subject: bytes
    kind: str  # "event" | "account"
    account: bytes  # the flagged author
    flags: tuple[FlagVote, ...]  # one per distinct flagger, by flagger
    trust: int  # the flaggers' trust together
    ppm: int  # that trust in parts per million of all trust
    trusted_flaggers: int  # flaggers with positive trust
    hidden: bool
    why: str

    @property
    def categories(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.flags:
            out[v.category] = out.get(v.category, 0) + 1
        return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True)
class Hidden:
    """The hidden view: hidden events and accounts (an event whose author is a
    hidden account is hidden too: see `of`), and the flagged items below the
    threshold (`below`), each with the flags and trust behind it."""

    events: dict[bytes, HiddenItem]
    accounts: dict[bytes, HiddenItem]
    below: dict[bytes, HiddenItem]
    total_trust: int

    def of(self, event_id: bytes | None, author: bytes | None) -> HiddenItem | None:
        """Why an event (or, with no id, an author's content) is hidden, or None."""
        if event_id is not None:
            item = self.events.get(event_id)
            if item is not None:
                return item
        return self.accounts.get(author) if author is not None else None

    @property
    def event_ids(self) -> frozenset[bytes]:
        return frozenset(self.events)

    @property
    def account_keys(self) -> frozenset[bytes]:
        return frozenset(self.accounts)


def _judge(
    subject: bytes, kind: str, account: bytes, flags: list[Flag], view: TrustView, total: int
) -> HiddenItem:
    votes = tuple(
        FlagVote(f.id, f.flagger, f.category, f.note, view.overall.get(f.flagger, 0), f.timestamp)
        for f in sorted(flags, key=lambda f: f.flagger)
    )
    trust = sum(v.trust for v in votes)
    ppm = trust * _PPM // total if total else 0
    trusted = sum(1 for v in votes if v.trust > 0)
    by_trust = trust > 0 and trust * _PPM >= HIDE_TRUST_PPM * total
    by_count = trusted >= HIDE_MIN_FLAGGERS
    n = len(votes)
    who = f"{n} flagger{'s' if n != 1 else ''}"
    if by_trust:
        why = (
            f"{who} holding {ppm / 10_000:.2f}% of all trust flagged it "
            f"(hidden from {HIDE_TRUST_PPM / 10_000:g}%)"
        )
    elif by_count:
        why = f"{trusted} flaggers with trust flagged it (hidden from {HIDE_MIN_FLAGGERS})"
    else:
        why = (
            f"{who} holding {ppm / 10_000:.2f}% of all trust, {trusted} with trust "
            f"(hidden from {HIDE_TRUST_PPM / 10_000:g}% or {HIDE_MIN_FLAGGERS} flaggers)"
        )
    return HiddenItem(subject, kind, account, votes, trust, ppm, trusted, by_trust or by_count, why)


def hidden(state: State, view: TrustView) -> Hidden:
    """What the community's flags hide, as a deterministic function of the state
    and its trust view (use the clock-free `trust_view(state)` to compare nodes).
    Never part of the state digest: a node shows or greys out; it never voids."""
    total = sum(view.overall.values())
    groups: dict[tuple[bytes, bytes], list[Flag]] = {}
    for f in state.moderation.flags.values():
        if f.flagger in state.forks:
            continue  # a forked flagger's word counts for nothing
        groups.setdefault((f.subject, f.account), []).append(f)
    events: dict[bytes, HiddenItem] = {}
    accounts: dict[bytes, HiddenItem] = {}
    below: dict[bytes, HiddenItem] = {}
    for (subject, account), flags in sorted(groups.items()):
        kind = "event" if flags[0].target else "account"
        item = _judge(subject, kind, account, flags, view, total)
        if not item.hidden:
            below[subject] = item
        elif kind == "account":
            accounts[subject] = item
        else:
            events[subject] = item
    return Hidden(events, accounts, below, total)
