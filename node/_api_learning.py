"""API routes for discussion and resources (node/_learning.py does the work):

- `GET /api/bounties/{bid}/comments`: every thread under a bounty (comments
  on it, its submissions, their reviews and its resources, with replies) in
  reading order, each with `depth`, its rendered Markdown tree, its author's
  name and `hidden` (this node blocks the author, or the community's flags
  hide it) with `hidden_why`.
- `GET /api/comments/{eid}`: the thread under any one bounty, submission,
  review, comment or resource (comments on it and their replies), same fields.
- `POST /api/comments` `{target, text}`: comment on a bounty, a submission, a
  review, a comment or a resource.
- `GET /api/resources?skill=S&bounty=B`: suggested resources, ranked by the
  suggesters' trust in the skill.
- `POST /api/resources` `{skill, title, url, kind, licence, bounty}`: suggest one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from ._api_args import hex_id, json_object
from ._learning import (
    bounty_comments,
    event_thread,
    list_resources,
    post_comment,
    post_resource,
)
from ._service import Node, UserError

__all__ = ["learning_routes"]

Handler = Callable[[Request], Awaitable[Any]]


def learning_routes(node: Node) -> list[tuple[str, str, Handler]]:
    async def comments(request: Request) -> Any:
        return bounty_comments(node, hex_id(request.path_params["bid"], "bounty"))

    async def one_thread(request: Request) -> Any:
        return event_thread(node, hex_id(request.path_params["eid"], "event"))

    async def new_comment(request: Request) -> Any:
        d = await json_object(request)
        ev = await post_comment(node, hex_id(d.get("target"), "target"), d.get("text"))
        return {"id": ev.id.hex()}

    async def resources(request: Request) -> Any:
        qp = request.query_params
        skill = qp.get("skill") or None
        if skill is not None and len(skill) > 32:
            raise UserError("a skill is at most 32 characters")
        bounty = hex_id(qp["bounty"], "bounty") if qp.get("bounty") else None
        return list_resources(node, skill, bounty)

    async def new_resource(request: Request) -> Any:
        d = await json_object(request)
        b = d.get("bounty")
        ev = await post_resource(node, d, hex_id(b, "bounty") if b else None)
        return {"id": ev.id.hex()}

    return [
        ("GET", "/api/bounties/{bid}/comments", comments),
        ("GET", "/api/comments/{eid}", one_thread),
        ("POST", "/api/comments", new_comment),
        ("GET", "/api/resources", resources),
        ("POST", "/api/resources", new_resource),
    ]
