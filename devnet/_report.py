"""Figures from what the nodes report: propagation percentiles, convergence,
supply, bounty phases; the live terminal view and the summary table.

The math here is pure (lists in, numbers out) so it is tested without nodes.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = [
    "LiveView",
    "percentiles",
    "propagation",
    "resources",
    "summary_table",
    "supply_check",
]

AppliedRow = Sequence[Any]  # [event_id_hex, created_ms, applied_ms, (arrived_ms)]


def percentiles(values: Iterable[float], ps: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    """Linear-interpolated percentiles (numpy's default) and the max, in the
    unit of the values; zeros for no values."""
    xs = sorted(values)
    out: dict[str, float] = {}
    for p in ps:
        if not xs:
            out[f"p{p}"] = 0.0
            continue
        k = (len(xs) - 1) * p / 100
        lo = int(k)
        hi = min(lo + 1, len(xs) - 1)
        out[f"p{p}"] = round(xs[lo] + (xs[hi] - xs[lo]) * (k - lo), 1)
    out["max"] = round(xs[-1], 1) if xs else 0.0
    return out


def propagation(
    applied: Mapping[str, Iterable[AppliedRow]],
    nodes: Sequence[str] | None = None,
    created_after_ms: int = 0,
    created_before_ms: int | None = None,
    column: int = 2,
) -> dict[str, Any]:
    """From each node's /api/applied rows: for every event created in the window,
    the time from its creation until it was applied on every one of `nodes`
    (its propagation), and the fraction of events that reached them all (delivery).
    `column=3`: until it arrived (passed the node's checks) instead, where a
    row has that column.

    `per_delivery` gives the same percentiles over single (event, node) pairs.
    """
    names = list(applied) if nodes is None else list(nodes)
    created: dict[str, int] = {}
    seen: dict[str, dict[str, int]] = {}
    for name in names:
        for row in applied.get(name, ()):
            eid, c = str(row[0]), int(row[1])
            a = int(row[column] if len(row) > column else row[2])
            if c < created_after_ms or (created_before_ms is not None and c > created_before_ms):
                continue
            created[eid] = c
            per = seen.setdefault(eid, {})
            # An event applied twice on a node (it restarted) counts at its first time.
            per[name] = min(a, per.get(name, a))
    full: list[float] = []
    pairs: list[float] = []
    for eid, per in seen.items():
        lat = [max(0, a - created[eid]) for a in per.values()]
        pairs.extend(lat)
        if len(per) == len(names):
            full.append(max(lat))
    total = len(seen)
    out: dict[str, Any] = {
        "events": total,
        "delivered": len(full),
        "delivery": round(len(full) / total, 4) if total else 1.0,
        **percentiles(full),
        "per_delivery": percentiles(pairs),
    }
    return out


def supply_check(balances: Mapping[str, Any]) -> bool:
    """One node's /api/balances: balances plus escrow equal the genesis supply."""
    held = sum(int(v) for v in balances["balances"].values()) + int(balances["escrow"])
    return held == int(balances["genesis_supply"]) == int(balances["supply"])


def resources(
    rss_by_node: Mapping[str, Sequence[float]], cpu_by_node: Mapping[str, float]
) -> dict[str, Any]:
    """RSS figures from samples: the max over all samples and the median of each
    node's last sample; CPU seconds per node."""
    last = [v[-1] for v in rss_by_node.values() if v]
    peak = [max(v) for v in rss_by_node.values() if v]
    return {
        "rss_mb": {
            "max": round(max(peak), 1) if peak else 0.0,
            "median": round(statistics.median(last), 1) if last else 0.0,
            "per_node": {k: (v[-1] if v else 0.0) for k, v in rss_by_node.items()},
        },
        "cpu_s": {k: round(v, 2) for k, v in cpu_by_node.items()},
    }


def bounty_phases(bounties: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(b["phase"]) for b in bounties).items()))


# -- the terminal ------------------------------------------------------------------------


class LiveView:
    """A live table of the devnet, redrawn from the latest statuses that a
    background thread polls every second; plus a phase line and a short log."""

    def __init__(self, cluster: Any, console: Console | None, title: str) -> None:
        self.cluster = cluster
        self.console = console
        self.title = title
        self.phase = "starting"
        self.lines: deque[str] = deque(maxlen=8)
        self.statuses: dict[str, dict[str, Any]] = {}
        self.bounties: dict[str, int] = {}
        self.verdict = ""
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None

    def log(self, msg: str) -> None:
        stamp = f"{time.monotonic() - self.t0:6.1f}s"
        self.lines.append(f"{stamp} {msg}")
        if self.console is not None and self._live is None:
            self.console.print(f"[dim]{stamp}[/] {msg}")

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.log(f"[bold]{phase}[/]")

    def __enter__(self) -> LiveView:
        if self.console is not None and self.console.is_terminal:
            self._live = Live(
                self.render(), console=self.console, refresh_per_second=2, transient=False
            )
            self._live.__enter__()
        self._thread = threading.Thread(target=self._poll, name="devnet-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(None, None, None)
            self._live = None

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                live = [n for n in self.cluster.nodes if n.state == "up"]
                self.statuses = self.cluster.statuses(live) if live else {}
                self.cluster.sample_all()
                if live:
                    try:
                        bs = live[0].get("/api/bounties", timeout=5.0)["bounties"]
                        self.bounties = bounty_phases(bs)
                    except Exception:
                        pass
                digests = {s["digest"] for s in self.statuses.values()}
                if len(self.statuses) > 1:
                    self.verdict = "converged" if len(digests) == 1 else f"{len(digests)} digests"
                if self._live is not None:
                    self._live.update(self.render())
            except Exception as exc:  # the monitor must never take the run down
                self.lines.append(f"monitor: {exc}")
            self._stop.wait(1.0)

    def render(self) -> Group:
        t = Table(title=f"{self.title} · {self.phase}", expand=False)
        for col in (
            "node",
            "state",
            "pid",
            "peers",
            "events",
            "pending",
            "digest",
            "forks",
            "rss MB",
        ):
            t.add_column(col, justify="right" if col not in ("node", "state", "digest") else "left")
        for n in self.cluster.nodes:
            s = self.statuses.get(n.name)
            style = {"up": "green", "paused": "yellow", "down": "red", "starting": "cyan"}.get(
                n.state, "dim"
            )
            rss = f"{n.rss_mb[-1]:.0f}" if n.rss_mb else ""
            t.add_row(
                n.name,
                Text(n.state, style=style),
                str(n.pid or ""),
                str(len(s["peers"])) if s else "",
                str(s["events"]) if s else "",
                str(s["pending"]) if s else "",
                s["digest"][:10] if s else "",
                str(len(s["forks"])) if s else "",
                rss,
            )
        head = Text.assemble(
            ("bounties: ", "bold"),
            ", ".join(f"{k} {v}" for k, v in self.bounties.items()) or "none",
            ("   network: ", "bold"),
            (self.verdict or "…", "green" if self.verdict == "converged" else "yellow"),
            f"   {time.monotonic() - self.t0:.0f} s",
        )
        return Group(t, head, Text("\n".join(self.lines), style="dim"))


def _comments_line(c: Any) -> str:
    """The discussion row: comments posted, and whether every node shows them."""
    if not isinstance(c, Mapping):
        return "-"
    seen = c.get("seen") or {}
    counts = sorted(set(seen.values())) if isinstance(seen, Mapping) else []
    return (
        f"{c.get('posted')} posted (questions and answers) · seen on every node "
        f"{_yes(c.get('equal'))} ({', '.join(map(str, counts)) or '-'})"
    )


def summary_table(report: Mapping[str, Any]) -> Table:
    t = Table(title="devnet report", show_header=False)
    t.add_column("figure", style="bold")
    t.add_column("value")
    prop = report.get("propagation_ms", {})
    rss = report.get("rss_mb", {})
    rows = [
        ("scenario", f"{report.get('scenario')} (seed {report.get('seed')})"),
        ("nodes", str(report.get("nodes"))),
        ("events", str(report.get("events"))),
        ("converged", "yes" if report.get("converged") else "NO"),
        ("supply conserved", "yes" if report.get("supply_conserved") else "NO"),
        ("bounties", ", ".join(f"{k} {v}" for k, v in report.get("bounties", {}).items())),
        (
            "propagation ms",
            f"p50 {prop.get('p50')} · p95 {prop.get('p95')} · p99 {prop.get('p99')} · "
            f"max {prop.get('max')} (delivery {prop.get('delivery')})",
        ),
        ("convergence after heal", _secs(report.get("convergence_after_heal_s"))),
        ("catch-up after restart", _secs(report.get("catch_up_after_restart_s"))),
        (
            "rss MB",
            "max {max} · median {median}".format(**{"max": None, "median": None, **rss}),
        ),
        ("cpu s (sum)", f"{sum(report.get('cpu_s', {}).values()):.1f}"),
        (
            "faults",
            "; ".join(
                f"{f['kind']} {f.get('node', f.get('groups', ''))} "
                f"({'survived' if f.get('survived') else 'NOT survived'})"
                for f in report.get("faults", [])
            )
            or "none",
        ),
        ("equivocations detected", str(report.get("equivocations_detected"))),
        ("fork sets equal", _yes(report.get("fork_sets_equal"))),
        (
            "private messages",
            f"{report.get('dms_delivered')}/{report.get('dms_sent')} delivered "
            f"({report.get('dms_delivered_to_offline_node')}/{report.get('dms_to_offline_node')} "
            f"to a node that was offline) · plaintext elsewhere "
            f"{report.get('dm_plaintext_found_elsewhere')}",
        ),
        ("comments", _comments_line(report.get("comments"))),
    ]
    adv = report.get("adversary")
    if isinstance(adv, Mapping) and "attacks" in adv:
        after = adv.get("converged_after_last_attack_s")
        rows += [
            (
                "one digest after the last attack",
                "NO"
                if after is None
                else f"{after:.1f} s ({'within' if after <= 10 else 'OVER'} 10 s)",
            ),
            ("fork sets equal after the attacks", _yes(adv.get("fork_sets_equal"))),
            ("future timestamps: entrances agree", _yes(adv.get("future_entrances_agree"))),
            (
                "churn's peers dropped",
                "NO (still listed)"
                if adv.get("churn_peers_dropped_after_s") is None
                else f"{adv['churn_peers_dropped_after_s']:.1f} s after the last attack",
            ),
        ]
    creds = report.get("credentials")
    if isinstance(creds, Mapping):
        rows.append(
            (
                "credentials verified offline",
                f"{creds.get('verified_offline')} of {creds.get('issued')} issued",
            )
        )
    trust = report.get("trust")
    if isinstance(trust, Mapping):
        rows += [
            ("trust digests equal", _yes(trust.get("trust_digests_equal"))),
            (
                "farming ring's share",
                f"{trust.get('ring_trust_share', 0):.2%} of trust, "
                f"{trust.get('ring_points_share', 0):.2%} of points",
            ),
        ]
    rows += [
        ("wall time", _secs(report.get("wall_s"))),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


def _yes(v: Any) -> str:
    return "—" if v is None else ("yes" if v else "NO")


def _secs(v: Any) -> str:
    return "—" if v is None else f"{v:.1f} s"
