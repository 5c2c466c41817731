"""The HTTP API described: OpenAPI 3.1 at `GET /api/openapi.json`, and API.md.

The description is built from the app's real route table (so a route that is
served is always listed) and `ROUTES` below, one entry per (method, path
template): its summary, query parameters, request body, answer and errors.
tests/test_openapi.py checks that both sides name the same routes, that the
documented shapes match real answers, and that API.md is up to date:

    .venv/bin/python -m learnmesh.node._openapi > API.md
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from ._clock import MAX_ADVANCE_MS

__all__ = ["ROUTES", "RouteDoc", "markdown", "openapi", "openapi_routes", "served_routes"]

Handler = Callable[[Request], Awaitable[Any]]
Schema = dict[str, Any]

OPENAPI_PATH = "/api/openapi.json"

# -- schema helpers ------------------------------------------------------------------------

S: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
NUM: Schema = {"type": "number"}
ANY: Schema = {}
HEX: Schema = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "32 bytes in hex"}
ACCT: Schema = {
    "type": "string",
    "pattern": "^lm[a-z2-7]{56}$",
    "description": "an account: `lm` + base32 of its public key and a checksum",
}


def obj(props: dict[str, Schema], *, optional: Iterable[str] = ()) -> Schema:
    """An object with these properties, all required except `optional`."""
    opt = set(optional)
    return {
        "type": "object",
        "properties": props,
        "required": [k for k in props if k not in opt],
    }


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def null(s: Schema) -> Schema:
    return {"anyOf": [s, {"type": "null"}]}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def dict_of(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


EVENT_ID = obj({"id": HEX})
# one comment in a thread (node/_learning.py `comment_json`)
COMMENT = obj(
    {
        "id": HEX,
        "target": HEX,
        "target_kind": null({"enum": ["bounty", "reveal", "review", "comment", "resource"]}),
        "bounty": null(HEX),
        "depth": INT,
        "replies": INT,
        "author": ACCT,
        "author_name": null(S),
        "timestamp": INT,
        "text": S,
        "markdown": arr(ANY),
        "hidden": BOOL,
        "hidden_by": null({"enum": ["block", "flags"]}),
        "hidden_why": null(S),
    }
)
# moderation marks on list items (node/_api_moderation.py `marker`)
HIDDEN_MARK: dict[str, Schema] = {
    "hidden": BOOL,
    "hidden_by": {"enum": ["block", "flags"]},
    "hidden_why": S,
}
FLAGGED = obj(
    {
        "subject": S,
        "kind": {"enum": ["event", "account"]},
        "account": ACCT,
        "account_name": null(S),
        "hidden": BOOL,
        "why": S,
        "trust": INT,
        "ppm": INT,
        "trusted_flaggers": INT,
        "categories": dict_of(INT),
        "target_kind": {"enum": ["bounty", "submission", "review", "account", "other"]},
        "bounty": null(HEX),
        "title": S,
        "flags": arr(
            obj(
                {
                    "id": HEX,
                    "flagger": ACCT,
                    "flagger_name": null(S),
                    "category": S,
                    "note": S,
                    "trust_ppm": INT,
                    "timestamp": INT,
                }
            )
        ),
    }
)
REP = obj({"score": INT, "points": INT, "abandoned": INT, "trusted": BOOL, "equivocated": BOOL})
BOUNTY = obj(
    {
        "id": HEX,
        "title": S,
        "author": ACCT,
        "author_name": null(S),
        "phase": {"enum": ["open", "closed", "awarded", "refunded"]},
        "status": {
            "type": "string",
            "description": "the phase as a person sees it: also `awaiting_close` "
            "(open past its submission deadline) and `abandoned` (not settled by its "
            "review deadline)",
        },
        "reward": INT,
        "escrow": INT,
        "reviewer_share_bp": INT,
        "skills": arr(S),
        "rubric": arr(obj({"name": S, "max": INT})),
        "submit_by": INT,
        "review_by": INT,
        "quorum": INT,
        "posted_at": INT,
        "commits": INT,
        "submissions": INT,
        "my_role": null({"enum": ["mentor", "learner", "reviewer"]}),
        "my_commit": null(obj({"id": HEX, "at": null(INT)})),
        "next_action": null({"enum": ["submit", "close", "award", "refund", "review"]}),
        "reviewable": arr(HEX),
        "my_reviews": arr(HEX),
        **HIDDEN_MARK,
    },
    optional=["hidden_by", "hidden_why"],
)
# A learning resource in a bounty's terms (PROTOCOL.md §6.6).
RESOURCE_RECORD = obj({"title": S, "url": S, "kind": S, "licence": S})
BOUNTY_DETAIL: Schema = {
    "allOf": [
        ref("Bounty"),
        obj(
            {
                "description": S,
                "accepted": arr(HEX),
                "commit_ids": dict_of(ACCT),
                "settled_by": null(HEX),
                "submissions_detail": arr(
                    obj(
                        {
                            "id": HEX,
                            "learner": ACCT,
                            "commit": HEX,
                            "text": S,
                            "attachments": arr(
                                obj({"hash": HEX, "name": S, "size": INT, "have": BOOL})
                            ),
                            "awarded": INT,
                            "reviews": arr(
                                obj(
                                    {
                                        "id": HEX,
                                        "reviewer": ACCT,
                                        "scores": dict_of(INT),
                                        "comment": S,
                                        "paid": INT,
                                        **HIDDEN_MARK,
                                    },
                                    optional=["hidden_by", "hidden_why"],
                                )
                            ),
                            **HIDDEN_MARK,
                        },
                        optional=["hidden_by", "hidden_why"],
                    )
                ),
                "terms": null(
                    obj(
                        {
                            "min_reviewer_trust_ppm": INT,
                            "prereq_bounties": arr(obj({"id": HEX, "title": null(S)})),
                            "prereq_skills": arr(S),
                            "resources": arr(RESOURCE_RECORD),
                        }
                    )
                ),
                "review_trust": obj(
                    {
                        "min_reviewer_trust_ppm": INT,
                        "min_trust": INT,
                        "tolerance_pm": INT,
                        "share": INT,
                        "paid_by": obj({"median": arr(HEX), "trusted": arr(HEX)}),
                        "trust_digest": HEX,
                        "events": INT,
                        "submissions": dict_of(
                            obj(
                                {
                                    "weighted_median": null(INT),
                                    "counted": INT,
                                    "quorum_met": BOOL,
                                    "reviews": dict_of(
                                        obj(
                                            {
                                                "reviewer": ACCT,
                                                "total": INT,
                                                "weight": INT,
                                                "weight_ppm": INT,
                                                "counts": BOOL,
                                                "near": BOOL,
                                                "paid_by_trusted": INT,
                                                "paid_by_median": INT,
                                                "why": S,
                                            }
                                        )
                                    ),
                                }
                            )
                        ),
                    }
                ),
            }
        ),
    ]
}
PAYMENT = obj(
    {
        "id": HEX,
        "kind": S,
        "direction": {"enum": ["in", "out"]},
        "from": ACCT,
        "to": ACCT,
        "amount": INT,
        "memo": S,
        "bounty": null(HEX),
        "timestamp": INT,
        "void": BOOL,
    }
)
TRUST_ROW = obj(
    {
        "rank": INT,
        "account": ACCT,
        "score": INT,
        "ppm": INT,
        "overall": INT,
        "overall_ppm": INT,
        "skills": dict_of(INT),
        "seed": BOOL,
        "penalties": INT,
        "no_shows": INT,
        "calibration": obj({"near": INT, "judged": INT}),
    }
)
TRUST_EDGE = obj(
    {
        "kind": S,
        "bounty": null(HEX),
        "skills": arr(S),
        "amount": INT,
        "weight": INT,
        "gives": INT,
        "gives_ppm": INT,
    }
)
RANK = obj({"score": INT, "ppm": INT, "rank": null(INT), "of": INT})
VERIFY_REPORT = obj(
    {
        "valid": BOOL,
        "checks": arr(obj({"check": S, "ok": BOOL, "reason": S})),
        "id": null(S),
        "name": null(S),
        "issuer": obj({"id": null(S), "name": null(S)}),
        "subject": null(S),
        "achievement": null(S),
        "valid_from": null(S),
        "valid_until": null(S),
        "work": null(S),
        "network": obj({"name": null(S), "id": null(S)}),
        "learnmesh": null({"type": "object"}),
        "issuer_fork": obj(
            {"checked": BOOL, "forked": BOOL, "fork_seq": INT, "award_stands": BOOL, "reason": S},
            optional=["forked", "fork_seq", "award_stands", "reason"],
        ),
    }
)
RAW_ANSWER = obj(
    {
        "status": {"enum": ["applied", "pending", "duplicate", "held", "rejected"]},
        "id": HEX,
        "error": S,
        "message": S,
    },
    optional=["id", "error", "message"],
)

_MOVE = obj(
    {"kind": {"enum": ["bond", "claim"]}, "from": ACCT, "to": ACCT, "amount": INT, "id": HEX},
    optional=["from", "to", "id"],
)
DISPUTE = obj(
    {
        "id": HEX,
        "target": HEX,
        "target_kind": {"enum": ["award", "refund", "review"]},
        "subject": HEX,
        "bounty": HEX,
        "bounty_title": null(S),
        "disputant": ACCT,
        "disputant_name": null(S),
        "respondent": ACCT,
        "respondent_name": null(S),
        "claim": S,
        "evidence": arr(obj({"hash": HEX, "name": S, "size": INT, "have": BOOL})),
        "bond": INT,
        "escrow": {"type": "integer", "description": "what of the bond is still locked"},
        "jurors": arr(
            obj(
                {
                    "account": ACCT,
                    "name": null(S),
                    "committed": BOOL,
                    "revealed": BOOL,
                    "verdict": null({"enum": ["uphold", "reject"]}),
                    "reason": null(S),
                    "claimed": null(INT),
                }
            )
        ),
        "vote_by": INT,
        "reveal_by": INT,
        "filed_at": INT,
        "appeal_of": null(HEX),
        "appeals": arr(HEX),
        "phase": {
            "type": "string",
            "description": "voting, revealing, upheld, rejected or undecided",
        },
        "outcome": null(S),
        "panel_fair": BOOL,
        "votes": obj(
            {
                "committed": INT,
                "revealed": INT,
                "uphold": INT,
                "reject": INT,
                "panel": INT,
                "majority": null({"enum": ["uphold", "reject"]}),
            }
        ),
        "must_act": arr(obj({"account": ACCT, "action": S, "by": null(INT)})),
        "bond_movements": arr(_MOVE),
        "my_role": null({"enum": ["disputant", "respondent", "juror"]}),
        "next_action": null({"enum": ["vote", "reveal", "claim", "appeal"]}),
        "next_by": null(INT),
        "next_auto": BOOL,
        "owed_to_me": INT,
        "hidden": BOOL,
        "hidden_by": {"enum": ["block", "flags"]},
        "hidden_why": S,
    },
    optional=["hidden", "hidden_by", "hidden_why"],
)
_DUTY = obj(
    {
        "dispute": HEX,
        "target_kind": S,
        "bounty": HEX,
        "phase": S,
        "action": null(S),
        "by": null(INT),
        "auto": BOOL,
        "vote_by": INT,
        "reveal_by": INT,
        "amount": INT,
    },
    optional=["amount"],
)

COMPONENT_SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        {
            "error": {"type": "string", "description": "a stable machine code"},
            "message": {"type": "string", "description": "a sentence for a person"},
        }
    ),
    "EventId": EVENT_ID,
    "Reputation": REP,
    "Bounty": BOUNTY,
    "BountyDetail": BOUNTY_DETAIL,
    "Payment": PAYMENT,
    "TrustRow": TRUST_ROW,
    "TrustEdge": TRUST_EDGE,
    "VerifyReport": VERIFY_REPORT,
    "RawEventAnswer": RAW_ANSWER,
    "Dispute": DISPUTE,
}

# Path parameters, by the name the route templates give them.
PATH_PARAMS: dict[str, tuple[Schema, str]] = {
    "bid": (HEX, "a bounty id"),
    "account": (ACCT, "an account"),
    "h": (HEX, "an attachment's SHA-256"),
    "sid": (HEX, "a submission id"),
    "did": (HEX, "a dispute id"),
    "eid": (HEX, "an event id (a bounty, submission, review, comment or resource)"),
    "path": (S, "a file of the page"),
}

# -- the routes ----------------------------------------------------------------------------

Err = tuple[int, str, str]  # status, error code, when
BAD: Err = (400, "bad_request", "a field is missing or of the wrong kind (the message says which)")
BAD_JSON: Err = (400, "bad_json", "the body is not a JSON object")
NOT_FOUND: Err = (404, "not_found", "no such thing here")
RULE: Err = (409, "<protocol code>", "the event would break a rule (PROTOCOL.md §6)")
NOT_SYNCED: Err = (409, "not_synced", "an imported key: the node has not synced its chain yet")
INVALID: Err = (400, "invalid", "the input breaks the event schema (PROTOCOL.md §3)")


@dataclass(frozen=True)
class RouteDoc:
    summary: str
    tag: str
    ok: Schema | None = None  # the JSON answer (status `status`), or None with `media`
    status: int = 200
    media: str = "application/json"
    query: dict[str, tuple[Schema, str]] = field(default_factory=dict)
    body: Schema | None = None
    body_media: str = "application/json"
    errors: tuple[Err, ...] = ()
    auth: str = "api"  # api: token or session; token: token only; public: none
    admin: bool = False  # only on a node started with --admin (devnets, tests)
    idempotent: bool = False  # takes an Idempotency-Key header
    description: str = ""


AUTHOR_ERRORS = (BAD, BAD_JSON, INVALID, RULE, NOT_SYNCED)
_STATS_NOTE = "`stats`: the node's counters (see also GET /metrics)"

ROUTES: dict[tuple[str, str], RouteDoc] = {
    # -- the page --------------------------------------------------------------
    ("GET", "/"): RouteDoc(
        "The web page (HTML; it logs in with a code from `learnmesh web`)",
        "page",
        media="text/html",
        auth="public",
    ),
    ("GET", "/static/{path}"): RouteDoc(
        "The page's scripts, styles and images", "page", media="*/*", auth="public"
    ),
    # -- session ------------------------------------------------------------------
    ("POST", "/api/login-link"): RouteDoc(
        "A one-time login code and link for the web page (2 minutes, one use)",
        "session",
        obj({"code": S, "url": S, "expires_in_s": INT}),
        errors=((403, "token_only", "asked with a session cookie, not the token"),),
        auth="token",
    ),
    ("POST", "/api/session"): RouteDoc(
        "Trade a login code for a session cookie (HttpOnly, SameSite=Strict)",
        "session",
        obj({"ok": BOOL, "account": ACCT}),
        body=obj({"code": S}),
        errors=(BAD_JSON, (401, "login_expired", "the code was used or has expired")),
        auth="public",
        description="Needs the `X-Learnmesh-CSRF: 1` header like every cookie request.",
    ),
    ("POST", "/api/logout"): RouteDoc(
        "End this session (its live streams end too)", "session", obj({"ok": BOOL})
    ),
    ("GET", "/api/stream"): RouteDoc(
        "Server-sent events: `change` with {applied, events, digest, peers} when the state changes",
        "session",
        media="text/event-stream",
    ),
    # -- the node --------------------------------------------------------------------
    ("GET", "/api/status"): RouteDoc(
        "This node: account, peers, network, ledger size, digest, balance, counters",
        "node",
        obj(
            {
                "account": ACCT,
                "peer_id": S,
                "addrs": arr(S),
                "peers": arr(S),
                "mesh_peers": arr(S),
                "network": S,
                "network_id": HEX,
                "events": INT,
                "pending": INT,
                "pending_dropped": INT,
                "heads": dict_of(INT),
                "digest": HEX,
                "forks": arr(ACCT),
                "balance": INT,
                "stats": dict_of(INT),
                "uptime_s": NUM,
                "web": obj({"streams": INT, "sessions": INT}),
            }
        ),
        description=_STATS_NOTE,
    ),
    ("GET", "/api/peers"): RouteDoc(
        "Connected and mesh peers, peer scores, bans and recent refusals",
        "node",
        obj(
            {
                "peers": arr(S),
                "mesh_peers": arr(S),
                "partitioned": arr(S),
                "scores": dict_of(obj({"score": NUM, "banned": BOOL, "reasons": arr(S)})),
                "rejections": arr(obj({"peer": S, "reason": S})),
            }
        ),
    ),
    ("GET", "/api/applied"): RouteDoc(
        "Events applied here: [id, created ms, applied ms, arrived ms] (arrived: when a "
        "gossiped event passed this node's checks; devnet's propagation figures)",
        "node",
        obj({"applied": arr(arr(ANY))}),
        query={"since": (INT, "only those applied at or after this time (ms)")},
        errors=(BAD,),
    ),
    ("GET", "/metrics"): RouteDoc(
        "Prometheus metrics (text format): peers, mesh, events by entrance, refusals by "
        "code, penalties, bans, sync, pools, ledger size, API latency",
        "node",
        media="text/plain",
    ),
    ("GET", OPENAPI_PATH): RouteDoc(
        "This description (OpenAPI 3.1)", "node", obj({"openapi": S, "paths": dict_of(ANY)})
    ),
    # -- reading the ledger ----------------------------------------------------------------
    ("GET", "/api/bounties"): RouteDoc(
        "Bounties, newest first, with the viewer's role and next action",
        "bounties",
        obj({"bounties": arr(ref("Bounty"))}),
        query={
            "q": (S, "text in the title or description"),
            "skill": (S, "only bounties with this skill"),
            "phase": (S, "a phase or a status (open, closed, awaiting_close, abandoned, …)"),
            "min_reward": (INT, "only rewards at least this"),
            "author": (ACCT, "only this author's"),
            "mine": (S, "1: only those INT authored, committed to or reviewed"),
        },
        errors=(BAD,),
    ),
    ("GET", "/api/bounties/{bid}"): RouteDoc(
        "One bounty with its submissions, reviews and attachments",
        "bounties",
        ref("BountyDetail"),
        errors=(BAD, NOT_FOUND),
        description="`review_trust` judges the reviews by trust (PROTOCOL.md §6.5): per "
        "submission (by id) the trust-weighted median of the reviews that count (their "
        "reviewer holds at least the bounty's `min_reviewer_trust_ppm` of all trust in its "
        "skills, a threshold kept by the mentor's node only), whether they reach the quorum, "
        "and per review (by id) its weight, whether it counts, whether it is near, and what "
        "an award pays it under each rule (`median`, `trusted`) and why.",
    ),
    ("GET", "/api/balances"): RouteDoc(
        "Every non-zero balance, the escrow and the token supply",
        "accounts",
        obj({"balances": dict_of(INT), "escrow": INT, "supply": INT, "genesis_supply": INT}),
    ),
    ("GET", "/api/balance"): RouteDoc(
        "My balance and what INT can spend (unclaimed credits included)",
        "accounts",
        obj({"account": ACCT, "balance": INT, "spendable": INT}),
    ),
    ("GET", "/api/balance/{account}"): RouteDoc(
        "An account's balance and spendable amount",
        "accounts",
        obj({"account": ACCT, "balance": INT, "spendable": INT}),
        errors=(BAD,),
    ),
    ("GET", "/api/reputation"): RouteDoc(
        "Reputation of every account (PROTOCOL.md §6.4), or of one",
        "accounts",
        obj({"reputation": dict_of(ref("Reputation"))}),
        query={"account": (ACCT, "only this account")},
        errors=(BAD,),
    ),
    ("GET", "/api/accounts/{account}/events"): RouteDoc(
        "An account's latest events, newest first, with their live void verdict",
        "accounts",
        obj(
            {
                "account": ACCT,
                "events": arr(
                    obj({"id": HEX, "seq": INT, "kind": S, "timestamp": INT, "void": null(S)})
                ),
            }
        ),
        query={"limit": (INT, "at most this many (1-1000, default 100)")},
        errors=(BAD,),
    ),
    ("GET", "/api/payments"): RouteDoc(
        "Tokens received (transfers with memos, award payouts) and transfers sent",
        "accounts",
        obj({"account": ACCT, "payments": arr(ref("Payment"))}),
        query={
            "account": (ACCT, "whose (default: mine)"),
            "limit": (INT, "at most this many (1-500, default 50)"),
        },
        errors=(BAD,),
    ),
    ("GET", "/api/me"): RouteDoc(
        "My profile, balance, reputation, vouches, network and its parameters",
        "accounts",
        obj(
            {
                "account": ACCT,
                "name": null(S),
                "bio": S,
                "skills": arr(S),
                "balance": INT,
                "spendable": INT,
                "reputation": ref("Reputation"),
                "vouches_by_me": arr(ACCT),
                "vouches_for_me": arr(ACCT),
                "peer_id": S,
                "network": obj({"name": S, "id": HEX}),
                "params": dict_of(ANY),
            }
        ),
    ),
    ("GET", "/api/profiles/{account}"): RouteDoc(
        "An account's profile, reputation and record",
        "accounts",
        obj(
            {
                "account": ACCT,
                "name": null(S),
                "bio": S,
                "skills": arr(S),
                "reputation": ref("Reputation"),
                "bounties_posted": INT,
                "work_awarded": INT,
                "reviews": INT,
                "vouches_for": INT,
            }
        ),
        errors=(BAD,),
    ),
    ("GET", "/api/drafts"): RouteDoc(
        "My submissions not revealed yet (content kept here until the close lists them)",
        "bounties",
        obj(
            {
                "drafts": arr(
                    obj(
                        {
                            "bounty": HEX,
                            "commitment": HEX,
                            "commit": null(HEX),
                            "text": S,
                            "attachments": arr(obj({"hash": HEX, "name": S, "size": INT})),
                            "revealed": ANY,
                        }
                    )
                )
            }
        ),
    ),
    ("GET", "/api/blobs/{h}"): RouteDoc(
        "An attachment, always as a download (fetched from a peer if not here)",
        "bounties",
        media="application/octet-stream",
        query={"name": (S, "the file name to save it as")},
        errors=(BAD, (404, "not_found", "no such attachment here or at any peer")),
    ),
    # -- credentials (node/_api_credentials.py) ------------------------------------------------
    ("GET", "/api/credentials"): RouteDoc(
        "My awarded submissions and their credentials (ready, fetching or missing)",
        "credentials",
        obj(
            {
                "credentials": arr(
                    obj(
                        {
                            "submission": HEX,
                            "bounty": HEX,
                            "title": S,
                            "skills": arr(S),
                            "mentor": ACCT,
                            "amount": INT,
                            "awarded_at_ms": null(INT),
                            "status": {"enum": ["ready", "fetching", "missing", "unreadable"]},
                            "credential": null(S),
                            "sha256": null(HEX),
                        }
                    )
                )
            }
        ),
    ),
    ("GET", "/api/credentials/{sid}"): RouteDoc(
        "The signed Open Badges 3.0 credential of an awarded submission",
        "credentials",
        media="application/vc",
        query={"format": (S, "vc (default) or bundle (the learnmesh bundle, binary)")},
        errors=(
            BAD,
            NOT_FOUND,
            (409, "not_awarded", "this submission was not awarded"),
            (404, "not_issued", "the mentor's node has not issued it (yet)"),
            (404, "not_fetched", "announced, but no peer has sent it yet"),
        ),
    ),
    ("POST", "/api/credentials/verify"): RouteDoc(
        "Verify a credential (JSON body): the checks it passed, and whether its issuer forked",
        "credentials",
        ref("VerifyReport"),
        body={"type": "object", "description": "a credential (Open Badges 3.0 JSON)"},
        errors=(BAD_JSON, (413, "too_large", "over 16 MiB")),
    ),
    # -- private messages (node/_api_messages.py) ------------------------------------------------
    ("POST", "/api/messages"): RouteDoc(
        "Send a private, end-to-end encrypted message to an account (sealed; relays "
        "learn the recipient and the time, not the sender or the text)",
        "messages",
        obj({"id": HEX, "to": ACCT, "sent_ms": INT, "bytes": INT}),
        body=obj({"to": ACCT, "text": S}),
        errors=(
            BAD,
            BAD_JSON,
            (400, "too_long", "over 4000 characters (or 7680 bytes of UTF-8)"),
            (400, "empty", "no text"),
            (400, "self", "a message to my own account"),
            (429, "rate_limited", "too many messages sent just now"),
        ),
        idempotent=True,
        description="`id`: the message's id (SHA-256 of the signed message); "
        "`bytes`: its size on the wire (a padded bucket).",
    ),
    ("GET", "/api/messages"): RouteDoc(
        "My private conversations, newest first, with unread counts",
        "messages",
        obj(
            {
                "account": ACCT,
                "unread": INT,
                "conversations": arr(
                    obj(
                        {
                            "account": ACCT,
                            "name": null(S),
                            "count": INT,
                            "unread": INT,
                            "last_ms": INT,
                            "last_text": S,
                            "last_outgoing": BOOL,
                        }
                    )
                ),
            }
        ),
    ),
    ("GET", "/api/messages/{account}"): RouteDoc(
        "One private conversation, oldest first (at most the latest 500); marks it read",
        "messages",
        obj(
            {
                "account": ACCT,
                "name": null(S),
                "messages": arr(
                    obj(
                        {
                            "id": HEX,
                            "from": ACCT,
                            "to": ACCT,
                            "outgoing": BOOL,
                            "sent_ms": INT,
                            "received_ms": INT,
                            "text": S,
                            "read": BOOL,
                        }
                    )
                ),
            }
        ),
        errors=(BAD,),
    ),
    # -- moderation (node/_api_moderation.py) ------------------------------------------------------
    ("POST", "/api/flags"): RouteDoc(
        "Flag an event (a bounty, submission or review) or an account as spam, abuse, "
        "plagiarism or other (a signed `flag` event)",
        "moderation",
        obj({"id": HEX, "account": ACCT, "target": null(HEX)}),
        body=obj(
            {
                "target": HEX,
                "account": ACCT,
                "category": {"enum": ["spam", "abuse", "plagiarism", "other"]},
                "note": S,
            },
            optional=["target", "account", "note"],
        ),
        errors=(*AUTHOR_ERRORS, NOT_FOUND),
        description="`target` (an event id: its author is the account flagged) or "
        "`account` (flag the account as a whole); `note` (0..1000 characters) says why.",
    ),
    ("GET", "/api/flags"): RouteDoc(
        "What the community's flags hide and why (the hidden view), what is flagged below "
        "the threshold, and my own flags",
        "moderation",
        obj(
            {
                "hidden": obj({"events": arr(FLAGGED), "accounts": arr(FLAGGED)}),
                "below": arr(FLAGGED),
                "mine": arr(
                    obj(
                        {
                            "id": HEX,
                            "target": null(HEX),
                            "account": ACCT,
                            "category": S,
                            "note": S,
                            "timestamp": INT,
                        }
                    )
                ),
                "thresholds": obj({"trust_ppm": INT, "min_flaggers": INT}),
                "categories": arr(S),
                "trust_digest": HEX,
                "events": INT,
            }
        ),
        description="Hidden when the distinct flaggers hold at least `thresholds.trust_ppm` "
        "of all trust, or at least `thresholds.min_flaggers` flaggers with trust agree "
        "(PROTOCOL.md, Flags). The same on every node with the same events.",
    ),
    ("GET", "/api/blocks"): RouteDoc(
        "This node's blocklist, and what its relay policy held back",
        "moderation",
        obj(
            {
                "blocks": arr(obj({"account": ACCT, "name": null(S), "reason": S, "at_ms": INT})),
                "relay": obj({"blocked": INT, "over_limit": INT, "per_author_per_min": INT}),
            }
        ),
    ),
    ("POST", "/api/blocks"): RouteDoc(
        "Block an account on this node: its content is hidden here and not relayed by "
        "this node (still admitted: the state never depends on it)",
        "moderation",
        obj({"account": ACCT, "blocked": BOOL, "already": BOOL}),
        body=obj({"account": ACCT, "reason": S}, optional=["reason"]),
        errors=(BAD, BAD_JSON),
    ),
    ("DELETE", "/api/blocks/{account}"): RouteDoc(
        "Unblock an account on this node",
        "moderation",
        obj({"account": ACCT, "blocked": BOOL}),
        errors=(BAD, NOT_FOUND),
    ),
    # -- trust (node/_api_trust.py) ----------------------------------------------------------------
    ("GET", "/api/trust"): RouteDoc(
        "Accounts ranked by trust (PROTOCOL.md §6.5), overall or in one skill",
        "trust",
        obj(
            {
                "trust_digest": HEX,
                "events": INT,
                "skill": null(S),
                "skills": arr(obj({"skill": S, "accounts": INT, "total": INT})),
                "one": INT,
                "blend_pm": INT,
                "iterations": INT,
                "total": INT,
                "count": INT,
                "accounts": arr(ref("TrustRow")),
            }
        ),
        query={
            "skill": (S, "rank in this skill (at most 32 characters)"),
            "limit": (INT, "at most this many (1-10000, default 100)"),
        },
        errors=(BAD,),
    ),
    ("GET", "/api/trust/{account}"): RouteDoc(
        "One account's trust per skill, the edges that gave it, penalties, calibration",
        "trust",
        obj(
            {
                "account": ACCT,
                "trust_digest": HEX,
                "events": INT,
                "one": INT,
                "overall": RANK,
                "skills": dict_of(RANK),
                "seed": BOOL,
                "forked": BOOL,
                "penalties": obj({"bounties": INT, "by_skill": dict_of(INT)}),
                "no_shows": INT,
                "calibration": obj({"near": INT, "judged": INT}),
                "edges_in": arr(ref("TrustEdge")),
                "edges_out": arr(ref("TrustEdge")),
            }
        ),
        errors=(BAD,),
    ),
    ("GET", "/api/trust/reviews/{bid}"): RouteDoc(
        "Per submission of a bounty: the trust-weighted median of its reviews",
        "trust",
        obj(
            {
                "bounty": HEX,
                "skills": arr(S),
                "min_trust": INT,
                "tolerance_pm": INT,
                "quorum": INT,
                "trust_digest": HEX,
                "events": INT,
                "submissions": arr(
                    obj(
                        {
                            "submission": HEX,
                            "weighted_median": ANY,
                            "counted": INT,
                            "reviews": arr(
                                obj(
                                    {
                                        "review": HEX,
                                        "reviewer": ACCT,
                                        "total": INT,
                                        "weight": INT,
                                        "counts": BOOL,
                                        "near": ANY,
                                    }
                                )
                            ),
                        }
                    )
                ),
            }
        ),
        query={
            "min_trust": (
                INT,
                "reviews by accounts below this trust (in units of `one`) do not count "
                "(default: the bounty's minimum set on this node when posting, else 0)",
            )
        },
        errors=(BAD, NOT_FOUND),
    ),
    # -- recommendations (node/_api_recommend.py) ---------------------------------------------
    ("GET", "/api/recommendations"): RouteDoc(
        "Open bounties ranked for this node's account, each with the reasons why",
        "recommendations",
        obj(
            {
                "account": ACCT,
                "now_ms": INT,
                "events": INT,
                "trust_digest": HEX,
                "count": INT,
                "hidden": INT,
                "recommendations": arr(
                    obj(
                        {
                            "bounty": HEX,
                            "title": S,
                            "mentor": ACCT,
                            "mentor_name": null(S),
                            "reward": INT,
                            "skills": arr(S),
                            "submit_by": INT,
                            "review_by": INT,
                            "score": INT,
                            "ready": BOOL,
                            "parts": dict_of(INT),
                            "reasons": arr(S),
                            "missing": arr(
                                obj(
                                    {
                                        "kind": {"enum": ["bounty", "skill"]},
                                        "bounty": null(HEX),
                                        "title": null(S),
                                        "skill": null(S),
                                        "open": BOOL,
                                    }
                                )
                            ),
                        }
                    )
                ),
            }
        ),
        query={"limit": (INT, "at most this many (1-500, default 20)")},
        errors=(BAD,),
        description="Computed on this node from the events it holds and its trust view; no "
        "data leaves the node for it. Open bounties (submissions still accepted) that this "
        "account did not post or commit to: first those whose prerequisites it has met (or "
        "that have none), then those with missing prerequisites (`ready` false, `missing` "
        "says which); each group by `score` (the sum of `parts`: skill, prerequisites, "
        "unlocks, deadline, reward, mentor_trust, mentor_record), ties by bounty id. `count` "
        "is how many there are before `limit`; `hidden` how many open bounties were left "
        "out because this node's blocklist or the community's flags hide them.",
    ),
    # -- disputes and juries (node/_api_disputes.py) -------------------------------------------
    ("GET", "/api/disputes"): RouteDoc(
        "Every dispute, newest first: phase, outcome, jurors, deadlines, bonds, my next step",
        "disputes",
        obj({"now": INT, "disputes": arr(ref("Dispute"))}),
        query={"bounty": (HEX, "only the disputes of this bounty")},
        errors=(BAD,),
    ),
    ("GET", "/api/disputes/{did}"): RouteDoc(
        "One dispute: its claim, evidence, jurors and their votes, outcome and bond movements",
        "disputes",
        ref("Dispute"),
        errors=(BAD, NOT_FOUND),
    ),
    ("GET", "/api/jury"): RouteDoc(
        "What waits on me: jury duty with deadlines, bonds owed, disputes against me and mine",
        "disputes",
        obj(
            {
                "account": ACCT,
                "now": INT,
                "jury": arr(_DUTY),
                "claims": arr(_DUTY),
                "against_me": arr(_DUTY),
                "mine": arr(_DUTY),
            }
        ),
    ),
    ("POST", "/api/disputes"): RouteDoc(
        "File a dispute of an award, a refund or a review (locks a bond), or appeal one",
        "disputes",
        ref("Dispute"),
        body=obj(
            {
                "target": HEX,
                "subject": HEX,
                "claim": {"type": "string", "minLength": 1, "maxLength": 2000},
                "bond": {"type": "integer", "minimum": 10, "description": "at least MIN_BOND"},
                "files": {
                    "type": "array",
                    "maxItems": 8,
                    "items": obj({"name": S, "data_b64": S}),
                },
                "vote_by": INT,
                "reveal_by": INT,
                "appeal_of": HEX,
            },
            optional=["target", "subject", "bond", "files", "vote_by", "reveal_by", "appeal_of"],
        ),
        errors=(
            *AUTHOR_ERRORS,
            NOT_FOUND,
            (400, "bond_too_small", "under MIN_BOND, or an appeal's under twice the dispute's"),
            (400, "bad_claim", "the claim is blank"),
            (400, "bad_deadline", "vote_by not ahead, reveal_by not after it, or past 30 days"),
            (400, "too_many", "over 8 evidence files"),
            (403, "no_standing", "the account has no standing to dispute (or appeal) this"),
            (403, "bad_subject", "the subject given is not the account's standing"),
            (409, "not_disputable", "the target is not an award, a refund or a review"),
            (409, "void_target", "the target is void"),
            (409, "already_disputed", "this account already disputed this target"),
            (409, "already_appealed", "this account already appealed this dispute"),
            (409, "final", "an appeal cannot be appealed"),
            (409, "no_jury", "too few eligible jurors: the dispute cannot be filed"),
            (409, "insufficient_funds", "the bond is more than the balance"),
            (413, "too_large", "an evidence file is over the network's attachment limit"),
        ),
        description="Without `subject` the node finds the disputant's standing. Without "
        "deadlines: voting 3 days, revealing 2 more. With `appeal_of` it appeals that "
        "dispute (a party of it only; `target` is not needed; bond at least twice).",
    ),
    ("POST", "/api/disputes/{did}/vote"): RouteDoc(
        "Juror: commit a sealed verdict (uphold or reject); the node reveals it after vote_by",
        "disputes",
        ref("EventId"),
        body=obj(
            {
                "verdict": {"enum": ["uphold", "reject"]},
                "reason": {"type": "string", "maxLength": 1000},
            },
            optional=["reason"],
        ),
        errors=(
            *AUTHOR_ERRORS,
            NOT_FOUND,
            (403, "not_juror", "this account is not on the dispute's jury"),
            (409, "already_voted", "this juror already voted on it"),
            (409, "late", "the voting deadline has passed"),
        ),
    ),
    ("POST", "/api/disputes/{did}/reveal"): RouteDoc(
        "Juror: reveal my vote now (after vote_by; the node also does it by itself)",
        "disputes",
        ref("EventId"),
        errors=(
            *AUTHOR_ERRORS,
            NOT_FOUND,
            (409, "no_vote", "no vote of this node's account to reveal"),
            (409, "already_revealed", "the vote is already revealed"),
            (409, "too_early", "voting has not closed yet"),
            (409, "late", "the reveal deadline has passed"),
        ),
    ),
    ("POST", "/api/disputes/{did}/claim"): RouteDoc(
        "Take what a decided dispute owes me (the node also does it by itself)",
        "disputes",
        ref("EventId"),
        errors=(
            *AUTHOR_ERRORS,
            NOT_FOUND,
            (409, "undecided", "no strict majority has revealed the same verdict"),
            (409, "already_claimed", "this account already claimed on it"),
            (403, "not_owed", "nothing of this bond is owed to this account"),
        ),
    ),
    # -- acting: each signs and publishes one event of my chain ---------------------------------
    ("POST", "/api/bounties"): RouteDoc(
        "Post a bounty: the reward goes into escrow",
        "act",
        ref("EventId"),
        body=obj(
            {
                "title": S,
                "description": S,
                "reward": INT,
                "rubric": arr(obj({"name": S, "max": INT})),
                "skills": arr(S),
                "reviewer_share_bp": INT,
                "submit_by": INT,
                "review_by": INT,
                "quorum": INT,
                "min_reviewer_trust_ppm": INT,
                "prereq_bounties": arr(HEX),
                "prereq_skills": arr(S),
                "resources": arr(RESOURCE_RECORD),
            },
            optional=[
                "description",
                "rubric",
                "skills",
                "reviewer_share_bp",
                "submit_by",
                "review_by",
                "quorum",
                "min_reviewer_trust_ppm",
                "prereq_bounties",
                "prereq_skills",
                "resources",
            ],
        ),
        errors=(*AUTHOR_ERRORS, (409, "insufficient_funds", "the reward is over my balance")),
        idempotent=True,
        description="Deadlines are ms since the epoch (default: 7 and 14 days from now); "
        "reviewer_share_bp in basis points (default 1000 = 10 %). min_reviewer_trust_ppm "
        "(0..1000000, default 0): reviews whose reviewer holds less than this share of all "
        "trust in the bounty's skills do not count toward quorum nor for a `trusted` award. "
        "With min_reviewer_trust_ppm, prereq_bounties (bounty ids to do first), prereq_skills "
        "or resources ({title, url http(s), kind: article|video|course|book|exercise|other, "
        "licence e.g. CC-BY-4.0}), the node writes the bounty's terms (PROTOCOL.md §6.6) as "
        "the next event after the bounty; a mistake in them is refused before the bounty is "
        "written (404 for an unknown prerequisite).",
    ),
    ("POST", "/api/submit"): RouteDoc(
        "Submit work: commits now, reveals by itself once the close accepts the commit",
        "act",
        ref("EventId"),
        body=obj(
            {"bounty": HEX, "text": S, "files": arr(obj({"name": S, "data_b64": S}))},
            optional=["text", "files"],
        ),
        errors=(
            *AUTHOR_ERRORS,
            NOT_FOUND,
            (409, "late", "the submission deadline has passed"),
            (413, "too_large", "a file is over the network's attachment limit"),
        ),
        idempotent=True,
    ),
    ("POST", "/api/bounties/{bid}/close"): RouteDoc(
        "Close a bounty (mentor), accepting the listed commits or every commit",
        "act",
        ref("EventId"),
        body=obj({"accept": arr(HEX)}, optional=["accept"]),
        errors=(*AUTHOR_ERRORS, NOT_FOUND, (403, "not_mentor", "only its author closes it")),
        idempotent=True,
    ),
    ("POST", "/api/bounties/{bid}/award"): RouteDoc(
        "Award a closed bounty (mentor): winners and amounts; reviewers near the median "
        "(plain or trust-weighted) are paid",
        "act",
        ref("EventId"),
        body=obj(
            {
                "winners": {
                    "type": "object",
                    "additionalProperties": null(INT),
                    "description": "submission id -> amount (null: split evenly)",
                },
                "reviewers": {
                    "enum": ["median", "trusted"],
                    "description": "which reviews are paid as honest: near the trust-weighted "
                    "median of the reviews that count (default, PROTOCOL.md §6.5; the plain one "
                    "where nobody holds trust in the bounty's skills) or near the plain median "
                    "(§6.4; see the bounty's review_trust)",
                },
            },
            optional=["reviewers"],
        ),
        errors=(
            *AUTHOR_ERRORS,
            NOT_FOUND,
            (409, "settled", "already awarded or refunded"),
            (409, "over_escrow", "the amounts add up to more than the escrow"),
        ),
        idempotent=True,
    ),
    ("POST", "/api/bounties/{bid}/refund"): RouteDoc(
        "Refund a bounty's escrow to its mentor",
        "act",
        ref("EventId"),
        errors=(BAD, NOT_FOUND, (409, "settled", "already awarded or refunded"), RULE, NOT_SYNCED),
        idempotent=True,
    ),
    ("POST", "/api/review"): RouteDoc(
        "Review a revealed submission against the bounty's rubric",
        "act",
        ref("EventId"),
        body=obj({"submission": HEX, "scores": dict_of(INT), "comment": S}, optional=["comment"]),
        errors=(
            *AUTHOR_ERRORS,
            NOT_FOUND,
            (400, "bad_scores", "a score is missing or out of its range"),
        ),
        idempotent=True,
    ),
    ("POST", "/api/transfer"): RouteDoc(
        "Send tokens to an account, with a memo",
        "act",
        ref("EventId"),
        body=obj({"to": ACCT, "amount": INT, "memo": S}, optional=["memo"]),
        errors=(*AUTHOR_ERRORS, (409, "insufficient_funds", "the amount is over my balance")),
        idempotent=True,
    ),
    ("POST", "/api/vouch"): RouteDoc(
        "Vouch for an account (a trust edge)",
        "act",
        ref("EventId"),
        body=obj({"account": ACCT}),
        errors=AUTHOR_ERRORS,
        idempotent=True,
    ),
    ("POST", "/api/profile"): RouteDoc(
        "Set my profile: name, bio, skills",
        "act",
        ref("EventId"),
        body=obj({"name": S, "bio": S, "skills": arr(S)}, optional=["bio", "skills"]),
        errors=AUTHOR_ERRORS,
        idempotent=True,
    ),
    ("POST", "/api/events/batch"): RouteDoc(
        "Author many events of my own chain in one request (scripts, the devnet)",
        "act",
        obj(
            {
                "ids": arr(HEX),
                "complete": BOOL,
                "stopped": obj({"index": INT, "error": S, "message": S}),
            },
            optional=["stopped"],
        ),
        body=obj(
            {
                "events": arr(
                    obj(
                        {
                            "kind": {"enum": ["profile", "transfer", "vouch"]},
                            "name": S,
                            "bio": S,
                            "skills": arr(S),
                            "to": ACCT,
                            "amount": INT,
                            "memo": S,
                            "account": ACCT,
                        },
                        optional=["name", "bio", "skills", "to", "amount", "memo", "account"],
                    )
                )
            }
        ),
        errors=AUTHOR_ERRORS,
        idempotent=True,
        description="At most 1000 events, each with its kind's fields as in POST "
        "/api/profile, /api/transfer and /api/vouch. They are signed in order, each "
        "on the state the one before it left, go through the same admission as every "
        "event, and are stored in one transaction. The first event the rules would "
        "refuse stops the batch: the events before it stay (`complete` false, "
        "`stopped` says which and why; still a 200, so a retry with the same "
        "Idempotency-Key replays it); when it is the first, the answer is that error.",
    ),
    ("POST", "/api/events"): RouteDoc(
        "Admit an event signed elsewhere (msgpack bytes), as gossip and sync would",
        "act",
        ref("RawEventAnswer"),
        body_media="application/msgpack",
        body={"type": "string", "contentMediaType": "application/msgpack"},
        errors=(
            (422, "<protocol code>", "undecodable, badly signed or refused: `status` rejected"),
        ),
        description="200 applied (with `error` when void: applied without effect), "
        "duplicate; 202 pending (waits for its prev or refs) or held (dated ahead of "
        "this node's clock).",
    ),
    # -- discussion and resources (node/_api_learning.py) ------------------------------------
    ("GET", "/api/bounties/{bid}/comments"): RouteDoc(
        "Every discussion thread under a bounty, in reading order",
        "learning",
        obj(
            {
                "bounty": HEX,
                "count": INT,
                "hidden": INT,
                "comments": arr(
                    obj(
                        {
                            "id": HEX,
                            "target": HEX,
                            "target_kind": null(
                                {"enum": ["bounty", "reveal", "review", "comment", "resource"]}
                            ),
                            "bounty": null(HEX),
                            "depth": INT,
                            "replies": INT,
                            "author": ACCT,
                            "author_name": null(S),
                            "timestamp": INT,
                            "text": S,
                            "markdown": arr(ANY),
                            "hidden": BOOL,
                            "hidden_by": null({"enum": ["block", "flags"]}),
                            "hidden_why": null(S),
                        }
                    )
                ),
            }
        ),
        errors=(BAD, NOT_FOUND),
        description="Comments on the bounty, its submissions, their reviews and its "
        "resources (`depth` 0), each followed by its replies (`depth` + 1), each level "
        "oldest first. `markdown` is the text rendered to a tree of allowed nodes: a "
        'string (text), or `{"t": p|em|strong|code|pre|ul|ol|li|blockquote|br, "c": '
        '[node…]}`, or `{"t": "a", "href": http(s) or mailto URL, "c": [node…]}`; raw '
        "HTML is text. `hidden`: this node blocks the author, or community flags hide it.",
    ),
    ("GET", "/api/comments/{eid}"): RouteDoc(
        "The thread under one bounty, submission, review, comment or resource",
        "learning",
        obj(
            {
                "target": HEX,
                "target_kind": {"enum": ["bounty", "reveal", "review", "comment", "resource"]},
                "bounty": null(HEX),
                "count": INT,
                "hidden": INT,
                "comments": arr(COMMENT),
            }
        ),
        errors=(BAD, NOT_FOUND),
        description="The comments on that event (`depth` 0) and their replies, in "
        "reading order; each comment as in GET /api/bounties/{bid}/comments.",
    ),
    ("POST", "/api/comments"): RouteDoc(
        "Comment on a bounty, a submission, a review, a comment or a resource",
        "learning",
        ref("EventId"),
        body=obj({"target": HEX, "text": S}),
        errors=(
            *AUTHOR_ERRORS,
            NOT_FOUND,
            (409, "bad_target", "the target is not a kind a comment may name"),
            (413, "too_large", "text over 4000 characters"),
        ),
        idempotent=True,
        description="`text` is Markdown, 1..4000 characters, not blank.",
    ),
    ("GET", "/api/resources"): RouteDoc(
        "Suggested learning resources, ranked by the suggesters' trust in the skill",
        "learning",
        obj(
            {
                "skill": null(S),
                "bounty": null(HEX),
                "resources": arr(
                    obj(
                        {
                            "id": HEX,
                            "skill": S,
                            "title": S,
                            "url": S,
                            "kind": S,
                            "licence": S,
                            "bounty": null(HEX),
                            "suggested_at": INT,
                            "suggested_by": arr(obj({"account": ACCT, "name": null(S)})),
                            "suggestions": arr(HEX),
                            "trust_ppm": INT,
                            "comments": INT,
                        }
                    )
                ),
                "skills": dict_of(INT),
                "trust_digest": HEX,
                "events": INT,
            }
        ),
        query={
            "skill": (S, "only resources for this skill"),
            "bounty": (HEX, "only resources suggested for this bounty"),
        },
        errors=(BAD,),
        description="Suggestions of one url for one skill are one entry (`id` is the "
        "earliest); ranked by the sum of the suggesters' clock-free trust in the skill, "
        "then by how many suggested it, then oldest first. `skills`: every skill with "
        "suggestions, and how many.",
    ),
    ("POST", "/api/resources"): RouteDoc(
        "Suggest a learning resource for a skill (and a bounty)",
        "learning",
        ref("EventId"),
        body=obj(
            {
                "skill": S,
                "title": S,
                "url": S,
                "kind": {"enum": ["article", "video", "course", "book", "exercise", "other"]},
                "licence": S,
                "bounty": null(HEX),
            },
            optional=["kind", "licence", "bounty"],
        ),
        errors=(*AUTHOR_ERRORS, NOT_FOUND),
        idempotent=True,
        description="`url`: http(s); a non-ASCII host becomes punycode and other "
        "characters are percent-encoded before signing. `licence`: SPDX-like, e.g. "
        "CC-BY-4.0 (empty: unknown). `kind` defaults to article.",
    ),
    # -- admin: devnet faults (node start --admin) ---------------------------------------------
    ("POST", "/api/admin/connect"): RouteDoc(
        "Dial a peer by multiaddress",
        "admin",
        obj({"peer": S}),
        body=obj({"addr": S}),
        errors=(BAD, BAD_JSON, (502, "connect_failed", "the dial failed")),
        admin=True,
    ),
    ("POST", "/api/admin/partition"): RouteDoc(
        "Refuse these peers' connections (split the network)",
        "admin",
        obj({"partitioned": arr(S)}),
        body=obj({"peers": arr(S)}),
        errors=(BAD, BAD_JSON),
        admin=True,
    ),
    ("POST", "/api/admin/heal"): RouteDoc(
        "Accept every partitioned peer again", "admin", obj({"partitioned": arr(S)}), admin=True
    ),
    ("POST", "/api/admin/sync"): RouteDoc(
        "Sync with every connected peer now; how many events came in",
        "admin",
        obj({"events": INT}),
        admin=True,
    ),
    ("POST", "/api/admin/clock"): RouteDoc(
        "Move this node's wall clock forward (or read it)",
        "admin",
        obj({"now_ms": INT, "offset_ms": INT}),
        body=obj(
            {"advance_ms": {"type": "integer", "minimum": 1, "maximum": MAX_ADVANCE_MS}},
            optional=["advance_ms"],
        ),
        errors=(
            BAD,
            BAD_JSON,
            (409, "fixed_clock", "this node's clock cannot be moved (not run by `node start`)"),
        ),
        admin=True,
        description="Only the wall clock moves (event dates, deadlines such as a dispute's "
        "`vote_by`), never the clock of timeouts, bans and rate limits. `advance_ms`: "
        "> 0 and ≤ 86400000 (a day) per call; without it, the clock is only read. "
        "`offset_ms`: how far ahead of the system's time the node now runs; it is kept "
        "in the data directory (clock.json), so a restarted node keeps it. Move every "
        "node of a network together: a node holds events dated past its clock plus the "
        "network's clock skew.",
    ),
}

COMMON_ERRORS: tuple[Err, ...] = (
    (401, "unauthorized", "missing or wrong API token (or no valid session)"),
    (403, "csrf", "a cookie (or public) non-GET request without X-Learnmesh-CSRF: 1"),
    (403, "origin_refused", "an Origin that is not this API's"),
    (413, "too_large", "a body over 32 MiB"),
    (421, "host_refused", "a Host that is not 127.0.0.1, localhost or [::1]"),
    (500, "internal", "a bug: see the node's log"),
)

# -- from the route table --------------------------------------------------------------------


def served_routes(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path template) of every route an app serves (HEAD, which Starlette
    adds to each GET, is left out); a mounted file tree is `{path}` below it."""
    out: list[tuple[str, str]] = []
    for r in routes:
        if isinstance(r, Route):
            out += [(m, r.path) for m in sorted(r.methods or ()) if m != "HEAD"]
        elif isinstance(r, Mount):
            out.append(("GET", r.path.rstrip("/") + "/{path}"))
    return out


def _params(path: str, doc: RouteDoc) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for seg in path.split("/"):
        if seg.startswith("{") and seg.endswith("}"):
            name = seg[1:-1].split(":")[0]
            schema, text = PATH_PARAMS.get(name, (S, name))
            out.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": schema,
                    "description": text,
                }
            )
    for name, (schema, text) in doc.query.items():
        out.append(
            {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
        )
    if doc.idempotent:
        out.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
                "description": "a repeat with the same key replays the first answer "
                "(header Idempotent-Replayed: true) instead of signing again",
            }
        )
    return out


def _error_response(errors: Iterable[Err]) -> dict[str, Any]:
    errs = list(errors)
    return {
        "description": "; ".join(f"`{code}`: {text}" for _, code, text in errs),
        "content": {"application/json": {"schema": ref("Error")}},
        "x-error-codes": [code for _, code, _ in errs],
    }


def _operation(method: str, path: str, doc: RouteDoc) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{path.strip('/').replace('/', '_') or 'root'}".replace(
            "{", ""
        )
        .replace("}", "")
        .replace(".", "_")
        .replace("-", "_"),
        "summary": doc.summary,
        "tags": [doc.tag],
    }
    if doc.description:
        op["description"] = doc.description
    params = _params(path, doc)
    if params:
        op["parameters"] = params
    if doc.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {doc.body_media: {"schema": doc.body}},
        }
    if doc.ok is not None:
        ok: dict[str, Any] = {
            "description": "OK",
            "content": {doc.media: {"schema": doc.ok}},
        }
    else:
        ok = {"description": "OK", "content": {doc.media: {}}}
    responses: dict[str, Any] = {str(doc.status): ok}
    if path == "/api/events":
        responses["202"] = {
            "description": "pending or held",
            "content": {"application/json": {"schema": ref("RawEventAnswer")}},
        }
    errors: dict[int, list[Err]] = {}
    for e in doc.errors + (COMMON_ERRORS if doc.auth != "public" else COMMON_ERRORS[1:]):
        errors.setdefault(e[0], []).append(e)
    for status, errs in sorted(errors.items()):
        responses[str(status)] = _error_response(errs)
    if path == "/api/events":
        responses["422"]["content"] = {"application/json": {"schema": ref("RawEventAnswer")}}
    op["responses"] = responses
    if doc.auth == "public":
        op["security"] = []
    elif doc.auth == "token":
        op["security"] = [{"token": []}]
    if doc.admin:
        op["x-admin-only"] = True
    return op


def openapi(routes: Iterable[BaseRoute], server: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the routes an app serves. A served route
    missing from ROUTES is still listed (summary `(not described)`)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in served_routes(routes):
        doc = ROUTES.get((method, path)) or RouteDoc("(not described)", "undescribed")
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, doc)
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "learnmesh node API",
            "version": _version(),
            "description": (
                "The local HTTP API of a learnmesh node, on 127.0.0.1 only. Every /api/* "
                "route and /metrics need `Authorization: Bearer <api.token>` (the file in "
                "the data directory) or the web page's session cookie; with the cookie, "
                "every non-GET request also needs `X-Learnmesh-CSRF: 1`. Ids are hex, "
                "accounts `lm…` text, amounts integers, times ms since the epoch. A mistake "
                'is a 4xx with {"error": code, "message": sentence}. Routes marked '
                "x-admin-only exist only on a node started with --admin (devnets, tests)."
            ),
        },
        "servers": [{"url": server or "http://127.0.0.1:8642"}],
        "security": [{"token": []}, {"session": []}],
        "tags": [{"name": t} for t in dict.fromkeys(d.tag for d in ROUTES.values())],
        "paths": paths,
        "components": {
            "schemas": COMPONENT_SCHEMAS,
            "securitySchemes": {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token in the data directory's api.token",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "lm_session_PORT",
                    "description": "the web page's session (the cookie is named by the "
                    "API's port, e.g. lm_session_8642); got at POST /api/session",
                },
            },
        },
    }
    return spec


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("learnmesh")
    except PackageNotFoundError:
        return "0"


def openapi_routes() -> list[tuple[str, str, Handler]]:
    async def describe(request: Request) -> Any:
        return openapi(request.app.routes, str(request.base_url).rstrip("/"))

    return [("GET", OPENAPI_PATH, describe)]


# -- API.md ---------------------------------------------------------------------------------------


def markdown() -> str:
    """API.md: every route, one line each, from ROUTES (the test keeps it in step)."""
    lines = [
        "# The node's HTTP API",
        "",
        "<!-- generated by `python -m learnmesh.node._openapi > API.md`; "
        "tests/test_openapi.py checks it is up to date -->",
        "",
        "A node serves its API on 127.0.0.1 only (port 8642 by default). Every `/api/*` "
        "route and `/metrics` need `Authorization: Bearer <token>` (the file `api.token` "
        "in the data directory) or the web page's session cookie, and then every non-GET "
        "request also needs `X-Learnmesh-CSRF: 1`. Ids are hex, accounts `lm…` text, "
        "amounts integers, times milliseconds since the epoch. A mistake is a 4xx with "
        '`{"error": code, "message": sentence}`.',
        "",
        f"The full description, with every request, answer and error, is served as "
        f"OpenAPI 3.1 at `GET {OPENAPI_PATH}`.",
        "",
        "Besides the errors listed with each route, any of them may answer "
        + ", ".join(f"{st} `{code}`" for st, code, _ in COMMON_ERRORS)
        + " (no 401 where no auth is needed).",
        "",
        "| method | path | what | its own errors |",
        "|---|---|---|---|",
    ]
    for (method, path), doc in ROUTES.items():
        notes = []
        if doc.auth == "public":
            notes.append("no auth")
        elif doc.auth == "token":
            notes.append("token only")
        if doc.admin:
            notes.append("`--admin` only")
        if doc.idempotent:
            notes.append("Idempotency-Key")
        extra = f" ({', '.join(notes)})" if notes else ""
        errors = ", ".join(f"{st} `{c}`" for st, c, _ in sorted(doc.errors, key=lambda e: e[0]))
        summary = doc.summary.replace("|", "/")
        lines.append(f"| {method} | `{path}` | {summary}{extra} | {errors} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
