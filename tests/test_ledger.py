"""Ledger storage: durability, append-only, snapshots, pending, forks, verify,
export/import, migrations, blobs. Real SQLite files in tmp_path."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from _tamper import each_bit_flipped
from learnmesh.ledger import (
    BlobError,
    BlobStore,
    Ledger,
    LedgerBusyError,
    LedgerError,
    WrongNetworkError,
)
from learnmesh.ledger._schema import LATEST_VERSION
from learnmesh.ledger._store import StoredRaw as _StoredRaw
from learnmesh.protocol import ChainWriter, Event, Genesis, Replica
from learnmesh.protocol._workload import Workload

HERE = Path(__file__).parent


@dataclass
class Corpus:
    genesis: Genesis
    events: list[Event]
    digest: bytes  # of all events, folded by the workload's own replica

    @property
    def raws(self) -> list[bytes]:
        return [e.raw for e in self.events]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    w = Workload(seed=7)
    events = list(w.events(3000))
    return Corpus(w.genesis, events, w.replica.digest())


def digest_of(genesis: Genesis, events: list[Event]) -> bytes:
    r = Replica(genesis)
    for e in events:
        r.add(e)
    return r.digest()


def append_all(ledger: Ledger, raws: list[bytes], batch: int = 500) -> None:
    for i in range(0, len(raws), batch):
        results = ledger.append(raws[i : i + batch])
        assert [r.status for r in results] == ["applied"] * len(results)


def copy_db(src: Path, dst: Path) -> None:
    """What a crash leaves behind: the files as they are (no close, no snapshot)."""
    for suffix in ("", "-wal", ".snapshot"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy(f"{src}{suffix}", f"{dst}{suffix}")


# -- round trip, restart, snapshot -----------------------------------------------------


def test_round_trip_restart_uses_snapshot(tmp_path: Path, corpus: Corpus) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, corpus.genesis) as ledger:
        append_all(ledger, corpus.raws[:2500])
        assert ledger.count() == 2500
        report = ledger.verify()
        assert report.ok, report.problems
        assert report.digest == ledger.digest() == digest_of(corpus.genesis, corpus.events[:2500])
    with Ledger.open(db, corpus.genesis) as ledger:
        assert ledger.opened_from_snapshot and ledger.replayed_on_open == 0
        assert ledger.digest() == report.digest
        append_all(ledger, corpus.raws[2500:])
        assert ledger.digest() == corpus.digest
    with Ledger.open(db) as ledger:  # the genesis comes from the database
        assert ledger.opened_from_snapshot and ledger.replayed_on_open == 0
        assert ledger.digest() == corpus.digest
        assert ledger.verify().ok


def test_crash_replays_only_events_after_the_snapshot(tmp_path: Path, corpus: Corpus) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    with Ledger.open(a, corpus.genesis, snapshot_every=1000) as ledger:
        append_all(ledger, corpus.raws[:2500])  # snapshots after 1000 and 2000 events
        copy_db(a, b)
    with Ledger.open(b) as crashed:
        assert crashed.opened_from_snapshot
        assert crashed.replayed_on_open == 500
        assert crashed.digest() == digest_of(corpus.genesis, corpus.events[:2500])


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_snapshot_means_rebuild(tmp_path: Path, corpus: Corpus, damage: str) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, corpus.genesis) as ledger:
        append_all(ledger, corpus.raws[:1500])
        digest = ledger.digest()
    snap = Path(f"{db}.snapshot")
    data = snap.read_bytes()
    if damage == "truncate":
        snap.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        snap.write_bytes(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
    else:
        snap.write_bytes(b"not a snapshot")
    with Ledger.open(db) as ledger:
        assert not ledger.opened_from_snapshot
        assert ledger.replayed_on_open == 1500
        assert ledger.digest() == digest


def test_second_open_is_refused_while_the_first_holds_the_file(
    tmp_path: Path, corpus: Corpus
) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, corpus.genesis), pytest.raises(LedgerBusyError, match="in use"):
        Ledger.open(db, corpus.genesis)
    Ledger.open(db).close()  # released on close


def test_other_genesis_is_refused(tmp_path: Path, corpus: Corpus) -> None:
    db = tmp_path / "ledger.db"
    Ledger.open(db, corpus.genesis).close()
    other = Workload(seed=99).genesis
    with pytest.raises(WrongNetworkError, match="belongs to network"):
        Ledger.open(db, other)
    with pytest.raises(LedgerError, match="no genesis"):
        Ledger.open(tmp_path / "new.db")


# -- pending, forks, bad input -----------------------------------------------------------


def test_out_of_order_events_wait_durably_and_apply_later(tmp_path: Path, corpus: Corpus) -> None:
    db = tmp_path / "ledger.db"
    evs = corpus.events[:600]
    with Ledger.open(db, corpus.genesis) as ledger:
        append_all(ledger, [e.raw for e in evs[:300]])
        late = ledger.append([e.raw for e in reversed(evs[400:])])
        waiting = {r.id for r in late if r.status == "pending"}
        assert waiting and ledger.pending_count() == len(waiting)
    with Ledger.open(db) as ledger:
        assert ledger.pending_count() == len(waiting)
        assert set(ledger.replica.pending) == waiting
        assert ledger.get_raw(waiting).keys() == waiting  # pending events are served too
        results = ledger.append([e.raw for e in evs[300:400]])
        assert all(r.status == "applied" for r in results)
        assert {e.id for e in results.released} == waiting
        assert ledger.pending_count() == 0 and ledger.count() == 600
        assert ledger.digest() == digest_of(corpus.genesis, evs)
        assert ledger.verify().ok
    with Ledger.open(db) as ledger:
        assert ledger.pending_count() == 0 and ledger.digest() == digest_of(corpus.genesis, evs)


def test_the_pending_pool_is_bounded_and_drops_the_oldest(tmp_path: Path) -> None:
    w = Workload(seed=8, actors=2)
    cw = ChainWriter(w.keys[0], w.network)
    chain = [
        cw.sign("profile", {"name": f"v{i}", "bio": "", "skills": []}, 1_700_000_000_000 + i)
        for i in range(6)
    ]
    db = tmp_path / "ledger.db"
    with Ledger.open(db, w.genesis, max_pending=3) as ledger:
        # Each waits for its prev; e0 is missing, so all five wait.
        results = ledger.append([e.raw for e in chain[1:]])
        assert [r.status for r in results] == ["pending"] * 5
        assert set(ledger.replica.pending) == {e.id for e in chain[3:]}
        assert ledger.pending_dropped == 2
        assert ledger.append([chain[0].raw])[0].status == "applied"
        assert ledger.replica.heads[w.keys[0].public_key] == 1  # e1 was dropped: e3.. wait
        assert len(ledger.replica.pending) == 3
    with Ledger.open(db, max_pending=3) as ledger:
        assert set(ledger.replica.pending) == {e.id for e in chain[3:]}  # on disk too
        # The dropped ones come again (as sync would bring them): all apply.
        results = ledger.append([chain[1].raw, chain[2].raw])
        assert [r.status for r in results] == ["applied", "applied"]
        assert not ledger.replica.pending
        assert ledger.replica.heads[w.keys[0].public_key] == 6
        assert ledger.digest() == digest_of(w.genesis, chain)


def test_a_batch_that_releases_its_own_waiters_reports_them_applied(
    tmp_path: Path, corpus: Corpus
) -> None:
    with Ledger.open(tmp_path / "l.db", corpus.genesis) as ledger:
        results = ledger.append([e.raw for e in reversed(corpus.events[:200])])
        assert [r.status for r in results] == ["applied"] * 200
        assert results.released == [] and ledger.pending_count() == 0


def test_forks_and_bad_prev_events_survive_restart(tmp_path: Path) -> None:
    w = Workload(seed=5, actors=4)
    key = w.keys[0]
    cw = ChainWriter(key, w.network)
    t = 1_700_000_100_000
    e1 = cw.sign("profile", {"name": "a", "bio": "", "skills": []}, t)
    e2 = cw.sign("vouch", {"account": w.keys[1].public_key}, t + 1)
    e3 = cw.sign("vouch", {"account": w.keys[2].public_key}, t + 2)
    cw.resume(1, e1.id)
    e2b = cw.sign("vouch", {"account": w.keys[3].public_key}, t + 3)  # fork at seq 2
    cw.resume(4, e1.id)
    bad = cw.sign("profile", {"name": "b", "bio": "", "skills": []}, t + 4)  # prev is seq 1
    db = tmp_path / "ledger.db"
    with Ledger.open(db, w.genesis) as ledger:
        results = ledger.append([e1.raw, e2.raw, e3.raw, e2b.raw, bad.raw])
        assert [r.status for r in results] == ["applied"] * 4 + ["rejected"]
        assert results[3].void and results[3].code == "equivocation"
        assert results[4].code == "bad_prev"
        proofs = ledger.fork_proofs()
        assert len(proofs) == 1 and proofs[0].verify(w.network) == (key.public_key, 2)
        assert ledger.state.forks == {key.public_key: 2}
        assert len(ledger.events_range(key.public_key, 2, 10)) == 3  # both branches
        digest = ledger.digest()
        assert ledger.verify().ok
    with Ledger.open(db) as ledger:
        assert ledger.digest() == digest
        assert len(ledger.fork_proofs()) == 1
        assert ledger.append([bad.raw])[0].status == "rejected"
    con = sqlite3.connect(db)
    for sql in ("DELETE FROM fork_proofs", "DELETE FROM rejected", "UPDATE fork_proofs SET seq=1"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)
    con.close()
    Path(f"{db}.snapshot").unlink()
    with Ledger.open(db) as ledger:
        assert not ledger.opened_from_snapshot
        assert ledger.digest() == digest and ledger.verify().ok


def test_event_bytes_are_read_back_from_the_table(tmp_path: Path) -> None:
    """The replica keeps applied ids in memory and the bytes on disk; a fork found
    in a later append folds the state again from the table's bytes, also with
    events of the same append not yet committed."""
    w = Workload(seed=6, actors=4)
    cw = ChainWriter(w.keys[0], w.network)
    t = 1_700_000_100_000
    e1 = cw.sign("profile", {"name": "a", "bio": "", "skills": []}, t)
    e2 = cw.sign("vouch", {"account": w.keys[1].public_key}, t + 1)
    e3 = cw.sign("vouch", {"account": w.keys[2].public_key}, t + 2)
    cw.resume(1, e1.id)
    e2b = cw.sign("vouch", {"account": w.keys[3].public_key}, t + 3)
    other = ChainWriter(w.keys[1], w.network)
    o1 = other.sign("profile", {"name": "o", "bio": "", "skills": []}, t + 4)
    want = digest_of(w.genesis, [e1, e2, e3, o1, e2b])
    db = tmp_path / "ledger.db"
    with Ledger.open(db, w.genesis) as ledger:
        append_all(ledger, [e1.raw, e2.raw, e3.raw])
        raw_map = ledger.replica.raw
        assert isinstance(raw_map, _StoredRaw) and raw_map._fresh == {}
        assert [raw_map[e.id] for e in (e1, e2, e3)] == [e1.raw, e2.raw, e3.raw]
        results = ledger.append([o1.raw, e2b.raw])  # o1 uncommitted when e2b rebuilds
        assert [r.status for r in results] == ["applied", "applied"]
        assert ledger.state.forks == {w.keys[0].public_key: 2}
        assert ledger.digest() == want and raw_map._fresh == {}
        assert list(raw_map.values()) == [e.raw for e in (e1, e2, e3, o1, e2b)]
    with Ledger.open(db) as ledger:
        assert ledger.opened_from_snapshot and ledger.digest() == want
        assert ledger.replica.raw[e2b.id] == e2b.raw


def test_bad_input_never_raises(tmp_path: Path, corpus: Corpus) -> None:
    other = list(Workload(seed=8).events(3))
    junk = [b"", b"\x00" * 40, os.urandom(300), corpus.raws[0][:-1], other[0].raw]
    with Ledger.open(tmp_path / "l.db", corpus.genesis) as ledger:
        results = ledger.append([*junk, corpus.raws[0]])
        assert [r.status for r in results] == ["rejected"] * 5 + ["applied"]
        assert results[4].code == "wrong_network"
        assert all(r.reason for r in results[:5])
        assert ledger.append([corpus.raws[0]])[0].status == "duplicate"
        assert ledger.count() == 1


def test_every_flipped_byte_is_rejected_by_append(tmp_path: Path, corpus: Corpus) -> None:
    raw = corpus.raws[10]
    flipped = []
    for i in range(len(raw)):
        for mask in (0x01, 0xFF):
            b = bytearray(raw)
            b[i] ^= mask
            flipped.append(bytes(b))
    with Ledger.open(tmp_path / "l.db", corpus.genesis) as ledger:
        append_all(ledger, corpus.raws[:10])
        results = ledger.append(flipped)
        assert [r.status for r in results] == ["rejected"] * len(flipped)
        assert ledger.count() == 10 and ledger.pending_count() == 0


def test_every_flipped_stored_byte_is_detected_by_verify(tmp_path: Path, corpus: Corpus) -> None:
    db = tmp_path / "l.db"
    events = corpus.events[:12]
    target = min(range(len(events)), key=lambda i: len(events[i].raw))
    raw = events[target].raw
    with Ledger.open(db, corpus.genesis, verify_threads=1) as ledger:
        append_all(ledger, [e.raw for e in events])
        for i in each_bit_flipped(db, raw):
            assert not ledger.verify().ok, f"byte {i} flipped and not detected"
        assert ledger.verify().ok


# -- append-only in the database ---------------------------------------------------------


def test_events_are_append_only_in_the_database(tmp_path: Path, corpus: Corpus) -> None:
    db = tmp_path / "l.db"
    with Ledger.open(db, corpus.genesis) as ledger:
        append_all(ledger, corpus.raws[:20])
        ledger.append([corpus.raws[30]])  # likely pending: its deps are later
    con = sqlite3.connect(db)
    try:
        for sql in (
            "UPDATE events SET raw = x'00' WHERE idx = 1",
            "UPDATE events SET void_code = 'x'",
            "DELETE FROM events WHERE idx = 3",
            "DELETE FROM events",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(sql)
        con.execute("DELETE FROM pending")  # pending rows may leave (they move to events)
        con.rollback()
        assert con.execute("SELECT count(*) FROM events").fetchone() == (20,)
    finally:
        con.close()


# -- kill -9 -------------------------------------------------------------------------------


def test_events_from_peers_commit_without_a_flush_and_own_ones_with_one(tmp_path: Path) -> None:
    w = Workload(seed=11)
    evs = list(w.events(40))
    with Ledger.open(tmp_path / "l.db", w.genesis) as ledger:

        def level() -> int:  # PRAGMA synchronous of the kept connection: 1 NORMAL, 2 FULL
            return int(ledger._store._fast.execute("PRAGMA synchronous").fetchone()[0])

        assert all(r.status == "applied" for r in ledger.append_events(evs[:20], durable=False))
        assert level() == 1
        assert all(r.status == "applied" for r in ledger.append_events(evs[20:30]))
        assert level() == 2
        ledger.append([e.raw for e in evs[30:]])  # `append` (the API's raw events) is durable
        assert level() == 2 and ledger.count() == 40


@pytest.mark.parametrize("source", ["api", "peer"])
def test_acknowledged_events_survive_kill_9(tmp_path: Path, source: str) -> None:
    """Acknowledged events survive SIGKILL, both those stored durably (the
    node's own, its API's) and those from peers, committed without a disk flush
    (synchronous=NORMAL in WAL mode: only a power loss could take them)."""
    db = tmp_path / "ledger.db"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_kill_writer.py"), str(db), "11", "100000", source],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked: list[str] = []
    # Not a wait: a bound. If the writer hangs, killing it ends readline() with EOF.
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        while len(acked) < 600:  # wait on the condition: enough acknowledgements
            line = proc.stdout.readline()
            assert line, f"writer ended early (rc={proc.poll()})"
            acked.append(line.strip())
        proc.send_signal(signal.SIGKILL)
        # Lines already in the pipe were acknowledged before the kill: count them too.
        acked += [x.strip() for x in proc.stdout.read().splitlines() if x.strip() != "done"]
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    genesis = Workload(seed=11).genesis
    with Ledger.open(db, genesis) as ledger:
        report = ledger.verify()
        assert report.ok, report.problems
        ids = [bytes.fromhex(x) for x in acked]
        assert ledger.get_raw(ids).keys() == set(ids)
        assert ledger.count() >= len(ids)


# -- export / import -----------------------------------------------------------------------


def test_export_import_gives_the_same_digest(tmp_path: Path, corpus: Corpus) -> None:
    src = tmp_path / "a.db"
    out = tmp_path / "ledger.lmx"
    with Ledger.open(src, corpus.genesis) as ledger:
        append_all(ledger, corpus.raws[:2000])
        ledger.append(corpus.raws[2500:2600])  # some pending ones travel too
        summary = ledger.export(out)
        digest, pending = ledger.digest(), ledger.pending_count()
    assert summary.events == 2000 and summary.pending == pending > 0
    with Ledger.open(tmp_path / "b.db", corpus.genesis) as fresh:
        report = fresh.import_(out)
        assert report.applied == 2000 and report.pending == pending and report.rejected == 0
        assert fresh.digest() == digest and fresh.pending_count() == pending
        again = fresh.import_(out)  # idempotent
        assert again.duplicate == 2000 + pending and fresh.digest() == digest
        assert fresh.verify().ok


def test_import_refuses_another_network_and_damaged_files(tmp_path: Path, corpus: Corpus) -> None:
    out = tmp_path / "ledger.lmx"
    with Ledger.open(tmp_path / "a.db", corpus.genesis) as ledger:
        append_all(ledger, corpus.raws[:100])
        ledger.export(out)
    other = Workload(seed=42).genesis
    with Ledger.open(tmp_path / "b.db", other) as ledger:
        with pytest.raises(WrongNetworkError, match="is from network 'workload'"):
            ledger.import_(out)
        assert ledger.count() == 0
    data = out.read_bytes()
    cut = tmp_path / "cut.lmx"
    cut.write_bytes(data[:-40])
    not_export = tmp_path / "x.lmx"
    not_export.write_bytes(b"hello")
    with Ledger.open(tmp_path / "c.db", corpus.genesis) as ledger:
        with pytest.raises(LedgerError, match="truncated"):
            ledger.import_(cut)
        with pytest.raises(LedgerError, match="not a learnmesh ledger export"):
            ledger.import_(not_export)


# -- migrations ----------------------------------------------------------------------------

_V1_DDL = """
CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_ms BIGINT NOT NULL);
CREATE TABLE meta (key TEXT NOT NULL PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE events (idx INTEGER NOT NULL PRIMARY KEY, id BLOB NOT NULL UNIQUE,
    author BLOB NOT NULL, seq BIGINT NOT NULL, kind INTEGER NOT NULL,
    timestamp BIGINT NOT NULL, raw BLOB NOT NULL, void_code TEXT, void_reason TEXT);
CREATE INDEX events_author_seq ON events (author, seq);
CREATE TABLE pending (n INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE,
    raw BLOB NOT NULL);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events is append-only'); END;
INSERT INTO schema_version VALUES (1, 0);
"""


def test_a_version_1_database_opens_and_upgrades(tmp_path: Path, corpus: Corpus) -> None:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(_V1_DDL)
    g = corpus.genesis
    con.executemany(
        "INSERT INTO meta VALUES (?, ?)", [("genesis", g.encode()), ("network", g.network_id)]
    )
    evs = corpus.events[:300]
    con.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
        [
            (i + 1, e.id, e.author, e.seq, e.kind.code, e.timestamp, e.raw)
            for i, e in enumerate(evs)
        ],
    )
    con.execute(
        "INSERT INTO pending (id, raw) VALUES (?, ?)", (corpus.events[400].id, corpus.raws[400])
    )
    con.commit()
    con.close()
    with Ledger.open(db) as ledger:
        assert ledger.schema_version() == LATEST_VERSION > 1
        assert not ledger.opened_from_snapshot and ledger.replayed_on_open == 300
        assert ledger.count() == 300 and ledger.pending_count() == 1
        assert ledger.digest() == digest_of(g, evs)
        assert ledger.fork_proofs() == []
        append_all(ledger, corpus.raws[300:400])
        assert ledger.pending_count() == 0
        assert ledger.verify().ok


# -- sync queries --------------------------------------------------------------------------


def test_sync_queries(tmp_path: Path, corpus: Corpus) -> None:
    evs = corpus.events[:1000]
    with Ledger.open(tmp_path / "l.db", corpus.genesis) as ledger:
        append_all(ledger, [e.raw for e in evs])
        heads = ledger.heads()
        for author, (seq, eid) in heads.items():
            mine = [e for e in evs if e.author == author]
            assert seq == max(e.seq for e in mine)
            assert eid == next(e.id for e in mine if e.seq == seq)
            chain = ledger.events_range(author, 1, 10_000)
            assert chain == [e.raw for e in sorted(mine, key=lambda e: e.seq)]
            assert ledger.events_range(author, seq, 5) == [chain[-1]]
            page = ledger.events_by_author(author, limit=3, offset=1)
            assert [p.seq for p in page] == [2, 3, 4][: len(page)]
            for kind in {e.kind.name for e in mine}:
                of_kind = ledger.events_by_author(author, limit=10_000, kind=kind)
                assert [p.seq for p in of_kind] == [e.seq for e in mine if e.kind.name == kind]
                assert {p.kind for p in of_kind} == {kind}
            assert ledger.events_by_author(author, kind="no such kind") == []
        assert set(heads) == {e.author for e in evs}
        some = [evs[5].id, evs[700].id, hashlib.sha256(b"nope").digest()]
        assert ledger.get_raw(some) == {evs[5].id: evs[5].raw, evs[700].id: evs[700].raw}
        assert sum(ledger.counts_by_kind().values()) == ledger.count() == 1000
        feed = ledger.events_after(990)
        assert [f.id for f in feed] == [e.id for e in evs[990:]]
        seen: list[tuple[int, int]] = []
        ledger.verify(lambda done, total: seen.append((done, total)))
        assert seen[-1] == (1000, 1000)


# -- blobs ---------------------------------------------------------------------------------


def test_blob_store(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", max_bytes=1000)
    data = b"an attachment" * 10
    h = store.put(data)
    assert h == hashlib.sha256(data).digest() and store.has(h) and store.get(h) == data
    assert store.path(h).relative_to(tmp_path / "blobs").parts[:2] == (h.hex()[:2], h.hex()[2:4])
    assert store.put(data) == h  # idempotent
    with pytest.raises(BlobError, match="does not match"):
        store.put_expected(hashlib.sha256(b"other").digest(), data)
    with pytest.raises(BlobError, match="over the network's limit"):
        store.put(b"x" * 1001)
    other = b"fetched from a peer"
    h2 = hashlib.sha256(other).digest()
    store.put_expected(h2, other)
    assert store.get(h2) == other
    # A damaged file is an error, never wrong bytes; afterwards it can be fetched again.
    p = store.path(h)
    p.write_bytes(b"An attachment" * 10)
    with pytest.raises(BlobError, match="damaged"):
        store.get(h)
    assert not store.has(h)
    store.put_expected(h, data)
    assert store.get(h) == data
    with pytest.raises(BlobError, match="no blob"):
        store.get(hashlib.sha256(b"absent").digest())
    assert not list((tmp_path / "blobs").rglob(".tmp-*"))  # no temp files left behind
