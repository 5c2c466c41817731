"""The local HTTP JSON API (Starlette on hypercorn's trio worker, 127.0.0.1 only).

Every request needs `Authorization: Bearer <token>` with the token from the
data directory. Ids travel as hex, accounts in their `lm…` text form, amounts
as integers. A mistake gets a 4xx with {"error": code, "message": sentence}.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._service import Node, UserError

__all__ = ["check_loopback", "make_app"]

log = logging.getLogger("learnmesh.api")
_MAX_BODY = 32 * 1024 * 1024

Handler = Callable[[Request], Awaitable[Any]]


def check_loopback(host: str) -> None:
    """The API holds the node's keys' power: it never listens beyond loopback."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the API binds only to a loopback address (127.0.0.1 or ::1), not {host!r}")


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


def _str(body: dict[str, Any], key: str, default: str | None = None) -> str:
    v = body.get(key, default)
    if not isinstance(v, str):
        raise UserError(f"{key} must be text")
    return v


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


def make_app(node: Node, token: str) -> Starlette:
    def state() -> State:
        return node.ledger.replica.state  # always the live state: a rebuild replaces it

    def me() -> bytes:
        return node.key.public_key

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            raise UserError("request body too large", status=413)
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise UserError("the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise UserError("the request body must be a JSON object")
        return data

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
            "uptime_s": round(node.clock() - node.started_at, 1),
        }

    async def peers(request: Request) -> Any:
        return {
            "peers": node.connected_peers(),
            "mesh_peers": node.mesh_peers(),
            "partitioned": sorted(node._partitioned),
            "scores": {
                p: {"score": round(s.score, 1), "reasons": list(s.reasons)}
                for p, s in node._peers.items()
            },
            "rejections": list(node.last_rejections),
        }

    async def bounties(request: Request) -> Any:
        phase = request.query_params.get("phase")
        skill = request.query_params.get("skill")
        now = node.now_ms()
        out = []
        for b in state().bounties.values():
            j = _bounty_json(b, now)
            if phase and phase not in (j["phase"], j["status"]):
                continue
            if skill and skill not in b.skills:
                continue
            out.append(j)
        out.sort(key=lambda j: j["posted_at"], reverse=True)
        return {"bounties": out}

    async def bounty(request: Request) -> Any:
        bid = _hex(request.path_params["bid"], "bounty")
        b = state().bounties.get(bid)
        if b is None:
            raise UserError("no such bounty", status=404, code="not_found")
        j = _bounty_json(b, node.now_ms(), full=True)
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
        j["submissions_detail"] = subs
        return j

    async def balances(request: Request) -> Any:
        return {
            "balances": {
                account_text(k): a.balance for k, a in sorted(state().accounts.items()) if a.balance
            },
            "escrow": sum(b.escrow for b in state().bounties.values()),
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
        limit = min(int(request.query_params.get("limit", "100")), 1000)
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

    async def applied(request: Request) -> Any:
        """Event id, creation time and local apply time: devnet's propagation figures."""
        since = int(request.query_params.get("since", "0"))
        rows = [(i.hex(), t, a) for i, t, a in node.applied_log if a >= since]
        return {"applied": rows}

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
        rubric = d.get("rubric") or [{"name": "quality", "max": 10}]
        if not isinstance(rubric, list):
            raise UserError("rubric must be a list of {name, max}")
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
        bal = state().balance(me())
        if body["reward"] > bal:
            raise UserError(
                f"not enough balance: the reward is {body['reward']} but you hold {bal}",
                status=409,
                code="insufficient_funds",
            )
        ev = await node.post_bounty(body)
        return event_json(ev.id)

    async def submit(request: Request) -> Any:
        d = await body_of(request)
        files = []
        for f in d.get("files", []):
            if (
                not isinstance(f, dict)
                or not isinstance(f.get("name"), str)
                or not isinstance(f.get("data_b64"), str)
            ):
                raise UserError("files are {name, data_b64} objects")
            try:
                files.append((f["name"], base64.b64decode(f["data_b64"], validate=True)))
            except ValueError:
                raise UserError(f"file {f['name']!r} is not valid base64") from None
        ev = await node.submit(_hex(d.get("bounty"), "bounty"), _str(d, "text", ""), files)
        return event_json(ev.id)

    async def close(request: Request) -> Any:
        d = await body_of(request)
        accept = d.get("accept")
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
        ev = await node.award(_hex(request.path_params["bid"], "bounty"), winners)
        return event_json(ev.id)

    async def refund(request: Request) -> Any:
        ev = await node.refund(_hex(request.path_params["bid"], "bounty"))
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

    async def raw_event(request: Request) -> Any:
        """An event signed elsewhere (an external signer), as msgpack bytes."""
        raw = await request.body()
        try:
            ev = decode_event(raw, node.genesis.params.max_event_bytes, node.network)
        except RemoteProtocolError as exc:
            return JSONResponse(
                {"status": "rejected", "error": exc.code, "message": exc.reason}, status_code=422
            )
        void = None
        rep = node.ledger.replica
        if all(r in rep.raw for r in ev.refs) and (ev.prev is None or ev.prev in rep.raw):
            void = rep.state.would_void(ev)
        if void is not None and not rep.has(ev.id):
            return JSONResponse(
                {"status": "rejected", "error": void[0], "message": void[1]}, status_code=422
            )
        res = node.ingest([ev])[0]
        if res.status == "rejected":
            return JSONResponse(
                {"status": "rejected", "error": res.code, "message": res.reason}, status_code=422
            )
        if res.status in ("applied", "pending"):
            node.publish(ev.raw)
        return {"status": res.status, "id": ev.id.hex()}

    async def get_blob(request: Request) -> Any:
        h = _hex(request.path_params["h"], "blob")
        if not node.blobs.has(h) and not await node.fetch_blob(h):
            raise UserError("no such attachment here or at any peer", status=404, code="not_found")
        return Response(node.blobs.get(h), media_type="application/octet-stream")

    # -- admin (devnet faults) ----------------------------------------------------

    async def admin_connect(request: Request) -> Any:
        d = await body_of(request)
        try:
            peer = await node.connect(_str(d, "addr"))
        except Exception as exc:
            raise UserError(f"could not connect: {exc}", status=502, code="connect_failed") from exc
        return {"peer": peer}

    async def admin_partition(request: Request) -> Any:
        d = await body_of(request)
        peers = d.get("peers")
        if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
            raise UserError("peers is a list of peer ids")
        node.partition(peers)
        return {"partitioned": sorted(node._partitioned)}

    async def admin_heal(request: Request) -> Any:
        node.heal()
        return {"partitioned": []}

    async def admin_sync(request: Request) -> Any:
        got = 0
        for p in node.connected_peers():
            got += await node.sync_with(p)
        return {"events": got}

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
        ("GET", "/api/drafts", drafts),
        ("GET", "/api/credentials/{sid}", credential),
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
        ("POST", "/api/admin/connect", admin_connect),
        ("POST", "/api/admin/partition", admin_partition),
        ("POST", "/api/admin/heal", admin_heal),
        ("POST", "/api/admin/sync", admin_sync),
    ]
    expected = f"Bearer {token}".encode()

    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            got = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(got, expected):
                return JSONResponse(
                    {"error": "unauthorized", "message": "missing or wrong API token"},
                    status_code=401,
                )
            try:
                out = await fn(request)
            except UserError as exc:
                return JSONResponse(
                    {"error": exc.code, "message": exc.message}, status_code=exc.status
                )
            except Exception:
                log.exception("API %s %s failed", request.method, request.url.path)
                return JSONResponse(
                    {"error": "internal", "message": "the node hit an internal error; see its log"},
                    status_code=500,
                )
            return out if isinstance(out, Response) else JSONResponse(out)

        return endpoint

    page = (Path(__file__).parent / "static" / "index.html").read_bytes()

    async def index(request: Request) -> Response:
        # The page itself holds no secret: it reads the token from the link's
        # fragment (`learnmesh web` prints it) and sends it with every API call.
        return Response(page, media_type="text/html; charset=utf-8")

    api_routes = [Route(path, wrap(fn), methods=[m]) for m, path, fn in routes]
    return Starlette(routes=[Route("/", index, methods=["GET"]), *api_routes])
