"""Benchmarks over real node processes: propagation at a steady event rate
(against a plain-GossipSub baseline run in the same command), catch-up of a
node that missed many events, convergence after a partition heals, memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ._cluster import ApiError, Cluster, DevnetError, NodeProc, free_port, poll, sparse_topology
from ._report import propagation

__all__ = ["bench_propagation", "bench_sync"]

Log = Callable[[str], None]


@contextlib.contextmanager
def _workdir(d: Path | None) -> Iterator[Path]:
    if d is not None:
        d.mkdir(parents=True, exist_ok=True)
        yield d
        return
    tmp = Path(tempfile.mkdtemp(prefix="learnmesh-bench-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _funded_cluster(root: Path, n: int, log: Log, each: int = 1_000_000) -> Cluster:
    c = Cluster(root, n, log=log)
    c.init_all()
    c.make_genesis("bench", {x.account: each for x in c.nodes}, trusted=[c.nodes[0].account])
    return c


def _paced(
    rate: float, count: int, fn: Callable[[int], None], workers: int = 8
) -> tuple[float, int]:
    """Call fn(k) at t0 + k/rate from a pool; returns (seconds taken, failures)."""
    failures = 0
    lock = threading.Lock()

    def run(k: int) -> None:
        nonlocal failures
        try:
            fn(k)
        except ApiError:
            with lock:
                failures += 1

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        for k in range(count):
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing a schedule, not waiting for a condition
            ex.submit(run, k)
    return time.monotonic() - t0, failures


def _percentile_fields(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "events": p["events"],
        "delivery": p["delivery"],
        "p50_ms": p["p50"],
        "p95_ms": p["p95"],
        "p99_ms": p["p99"],
        "max_ms": p["max"],
        "per_delivery_ms": p["per_delivery"],
    }


# -- propagation --------------------------------------------------------------------------


def bench_propagation(
    nodes: int = 20,
    rate: float = 20.0,
    duration: float = 30.0,
    seed: int = 1,
    root: Path | None = None,
    baseline: bool = True,
    log: Log = lambda _m: None,
) -> dict[str, Any]:
    """Events spread over the nodes' APIs at `rate` per second network-wide;
    propagation is creation to application on every node."""
    rng = random.Random(seed)
    topo = sparse_topology(nodes, rng)
    out: dict[str, Any] = {"nodes": nodes, "rate_events_per_s": rate, "duration_s": duration}
    with _workdir(root) as d:
        with _funded_cluster(d / "learnmesh", nodes, log) as c:
            log(f"starting {nodes} nodes")
            c.start_all(topo)
            c.wait_connected(90)
            # Warm-up: one event per node, seen everywhere, proves the mesh and sync work.
            for x in c.nodes:
                x.post("/api/profile", {"name": x.name, "bio": "warm-up", "skills": []})
            c.wait_converged(120)
            _wait_mesh(c)
            accounts = [x.account for x in c.nodes]

            def one(k: int) -> None:
                x = c.nodes[k % nodes]
                if k % 2:
                    to = accounts[(k * 7 + 1) % nodes]
                    if to == x.account:
                        to = accounts[(k + 1) % nodes]
                    x.post("/api/transfer", {"to": to, "amount": 1, "memo": f"bench {k}"})
                else:
                    x.post("/api/profile", {"name": x.name, "bio": f"bench {k}", "skills": []})

            # A few seconds of the same load, not measured: meshes settle under traffic.
            _paced(rate, int(rate * min(5.0, duration / 3)), one)
            c.wait_converged(120)
            log("warm-up converged; measuring")
            c.sample_all()
            cpu0 = {x.name: x.cpu_s for x in c.nodes}
            t0_ms = int(time.time() * 1000)
            count = int(rate * duration)
            took, failures = _paced(rate, count, one)
            sampler = [0]

            def settled() -> bool:
                sampler[0] += 1
                if sampler[0] % 5 == 0:
                    c.sample_all()
                return c.converged() is not None

            poll(settled, 180, "every node to apply every benchmark event", 0.3)
            c.sample_all()
            applied = dict(
                zip(
                    [x.name for x in c.nodes],
                    c.each(lambda x: x.get(f"/api/applied?since={t0_ms}")["applied"]),
                    strict=True,
                )
            )
            # Every (event, created, applied) row, for a closer look at a run.
            (d / "applied.json").write_text(json.dumps(applied))
            p = propagation(applied, created_after_ms=t0_ms)
            out.update(_percentile_fields(p))
            # Until each node's checks passed it (and it was forwarded), before
            # its admission: what the baseline's receive time measures.
            arrival = propagation(applied, created_after_ms=t0_ms, column=3)
            out["arrival_ms"] = {k: arrival.get(k) for k in ("p50", "p95", "p99")}
            out["api_failures"] = failures
            out["send_s"] = round(took, 1)
            out["cpu_s_per_node"] = round(statistics.mean(x.cpu_s for x in c.nodes), 2)
            # From the first measured event until all are applied everywhere (the
            # bench's status polls while it waits included).
            used = sum(x.cpu_s - cpu0[x.name] for x in c.nodes)
            out["cpu_ms_per_event_per_node"] = round(1000 * used / max(1, count * nodes), 2)
            out["rss_mb_median"] = round(
                statistics.median(x.rss_mb[-1] for x in c.nodes if x.rss_mb), 1
            )
        if baseline:
            log("baseline: plain GossipSub, one event per message")
            out["baseline"] = _baseline(d / "baseline", nodes, rate, duration, topo, log)
            b = out["baseline"]
            if out["p95_ms"] and b["p95_ms"]:
                out["p95_ratio_baseline_over_learnmesh"] = round(b["p95_ms"] / out["p95_ms"], 2)
                if out["arrival_ms"]["p95"]:
                    out["p95_ratio_baseline_over_learnmesh_arrival"] = round(
                        b["p95_ms"] / out["arrival_ms"]["p95"], 2
                    )
            if b["cpu_ms_per_event_per_node"]:
                out["cpu_ratio_learnmesh_over_baseline"] = round(
                    out["cpu_ms_per_event_per_node"] / b["cpu_ms_per_event_per_node"], 2
                )
    return out


def _mesh_formed(peers: int, mesh: int) -> bool:
    """A node's gossip mesh is at least GossipSub's low watermark (all of its
    neighbours when it has fewer): below that a heartbeat would graft more."""
    from learnmesh.node._p2p import P2PConfig  # libp2p: not on every `learnmesh` run

    return peers >= 1 and mesh >= min(peers, P2PConfig.mesh_degree_low)


def _wait_mesh(c: Cluster) -> None:
    """If the nodes report their gossip mesh (status `mesh_peers`), wait until every
    node's mesh is formed, as the baseline does."""

    def meshed() -> bool:
        st = c.statuses()
        for s in st.values():
            mesh = s.get("mesh_peers")
            if mesh is None:
                return True  # this node version does not say: the warm-up load covers it
            if not _mesh_formed(len(s["peers"]), len(mesh)):
                return False
        return len(st) == len(c.live)

    poll(meshed, 60, "every node's gossip mesh to form", 0.3)


def _baseline(
    d: Path, nodes: int, rate: float, duration: float, topo: dict[int, list[int]], log: Log
) -> dict[str, Any]:
    d.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in range(nodes)]
    procs: list[subprocess.Popen[bytes]] = []
    addrs: dict[int, str] = {}
    try:
        for i in range(nodes):
            boot = [addrs[p] for p in topo[i]]
            argv = [
                sys.executable,
                "-m",
                "learnmesh.devnet._baseline",
                str(d),
                str(i),
                str(ports[i]),
                str(rate),
                str(nodes),
                *boot,
            ]
            with open(d / f"b{i}.log", "ab") as f:
                procs.append(
                    subprocess.Popen(
                        argv,
                        stdout=f,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )

            def ready(i: int = i) -> str | None:
                if procs[i].poll() is not None:
                    raise DevnetError(f"baseline node {i} exited: see {d / f'b{i}.log'}")
                info = json.loads((d / f"b{i}.ready.json").read_text())
                tcp = [a for a in info["addrs"] if "/tcp/" in a]
                return tcp[0] if tcp else None

            addrs[i] = poll(ready, 60, f"baseline node {i}")

        def meshed() -> bool:
            # Every node's mesh formed, so the measurement starts on a formed mesh.
            for i in range(nodes):
                st = json.loads((d / f"b{i}.status.json").read_text())
                if not _mesh_formed(st["topic_peers"], st["mesh_peers"]):
                    return False
            return True

        poll(meshed, 90, "every baseline node's gossip mesh to form", 0.3)
        t0 = int(time.time() * 1000) + 2000
        (d / "go.tmp").write_text(
            json.dumps({"t0_ms": t0, "end_ms": t0 + int(duration * 1000), "drain_s": 10})
        )
        os.replace(d / "go.tmp", d / "go.json")
        for p in procs:
            p.wait(timeout=duration + 90)
        applied: dict[str, list[Any]] = {}
        dropped = 0
        cpu_s = 0.0
        events = 0
        for i in range(nodes):
            res = json.loads((d / f"b{i}.result.json").read_text())
            applied[f"b{i}"] = res["rows"]
            dropped += int(res["dropped"])
            cpu_s += float(res.get("cpu_s", 0.0))
            events = int(res.get("events", 0))
        prop = propagation(applied, created_after_ms=t0)
        return {
            "nodes": nodes,
            "rate_events_per_s": rate,
            **_percentile_fields(prop),
            "inbox_dropped": dropped,
            # The transport's own cost: py-libp2p GossipSub carrying one signed
            # event per message, with a verify per message, and nothing else.
            "cpu_ms_per_event_per_node": round(1000 * cpu_s / max(1, events * nodes), 2),
        }
    finally:
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)


# -- sync, partition, memory ------------------------------------------------------------------


def _generate(c: Cluster, writers: list[NodeProc], count: int, log: Log, batch: int = 0) -> float:
    """`count` events written through the writers' APIs (profiles and transfers):
    one request per event, or with `batch`, that many per `POST
    /api/events/batch` (what a script or the devnet would do)."""
    accounts = [x.account for x in c.nodes]
    t = time.monotonic()
    done = [0]
    lock = threading.Lock()

    def item(k: int, x: NodeProc) -> tuple[str, dict[str, Any]]:
        if k % 3 == 0:
            to = next(a for a in accounts[k % len(accounts) :] + accounts if a != x.account)
            return "transfer", {"to": to, "amount": 1, "memo": ""}
        return "profile", {"name": x.name, "bio": f"e{k}", "skills": []}

    def progress(n: int) -> None:
        with lock:
            before = done[0]
            done[0] += n
            if done[0] // 1000 != before // 1000:
                log(f"{done[0] // 1000 * 1000} events written")

    def one(k: int) -> None:
        x = writers[k % len(writers)]
        kind, body = item(k, x)
        x.post(f"/api/{kind}", body)
        progress(1)

    def many(ks: range) -> None:
        x = writers[ks.start % len(writers)]
        entries = [item(k, x) for k in ks]
        x.post("/api/events/batch", {"events": [{"kind": kind, **b} for kind, b in entries]})
        progress(len(ks))

    if batch:
        # Each writer's share in requests of `batch` events; two requests in
        # flight per writer (one is parsed while the other signs and stores).
        step = len(writers)
        chunks = [
            range(w + i * step * batch, min(count, w + (i + 1) * step * batch), step)
            for w in range(step)
            for i in range((count + step * batch - 1) // (step * batch))
        ]
        with ThreadPoolExecutor(max_workers=2 * len(writers)) as ex:
            list(ex.map(many, [r for r in chunks if len(r)]))
    else:
        with ThreadPoolExecutor(max_workers=2 * len(writers)) as ex:
            list(ex.map(one, range(count)))
    return time.monotonic() - t


def verify_per_s_1core(seconds: float = 1.0) -> float:
    """This machine's Ed25519 verify rate on one core (PyNaCl), measured now on
    freshly signed events, as `bench ingest` reports it."""
    from learnmesh.ledger.bench import verify_ceiling
    from learnmesh.protocol import ChainWriter
    from learnmesh.protocol._workload import Workload

    w = Workload(seed=1, actors=1)
    cw = ChainWriter(w.keys[0], w.network)
    raws = [
        cw.sign("profile", {"name": f"v{i}", "bio": "", "skills": []}, 1_700_000_000_000 + i).raw
        for i in range(1000)
    ]
    return verify_ceiling(w.genesis, raws, seconds)["verify_per_s"]


def _catch_up_cpu(
    events: int, ready_s: float, after_s: float, ready_cpu: float, late_cpu: float, others: float
) -> dict[str, Any]:
    """Where a catch-up's CPU went after the late node was ready: its own work
    and the other nodes' (serving the pages, the bench's polls), against what
    the machine's cores could give in that time; and the late node's start-up."""
    after = max(0.0, late_cpu - ready_cpu)
    cores = os.cpu_count() or 1
    return {
        "late_node_startup_cpu_s": round(ready_cpu, 2),
        "late_node_after_ready_cpu_s": round(after, 2),
        "late_node_us_per_event": round(1e6 * after / max(1, events), 1),
        "other_nodes_cpu_s": round(others, 2),
        "other_nodes_us_per_event": round(1e6 * others / max(1, events), 1),
        # Share of all cores busy with the nodes while the late node started / caught up.
        "cores_busy_startup": round(ready_cpu / max(1e-9, ready_s), 2),
        "cores_busy_after_ready": round((after + others) / max(1e-9, after_s * cores), 2),
        "cores": cores,
    }


def bench_sync(
    events: int = 10_000,
    partition_events: int = 1_000,
    root: Path | None = None,
    log: Log = lambda _m: None,
    single_events: int = 1_000,
    batch: int = 500,
) -> dict[str, Any]:
    """A node stopped while `events` events are written catches up (the first
    `single_events` of them written one request each, the rest `batch` per
    request); then a partition with writes on both sides heals; node RSS with
    the full ledger."""
    out: dict[str, Any] = {"events": events}
    verify_rate = verify_per_s_1core()
    out["verify_per_s_1core"] = round(verify_rate, 1)
    topo = {0: [], 1: [0], 2: [0, 1], 3: [1, 2]}
    with _workdir(root) as d, _funded_cluster(d, 4, log) as c:
        c.start_all(topo)
        c.wait_connected(60)
        a, b, _x, late = c.nodes
        c.stop(late)
        # The first events one request each (what the page does), the rest in
        # batches (what a script or the devnet does): both rates are reported.
        single = min(events, max(0, single_events))
        log(f"{late.name} stopped; writing {events} events on {a.name} and {b.name}")
        single_s = _generate(c, [a, b], single, log) if single else 0.0
        batch_s = (
            _generate(c, [a, b], events - single, log, batch=batch) if events > single else 0.0
        )
        out["write_s"] = round(single_s + batch_s, 1)
        out["write_single"] = {
            "events": single,
            "rate_per_s": round(single / single_s, 1) if single_s else None,
        }
        out["write_batch"] = {
            "events": events - single,
            "per_request": batch,
            "rate_per_s": round((events - single) / batch_s, 1) if batch_s else None,
        }
        target = c.wait_converged(300)
        log(f"{len(c.live)} nodes converged on {target['events']} events; restarting {late.name}")
        others = [x for x in c.nodes if x is not late]
        t = time.monotonic()
        c.restart(late)
        ready_s = time.monotonic() - t
        for x in c.nodes:
            x.sample()
        late_ready_cpu = late.last_cpu_s
        cpu_before = {x.name: x.last_cpu_s for x in others}

        def caught_up() -> bool:
            s = late.status()
            return bool(s["digest"] == target["digest"] and s["heads"] == target["heads"])

        poll(caught_up, 300, f"{late.name} to catch up", 0.1)
        done = time.monotonic()
        for x in c.nodes:
            x.sample()
        out["catch_up_s"] = round(done - t, 2)
        out["catch_up_after_ready_s"] = round(done - t - ready_s, 2)
        out["catch_up_cpu"] = _catch_up_cpu(
            events, ready_s, done - t - ready_s, late_ready_cpu, late.last_cpu_s,
            sum(x.last_cpu_s - cpu_before[x.name] for x in others),
        )
        # Every caught-up event is signature-checked once: the one-core verify
        # rate is the yardstick (above 1.0 only with both cores verifying).
        after = max(1e-9, out["catch_up_after_ready_s"])
        out["catch_up_after_ready_ratio_to_verify"] = round(events / after / verify_rate, 2)
        out["ledger_events"] = target["events"]
        log(f"caught up in {out['catch_up_s']} s")
        c.sample_all()
        rss = [x.rss_mb[-1] for x in c.nodes if x.rss_mb]
        out["rss_mb"] = {
            "median": round(statistics.median(rss), 1),
            "max": round(max(rss), 1),
            "per_node": {x.name: x.rss_mb[-1] for x in c.nodes if x.rss_mb},
        }
        # Partition {n0, n1} | {n2, n3}, write on both sides, heal, time the convergence.
        g1, g2 = c.nodes[:2], c.nodes[2:]
        for side, other in ((g1, g2), (g2, g1)):
            for x in side:
                x.post("/api/admin/partition", {"peers": [y.peer_id for y in other]})

        def cut() -> bool:
            ids = {y.peer_id for y in g2}
            return not any(set(x.status()["peers"]) & ids for x in g1)

        poll(cut, 30, "the partition", 0.2)
        log(f"partitioned; writing {partition_events} events on each side")
        _generate(c, [g1[0]], partition_events, log, batch=batch)
        _generate(c, [g2[0]], partition_events, log, batch=batch)
        c.wait_converged(120, g1)
        c.wait_converged(120, g2)
        t = time.monotonic()
        for x in c.nodes:
            x.post("/api/admin/heal")
        for i, peers in topo.items():
            for j in peers:
                if (c.nodes[i] in g1) != (c.nodes[j] in g1):
                    with contextlib.suppress(ApiError):
                        c.nodes[i].post("/api/admin/connect", {"addr": c.addr_of(c.nodes[j])})
        final = c.wait_converged(300)
        out["partition"] = {
            "events_per_side": partition_events,
            "convergence_after_heal_s": round(time.monotonic() - t, 2),
            "ledger_events": final["events"],
        }
        log(f"converged {out['partition']['convergence_after_heal_s']} s after the heal")
    return out
