"""API routes for moderation: community flags (a signed `flag` event, PROTOCOL.md
"Flags") and this node's own blocklist (node/_blocklist.py, a node policy).

- `POST /api/flags` `{target?, account?, category, note?}`: flag an event (a
  bounty, a submission or a review: `target`, its hex id; the account is its
  author) or an account as a whole (`account`, lm…). `category` is spam,
  abuse, plagiarism or other; `note` (0..1000 characters) says why (for
  plagiarism: what was copied from where).
- `GET /api/flags`: the hidden view (protocol `hidden`): what the community's
  flags hide and why (the flags, the flaggers' trust, the thresholds), what
  is flagged but below the threshold, and my own flags.
- `GET /api/blocks`, `POST /api/blocks` `{account, reason?}`,
  `DELETE /api/blocks/{account}`: this node's blocklist. A blocked author's
  events are still admitted (the state digest never depends on one node's
  choices) but this node does not forward them by gossip and marks them
  hidden in its lists.

Lists elsewhere (`GET /api/bounties`, `GET /api/bounties/{id}`) carry
`hidden` (bool), and when true `hidden_by` ("block" or "flags") and
`hidden_why` (a sentence) from `marker(node)`: the page greys such items out
with a "show anyway" toggle rather than dropping them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from learnmesh.protocol import (
    Hidden,
    HiddenItem,
    RemoteProtocolError,
    State,
    account_from_text,
    account_text,
    hidden,
)
from learnmesh.protocol._kinds_moderation import FLAG_CATEGORIES, MAX_FLAG_NOTE
from learnmesh.protocol._moderation import HIDE_MIN_FLAGGERS, HIDE_TRUST_PPM, _author_of
from learnmesh.protocol._trust import trust_digest
from starlette.requests import Request

from ._api_args import hex_id, json_object
from ._api_trust import node_trust
from ._blocklist import MAX_REASON
from ._service import Node, UserError

__all__ = [
    "BLOCKED_LABEL",
    "FLAGS_LABEL",
    "Marker",
    "hidden_view",
    "marker",
    "moderation_routes",
]

Handler = Callable[[Request], Awaitable[Any]]
Marker = Callable[[bytes | None, bytes], dict[str, Any]]
BLOCKED_LABEL = "you blocked this author"
FLAGS_LABEL = "hidden by community flags"
_PPM = 1_000_000


def hidden_view(node: Node) -> tuple[State, Hidden, bytes]:
    """The live state, its hidden view (from the clock-free trust view every
    node computes alike) and that trust view's digest."""
    state, snap = node_trust(node)
    return state, hidden(state, snap.clock_free), trust_digest(snap.clock_free)


def marker(node: Node) -> Marker:
    """`mark(event_id, author)` -> `{"hidden": False}` or `{"hidden": True,
    "hidden_by": "block" | "flags", "hidden_why": sentence}`, computed once
    per request (the hidden view) and applied to every item of a list."""
    _, view, _ = hidden_view(node)
    blocks = node.blocklist

    def mark(event_id: bytes | None, author: bytes) -> dict[str, Any]:
        e = blocks.get(author)
        if e is not None:
            why = BLOCKED_LABEL + (f": {e.reason}" if e.reason else "")
            return {"hidden": True, "hidden_by": "block", "hidden_why": why}
        item = view.of(event_id, author)
        if item is not None:
            return {
                "hidden": True,
                "hidden_by": "flags",
                "hidden_why": f"{FLAGS_LABEL}: {item.why}",
            }
        return {"hidden": False}

    return mark


def _name(st: State, acct: bytes) -> str | None:
    a = st.accounts.get(acct)
    name = a.profile.get("name") if a is not None and a.profile else None
    return name if isinstance(name, str) else None


def _what(st: State, eid: bytes) -> dict[str, Any]:
    """What a flagged event is, for a link: its kind and bounty."""
    b = st.bounties.get(eid)
    if b is not None:
        return {"target_kind": "bounty", "bounty": b.id.hex(), "title": b.title}
    r = st.reviews.get(eid)
    if r is not None:
        t = st.bounties[r.bounty].title if r.bounty in st.bounties else ""
        return {"target_kind": "review", "bounty": r.bounty.hex(), "title": t}
    found = st.find_submission(eid)
    if found is not None:
        return {"target_kind": "submission", "bounty": found[0].id.hex(), "title": found[0].title}
    return {"target_kind": "other", "bounty": None, "title": ""}


def _item_json(st: State, item: HiddenItem, total: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "subject": item.subject.hex() if item.kind == "event" else account_text(item.subject),
        "kind": item.kind,
        "account": account_text(item.account),
        "account_name": _name(st, item.account),
        "hidden": item.hidden,
        "why": item.why,
        "trust": item.trust,
        "ppm": item.ppm,
        "trusted_flaggers": item.trusted_flaggers,
        "categories": item.categories,
        "flags": [
            {
                "id": v.flag.hex(),
                "flagger": account_text(v.flagger),
                "flagger_name": _name(st, v.flagger),
                "category": v.category,
                "note": v.note,
                "trust_ppm": v.trust * _PPM // total if total else 0,
                "timestamp": v.timestamp,
            }
            for v in item.flags
        ],
    }
    if item.kind == "event":
        out.update(_what(st, item.subject))
    else:
        out.update({"target_kind": "account", "bounty": None, "title": ""})
    return out


def flags_json(node: Node) -> dict[str, Any]:
    st, view, digest = hidden_view(node)
    me = node.key.public_key
    mine = sorted(
        (f for f in st.moderation.flags.values() if f.flagger == me),
        key=lambda f: (f.timestamp, f.id),
    )
    return {
        "hidden": {
            "events": [_item_json(st, i, view.total_trust) for i in view.events.values()],
            "accounts": [_item_json(st, i, view.total_trust) for i in view.accounts.values()],
        },
        "below": [_item_json(st, i, view.total_trust) for i in view.below.values()],
        "mine": [
            {
                "id": f.id.hex(),
                "target": f.target.hex() if f.target else None,
                "account": account_text(f.account),
                "category": f.category,
                "note": f.note,
                "timestamp": f.timestamp,
            }
            for f in mine
        ],
        "thresholds": {"trust_ppm": HIDE_TRUST_PPM, "min_flaggers": HIDE_MIN_FLAGGERS},
        "categories": list(FLAG_CATEGORIES),
        "trust_digest": digest.hex(),
        "events": st.event_count,
    }


def blocks_json(node: Node) -> dict[str, Any]:
    st = node.ledger.replica.state
    return {
        "blocks": [
            {
                "account": account_text(e.account),
                "name": _name(st, e.account),
                "reason": e.reason,
                "at_ms": e.at_ms,
            }
            for e in node.blocklist.entries()
        ],
        "relay": {
            "blocked": node.stats.get("relay_blocked", 0),
            "over_limit": node.stats.get("relay_over_limit", 0),
            "per_author_per_min": node.relay.per_min,
        },
    }


def _acct(v: Any, what: str = "account") -> bytes:
    if not isinstance(v, str):
        raise UserError(f"{what} must be an account id (lm…)")
    try:
        return account_from_text(v)
    except RemoteProtocolError as exc:
        raise UserError(f"{what}: {exc.reason}") from None


def _text(d: dict[str, Any], key: str, hi: int) -> str:
    v = d.get(key, "")
    if v is None:
        v = ""
    if not isinstance(v, str):
        raise UserError(f"{key} must be text")
    if len(v) > hi:
        raise UserError(f"{key} is at most {hi} characters (it has {len(v)})")
    return v


async def flag(node: Node, d: dict[str, Any]) -> dict[str, Any]:
    """Sign and publish a flag; the account of a flagged event is its author."""
    cat = d.get("category")
    if cat not in FLAG_CATEGORIES:
        raise UserError(f"category must be one of {', '.join(FLAG_CATEGORIES)}")
    note = _text(d, "note", MAX_FLAG_NOTE)
    st = node.ledger.replica.state
    target_text, acct_text = d.get("target"), d.get("account")
    if not target_text and not acct_text:
        raise UserError("say what to flag: target (an event id) or account (lm…)")
    target = hex_id(target_text, "target") if target_text else b""
    account = _acct(acct_text) if acct_text else None
    if target:
        if not node.ledger.replica.has(target):
            raise UserError(
                f"unknown event {target.hex()[:16]}: this node has not seen it",
                status=404,
                code="not_found",
            )
        author = _author_of(st, target)
        if author is None:
            raise UserError(
                "only a bounty, a submission or a review can be flagged by id; "
                "flag its author's account instead"
            )
        if account is not None and account != author:
            raise UserError("account is not the author of the flagged event")
        account = author
    assert account is not None
    if account == node.key.public_key:
        raise UserError("you cannot flag yourself or your own work")
    body = {"target": target, "account": account, "category": cat, "note": note}
    ev = await node.author("flag", body, [target] if target else [])
    return {"id": ev.id.hex(), "account": account_text(account), "target": target.hex() or None}


def moderation_routes(node: Node) -> list[tuple[str, str, Handler]]:
    async def body_of(request: Request) -> dict[str, Any]:
        return await json_object(request)

    async def post_flag(request: Request) -> Any:
        return await flag(node, await body_of(request))

    async def get_flags(request: Request) -> Any:
        return flags_json(node)

    async def get_blocks(request: Request) -> Any:
        return blocks_json(node)

    async def post_block(request: Request) -> Any:
        d = await body_of(request)
        acct = _acct(d.get("account"))
        if acct == node.key.public_key:
            raise UserError("you cannot block yourself")
        reason = _text(d, "reason", MAX_REASON)
        added = node.blocklist.add(acct, reason, node.now_ms())
        return {"account": account_text(acct), "blocked": True, "already": not added}

    async def delete_block(request: Request) -> Any:
        acct = _acct(request.path_params["account"])
        if not node.blocklist.remove(acct):
            raise UserError("this account is not blocked here", status=404, code="not_found")
        return {"account": account_text(acct), "blocked": False}

    return [
        ("GET", "/api/flags", get_flags),
        ("POST", "/api/flags", post_flag),
        ("GET", "/api/blocks", get_blocks),
        ("POST", "/api/blocks", post_block),
        ("DELETE", "/api/blocks/{account}", delete_block),
    ]
