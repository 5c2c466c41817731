"""API routes for disputes and juries (node/_disputes.py does the work):

- `GET /api/disputes[?bounty=ID]`: every dispute (or one bounty's), newest first, with its phase and
  outcome, jurors and their votes, deadlines, bond movements, this account's
  role and its next action.
- `GET /api/disputes/{did}`: one dispute, the same shape.
- `POST /api/disputes`: file a dispute `{target, claim, bond, subject?,
  files?, vote_by?, reveal_by?}`; with `appeal_of` (a dispute id) it appeals
  that dispute instead (`target` is then not needed).
- `POST /api/disputes/{did}/vote`: a juror commits `{verdict, reason?}`; the
  node reveals it by itself after `vote_by`.
- `POST /api/disputes/{did}/reveal`: reveal this juror's vote now (after
  `vote_by`; the node also does it by itself).
- `POST /api/disputes/{did}/claim`: take what a decided dispute owes this
  account (the node also does it by itself).
- `GET /api/jury`: what waits on this account: jury duty with deadlines,
  bonds to claim, disputes against it and its own.

A dispute whose disputant this node blocks, or that community flags hide,
carries `hidden: true` with `hidden_by` and `hidden_why` (node/_api_moderation.py):
the page greys it out with "show anyway"; a juror still sees it and votes.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from learnmesh.protocol import account_from_text
from starlette.requests import Request

from ._api_args import hex_id, json_object
from ._api_moderation import marker
from ._disputes import (
    appeal,
    claim,
    dispute_json,
    disputes_json,
    file_dispute,
    jury_reveal,
    jury_vote,
    records,
    what_waits,
)
from ._service import Node, UserError

__all__ = ["dispute_routes"]

Handler = Callable[[Request], Awaitable[Any]]


def _opt_int(d: dict[str, Any], key: str, what: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise UserError(f"{what} must be a time in ms since the epoch (an integer)")
    return v


def _text(d: dict[str, Any], key: str, default: str = "") -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise UserError(f"{key} must be text")
    return v


def _files(node: Node, d: dict[str, Any]) -> list[tuple[str, bytes]]:
    raw = d.get("files", [])
    if not isinstance(raw, list):
        raise UserError("files is a list of {name, data_b64} objects")
    out = []
    for f in raw:
        if (
            not isinstance(f, dict)
            or not isinstance(f.get("name"), str)
            or not isinstance(f.get("data_b64"), str)
        ):
            raise UserError("files are {name, data_b64} objects")
        try:
            data = base64.b64decode(f["data_b64"], validate=True)
        except ValueError:
            raise UserError(f"file {f['name'][:64]!r} is not valid base64") from None
        out.append((f["name"], data))
    return out


def dispute_routes(node: Node) -> list[tuple[str, str, Handler]]:
    async def body_of(request: Request) -> dict[str, Any]:
        return await json_object(request)

    def one(did: bytes) -> dict[str, Any]:
        recs = records(node)
        rec = recs.get(did)
        if rec is None:
            raise UserError("no such dispute", status=404, code="not_found")
        return {**dispute_json(node, rec, node.now_ms()), **marker(node)(did, rec.disputant)}

    async def list_disputes(request: Request) -> Any:
        now = node.now_ms()
        q = request.query_params.get("bounty")
        bounty = hex_id(q, "the bounty") if q else None
        mark = marker(node)  # a blocked or flagged disputant's dispute: shown greyed out
        rows = [
            {**d, **mark(bytes.fromhex(d["id"]), account_from_text(d["disputant"]))}
            for d in disputes_json(node, now, bounty)
        ]
        return {"now": now, "disputes": rows}

    async def get_dispute(request: Request) -> Any:
        return one(hex_id(request.path_params["did"], "the dispute"))

    async def post_dispute(request: Request) -> Any:
        d = await body_of(request)
        bond = d.get("bond")
        if bond is not None and (not isinstance(bond, int) or isinstance(bond, bool)):
            raise UserError("bond must be an integer number of tokens")
        files = _files(node, d)
        vote_by = _opt_int(d, "vote_by", "the voting deadline")
        reveal_by = _opt_int(d, "reveal_by", "the reveal deadline")
        claim_text = _text(d, "claim")
        if d.get("appeal_of") is not None:
            ev = await appeal(
                node,
                hex_id(d["appeal_of"], "appeal_of"),
                claim_text,
                files,
                bond,
                vote_by=vote_by,
                reveal_by=reveal_by,
            )
        else:
            if bond is None:
                raise UserError("bond is needed: the tokens you lock until the jury decides")
            subject = hex_id(d["subject"], "subject") if d.get("subject") is not None else None
            ev = await file_dispute(
                node,
                hex_id(d.get("target"), "target"),
                subject,
                claim_text,
                files,
                bond,
                vote_by=vote_by,
                reveal_by=reveal_by,
            )
        return one(ev.id)

    async def vote(request: Request) -> Any:
        did = hex_id(request.path_params["did"], "the dispute")
        d = await body_of(request)
        ev = await jury_vote(node, did, _text(d, "verdict"), _text(d, "reason"))
        return {"id": ev.id.hex()}

    async def reveal(request: Request) -> Any:
        ev = await jury_reveal(node, hex_id(request.path_params["did"], "the dispute"))
        return {"id": ev.id.hex()}

    async def claim_bond(request: Request) -> Any:
        ev = await claim(node, hex_id(request.path_params["did"], "the dispute"))
        return {"id": ev.id.hex()}

    async def jury(request: Request) -> Any:
        return what_waits(node, node.now_ms())

    return [
        ("GET", "/api/disputes", list_disputes),
        ("GET", "/api/disputes/{did}", get_dispute),
        ("GET", "/api/jury", jury),
        ("POST", "/api/disputes", post_dispute),
        ("POST", "/api/disputes/{did}/vote", vote),
        ("POST", "/api/disputes/{did}/reveal", reveal),
        ("POST", "/api/disputes/{did}/claim", claim_bond),
    ]
