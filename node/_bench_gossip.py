"""`learnmesh bench gossip`: how fast a node takes in events from gossip, and how
long an event takes from publish to applied on another node.

Two real node processes (A and B, B dialing A) on 127.0.0.1, in a scratch
directory with a genesis made here that funds the bench's own signing keys.

1. Ingest: N transfers are signed here beforehand (several authors, each chain
   in order). A raw libp2p peer in this process connects to B and publishes
   them in B's own gossip format (`encode_gossip`, `batch` events a message),
   keeping a bounded number of events in flight (libp2p drops what overflows
   its 32-message per-peer queue, and nothing here could repair a loss). The
   figure is N / (time of the last event applied on B - time of the first
   publish), from B's `GET /api/applied`. B also validates and forwards every
   message to A meanwhile, as a node in a mesh does.
2. Latency, at a low rate (one event every 1/rate s, each signed just before
   it is sent, so its timestamp is the publish time): `applied_ms - created_ms`
   on B for events (a) POSTed to node A, which gossips them to B (author's node
   to a second node: A's batching window included), and (b) published by the
   raw peer straight to B (one hop).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from learnmesh.protocol import ChainWriter, Genesis, KeyPair

from ._datadir import DataDir, NodeConfig
from ._procs import HarnessError, NodeProcess
from ._wire import MAX_GOSSIP_BYTES, encode_gossip, gossip_topic

__all__ = ["BenchError", "register_bench", "run_gossip_bench"]

_READY_S = 120.0
_WAIT_S = 300.0
_AUTHORS = 10
_MAX_IN_FLIGHT = 16  # gossip messages


class BenchError(Exception):
    """The benchmark could not run; the message says what went wrong."""


class _NodeProc(NodeProcess):
    """A bench node: the shared process harness (learnmesh.node._procs)."""

    def start(self, bootstrap: list[str]) -> None:
        self.spawn(bootstrap=bootstrap, log_level="warning")

    async def wait_ready(self) -> None:  # type: ignore[override]  # async: trio runs meanwhile
        with trio.move_on_after(_READY_S):
            while True:
                try:
                    if self.check_ready():
                        return
                except HarnessError as exc:
                    raise BenchError(str(exc)) from None
                await trio.sleep(0.1)
        raise BenchError(f"node {self.name} not ready after {_READY_S:.0f} s:\n{self.log_tail()}")

    @property
    def addr(self) -> str:
        return self.addrs[0]

    def stop(self) -> None:
        self.terminate(grace=15.0)


class _Api:
    def __init__(self, node: _NodeProc) -> None:
        self.node = node
        self.client = node.async_client(timeout=60.0)

    async def get(self, path: str) -> Any:
        r = await self.client.get(path)
        if r.status_code != 200:
            raise BenchError(f"{self.node.name}: GET {path} -> {r.status_code} {r.text[:300]}")
        return r.json()

    async def post_raw(self, raw: bytes) -> None:
        r = await self.client.post("/api/events", content=raw)
        if r.status_code != 200 or r.json().get("status") != "applied":
            raise BenchError(f"{self.node.name}: POST /api/events -> {r.status_code} {r.text}")

    async def aclose(self) -> None:
        await self.client.aclose()


async def _until(
    cond: Callable[[], Any], what: str, timeout: float = _WAIT_S, interval: float = 0.05
) -> Any:
    with trio.move_on_after(timeout):
        while True:
            got = await cond()
            if got:
                return got
            await trio.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


async def _stop_on_sigterm(scope: trio.CancelScope) -> None:
    """SIGTERM ends the bench like Ctrl-C: the nodes it started are stopped."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    s = sorted(values)

    def pick(p: float) -> float:
        return round(s[min(len(s) - 1, max(0, round(p * (len(s) - 1))))], 1)

    return {
        "p50": round(statistics.median(s), 1),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(s[-1], 1),
        "n": len(s),
    }


def _make_dirs(root: Path, keys: list[KeyPair]) -> tuple[Genesis, list[Path]]:
    dirs = []
    node_keys = []
    for name in ("a", "b"):
        dd = DataDir(root / name)
        node_keys.append(dd.create_identity(name=name))
        dd.write_config(NodeConfig(listen_host="127.0.0.1", listen_port=0, api_port=0))
        dd.api_token()
        dirs.append(dd.root)
    allocs = {k.public_key: 10**9 for k in [*node_keys, *keys]}
    genesis = Genesis(
        name="bench-gossip",
        created_ms=int(time.time() * 1000) - 60_000,
        allocations=tuple(sorted(allocs.items())),
    )
    for d in dirs:
        DataDir(d).write_genesis(genesis)
    return genesis, dirs


def _sign_transfers(network: bytes, keys: list[KeyPair], n: int) -> list[bytes]:
    """n transfers round-robin over the keys' chains (so any prefix is in chain order)."""
    writers = [ChainWriter(k, network) for k in keys]
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        k = i % len(keys)
        to = keys[(k + 1) % len(keys)].public_key
        ev = writers[k].sign("transfer", {"to": to, "amount": 1, "memo": ""}, now + i // len(keys))
        out.append(ev.raw)
    return out


async def _bench(
    root: Path, events: int, batch: int, window: int, samples: int, rate: float
) -> dict[str, Any]:
    keys = [KeyPair(os.urandom(32)) for _ in range(_AUTHORS)]
    genesis, (dir_a, dir_b) = _make_dirs(root, keys)
    network = genesis.network_id
    topic = gossip_topic(network)
    a, b = _NodeProc(dir_a, "A"), _NodeProc(dir_b, "B")
    try:
        a.start([])
        await a.wait_ready()
        b.start([a.addr])
        await b.wait_ready()
        api_a, api_b = _Api(a), _Api(b)
        result: dict[str, Any] = {}
        try:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_stop_on_sigterm, nursery.cancel_scope)
                    result = await _measure(
                        network,
                        topic,
                        keys,
                        a,
                        b,
                        api_a,
                        api_b,
                        events,
                        batch,
                        window,
                        samples,
                        rate,
                    )
                    nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:  # trio wraps the one error; unwrap it
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise
            if not result:
                raise BenchError("interrupted by SIGTERM")
            return result
        finally:
            await api_a.aclose()
            await api_b.aclose()
    finally:
        b.stop()
        a.stop()


async def _measure(
    network: bytes,
    topic: str,
    keys: list[KeyPair],
    a: _NodeProc,
    b: _NodeProc,
    api_a: _Api,
    api_b: _Api,
    events: int,
    batch: int,
    window: int,
    samples: int,
    rate: float,
) -> dict[str, Any]:
    async def b_events() -> int:
        return int((await api_b.get("/api/status"))["events"])

    async def peers_up() -> bool:
        return a.peer_id in (await api_b.get("/api/status"))["peers"]

    await _until(peers_up, "B to connect to A")

    # Warm-up: an event authored on A reaches B (the A-B mesh works).
    warm = ChainWriter(KeyPair(os.urandom(32)), network)
    for i in range(3):
        await api_a.post_raw(warm.sign("profile", _profile(i), _now_ms()).raw)

    async def warmed() -> bool:
        return await b_events() >= 3

    await _until(warmed, "a warm-up event from A to reach B")

    t_sign = time.perf_counter()
    raws = _sign_transfers(network, keys, events)
    sign_s = time.perf_counter() - t_sign
    batches = _batches(network, raws, batch)

    from ._p2p import P2PConfig, P2PHost  # here: `learnmesh` registers this bench on every run

    async with P2PHost.open(
        P2PConfig(identity_seed=os.urandom(32), max_message_bytes=MAX_GOSSIP_BYTES)
    ) as peer:
        await peer.subscribe(topic, lambda _p, _d: True)
        await peer.connect(b.addr)
        with trio.move_on_after(_WAIT_S):
            while b.peer_id not in peer.mesh_peers(topic):
                await trio.sleep(0.05)
        if b.peer_id not in peer.mesh_peers(topic):
            raise BenchError("the publisher never joined B's gossip mesh")

        # -- 1. ingest -----------------------------------------------------------------
        base = await b_events()
        t0_ms = _now_ms()
        t0 = time.perf_counter()
        sent = 0
        have = base
        # Never more than _MAX_IN_FLIGHT messages unapplied: libp2p's per-peer queue
        # holds 32 and silently drops the rest.
        cap = min(window, _MAX_IN_FLIGHT * batch)
        for msg, n in batches:
            while sent - (have - base) >= cap:
                await trio.sleep(0.02)
                have = await b_events()
            await peer.publish(topic, msg)
            sent += n
        target = base + events

        async def all_in() -> bool:
            nonlocal have
            have = await b_events()
            return have >= target

        await _until(all_in, f"B to apply all {events} events (has {have - base})", interval=0.02)
        wall = time.perf_counter() - t0
        rows = (await api_b.get(f"/api/applied?since={t0_ms}"))["applied"]
        last_ms = max(r[2] for r in rows) if rows else _now_ms()
        ingest_s = max(1e-3, (last_ms - t0_ms) / 1000)
        status_b = await api_b.get("/api/status")

        # -- 2. latency --------------------------------------------------------------------
        via_a = ChainWriter(KeyPair(os.urandom(32)), network)
        direct = ChainWriter(KeyPair(os.urandom(32)), network)
        ids_a: set[str] = set()
        ids_d: set[str] = set()
        t_lat_ms = _now_ms()
        for i in range(samples):
            ev = via_a.sign("profile", _profile(i), _now_ms())
            await api_a.post_raw(ev.raw)
            ids_a.add(ev.id.hex())
            await trio.sleep(1.0 / rate)
        for i in range(samples):
            ev = direct.sign("profile", _profile(i), _now_ms())
            await peer.publish(topic, encode_gossip(network, [ev.raw]))
            ids_d.add(ev.id.hex())
            await trio.sleep(1.0 / rate)

        async def lat_rows() -> list[Any] | None:
            got = (await api_b.get(f"/api/applied?since={t_lat_ms}"))["applied"]
            seen = {r[0] for r in got}
            return got if (ids_a | ids_d) <= seen else None

        rows = await _until(lat_rows, "B to apply every latency probe", timeout=120, interval=0.2)
        lat_a = [float(r[2] - r[1]) for r in rows if r[0] in ids_a]
        lat_d = [float(r[2] - r[1]) for r in rows if r[0] in ids_d]

    return {
        "events": events,
        "batch": batch,
        "messages": len(batches),
        "window_events": window,
        "ingest_events_per_s": round(events / ingest_s, 1),
        "ingest_seconds": round(ingest_s, 3),
        "wall_seconds": round(wall, 3),
        "sign_events_per_s": round(events / sign_s, 1),
        "latency_ms": _percentiles(lat_a),
        "latency_direct_ms": _percentiles(lat_d),
        "latency_rate_per_s": rate,
        "b_stats": status_b["stats"],
        "machine": {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]},
    }


def _profile(i: int) -> dict[str, Any]:
    return {"name": f"probe-{i}", "bio": "", "skills": []}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _batches(network: bytes, raws: list[bytes], batch: int) -> list[tuple[bytes, int]]:
    """Gossip messages of `batch` events (fewer if the size cap says so)."""
    out: list[tuple[bytes, int]] = []
    i = 0
    while i < len(raws):
        chunk = raws[i : i + batch]
        while len(chunk) > 1 and sum(len(r) + 8 for r in chunk) + 64 > MAX_GOSSIP_BYTES:
            chunk = chunk[: len(chunk) // 2]
        out.append((encode_gossip(network, chunk), len(chunk)))
        i += len(chunk)
    return out


def run_gossip_bench(
    events: int,
    json_out: bool,
    *,
    batch: int = 250,
    window: int = 2000,
    samples: int = 100,
    rate: float = 10.0,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark (two node processes) and print a table, or JSON with
    `json_out`. Returns the figures."""
    if events < 1 or batch < 1 or window < batch or samples < 1 or rate <= 0:
        raise BenchError("events, batch, samples and rate must be positive; window >= batch")
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        result = trio.run(_bench, workdir, events, batch, window, samples, rate)
    else:
        with tempfile.TemporaryDirectory(prefix="learnmesh-bench-gossip-") as tmp:
            result = trio.run(_bench, Path(tmp), events, batch, window, samples, rate)
    if json_out:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _render(result)
    return result


def _render(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table("measure", "value", title=f"gossip benchmark: {r['events']} events, 2 nodes")
    t.add_row(
        "B ingest from gossip (events/s)",
        f"{r['ingest_events_per_s']:,.0f}  ({r['batch']} events/message, {r['messages']} msgs)",
    )
    t.add_row("  first publish to last applied (s)", f"{r['ingest_seconds']:.2f}")
    for key, label in (
        ("latency_ms", "latency A→B, publish to applied (ms)"),
        ("latency_direct_ms", "latency raw peer→B, one hop (ms)"),
    ):
        lat = r[key]
        t.add_row(
            label,
            f"p50 {lat['p50']:.0f}  p95 {lat['p95']:.0f}  p99 {lat['p99']:.0f}  "
            f"max {lat['max']:.0f}  (n={lat['n']}, {r['latency_rate_per_s']:g}/s)",
        )
    t.add_row("signing here (events/s)", f"{r['sign_events_per_s']:,.0f}")
    m = r["machine"]
    t.add_row("machine", f"{m['cpu_count']} CPUs, Python {m['python']}")
    Console().print(t)


def _cmd_bench_gossip(args: argparse.Namespace) -> int:
    try:
        run_gossip_bench(
            args.events,
            args.json,
            batch=args.batch,
            window=args.window,
            samples=args.samples,
            rate=args.rate,
            workdir=Path(args.data) / "bench-gossip" if args.data is not None else None,
        )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `gossip` under `learnmesh bench`."""
    p = bench_subparsers.add_parser(
        "gossip", help="events/s a node takes in from gossip, and publish-to-applied latency"
    )
    p.add_argument("--events", type=int, default=5000, metavar="N", help="events to ingest")
    p.add_argument("--batch", type=int, default=250, help="events per gossip message")
    p.add_argument("--window", type=int, default=2000, help="events in flight at most")
    p.add_argument("--samples", type=int, default=100, help="latency probes per path")
    p.add_argument("--rate", type=float, default=10.0, help="latency probes per second")
    p.set_defaults(func=_cmd_bench_gossip)
