"""The local HTTP JSON API (Starlette on hypercorn's trio worker, 127.0.0.1 only).

Every `/api/*` request needs `Authorization: Bearer <token>` with the token from
the data directory, or the web page's `lm_session` cookie (HttpOnly,
SameSite=Strict, got by trading a one-time code from `learnmesh web` at
`POST /api/session`); with the cookie, every non-GET request also needs the
header `X-Learnmesh-CSRF: 1`. Every request (the page and its files too) needs a
loopback `Host` (421 otherwise: DNS rebinding) and, when it has an `Origin`,
this API's own origin (403). Every response carries a strict CSP and friends.
Ids travel as hex, accounts in their `lm…` text form, amounts as integers. A
mistake gets a 4xx with {"error": code, "message": sentence}.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import multiaddr
import trio
from learnmesh.protocol import (
    FINAL_PHASES,
    Bounty,
    RemoteProtocolError,
    Reputation,
    State,
    account_from_text,
    account_text,
    decode_event,
    reputation,
)
from learnmesh.protocol._trust import min_trust_of_ppm
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._api_args import MAX_BODY, json_object
from ._api_credentials import credential_routes
from ._api_disputes import dispute_routes
from ._api_learning import learning_routes
from ._api_messages import message_routes
from ._api_moderation import marker, moderation_routes
from ._api_recommend import recommendation_routes
from ._api_trust import (
    MAX_PPM,
    REVIEWER_RULES,
    bounty_min_ppm,
    bounty_review_trust,
    trust_routes,
)
from ._clock import ClockError, OffsetClock
from ._datadir import check_loopback
from ._metrics import ApiLatency, NodeMetrics, metrics_routes
from ._openapi import openapi_routes
from ._service import Node, UserError
from ._web_session import (
    LOGIN_TTL_S,
    MAX_KEY_LEN,
    Idempotency,
    LoginCodes,
    Sessions,
    host_allowed,
    origin_allowed,
)

__all__ = ["SecurityGuard", "check_loopback", "make_app", "safe_filename"]

log = logging.getLogger("learnmesh.api")
_MAX_BODY = MAX_BODY

Handler = Callable[[Request], Awaitable[Any]]

SESSION_COOKIE = "lm_session"  # + "_<port>": see session_cookie


def session_cookie(request: Request) -> str:
    """The session cookie's name for this node. Browsers scope cookies by host,
    not port, so two nodes on 127.0.0.1 would share (and overwrite) one cookie
    name: each node's name carries the port it serves on."""
    server = request.scope.get("server") or ("", 0)
    return f"{SESSION_COOKIE}_{server[1]}"
CSRF_HEADER = "x-learnmesh-csrf"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
# Requests that author something: an Idempotency-Key makes a repeat replay the first answer.
_IDEMPOTENT = {
    ("POST", "/api/bounties"),
    ("POST", "/api/submit"),
    ("POST", "/api/review"),
    ("POST", "/api/transfer"),
    ("POST", "/api/bounties/{bid}/close"),
    ("POST", "/api/bounties/{bid}/award"),
    ("POST", "/api/bounties/{bid}/refund"),
    ("POST", "/api/vouch"),
    ("POST", "/api/profile"),
    ("POST", "/api/messages"),  # a private message (node/_api_messages.py)
    ("POST", "/api/events/batch"),
    ("POST", "/api/comments"),
    ("POST", "/api/resources"),
}
# The wire names of fields, as the page's forms name them (for error messages).
_FIELD_LABELS = {
    "submit_by": "submission deadline",
    "review_by": "review deadline",
    "reviewer_share_bp": "reviewer share (in basis points: 1000 = 10 %)",
}
_FIELD_RE = re.compile(r"\b(" + "|".join(map(re.escape, _FIELD_LABELS)) + r")\b")


def _humanise(message: str) -> str:
    """Name fields as a person sees them on the form, not by their wire names."""
    return _FIELD_RE.sub(lambda m: f"the {_FIELD_LABELS[m.group(1)]}", message).replace(
        "the the ", "the "
    )


def _error(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9 ._()+,=@-]")


def safe_filename(name: str) -> str:
    """A download's file name: ASCII without quotes, slashes or control
    characters (each becomes `_`), no leading dots, at most 128 characters."""
    out = _SAFE_NAME.sub("_", name).strip(" .")[:128].strip(" .")
    return out if out.strip("_") else "attachment"


class SecurityGuard:
    """ASGI middleware on every request: a loopback Host (else 421: DNS
    rebinding), no foreign Origin (else 403), and the security headers on
    every response (`Cache-Control: no-store` too under /api/)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        is_api = str(scope.get("path", "")).startswith("/api/")

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [h for h in _SECURITY_HEADERS if h[0] not in have]
                if is_api and b"cache-control" not in have:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        host = headers.get(b"host", b"").decode("latin-1")
        if not host_allowed(host):
            resp: Response = _error(
                "host_refused",
                "this node answers only requests addressed to 127.0.0.1, localhost or [::1]",
                421,
            )
            await resp(scope, receive, send_secured)
            return
        origin = headers.get(b"origin")
        server = scope.get("server")
        port = server[1] if server and len(server) > 1 else None
        if origin is not None and not origin_allowed(origin.decode("latin-1"), port):
            resp = _error("origin_refused", "requests from another web site are refused", 403)
            await resp(scope, receive, send_secured)
            return
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > _MAX_BODY:
            # refused before a byte of it is read (the handlers read bodies whole)
            resp = _error("too_large", f"request bodies are at most {_MAX_BODY >> 20} MiB", 413)
            await resp(scope, receive, send_secured)
            return
        await self.app(scope, receive, send_secured)


def _hex(v: Any, what: str) -> bytes:
    if not isinstance(v, str):
        raise UserError(f"{what} must be a hex id")
    try:
        b = bytes.fromhex(v)
    except ValueError:
        raise UserError(f"{what} is not valid hex: {v[:20]!r}") from None
    if len(b) != 32:
        raise UserError(f"{what} must be a 32-byte id (64 hex characters)")
    return b


def _account(v: Any, what: str = "account") -> bytes:
    if not isinstance(v, str):
        raise UserError(f"{what} must be an account id (lm…)")
    try:
        return account_from_text(v)
    except RemoteProtocolError as exc:
        raise UserError(exc.reason) from None


def _int(v: Any, what: str, lo: int = 0) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise UserError(f"{what} must be an integer ≥ {lo}")
    return v


def _query_int(request: Request, key: str, default: int, lo: int = 0, what: str = "") -> int:
    v = request.query_params.get(key) or str(default)
    if not v.isascii() or not v.isdigit() or len(v) > 18 or int(v) < lo:
        raise UserError(f"{what or key} must be a whole number ≥ {lo}")
    return int(v)


def _str(body: dict[str, Any], key: str, default: str | None = None) -> str:
    v = body.get(key, default)
    if not isinstance(v, str):
        raise UserError(f"{key} must be text")
    return v


MAX_BATCH = 1000  # events per POST /api/events/batch


def _batch_item(e: Any) -> tuple[str, dict[str, Any], bool]:
    """(kind, body, claims) of one batch entry, with its kind's own route's fields."""
    if not isinstance(e, dict):
        raise UserError("each event is an object with a kind and that kind's fields")
    kind = e.get("kind")
    if kind == "profile":
        body = {"name": _str(e, "name"), "bio": _str(e, "bio", ""), "skills": e.get("skills", [])}
        return "profile", body, False
    if kind == "transfer":
        to, amount = _account(e.get("to"), "to"), _int(e.get("amount"), "amount", 1)
        return "transfer", {"to": to, "amount": amount, "memo": _str(e, "memo", "")}, True
    if kind == "vouch":
        return "vouch", {"account": _account(e.get("account"))}, False
    raise UserError("kind is 'profile', 'transfer' or 'vouch'")


def _bounty_json(b: Bounty, now_ms: int, full: bool = False) -> dict[str, Any]:
    phase = b.phase
    if phase not in FINAL_PHASES and now_ms > b.review_by:
        phase_view = "abandoned"
    elif phase == "open" and now_ms > b.submit_by:
        phase_view = "awaiting_close"
    else:
        phase_view = phase
    out: dict[str, Any] = {
        "id": b.id.hex(),
        "title": b.title,
        "author": account_text(b.author),
        "phase": b.phase,
        "status": phase_view,
        "reward": b.reward,
        "escrow": b.escrow,
        "reviewer_share_bp": b.reviewer_share_bp,
        "skills": list(b.skills),
        "rubric": [{"name": n, "max": m} for n, m in b.rubric],
        "submit_by": b.submit_by,
        "review_by": b.review_by,
        "quorum": b.quorum,
        "posted_at": b.posted_at,
        "commits": len(b.commits),
        "submissions": len(b.submissions),
    }
    if full:
        out["description"] = b.description
        out["accepted"] = [c.hex() for c in b.accepted]
        out["commit_ids"] = {c.hex(): account_text(a) for c, a in b.commits.items()}
        out["settled_by"] = b.settled_by.hex() if b.settled_by else None
    return out


def _terms_of(d: dict[str, Any], min_ppm: int) -> dict[str, Any] | None:
    """The bounty_terms body (without `bounty`) a post asks for, or None."""
    pre = d.get("prereq_bounties", [])
    skills = d.get("prereq_skills", [])
    res = d.get("resources", [])
    if not isinstance(pre, list) or not all(isinstance(x, str) for x in pre):
        raise UserError("prereq_bounties must be a list of bounty ids (hex)")
    if not isinstance(skills, list) or not isinstance(res, list):
        raise UserError("prereq_skills and resources must be lists")
    try:
        pre_ids = [bytes.fromhex(x) for x in pre]
    except ValueError:
        raise UserError("prereq_bounties must be a list of bounty ids (hex)") from None
    if not (min_ppm or pre_ids or skills or res):
        return None
    return {
        "min_reviewer_trust_ppm": min_ppm,
        "prereq_bounties": pre_ids,
        "prereq_skills": skills,
        "resources": res,
    }


def _terms_json(state: State, bid: bytes) -> dict[str, Any] | None:
    t = state.terms.get(bid)
    if t is None:
        return None
    return {
        "min_reviewer_trust_ppm": t.min_reviewer_trust_ppm,
        "prereq_bounties": [
            {"id": p.hex(), "title": state.bounties[p].title if p in state.bounties else None}
            for p in t.prereq_bounties
        ],
        "prereq_skills": list(t.prereq_skills),
        "resources": [dict(r) for r in t.resources],
    }


def _rep_json(r: Reputation | None) -> dict[str, Any]:
    if r is None:
        return {"score": 0, "points": 0, "abandoned": 0, "trusted": False, "equivocated": False}
    return {
        "score": r.score,
        "points": r.points,
        "abandoned": r.abandoned,
        "trusted": r.trusted,
        "equivocated": r.equivocated,
    }


def _name_of(st: State, acct: bytes) -> str | None:
    a = st.accounts.get(acct)
    if a is None or not a.profile:
        return None
    name = a.profile.get("name")
    return name if isinstance(name, str) else None


def _viewer(b: Bounty, st: State, me: bytes, now_ms: int) -> dict[str, Any]:
    """What a bounty means to the viewer: its role there, its commit, the next
    thing it can do (`submit`, `close`, `award`, `refund`, `review` or None)
    and, for `review`, the submissions it may still review."""
    my_commit = None
    for cid, learner in b.commits.items():
        if learner == me:
            c = st.commits.get(cid)
            my_commit = {"id": cid.hex(), "at": c.timestamp if c else None}
            break
    reviewed_by_me = [
        s.id for s in b.submissions.values() for r in s.reviews if st.reviews[r].reviewer == me
    ]
    reviewable = []
    if b.author != me and b.phase == "closed" and now_ms <= b.review_by:
        reviewable = [
            s.id.hex()
            for s in b.submissions.values()
            if s.learner != me and s.id not in reviewed_by_me
        ]
    action: str | None = None
    if b.author == me:
        role: str | None = "mentor"
        if b.phase == "open":
            action = "close"
        elif b.phase == "closed":
            action = "award" if b.submissions else "refund"
    else:
        role = "learner" if my_commit else ("reviewer" if reviewed_by_me or reviewable else None)
        if b.phase == "open" and now_ms <= b.submit_by and my_commit is None:
            action = "submit"
        elif reviewable:
            action = "review"
    return {
        "my_role": role,
        "my_commit": my_commit,
        "next_action": action,
        "reviewable": reviewable,
        "my_reviews": [sid.hex() for sid in reviewed_by_me],
    }


def make_app(node: Node, token: str, *, admin: bool = False) -> Starlette:
    """The node's HTTP app. `admin` (`node start --admin`) adds /api/admin/*: fault
    injection for devnets and tests, a 404 on any other node."""
    def state() -> State:
        return node.ledger.replica.state  # always the live state: a rebuild replaces it

    def me() -> bytes:
        return node.key.public_key

    async def body_of(request: Request) -> dict[str, Any]:
        return await json_object(request)

    def event_json(ev_id: bytes) -> dict[str, Any]:
        return {"id": ev_id.hex()}

    # -- read ------------------------------------------------------------------

    async def status(request: Request) -> Any:
        rep = node.ledger.replica
        return {
            "account": account_text(me()),
            "peer_id": node.peer_id,
            "addrs": node.dial_addrs() if node.p2p else [],
            "peers": node.connected_peers(),
            "mesh_peers": node.mesh_peers(),
            "network": node.genesis.name,
            "network_id": node.network.hex(),
            "events": len(rep.raw),
            "pending": len(rep.pending),
            "pending_dropped": node.ledger.pending_dropped,
            "heads": {account_text(a): s for a, s in sorted(rep.heads.items())},
            "digest": rep.digest().hex(),
            "forks": [account_text(a) for a in sorted(rep.state.forks)],
            "balance": state().balance(me()),
            "stats": node.stats,
            "uptime_s": round(node.monotonic() - node.started_mono, 1),
            "web": {"streams": open_streams[0], "sessions": len(sessions)},
        }

    async def peers(request: Request) -> Any:
        return {
            "peers": node.connected_peers(),
            "mesh_peers": node.mesh_peers(),
            **node.peers.view(node.monotonic()),
        }

    async def bounties(request: Request) -> Any:
        """Bounties, newest first, with the viewer's role and next action.
        Filters: q (title/description text), skill, phase, min_reward,
        author (lm…), mine=1 (authored, committed or reviewed by me)."""
        qp = request.query_params
        phase = qp.get("phase")
        skill = qp.get("skill")
        text = (qp.get("q") or "").strip().casefold()
        min_reward = _query_int(request, "min_reward", 0, what="the minimum reward")
        author = _account(qp["author"], "author") if qp.get("author") else None
        mine = qp.get("mine") in ("1", "true", "yes")
        st, now, who = state(), node.now_ms(), me()
        mark = marker(node)  # moderation: hidden by my blocklist or community flags
        out = []
        for b in st.bounties.values():
            j = _bounty_json(b, now)
            if phase and phase not in (j["phase"], j["status"]):
                continue
            if skill and skill not in b.skills:
                continue
            if b.reward < min_reward or (author is not None and b.author != author):
                continue
            if text and text not in b.title.casefold() and text not in b.description.casefold():
                continue
            j.update(_viewer(b, st, who, now))
            if mine and j["my_role"] not in ("mentor", "learner") and not j["my_reviews"]:
                continue
            j["author_name"] = _name_of(st, b.author)
            j.update(mark(b.id, b.author))
            out.append(j)
        out.sort(key=lambda j: j["posted_at"], reverse=True)
        return {"bounties": out}

    async def bounty(request: Request) -> Any:
        bid = _hex(request.path_params["bid"], "bounty")
        b = state().bounties.get(bid)
        if b is None:
            raise UserError("no such bounty", status=404, code="not_found")
        j = _bounty_json(b, node.now_ms(), full=True)
        j.update(_viewer(b, state(), me(), node.now_ms()))
        j["author_name"] = _name_of(state(), b.author)
        subs = []
        for s in b.submissions.values():
            subs.append(
                {
                    "id": s.id.hex(),
                    "learner": account_text(s.learner),
                    "commit": s.commit.hex(),
                    "text": s.text,
                    "attachments": [
                        {
                            "hash": a["hash"].hex(),
                            "name": a["name"],
                            "size": a["size"],
                            "have": node.blobs.has(a["hash"]),
                        }
                        for a in s.attachments
                    ],
                    "awarded": s.awarded,
                    "reviews": [
                        {
                            "id": r.hex(),
                            "reviewer": account_text(state().reviews[r].reviewer),
                            "scores": dict(
                                zip(
                                    [n for n, _ in b.rubric], state().reviews[r].scores, strict=True
                                )
                            ),
                            "comment": state().reviews[r].comment,
                            "paid": state().reviews[r].paid,
                        }
                        for r in s.reviews
                    ],
                }
            )
        mark = marker(node)  # moderation: hidden by my blocklist or community flags
        j.update(mark(b.id, b.author))
        for sub, sj in zip(b.submissions.values(), subs, strict=True):
            sj.update(mark(sub.id, sub.learner))
            rjs: list[dict[str, Any]] = sj["reviews"]  # type: ignore[assignment]
            for rid, rj in zip(sub.reviews, rjs, strict=True):
                rj.update(mark(rid, state().reviews[rid].reviewer))
        j["submissions_detail"] = subs
        j["review_trust"] = bounty_review_trust(node, b)  # node/_api_trust.py
        j["terms"] = _terms_json(state(), b.id)  # PROTOCOL.md §6.6, or null
        return j

    async def balances(request: Request) -> Any:
        return {
            "balances": {
                account_text(k): a.balance for k, a in sorted(state().accounts.items()) if a.balance
            },
            # bounty escrows and dispute bonds still locked (both in the supply)
            "escrow": sum(b.escrow for b in state().bounties.values()) + state().disputes.escrow(),
            "supply": state().total_supply(),
            "genesis_supply": node.genesis.total_supply,
        }

    async def balance(request: Request) -> Any:
        acct = (
            _account(request.path_params["account"]) if "account" in request.path_params else me()
        )
        a = state().accounts.get(acct)
        return {
            "account": account_text(acct),
            "balance": a.balance if a else 0,
            "spendable": (a.spendable if a else 0)
            + sum(n for _, n in state().unclaimed_credits(acct)),
        }

    async def reputation_view(request: Request) -> Any:
        rep = reputation(state(), node.now_ms())
        acct_text = request.query_params.get("account")
        items: list[tuple[bytes, Reputation | None]] = list(rep.items())
        if acct_text:
            acct = _account(acct_text)
            items = [(k, v) for k, v in items if k == acct] or [(acct, None)]
        out = {}
        for k, r in items:
            out[account_text(k)] = (
                {
                    "score": r.score,
                    "points": r.points,
                    "abandoned": r.abandoned,
                    "trusted": r.trusted,
                    "equivocated": r.equivocated,
                }
                if r
                else {
                    "score": 0,
                    "points": 0,
                    "abandoned": 0,
                    "trusted": False,
                    "equivocated": False,
                }
            )
        return {"reputation": out}

    async def account_events(request: Request) -> Any:
        acct = _account(request.path_params["account"])
        limit = min(_query_int(request, "limit", 100, 1), 1000)
        rep = node.ledger.replica
        newest = rep.heads.get(acct, 0)
        rows = node.ledger.events_by_author(acct, limit=limit, offset=max(0, newest - limit))
        out = [
            {
                "id": r.id.hex(),
                "seq": r.seq,
                "kind": r.kind,
                "timestamp": r.timestamp,
                # the live verdict: a fork found later can void an applied event
                "void": rep.state.void[r.id][1] if r.id in rep.state.void else None,
            }
            for r in reversed(rows)
        ]
        return {"account": account_text(acct), "events": out}

    async def payments(request: Request) -> Any:
        """Tokens an account received (transfers with their memos, and award
        payouts) and the transfers it sent, newest first. Yours by default."""
        acct = (
            _account(request.query_params["account"]) if "account" in request.query_params else me()
        )
        limit = min(_query_int(request, "limit", 50, 1), 500)
        st = state()
        rows: list[dict[str, Any]] = []
        for cid, pays in st.credits.items():
            amount = pays.get(acct)
            if not amount:
                continue
            ev = node.stored_event(cid)
            transfer = ev.kind.name == "transfer"
            rows.append(
                {
                    "id": cid.hex(),
                    "kind": ev.kind.name,
                    "direction": "in",
                    "from": account_text(ev.author),
                    "to": account_text(acct),
                    "amount": amount,
                    "memo": ev.body.get("memo", "") if transfer else "",
                    # a dispute_claim (a bond paid back or shared) names no bounty
                    "bounty": ev.body["bounty"].hex() if "bounty" in ev.body else None,
                    "timestamp": ev.timestamp,
                    "void": cid in st.void,
                }
            )
        head = node.ledger.replica.heads.get(acct, 0)
        for r in node.ledger.events_by_author(acct, limit=1000, offset=max(0, head - 1000)):
            if r.kind != "transfer":
                continue
            max_bytes = node.genesis.params.max_event_bytes
            ev = decode_event(r.raw, max_bytes, node.network, verify=False)
            rows.append(
                {
                    "id": r.id.hex(),
                    "kind": "transfer",
                    "direction": "out",
                    "from": account_text(acct),
                    "to": account_text(ev.body["to"]),
                    "amount": ev.body["amount"],
                    "memo": ev.body["memo"],
                    "bounty": None,
                    "timestamp": ev.timestamp,
                    "void": r.id in st.void,
                }
            )
        rows.sort(key=lambda x: (x["timestamp"], x["id"]), reverse=True)
        return {"account": account_text(acct), "payments": rows[:limit]}

    async def applied(request: Request) -> Any:
        """Event id, creation time, local apply time and (for gossip) arrival
        time: devnet's propagation figures."""
        since = _query_int(request, "since", 0)
        rows = [(i.hex(), t, a, r) for i, t, a, r in node.applied_log if a >= since]
        return {"applied": rows}

    async def me_view(request: Request) -> Any:
        st, who = state(), me()
        a = st.accounts.get(who)
        prof = (a.profile if a else None) or {}
        rep = reputation(st, node.now_ms()).get(who)
        p = node.genesis.params
        return {
            "account": account_text(who),
            "name": prof.get("name"),
            "bio": prof.get("bio", ""),
            "skills": list(prof.get("skills", [])),
            "balance": a.balance if a else 0,
            "spendable": (a.spendable if a else 0) + sum(n for _, n in st.unclaimed_credits(who)),
            "reputation": _rep_json(rep),
            "vouches_by_me": sorted(account_text(v) for v in (a.vouches if a else ())),
            "vouches_for_me": sorted(
                account_text(k) for k, acc in st.accounts.items() if who in acc.vouches
            ),
            "peer_id": node.peer_id,
            "network": {"name": node.genesis.name, "id": node.network.hex()},
            "params": {
                **p.to_map(),
                # the schema's limits (PROTOCOL.md §3), for the page's forms
                "max_reviewer_share_bp": 5000,
                "max_title_chars": 200,
                "max_description_chars": 8000,
                "max_rubric_criteria": 16,
                "max_criterion_score": 100,
                "max_quorum": 16,
                "max_skills": 16,
                "max_attachments": 16,
                "max_text_chars": 16000,
                "max_comment_chars": 2000,
            },
        }

    async def profile_of(request: Request) -> Any:
        acct = _account(request.path_params["account"])
        st = state()
        a = st.accounts.get(acct)
        prof = (a.profile if a else None) or {}
        rep = reputation(st, node.now_ms()).get(acct)
        return {
            "account": account_text(acct),
            "name": prof.get("name"),
            "bio": prof.get("bio", ""),
            "skills": list(prof.get("skills", [])),
            "reputation": _rep_json(rep),
            "bounties_posted": sum(1 for b in st.bounties.values() if b.author == acct),
            "work_awarded": sum(
                1
                for b in st.bounties.values()
                for s in b.submissions.values()
                if s.learner == acct and s.awarded
            ),
            "reviews": len(a.reviewed) if a else 0,
            "vouches_for": sum(1 for acc in st.accounts.values() if acct in acc.vouches),
        }

    async def drafts(request: Request) -> Any:
        return {"drafts": [{k: v for k, v in d.items() if k != "salt"} for d in node.drafts()]}

    async def credential(request: Request) -> Any:
        from learnmesh.protocol import make_credential

        sid = _hex(request.path_params["sid"], "submission")
        found = state().find_submission(sid)
        if found is None:
            raise UserError("no such submission", status=404, code="not_found")
        b, sub = found
        if not sub.awarded or b.settled_by is None or b.close_id is None:
            raise UserError("this submission was not awarded", status=409, code="not_awarded")
        ev = node.stored_event
        data = make_credential(
            node.genesis, ev(b.id), ev(sub.commit), ev(b.close_id), ev(sid), ev(b.settled_by)
        )
        return Response(data, media_type="application/x-learnmesh-credential")

    # -- act --------------------------------------------------------------------

    async def post_bounty(request: Request) -> Any:
        d = await body_of(request)
        now = node.now_ms()
        rubric = d.get("rubric", [{"name": "quality", "max": 10}])
        if not isinstance(rubric, list):
            raise UserError("rubric must be a list of {name, max}")
        if not rubric:
            raise UserError("the rubric needs at least one criterion")
        if not _str(d, "title").strip():
            raise UserError("the title must not be blank")
        body = {
            "title": _str(d, "title"),
            "description": _str(d, "description", ""),
            "rubric": rubric,
            "skills": d.get("skills", []),
            "reward": _int(d.get("reward"), "reward", 1),
            "reviewer_share_bp": _int(d.get("reviewer_share_bp", 1000), "reviewer_share_bp"),
            "submit_by": _int(d.get("submit_by", now + 7 * 86_400_000), "submit_by"),
            "review_by": _int(d.get("review_by", now + 14 * 86_400_000), "review_by"),
            "quorum": _int(d.get("quorum", 1), "quorum", 1),
        }
        # bounty_terms (PROTOCOL.md §6.6), written right after the bounty
        min_ppm = _int(d.get("min_reviewer_trust_ppm", 0), "min_reviewer_trust_ppm")
        if min_ppm > MAX_PPM:
            raise UserError(f"min_reviewer_trust_ppm must be an integer in 0..{MAX_PPM}")
        terms = _terms_of(d, min_ppm)
        bal = state().balance(me())
        if body["reward"] > bal:
            raise UserError(
                f"not enough balance: the reward is {body['reward']} but you hold {bal}",
                status=409,
                code="insufficient_funds",
            )
        ev = await node.post_bounty(body, terms)
        return event_json(ev.id)

    async def submit(request: Request) -> Any:
        d = await body_of(request)
        files = []
        if not isinstance(d.get("files", []), list):
            raise UserError("files is a list of {name, data_b64} objects")
        for f in d.get("files", []):
            if (
                not isinstance(f, dict)
                or not isinstance(f.get("name"), str)
                or not isinstance(f.get("data_b64"), str)
            ):
                raise UserError("files are {name, data_b64} objects")
            try:
                data = base64.b64decode(f["data_b64"], validate=True)
            except ValueError:
                raise UserError(f"file {f['name']!r} is not valid base64") from None
            limit = node.genesis.params.max_blob_bytes
            if len(data) > limit:
                raise UserError(
                    f"{f['name']!r} is {len(data):,} bytes, over the network's attachment "
                    f"limit of {limit:,} bytes ({limit / 1048576:.1f} MiB)",
                    status=413,
                    code="too_large",
                )
            files.append((f["name"], data))
        ev = await node.submit(_hex(d.get("bounty"), "bounty"), _str(d, "text", ""), files)
        return event_json(ev.id)

    async def close(request: Request) -> Any:
        d = await body_of(request)
        accept = d.get("accept")
        if accept is not None and not isinstance(accept, list):
            raise UserError("accept is a list of commit ids (or absent to accept every commit)")
        acc = None if accept is None else [_hex(a, "commit") for a in accept]
        ev = await node.close(_hex(request.path_params["bid"], "bounty"), acc)
        return event_json(ev.id)

    async def review(request: Request) -> Any:
        d = await body_of(request)
        scores = d.get("scores")
        if not isinstance(scores, dict) or not all(isinstance(v, int) for v in scores.values()):
            raise UserError("scores is an object of criterion -> integer")
        ev = await node.review(
            _hex(d.get("submission"), "submission"), scores, _str(d, "comment", "")
        )
        return event_json(ev.id)

    def _not_settled(bid: bytes) -> None:
        """A second award or refund says so, not what the arithmetic says."""
        b = state().bounties.get(bid)
        if b is None:
            raise UserError("no such bounty", status=404, code="not_found")
        if b.phase in FINAL_PHASES:
            raise UserError(f"this bounty is already {b.phase}", status=409, code="settled")

    async def award(request: Request) -> Any:
        d = await body_of(request)
        winners_in = d.get("winners")
        if not isinstance(winners_in, dict) or not winners_in:
            raise UserError(
                "winners is an object of submission id -> amount (or null to split evenly)"
            )
        winners = {
            _hex(k, "submission"): (None if v is None else _int(v, "amount", 1))
            for k, v in winners_in.items()
        }
        rule = d.get("reviewers", "trusted")  # the node suggests the trust-weighted rule (§6.5)
        if rule not in REVIEWER_RULES:
            raise UserError(
                "reviewers is 'median' (the plain median) or 'trusted' (the trust-weighted one)"
            )
        bid = _hex(request.path_params["bid"], "bounty")
        _not_settled(bid)
        min_trust = min_trust_of_ppm(bounty_min_ppm(node, bid))
        try:
            ev = await node.award(bid, winners, rule, min_trust)
        except UserError as exc:
            over = re.fullmatch(r"winners ask (\d+) but (-?\d+) is left", exc.message)
            if over is None:
                raise
            raise UserError(
                f"the winners' amounts add up to {over[1]}, but only {over[2]} is left "
                "in escrow after the reviewers' share",
                status=409,
                code="over_escrow",
            ) from None
        return event_json(ev.id)

    async def refund(request: Request) -> Any:
        bid = _hex(request.path_params["bid"], "bounty")
        _not_settled(bid)
        ev = await node.refund(bid)
        return event_json(ev.id)

    async def transfer(request: Request) -> Any:
        d = await body_of(request)
        amount = _int(d.get("amount"), "amount", 1)
        to = _account(d.get("to"), "to")
        bal = state().balance(me())
        if amount > bal:
            raise UserError(
                f"not enough balance: sending {amount} but you hold {bal}",
                status=409,
                code="insufficient_funds",
            )
        ev = await node.transfer(to, amount, _str(d, "memo", ""))
        return event_json(ev.id)

    async def vouch(request: Request) -> Any:
        d = await body_of(request)
        ev = await node.author("vouch", {"account": _account(d.get("account"))})
        return event_json(ev.id)

    async def profile(request: Request) -> Any:
        d = await body_of(request)
        body = {"name": _str(d, "name"), "bio": _str(d, "bio", ""), "skills": d.get("skills", [])}
        ev = await node.author("profile", body)
        return event_json(ev.id)

    async def events_batch(request: Request) -> Any:
        """Many events of this node's own chain in one request (scripts, the
        devnet): {"events": [{"kind": "profile"|"transfer"|"vouch", ...the
        fields of that kind's own route}]}, at most MAX_BATCH. Signed in order
        and stored in one transaction; the first event the rules refuse stops
        the batch and the ones before it stay (see node.author_batch)."""
        d = await body_of(request)
        items_in = d.get("events")
        if not isinstance(items_in, list) or not items_in:
            raise UserError("events is a non-empty list of {kind, ...fields} objects")
        if len(items_in) > MAX_BATCH:
            raise UserError(f"at most {MAX_BATCH} events per batch, not {len(items_in)}")
        items: list[tuple[str, dict[str, Any], bool]] = []
        for i, e in enumerate(items_in):
            try:
                items.append(_batch_item(e))
            except UserError as exc:
                raise UserError(f"events[{i}]: {exc.message}", exc.status, exc.code) from None
        made, at, err = await node.author_batch(items)
        if err is not None and not made:
            raise UserError(f"events[{at}]: {err.message}", err.status, err.code)
        out: dict[str, Any] = {"ids": [ev.id.hex() for ev in made], "complete": err is None}
        if err is not None:  # the events before it were made: a 200, so a retry replays it
            out["stopped"] = {"index": at, "error": err.code, "message": _humanise(err.message)}
        return out

    async def raw_event(request: Request) -> Any:
        """An event signed elsewhere (an external signer), as msgpack bytes. It
        goes through the node's one admission path, like gossip and sync: the
        same bytes get the same outcome whichever way they come in. A valid
        event that breaks a rule is applied as void (its signer has spent that
        seq; refusing it here would invite a second event at the same seq, a
        fork), and the answer says why it had no effect."""
        raw = await request.body()
        events, bad = node.decode_raws([raw])
        if bad:
            return JSONResponse(
                {"status": "rejected", "error": bad[0].code, "message": bad[0].reason},
                status_code=422,
            )
        ev = events[0]
        res = node.admit(events)[0]
        if res.status == "rejected":
            return JSONResponse(
                {"status": "rejected", "error": res.code, "message": res.reason}, status_code=422
            )
        if res.status in ("applied", "pending"):
            node.publish(ev.raw)
        out: dict[str, Any] = {"status": res.status, "id": ev.id.hex()}
        if res.code is not None:  # void, or held until its time
            out.update(error=res.code, message=res.reason)
        return JSONResponse(out, status_code=202 if res.status in ("pending", "held") else 200)

    async def get_blob(request: Request) -> Any:
        """An attachment, always as a download (never rendered by the browser)."""
        h = _hex(request.path_params["h"], "attachment")
        if not node.blobs.has(h) and not await node.fetch_blob(h):
            raise UserError("no such attachment here or at any peer", status=404, code="not_found")
        name = safe_filename(request.query_params.get("name", ""))
        return Response(
            node.blobs.get(h),
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    # -- admin (devnet faults) ----------------------------------------------------

    async def admin_connect(request: Request) -> Any:
        d = await body_of(request)
        addr = _str(d, "addr")
        try:
            multiaddr.Multiaddr(addr)
        except Exception as exc:  # the caller's mistake, not a failed dial
            raise UserError(f"addr is not a multiaddr: {exc}") from exc
        try:
            peer = await node.connect(addr)
        except Exception as exc:
            raise UserError(f"could not connect: {exc}", status=502, code="connect_failed") from exc
        return {"peer": peer}

    async def admin_partition(request: Request) -> Any:
        d = await body_of(request)
        peers = d.get("peers")
        if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
            raise UserError("peers is a list of peer ids")
        node.partition(peers)
        return {"partitioned": sorted(node.peers.partitioned)}

    async def admin_heal(request: Request) -> Any:
        node.heal()
        return {"partitioned": []}

    async def admin_sync(request: Request) -> Any:
        got = 0
        for p in node.connected_peers():
            got += await node.sync_with(p)
        return {"events": got}

    async def admin_clock(request: Request) -> Any:
        # Moves the wall clock only (event dates, deadlines): node/_clock.py.
        d = await body_of(request)
        clock = node.clock
        if not isinstance(clock, OffsetClock):
            raise UserError("this node's clock cannot be moved", status=409, code="fixed_clock")
        if "advance_ms" in d:
            try:
                clock.advance(d["advance_ms"])
            except ClockError as exc:
                raise UserError(str(exc)) from None
        return {"now_ms": node.now_ms(), "offset_ms": clock.offset_ms}

    metrics = NodeMetrics(node)  # GET /metrics, and the API latency (ApiLatency below)
    routes = [
        ("GET", "/api/status", status),
        ("GET", "/api/peers", peers),
        ("GET", "/api/bounties", bounties),
        ("GET", "/api/bounties/{bid}", bounty),
        ("GET", "/api/balances", balances),
        ("GET", "/api/balance", balance),
        ("GET", "/api/balance/{account}", balance),
        ("GET", "/api/reputation", reputation_view),
        ("GET", "/api/accounts/{account}/events", account_events),
        ("GET", "/api/applied", applied),
        ("GET", "/api/payments", payments),
        ("GET", "/api/drafts", drafts),
        ("GET", "/api/me", me_view),
        ("GET", "/api/profiles/{account}", profile_of),
        *credential_routes(node),  # node/_api_credentials.py (list, get, verify)
        *learning_routes(node),  # node/_api_learning.py (comments, resources)
        *message_routes(node),  # node/_api_messages.py (private messages)
        *trust_routes(node),  # node/_api_trust.py (ranking, one account, review quality)
        *recommendation_routes(node),  # node/_api_recommend.py (for this account)
        *dispute_routes(node),  # node/_api_disputes.py (disputes, votes, claims, jury duty)
        *moderation_routes(node),  # node/_api_moderation.py (flags, hidden view, blocklist)
        *metrics_routes(metrics),  # node/_metrics.py (Prometheus text format)
        *openapi_routes(),  # node/_openapi.py (this route table, described)
        ("GET", "/api/blobs/{h}", get_blob),
        ("POST", "/api/bounties", post_bounty),
        ("POST", "/api/submit", submit),
        ("POST", "/api/bounties/{bid}/close", close),
        ("POST", "/api/bounties/{bid}/award", award),
        ("POST", "/api/bounties/{bid}/refund", refund),
        ("POST", "/api/review", review),
        ("POST", "/api/transfer", transfer),
        ("POST", "/api/vouch", vouch),
        ("POST", "/api/profile", profile),
        ("POST", "/api/events", raw_event),
        ("POST", "/api/events/batch", events_batch),
    ]
    if admin:  # `node start --admin`: devnets and tests only; elsewhere these are a 404
        routes += [
            ("POST", "/api/admin/connect", admin_connect),
            ("POST", "/api/admin/partition", admin_partition),
            ("POST", "/api/admin/heal", admin_heal),
            ("POST", "/api/admin/sync", admin_sync),
            ("POST", "/api/admin/clock", admin_clock),
        ]
    expected = f"Bearer {token}".encode()
    # Lifetimes (login codes, idempotency keys) run on the monotonic clock: a
    # devnet may move the wall clock forward (node/_clock.py).
    clock = node.monotonic
    logins = LoginCodes(clock)
    sessions = Sessions()
    idempotency = Idempotency(clock)

    def principal_of(request: Request) -> tuple[str | None, bool]:
        """("token" or "session:…", whether by cookie), or (None, False)."""
        got = request.headers.get("authorization")
        if got is not None:
            # an Authorization header that is wrong is refused, cookie or not
            return (
                ("token", False) if hmac.compare_digest(got.encode(), expected) else (None, False)
            )
        sid = request.cookies.get(session_cookie(request))
        if sessions.valid(sid):
            return f"session:{sid}", True
        return None, False

    async def run(fn: Handler, request: Request) -> Response:
        try:
            out = await fn(request)
        except UserError as exc:
            return _error(exc.code, _humanise(exc.message), exc.status)
        except RecursionError:  # a handler's own JSON parsing of a body nested too deep
            return _error("bad_json", "the request body is nested too deeply", 400)
        except Exception:
            log.exception("API %s %s failed", request.method, request.url.path)
            return _error("internal", "the node hit an internal error; see its log", 500)
        return out if isinstance(out, Response) else JSONResponse(out)

    async def run_once(fn: Handler, request: Request, principal: str, key: str) -> Response:
        """Run a creating request once per (principal, key): a repeat replays."""
        if len(key) > MAX_KEY_LEN or not key.isascii() or not key.isprintable():
            return _error(
                "bad_idempotency_key",
                f"the Idempotency-Key header is at most {MAX_KEY_LEN} printable ASCII characters",
                400,
            )
        raw = await request.body()
        fp = Idempotency.fingerprint(request.method, request.url.path, raw)
        while True:
            first, entry = idempotency.begin(principal, key, fp)
            if first:
                break
            if entry.fingerprint != fp:
                return _error(
                    "idempotency_mismatch",
                    "this Idempotency-Key was already used for a different request",
                    422,
                )
            await entry.done.wait()
            if entry.answer is not None:
                status, body, media = entry.answer
                return Response(
                    body,
                    status_code=status,
                    media_type=media,
                    headers={"Idempotent-Replayed": "true"},
                )
            # the first attempt failed without authoring anything: try again
        try:
            resp = await run(fn, request)
        except BaseException:
            idempotency.abandon(principal, key, entry)
            raise
        if resp.status_code < 400:
            idempotency.finish(
                principal,
                key,
                entry,
                (resp.status_code, bytes(resp.body), resp.media_type or "application/json"),
            )
        else:
            idempotency.abandon(principal, key, entry)
        return resp

    def wrap(
        fn: Handler, method: str = "GET", path: str = "", public: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        idempotent = (method, path) in _IDEMPOTENT

        async def endpoint(request: Request) -> Response:
            principal, by_cookie = principal_of(request)
            request.state.principal = principal
            request.state.by_cookie = by_cookie
            if principal is None and not public:
                return _error("unauthorized", "missing or wrong API token", 401)
            unsafe = request.method not in ("GET", "HEAD")
            if (by_cookie or public) and unsafe and request.headers.get(CSRF_HEADER) != "1":
                return _error(
                    "csrf",
                    f"the page's requests carry the {CSRF_HEADER} header; this one did not",
                    403,
                )
            key = request.headers.get("idempotency-key")
            if idempotent and key is not None and principal is not None:
                return await run_once(fn, request, principal, key)
            return await run(fn, request)

        return endpoint

    # -- the web page's login ------------------------------------------------------

    async def login_link(request: Request) -> Any:
        if request.state.by_cookie:
            raise UserError(
                "a login link is made with the API token (run `learnmesh web`)",
                status=403,
                code="token_only",
            )
        code = logins.issue()
        port = (request.scope.get("server") or ("", node.settings.api_port))[1]
        return {
            "code": code,
            "url": f"http://127.0.0.1:{port}/#login={code}",
            "expires_in_s": int(LOGIN_TTL_S),
        }

    async def new_session(request: Request) -> Any:
        d = await body_of(request)
        code = d.get("code")
        if not isinstance(code, str) or not logins.redeem(code):
            raise UserError(
                "This login link was already used or has expired. "
                "Run `learnmesh web` for a new one.",
                status=401,
                code="login_expired",
            )
        old = request.cookies.get(session_cookie(request))
        sessions.end(old)
        sid = sessions.create()
        resp = JSONResponse({"ok": True, "account": account_text(me())})
        resp.set_cookie(
            session_cookie(request), sid, httponly=True, samesite="strict", path="/", secure=False
        )
        return resp

    async def logout(request: Request) -> Any:
        if request.state.by_cookie:
            sessions.end(request.cookies.get(session_cookie(request)))
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(session_cookie(request), path="/", httponly=True, samesite="strict")
        return resp

    # -- live updates --------------------------------------------------------------

    digest_cache: dict[str, Any] = {"key": None, "digest": ""}
    open_streams = [0]  # live /api/stream responses (a closed client must end its own)

    def change_key() -> tuple[Any, ...]:
        rep = node.ledger.replica
        st = rep.state
        return (
            id(rep),
            node.stats["events_applied"],
            len(rep.raw),
            len(rep.pending),
            len(st.void),
            len(st.forks),
            len(node.connected_peers()) if node.p2p else 0,
        )

    def snapshot(key: tuple[Any, ...]) -> dict[str, Any]:
        if digest_cache["key"] != key:  # one digest per change, shared by every stream
            digest_cache["key"] = key
            digest_cache["digest"] = node.ledger.replica.digest().hex()
        return {
            "applied": key[1],
            "events": key[2],
            "digest": digest_cache["digest"],
            "peers": key[6],
        }

    async def stream(request: Request) -> Any:
        sid = request.cookies.get(session_cookie(request)) if request.state.by_cookie else None

        async def events() -> AsyncIterator[bytes]:
            open_streams[0] += 1
            try:
                yield b"retry: 3000\n\n"
                last: tuple[Any, ...] | None = None
                quiet_since = trio.current_time()
                while sid is None or sessions.valid(sid):  # a logout ends its streams
                    key = change_key()
                    now = trio.current_time()
                    if key != last:
                        last = key
                        quiet_since = now
                        yield f"event: change\ndata: {json.dumps(snapshot(key))}\n\n".encode()
                    elif now - quiet_since >= 15.0:
                        quiet_since = now
                        yield b": ping\n\n"
                    await trio.sleep(0.25)  # coalesces bursts: at most 4 changes a second
            finally:
                open_streams[0] -= 1

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    # -- the page and its files ------------------------------------------------------

    static_dir = Path(__file__).parent / "static"

    async def index(request: Request) -> Response:
        # The page itself holds no secret: it logs in with a one-time code from
        # `learnmesh web` and the session lives in an HttpOnly cookie.
        page = (static_dir / "index.html").read_bytes()
        return Response(page, media_type="text/html; charset=utf-8")

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            return _error("not_found", f"nothing at {request.url.path}", 404)
        if status == 405:
            return _error("method_not_allowed", f"{request.method} is not allowed here", 405)
        return _error("http_error", str(getattr(exc, "detail", "")) or "request refused", status)

    api_routes = [Route(path, wrap(fn, m, path), methods=[m]) for m, path, fn in routes]
    session_routes = [
        Route("/api/login-link", wrap(login_link, "POST"), methods=["POST"]),
        Route("/api/session", wrap(new_session, "POST", public=True), methods=["POST"]),
        Route("/api/logout", wrap(logout, "POST"), methods=["POST"]),
        Route("/api/stream", wrap(stream), methods=["GET"]),
    ]
    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=static_dir), name="static"),
            *session_routes,
            *api_routes,
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.add_middleware(SecurityGuard)
    app.add_middleware(ApiLatency, metrics=metrics)  # outermost: times the guard's refusals too
    return app
