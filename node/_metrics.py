"""`GET /metrics`: what an operator scrapes, in Prometheus' text format.

Every value except the API latency histogram is read from the node's live
data when the scrape comes in (its `stats` counters, its peer book, the
replica, the ledger file), so nothing here has to be kept in step with the
node. Each app has its own `CollectorRegistry` (never the process-global one),
so several nodes can run in one process.

The route needs the API's bearer token (or the web page's session), like every
other route: a Prometheus scrape job sets `authorization: {credentials_file:
…/api.token}` (or `bearer_token_file`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._service import Node

__all__ = ["ApiLatency", "NodeMetrics", "metrics_routes"]

Handler = Callable[[Request], Awaitable[Any]]

# Seconds from the request's arrival to its response's first byte.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The entrances an applied event came in by (Node.stats "events_applied_<source>");
# "api" (raw events posted to /api/events) is what the others do not account for.
SOURCES = ("gossip", "sync", "own", "held")
_CODE = re.compile(r"[A-Za-z0-9_]{1,40}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Node.stats counters shown as they are: (stats key, metric name without _total, help).
_COUNTERS = (
    ("gossip_received", "learnmesh_gossip_messages_received", "Gossip messages admitted."),
    (
        "gossip_rejected",
        "learnmesh_gossip_messages_rejected",
        "Gossip messages not forwarded (undecodable, rate limited, a bad or early event).",
    ),
    ("gossip_published", "learnmesh_gossip_messages_published", "Gossip messages published."),
    ("gossip_events_out", "learnmesh_gossip_events_out", "Events sent out in gossip messages."),
    ("gossip_events_in", "learnmesh_gossip_events_in", "Valid events received in gossip."),
    ("events_held", "learnmesh_events_held", "Events dated ahead of the clock, put aside."),
    (
        "admission_dropped",
        "learnmesh_admission_dropped_events",
        "Gossiped events dropped because the admission queue was full (sync brings them).",
    ),
    ("sync_rounds", "learnmesh_sync_rounds", "Sync rounds completed with a peer."),
    ("sync_failures", "learnmesh_sync_failures", "Sync rounds that failed (peer gone, timeout)."),
    ("sync_events_in", "learnmesh_sync_events_in", "Valid events received by sync."),
    ("peer_penalties", "learnmesh_peer_penalties", "Penalties given to peers for bad data."),
    ("peers_banned", "learnmesh_peer_bans", "Peers banned (score past the threshold)."),
    ("peers_dropped", "learnmesh_peers_dropped", "Peers dropped for not answering in time."),
    ("forks_relayed", "learnmesh_forks_relayed", "Equivocation proofs relayed."),
    ("blobs_fetched", "learnmesh_blobs_fetched", "Attachments fetched from peers."),
    (
        "relay_blocked",
        "learnmesh_relay_blocked_events",
        "Gossiped events (each copy received) not forwarded: author on this node's blocklist.",
    ),
    (
        "relay_over_limit",
        "learnmesh_relay_over_limit_events",
        "Gossiped events (each copy received) not forwarded: author over the relay limit.",
    ),
)


def _label(code: str) -> str:
    return code if _CODE.fullmatch(code) else "other"


def _file_bytes(paths: Iterable[Path]) -> int:
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):  # the WAL may not exist
            total += p.stat().st_size
    return total


class _NodeCollector(Collector):
    """Reads the node's live data on each scrape."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        stats = node.stats
        rep = node.ledger.replica
        now = node.monotonic()

        info = InfoMetricFamily("learnmesh_node", "This node: its network, peer id and account.")
        info.add_metric(
            [],
            {
                "network": node.genesis.name,
                "network_id": node.network.hex(),
                "peer_id": node.peer_id,
                "account": node.key.account,
            },
        )
        yield info
        yield GaugeMetricFamily(
            "learnmesh_uptime_seconds",
            "Seconds since the node started.",
            value=max(0.0, node.monotonic() - node.started_mono),
        )

        # -- peers -------------------------------------------------------------------
        view = node.peers.view(now)
        yield GaugeMetricFamily(
            "learnmesh_peers_connected", "Peers connected now.", value=len(node.connected_peers())
        )
        yield GaugeMetricFamily(
            "learnmesh_peers_usable",
            "Connected peers worth syncing with (not banned, partitioned off or dead).",
            value=len(node.live_peers()),
        )
        yield GaugeMetricFamily(
            "learnmesh_gossip_mesh_peers",
            "Peers in this node's gossip mesh for the network's topic.",
            value=len(node.mesh_peers()),
        )
        yield GaugeMetricFamily(
            "learnmesh_peers_banned",
            "Peers banned now.",
            value=sum(1 for s in view["scores"].values() if s["banned"]),
        )
        yield GaugeMetricFamily(
            "learnmesh_peers_partitioned",
            "Peers refused on purpose (devnet faults).",
            value=len(view["partitioned"]),
        )

        # -- events ------------------------------------------------------------------
        applied = CounterMetricFamily(
            "learnmesh_events_applied",
            "Events applied (void ones included), by the entrance they came in by "
            "(api: raw events posted to /api/events; held: admitted once their time came).",
            labels=["source"],
        )
        counted = 0
        for source in SOURCES:
            n = stats.get(f"events_applied_{source}", 0)
            counted += n
            applied.add_metric([source], n)
        applied.add_metric(["api"], max(0, stats["events_applied"] - counted))
        yield applied
        rejected = CounterMetricFamily(
            "learnmesh_events_rejected",
            "Events (and gossip envelopes) refused, by protocol code.",
            labels=["code"],
        )
        void = CounterMetricFamily(
            "learnmesh_events_void",
            "Events applied without effect (a rule they break), by protocol code.",
            labels=["code"],
        )
        by_code: dict[tuple[str, str], int] = {}
        for key, n in stats.items():
            what, sep, code = key.partition(":")
            if sep and what in ("rejected", "void"):
                k = (what, _label(code))
                by_code[k] = by_code.get(k, 0) + n
        for (what, code), n in sorted(by_code.items()):
            (rejected if what == "rejected" else void).add_metric([code], n)
        yield rejected
        yield void
        for key, name, doc in _COUNTERS:
            yield CounterMetricFamily(name, doc, value=stats.get(key, 0))

        # -- pools, sync lag and the ledger -------------------------------------------------
        yield GaugeMetricFamily(
            "learnmesh_events_held_now",
            "Events held aside now, waiting for their time.",
            value=len(node.held()),
        )
        yield GaugeMetricFamily(
            "learnmesh_pending_events",
            "Events waiting for their prev or refs (the pending pool).",
            value=len(rep.pending),
        )
        yield CounterMetricFamily(
            "learnmesh_pending_dropped",
            "Waiting events dropped because the pending pool was full.",
            value=node.ledger.pending_dropped,
        )
        yield GaugeMetricFamily(
            "learnmesh_sync_last_events",
            "Events the latest sync round took in: above zero while gossip lags behind.",
            value=stats.get("sync_last_events", 0),
        )
        yield GaugeMetricFamily(
            "learnmesh_sync_last_success_timestamp_seconds",
            "When the latest sync round ended (0: none yet); alert on time() minus this.",
            value=stats.get("sync_last_ms", 0) / 1000,
        )
        yield GaugeMetricFamily(
            "learnmesh_ledger_events", "Events in the ledger (applied).", value=len(rep.raw)
        )
        yield GaugeMetricFamily(
            "learnmesh_ledger_accounts",
            "Accounts with a chain in the ledger.",
            value=len(rep.heads),
        )
        yield GaugeMetricFamily(
            "learnmesh_ledger_forks",
            "Accounts known to have forked their chain.",
            value=len(rep.state.forks),
        )
        db = node.data_dir / "ledger.db"
        yield GaugeMetricFamily(
            "learnmesh_ledger_db_bytes",
            "Size of the ledger's SQLite files (database and write-ahead log).",
            value=_file_bytes([db, db.with_name(db.name + "-wal")]),
        )


class NodeMetrics:
    """One node's metrics: a registry of its own, read on each scrape."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_NodeCollector(node))
        ProcessCollector(registry=self.registry)  # the node process's CPU, memory, fds
        self.api_latency = Histogram(
            "learnmesh_api_request_duration_seconds",
            "API requests: seconds from arrival to the first byte of the answer, by route "
            "template, method and status class.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.api_latency.labels(route, method, f"{status // 100}xx").observe(max(0.0, seconds))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ApiLatency:
    """ASGI middleware: times every HTTP request into `metrics`, labelled by the
    route template that served it (`unmatched` when none did, e.g. a 404 or a
    request the security guard refused)."""

    def __init__(self, app: ASGIApp, metrics: NodeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        clock = self.metrics.node.monotonic
        started = clock()
        done = False

        def record(status: int) -> None:
            nonlocal done
            if done:
                return
            done = True
            route = getattr(scope.get("route"), "path", None)
            method = str(scope.get("method", "GET"))
            if method not in _METHODS:  # any token is a method: keep the label set small
                method = "OTHER"
            self.metrics.observe(route or "unmatched", method, status, clock() - started)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            record(500)  # no answer started: the app failed (or the client left)


def metrics_routes(metrics: NodeMetrics) -> list[tuple[str, str, Handler]]:
    async def scrape(request: Request) -> Any:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return [("GET", "/metrics", scrape)]
