"""`learnmesh bench soak`: a steady load with periodic faults, for a long time.

N node processes take a steady stream of events through their APIs (profiles
and transfers, each node authoring in turn). Every `--fault-every` seconds one
fault, in turn: a node killed with SIGKILL and started again after a pause, or
the network cut in two halves and healed. The bench reports, over time, each
node's RSS and open file descriptors (they should stay flat), the convergence
time after each fault (all live nodes on one digest, sampled while the load
goes on, so it is measured as "the first moment every node agreed"), and the
events lost: every event a node acknowledged must be in every node's ledger at
the end (each node's own chain head equals what it acknowledged).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from ._bench import _funded_cluster, _workdir
from ._cluster import ApiError, Cluster, NodeProc, sparse_topology

__all__ = ["bench_soak", "register_bench"]


def _fds(n: NodeProc) -> int | None:
    try:
        return psutil.Process(n.pid).num_fds() if n.pid > 0 and n.live else None
    except (psutil.Error, OSError):
        return None


def _sample(c: Cluster, t0: float) -> dict[str, Any]:
    c.sample_all()
    rss = [n.rss_mb[-1] for n in c.live if n.rss_mb]
    fds = [f for f in (_fds(n) for n in c.live) if f is not None]
    return {
        "t_s": round(time.monotonic() - t0, 1),
        "rss_mb_median": round(statistics.median(rss), 1) if rss else None,
        "rss_mb_max": round(max(rss), 1) if rss else None,
        "fds_median": statistics.median(fds) if fds else None,
        "fds_max": max(fds) if fds else None,
    }


def bench_soak(
    nodes: int = 10,
    minutes: float = 30.0,
    rate: float = 10.0,
    fault_every: float = 60.0,
    down_s: float = 10.0,
    seed: int = 1,
    root: Path | None = None,
    log: Any = lambda _m: None,
) -> dict[str, Any]:
    rng = random.Random(seed)
    topo = sparse_topology(nodes, rng)
    out: dict[str, Any] = {
        "nodes": nodes,
        "minutes": minutes,
        "rate_events_per_s": rate,
        "fault_every_s": fault_every,
    }
    with _workdir(root) as d, _funded_cluster(d, nodes, log) as c:
        c.start_all(topo)
        c.wait_connected(90)
        first = c.wait_converged(120)
        start_heads = {n.account: first["heads"].get(n.account, 0) for n in c.nodes}
        acked = dict.fromkeys(start_heads, 0)
        lock = threading.Lock()
        stop = threading.Event()
        failures = [0]
        accounts = [n.account for n in c.nodes]

        def writer() -> None:
            k = 0
            t_next = time.monotonic()
            while not stop.is_set():
                live = [n for n in c.nodes if n.state == "up"]
                if live:
                    x = live[k % len(live)]
                    try:
                        if k % 2:
                            to = accounts[(k * 7 + 1) % len(accounts)]
                            if to == x.account:
                                to = accounts[(k + 1) % len(accounts)]
                            x.post("/api/transfer", {"to": to, "amount": 1, "memo": f"s{k}"})
                        else:
                            x.post("/api/profile", {"name": x.name, "bio": f"s{k}", "skills": []})
                        with lock:
                            acked[x.account] += 1
                    except ApiError:
                        failures[0] += 1  # the node went down mid-request: not acknowledged
                k += 1
                t_next += 1.0 / rate
                stop.wait(max(0.0, t_next - time.monotonic()))  # pacing a schedule

        t0 = time.monotonic()
        samples = [_sample(c, t0)]
        faults: list[dict[str, Any]] = []
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        end = t0 + minutes * 60
        kind = 0
        try:
            while time.monotonic() < end:
                next_fault = min(end, time.monotonic() + fault_every)
                while time.monotonic() < next_fault:
                    stop.wait(min(10.0, max(0.0, next_fault - time.monotonic())))
                    samples.append(_sample(c, t0))
                if time.monotonic() >= end:
                    break
                fault = _fault(c, kind, rng, down_s, log)
                fault["t_s"] = round(time.monotonic() - t0, 1)
                faults.append(fault)
                kind += 1
        finally:
            stop.set()
            w.join(30)
        final = c.wait_converged(300)
        samples.append(_sample(c, t0))
        lost = sum(acked[a] - (final["heads"].get(a, 0) - start_heads[a]) for a in acked)
        out.update(
            events_acknowledged=sum(acked.values()),
            events_lost=lost,
            api_failures=failures[0],
            faults=faults,
            samples=samples,
            rss_growth_mb=_growth(samples, "rss_mb_median"),
            fds_growth=_growth(samples, "fds_median"),
        )
    return out


def _growth(samples: list[dict[str, Any]], key: str) -> float | None:
    """Last minus first sample after the first fault-free minute (start-up settles)."""
    vals = [s[key] for s in samples if s[key] is not None and s["t_s"] >= 60] or [
        s[key] for s in samples if s[key] is not None
    ]
    return round(vals[-1] - vals[0], 1) if len(vals) > 1 else None


def _fault(c: Cluster, kind: int, rng: random.Random, down_s: float, log: Any) -> dict[str, Any]:
    """One fault, healed; returns what it was and how long until every live node
    agreed again after the heal (the load goes on meanwhile)."""
    if kind % 2 == 0:
        victim = rng.choice(c.nodes[1:])
        log(f"fault: SIGKILL {victim.name}")
        c.kill(victim)
        time.sleep(down_s)  # the fault's length: a schedule, not a wait for a condition
        c.restart(victim)
        what: dict[str, Any] = {"kind": "kill", "node": victim.name}
    else:
        half = len(c.nodes) // 2
        g1, g2 = c.nodes[:half], c.nodes[half:]
        log("fault: partition into two halves")
        for side, other in ((g1, g2), (g2, g1)):
            for x in side:
                with contextlib.suppress(ApiError):
                    x.post("/api/admin/partition", {"peers": [y.peer_id for y in other]})
        time.sleep(down_s)  # the fault's length
        for x in c.nodes:
            with contextlib.suppress(ApiError):
                x.post("/api/admin/heal")
        for x in g2:  # one bridge per node of the second half
            with contextlib.suppress(ApiError):
                x.post("/api/admin/connect", {"addr": c.addr_of(rng.choice(g1))})
        what = {"kind": "partition", "sides": [len(g1), len(g2)]}
    t = time.monotonic()
    agreed = _first_agreement(c, 120.0)
    what["converged_s"] = None if agreed is None else round(agreed - t, 2)
    return what


def _first_agreement(c: Cluster, timeout: float) -> float | None:
    """The first moment every live node reports one digest and one set of heads
    (under load they agree only between events: a 20 Hz sample catches it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.converged() is not None:
            return time.monotonic()
        time.sleep(0.05)
    return None


def register_bench(b: Any) -> None:
    p = b.add_parser(
        "soak", help="steady load with periodic kills and partitions: RSS, fds, losses"
    )
    p.add_argument("--nodes", type=int, default=10)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=10.0, help="events per second, network-wide")
    p.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults")
    p.add_argument("--down", type=float, default=10.0, help="seconds a fault lasts")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dir")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .cli import _print_bench, _term_as_interrupt

    _term_as_interrupt()
    console = Console(stderr=True)
    if args.nodes < 2 or args.minutes <= 0 or args.rate <= 0 or args.fault_every <= 0:
        console.print("bench soak needs --nodes ≥ 2 and positive --minutes, --rate, --fault-every")
        return 2
    out = bench_soak(
        nodes=args.nodes,
        minutes=args.minutes,
        rate=args.rate,
        fault_every=args.fault_every,
        down_s=args.down,
        seed=args.seed,
        root=Path(args.dir) if args.dir else None,
        log=lambda m: console.print(f"[dim]{m}[/]"),
    )
    _print_bench(args, out, "soak")
    return 0
