"""Ingest and replay benchmark: Workload events, timed into a fresh SQLite ledger."""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import resource
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import nacl
from learnmesh.protocol import DOMAIN, Genesis, decode_event
from nacl.signing import VerifyKey

from ._ledger import Ledger

# Generation is not timed (and runs in a child process, so its memory is not in
# the peak RSS); ingest is decode + verify + validate + apply + durable append.
__all__ = ["TARGET_INGEST", "TARGET_REPLAY", "generate", "run_bench", "verify_ceiling"]

TARGET_INGEST = 8_000
TARGET_REPLAY = 15_000
_SIG_TAIL = 66  # the wire form ends with a bin8 header and the 64-byte signature

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def _generate_child(n: int, seed: int, path: str, q: Any) -> None:
    from learnmesh.protocol._workload import Workload

    w = Workload(seed=seed, check=False)
    raws: list[bytes] = []
    for ev in w.events(n):
        raws.append(ev.raw)
        if len(raws) % 500 == 0:
            q.put(len(raws))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(msgpack.packb({"genesis": w.genesis.encode(), "raws": raws}, use_bin_type=True))
    os.replace(tmp, path)
    q.put(-1)


def generate(
    n: int, seed: int, cache_dir: Path, progress: Progress | None = None
) -> tuple[Genesis, list[bytes]]:
    """`n` valid events from Workload(seed), cached in `cache_dir` (generation
    is slow: the workload's award step looks at every bounty)."""
    path = cache_dir / f"workload-seed{seed}-{n}.msgpack"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_generate_child, args=(n, seed, str(path), q), daemon=True)
        p.start()
        while True:
            try:
                done = q.get(timeout=1.0)
            except Exception:  # queue.Empty: is the child still alive?
                if not p.is_alive():
                    raise RuntimeError("the workload generator died") from None
                continue
            if done < 0:
                break
            if progress:
                progress("generate", done, n)
        p.join()
    data = msgpack.unpackb(path.read_bytes(), raw=False)
    return Genesis.decode(data["genesis"]), list(data["raws"])


def _signed(genesis: Genesis, raws: list[bytes]) -> list[tuple[bytes, bytes, bytes]]:
    """(author, event bytes, signature) of the first 4,000 events: what a verify
    rate checks."""
    net, mx = genesis.network_id, genesis.params.max_event_bytes
    out = []
    for r in raws[:4000]:
        e = decode_event(r, mx, net, verify=False)
        out.append((e.author, e.raw, e.signature))
    return out


def _verify_each(signed: list[tuple[bytes, bytes, bytes]]) -> None:
    for author, raw, sig in signed:
        VerifyKey(author).verify(DOMAIN + raw[:-_SIG_TAIL], sig)


def _rate(fn: Callable[[], None], per: int, seconds: float) -> float:
    """How many a second: `fn` (which does `per`) run again and again for `seconds`."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += per
    return n / (time.perf_counter() - t0)


def _verify_child(
    signed: list[tuple[bytes, bytes, bytes]], seconds: float, q_in: Any, q: Any
) -> None:
    q.put("ready")
    q_in.get()  # all start together
    q.put(_rate(lambda: _verify_each(signed), len(signed), seconds))


def verify_all_cores(genesis: Genesis, raws: list[bytes], seconds: float = 1.0) -> float:
    """Ed25519 verify (PyNaCl) on every core at once, one process each (no
    GIL between them), the same work `verify_ceiling` times on one: the most
    any number of threads could reach here, in the same run as the one-core
    rate it is compared with."""
    cpus = os.cpu_count() or 1
    signed = _signed(genesis, raws)
    ctx = mp.get_context("spawn")
    qs = [(ctx.Queue(), ctx.Queue()) for _ in range(cpus)]
    ps = [
        ctx.Process(target=_verify_child, args=(signed, seconds, q_in, q_out), daemon=True)
        for q_in, q_out in qs
    ]
    for p in ps:
        p.start()
    try:
        for _, q_out in qs:
            if q_out.get(timeout=120) != "ready":
                raise RuntimeError("a verify process did not start")
        for q_in, _ in qs:
            q_in.put("go")
        return float(sum(q_out.get(timeout=120) for _, q_out in qs))
    finally:
        for p in ps:
            p.join(timeout=10)


def verify_ceiling(genesis: Genesis, raws: list[bytes], seconds: float = 1.0) -> dict[str, float]:
    """Single-core rates on this machine: Ed25519 verify alone (PyNaCl), and the
    protocol's full decode with and without it."""
    net, mx = genesis.network_id, genesis.params.max_event_bytes
    sample = raws[: min(len(raws), 4000)]
    signed = _signed(genesis, sample)

    def decode_verify() -> None:
        for r in sample:
            decode_event(r, mx, net, verify=True)

    def decode_only() -> None:
        for r in sample:
            decode_event(r, mx, net, verify=False)

    return {
        "verify_per_s": _rate(lambda: _verify_each(signed), len(signed), seconds),
        "decode_verify_per_s": _rate(decode_verify, len(sample), seconds),
        "decode_noverify_per_s": _rate(decode_only, len(sample), seconds),
    }


def _fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".snapshot", ".lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _ingest_and_replay(
    genesis: Genesis,
    raws: list[bytes],
    db: Path,
    batch: int,
    threads: int,
    label: str,
    progress: Progress | None,
) -> dict[str, Any]:
    _fresh(db)
    # Snapshots are a restart cache: keep their cost out of the ingest figure.
    ledger = Ledger.open(db, genesis, verify_threads=threads, snapshot_every=1 << 62)
    try:
        ingest_s, bad, cpu = _take_in(
            ledger,
            raws,
            batch,
            durable=True,
            progress=(lambda d, t: progress(f"ingest ({label})", d, t)) if progress else None,
        )
        report = ledger.verify(
            lambda d, t: progress(f"replay ({label})", d, t) if progress else None
        )
    finally:
        ledger.close()  # writes the snapshot
    opens = _open_times(db, threads)
    peer_s = _ingest_from_peers(genesis, raws, db.with_name(db.name + ".peers"), batch, threads)
    return {
        **opens,
        "threads": threads,
        "ingest_s": round(ingest_s, 3),
        "ingest_events_per_s": round(len(raws) / ingest_s, 1),
        "ingest_cpu": cpu,
        # The same events taken in as the node takes them from peers (sync pages,
        # gossip): committed without a disk flush per batch (Ledger.append_events).
        "ingest_from_peers_s": round(peer_s, 3),
        "ingest_from_peers_events_per_s": round(len(raws) / peer_s, 1),
        "replay_s": round(report.seconds, 3),
        "replay_events_per_s": round(report.events_per_s, 1),
        # The replay's two phases: every signature (on all threads), then the fold.
        "replay_signatures_s": round(report.signature_seconds, 3),
        "replay_signatures_events_per_s": round(
            report.events / max(report.signature_seconds, 1e-9), 1
        ),
        "replay_fold_s": round(report.fold_seconds, 3),
        "not_applied": bad,
        "verify_ok": report.ok,
        "db_mb": round(sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20, 1),
    }


def _take_in(
    ledger: Ledger,
    raws: list[bytes],
    batch: int,
    *,
    durable: bool,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[float, int, dict[str, float]]:
    """Seconds to append `raws`, `batch` per transaction; how many of them
    were not applied; and where the time went: this thread's CPU (decode,
    fold, store) and the other threads' (signature checks) in µs an event,
    how busy the cores were, and what share of their time in signature tasks
    the verify threads spent waiting (for the GIL: the tasks do no I/O)."""
    bad = 0
    wall0, sig_cpu0 = ledger.signature_task_times
    cpu0, main0 = time.process_time(), time.thread_time()
    t0 = time.perf_counter()
    for i in range(0, len(raws), batch):
        res = ledger.append(raws[i : i + batch], durable=durable)
        bad += sum(1 for r in res if r.status != "applied")
        if progress:
            progress(min(i + batch, len(raws)), len(raws))
    seconds = time.perf_counter() - t0
    main_cpu, cpu = time.thread_time() - main0, time.process_time() - cpu0
    wall1, sig_cpu1 = ledger.signature_task_times
    sig_wall, sig_cpu = wall1 - wall0, sig_cpu1 - sig_cpu0
    n = max(1, len(raws))
    return (
        seconds,
        bad,
        {
            "main_thread_us_per_event": round(main_cpu / n * 1e6, 1),
            "other_threads_us_per_event": round((cpu - main_cpu) / n * 1e6, 1),
            "cores_busy": round(cpu / max(seconds, 1e-9), 2),
            "verify_threads_waiting_share": round(
                (sig_wall - sig_cpu) / sig_wall if sig_wall > 0 else 0.0, 2
            ),
        },
    )


def _ingest_from_peers(
    genesis: Genesis, raws: list[bytes], db: Path, batch: int, threads: int
) -> float:
    """Seconds to take `raws` in as events from peers: each batch in one
    transaction, without the disk flush (synchronous=NORMAL on the WAL: kept
    if the process is killed, only a power loss could lose it)."""
    _fresh(db)
    ledger = Ledger.open(db, genesis, verify_threads=threads, snapshot_every=1 << 62)
    try:
        seconds, bad, _ = _take_in(ledger, raws, batch, durable=False)
        if bad:
            raise RuntimeError("an event of the bench workload was not applied")
        return seconds
    finally:
        ledger.close()
        _fresh(db)


def _open_times(db: Path, threads: int) -> dict[str, Any]:
    """Seconds to open the ledger from its snapshot, and with no snapshot (a
    full replay, then writing the snapshot, as a first open does)."""
    snap = Path(f"{db}.snapshot")
    size = snap.stat().st_size
    t0 = time.perf_counter()
    with Ledger.open(db, verify_threads=threads) as ledger:
        from_snapshot = time.perf_counter() - t0
        if not ledger.opened_from_snapshot:
            raise RuntimeError("the bench ledger did not open from its snapshot")
    snap.unlink()
    t0 = time.perf_counter()
    with Ledger.open(db, verify_threads=threads) as ledger:
        full = time.perf_counter() - t0
    return {
        "open_from_snapshot_s": round(from_snapshot, 3),
        "open_full_replay_s": round(full, 3),
        "snapshot_mb": round(size / 2**20, 2),
    }


def run_bench(
    events: int,
    workdir: Path,
    *,
    batch: int = 500,
    seed: int = 1,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the benchmark once single-threaded and once with verify threads;
    return the figures as a JSON-able dict."""
    cpus = os.cpu_count() or 1
    par = threads if threads is not None else cpus
    genesis, raws = generate(events, seed, workdir / "cache", progress)
    # About a second per measure for real runs; less for the small ones tests make.
    measure_s = min(1.0, max(0.2, len(raws) / 20_000))
    ceiling = verify_ceiling(genesis, raws, seconds=measure_s)
    all_cores = verify_all_cores(genesis, raws, seconds=measure_s)
    db = workdir / "bench-ledger.db"
    runs = {"1": _ingest_and_replay(genesis, raws, db, batch, 1, "1 thread", progress)}
    if par > 1:
        runs[str(par)] = _ingest_and_replay(
            genesis, raws, db, batch, par, f"{par} threads", progress
        )
    _fresh(db)
    best = runs[str(par)] if par > 1 else runs["1"]
    single = runs["1"]
    return {
        "events": len(raws),
        "batch": batch,
        "mean_event_bytes": round(sum(map(len, raws)) / max(1, len(raws)), 1),
        "verify_threads": par,
        "ingest_events_per_s": best["ingest_events_per_s"],
        "replay_events_per_s": best["replay_events_per_s"],
        "ingest_events_per_s_1thread": single["ingest_events_per_s"],
        "replay_events_per_s_1thread": single["replay_events_per_s"],
        "open_from_snapshot_s": best["open_from_snapshot_s"],
        "open_full_replay_s": best["open_full_replay_s"],
        "snapshot_mb": best["snapshot_mb"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "verify_per_s_1core": round(ceiling["verify_per_s"], 1),
        # Every core at once, a process each: the machine's own parallel ceiling
        # for signatures; the threads' signature pass below is held to it.
        "verify_per_s_all_cores": round(all_cores, 1),
        "verify_all_cores_vs_1core": round(all_cores / ceiling["verify_per_s"], 3),
        "replay_signatures_vs_all_cores_verify": round(
            best["replay_signatures_events_per_s"] / all_cores, 3
        ),
        "decode_verify_per_s_1core": round(ceiling["decode_verify_per_s"], 1),
        "decode_noverify_per_s_1core": round(ceiling["decode_noverify_per_s"], 1),
        "ingest_vs_1core_verify": round(best["ingest_events_per_s"] / ceiling["verify_per_s"], 3),
        "replay_vs_1core_verify": round(best["replay_events_per_s"] / ceiling["verify_per_s"], 3),
        "replay_signatures_events_per_s": best["replay_signatures_events_per_s"],
        "replay_signatures_vs_1core_verify": round(
            best["replay_signatures_events_per_s"] / ceiling["verify_per_s"], 3
        ),
        "replay_fold_s": best["replay_fold_s"],
        "ingest_vs_1core_verify_1thread": round(
            single["ingest_events_per_s"] / ceiling["verify_per_s"], 3
        ),
        "ingest_from_peers_vs_1core_verify": round(
            best["ingest_from_peers_events_per_s"] / ceiling["verify_per_s"], 3
        ),
        "ingest_from_peers_vs_1core_verify_1thread": round(
            single["ingest_from_peers_events_per_s"] / ceiling["verify_per_s"], 3
        ),
        "targets": {"ingest_events_per_s": TARGET_INGEST, "replay_events_per_s": TARGET_REPLAY},
        "runs": runs,
        "machine": {
            "cpu_count": cpus,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version,
            "pynacl": nacl.__version__,
            "loadavg_1m": round(os.getloadavg()[0], 2),
        },
        "synchronous": "FULL",
        "argv": sys.argv[1:],
    }
