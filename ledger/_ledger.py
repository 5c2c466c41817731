"""The ledger: a durable, append-only event store with the replica folded from it.

A thin facade over its parts: `_store` (the database), `_append` (one append),
`_replay` (the one replay, for opening, verify and import), `_snapshot` (the
restart cache) and `_archive` (export and import files).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

from learnmesh.protocol import EquivocationProof, Event, Genesis, Replica, State
from sqlalchemy.exc import SQLAlchemyError

from ._append import Appender
from ._archive import ExportSummary, ImportReport, export_ledger, import_ledger
from ._decode import Decoder, Refused
from ._errors import CorruptLedgerError, LedgerError
from ._replay import replay_stored, verify_store
from ._results import AppendResult, AppendResults, StoredEvent, VerifyReport
from ._snapshot import Snapshot, from_plain, read_snapshot, write_snapshot
from ._store import Store, StoredRaw

# Bytes in, verified and applied, written in one transaction per call; the state
# is rebuilt on open from a snapshot plus the events after it.
__all__ = ["AppendResult", "AppendResults", "Ledger", "StoredEvent", "VerifyReport"]

log = logging.getLogger(__name__)


class _Storing:
    """A replay target that appends to the ledger (import): stored, not just folded."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def add(self, events: Sequence[Event]) -> AppendResults:
        return self.ledger.append_events(events)

    def add_proof(self, proof: EquivocationProof) -> AppendResults:
        # Both events, signatures checked: the ledger finds and stores the fork again.
        return self.ledger.append([proof.first, proof.second])


class Ledger:
    """Use `Ledger.open(...)`. Not for concurrent writers: one process owns a
    ledger file; within it, calls are serialised by a lock."""

    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        *,
        snapshot_path: Path | None,
        snapshot_every: int,
        verify_threads: int,
        max_pending: int = 20_000,
    ) -> None:
        self.url = store.url
        self.genesis = genesis
        self.network = genesis.network_id
        self._store = store
        self._snapshot_path = snapshot_path
        self._snapshot_every = snapshot_every
        self._lock = threading.RLock()
        self._decoder = Decoder(genesis.params.max_event_bytes, self.network, verify_threads)
        self._appender = Appender(store, self._decoder, max_pending)
        self.replica = Replica(genesis)
        self._snapshot_idx = 0
        self._closed = False
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
        store, have, default_snap = Store.open(url, genesis, synchronous)
        snap = Path(snapshot_path) if snapshot_path is not None else default_snap
        threads = verify_threads if verify_threads is not None else (os.cpu_count() or 1)
        try:
            ledger = cls(
                store,
                have,
                snapshot_path=snap,
                snapshot_every=snapshot_every,
                verify_threads=threads,
                max_pending=max_pending,
            )
            try:
                ledger._load()
            except BaseException as exc:
                ledger._decoder.close()
                if isinstance(exc, SQLAlchemyError):
                    raise LedgerError(f"cannot open the ledger database: {exc.args[0]}") from exc
                raise
        except BaseException:
            store.close()
            raise
        return ledger

    def _load(self) -> None:
        """Rebuild the replica: snapshot plus the records after it, or every record."""
        top, rejected_ids, proof_keys, rejected_n = self._store.bookkeeping()
        self._appender.reset(top, rejected_ids, proof_keys)
        snap = read_snapshot(self._snapshot_path, self.network) if self._snapshot_path else None
        if snap is not None and (snap.applied > top or snap.rejected > rejected_n):
            log.warning("the snapshot is ahead of the database: replaying every event")
        elif snap is not None:
            try:
                self._restore(snap)
                self.opened_from_snapshot = True
                return
            except (CorruptLedgerError, ValueError, TypeError, KeyError, IndexError) as exc:
                # SnapshotError is a ValueError; the others: a body of the wrong shape.
                log.warning("snapshot not used (%s): replaying every event", exc)
        self._replay_into(Replica(self.genesis), self._raw_map(), 0, 0)
        self.opened_from_snapshot = False
        if self.replayed_on_open > 1000 and self._snapshot_path is not None:
            self._write_snapshot()  # so the next open is fast

    def _raw_map(self) -> StoredRaw:
        raw_map = StoredRaw(self._store.fetch_raw, self._store.scan_raw)
        raw_map.stored = True  # everything restored or replayed here is in the table
        return raw_map

    def _restore(self, snap: Snapshot) -> None:
        raw_map = self._raw_map()
        try:
            replica = from_plain(
                snap.body,
                self.genesis,
                self._store.slots(snap.applied),
                ((i, r) for _n, i, r in self._store.stream_rejected(0, snap.rejected)),
                raw_map,
            )
        finally:
            raw_map.stored = False
        if len(raw_map) != snap.applied:
            raise CorruptLedgerError("the snapshot covers events the database lacks")
        self._replay_into(replica, raw_map, snap.applied, snap.rejected)

    def _replay_into(
        self, replica: Replica, raw_map: StoredRaw, applied: int, rejected_n: int
    ) -> None:
        """The records after (applied, rejected_n), every pending event and every
        fork proof, into `replica`, without signature checks (the ledger's own
        data); the first record that does not replay as stored raises."""
        replica.raw = raw_map
        raw_map.stored = True
        try:
            replayed = replay_stored(
                self._store, replica, after_idx=applied, after_rejected=rejected_n
            )
        finally:
            raw_map.stored = False
        self.replica = replica
        self.replayed_on_open = replayed
        self._snapshot_idx = applied

    # -- writing ---------------------------------------------------------------------

    def append(self, raws: Sequence[bytes], *, durable: bool = True) -> AppendResults:
        """Decode, verify and apply events from outside; store them in one
        transaction (`durable=False`: without the disk flush, as the node
        commits events from peers; see `append_events`). Never raises for bad
        input: each gets a result."""
        with self._lock:
            self._check_open()
            return self._ingest(self._decoder.decode(raws, verify=True), durable)

    def append_events(self, events: Iterable[Event], *, durable: bool = True) -> AppendResults:
        """Like `append`, for events already decoded and signature-checked, all
        in one transaction. `events` may be a generator: each event is folded
        into the replica before the next is asked for, so a producer may make
        the next event on the state the last one left (the node's batch
        authoring: its head, balance and claims). `durable=False` (events that
        came from peers) lets the commit skip the disk flush: it still survives
        the process being killed; only a power loss may lose it, and peers
        have it (`Store.commit`)."""
        with self._lock:
            self._check_open()
            return self._ingest(events, durable)

    def _ingest(self, items: Iterable[Event | Refused], durable: bool = True) -> AppendResults:
        try:
            results = self._appender.ingest(self.replica, items, durable)
        except Exception as exc:
            # The replica may hold what the database does not: fold it again from disk.
            log.exception("append failed; reloading the state from the database")
            try:
                self._load()
            except Exception:
                log.exception("reload after a failed append failed too")
                self._closed = True
            raise LedgerError(f"append failed, nothing from this call was stored: {exc}") from exc
        if self.count() - self._snapshot_idx >= self._snapshot_every:
            self._write_snapshot()
        return results

    @property
    def signature_task_times(self) -> tuple[float, float]:
        """Wall and CPU seconds spent so far in the verify threads' signature
        tasks (`Decoder`): the difference is time they waited for the GIL."""
        return self._decoder.worker_wall_s, self._decoder.worker_cpu_s

    @property
    def max_pending(self) -> int:
        return self._appender.max_pending

    @property
    def pending_dropped(self) -> int:
        """Waiting events dropped because the pending pool was full."""
        return self._appender.pending_dropped

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
        applied = self.count()
        try:
            rejected_n = self._store.max_rejected_n()
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
        return self._appender.next_idx - 1

    def pending_count(self) -> int:
        return len(self.replica.pending)

    def heads(self) -> dict[bytes, tuple[int, bytes]]:
        """author -> (highest applied seq, its id; the first applied at a fork)."""
        return self._store.heads()

    def events_range(self, author: bytes, from_seq: int, limit: int) -> list[bytes]:
        """Raw applied events of `author` with seq >= from_seq, in seq order
        (both branches of a fork), at most `limit`."""
        return self._store.events_range(author, from_seq, limit)

    def get_raw(self, ids: Iterable[bytes]) -> dict[bytes, bytes]:
        """Raw bytes of the applied or pending events among `ids` (a pending
        event is verified and may be exactly what a peer is missing)."""
        return self._store.get_raw(ids)

    def events_by_author(
        self, author: bytes, limit: int = 100, offset: int = 0, kind: str | None = None
    ) -> list[StoredEvent]:
        """An author's events in chain order, all or only those of one kind (the
        filter runs in SQLite: a node's own chain can hold many thousands)."""
        return self._store.events_by_author(author, limit, offset, kind)

    def events_after(self, idx: int, limit: int = 1000) -> list[StoredEvent]:
        """Applied events with apply index > idx, in apply order (a feed)."""
        return self._store.events_after(idx, limit)

    def counts_by_kind(self) -> dict[str, int]:
        return self._store.counts_by_kind()

    def fork_proofs(self) -> list[EquivocationProof]:
        return self._store.fork_proofs()

    def rejected_raws(self) -> list[bytes]:
        """Events refused for a bad prev and kept as fork evidence."""
        return [raw for _n, _id, raw in self._store.stream_rejected()]

    def pending_raws(self) -> list[bytes]:
        return [raw for _n, _id, raw in self._store.stream_pending()]

    def schema_version(self) -> int:
        return self._store.schema_version()

    # -- verification ----------------------------------------------------------------

    def verify(
        self, progress: Callable[[int, int], None] | None = None, *, full: bool = True
    ) -> VerifyReport:
        """Replay every stored record from scratch into a fresh replica, with
        every signature checked (`full`), or with the hash links and each
        chain's last signature as opening does (PROTOCOL.md §10.1 says what each
        proves); check ids, columns, invariants and that the digest equals the
        live one. Reports problems; does not raise for them (the same replay as
        opening, see `_replay`)."""
        with self._lock:
            self._check_open()
            return verify_store(
                self._store,
                self.genesis,
                self._decoder,
                self.replica.digest(),
                self.count(),
                progress,
                full=full,
            )

    # -- export / import -------------------------------------------------------------

    def export(self, path: str | os.PathLike[str]) -> ExportSummary:
        """Write genesis, events (apply order), kept rejects, pending events and
        fork proofs to one file."""
        with self._lock:
            self._check_open()
            return export_ledger(self._store, self.genesis, path)

    def import_(self, path: str | os.PathLike[str]) -> ImportReport:
        """Verify and append everything in an export file of this network
        (idempotent); another network's file raises WrongNetworkError."""
        with self._lock:
            self._check_open()
            return import_ledger(_Storing(self), self._decoder, self.genesis, path)

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
                if self.count() != self._snapshot_idx:
                    self._write_snapshot()
            finally:
                self._closed = True
                self._decoder.close()
                self._store.close()

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
