"""`learnmesh bench core`: what the node service itself costs, without libp2p.

The node service (node/_core.py) and the sync client (node/_sync.py) run in
this process over real SQLite ledgers in a temporary folder, driven the way
the runtime drives them but with no sockets, no trio and no encryption:

- **gossip in**: `--events` signed events from `--authors` authors arrive as
  gossip messages of one event each (what a quiet network sends) and of
  `--batch` events (what a relay under load sends); each message goes through
  `NodeCore.on_gossip` (decode, verify, clock and relay policy) and
  `admit_queued` (fold, one SQLite transaction). CPU per event, and as a
  ratio to this machine's one-core verify rate measured in the same run.
- **catch-up**: a second service syncs all of them from the first through
  the real sync generator and the real sync server, one thread (the runtime
  verifies on two): the floor of `bench sync`'s catch-up on this machine,
  the rest of which is transport (py-libp2p, Noise, yamux) and process start.

So a figure of `bench propagation` or `bench sync` can be split into what the
node decides and what carrying it costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from learnmesh.ledger import Ledger
from learnmesh.ledger.bench import verify_ceiling
from learnmesh.node._core import CoreSettings, NodeCore, Now
from learnmesh.node._sync import run_in_process, session
from learnmesh.node._wire import encode_gossip
from learnmesh.protocol import ChainWriter, Event, Genesis, KeyPair

__all__ = ["register_bench", "run_core_bench"]


def _events(genesis: Genesis, keys: list[KeyPair], n: int, t0: int) -> list[Event]:
    writers = [ChainWriter(k, genesis.network_id) for k in keys]
    out = []
    for i in range(n):
        w = writers[i % len(writers)]
        body = {"name": f"member {i}", "bio": "learning in public " * 4, "skills": ["python"]}
        out.append(w.sign("profile", body, t0 + i))
    return out


def _core(path: Path, genesis: Genesis) -> NodeCore:
    return NodeCore(
        genesis=genesis,
        store=Ledger.open(str(path), genesis, synchronous="NORMAL"),
        settings=CoreSettings(relay_per_author_per_min=10**9, peer_msgs_per_s=10**9),
        rng=random.Random(1),
    )


def _verify_rate(genesis: Genesis, events: list[Event]) -> float:
    """One-core Ed25519 verifies per second on this machine, now (the same
    measure `bench ingest` divides by)."""
    return verify_ceiling(genesis, [e.raw for e in events[:2000]])["verify_per_s"]


def _gossip_in(
    folder: Path, genesis: Genesis, events: list[Event], batch: int, now: Now
) -> tuple[float, NodeCore]:
    core = _core(folder / f"gossip-{batch}.db", genesis)
    msgs = [
        encode_gossip(genesis.network_id, [e.raw for e in events[i : i + batch]])
        for i in range(0, len(events), batch)
    ]
    start = time.process_time()
    for m in msgs:
        core.on_gossip("peer", m, now)
        core.admit_queued(now)
        core.take_io()
    cpu = time.process_time() - start
    applied = core.stats["events_applied"]
    if applied != len(events):
        raise RuntimeError(f"gossip in: {applied} of {len(events)} events applied")
    return cpu, core


def _catch_up(folder: Path, genesis: Genesis, server: NodeCore, now: Now) -> tuple[float, int]:
    client = _core(folder / "catch-up.db", genesis)
    start = time.perf_counter()
    _, requests = run_in_process(
        session(client, "server"), client, lambda m: server.serve_sync("client", m, now)[0],
        "server", now,
    )
    took = time.perf_counter() - start
    if client.store.replica.digest() != server.store.replica.digest():
        raise RuntimeError("catch-up: the two ledgers differ")
    return took, requests


def run_core_bench(events: int, authors: int, batch: int) -> dict[str, Any]:
    t0 = int(time.time() * 1000) - events - 60_000
    keys = [KeyPair(os.urandom(32)) for _ in range(authors)]
    genesis = Genesis(
        name="bench-core",
        created_ms=t0 - 3_600_000,
        allocations=tuple(sorted((k.public_key, 1000) for k in keys)),
    )
    evs = _events(genesis, keys, events, t0)
    now = Now(t0 + events + 60_000, 1.0)
    verify = _verify_rate(genesis, evs)
    with tempfile.TemporaryDirectory(prefix="lm-bench-core-") as tmp:
        folder = Path(tmp)
        cpu_one, _ = _gossip_in(folder, genesis, evs, 1, now)
        cpu_batch, full = _gossip_in(folder, genesis, evs, batch, now)
        catch_up_s, requests = _catch_up(folder, genesis, full, now)
    per_one = cpu_one / events * 1000
    per_batch = cpu_batch / events * 1000
    return {
        "events": events,
        "authors": authors,
        "verify_per_s_one_core": round(verify),
        "gossip_in_cpu_ms_per_event": round(per_one, 3),
        "gossip_in_events_per_cpu_s": round(events / cpu_one),
        "gossip_in_ratio_to_verify": round(events / cpu_one / verify, 2),
        f"gossip_in_batch{batch}_cpu_ms_per_event": round(per_batch, 3),
        f"gossip_in_batch{batch}_ratio_to_verify": round(events / cpu_batch / verify, 2),
        "catch_up_s": round(catch_up_s, 3),
        "catch_up_events_per_s": round(events / catch_up_s),
        "catch_up_ratio_to_verify": round(events / catch_up_s / verify, 2),
        "catch_up_requests": requests,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _cmd(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.events < 1 or args.authors < 1 or args.batch < 1:
        print("error: --events, --authors and --batch must be at least 1")
        return 2
    console = Console(stderr=True)
    with console.status(f"signing {args.events} events and running the node service..."):
        out = run_core_bench(args.events, args.authors, args.batch)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    t = Table(title="bench core (the node service in process, no libp2p)", show_header=False)
    for k, v in out.items():
        t.add_row(k, str(v))
    Console().print(t)
    return 0


def register_bench(b: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = b.add_parser("core", help="the node service's own CPU per event and catch-up, no libp2p")
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--authors", type=int, default=20)
    p.add_argument("--batch", type=int, default=50, help="events per gossip message under load")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)
