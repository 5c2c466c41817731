"""`learnmesh message send ACCOUNT TEXT` and `learnmesh messages [ACCOUNT]`.

Private, end-to-end encrypted messages through the running node's API
(node/_api_messages.py). Text from the network reaches the terminal only
through _cli_client's safe helpers (never rich markup, control characters
replaced).
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Group
from rich.text import Text

from ._cli_client import CliError, SafeTable, _client, _out, _plain, _when

__all__ = ["CliError", "register"]


def cmd_send(args: argparse.Namespace) -> int:
    text = args.text
    if text == "-":
        text = sys.stdin.read()
    r = _client(args).call("POST", "/api/messages", {"to": args.account, "text": text})
    return _out(args, r, f"sent to {args.account} (sealed; id {r['id'][:16]})")


def cmd_list(args: argparse.Namespace) -> int:
    c = _client(args)
    if args.account is None:
        data = c.call("GET", "/api/messages")
        if not data["conversations"]:
            return _out(args, data, "no messages yet")
        t = SafeTable("with", "name", "messages", "unread", "last", "latest")
        for conv in data["conversations"]:
            last = conv["last_text"].splitlines()[0] if conv["last_text"] else ""
            t.add_row(
                conv["account"],
                conv["name"] or "",
                str(conv["count"]),
                str(conv["unread"]),
                _when(conv["last_ms"]),
                ("you: " if conv["last_outgoing"] else "") + last[:60],
            )
        return _out(args, data, t)
    data = c.call("GET", f"/api/messages/{args.account}")
    who = data["name"] or data["account"]
    lines: list[Text] = [_plain(f"conversation with {who} ({data['account']})")]
    if not data["messages"]:
        lines.append(_plain("no messages yet"))
    for m in data["messages"]:
        head = "you" if m["outgoing"] else (data["name"] or "them")
        lines.append(_plain(f"\n{_when(m['sent_ms'])}  {head}:"))
        lines.append(_plain(m["text"]))
    return _out(args, data, Group(*lines))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    m = sub.add_parser("message", help="send a private, end-to-end encrypted message")
    ms = m.add_subparsers(dest="message_cmd", required=True)
    p = ms.add_parser("send", help="send a private message to an account")
    p.add_argument("account", help="the recipient's account (lm…)")
    p.add_argument("text", help="the message; - reads it from standard input")
    p.set_defaults(func=cmd_send)
    p = sub.add_parser("messages", help="your private conversations, or one of them")
    p.add_argument("account", nargs="?", help="show the conversation with this account")
    p.set_defaults(func=cmd_list)
