"""`learnmesh recommend [--limit N]`: open bounties ranked for this node's account.

The running node computes the list from the events it holds (GET
/api/recommendations, node/_api_recommend.py); nothing leaves the node for it.
Titles, names, skills and reasons come from the network, so every string
reaches the terminal through node/_cli_client.py's plain-text table.
"""

from __future__ import annotations

import argparse

from ._cli_client import CliError, SafeTable, _client, _out, _when

__all__ = ["CliError", "register"]


def _limit(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if not 1 <= v <= 500:
        raise argparse.ArgumentTypeError(f"a number of bounties in 1..500 (got {text!r})")
    return v


def cmd_recommend(args: argparse.Namespace) -> int:
    r = _client(args).call("GET", f"/api/recommendations?limit={args.limit}")
    recs = r["recommendations"]
    if not recs:
        return _out(args, r, "no open bounty to recommend right now")
    hidden = f"; {r['hidden']} hidden by your blocklist or flags" if r.get("hidden") else ""
    t = SafeTable(
        title=f"{len(recs)} of {r['count']} open bounties for {r['account'][:12]}…{hidden}",
        show_lines=True,
    )
    t.add_column("bounty", ratio=2, min_width=12)
    t.add_column("reward", justify="right", no_wrap=True)
    t.add_column("deadline", no_wrap=True)
    t.add_column("score", justify="right", no_wrap=True)
    t.add_column("why", ratio=3, min_width=24)
    for x in recs:
        why = list(x["reasons"])
        if x["missing"]:
            why.insert(0, "NOT READY: prerequisites missing")
        day, _, hour = _when(x["submit_by"]).partition(" ")
        t.add_row(
            f"{x['title']}\n{x['bounty'][:16]}",
            f"{x['reward']:,}",
            f"{day}\n{hour}",
            str(x["score"]),
            "\n".join(f"- {w}" for w in why),
        )
    return _out(args, r, t)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `recommend` to the top-level parser's subcommands."""
    p = sub.add_parser(
        "recommend",
        help="open bounties ranked for you, and why (computed on your own node)",
    )
    p.add_argument("--limit", type=_limit, default=20, help="how many to list (1..500, default 20)")
    p.set_defaults(func=cmd_recommend)
