"""`learnmesh credential list | get | verify`.

`verify` needs no node and no network: it checks an Open Badges 3.0 credential
(eddsa-rdfc-2022, did:key issuer; ours or anyone's) or an old learnmesh bundle
entirely offline. `--online` then also asks the local node whether the issuer
has been shown to fork its chain.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._cli_client import ApiClient, CliError

__all__ = ["CliError", "register"]


def _out_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def _sid(text: str) -> str:
    t = text.strip().lower()
    if len(t) != 64 or any(c not in "0123456789abcdef" for c in t):
        raise CliError(f"{text!r} is not a submission id (64 hex characters)")
    return t


def cmd_list(args: argparse.Namespace) -> int:
    items = ApiClient(Path(args.data_dir)).call("GET", "/api/credentials")["credentials"]
    if args.json:
        _out_json(items)
        return 0
    if not items:
        Console(emoji=False, highlight=False).print("no awarded work yet")
        return 0
    t = Table(title="your credentials")
    for col in ("submission", "bounty", "mentor", "amount", "awarded", "credential"):
        t.add_column(col)
    for i in items:
        when = (
            _dt.datetime.fromtimestamp(i["awarded_at_ms"] / 1000, tz=_dt.UTC).strftime(
                "%Y-%m-%d %H:%M UTC"
            )
            if i.get("awarded_at_ms")
            else ""
        )
        t.add_row(
            i["submission"][:16],
            escape(i["title"]),
            i["mentor"][:16] + "…",
            str(i["amount"]),
            when,
            i["status"],
        )
    Console(emoji=False, highlight=False).print(t)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    sid = _sid(args.submission)
    path = f"/api/credentials/{sid}" + ("?format=bundle" if args.bundle else "")
    data = ApiClient(Path(args.data_dir)).call("GET", path)
    if not isinstance(data, bytes):
        data = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
    try:
        Path(args.out).write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from None
    if args.json:
        _out_json({"file": args.out, "bytes": len(data)})
    else:
        kind = "learnmesh bundle" if args.bundle else "Open Badges 3.0 credential"
        Console(emoji=False, highlight=False).print(
            f"{kind} written to {escape(args.out)} ({len(data)} bytes)"
        )
    return 0


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _account_of(did: str | None) -> str | None:
    from learnmesh.protocol import account_text
    from learnmesh.protocol._vc import VCError, did_key_public_key

    if did is None:
        return None
    try:
        return account_text(did_key_public_key(did))
    except VCError:
        return None


def _verify_bundle(args: argparse.Namespace, data: bytes) -> int:
    from learnmesh.protocol import RemoteProtocolError, verify_credential

    try:
        cred = verify_credential(data)
    except RemoteProtocolError as exc:
        if args.json:
            _out_json({"valid": False, "format": "learnmesh-bundle", "reason": exc.reason})
        else:
            Console(emoji=False, highlight=False).print(
                f"[red]NOT VALID[/red] learnmesh bundle: {escape(exc.reason)}"
            )
        return 1
    j = cred.to_json()
    if args.json:
        _out_json({"valid": True, "format": "learnmesh-bundle", **j})
        return 0
    t = Table(title="learnmesh bundle: VALID", show_header=False)
    for k, v in j.items():
        t.add_row(k, escape(str(v)))
    Console(emoji=False, highlight=False).print(t)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    data = _read(args.file)
    if data.lstrip()[:1] != b"{":
        return _verify_bundle(args, data)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CliError(f"{args.file} is neither JSON nor a learnmesh bundle: {exc}") from None
    from ._credentials import verify_document

    report = verify_document(doc, time.time())
    out = report.to_json()
    if args.online:
        out["issuer_fork"] = (
            ApiClient(Path(args.data_dir))
            .call("POST", "/api/credentials/verify", raw=data)
            .get("issuer_fork")
        )
    fork = out.get("issuer_fork") or {}
    revoked = bool(fork.get("forked")) and fork.get("award_stands") is False
    if args.json:
        _out_json(out)
        return 0 if report.valid and not revoked else 1
    c = Console(emoji=False, highlight=False, soft_wrap=True)
    who = report.issuer_name or "?"
    lm_issuer, lm_subject = (
        (_account_of(report.issuer), _account_of(report.subject))
        if report.learnmesh
        else (None, None)
    )
    rows = [
        ("issued by", f"{who}, {report.issuer}"),
        ("", f"learnmesh account {lm_issuer}" if lm_issuer else None),
        ("achievement", report.achievement or report.name or "?"),
        ("to", str(report.subject)),
        ("", f"learnmesh account {lm_subject}" if lm_subject else None),
        ("for the work", str(report.work or "(no evidence)")),
        (
            "network",
            f"{report.network} ({report.network_id})"
            if report.network
            else "(no learnmesh evidence: not checked against a network)",
        ),
        ("valid from", str(report.valid_from)),
        ("valid until", report.valid_until),
    ]
    for label, value in rows:
        if value is not None:
            c.print(f"{label:<13} {escape(value)}")
    for name, ok, reason in report.checks:
        mark = "[green]ok[/green]  " if ok else "[red]FAIL[/red]"
        c.print(f"  {mark} {name}: {escape(reason)}")
    if args.online:
        seq = fork.get("fork_seq")
        if not fork.get("checked"):
            c.print(f"  [yellow]??[/yellow]   online: {escape(str(fork.get('reason')))}")
        elif not fork.get("forked"):
            c.print("  [green]ok[/green]   online: the local node knows no fork by the issuer")
        elif revoked:
            c.print(
                "  [red]FAIL[/red] online: the local node holds proof that the issuer forked its "
                f"chain at seq {seq}: its events from there on, this award included, count "
                "for nothing"
            )
        elif fork.get("award_stands"):
            c.print(
                "  [yellow]WARN[/yellow] online: the local node holds proof that the issuer "
                f"forked its chain at seq {seq}; this award came before the fork and stands"
            )
        else:
            c.print(
                "  [yellow]WARN[/yellow] online: the local node holds proof that the issuer's "
                f"key forked its learnmesh chain at seq {seq}"
            )
    if report.valid and not revoked:
        c.print("[green]VALID[/green]")
    elif report.valid:
        c.print("[red]NOT VALID[/red]: the issuer forked its chain at or before this award")
    else:
        c.print(f"[red]NOT VALID[/red]: {escape(report.failures[0][1])}")
    return 0 if report.valid and not revoked else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("credential", help="list, fetch or verify credentials").add_subparsers(
        dest="cred_cmd", required=True
    )
    p = c.add_parser("list", help="your awarded work and its credentials")
    p.set_defaults(func=cmd_list)
    p = c.add_parser("get", help="write the Open Badge of an awarded submission")
    p.add_argument("submission")
    p.add_argument("--out", required=True, metavar="FILE.json")
    p.add_argument("--bundle", action="store_true", help="the old learnmesh bundle instead")
    p.set_defaults(func=cmd_get)
    p = c.add_parser(
        "verify", help="verify a credential file offline (an Open Badge or a learnmesh bundle)"
    )
    p.add_argument("file")
    p.add_argument(
        "--online", action="store_true", help="also ask the local node about issuer forks"
    )
    p.set_defaults(func=cmd_verify)
