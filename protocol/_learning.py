"""Rules (fold handlers) and views for learning together: discussion and
suggested resources.

Schemas are in protocol/_kinds_learning.py. Comments and resources move no
money and no reputation: the fold only indexes them (`State.learning`, a
`LearningBook`), so a thread or a skill's resources is a lookup. Views:

- `thread(state, target)`: the comments under one event, as a tree;
- `comments_for_bounty(state, bounty)`: every thread under a bounty (on it,
  its submissions, their reviews and its resources), as a forest;
- `resources_for(state, skill, bounty, trust_view)`: suggestions grouped by
  (skill, url), ranked by the suggesters' trust in the skill.

Every order here is by (timestamp, id) or by a score with that tie-break, so
every node shows the same threads and rankings from the same events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._rules import _rule

if TYPE_CHECKING:
    from ._event import Event
    from ._state import Account, State
    from ._trust import TrustView

__all__ = [
    "HANDLERS",
    "CommentRecord",
    "LearningBook",
    "RankedResource",
    "ResourceRecord",
    "ThreadNode",
    "comments_for_bounty",
    "resources_for",
    "target_kind",
    "thread",
]


@dataclass(frozen=True, slots=True)
class CommentRecord:
    id: bytes
    target: bytes
    root: bytes | None  # the bounty the thread is under, or None (a loose resource's)
    author: bytes
    text: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    id: bytes
    author: bytes
    bounty: bytes | None
    skill: str
    title: str
    url: str
    kind: str
    licence: str
    timestamp: int


def _order(rec: CommentRecord | ResourceRecord) -> tuple[int, bytes]:
    return (rec.timestamp, rec.id)


@dataclass(slots=True)
class LearningBook:
    """Comments and suggested resources, by id; the other maps are indexes
    rebuilt from those two (never stored in the snapshot)."""

    comments: dict[bytes, CommentRecord] = field(default_factory=dict)
    resources: dict[bytes, ResourceRecord] = field(default_factory=dict)
    replies: dict[bytes, set[bytes]] = field(default_factory=dict)  # target -> comment ids
    by_root: dict[bytes, set[bytes]] = field(default_factory=dict)  # bounty -> comment ids
    by_skill: dict[str, set[bytes]] = field(default_factory=dict)  # skill -> resource ids
    by_bounty: dict[bytes, set[bytes]] = field(default_factory=dict)  # bounty -> resource ids

    def add_comment(self, c: CommentRecord) -> None:
        self.comments[c.id] = c
        self.replies.setdefault(c.target, set()).add(c.id)
        if c.root is not None:
            self.by_root.setdefault(c.root, set()).add(c.id)

    def add_resource(self, r: ResourceRecord) -> None:
        self.resources[r.id] = r
        self.by_skill.setdefault(r.skill, set()).add(r.id)
        if r.bounty is not None:
            self.by_bounty.setdefault(r.bounty, set()).add(r.id)

    def to_plain(self) -> Any:
        """This book as plain data (msgpack types only) for the state snapshot:
        rows sorted by id, b"" for "no bounty"."""
        return {
            "comments": [
                [c.id, c.target, c.root or b"", c.author, c.text, c.timestamp]
                for c in sorted(self.comments.values(), key=lambda c: c.id)
            ],
            "resources": [
                [
                    r.id,
                    r.author,
                    r.bounty or b"",
                    r.skill,
                    r.title,
                    r.url,
                    r.kind,
                    r.licence,
                    r.timestamp,
                ]
                for r in sorted(self.resources.values(), key=lambda r: r.id)
            ],
        }

    @classmethod
    def from_plain(cls, data: Any) -> LearningBook:
        """The book `to_plain` described; raise ValueError for anything else."""
        if not isinstance(data, dict) or set(data) != {"comments", "resources"}:
            raise ValueError("LearningBook: expected a map of comments and resources")
        book = cls()
        rows = data["comments"]
        if not isinstance(rows, list):
            raise ValueError("LearningBook: comments must be a list")
        for row in rows:
            if not isinstance(row, list) or len(row) != 6:
                raise ValueError("LearningBook: a comment row has 6 fields")
            cid, target, root, author, text, ts = row
            for v in (cid, target, author):
                _id(v)
            if root != b"":
                _id(root)
            if not isinstance(text, str) or not _is_int(ts) or cid in book.comments:
                raise ValueError("LearningBook: a malformed or repeated comment row")
            book.add_comment(CommentRecord(cid, target, root or None, author, text, ts))
        rows = data["resources"]
        if not isinstance(rows, list):
            raise ValueError("LearningBook: resources must be a list")
        for row in rows:
            if not isinstance(row, list) or len(row) != 9:
                raise ValueError("LearningBook: a resource row has 9 fields")
            rid, author, bounty, skill, title, url, kind, licence, ts = row
            _id(rid)
            _id(author)
            if bounty != b"":
                _id(bounty)
            if (
                not all(isinstance(s, str) for s in (skill, title, url, kind, licence))
                or not _is_int(ts)
                or rid in book.resources
            ):
                raise ValueError("LearningBook: a malformed or repeated resource row")
            book.add_resource(
                ResourceRecord(rid, author, bounty or None, skill, title, url, kind, licence, ts)
            )
        return book


def _id(v: Any) -> None:
    if not isinstance(v, bytes) or len(v) != 32:
        raise ValueError("LearningBook: an id is 32 bytes")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# -- rules ----------------------------------------------------------------------------


def target_kind(s: State, target: bytes) -> tuple[str, bytes | None] | None:
    """What an applied, effective event id is for a comment: its kind among
    bounty, reveal, review, comment and resource, and the bounty its thread is
    under (None for a resource suggested for no bounty); None otherwise."""
    if target in s.bounties:
        return "bounty", target
    book = s.learning
    c = book.comments.get(target)
    if c is not None:
        return "comment", c.root
    rv = s.reviews.get(target)
    if rv is not None:
        return "review", rv.bounty
    r = book.resources.get(target)
    if r is not None:
        return "resource", r.bounty
    found = s.find_submission(target)
    if found is not None:
        return "reveal", found[0].id
    return None


def _comment(s: State, ev: Event, a: Account) -> None:
    target = ev.body["target"]
    found = target_kind(s, target)
    _rule(
        found is not None,
        "bad_target",
        "a comment is on a bounty, a submission, a review, a comment or a resource",
    )
    assert found is not None
    s._checked()
    s.learning.add_comment(
        CommentRecord(ev.id, target, found[1], ev.author, ev.body["text"], ev.timestamp)
    )


def _resource(s: State, ev: Event, a: Account) -> None:
    b = ev.body
    bounty = b["bounty"] or None
    if bounty is not None:
        _rule(bounty in s.bounties, "unknown_bounty", "the referenced bounty does not exist")
    s._checked()
    s.learning.add_resource(
        ResourceRecord(
            ev.id,
            ev.author,
            bounty,
            b["skill"],
            b["title"],
            b["url"],
            b["kind"],
            b["licence"],
            ev.timestamp,
        )
    )


HANDLERS: dict[str, Callable[[State, Event, Account], None]] = {
    "comment": _comment,
    "resource": _resource,
}


# -- views ----------------------------------------------------------------------------


@dataclass(slots=True)
class ThreadNode:
    comment: CommentRecord
    replies: list[ThreadNode] = field(default_factory=list)

    def walk(self) -> list[tuple[int, CommentRecord]]:
        """(depth, comment) of this node and everything under it, in reading
        order (each comment before its replies), without recursion."""
        out: list[tuple[int, CommentRecord]] = []
        stack: list[tuple[int, ThreadNode]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            out.append((depth, node.comment))
            stack.extend((depth + 1, r) for r in reversed(node.replies))
        return out


def _tree(book: LearningBook, target: bytes) -> list[ThreadNode]:
    """The comments on `target` and their replies, each level by (time, id);
    built without recursion (a reply chain may be long)."""
    top = [ThreadNode(book.comments[i]) for i in book.replies.get(target, ())]
    top.sort(key=lambda n: _order(n.comment))
    stack = list(top)
    while stack:
        node = stack.pop()
        kids = [ThreadNode(book.comments[i]) for i in book.replies.get(node.comment.id, ())]
        kids.sort(key=lambda n: _order(n.comment))
        node.replies = kids
        stack.extend(kids)
    return top


def thread(state: State, target: bytes) -> list[ThreadNode]:
    """The comments on one event (any kind a comment may name) and every reply
    under them, as a tree; oldest first at every level."""
    return _tree(state.learning, target)


def comments_for_bounty(state: State, bounty: bytes) -> list[ThreadNode]:
    """Every thread under a bounty: the comments on the bounty itself, on its
    submissions, on their reviews and on resources suggested for it, each with
    its replies; the top comments ordered by (time, id)."""
    book = state.learning
    ids = book.by_root.get(bounty, set())
    tops = sorted(
        (book.comments[i] for i in ids if book.comments[i].target not in book.comments),
        key=_order,
    )
    out = []
    for c in tops:
        node = ThreadNode(c)
        node.replies = _tree(book, c.id)
        out.append(node)
    return out


@dataclass(frozen=True, slots=True)
class RankedResource:
    """One resource (a url for a skill) and everyone who suggested it."""

    first: ResourceRecord  # the earliest suggestion: its title, kind and licence are shown
    suggestions: tuple[ResourceRecord, ...]  # by (time, id)
    score: int  # the sum of the distinct suggesters' trust in the skill

    @property
    def suggesters(self) -> tuple[bytes, ...]:
        seen: dict[bytes, None] = {}
        for r in self.suggestions:
            seen.setdefault(r.author, None)
        return tuple(seen)


def resources_for(
    state: State,
    skill: str | None = None,
    bounty: bytes | None = None,
    trust_view: TrustView | None = None,
) -> list[RankedResource]:
    """Suggested resources for a skill and/or a bounty (both filters apply
    when both are given; neither: every resource). Suggestions of one url for
    one skill are one entry. Ranked by the sum of the distinct suggesters'
    trust in the skill (zero without a trust view), then by how many
    suggested it, then oldest first, then by id."""
    book = state.learning
    if skill is not None and bounty is not None:
        ids = book.by_skill.get(skill, set()) & book.by_bounty.get(bounty, set())
    elif skill is not None:
        ids = book.by_skill.get(skill, set())
    elif bounty is not None:
        ids = book.by_bounty.get(bounty, set())
    else:
        ids = set(book.resources)
    groups: dict[tuple[str, str], list[ResourceRecord]] = {}
    for i in ids:
        r = book.resources[i]
        groups.setdefault((r.skill, r.url), []).append(r)
    out = []
    for (sk, _url), recs in groups.items():
        recs.sort(key=_order)
        authors = {r.author for r in recs}
        score = sum(trust_view.score(a, sk) for a in authors) if trust_view is not None else 0
        out.append(RankedResource(recs[0], tuple(recs), score))
    out.sort(key=lambda g: (-g.score, -len(g.suggesters), g.first.timestamp, g.first.id))
    return out
