"""API routes for private messages (node/_messages.py; the page and the CLI use them):

- `POST /api/messages` {to, text}: seal and send a message to an account.
- `GET /api/messages`: this account's conversations, newest first, with unread counts.
- `GET /api/messages/{account}`: one conversation, oldest first; marks it read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from learnmesh.protocol import RemoteProtocolError, account_from_text, account_text
from starlette.requests import Request

from ._api_args import json_object
from ._messages import Stored
from ._service import Node, UserError

__all__ = ["message_routes"]

Handler = Callable[[Request], Awaitable[Any]]
_MAX_BODY = 64 * 1024


def _account(v: Any, what: str = "to") -> bytes:
    if not isinstance(v, str) or not v:
        raise UserError(f"{what} must be an account (lm…)")
    try:
        return account_from_text(v.strip())
    except RemoteProtocolError as exc:
        raise UserError(f"{what}: {exc.reason}") from None


def _name(node: Node, acct: bytes) -> str | None:
    a = node.ledger.replica.state.accounts.get(acct)
    if a is None or not a.profile:
        return None
    name = a.profile.get("name")
    return name if isinstance(name, str) else None


def _message_json(m: Stored, me: bytes) -> dict[str, Any]:
    return {
        "id": m.id.hex(),
        "from": account_text(me if m.outgoing else m.peer),
        "to": account_text(m.peer if m.outgoing else me),
        "outgoing": m.outgoing,
        "sent_ms": m.sent_ms,
        "received_ms": m.received_ms,
        "text": m.body,
        "read": m.read,
    }


def message_routes(node: Node) -> list[tuple[str, str, Handler]]:
    async def send(request: Request) -> Any:
        body = await json_object(request, _MAX_BODY, "the request body is too large for a message")
        to = _account(body.get("to"))
        text = body.get("text")
        if not isinstance(text, str):
            raise UserError("text must be a string")
        out = await node.messages.send(to, text)
        return {**out, "to": account_text(to)}

    async def conversations(request: Request) -> Any:
        out = []
        for c in node.messages.inbox.conversations():
            out.append(
                {
                    "account": account_text(c["peer"]),
                    "name": _name(node, c["peer"]),
                    "count": c["count"],
                    "unread": c["unread"],
                    "last_ms": c["last_ms"],
                    "last_text": c["last_text"],
                    "last_outgoing": c["last_outgoing"],
                }
            )
        return {
            "conversations": out,
            "unread": node.messages.inbox.unread(),
            "account": account_text(node.key.public_key),
        }

    async def conversation(request: Request) -> Any:
        peer = _account(request.path_params["account"], "account")
        me = node.key.public_key
        msgs = node.messages.inbox.conversation(peer)
        node.messages.inbox.mark_read(peer)
        return {
            "account": account_text(peer),
            "name": _name(node, peer),
            "messages": [_message_json(m, me) for m in msgs],
        }

    return [
        ("GET", "/api/messages", conversations),
        ("GET", "/api/messages/{account}", conversation),
        ("POST", "/api/messages", send),
    ]
