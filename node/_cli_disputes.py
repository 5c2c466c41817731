"""`learnmesh dispute file | appeal | list | show | vote | claim` and `learnmesh jury`.

Everything goes through the running node's API (node/_api_disputes.py). Text
from the network (claims, reasons, names, titles) is printed through the
safe table helpers of node/_cli_client.py: never as markup, control
characters replaced.
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any

from rich.console import Group

from ._cli_client import ApiClient, CliError, SafeTable, _ms, _out, _when

__all__ = ["CliError", "register"]


def _client(args: argparse.Namespace) -> ApiClient:
    return ApiClient(Path(args.data_dir))


def _dispute_id(client: ApiClient, prefix: str) -> str:
    """A unique prefix of a dispute id, as people copy them from tables."""
    p = prefix.strip().lower()
    if len(p) == 64:
        return p
    if not p or any(c not in "0123456789abcdef" for c in p):
        raise CliError(f"{prefix!r} is not a dispute id (hex)")
    hits = [
        d["id"] for d in client.call("GET", "/api/disputes")["disputes"] if d["id"].startswith(p)
    ]
    if len(hits) != 1:
        raise CliError(f"{prefix!r} matches {len(hits)} disputes; give more of the id")
    return str(hits[0])


def _hex64(text: str, what: str) -> str:
    t = text.strip().lower()
    if len(t) != 64 or any(c not in "0123456789abcdef" for c in t):
        raise CliError(f"{what} is an event id of 64 hex characters (got {text!r})")
    return t


def _files(paths: list[str] | None) -> list[dict[str, str]]:
    out = []
    for f in paths or []:
        p = Path(f)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {f}: {exc.strerror}") from None
        out.append({"name": p.name, "data_b64": base64.b64encode(data).decode()})
    return out


def _claim_text(args: argparse.Namespace) -> str:
    if args.claim_file:
        try:
            return Path(args.claim_file).read_text()
        except OSError as exc:
            raise CliError(f"cannot read {args.claim_file}: {exc.strerror}") from None
    if not args.claim:
        raise CliError("say what is wrong: --claim TEXT or --claim-file FILE")
    return str(args.claim)


def _deadline_fields(args: argparse.Namespace) -> dict[str, int]:
    out = {}
    if args.vote_by:
        out["vote_by"] = _ms(args.vote_by, 3)
    if args.reveal_by:
        out["reveal_by"] = _ms(args.reveal_by, 5)
    return out


def _short(acct: str | None, name: str | None = None) -> str:
    if not acct:
        return "-"
    return f"{name} ({acct[:12]}…)" if name else acct[:16] + "…"


def _next(d: dict[str, Any]) -> str:
    a = d.get("next_action")
    if a is None:
        return "-"
    if a == "reveal" and d.get("next_auto"):
        return f"reveal (your node does it after {_when(d['vote_by'])})"
    if a == "claim":
        return f"claim {d.get('owed_to_me', 0)} (your node does it by itself)"
    by = d.get("next_by")
    return f"{a} by {_when(by)}" if by else str(a)


def _detail(d: dict[str, Any]) -> Any:
    t = SafeTable(title=f"dispute {d['id'][:16]}", show_header=False)
    t.add_row("id", d["id"])
    t.add_row("disputes", f"{d['target_kind']} {d['target'][:16]} in «{d['bounty_title'] or '?'}»")
    t.add_row("disputant", _short(d["disputant"], d.get("disputant_name")))
    t.add_row("respondent", _short(d["respondent"], d.get("respondent_name")))
    t.add_row("claim", d["claim"])
    for e in d["evidence"]:
        t.add_row("evidence", f"{e['name']} ({e['size']} bytes, {e['hash'][:16]})")
    t.add_row("bond", f"{d['bond']} (still locked: {d['escrow']})")
    t.add_row("vote by", _when(d["vote_by"]))
    t.add_row("reveal by", _when(d["reveal_by"]))
    v = d["votes"]
    t.add_row("phase", d["phase"] + ("" if d["panel_fair"] else " — panel not drawn fairly"))
    t.add_row(
        "votes",
        f"{v['committed']} of {v['panel']} voted, {v['revealed']} revealed: "
        f"{v['uphold']} uphold, {v['reject']} reject",
    )
    if d.get("outcome"):
        t.add_row("outcome", str(d["outcome"]))
    if d.get("appeal_of"):
        t.add_row("appeal of", d["appeal_of"])
    for a in d.get("appeals", []):
        t.add_row("appealed by", a)
    t.add_row("your role", d.get("my_role") or "-")
    t.add_row("your next step", _next(d))
    j = SafeTable("juror", "voted", "verdict", "reason", "claimed", title="jury")
    for x in d["jurors"]:
        j.add_row(
            _short(x["account"], x.get("name")),
            "yes" if x["committed"] else "no",
            x["verdict"] or ("sealed" if x["committed"] else "-"),
            x["reason"] or "",
            str(x["claimed"]) if x["claimed"] is not None else "",
        )
    m = SafeTable("bond movement", "account", "amount", title="bond")
    for mv in d["bond_movements"]:
        who = mv.get("from") if mv["kind"] == "bond" else mv.get("to")
        m.add_row(mv["kind"], _short(who), str(mv["amount"]))
    return Group(t, j, m)


# -- commands -----------------------------------------------------------------------------------


def _target(client: ApiClient, text: str) -> str:
    """The event to dispute: an award, refund or review id, or a bounty (id or
    unique prefix) whose award or refund is meant."""
    t = text.strip().lower()
    if not t or any(c not in "0123456789abcdef" for c in t):
        raise CliError(f"{text!r} is not an event or bounty id (hex)")
    bounties = client.call("GET", "/api/bounties")["bounties"]
    hits = [b["id"] for b in bounties if b["id"].startswith(t)]
    if len(t) < 64 and len(hits) != 1:
        raise CliError(f"{text!r} matches {len(hits)} bounties; give more of the id")
    if hits:
        b = client.call("GET", f"/api/bounties/{hits[0]}")
        if not b.get("settled_by"):
            raise CliError("that bounty is not awarded or refunded yet: nothing to dispute")
        return str(b["settled_by"])
    return t


def cmd_file(args: argparse.Namespace) -> int:
    client = _client(args)
    body: dict[str, Any] = {
        "target": _target(client, args.target),
        "claim": _claim_text(args),
        "bond": args.bond,
        "files": _files(args.evidence),
        **_deadline_fields(args),
    }
    if args.subject:
        body["subject"] = _hex64(args.subject, "--subject")
    d = client.call("POST", "/api/disputes", body)
    jurors = ", ".join(_short(j["account"], j.get("name")) for j in d["jurors"])
    return _out(
        args,
        d,
        f"filed dispute {d['id']} (bond {d['bond']} locked); jurors: {jurors}; "
        f"votes by {_when(d['vote_by'])}, revealed by {_when(d['reveal_by'])}",
    )


def cmd_appeal(args: argparse.Namespace) -> int:
    c = _client(args)
    body: dict[str, Any] = {
        "appeal_of": _dispute_id(c, args.dispute),
        "claim": _claim_text(args),
        "files": _files(args.evidence),
        **_deadline_fields(args),
    }
    if args.bond is not None:
        body["bond"] = args.bond
    d = c.call("POST", "/api/disputes", body)
    return _out(
        args,
        d,
        f"appealed: {d['id']} (bond {d['bond']}, {len(d['jurors'])} jurors; "
        f"votes by {_when(d['vote_by'])})",
    )


def cmd_list(args: argparse.Namespace) -> int:
    r = _client(args).call("GET", "/api/disputes")
    t = SafeTable("id", "disputes", "bounty", "phase", "bond", "your role", "your next step")
    for d in r["disputes"]:
        t.add_row(
            d["id"][:16],
            d["target_kind"] + (" (appeal)" if d.get("appeal_of") else ""),
            d["bounty_title"] or d["bounty"][:16],
            d["phase"] + ("" if d["panel_fair"] else " (unfair panel)"),
            str(d["bond"]),
            d.get("my_role") or "-",
            _next(d),
        )
    return _out(args, r, t if r["disputes"] else "no disputes")


def cmd_show(args: argparse.Namespace) -> int:
    c = _client(args)
    d = c.call("GET", f"/api/disputes/{_dispute_id(c, args.dispute)}")
    return _out(args, d, _detail(d))


def cmd_vote(args: argparse.Namespace) -> int:
    c = _client(args)
    did = _dispute_id(c, args.dispute)
    r = c.call(
        "POST", f"/api/disputes/{did}/vote", {"verdict": args.verdict, "reason": args.reason or ""}
    )
    return _out(
        args,
        r,
        f"voted (sealed): {r['id']}; your node reveals it once voting closes",
    )


def cmd_claim(args: argparse.Namespace) -> int:
    c = _client(args)
    r = c.call("POST", f"/api/disputes/{_dispute_id(c, args.dispute)}/claim", {})
    return _out(args, r, f"claimed: {r['id']}")


def cmd_jury(args: argparse.Namespace) -> int:
    r = _client(args).call("GET", "/api/jury")
    t = SafeTable("dispute", "what", "phase", "do", "by", title="what waits on you")
    for row in r["jury"]:
        auto = row["action"] == "reveal" and row["auto"]
        t.add_row(
            row["dispute"][:16],
            f"jury: {row['target_kind']} dispute",
            row["phase"],
            "reveal (your node does it)" if auto else str(row["action"]),
            _when(row["by"]) if row["by"] else "-",
        )
    for row in r["claims"]:
        t.add_row(
            row["dispute"][:16], "bond owed to you", row["phase"], f"claim {row['amount']}", "-"
        )
    for row in r["against_me"]:
        t.add_row(
            row["dispute"][:16],
            f"against your {row['target_kind']}",
            row["phase"],
            str(row["action"] or "-"),
            _when(row["reveal_by"]),
        )
    for row in r["mine"]:
        t.add_row(
            row["dispute"][:16],
            f"your dispute of a {row['target_kind']}",
            row["phase"],
            str(row["action"] or "wait"),
            _when(row["reveal_by"]),
        )
    empty = not (r["jury"] or r["claims"] or r["against_me"] or r["mine"])
    return _out(args, r, "nothing waits on you" if empty else t)


def cmd_jury_reveal(args: argparse.Namespace) -> int:
    c = _client(args)
    r = c.call("POST", f"/api/disputes/{_dispute_id(c, args.dispute)}/reveal", {})
    return _out(args, r, f"revealed: {r['id']}")


def _deadline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vote-by", help="jurors vote by: +3d, +12h, ISO time or ms (default +3d)")
    p.add_argument("--reveal-by", help="votes revealed by (default 2 days after --vote-by)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser(
        "dispute", help="dispute an award, a refund or a review; list, show, vote, claim"
    ).add_subparsers(dest="dispute_cmd", required=True)
    p = d.add_parser("file", help="dispute an award, a refund or a review (locks a bond)")
    p.add_argument(
        "target", help="the award, refund or review id, or the bounty whose award or refund"
    )
    p.add_argument("--claim", help="what is wrong (1..2000 characters)")
    p.add_argument("--claim-file", help="read the claim from a file")
    p.add_argument("--bond", type=int, required=True, help="tokens locked until the jury decides")
    p.add_argument("--subject", help="your standing (found by the node when left out)")
    p.add_argument("--evidence", action="append", metavar="FILE", help="attach (repeat, ≤ 8)")
    _deadline_args(p)
    p.set_defaults(func=cmd_file)
    p = d.add_parser("appeal", help="appeal a decided dispute: a larger jury, doubled bond")
    p.add_argument("dispute")
    p.add_argument("--claim")
    p.add_argument("--claim-file")
    p.add_argument("--bond", type=int, help="default: twice the dispute's bond")
    p.add_argument("--evidence", action="append", metavar="FILE")
    _deadline_args(p)
    p.set_defaults(func=cmd_appeal)
    p = d.add_parser("list", help="every dispute, with your role and next step")
    p.set_defaults(func=cmd_list)
    p = d.add_parser("show", help="one dispute: claim, evidence, jurors, votes, outcome")
    p.add_argument("dispute")
    p.set_defaults(func=cmd_show)
    p = d.add_parser("vote", help="juror: vote (sealed until voting closes)")
    p.add_argument("dispute")
    p.add_argument("verdict", choices=("uphold", "reject"))
    p.add_argument("--reason", help="why (shown when the vote is revealed)")
    p.set_defaults(func=cmd_vote)
    p = d.add_parser("claim", help="take what a decided dispute owes you")
    p.add_argument("dispute")
    p.set_defaults(func=cmd_claim)

    j = sub.add_parser("jury", help="what waits on you: jury duty, bonds owed, disputes")
    j.set_defaults(func=cmd_jury)
    js = j.add_subparsers(dest="jury_cmd", required=False)
    p = js.add_parser("reveal", help="reveal your vote now (after voting closes)")
    p.add_argument("dispute")
    p.set_defaults(func=cmd_jury_reveal)
