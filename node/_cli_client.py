"""CLI commands that talk to a running node through its local API.

The node writes `node.json` (its API address) and `api.token` into its data
directory; these commands read both from `--data` (or LEARNMESH_HOME).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["ApiClient", "CliError", "register"]

_DAY_MS = 86_400_000


class CliError(Exception):
    """A user-facing failure: printed as one line, no traceback."""


class ApiClient:
    def __init__(self, data_dir: Path, timeout: float = 60.0) -> None:
        info_path = data_dir / "node.json"
        token_path = data_dir / "api.token"
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError):
            raise CliError(
                f"no node running for {data_dir} "
                f"(start one with: learnmesh --data {data_dir} node start)"
            ) from None
        try:
            token = token_path.read_text().strip()
        except OSError:
            raise CliError(
                f"no API token in {data_dir} (is this a learnmesh data directory?)"
            ) from None
        self.base = str(info["api"]).rstrip("/")
        self._client = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        try:
            if raw is not None:
                r = self._client.request(method, path, content=raw)
            else:
                r = self._client.request(method, path, json=body)
        except httpx.ConnectError:
            raise CliError(f"the node at {self.base} is not answering (is it running?)") from None
        except httpx.TimeoutException:
            raise CliError(f"the node at {self.base} did not answer in time") from None
        if r.status_code == 401:
            raise CliError("the node refused the API token (wrong or stale api.token)")
        if r.headers.get("content-type", "").startswith("application/json"):
            data = r.json()
        else:
            data = r.content
        if r.status_code >= 400:
            msg = data.get("message") if isinstance(data, dict) else r.text
            raise CliError(str(msg))
        return data


def _ms(text: str | None, default_days: float) -> int:
    """A deadline: an ISO date/time, '+3d' / '+12h' / '+30m' / '+45s' from now, or ms."""
    now = int(time.time() * 1000)
    if text is None:
        return now + int(default_days * _DAY_MS)
    t = text.strip()
    units = {"d": _DAY_MS, "h": 3_600_000, "m": 60_000, "s": 1000}
    if t.startswith("+") and t[-1] in units:
        try:
            return now + int(float(t[1:-1]) * units[t[-1]])
        except ValueError:
            pass
    if t.isdigit():
        return int(t)
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise CliError(
            f"cannot read the time {text!r}: use +3d, +12h, an ISO date, or ms"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


# Text from the network (titles, names, memos, reasons) reaches the terminal:
# it is never read as rich markup, and control characters (terminal escapes,
# bidi overrides) are replaced. One path: every string goes through _plain.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _plain(text: str) -> Text:
    return Text(_CONTROL.sub("\ufffd", text))


class SafeTable(Table):
    """A table whose string cells are plain text (see _plain)."""

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(*(_plain(c) if isinstance(c, str) else c for c in cells), **kwargs)


def _out(args: argparse.Namespace, data: Any, human: Any = None) -> int:
    console = Console()
    if args.json or human is None:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif isinstance(human, str):
        console.print(_plain(human))
    else:
        console.print(human)
    return 0


def _client(args: argparse.Namespace) -> ApiClient:
    return ApiClient(Path(args.data_dir))


# -- commands ---------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    s = _client(args).call("GET", "/api/status")
    t = SafeTable(title=f"learnmesh node on {s['network']}", show_header=False)
    for k in ("account", "peer_id", "network_id", "events", "pending", "balance", "digest"):
        t.add_row(k, str(s[k]))
    t.add_row("peers", f"{len(s['peers'])} ({len(s.get('mesh_peers', []))} in the gossip mesh)")
    if s.get("pending_dropped"):
        t.add_row("pending dropped", str(s["pending_dropped"]))
    t.add_row("addrs", "\n".join(s["addrs"]))
    if s["forks"]:
        t.add_row("equivocators", "\n".join(s["forks"]))
    return _out(args, s, t)


def cmd_peers(args: argparse.Namespace) -> int:
    p = _client(args).call("GET", "/api/peers")
    t = SafeTable("peer", "score", "recent problems")
    for peer in p["peers"]:
        sc = p["scores"].get(peer, {})
        t.add_row(peer, str(sc.get("score", 0)), "; ".join(sc.get("reasons", [])))
    return _out(args, p, t)


def _rubric(items: list[str] | None) -> list[dict[str, Any]]:
    out = []
    for it in items or ["quality=10"]:
        name, _, mx = it.partition("=")
        if not name or not mx.isdigit():
            raise CliError(f"rubric criteria are NAME=MAX, like clarity=10 (got {it!r})")
        out.append({"name": name, "max": int(mx)})
    return out


def cmd_bounty_post(args: argparse.Namespace) -> int:
    desc = args.description or ""
    if args.description_file:
        try:
            desc = Path(args.description_file).read_text()
        except OSError as exc:
            raise CliError(f"cannot read {args.description_file}: {exc.strerror}") from None
    submit_by = _ms(args.submit_by, 7)
    body = {
        "title": args.title,
        "description": desc,
        "reward": args.reward,
        "rubric": _rubric(args.rubric),
        "skills": args.skill or [],
        "submit_by": submit_by,
        "review_by": _ms(args.review_by, 14) if args.review_by else submit_by + 7 * _DAY_MS,
        "quorum": args.quorum,
        "reviewer_share_bp": round(args.reviewer_share * 100),
    }
    if args.min_reviewer_trust is not None:
        body["min_reviewer_trust_ppm"] = round(args.min_reviewer_trust * 10_000)
    if args.prereq:
        body["prereq_bounties"] = [_full_id(args, x) for x in args.prereq]
    if args.prereq_skill:
        body["prereq_skills"] = args.prereq_skill
    if args.resource:
        body["resources"] = [_resource(x) for x in args.resource]
    r = _client(args).call("POST", "/api/bounties", body)
    return _out(args, r, f"posted bounty {r['id']}")


def _resource(spec: str) -> dict[str, str]:
    """'TITLE|URL[|KIND[|LICENCE]]' as a resource record (the node checks it)."""
    parts = [x.strip() for x in spec.split("|")]
    if not 2 <= len(parts) <= 4 or not parts[0] or not parts[1]:
        raise CliError(
            "a resource is 'TITLE|URL[|KIND[|LICENCE]]', e.g. 'Joins|https://…|article|CC-BY-4.0'"
        )
    parts += ["other", ""][len(parts) - 2 :]
    return {"title": parts[0], "url": parts[1], "kind": parts[2] or "other", "licence": parts[3]}


def cmd_bounty_list(args: argparse.Namespace) -> int:
    q = {k: v for k, v in (("phase", args.phase), ("skill", args.skill)) if v}
    path = "/api/bounties" + ("?" + "&".join(f"{k}={v}" for k, v in q.items()) if q else "")
    r = _client(args).call("GET", path)
    t = SafeTable("id", "title", "status", "reward", "commits", "submissions", "submit by")
    for b in r["bounties"]:
        t.add_row(
            b["id"][:16],
            b["title"],
            b["status"],
            str(b["reward"]),
            str(b["commits"]),
            str(b["submissions"]),
            _when(b["submit_by"]),
        )
    return _out(args, r, t)


def cmd_bounty_show(args: argparse.Namespace) -> int:
    b = _client(args).call("GET", f"/api/bounties/{_full_id(args, args.bounty)}")
    t = SafeTable(title=b["title"], show_header=False)
    for k in ("id", "author", "status", "reward", "escrow", "submit_by", "review_by", "quorum"):
        v = b[k]
        t.add_row(k, _when(v) if k.endswith("_by") else str(v))
    t.add_row("rubric", ", ".join(f"{c['name']} (max {c['max']})" for c in b["rubric"]))
    t.add_row("description", b["description"])
    rt = b.get("review_trust") or {}
    ppm = rt.get("min_reviewer_trust_ppm", 0)
    t.add_row(
        "reviewer trust",
        (f"at least {_pct(ppm)} of all trust in its skills" if ppm else "no minimum")
        + f"; reviews near the trust-weighted median within {rt.get('tolerance_pm', 0)} ‰",
    )
    terms = b.get("terms") or {}
    if terms.get("prereq_bounties") or terms.get("prereq_skills"):
        pre = [f"{p['title'] or '?'} ({p['id'][:12]})" for p in terms.get("prereq_bounties", [])]
        t.add_row("prerequisites", ", ".join(pre + list(terms.get("prereq_skills", []))))
    for res in terms.get("resources", []):
        lic = res.get("licence") or "licence unknown"
        t.add_row("resource", f"{res['title']} ({res['kind']}, {lic}): {res['url']}")
    for s in b["submissions_detail"]:
        st = rt.get("submissions", {}).get(s["id"], {})
        lines = []
        for r in s["reviews"]:
            j = st.get("reviews", {}).get(r["id"], {})
            lines.append(
                f"{r['reviewer'][:10]}…: {r['scores']} total {j.get('total', '?')} ‰, "
                f"trust {_pct(j.get('weight_ppm', 0))}, "
                + ("counts" if j.get("counts") else "does not count")
                + f"; trusted award pays {j.get('paid_by_trusted', 0)}"
                f", median award {j.get('paid_by_median', 0)} ({j.get('why', '')})"
            )
        med = st.get("weighted_median")
        quorum = (
            f"{st.get('counted', 0)} of quorum {b['quorum']} reviews count"
            + (" (met)" if st.get("quorum_met") else " (not met)")
            + (f", trust-weighted median {med} ‰" if med is not None else "")
        )
        reviews = "\n".join(lines) or "no reviews yet"
        t.add_row(
            f"submission {s['id'][:16]}",
            f"by {s['learner'][:12]}… awarded {s['awarded']}\n{s['text'][:200]}\n"
            f"{quorum}\n{reviews}",
        )
    return _out(args, b, t)


def _full_id(args: argparse.Namespace, prefix: str) -> str:
    """Accept a unique prefix of a bounty id, as people copy them from tables."""
    if len(prefix) == 64:
        return prefix
    r = _client(args).call("GET", "/api/bounties")
    hits = [b["id"] for b in r["bounties"] if b["id"].startswith(prefix)]
    if len(hits) != 1:
        raise CliError(f"{prefix!r} matches {len(hits)} bounties; give more of the id")
    return str(hits[0])


def cmd_submit(args: argparse.Namespace) -> int:
    text = args.text or ""
    files = []
    for f in args.files:
        p = Path(f)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {f}: {exc.strerror}") from None
        if not text and p.suffix in (".md", ".txt") and len(data) < 16000:
            text = data.decode("utf-8", "replace")
        files.append({"name": p.name, "data_b64": base64.b64encode(data).decode()})
    r = _client(args).call(
        "POST", "/api/submit", {"bounty": _full_id(args, args.bounty), "text": text, "files": files}
    )
    return _out(
        args,
        r,
        f"committed {r['id']}; the node reveals it once the mentor's close lists it",
    )


def cmd_close(args: argparse.Namespace) -> int:
    body = {"accept": args.accept} if args.accept else {}
    r = _client(args).call("POST", f"/api/bounties/{_full_id(args, args.bounty)}/close", body)
    return _out(args, r, f"closed: {r['id']}")


def cmd_review(args: argparse.Namespace) -> int:
    scores = {}
    for s in args.score:
        name, _, v = s.partition("=")
        if not v.isdigit():
            raise CliError(f"scores are CRITERION=N, like clarity=8 (got {s!r})")
        scores[name] = int(v)
    r = _client(args).call(
        "POST",
        "/api/review",
        {"submission": args.submission, "scores": scores, "comment": args.comment or ""},
    )
    return _out(args, r, f"reviewed: {r['id']}")


def cmd_award(args: argparse.Namespace) -> int:
    winners: dict[str, int | None] = {}
    for w in args.winner:
        sid, _, amount = w.partition("=")
        if amount and not amount.isdigit():
            raise CliError(f"winners are SUBMISSION[=AMOUNT] (got {w!r})")
        winners[sid] = int(amount) if amount else None
    r = _client(args).call(
        "POST",
        f"/api/bounties/{_full_id(args, args.bounty)}/award",
        {"winners": winners, "reviewers": args.reviewers},
    )
    return _out(args, r, f"awarded: {r['id']} (reviewers paid by the {args.reviewers} rule)")


def cmd_refund(args: argparse.Namespace) -> int:
    r = _client(args).call("POST", f"/api/bounties/{_full_id(args, args.bounty)}/refund", {})
    return _out(args, r, f"refunded: {r['id']}")


def cmd_transfer(args: argparse.Namespace) -> int:
    r = _client(args).call(
        "POST",
        "/api/transfer",
        {"to": args.account, "amount": args.amount, "memo": args.memo or ""},
    )
    return _out(args, r, f"sent {args.amount} to {args.account}: {r['id']}")


def cmd_balance(args: argparse.Namespace) -> int:
    path = f"/api/balance/{args.account}" if args.account else "/api/balance"
    r = _client(args).call("GET", path)
    return _out(args, r, f"{r['account']}: balance {r['balance']} (spendable {r['spendable']})")


def cmd_payments(args: argparse.Namespace) -> int:
    """Tokens received (transfers with their memos, award payouts) and sent."""
    q = f"?limit={args.limit}" + (f"&account={args.account}" if args.account else "")
    r = _client(args).call("GET", "/api/payments" + q)
    t = SafeTable("when", "", "amount", "from / to", "what", title=f"payments of {r['account']}")
    for p in r["payments"]:
        inbound = p["direction"] == "in"
        what = (
            p["memo"]
            if p["kind"] == "transfer"
            else f"award for bounty {p['bounty'][:12]}"
            if p["bounty"]
            else "dispute bond"
        )
        t.add_row(
            _when(p["timestamp"]),
            "in" if inbound else "out",
            ("+" if inbound else "-") + str(p["amount"]) + (" (void)" if p["void"] else ""),
            p["from"] if inbound else p["to"],
            what,
        )
    return _out(args, r, t if r["payments"] else "no payments yet")


def cmd_reputation(args: argparse.Namespace) -> int:
    """Trust (per skill and overall, PROTOCOL.md §6.5) beside today's points."""
    client = _client(args)
    path = f"/api/reputation?account={args.account}" if args.account else "/api/reputation"
    r = client.call("GET", path)
    skill = getattr(args, "skill", None)
    if args.account:
        tr = client.call("GET", f"/api/trust/{args.account}")
        return _out(args, {"reputation": r["reputation"], "trust": tr}, _trust_of(tr, skill))
    from urllib.parse import quote

    q = f"?skill={quote(skill)}&limit={args.limit}" if skill else f"?limit={args.limit}"
    tr = client.call("GET", "/api/trust" + q)
    pts = r["reputation"]
    t = SafeTable(
        "rank",
        "account",
        f"trust in {skill}" if skill else "trust",
        "overall",
        "top skills",
        "points",
        "flags",
        title=f"trust digest {tr['trust_digest'][:16]}… at {tr['events']} events",
    )
    for row in tr["accounts"]:
        top = sorted(row["skills"].items(), key=lambda kv: -kv[1])[:3]
        p = pts.get(row["account"], {})
        flags = [
            *(["seed"] if row["seed"] else []),
            *([f"{row['penalties']} penalised"] if row["penalties"] else []),
            *([f"{row['no_shows']} no-show"] if row["no_shows"] else []),
            *(["forked"] if p.get("equivocated") else []),
        ]
        t.add_row(
            str(row["rank"]),
            row["account"],
            _pct(row["ppm"]),
            _pct(row["overall_ppm"]),
            ", ".join(f"{s} {_pct(v)}" for s, v in top),
            str(p.get("points", 0)),
            " ".join(flags),
        )
    if not tr["accounts"]:
        t.add_row("", "(no account holds trust" + (f" in {skill})" if skill else ")"), *[""] * 5)
    return _out(args, {"reputation": pts, "trust": tr}, t)


def _percent(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 <= v <= 100.0:
        raise argparse.ArgumentTypeError(f"a percent in 0..100 (got {text!r})")
    return v


def _pct(ppm: int) -> str:
    return f"{ppm / 10_000:.2f} %"


def _trust_of(tr: dict[str, Any], skill: str | None) -> Any:
    from rich.console import Group

    o = tr["overall"]
    head = (
        f"{tr['account']}\ntrust overall {_pct(o['ppm'])}"
        + (f", rank {o['rank']} of {o['of']}" if o["rank"] else " (none)")
        + (" — a genesis seed" if tr["seed"] else "")
        + (" — forked: no trust" if tr["forked"] else "")
    )
    t = SafeTable("skill", "trust", "rank")
    for s, v in tr["skills"].items():
        if skill is None or s == skill:
            t.add_row(s, _pct(v["ppm"]), f"{v['rank']} of {v['of']}")
    if skill is not None and skill not in tr["skills"]:
        t.add_row(skill, _pct(0), "-")
    foot = (
        f"penalised bounties {tr['penalties']['bounties']}, no-shows {tr['no_shows']}, "
        f"reviews near the trust-weighted median {tr['calibration']['near']}"
        f"/{tr['calibration']['judged']}\ntrust digest {tr['trust_digest']}"
    )
    e = SafeTable("from", "kind", "skills", "amount", "gives", title="edges that gave it")
    for edge in tr["edges_in"]:
        if skill is None or skill in edge["skills"] or edge["kind"] == "vouch":
            e.add_row(
                edge["from"],
                edge["kind"],
                ", ".join(edge["skills"]) or "-",
                str(edge["amount"]) if edge["amount"] else "-",
                _pct(edge["gives_ppm"]),
            )
    return Group(head, t, e, foot)


def cmd_vouch(args: argparse.Namespace) -> int:
    r = _client(args).call("POST", "/api/vouch", {"account": args.account})
    return _out(args, r, f"vouched for {args.account}: {r['id']}")


def cmd_profile(args: argparse.Namespace) -> int:
    r = _client(args).call(
        "POST",
        "/api/profile",
        {"name": args.name, "bio": args.bio or "", "skills": args.skill or []},
    )
    return _out(args, r, f"profile published: {r['id']}")


def cmd_web(args: argparse.Namespace) -> int:
    """A one-time login link for the node's web page (the page trades it for a
    session cookie; the API token itself never reaches the browser)."""
    c = _client(args)
    link = c.call("POST", "/api/login-link")
    url = f"{c.base}/#login={link['code']}"
    ttl = int(link.get("expires_in_s", 120))
    if args.json:
        return _out(args, {"url": url, "expires_in_s": ttl})
    # plain print: a console that wraps long words would break the link
    print(f"open in your browser within {ttl // 60} minutes (the link works once):\n{url}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the client commands to the top-level parser's subcommands."""
    p = sub.add_parser("status", help="the running node's status")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("web", help="a one-time login link to the node's web page (2 minutes)")
    p.set_defaults(func=cmd_web)
    p = sub.add_parser("peers", help="connected peers and their scores")
    p.set_defaults(func=cmd_peers)

    b = sub.add_parser("bounty", help="post, list and show bounties").add_subparsers(
        dest="bounty_cmd", required=True
    )
    p = b.add_parser("post", help="post a bounty (locks the reward in escrow)")
    p.add_argument("--title", required=True)
    p.add_argument("--description")
    p.add_argument("--description-file")
    p.add_argument("--reward", type=int, required=True)
    p.add_argument("--rubric", action="append", metavar="NAME=MAX", help="repeat per criterion")
    p.add_argument("--skill", action="append")
    p.add_argument("--submit-by", help="+3d, +12h, ISO time or ms (default +7d)")
    p.add_argument("--review-by", help="default: a week after --submit-by")
    p.add_argument("--quorum", type=int, default=1)
    p.add_argument(
        "--reviewer-share", type=float, default=10.0, help="percent of the reward for reviewers"
    )
    p.add_argument(
        "--min-reviewer-trust",
        type=_percent,
        metavar="PERCENT",
        help="reviews count toward quorum only if their reviewer holds at least this percent "
        "of all trust in the bounty's skills (in the bounty's terms, PROTOCOL.md §6.6)",
    )
    p.add_argument(
        "--prereq", action="append", metavar="BOUNTY", help="a bounty to do first (repeatable)"
    )
    p.add_argument("--prereq-skill", action="append", metavar="SKILL", help="a skill to have first")
    p.add_argument(
        "--resource",
        action="append",
        metavar="'TITLE|URL[|KIND[|LICENCE]]'",
        help="a learning resource for this bounty (repeatable); KIND: article, video, "
        "course, book, exercise or other; LICENCE e.g. CC-BY-4.0",
    )
    p.set_defaults(func=cmd_bounty_post)
    p = b.add_parser("list", help="list bounties")
    p.add_argument("--phase")
    p.add_argument("--skill")
    p.set_defaults(func=cmd_bounty_list)
    p = b.add_parser("show", help="one bounty with its submissions and reviews")
    p.add_argument("bounty")
    p.set_defaults(func=cmd_bounty_show)

    p = sub.add_parser("submit", help="commit work to a bounty (revealed after the close)")
    p.add_argument("bounty")
    p.add_argument("files", nargs="*")
    p.add_argument("--text")
    p.set_defaults(func=cmd_submit)
    p = sub.add_parser("close", help="mentor: close a bounty, accepting its commits")
    p.add_argument("bounty")
    p.add_argument("--accept", action="append", metavar="COMMIT")
    p.set_defaults(func=cmd_close)
    p = sub.add_parser("review", help="review a revealed submission")
    p.add_argument("submission")
    p.add_argument("--score", action="append", required=True, metavar="CRITERION=N")
    p.add_argument("--comment")
    p.set_defaults(func=cmd_review)
    p = sub.add_parser("award", help="mentor: pay winners and honest reviewers")
    p.add_argument("bounty")
    p.add_argument("--winner", action="append", required=True, metavar="SUBMISSION[=AMOUNT]")
    p.add_argument(
        "--reviewers",
        choices=("median", "trusted"),
        default="trusted",
        help="pay reviews near the trust-weighted median of the reviews that count (default; "
        "the same as the plain median where nobody holds trust in the bounty's skills) or "
        "near the plain median (see `bounty show`)",
    )
    p.set_defaults(func=cmd_award)
    p = sub.add_parser("refund", help="mentor: return the escrow")
    p.add_argument("bounty")
    p.set_defaults(func=cmd_refund)
    p = sub.add_parser("transfer", help="send tokens")
    p.add_argument("account")
    p.add_argument("amount", type=int)
    p.add_argument("--memo")
    p.set_defaults(func=cmd_transfer)
    p = sub.add_parser("balance", help="an account's balance (yours by default)")
    p.add_argument("account", nargs="?")
    p.set_defaults(func=cmd_balance)
    p = sub.add_parser("payments", help="tokens received (with memos) and sent")
    p.add_argument("account", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_payments)
    p = sub.add_parser(
        "reputation", help="trust per skill and points, of every account or one (and why)"
    )
    p.add_argument("account", nargs="?")
    p.add_argument("--skill", help="rank by trust in this skill")
    p.add_argument("--limit", type=int, default=50, help="accounts to list (default 50)")
    p.set_defaults(func=cmd_reputation)
    p = sub.add_parser("vouch", help="vouch for an account (a trust edge)")
    p.add_argument("account")
    p.set_defaults(func=cmd_vouch)
    p = sub.add_parser("profile", help="publish your profile")
    p.add_argument("--name", required=True)
    p.add_argument("--bio")
    p.add_argument("--skill", action="append")
    p.set_defaults(func=cmd_profile)
    # `credential list | get | verify`: node/_cli_credentials.py
