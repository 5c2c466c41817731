"""Event kinds: fixed wire codes (never reused), schemas and size limits.

Each body is a str-keyed map with exactly the listed fields. `required_refs`
names the other events a kind depends on; they must all appear in `refs`.
Only kinds that spend (bounty, transfer) may add extra refs: the credits
(transfers, awards) the author claims to fund the spend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._errors import RemoteProtocolError

__all__ = ["KINDS", "MAX_AMOUNT", "MAX_CLAIMS", "Kind", "check_body", "required_refs"]

from ._schema import (
    MAX_AMOUNT,
    MAX_CLAIMS,
    MAX_TS,
    _fail,
    _hash,
    _int,
    _records,
    _skills,
    _text,
)


def _profile(body: dict[str, Any], author: bytes) -> None:
    _text("profile", body, "name", 1, 64)
    _text("profile", body, "bio", 0, 500)
    _skills("profile", body)


def _bounty(body: dict[str, Any], author: bytes) -> None:
    k = "bounty"
    _text(k, body, "title", 1, 200)
    _text(k, body, "description", 0, 8000)
    rubric = _records(k, body, "rubric", {"name", "max"}, 16)
    if not rubric:
        raise _fail(k, "rubric needs at least one criterion")
    names = set()
    for c in rubric:
        _text(k, c, "name", 1, 64)
        _int(k, c, "max", 1, 100)
        names.add(c["name"])
    if len(names) != len(rubric):
        raise _fail(k, "rubric criteria names must be unique")
    _skills(k, body)
    _int(k, body, "reward", 1, MAX_AMOUNT)
    _int(k, body, "reviewer_share_bp", 0, 5000)
    submit_by = _int(k, body, "submit_by", 0, MAX_TS)
    review_by = _int(k, body, "review_by", 0, MAX_TS)
    if review_by <= submit_by:
        raise _fail(k, "review_by must be after submit_by")
    _int(k, body, "quorum", 1, 16)


def _commit(body: dict[str, Any], author: bytes) -> None:
    _hash("commit", body["bounty"], "bounty")
    _hash("commit", body["commitment"], "commitment")


def _close(body: dict[str, Any], author: bytes) -> None:
    _hash("close", body["bounty"], "bounty")
    acc = body["accepted"]
    if not isinstance(acc, list) or len(acc) > 256:
        raise _fail("close", "accepted must be a list of at most 256 commit ids")
    for c in acc:
        _hash("close", c, "accepted commit")
    if len(set(acc)) != len(acc):
        raise _fail("close", "accepted commits must not repeat")


def _reveal(body: dict[str, Any], author: bytes) -> None:
    k = "reveal"
    for f in ("bounty", "commit", "close"):
        _hash(k, body[f], f)
    salt = body["salt"]
    if not isinstance(salt, bytes) or not 16 <= len(salt) <= 32:
        raise _fail(k, "salt must be 16..32 bytes")
    _text(k, body, "text", 0, 16000)
    atts = _records(k, body, "attachments", {"hash", "name", "size"}, 16)
    for a in atts:
        _hash(k, a["hash"], "attachment hash")
        _text(k, a, "name", 1, 128)
        _int(k, a, "size", 0, 2**40)


def _review(body: dict[str, Any], author: bytes) -> None:
    k = "review"
    _hash(k, body["bounty"], "bounty")
    _hash(k, body["submission"], "submission")
    scores = body["scores"]
    if not isinstance(scores, list) or not 1 <= len(scores) <= 16:
        raise _fail(k, "scores must list 1..16 integers")
    for s in scores:
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= 100:
            raise _fail(k, "each score is an integer in 0..100")
    _text(k, body, "comment", 0, 2000)


def _award(body: dict[str, Any], author: bytes) -> None:
    k = "award"
    _hash(k, body["bounty"], "bounty")
    winners = _records(k, body, "winners", {"submission", "amount"}, 64)
    reviewers = _records(k, body, "reviewers", {"review", "amount"}, 256)
    for w in winners:
        _hash(k, w["submission"], "winner submission")
        _int(k, w, "amount", 1, MAX_AMOUNT)
    for r in reviewers:
        _hash(k, r["review"], "reviewer review")
        _int(k, r, "amount", 1, MAX_AMOUNT)
    if len({w["submission"] for w in winners}) != len(winners):
        raise _fail(k, "a submission is listed twice among winners")
    if len({r["review"] for r in reviewers}) != len(reviewers):
        raise _fail(k, "a review is listed twice among paid reviewers")


def _refund(body: dict[str, Any], author: bytes) -> None:
    _hash("refund", body["bounty"], "bounty")


def _transfer(body: dict[str, Any], author: bytes) -> None:
    to = _hash("transfer", body["to"], "to")
    if to == author:
        raise _fail("transfer", "cannot transfer to yourself")
    _int("transfer", body, "amount", 1, MAX_AMOUNT)
    _text("transfer", body, "memo", 0, 200)


def _vouch(body: dict[str, Any], author: bytes) -> None:
    acct = _hash("vouch", body["account"], "account")
    if acct == author:
        raise _fail("vouch", "cannot vouch for yourself")


def _credential(body: dict[str, Any], author: bytes) -> None:
    k = "credential"
    _hash(k, body["award"], "award")
    _hash(k, body["submission"], "submission")
    _hash(k, body["vc"], "vc")
    _int(k, body, "size", 1, 2**40)


def required_refs(name: str, body: dict[str, Any]) -> set[bytes]:
    """The events this body names: they are dependencies and must be in refs."""
    kind = KINDS.get(name)
    if kind is not None and kind.refs is not None:
        return kind.refs(body)
    if name in ("commit", "refund"):
        return {body["bounty"]}
    if name == "close":
        return {body["bounty"], *body["accepted"]}
    if name == "reveal":
        return {body["commit"], body["close"]}
    if name == "review":
        return {body["submission"]}
    if name == "credential":
        return {body["award"]}
    if name == "award":
        return (
            {body["bounty"]}
            | {w["submission"] for w in body["winners"]}
            | {r["review"] for r in body["reviewers"]}
        )
    return set()


@dataclass(frozen=True, slots=True)
class Kind:
    code: int
    name: str
    fields: frozenset[str]
    max_bytes: int
    check: Callable[[dict[str, Any], bytes], None]
    spends: bool = False  # may claim credits in refs
    # The events the body names (kinds defined outside this file say so here;
    # the kinds above are answered by `required_refs`).
    refs: Callable[[dict[str, Any]], set[bytes]] | None = None

    def __repr__(self) -> str:
        return f"Kind({self.name})"


class _Registry:
    def __init__(self, kinds: list[Kind]) -> None:
        self._by_name = {k.name: k for k in kinds}
        self._by_code = {k.code: k for k in kinds}
        if len(self._by_name) != len(kinds) or len(self._by_code) != len(kinds):
            raise AssertionError("two event kinds share a name or a wire code")

    def get(self, name: str) -> Kind | None:
        return self._by_name.get(name)

    def __getitem__(self, name: str) -> Kind:
        return self._by_name[name]

    def by_code(self, code: int) -> Kind | None:
        return self._by_code.get(code)

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._by_code.values())


def _k(
    code: int,
    name: str,
    fields: str,
    max_bytes: int,
    check: Callable[[dict[str, Any], bytes], None],
    spends: bool = False,
    refs: Callable[[dict[str, Any]], set[bytes]] | None = None,
) -> Kind:
    return Kind(code, name, frozenset(fields.split()), max_bytes, check, spends, refs)


# Kinds defined in their own modules (each exports EXTRA_KINDS: list[Kind] and,
# in its handler module, HANDLERS for protocol/_state.py). Wire codes are
# assigned here once and never reused:
#   12 dispute, 13 jury_commit, 14 jury_reveal, 15 dispute_claim (disputes);
#   16 flag (moderation); 17 comment, 18 resource (learning together);
#   19 bounty_terms (trust).
def _extra_kinds() -> list[Kind]:
    out: list[Kind] = []
    for mod in _EXTRA_KIND_MODULES:
        out += importlib.import_module(mod, __package__).EXTRA_KINDS
    return out


_EXTRA_KIND_MODULES: tuple[str, ...] = (
    "._kinds_disputes",
    "._kinds_moderation",
    "._kinds_learning",
    "._kinds_terms",
)


KINDS = _Registry(
    [
        _k(1, "profile", "name bio skills", 2048, _profile),
        _k(
            2,
            "bounty",
            "title description rubric skills reward reviewer_share_bp submit_by review_by quorum",
            16384,
            _bounty,
            spends=True,
        ),
        _k(3, "commit", "bounty commitment", 1024, _commit),
        _k(4, "close", "bounty accepted", 16384, _close),
        _k(5, "reveal", "bounty commit close salt text attachments", 24576, _reveal),
        _k(6, "review", "bounty submission scores comment", 4096, _review),
        _k(7, "award", "bounty winners reviewers", 32768, _award),
        _k(8, "refund", "bounty", 1024, _refund),
        _k(9, "transfer", "to amount memo", 4096, _transfer, spends=True),
        _k(10, "vouch", "account", 1024, _vouch),
        _k(11, "credential", "award submission vc size", 1024, _credential),
        *_extra_kinds(),
    ]
)


def check_body(kind: Kind, body: dict[str, Any], refs: tuple[bytes, ...], author: bytes) -> None:
    """Schema check of one body against its kind, and of refs against the body."""
    if body.keys() != kind.fields:
        missing = sorted(kind.fields - set(body))
        extra = sorted(set(body) - kind.fields)
        raise _fail(kind.name, f"body fields wrong (missing {missing}, unexpected {extra})")
    kind.check(body, author)
    need = required_refs(kind.name, body)
    have = set(refs)
    if not need <= have:
        raise RemoteProtocolError(
            "refs", f"{kind.name}: refs must include every event the body names"
        )
    extra_refs = len(have - need)
    if extra_refs and not kind.spends:
        raise RemoteProtocolError("refs", f"{kind.name}: refs name events the body does not use")
    if extra_refs > MAX_CLAIMS:
        raise RemoteProtocolError(
            "refs", f"{kind.name}: at most {MAX_CLAIMS} credits may be claimed"
        )
