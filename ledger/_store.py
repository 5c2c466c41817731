"""The database of one ledger: opening and the file lock, the append
transaction, streams for replay and the queries. No replica and no fold here."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence, ValuesView
from pathlib import Path
from typing import IO, Any

from learnmesh.protocol import KINDS, EquivocationProof, Genesis, RemoteProtocolError
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
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
from ._errors import CorruptLedgerError, LedgerBusyError, LedgerError, WrongNetworkError
from ._results import StoredEvent

__all__ = ["EVENT_COLUMNS", "EventInsert", "EventRow", "Store", "StoredRaw"]

_PAGE = 2000  # rows per query when streaming a whole table
_IN_CHUNK = 500  # ids per IN (...) clause: far under every database's parameter limit

# (idx, id, author, seq, kind, timestamp, raw): an applied event's columns.
EventRow = tuple[int, bytes, bytes, int, int, int, bytes]

# An applied event as written: a value for each of EVENT_COLUMNS, in order.
EventInsert = tuple[int, bytes, bytes, int, int, int, bytes, str | None, str | None]

EVENT_COLUMNS = (
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


class Store:
    """Use `Store.open(...)`. The caller serialises calls (the ledger's lock)."""

    def __init__(
        self, engine: Engine, url: str, lock: _FileLock | None, synchronous: str = "FULL"
    ) -> None:
        self.url = url
        self._engine = engine
        self._file_lock = lock
        self._fast: Any = None  # DBAPI connection kept for _fast_append
        self._fast_insert = ""
        self._fast_pending_in = ""
        self._fast_pending_out = ""
        self.synchronous = synchronous.upper()  # what a durable commit uses
        self._fast_sync = self.synchronous  # the kept connection's current setting

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open(
        cls, url: str | os.PathLike[str], genesis: Genesis | None, synchronous: str
    ) -> tuple[Store, Genesis, Path | None]:
        """Open (or create) the database; returns the store, the genesis it
        holds, and the default snapshot path (beside a SQLite file, else None)."""
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise LedgerError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        text = os.fspath(url)
        lock: _FileLock | None = None
        snap: Path | None = None
        if "://" not in text:
            path = Path(text).expanduser().resolve()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(f"cannot create {path.parent}: {exc.strerror}") from None
            lock = _FileLock(path.with_name(path.name + ".lock"))
            text = f"sqlite:///{path}"
            snap = path.with_name(path.name + ".snapshot")
        engine: Engine | None = None
        try:
            if text.startswith("sqlite"):
                engine = _sqlite_engine(text, synchronous.upper())
            else:
                engine = create_engine(text)
            s.migrate(engine, int(time.time() * 1000))
            have = cls._check_genesis(engine, genesis)
        except BaseException as exc:
            if engine is not None:
                engine.dispose()
            if lock is not None:
                lock.release()
            if isinstance(exc, SQLAlchemyError):
                raise LedgerError(f"cannot open the ledger database: {exc.args[0]}") from exc
            raise
        return cls(engine, text, lock, synchronous), have, snap

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

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        self._engine.dispose()
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None

    # -- what replay needs -------------------------------------------------------------

    def bookkeeping(self) -> tuple[int, set[bytes], set[bytes], int]:
        """(highest apply index, ids of kept rejects, fork proof keys, highest
        rejected row number)."""
        with self._engine.connect() as conn:
            top = int(conn.execute(select(func.max(s.events.c.idx))).scalar() or 0)
            rejected = set(conn.execute(select(s.rejected.c.id)).scalars())
            keys = set(conn.execute(select(s.fork_proofs.c.key)).scalars())
            rejected_n = int(conn.execute(select(func.max(s.rejected.c.n))).scalar() or 0)
        return top, rejected, keys, rejected_n

    def max_rejected_n(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.max(s.rejected.c.n))).scalar() or 0)

    def stream_events(self, after: int = 0) -> Iterator[EventRow]:
        """Applied events' columns with idx > after, in apply order, a page at a time."""
        e = s.events
        cols = (e.c.idx, e.c.id, e.c.author, e.c.seq, e.c.kind, e.c.timestamp, e.c.raw)
        last = after
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

    def slots(self, upto: int) -> Iterator[tuple[bytes, bytes, int]]:
        """(id, author, seq) of the applied events with idx <= upto, in apply order."""
        e = s.events
        last = 0
        while last < upto:
            with self._engine.connect() as conn:
                page = conn.execute(
                    select(e.c.idx, e.c.id, e.c.author, e.c.seq)
                    .where(e.c.idx > last, e.c.idx <= upto)
                    .order_by(e.c.idx)
                    .limit(_PAGE * 10)
                ).all()
            if not page:
                return
            for _idx, eid, author, seq in page:
                yield eid, author, int(seq)
            last = int(page[-1][0])

    def _stream(self, table: Any, key: Any, after: int, upto: int | None = None) -> Iterator[Any]:
        """(key, id, raw) of rows with after < key (<= upto), in key order, a page at a time."""
        last = after
        while True:
            q = select(key, table.c.id, table.c.raw).where(key > last)
            if upto is not None:
                q = q.where(key <= upto)
            with self._engine.connect() as conn:
                rows = conn.execute(q.order_by(key).limit(_PAGE)).all()
            if not rows:
                return
            for k, eid, raw in rows:
                yield int(k), eid, raw
            last = int(rows[-1][0])

    def stream_rejected(
        self, after: int = 0, upto: int | None = None
    ) -> Iterator[tuple[int, bytes, bytes]]:
        """(n, id, raw) of the events kept as fork evidence."""
        return self._stream(s.rejected, s.rejected.c.n, after, upto)  # type: ignore[no-any-return]

    def stream_pending(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(n, id, raw) of the events waiting for dependencies."""
        return self._stream(s.pending, s.pending.c.n, 0)  # type: ignore[no-any-return]

    def fetch_raw(self, eid: bytes) -> bytes | None:
        with self._engine.connect() as conn:
            raw = conn.execute(select(s.events.c.raw).where(s.events.c.id == eid)).scalar()
        return None if raw is None else bytes(raw)

    def scan_raw(self) -> Iterator[bytes]:
        for row in self.stream_events():
            yield row[6]

    # -- writing ---------------------------------------------------------------------

    def commit(
        self,
        rows: list[EventInsert],
        gone_pending: list[bytes],
        new_pending: dict[bytes, bytes],
        new_rejected: dict[bytes, bytes],
        new_proofs: list[dict[str, Any]],
        durable: bool = True,
    ) -> None:
        """Write one append in one transaction (or nothing, if it raises). With
        `durable=False` the common case (applied events only) commits with
        `synchronous=NORMAL`: in WAL mode it survives the process being killed,
        only a power loss or OS crash may lose it (see `_fast_append`)."""
        if not (rows or gone_pending or new_pending or new_rejected or new_proofs):
            return
        if not (new_rejected or new_proofs) and self._fast_append(
            rows, durable, gone_pending, new_pending
        ):
            return
        with self._engine.begin() as conn:
            if rows:
                values = [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows]
                conn.execute(insert(s.events), values)
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
                conn.execute(insert(s.fork_proofs), new_proofs)

    def _fast_append(
        self,
        rows: list[EventInsert],
        durable: bool = True,
        gone_pending: Sequence[bytes] = (),
        new_pending: dict[bytes, bytes] | None = None,
    ) -> bool:
        """Insert applied events, and move events in and out of `pending`, in one
        transaction on a kept SQLite connection: the common gossip and sync cases
        without SQLAlchemy's per-transaction checkout, events, compile and a dict
        per row, which cost this node about a millisecond per message (and, in a
        catch-up where chains wait on each other, more than half the pages went
        that way). False when the engine is not a file SQLite database; the
        caller then takes the general path."""
        if self._fast is None:
            if self._engine.dialect.name != "sqlite" or isinstance(self._engine.pool, StaticPool):
                return False
            dialect = self._engine.dialect
            self._fast = self._engine.raw_connection()
            self._fast_insert = str(
                insert(s.events).compile(dialect=dialect, column_keys=EVENT_COLUMNS)
            )
            self._fast_pending_in = str(
                insert(s.pending).compile(dialect=dialect, column_keys=["id", "raw"])
            )
            self._fast_pending_out = str(
                delete(s.pending).where(s.pending.c.id == bindparam("id")).compile(dialect=dialect)
            )
        cur = self._fast.cursor()
        # Events from peers need not wait for the disk's flush (4 ms here, with
        # the node's event loop blocked): WAL with NORMAL keeps a commit through
        # a killed process, and what a power loss takes is synced again from
        # peers. The node's own events and what its API acknowledged stay at the
        # configured level (FULL): a chain must never re-sign a seq it published.
        want = self.synchronous if durable else "NORMAL"
        if want != self._fast_sync:
            cur.execute(f"PRAGMA synchronous={want}")
            self._fast_sync = want
        try:
            cur.execute("BEGIN")
            if rows:
                cur.executemany(self._fast_insert, rows)
            if gone_pending:
                cur.executemany(self._fast_pending_out, [(i,) for i in gone_pending])
            if new_pending:
                cur.executemany(self._fast_pending_in, list(new_pending.items()))
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()
        return True

    # -- queries ---------------------------------------------------------------------

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
        """Raw bytes of the applied or pending events among `ids`."""
        want = list(dict.fromkeys(ids))
        out: dict[bytes, bytes] = {}
        with self._engine.connect() as conn:
            for table in (s.events, s.pending):
                for part in _chunks([i for i in want if i not in out]):
                    q = select(table.c.id, table.c.raw).where(table.c.id.in_(part))
                    out.update({i: r for i, r in conn.execute(q)})
        return out

    @staticmethod
    def _stored(rows: Iterable[Any]) -> list[StoredEvent]:
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
        self, author: bytes, limit: int, offset: int, kind: str | None = None
    ) -> list[StoredEvent]:
        e = s.events
        where = [e.c.author == author]
        if kind is not None:
            k = KINDS.get(kind)
            if k is None:
                return []
            where.append(e.c.kind == k.code)
        q = (
            select(e)
            .where(*where)
            .order_by(e.c.seq, e.c.idx)
            .limit(max(0, limit))
            .offset(max(0, offset))
        )
        with self._engine.connect() as conn:
            return self._stored(conn.execute(q))

    def events_after(self, idx: int, limit: int) -> list[StoredEvent]:
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

    def schema_version(self) -> int:
        with self._engine.connect() as conn:
            return s.current_version(conn)


class StoredRaw(MutableMapping[bytes, bytes]):
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
    _mapping: StoredRaw

    def __iter__(self) -> Iterator[bytes]:
        return self._mapping.stream()
