"""API route for recommendations (node/_recommend.py; the page and the CLI use it):

- `GET /api/recommendations?limit=N`: open bounties ranked for this node's
  account, each with its score, the parts of the score, the reasons in
  sentences and the prerequisites it is missing. Bounties this node's
  blocklist or the community's flags hide are left out (`hidden` counts them).

Computed here, from the events this node already holds and the trust view it
already keeps (`node_trust`, node/_api_trust.py: recomputed when the state
changed, at most every few seconds). No data leaves the node for this: no peer
is asked anything and nothing is published; what the learner looks at stays
on its own node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from learnmesh.protocol import State, account_text
from starlette.requests import Request

from ._api_moderation import hidden_view
from ._api_trust import node_trust
from ._recommend import DEFAULT_LIMIT, MAX_LIMIT, Recommendation, rank
from ._service import Node, UserError

__all__ = ["recommendation_json", "recommendation_routes", "recommendations"]

Handler = Callable[[Request], Awaitable[Any]]


def _name_of(state: State, acct: bytes) -> str | None:
    a = state.accounts.get(acct)
    name = a.profile.get("name") if a is not None and a.profile else None
    return name if isinstance(name, str) else None


def recommendation_json(state: State, r: Recommendation) -> dict[str, Any]:
    b = r.bounty
    return {
        "bounty": b.id.hex(),
        "title": b.title,
        "mentor": account_text(b.author),
        "mentor_name": _name_of(state, b.author),
        "reward": b.reward,
        "skills": list(b.skills),
        "submit_by": b.submit_by,
        "review_by": b.review_by,
        "score": r.score,
        "ready": r.ready,
        "parts": dict(r.parts),
        "reasons": list(r.reasons),
        "missing": [m.to_json() for m in r.missing],
    }


def recommendations(node: Node, limit: int) -> dict[str, Any]:
    """The answer of GET /api/recommendations for the node's own account."""
    state, snap = node_trust(node)
    now = node.now_ms()
    # Not recommended: what this node's blocklist or the community's flags hide
    # (node/_api_moderation.py; the bounty lists grey these out instead).
    _, hv, _ = hidden_view(node)
    blocked = frozenset(e.account for e in node.blocklist.entries())
    ranked = rank(
        state,
        snap.view,
        node.key.public_key,
        now,
        limit,
        hidden_bounties=hv.event_ids,
        hidden_authors=blocked | hv.account_keys,
    )
    return {
        "account": account_text(node.key.public_key),
        "now_ms": now,
        "events": snap.events,
        "trust_digest": snap.clock_free.digest.hex(),
        "count": ranked.count,
        "hidden": ranked.skipped,
        "recommendations": [recommendation_json(state, r) for r in ranked.items],
    }


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        v = int(raw)
    except ValueError:
        raise UserError("limit must be an integer", code="bad_request") from None
    if not 1 <= v <= MAX_LIMIT:
        raise UserError(f"limit must be between 1 and {MAX_LIMIT}", code="bad_request")
    return v


def recommendation_routes(node: Node) -> list[tuple[str, str, Handler]]:
    async def ranked(request: Request) -> Any:
        return recommendations(node, _limit(request))

    return [("GET", "/api/recommendations", ranked)]
