"""`learnmesh comment | comments | resource add | resources`: discussion and
suggested learning resources, through the running node's API
(node/_api_learning.py).

Comment text from the network is printed as plain text (its Markdown source,
never read as rich markup, control characters replaced: node/_cli_client.py's
`_plain`)."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlencode

from rich.console import Group
from rich.text import Text

from ._cli_client import CliError, _client, _full_id, _out, _plain, _when

__all__ = ["CliError", "register"]


def _is_hex_id(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower())


def _text_arg(args: argparse.Namespace) -> str:
    text: str = args.text
    if text == "-":
        import sys

        text = sys.stdin.read()
    if not text.strip():
        raise CliError("the comment is empty")
    return text


def cmd_comment(args: argparse.Namespace) -> int:
    """Comment on a bounty (a unique prefix of its id will do) or on any
    submission, review, comment or resource (its full id)."""
    target = args.target.lower() if _is_hex_id(args.target) else _full_id(args, args.target)
    r = _client(args).call("POST", "/api/comments", {"target": target, "text": _text_arg(args)})
    return _out(args, r, f"commented: {r['id']}")


def _who(c: dict[str, Any]) -> str:
    name = c.get("author_name")
    acct = str(c["author"])
    return f"{name} ({acct[:10]}…)" if name else acct[:14] + "…"


_ON = {
    "bounty": "",
    "reveal": "on a submission ",
    "review": "on a review ",
    "resource": "on a resource ",
    "comment": "",
}


def cmd_comments(args: argparse.Namespace) -> int:
    """Every thread under a bounty (a unique prefix of its id will do), or the
    thread under any one submission, review, comment or resource (its full
    id); replies indented."""
    client = _client(args)
    if _is_hex_id(args.target):
        r = client.call("GET", f"/api/comments/{args.target.lower()}")
        if r["target_kind"] == "bounty":
            r = client.call("GET", f"/api/bounties/{args.target.lower()}/comments")
    else:
        r = client.call("GET", f"/api/bounties/{_full_id(args, args.target)}/comments")
    parts: list[Any] = []
    for c in r["comments"]:
        pad = "  " * min(c["depth"], 12)
        on = _ON.get(c.get("target_kind") or "", "") if c["depth"] == 0 else ""
        head = Text(pad)
        head.append(_plain(f"{_who(c)} {on}· {_when(c['timestamp'])} · {c['id'][:12]}"))
        head.stylize("bold")
        parts.append(head)
        if c["hidden"] and not args.show_hidden:
            parts.append(_plain(f"{pad}  [hidden: {c['hidden_why']}; --show-hidden shows it]"))
        else:
            for line in str(c["text"]).splitlines() or [""]:
                parts.append(Text(pad + "  ") + _plain(line))
        parts.append(Text(""))
    if not parts:
        parts.append(Text("no comments yet"))
    return _out(args, r, Group(*parts))


def cmd_resource_add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "skill": args.skill,
        "title": args.title,
        "url": args.url,
        "kind": args.kind,
        "licence": args.licence or "",
    }
    if args.bounty:
        body["bounty"] = _full_id(args, args.bounty)
    r = _client(args).call("POST", "/api/resources", body)
    return _out(args, r, f"suggested: {r['id']}")


def cmd_resources(args: argparse.Namespace) -> int:
    q: dict[str, str] = {}
    if args.skill:
        q["skill"] = args.skill
    if args.bounty:
        q["bounty"] = _full_id(args, args.bounty)
    r = _client(args).call("GET", "/api/resources" + ("?" + urlencode(q) if q else ""))
    if not r["resources"]:
        return _out(args, r, "no resources suggested yet")
    # one entry per resource, the url on its own line (a table would cut it)
    parts: list[Any] = []
    for i, res in enumerate(r["resources"], 1):
        by = ", ".join(s["name"] or s["account"][:12] + "…" for s in res["suggested_by"])
        head = Text(f"{i}. ", style="bold")
        head.append(_plain(res["title"]))
        parts.append(head)
        parts.append(
            _plain(
                f"   {res['kind']} · licence {res['licence'] or 'unknown'} · skill {res['skill']}"
                f" · trust {res['trust_ppm'] / 10_000:.2f} % · suggested by {by}"
            )
        )
        parts.append(_plain(f"   {res['url']}"))
    return _out(args, r, Group(*parts))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "comment", help="comment on a bounty, submission, review, comment or resource"
    )
    p.add_argument("target", help="a bounty id (or a unique prefix), or any commentable event id")
    p.add_argument("text", help="Markdown (1..4000 characters); - reads it from stdin")
    p.set_defaults(func=cmd_comment)
    p = sub.add_parser("comments", help="the discussion under a bounty (or any commented event)")
    p.add_argument("target", help="a bounty id (or a unique prefix), or any commentable event id")
    p.add_argument("--show-hidden", action="store_true", help="print hidden comments too")
    p.set_defaults(func=cmd_comments)
    r = sub.add_parser("resource", help="suggest a learning resource").add_subparsers(
        dest="resource_cmd", required=True
    )
    p = r.add_parser("add", help="suggest a resource for a skill (and a bounty)")
    p.add_argument("--skill", required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--url", required=True, help="an http:// or https:// address")
    p.add_argument(
        "--kind",
        default="article",
        choices=("article", "video", "course", "book", "exercise", "other"),
    )
    p.add_argument("--licence", help="e.g. CC-BY-4.0, CC-BY-SA-4.0 (default: unknown)")
    p.add_argument("--bounty", help="the bounty it helps with")
    p.set_defaults(func=cmd_resource_add)
    p = sub.add_parser("resources", help="suggested resources, ranked by the suggesters' trust")
    p.add_argument("--skill")
    p.add_argument("--bounty")
    p.set_defaults(func=cmd_resources)
