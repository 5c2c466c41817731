"""The ledger: a durable, append-only event store with the replica folded from it."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence, ValuesView
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from learnmesh.protocol import (
    KINDS,
    EquivocationProof,
    Event,
    Genesis,
    ProtocolError,
    RemoteProtocolError,
    Replica,
    State,
)
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from . import _schema as s
from ._archive import ExportSummary, ImportReport, export_ledger, import_ledger
from ._decode import Decoder, Refused
from ._errors import CorruptLedgerError, LedgerBusyError, LedgerError, WrongNetworkError
from ._snapshot import read_snapshot, write_snapshot

# Bytes in, verified and applied, written in one transaction per call; the state
# is rebuilt on open from a snapshot plus the events after it.
__all__ = ["AppendResult", "AppendResults", "Ledger", "StoredEvent", "VerifyReport"]

log = logging.getLogger(__name__)

_PAGE = 2000  # rows per query when streaming the whole log
_IN_CHUNK = 500  # ids per IN (...) clause: far under every database's parameter limit
_MAX_PROBLEMS = 50


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What happened to one input of `append`: status is applied, pending,
    duplicate or rejected; code/reason explain a rejection, or a void event
    (applied, kept in its chain, without effect)."""

    status: str
    id: bytes
    code: str | None = None
    reason: str | None = None

    @property
    def void(self) -> bool:
        return self.status == "applied" and self.code is not None


class AppendResults(list[AppendResult]):
    """One result per input, in input order; `released` lists the events that
    were waiting (stored as pending by an earlier call) and applied in this one."""

    def __init__(
        self,
        results: Iterable[AppendResult],
        released: list[Event],
        forks: list[EquivocationProof] | None = None,
    ) -> None:
        super().__init__(results)
        self.released = released
        # Equivocation proofs first seen in this call: evidence a node passes on.
        self.forks: list[EquivocationProof] = forks or []


@dataclass(frozen=True, slots=True)
class StoredEvent:
    idx: int  # apply order
    id: bytes
    author: bytes
    seq: int
    kind: str
    timestamp: int
    raw: bytes
    void_code: str | None  # as decided when it was applied
    void_reason: str | None


@dataclass(slots=True)
class VerifyReport:
    ok: bool
    events: int
    pending: int
    rejected: int
    forks: int
    void: int
    digest: bytes  # of the from-scratch replay
    live_digest: bytes
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "pending": self.pending,
            "rejected": self.rejected,
            "forks": self.forks,
            "void": self.void,
            "digest": self.digest.hex(),
            "live_digest": self.live_digest.hex(),
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events_per_s, 1),
            "problems": self.problems,
        }


def _proof_key(first: bytes, second: bytes) -> bytes:
    a, b = sorted((hashlib.sha256(first).digest(), hashlib.sha256(second).digest()))
    return hashlib.sha256(a + b).digest()


def _chunks(items: Sequence[bytes], n: int = _IN_CHUNK) -> Iterator[Sequence[bytes]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class _FileLock:
    """One writer per database file: two processes folding the same file would
    hand out the same apply index. flock is released by the kernel on kill -9."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] | None = open(path, "a+")  # noqa: SIM115 (held open while locked)
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._f.seek(0)
            holder = self._f.read().strip() or "?"
            self._f.close()
            self._f = None
            raise LedgerBusyError(
                f"{path.with_suffix('')} is in use by another process (pid {holder}); "
                "stop the node first"
            ) from None
        self._f.seek(0)
        self._f.truncate()
        self._f.write(str(os.getpid()))
        self._f.flush()

    def release(self) -> None:
        if self._f is not None:
            self._f.close()  # closing drops the flock
            self._f = None


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    u = make_url(url)
    memory = u.database in (None, "", ":memory:")
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        **({"poolclass": StaticPool} if memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves: pysqlite's implicit transactions skip DDL,
        # which would make a migration half-applied after a crash.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL already survives kill -9 (a commit is in the WAL file before
        # COMMIT returns); FULL also fsyncs the WAL on every commit, so an
        # acknowledged append survives a power cut too. Batched appends make the
        # cost small; NORMAL is the option for machines with very slow fsync.
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


class _StoredRaw(MutableMapping[bytes, bytes]):
    """`Replica.raw` for a ledger: the ids of applied events stay in memory (in
    apply order) and their bytes are read back from the events table, which
    holds them anyway. The bytes of events applied by the append in progress
    are kept until it commits (`committed`). About 3 MB less per 10,000 events.
    """

    def __init__(
        self, fetch: Callable[[bytes], bytes | None], scan: Callable[[], Iterator[bytes]]
    ) -> None:
        self._ids: dict[bytes, None] = {}  # an ordered set
        self._fresh: dict[bytes, bytes] = {}
        self._fetch = fetch
        self._scan = scan
        self.stored = False  # True while replaying events read from the table

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def __getitem__(self, key: bytes) -> bytes:
        if key not in self._ids:
            raise KeyError(key)
        raw = self._fresh.get(key)
        if raw is None:
            raw = self._fetch(key)
            if raw is None:
                raise CorruptLedgerError(f"applied event {key.hex()[:12]} is not in the database")
        return raw

    def __setitem__(self, key: bytes, raw: bytes) -> None:
        self._ids[key] = None
        if not self.stored:
            self._fresh[key] = raw

    def __delitem__(self, key: bytes) -> None:
        raise TypeError("applied events are never removed")

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def values(self) -> ValuesView[bytes]:
        return _StoredRawValues(self)

    def stream(self) -> Iterator[bytes]:
        """Every applied event's bytes in apply order: the table's first rows (a
        replay may not have reached its end yet), then those not committed yet."""
        want = len(self._ids) - len(self._fresh)
        n = 0
        if want:
            for raw in self._scan():
                yield raw
                n += 1
                if n == want:
                    break
        if n != want:
            raise CorruptLedgerError("the events table lacks applied events")
        yield from self._fresh.values()

    def committed(self) -> None:
        self._fresh.clear()


class _StoredRawValues(ValuesView[bytes]):
    _mapping: _StoredRaw

    def __iter__(self) -> Iterator[bytes]:
        return self._mapping.stream()


_EVENT_COLUMNS = (
    "idx",
    "id",
    "author",
    "seq",
    "kind",
    "timestamp",
    "raw",
    "void_code",
    "void_reason",
)


class Ledger:
    """Use `Ledger.open(...)`. Not for concurrent writers: one process owns a
    ledger file; within it, calls are serialised by a lock."""

    def __init__(
        self,
        engine: Engine,
        genesis: Genesis,
        *,
        url: str,
        lock: _FileLock | None,
        snapshot_path: Path | None,
        snapshot_every: int,
        verify_threads: int,
        max_pending: int = 20_000,
    ) -> None:
        self.url = url
        self.genesis = genesis
        self.network = genesis.network_id
        self._engine = engine
        self._file_lock = lock
        self._snapshot_path = snapshot_path
        self._snapshot_every = snapshot_every
        self._lock = threading.RLock()
        self._decoder = Decoder(genesis.params.max_event_bytes, self.network, verify_threads)
        self.replica = Replica(genesis)
        self._next_idx = 1
        self._snapshot_idx = 0
        self._rejected_ids: set[bytes] = set()
        self._proof_keys: set[bytes] = set()
        self._closed = False
        self.max_pending = max_pending
        self.pending_dropped = 0
        self._fast: Any = None  # DBAPI connection kept for _fast_append
        self._fast_insert = ""
        # How the last open rebuilt the state (tests and `ledger show` look at these).
        self.opened_from_snapshot = False
        self.replayed_on_open = 0

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        genesis: Genesis | None = None,
        *,
        snapshot_path: str | os.PathLike[str] | None = None,
        snapshot_every: int = 20_000,
        verify_threads: int | None = None,
        synchronous: str = "FULL",
        max_pending: int = 20_000,
    ) -> Ledger:
        """Open (or create) a ledger. `url` is a SQLAlchemy URL or a plain path
        (a SQLite file). A new ledger stores `genesis`; an existing one refuses a
        different genesis. Snapshots go beside a SQLite file unless
        `snapshot_path` says where (other databases: only if given).
        `verify_threads` defaults to one per CPU (signature checks in parallel).
        At most `max_pending` events wait for their dependencies; beyond that
        the oldest waiting ones are dropped (counted in `pending_dropped`)."""
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise LedgerError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        text = os.fspath(url)
        lock: _FileLock | None = None
        snap: Path | None = Path(snapshot_path) if snapshot_path is not None else None
        if "://" not in text:
            path = Path(text).expanduser().resolve()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(f"cannot create {path.parent}: {exc.strerror}") from None
            lock = _FileLock(path.with_name(path.name + ".lock"))
            text = f"sqlite:///{path}"
            if snap is None:
                snap = path.with_name(path.name + ".snapshot")
        threads = verify_threads if verify_threads is not None else (os.cpu_count() or 1)
        engine: Engine | None = None
        try:
            if text.startswith("sqlite"):
                engine = _sqlite_engine(text, synchronous.upper())
            else:
                engine = create_engine(text)
            s.migrate(engine, int(time.time() * 1000))
            genesis = cls._check_genesis(engine, genesis)
            ledger = cls(
                engine,
                genesis,
                url=text,
                lock=lock,
                snapshot_path=snap,
                snapshot_every=snapshot_every,
                verify_threads=threads,
                max_pending=max_pending,
            )
            ledger._load()
        except SQLAlchemyError as exc:
            if engine is not None:
                engine.dispose()
            if lock is not None:
                lock.release()
            raise LedgerError(f"cannot open the ledger database: {exc.args[0]}") from exc
        except BaseException:
            if engine is not None:
                engine.dispose()
            if lock is not None:
                lock.release()
            raise
        return ledger

    @staticmethod
    def _check_genesis(engine: Engine, genesis: Genesis | None) -> Genesis:
        with engine.begin() as conn:
            rows = {k: v for k, v in conn.execute(select(s.meta.c.key, s.meta.c.value))}
            stored = rows.get("genesis")
            if stored is None:
                if genesis is None:
                    raise LedgerError(
                        "this ledger is new and has no genesis: pass the network's genesis"
                    )
                conn.execute(
                    insert(s.meta),
                    [
                        {"key": "genesis", "value": genesis.encode()},
                        {"key": "network", "value": genesis.network_id},
                    ],
                )
                return genesis
        try:
            have = Genesis.decode(stored)
        except RemoteProtocolError as exc:
            raise CorruptLedgerError(f"the stored genesis is damaged: {exc.reason}") from None
        if genesis is not None and genesis.network_id != have.network_id:
            raise WrongNetworkError(
                f"this ledger belongs to network {have.name!r} "
                f"({have.network_id.hex()[:16]}…), not {genesis.name!r} "
                f"({genesis.network_id.hex()[:16]}…)"
            )
        return have

    def _load(self) -> None:
        """Rebuild the replica: snapshot plus the events after it, or every event."""
        with self._engine.connect() as conn:
            self._next_idx = int(conn.execute(select(func.max(s.events.c.idx))).scalar() or 0) + 1
            self._rejected_ids = set(conn.execute(select(s.rejected.c.id)).scalars())
            self._proof_keys = set(conn.execute(select(s.fork_proofs.c.key)).scalars())
        snap = read_snapshot(self._snapshot_path, self.network) if self._snapshot_path else None
        if snap is not None and snap.applied < self._next_idx:
            try:
                self._restore(snap.replica, snap.applied, snap.rejected)
                self.opened_from_snapshot = True
                return
            except CorruptLedgerError as exc:
                log.warning("snapshot does not match the events (%s): full rebuild", exc)
        self._restore(Replica(self.genesis), 0, 0)
        self.opened_from_snapshot = False
        if self.replayed_on_open > 1000 and self._snapshot_path is not None:
            self._write_snapshot()  # so the next open is fast

    def _restore(self, replica: Replica, applied: int, rejected_n: int) -> None:
        dec = Decoder(self.genesis.params.max_event_bytes, self.network)
        raw_map = _StoredRaw(self._fetch_raw, self._scan_raw)
        raw_map.stored = True  # everything restored or replayed here is in the table
        try:
            if applied:
                with self._engine.connect() as conn:
                    ids = conn.execute(
                        select(s.events.c.id)
                        .where(s.events.c.idx <= applied)
                        .order_by(s.events.c.idx)
                    )
                    for (i,) in ids:
                        raw_map[i] = b""  # not kept: the bytes are read back by id
                if len(raw_map) != applied:
                    raise CorruptLedgerError("the snapshot covers events the database lacks")
            elif replica.raw:
                raise CorruptLedgerError("a full replay must start from an empty replica")
            replica.raw = raw_map
            self._replay(replica, dec, applied, rejected_n)
        finally:
            raw_map.stored = False

    def _fetch_raw(self, eid: bytes) -> bytes | None:
        with self._engine.connect() as conn:
            raw = conn.execute(select(s.events.c.raw).where(s.events.c.id == eid)).scalar()
        return None if raw is None else bytes(raw)

    def _scan_raw(self) -> Iterator[bytes]:
        for _idx, raw in self._stream(s.events, s.events.c.idx, 0):
            yield raw

    def _replay(self, replica: Replica, dec: Decoder, applied: int, rejected_n: int) -> None:
        # Pending events are re-read from their table (it may have changed since).
        for eid in list(replica.pending):
            replica.drop_pending(eid)
        replayed = 0
        for idx, raw in self._stream(s.events, s.events.c.idx, applied):
            ev = dec.one(raw, verify=False)
            if isinstance(ev, Refused) or replica.add(ev).status != "applied":
                raise CorruptLedgerError(f"stored event #{idx} does not replay")
            replayed += 1
        for n, raw in self._stream(s.rejected, s.rejected.c.n, rejected_n):
            ev = dec.one(raw, verify=False)
            if isinstance(ev, Refused) or replica.add(ev).status != "rejected":
                raise CorruptLedgerError(f"stored rejected event #{n} does not replay")
        for n, raw in self._stream(s.pending, s.pending.c.n, 0):
            ev = dec.one(raw, verify=False)
            if isinstance(ev, Refused) or replica.add(ev).status != "pending":
                raise CorruptLedgerError(f"stored pending event #{n} is not pending")
        # A proof whose evidence is no longer held (a waiting event dropped from
        # the bounded pool) still proves the fork: the state must not forget it.
        for proof in self.fork_proofs():
            try:
                replica.add_proof(proof)
            except RemoteProtocolError as exc:
                raise CorruptLedgerError(f"a stored fork proof does not verify: {exc}") from exc
        self.replica = replica
        self.replayed_on_open = replayed
        self._snapshot_idx = applied

    def _stream_events(self) -> Iterator[tuple[int, bytes, bytes, int, int, int, bytes]]:
        """Every applied event's columns, in apply order, a page at a time."""
        e = s.events
        cols = (e.c.idx, e.c.id, e.c.author, e.c.seq, e.c.kind, e.c.timestamp, e.c.raw)
        last = 0
        while True:
            with self._engine.connect() as conn:
                page = conn.execute(
                    select(*cols).where(e.c.idx > last).order_by(e.c.idx).limit(_PAGE)
                ).all()
            if not page:
                return
            for idx, eid, author, seq, kind, ts, raw in page:
                yield int(idx), eid, author, int(seq), int(kind), int(ts), raw
            last = int(page[-1][0])

    def _stream(self, table: Any, key: Any, after: int) -> Iterator[tuple[int, bytes]]:
        """(key, raw) of rows with key > after, in key order, a page at a time."""
        last = after
        while True:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    select(key, table.c.raw).where(key > last).order_by(key).limit(_PAGE)
                ).all()
            if not rows:
                return
            for k, raw in rows:
                yield int(k), raw
            last = int(rows[-1][0])

    # -- writing ---------------------------------------------------------------------

    def append(self, raws: Sequence[bytes]) -> AppendResults:
        """Decode, verify and apply events from outside; store them durably in one
        transaction. Never raises for bad input: each gets a result."""
        with self._lock:
            self._check_open()
            return self._ingest(self._decoder.decode(raws, verify=True))

    def append_events(self, events: Sequence[Event]) -> AppendResults:
        """Like `append`, for events already decoded and signature-checked."""
        with self._lock:
            self._check_open()
            return self._ingest(events)

    def _ingest(self, items: Iterable[Event | Refused]) -> AppendResults:
        try:
            return self._ingest_unsafe(items)
        except Exception as exc:
            # The replica may hold what the database does not: fold it again from disk.
            log.exception("append failed; reloading the state from the database")
            try:
                self._load()
            except Exception:
                log.exception("reload after a failed append failed too")
                self._closed = True
            raise LedgerError(f"append failed, nothing from this call was stored: {exc}") from exc

    def _ingest_unsafe(self, items: Iterable[Event | Refused]) -> AppendResults:
        rep = self.replica
        max_bytes = rep.max_event_bytes
        results: list[AppendResult] = []
        rows: list[dict[str, Any]] = []
        void_of: dict[bytes, tuple[str, str]] = {}
        new_pending: dict[bytes, bytes] = {}
        gone_pending: list[bytes] = []
        new_rejected: dict[bytes, bytes] = {}
        new_proofs: dict[bytes, dict[str, Any]] = {}
        applied_events: list[Event] = []
        idx = self._next_idx
        for item in items:
            if isinstance(item, Refused):
                results.append(AppendResult("rejected", item.id, item.code, item.reason))
                continue
            ev = item
            if len(ev.raw) > max_bytes:
                results.append(
                    AppendResult("rejected", ev.id, "oversize", f"over {max_bytes} bytes")
                )
                continue
            out = rep.add(ev)
            for e in out.applied:
                void = out.void.get(e.id)
                if void is not None:
                    void_of[e.id] = void
                rows.append(
                    {
                        "idx": idx,
                        "id": e.id,
                        "author": e.author,
                        "seq": e.seq,
                        "kind": e.kind.code,
                        "timestamp": e.timestamp,
                        "raw": e.raw,
                        "void_code": void[0] if void else None,
                        "void_reason": void[1] if void else None,
                    }
                )
                idx += 1
                applied_events.append(e)
                if e.id != ev.id:
                    self._unpend(e.id, new_pending, gone_pending)
            for rid in out.rejected:
                kept = rep.rejected.get(rid)
                if kept is not None and rid not in self._rejected_ids:
                    new_rejected[rid] = kept
                if rid != ev.id:
                    self._unpend(rid, new_pending, gone_pending)
            if out.status == "pending":
                new_pending[ev.id] = ev.raw
            for p in out.forks:
                key = _proof_key(p.first, p.second)
                if key not in self._proof_keys and key not in new_proofs:
                    a = self._decoder.one(p.first, verify=False)
                    author, seq = (a.author, a.seq) if isinstance(a, Event) else (ev.author, ev.seq)
                    new_proofs[key] = {
                        "key": key,
                        "author": author,
                        "seq": seq,
                        "first": p.first,
                        "second": p.second,
                    }
            code, reason = out.rejected.get(ev.id, (None, None))
            results.append(AppendResult(out.status, ev.id, code, reason))
        over = len(rep.pending) - self.max_pending
        if over > 0:
            # Events waiting for dependencies that may never come (anyone can sign
            # orphans): the oldest go first, from memory and disk. A real one is
            # fetched again by sync once its dependencies are here.
            for eid in list(itertools.islice(rep.pending, over)):
                rep.drop_pending(eid)
                self._unpend(eid, new_pending, gone_pending)
            self.pending_dropped += over
            log.warning("pending pool over %d: dropped the %d oldest", self.max_pending, over)
        # Inputs that waited and were released later in this same call.
        for i, r in enumerate(results):
            if r.status == "pending":
                if r.id in rep.raw:
                    v = void_of.get(r.id)
                    results[i] = AppendResult("applied", r.id, *(v or (None, None)))
                elif r.id in rep.rejected:
                    results[i] = AppendResult("rejected", r.id, *self._bad_prev())
            elif r.status == "applied" and r.id in void_of:
                results[i] = AppendResult("applied", r.id, *void_of[r.id])
        if (
            rows
            and not (new_pending or gone_pending or new_rejected or new_proofs)
            and (self._fast_append(rows))
        ):
            self._next_idx = idx
            self._raw_committed()
        elif rows or new_pending or gone_pending or new_rejected or new_proofs:
            with self._engine.begin() as conn:
                if rows:
                    conn.execute(insert(s.events), rows)
                for ids in _chunks(gone_pending):
                    conn.execute(delete(s.pending).where(s.pending.c.id.in_(ids)))
                if new_pending:
                    conn.execute(
                        insert(s.pending), [{"id": k, "raw": v} for k, v in new_pending.items()]
                    )
                if new_rejected:
                    conn.execute(
                        insert(s.rejected), [{"id": k, "raw": v} for k, v in new_rejected.items()]
                    )
                if new_proofs:
                    conn.execute(insert(s.fork_proofs), list(new_proofs.values()))
            # Committed: from here on the in-memory bookkeeping may follow.
            self._next_idx = idx
            self._raw_committed()
            self._rejected_ids.update(new_rejected)
            self._proof_keys.update(new_proofs)
        # Everything this call applied that no result reports as applied: waiters
        # released by an input, including a waiter whose re-sent copy came back
        # "duplicate" (gossip, then the same event in a sync page).
        reported = {r.id for r in results if r.status == "applied"}
        released = [e for e in applied_events if e.id not in reported]
        if self._next_idx - 1 - self._snapshot_idx >= self._snapshot_every:
            self._write_snapshot()
        fresh = [EquivocationProof(p["first"], p["second"]) for p in new_proofs.values()]
        return AppendResults(results, released, fresh)

    def _raw_committed(self) -> None:
        if isinstance(self.replica.raw, _StoredRaw):
            self.replica.raw.committed()

    def _fast_append(self, rows: list[dict[str, Any]]) -> bool:
        """Insert applied events in one transaction on a kept SQLite connection:
        the common gossip case (a few events, nothing else to write) without
        SQLAlchemy's per-transaction checkout, events and compile, which cost this
        node about a millisecond per message. False when the engine is not a file
        SQLite database; the caller then takes the general path."""
        if self._fast is None:
            if self._engine.dialect.name != "sqlite" or isinstance(self._engine.pool, StaticPool):
                return False
            self._fast = self._engine.raw_connection()
            self._fast_insert = str(
                insert(s.events).compile(dialect=self._engine.dialect, column_keys=_EVENT_COLUMNS)
            )
        cur = self._fast.cursor()
        try:
            cur.execute("BEGIN")
            cur.executemany(self._fast_insert, [tuple(r[c] for c in _EVENT_COLUMNS) for r in rows])
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()
        return True

    @staticmethod
    def _bad_prev() -> tuple[str, str]:
        return ("bad_prev", "prev is not the author's previous event")

    @staticmethod
    def _unpend(eid: bytes, new_pending: dict[bytes, bytes], gone: list[bytes]) -> None:
        """An event left the pending set: drop it from this call's inserts, or
        delete its stored row (it was stored by an earlier call)."""
        if new_pending.pop(eid, None) is None:
            gone.append(eid)

    # -- snapshots -------------------------------------------------------------------

    def snapshot(self) -> None:
        """Write a snapshot of the state now (also done every `snapshot_every`
        events and on close)."""
        with self._lock:
            self._check_open()
            self._write_snapshot()

    def _write_snapshot(self) -> None:
        if self._snapshot_path is None:
            return
        applied = self._next_idx - 1
        with self._engine.connect() as conn:
            rejected_n = int(conn.execute(select(func.max(s.rejected.c.n))).scalar() or 0)
        try:
            write_snapshot(self._snapshot_path, self.replica, applied, rejected_n)
            self._snapshot_idx = applied
        except Exception as exc:
            # Only a cache: the events are safe; the next open replays more.
            log.warning("could not write the snapshot %s: %s", self._snapshot_path, exc)

    # -- reading ---------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The live State (replaced, not mutated, when the ledger reloads)."""
        return self.replica.state

    def digest(self) -> bytes:
        return self.replica.digest()

    def count(self) -> int:
        """Applied events (void ones included)."""
        return self._next_idx - 1

    def pending_count(self) -> int:
        return len(self.replica.pending)

    def heads(self) -> dict[bytes, tuple[int, bytes]]:
        """author -> (highest applied seq, its id; the first applied at a fork)."""
        e = s.events
        top = (
            select(e.c.author.label("a"), func.max(e.c.seq).label("m"))
            .group_by(e.c.author)
            .subquery()
        )
        q = (
            select(e.c.author, e.c.seq, e.c.id)
            .join(top, (e.c.author == top.c.a) & (e.c.seq == top.c.m))
            .order_by(e.c.idx)
        )
        out: dict[bytes, tuple[int, bytes]] = {}
        with self._engine.connect() as conn:
            for author, seq, eid in conn.execute(q):
                out.setdefault(author, (int(seq), eid))
        return out

    def events_range(self, author: bytes, from_seq: int, limit: int) -> list[bytes]:
        """Raw applied events of `author` with seq >= from_seq, in seq order
        (both branches of a fork), at most `limit`."""
        e = s.events
        q = (
            select(e.c.raw)
            .where(e.c.author == author, e.c.seq >= from_seq)
            .order_by(e.c.seq, e.c.idx)
            .limit(max(0, limit))
        )
        with self._engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def get_raw(self, ids: Iterable[bytes]) -> dict[bytes, bytes]:
        """Raw bytes of the applied or pending events among `ids` (a pending
        event is verified and may be exactly what a peer is missing)."""
        want = list(dict.fromkeys(ids))
        out: dict[bytes, bytes] = {}
        with self._engine.connect() as conn:
            for table in (s.events, s.pending):
                for part in _chunks([i for i in want if i not in out]):
                    q = select(table.c.id, table.c.raw).where(table.c.id.in_(part))
                    out.update({i: r for i, r in conn.execute(q)})
        return out

    def _stored(self, rows: Iterable[Any]) -> list[StoredEvent]:
        out = []
        for r in rows:
            k = KINDS.by_code(r.kind)
            out.append(
                StoredEvent(
                    int(r.idx),
                    r.id,
                    r.author,
                    int(r.seq),
                    k.name if k else str(r.kind),
                    int(r.timestamp),
                    r.raw,
                    r.void_code,
                    r.void_reason,
                )
            )
        return out

    def events_by_author(
        self, author: bytes, limit: int = 100, offset: int = 0
    ) -> list[StoredEvent]:
        e = s.events
        q = (
            select(e)
            .where(e.c.author == author)
            .order_by(e.c.seq, e.c.idx)
            .limit(max(0, limit))
            .offset(max(0, offset))
        )
        with self._engine.connect() as conn:
            return self._stored(conn.execute(q))

    def events_after(self, idx: int, limit: int = 1000) -> list[StoredEvent]:
        """Applied events with apply index > idx, in apply order (a feed)."""
        e = s.events
        q = select(e).where(e.c.idx > idx).order_by(e.c.idx).limit(max(0, limit))
        with self._engine.connect() as conn:
            return self._stored(conn.execute(q))

    def counts_by_kind(self) -> dict[str, int]:
        e = s.events
        q = select(e.c.kind, func.count()).group_by(e.c.kind)
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        out: dict[str, int] = {}
        for code, n in rows:
            k = KINDS.by_code(code)
            out[k.name if k else str(code)] = int(n)
        return out

    def fork_proofs(self) -> list[EquivocationProof]:
        f = s.fork_proofs
        with self._engine.connect() as conn:
            rows = conn.execute(select(f.c.first, f.c.second).order_by(f.c.n)).all()
        return [EquivocationProof(a, b) for a, b in rows]

    def rejected_raws(self) -> list[bytes]:
        """Events refused for a bad prev and kept as fork evidence."""
        return [raw for _, raw in self._stream(s.rejected, s.rejected.c.n, 0)]

    def pending_raws(self) -> list[bytes]:
        return [raw for _, raw in self._stream(s.pending, s.pending.c.n, 0)]

    def schema_version(self) -> int:
        with self._engine.connect() as conn:
            return s.current_version(conn)

    # -- verification ----------------------------------------------------------------

    def verify(self, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Replay every stored event from scratch with signature checks into a
        fresh replica; check ids, hash links, columns, invariants and that the
        digest equals the live one. Reports problems; does not raise for them."""
        with self._lock:
            self._check_open()
            return self._verify(progress)

    def _verify(self, progress: Callable[[int, int], None] | None) -> VerifyReport:
        t0 = time.perf_counter()
        problems: list[str] = []

        def problem(msg: str) -> None:
            if len(problems) < _MAX_PROBLEMS:
                problems.append(msg)
            elif len(problems) == _MAX_PROBLEMS:
                problems.append("… more problems not listed")

        rep = Replica(self.genesis)
        total = self.count()
        Meta = tuple[int, bytes, bytes, int, int, int]

        def rows() -> Iterator[tuple[Meta, bytes]]:
            expect = 1
            for idx, eid, author, seq, kind, ts, raw in self._stream_events():
                if idx != expect:
                    problem(f"apply index jumps from {expect - 1} to {idx}")
                expect = idx + 1
                yield (idx, eid, author, seq, kind, ts), raw

        done = 0
        for (idx, eid, author, seq, kind, ts), item in self._decoder.decode_tagged(rows()):
            done += 1
            if progress is not None and (done % 1000 == 0 or done == total):
                progress(done, total)
            if isinstance(item, Refused):
                problem(f"event #{idx} ({eid.hex()[:12]}) fails verification: {item.reason}")
                continue
            if item.id != eid:
                problem(f"event #{idx}: stored id {eid.hex()[:12]} is not the hash of its bytes")
            if (item.author, item.seq, item.kind.code, item.timestamp) != (author, seq, kind, ts):
                problem(f"event #{idx}: stored columns disagree with its bytes")
            out = rep.add(item)
            if out.status != "applied":
                why = next(
                    iter(out.rejected.values()), (out.status, "its prev or refs are missing")
                )
                problem(f"event #{idx} ({item.short()}) does not apply in order: {why[1]}")
        if done != total:
            problem(f"{done} events read, {total} expected")
        dec = self._decoder
        n_rejected = 0
        for n, raw in self._stream(s.rejected, s.rejected.c.n, 0):
            n_rejected += 1
            item = dec.one(raw, verify=True)
            if isinstance(item, Refused):
                problem(f"rejected row {n} fails verification: {item.reason}")
            elif rep.add(item).status != "rejected":
                problem(f"rejected row {n} ({item.short()}) is not a bad-prev event")
        n_pending = 0
        for n, raw in self._stream(s.pending, s.pending.c.n, 0):
            n_pending += 1
            item = dec.one(raw, verify=True)
            if isinstance(item, Refused):
                problem(f"pending row {n} fails verification: {item.reason}")
            elif rep.add(item).status != "pending":
                problem(f"pending row {n} ({item.short()}) should not be pending")
        for p in self.fork_proofs():
            try:
                p.verify(self.network, self.genesis.params.max_event_bytes)
            except ProtocolError as exc:
                problem(f"a stored fork proof does not verify: {exc.reason}")
        problems.extend(rep.state.check_invariants())
        digest = rep.digest()
        live = self.replica.digest()
        if digest != live:
            problem(f"replayed digest {digest.hex()[:16]} != live digest {live.hex()[:16]}")
        return VerifyReport(
            ok=not problems,
            events=done,
            pending=n_pending,
            rejected=n_rejected,
            forks=len(rep.state.forks),
            void=len(rep.state.void),
            digest=digest,
            live_digest=live,
            seconds=time.perf_counter() - t0,
            problems=problems,
        )

    # -- export / import -------------------------------------------------------------

    def export(self, path: str | os.PathLike[str]) -> ExportSummary:
        """Write genesis, events (apply order), kept rejects, pending events and
        fork proofs to one file."""
        with self._lock:
            self._check_open()
            return export_ledger(self, path)

    def import_(self, path: str | os.PathLike[str]) -> ImportReport:
        """Verify and append everything in an export file of this network
        (idempotent); another network's file raises WrongNetworkError."""
        with self._lock:
            self._check_open()
            return import_ledger(self, path)

    # -- life cycle ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError("the ledger is closed")

    def close(self) -> None:
        """Snapshot the state, release the database and the file lock. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._next_idx - 1 != self._snapshot_idx:
                    self._write_snapshot()
            finally:
                self._closed = True
                self._decoder.close()
                if self._fast is not None:
                    self._fast.close()
                    self._fast = None
                self._engine.dispose()
                if self._file_lock is not None:
                    self._file_lock.release()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.url!r}, network={self.genesis.name!r}, events={self.count()})"
