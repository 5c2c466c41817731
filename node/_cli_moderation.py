"""`learnmesh flag | flags | block | unblock | blocks`: moderation through the
running node's API (node/_api_moderation.py).

- `learnmesh flag (EVENT_ID | --account ACCOUNT) --category spam|abuse|plagiarism|other
  [--note TEXT]`: sign a flag of an event (a bounty, a submission or a review;
  a bounty id may be a unique prefix) or of an account as a whole.
- `learnmesh flags`: what the community's flags hide on this network and why.
- `learnmesh block ACCOUNT [--reason TEXT]`, `learnmesh unblock ACCOUNT`,
  `learnmesh blocks`: this node's own blocklist (hidden here, not relayed by
  this node; the ledger still holds the events).
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Group
from rich.text import Text

from ._cli_client import CliError, SafeTable, _client, _full_id, _out, _plain, _when

__all__ = ["CliError", "register"]

_CATEGORIES = ("spam", "abuse", "plagiarism", "other")


def _event_id(args: argparse.Namespace, text: str) -> str:
    t = text.strip().lower()
    if not t or any(c not in "0123456789abcdef" for c in t):
        raise CliError(f"{text!r} is not an event id (hex)")
    if len(t) == 64:
        return t
    return _full_id(args, t)  # a unique prefix of a bounty id


def cmd_flag(args: argparse.Namespace) -> int:
    if bool(args.event) == bool(args.account):
        raise CliError("give either an EVENT_ID or --account ACCOUNT (one of them)")
    body: dict[str, Any] = {"category": args.category, "note": args.note or ""}
    if args.event:
        body["target"] = _event_id(args, args.event)
    else:
        body["account"] = args.account
    r = _client(args).call("POST", "/api/flags", body)
    what = f"event {r['target'][:16]}" if r.get("target") else f"account {r['account']}"
    return _out(args, r, f"flagged {what} as {args.category}: {r['id']}")


def _flag_lines(items: list[dict[str, Any]]) -> list[Text]:
    """One short block per flagged item (lines, not a wide table: they do not wrap)."""
    out: list[Text] = []
    for it in items:
        who = it.get("account_name") or it["account"][:16] + "…"
        if it["kind"] == "account":
            head = f"account {it['subject']} ({who})"
        else:
            title = f" {it['title'][:48]!r}" if it.get("title") else ""
            head = f"{it['target_kind']}{title} {it['subject'][:16]} by {who}"
        cats = ", ".join(f"{k} {n}" for k, n in it["categories"].items())
        out.append(_plain(f"- {head}\n    {cats}; {it['why']}"))
    return out


def cmd_flags(args: argparse.Namespace) -> int:
    r = _client(args).call("GET", "/api/flags")
    hidden = r["hidden"]["events"] + r["hidden"]["accounts"]
    th = r["thresholds"]
    parts: list[Any] = [
        _plain(
            f"hidden when the flaggers hold {th['trust_ppm'] / 10_000:g}% of all trust "
            f"or {th['min_flaggers']} flaggers with trust agree"
        )
    ]
    for title, items in (
        ("hidden by community flags", hidden),
        ("flagged, not hidden", r["below"]),
    ):
        parts.append(_plain(f"{title}: {len(items) or 'none'}"))
        parts += _flag_lines(items)
    if r["mine"]:
        parts.append(_plain(f"your flags: {len(r['mine'])}"))
    return _out(args, r, Group(*parts))


def cmd_block(args: argparse.Namespace) -> int:
    r = _client(args).call(
        "POST", "/api/blocks", {"account": args.account, "reason": args.reason or ""}
    )
    msg = "already blocked" if r["already"] else "blocked"
    return _out(
        args,
        r,
        f"{msg} {r['account']}: hidden on this node and not relayed by it "
        "(the ledger still holds its events)",
    )


def cmd_unblock(args: argparse.Namespace) -> int:
    r = _client(args).call("DELETE", f"/api/blocks/{args.account}")
    return _out(args, r, f"unblocked {r['account']}")


def cmd_blocks(args: argparse.Namespace) -> int:
    r = _client(args).call("GET", "/api/blocks")
    relay = r["relay"]
    foot = _plain(
        f"relay: {relay['blocked']} events of blocked authors and {relay['over_limit']} over "
        f"the limit of {relay['per_author_per_min']} per author per minute were not forwarded"
    )
    if not r["blocks"]:
        return _out(args, r, Group(_plain("no account is blocked on this node"), foot))
    t = SafeTable(title="blocked on this node")
    for col in ("account", "name", "reason", "since"):
        t.add_column(col)
    for b in r["blocks"]:
        t.add_row(b["account"], b["name"] or "", b["reason"], _when(b["at_ms"]))
    return _out(args, r, Group(t, foot))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("flag", help="flag an event or an account as spam, abuse, plagiarism…")
    p.add_argument("event", nargs="?", metavar="EVENT_ID", help="a bounty, submission or review")
    p.add_argument("--account", help="flag this account as a whole instead of one event")
    p.add_argument("--category", required=True, choices=_CATEGORIES)
    p.add_argument("--note", help="why (for plagiarism: what was copied from where)")
    p.set_defaults(func=cmd_flag)
    p = sub.add_parser("flags", help="what the community's flags hide, and why")
    p.set_defaults(func=cmd_flags)
    p = sub.add_parser("block", help="hide an account's content on this node and stop relaying it")
    p.add_argument("account")
    p.add_argument("--reason", help="a note for yourself")
    p.set_defaults(func=cmd_block)
    p = sub.add_parser("unblock", help="undo block")
    p.add_argument("account")
    p.set_defaults(func=cmd_unblock)
    p = sub.add_parser("blocks", help="the accounts blocked on this node")
    p.set_defaults(func=cmd_blocks)
