"""Snapshots of the derived state, so a restart does not replay every event.

A snapshot is plain data in canonical msgpack (a format whose loading runs no
code), in one file:

    MAGIC | u32 header length | header | body | sha256 of everything before it

The header is {"v": SNAPSHOT_VERSION, "network", "applied", "rejected"}: the
replica after applied events 1..applied and kept rejects 1..rejected, without
pending events (those are read again from their table). The body holds what
the fold decided (accounts, bounties, commits, reviews, credits, void, forks,
fork proofs) and the few slot claims that differ from the applied events. What
the events table already says is not stored but rebuilt: the applied ids in
order, their (author, seq), the heads, the event count and the digest sums.

`SNAPSHOT_VERSION` is bumped by hand whenever this encoding or the meaning of
the state changes (a rule that folds an event differently). A snapshot of
another version, another network, with a bad checksum or anything else wrong
is ignored with a log line: the ledger then replays every event. So is one
whose id sums do not match the database's tables (a snapshot copied from
another ledger of the same network), and every snapshot while the protocol's
objects have fields this module does not know (`shape_problems`; a test fails
first, asking for the field to be handled and the version bumped).

Replica and State offer no public way to export or set their bookkeeping, so
this module reads and sets `Replica._slot`, `Replica._by_slot`,
`State._set_acc` and `State._void_acc`, and builds protocol's `Account` and
`_Commit` records: all of it here, all of it covered by `shape_problems`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import struct
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learnmesh.protocol import (
    Bounty,
    EquivocationProof,
    Genesis,
    ProtocolError,
    Replica,
    Review,
    Submission,
    canonical_pack,
    strict_unpack,
)

# Not exported by protocol: the record types of two State fields. Named here
# only, and checked by `shape_problems` with every other field this reads.
from learnmesh.protocol._state import Account, _Commit

__all__ = [
    "SNAPSHOT_VERSION",
    "Snapshot",
    "SnapshotError",
    "from_plain",
    "read_snapshot",
    "shape_problems",
    "to_plain",
    "write_snapshot",
]

log = logging.getLogger(__name__)

SNAPSHOT_VERSION = 2
MAGIC = b"learnmesh-state-snapshot\n"
_MAX_BYTES = 1 << 31
_MOD = 2**256

# Every attribute of the objects a snapshot carries, as this module reads and
# writes them. A protocol change that adds, renames or drops one makes
# `shape_problems` non-empty: snapshots are then neither written nor read
# (full replay) until this module handles it and SNAPSHOT_VERSION is bumped.
_REPLICA_ATTRS = frozenset(
    {
        "genesis",
        "network",
        "max_event_bytes",
        "state",
        "raw",
        "_slot",
        "_by_slot",
        "heads",
        "pending",
        "_missing",
        "_waiters",
        "proofs",
        "rejected",
    }
)
_STATE_ATTRS = frozenset(
    {
        "genesis",
        "network",
        "params",
        "accounts",
        "bounties",
        "commits",
        "reviews",
        "credits",
        "void",
        "forks",
        "disputes",
        "moderation",
        "learning",
        "terms",
        "event_count",
        "_dry",
        "_set_acc",
        "_void_acc",
    }
)
# State attributes that are "books" kept by kinds defined in their own protocol
# modules: each encodes itself (`to_plain`, `from_plain`), so this module does not
# need to know their fields; their module owns that encoding.
_BOOKS = ("disputes", "moderation", "learning", "terms")
_FIELDS: dict[type, tuple[str, ...]] = {
    Account: (
        "balance",
        "spendable",
        "claimed",
        "points",
        "reviewed",
        "revealed",
        "committed",
        "vouches",
        "profile",
        "events",
        "void",
    ),
    Bounty: (
        "id",
        "author",
        "title",
        "description",
        "rubric",
        "skills",
        "reward",
        "reviewer_share_bp",
        "submit_by",
        "review_by",
        "quorum",
        "posted_at",
        "escrow",
        "phase",
        "commits",
        "accepted",
        "close_id",
        "submissions",
        "settled_by",
        "settled_at",
    ),
    Submission: (
        "id",
        "bounty",
        "learner",
        "commit",
        "text",
        "attachments",
        "revealed_at",
        "reviews",
        "awarded",
    ),
    Review: ("id", "bounty", "submission", "reviewer", "scores", "comment", "timestamp", "paid"),
    _Commit: ("bounty", "learner", "commitment", "timestamp"),
}


class SnapshotError(ValueError):
    """A snapshot cannot be used (the reason is logged; the ledger replays)."""


def shape_problems(replica: Replica) -> list[str]:
    """How the protocol's objects differ from what this module encodes."""
    out = []
    for what, have, want in (
        ("Replica", set(vars(replica)), _REPLICA_ATTRS),
        ("State", set(vars(replica.state)), _STATE_ATTRS),
    ):
        if have != want:
            out.append(f"{what} gained {sorted(have - want)} and lost {sorted(want - have)}")
    for cls, names in _FIELDS.items():
        have_f = tuple(f.name for f in dataclasses.fields(cls))
        if have_f != names:
            out.append(f"{cls.__name__} has fields {have_f}, not {names}")
    return out


# -- plain data ------------------------------------------------------------------------


def _account(key: bytes, a: Account) -> list[Any]:
    return [
        key,
        a.balance,
        a.spendable,
        sorted(a.claimed),
        a.points,
        sorted(a.reviewed),
        sorted(a.revealed),
        sorted(a.committed),
        sorted(a.vouches),
        a.profile,
        a.events,
        a.void,
    ]


def _submission(x: Submission) -> list[Any]:
    return [
        x.id,
        x.bounty,
        x.learner,
        x.commit,
        x.text,
        x.attachments,
        x.revealed_at,
        x.reviews,
        x.awarded,
    ]


def _review(r: Review) -> list[Any]:
    scores = list(r.scores)
    return [r.id, r.bounty, r.submission, r.reviewer, scores, r.comment, r.timestamp, r.paid]


def _bounty(b: Bounty) -> list[Any]:
    return [
        b.id,
        b.author,
        b.title,
        b.description,
        [list(c) for c in b.rubric],
        list(b.skills),
        b.reward,
        b.reviewer_share_bp,
        b.submit_by,
        b.review_by,
        b.quorum,
        b.posted_at,
        b.escrow,
        b.phase,
        [[c, learner] for c, learner in b.commits.items()],
        list(b.accepted),
        b.close_id,
        [_submission(x) for x in b.submissions.values()],
        b.settled_by,
        b.settled_at,
    ]


def to_plain(replica: Replica) -> dict[str, Any]:
    """The replica as plain data, without its pending events (as if each had
    been dropped) and without what the events table holds."""
    st = replica.state
    by_slot = dict(replica._by_slot)
    for eid, ev in replica.pending.items():
        if by_slot.get((ev.author, ev.seq)) == eid:
            del by_slot[(ev.author, ev.seq)]
    default: dict[tuple[bytes, int], bytes] = {}
    for eid, slot in replica._slot.items():
        default.setdefault(slot, eid)
    claims: list[list[Any]] = [
        [a, s, by_slot.get((a, s))] for (a, s), eid in default.items() if by_slot.get((a, s)) != eid
    ]
    claims += [[a, s, eid] for (a, s), eid in by_slot.items() if (a, s) not in default]
    return {
        "accounts": [_account(k, a) for k, a in st.accounts.items()],
        "bounties": [_bounty(b) for b in st.bounties.values()],
        "commits": [
            [k, c.bounty, c.learner, c.commitment, c.timestamp] for k, c in st.commits.items()
        ],
        "reviews": [_review(r) for r in st.reviews.values()],
        "credits": [[k, [[a, n] for a, n in pays.items()]] for k, pays in st.credits.items()],
        "void": [[k, code, reason] for k, (code, reason) in st.void.items()],
        "forks": [[a, s] for a, s in st.forks.items()],
        "proofs": [[a, p.first, p.second] for a, p in replica.proofs.items()],
        "books": {name: getattr(st, name).to_plain() for name in _BOOKS},
        "claims": claims,
        # Sums of the applied and kept-reject ids: restoring checks them against
        # the tables, so a snapshot never joins another database's events.
        "applied_sum": _id_sum(replica.raw).to_bytes(32, "big"),
        "rejected_sum": _id_sum(replica.rejected).to_bytes(32, "big"),
    }


def _id_sum(ids: Iterable[bytes]) -> int:
    return sum(int.from_bytes(k, "big") for k in ids) % _MOD


def _b(x: Any) -> bytes:
    if type(x) is not bytes:
        raise SnapshotError(f"expected bytes, found {type(x).__name__}")
    return x


def _i(x: Any) -> int:
    if type(x) is not int:
        raise SnapshotError(f"expected an int, found {type(x).__name__}")
    return x


def _s(x: Any) -> str:
    if type(x) is not str:
        raise SnapshotError(f"expected a str, found {type(x).__name__}")
    return x


def _opt_b(x: Any) -> bytes | None:
    return None if x is None else _b(x)


def from_plain(
    body: Any,
    genesis: Genesis,
    slots: Iterable[tuple[bytes, bytes, int]],
    rejected: Iterable[tuple[bytes, bytes]],
    raw: MutableMapping[bytes, bytes],
) -> Replica:
    """Build the replica a snapshot describes. `slots` are the applied events'
    (id, author, seq) in apply order, `rejected` the kept rejects' (id, raw)
    it covers; `raw` becomes `replica.raw` (filled with the applied ids).
    Raises SnapshotError (or another ValueError/TypeError/KeyError/IndexError)
    for a body that does not have this version's shape."""
    if not isinstance(body, dict):
        raise SnapshotError("the body is not a map")
    rep = Replica(genesis)
    st = rep.state
    problems = shape_problems(rep)
    if problems:
        raise SnapshotError("the protocol's state changed shape: " + "; ".join(problems))

    set_acc = 0
    # One bytes object per author and one (author, seq) tuple per event, shared
    # by both indexes: about 120 bytes less per event than a copy each.
    authors: dict[bytes, bytes] = {}
    for eid, author_row, seq in slots:
        raw[eid] = b""  # not kept: the bytes are read back from the table by id
        author = authors.setdefault(author_row, author_row)
        slot = (author, seq)
        rep._slot[eid] = slot
        rep._by_slot.setdefault(slot, eid)
        if seq > rep.heads.get(author, 0):
            rep.heads[author] = seq
        set_acc += int.from_bytes(eid, "big")
    rep.raw = raw
    set_acc %= _MOD
    if set_acc.to_bytes(32, "big") != body["applied_sum"]:
        raise SnapshotError("it was not made from the events in this database")
    for a, s, eid in body["claims"]:
        if eid is None:
            rep._by_slot.pop((_b(a), _i(s)), None)
        else:
            rep._by_slot[(_b(a), _i(s))] = _b(eid)
    rep.rejected = {_b(k): _b(v) for k, v in rejected}
    if _id_sum(rep.rejected).to_bytes(32, "big") != body["rejected_sum"]:
        raise SnapshotError("it was not made from the kept rejects in this database")
    rep.proofs = {_b(a): EquivocationProof(_b(f), _b(s)) for a, f, s in body["proofs"]}

    accounts = {}
    for row in body["accounts"]:
        key, bal, spend, claimed, points, reviewed, revealed, committed, vouches, prof, n, v = row
        if prof is not None and not isinstance(prof, dict):
            raise SnapshotError("a profile is not a map")
        accounts[_b(key)] = Account(
            balance=_i(bal),
            spendable=_i(spend),
            claimed={_b(x) for x in claimed},
            points=_i(points),
            reviewed={_b(x) for x in reviewed},
            revealed={_b(x) for x in revealed},
            committed={_b(x) for x in committed},
            vouches={_b(x) for x in vouches},
            profile=prof,
            events=_i(n),
            void=_i(v),
        )
    st.accounts = accounts
    books = body["books"]
    if not isinstance(books, dict) or set(books) != set(_BOOKS):
        raise SnapshotError("the books are not the ones this version keeps")
    for name in _BOOKS:
        setattr(st, name, type(getattr(st, name)).from_plain(books[name]))
    bounties = {}
    for row in body["bounties"]:
        (bid, author, title, desc, rubric, skills, reward, share, submit_by, review_by) = row[:10]
        (quorum, posted, escrow, phase, commits, accepted, close_id, subs) = row[10:18]
        (settled_by, settled_at) = row[18:]
        submissions = {}
        for sid, sb, learner, commit, text, att, revealed_at, reviews, awarded in subs:
            if not isinstance(att, list):
                raise SnapshotError("attachments are not a list")
            submissions[_b(sid)] = Submission(
                id=_b(sid),
                bounty=_b(sb),
                learner=_b(learner),
                commit=_b(commit),
                text=_s(text),
                attachments=att,
                revealed_at=_i(revealed_at),
                reviews=[_b(x) for x in reviews],
                awarded=_i(awarded),
            )
        bounties[_b(bid)] = Bounty(
            id=_b(bid),
            author=_b(author),
            title=_s(title),
            description=_s(desc),
            rubric=tuple((_s(n), _i(m)) for n, m in rubric),
            skills=tuple(_s(x) for x in skills),
            reward=_i(reward),
            reviewer_share_bp=_i(share),
            submit_by=_i(submit_by),
            review_by=_i(review_by),
            quorum=_i(quorum),
            posted_at=_i(posted),
            escrow=_i(escrow),
            phase=_s(phase),
            commits={_b(c): _b(x) for c, x in commits},
            accepted=tuple(_b(x) for x in accepted),
            close_id=_opt_b(close_id),
            submissions=submissions,
            settled_by=_opt_b(settled_by),
            settled_at=None if settled_at is None else _i(settled_at),
        )
    st.bounties = bounties
    st.commits = {
        _b(k): _Commit(_b(b), _b(learner), _b(c), _i(t)) for k, b, learner, c, t in body["commits"]
    }
    st.reviews = {
        _b(rid): Review(
            _b(rid), _b(b), _b(sub), _b(who), tuple(_i(x) for x in scores), _s(c), _i(t), _i(p)
        )
        for rid, b, sub, who, scores, c, t, p in body["reviews"]
    }
    st.credits = {_b(k): {_b(a): _i(n) for a, n in pays} for k, pays in body["credits"]}
    st.void = {_b(k): (_s(code), _s(reason)) for k, code, reason in body["void"]}
    st.forks = {_b(a): _i(s) for a, s in body["forks"]}
    # Derived: rebuilt, not stored.
    st.event_count = len(rep._slot)
    st._set_acc = set_acc
    st._void_acc = _id_sum(st.void)
    return rep


# -- the file --------------------------------------------------------------------------


@dataclass(slots=True)
class Snapshot:
    body: Any  # plain data, for `from_plain`
    applied: int  # events with idx <= applied are folded in
    rejected: int  # rejected rows with n <= rejected are known to the replica


def encode_snapshot(replica: Replica, applied: int, rejected: int) -> bytes:
    problems = shape_problems(replica)
    if problems:
        raise SnapshotError("the protocol's state changed shape: " + "; ".join(problems))
    header = canonical_pack(
        {
            "v": SNAPSHOT_VERSION,
            "network": replica.network,
            "applied": applied,
            "rejected": rejected,
        }
    )
    data = MAGIC + struct.pack(">I", len(header)) + header + canonical_pack(to_plain(replica))
    return data + hashlib.sha256(data).digest()


def write_snapshot(path: Path, replica: Replica, applied: int, rejected: int) -> None:
    """Write atomically (temp file, fsync, rename): a crash leaves the old one."""
    data = encode_snapshot(replica, applied, rejected)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def decode_snapshot(data: bytes, network: bytes) -> Snapshot:
    """The snapshot in `data`; SnapshotError says why it cannot be used."""
    if not data.startswith(MAGIC):
        raise SnapshotError("not a snapshot in this format")
    at = len(MAGIC)
    if len(data) < at + 4 + 32:
        raise SnapshotError("truncated")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise SnapshotError("checksum mismatch (damaged or truncated)")
    (n,) = struct.unpack(">I", data[at : at + 4])
    if at + 4 + n > len(data) - 32:
        raise SnapshotError("the header runs past the end")
    try:
        header = strict_unpack(data[at + 4 : at + 4 + n], n)
        if not isinstance(header, dict):
            raise SnapshotError("the header is not a map")
        if header.get("v") != SNAPSHOT_VERSION:
            raise SnapshotError(
                f"snapshot version {header.get('v')!r}; this program reads {SNAPSHOT_VERSION}"
            )
        if header.get("network") != network:
            raise SnapshotError("it belongs to another network")
        applied, rejected = header.get("applied"), header.get("rejected")
        if type(applied) is not int or type(rejected) is not int or applied < 0 or rejected < 0:
            raise SnapshotError("the header's counts are not counts")
        body = strict_unpack(data[at + 4 + n : -32], _MAX_BYTES)
    except ProtocolError as exc:
        raise SnapshotError(f"not canonical msgpack: {exc.reason}") from None
    return Snapshot(body, applied, rejected)


def read_snapshot(path: Path, network: bytes) -> Snapshot | None:
    """The snapshot, or None (logged) if it is missing, stale or damaged."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("snapshot %s unreadable (%s): replaying every event", path, exc)
        return None
    try:
        return decode_snapshot(data, network)
    except SnapshotError as exc:
        log.warning("snapshot %s not used (%s): replaying every event", path, exc)
        return None
