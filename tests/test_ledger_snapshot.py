"""Snapshots: plain data in canonical msgpack with a version, a network, a
checksum, and sums that tie it to the database's events. A round trip gives
the same state and the same behaviour afterwards; anything wrong with the file
means a full replay (logged), never a crash and never a wrong state."""

from __future__ import annotations

import hashlib
import logging
import shutil
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from learnmesh.ledger import Ledger
from learnmesh.ledger import _snapshot as snapmod
from learnmesh.ledger._snapshot import (
    MAGIC,
    SNAPSHOT_VERSION,
    from_plain,
    shape_problems,
    to_plain,
)
from learnmesh.protocol import (
    ChainWriter,
    Event,
    Genesis,
    KeyPair,
    Replica,
    canonical_pack,
    strict_unpack,
)
from learnmesh.protocol._workload import Workload

# -- a hostile history: valid work, forks, bad prevs, orphans ------------------------------


def _history(seed: int, n: int) -> tuple[Genesis, list[Event]]:
    """The workload's events plus a fork (with a follow-up on the new branch),
    an event whose prev is wrong, and a chain by an unfunded stranger."""
    w = Workload(seed=seed, actors=6)
    valid = list(w.events(n))
    extra: list[Event] = []
    by_author: dict[bytes, list[Event]] = {}
    for e in valid:
        by_author.setdefault(e.author, []).append(e)
    chains = sorted((c for c in by_author.values() if len(c) >= 3), key=len, reverse=True)
    keys = {k.public_key: k for k in w.keys}
    t = w.now + 1000
    if chains:
        c = chains[0]
        cw = ChainWriter(keys[c[0].author], w.network)
        cw.resume(c[0].seq, c[0].id)  # a second event at c[1]'s seq: a fork
        other = next(k.public_key for k in w.keys if k.public_key != c[0].author)
        extra.append(cw.sign("vouch", {"account": other}, t))
        extra.append(cw.sign("profile", {"name": "fork", "bio": "", "skills": []}, t + 1))
    if len(chains) > 1:
        c = chains[1]
        cw = ChainWriter(keys[c[0].author], w.network)
        cw.resume(c[-1].seq, c[0].id)  # seq after the head, prev far back: bad prev
        extra.append(cw.sign("profile", {"name": "bad", "bio": "", "skills": []}, t + 2))
    stranger = ChainWriter(KeyPair(hashlib.sha256(b"stranger%d" % seed).digest()), w.network)
    for i in range(3):
        extra.append(stranger.sign("vouch", {"account": w.keys[i].public_key}, t + 3 + i))
    return w.genesis, valid + extra


class _Bytes(dict[bytes, bytes]):
    """A raw map for `from_plain` outside a ledger: the ids it is given get
    their real bytes back (a ledger reads them from its table)."""

    def __init__(self, known: dict[bytes, bytes]) -> None:
        super().__init__()
        self.known = known

    def __setitem__(self, key: bytes, _value: bytes) -> None:
        super().__setitem__(key, self.known[key])


def _round_trip(rep: Replica, known: dict[bytes, bytes]) -> Replica:
    """Through the file format and back, then the pending events again (the
    ledger reads those from their table)."""
    data = snapmod.encode_snapshot(rep, len(rep.raw), len(rep.rejected))
    snap = snapmod.decode_snapshot(data, rep.network)
    slots = [(eid, *rep._slot[eid]) for eid in rep.raw]
    out = from_plain(snap.body, rep.genesis, slots, rep.rejected.items(), _Bytes(known))
    for ev in list(rep.pending.values()):
        out.add(ev)
    return out


def _same(a: Replica, b: Replica) -> None:
    assert b.digest() == a.digest()
    assert to_plain(b) == to_plain(a)
    assert set(b.pending) == set(a.pending)
    assert list(b.raw) == list(a.raw)
    assert b.heads == a.heads and b.proofs == a.proofs and b.rejected == a.rejected
    assert b.state.event_count == a.state.event_count


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(20, 120), data=st.data())
def test_a_round_trip_gives_the_same_state_and_behaviour(
    seed: int, n: int, data: st.DataObject
) -> None:
    genesis, events = _history(seed, n)
    known = {e.id: e.raw for e in events}
    order = [events[i] for i in data.draw(st.permutations(range(len(events))), label="order")]
    cut = data.draw(st.integers(0, len(order)), label="cut")
    never = Replica(genesis)  # never snapshotted
    for e in order[:cut]:
        never.add(e)
    restored = _round_trip(never, known)
    _same(never, restored)
    for e in order[cut:]:
        a, b = never.add(e), restored.add(e)
        assert (b.status, [x.id for x in b.applied], b.void, b.rejected) == (
            a.status,
            [x.id for x in a.applied],
            a.void,
            a.rejected,
        )
    _same(never, restored)
    again = _round_trip(restored, known)  # a snapshot of a restored replica too
    _same(never, again)


def test_the_state_shape_is_what_the_snapshot_knows() -> None:
    """A protocol change to Replica, State or their records fails here: teach
    _snapshot.py the new field and bump SNAPSHOT_VERSION."""
    assert shape_problems(Replica(Workload(seed=1).genesis)) == []


def test_a_changed_shape_is_never_written_nor_read(monkeypatch: pytest.MonkeyPatch) -> None:
    w = Workload(seed=2, actors=4)
    rep = Replica(w.genesis)
    for e in w.events(30):
        rep.add(e)
    data = snapmod.encode_snapshot(rep, len(rep.raw), 0)
    monkeypatch.setattr(snapmod, "_STATE_ATTRS", snapmod._STATE_ATTRS - {"credits"})
    with pytest.raises(snapmod.SnapshotError, match="changed shape"):
        snapmod.encode_snapshot(rep, len(rep.raw), 0)
    snap = snapmod.decode_snapshot(data, w.network)
    slots = [(eid, *rep._slot[eid]) for eid in rep.raw]
    with pytest.raises(snapmod.SnapshotError, match="changed shape"):
        from_plain(snap.body, w.genesis, slots, [], {})


def test_no_pickle_in_the_ledger() -> None:
    src = Path(snapmod.__file__).parent
    for path in sorted(src.glob("*.py")):
        text = path.read_text().lower()
        for word in ("pickle", "marshal", "shelve", "dill"):
            assert word not in text, f"{path.name} mentions {word}"


# -- in a ledger: damaged, foreign, old and borrowed snapshots --------------------------------


@pytest.fixture(scope="module")
def history() -> tuple[Genesis, list[Event]]:
    return _history(4, 1500)


def _fill(db: Path, genesis: Genesis, events: Iterable[Event]) -> Ledger:
    ledger = Ledger.open(db, genesis, verify_threads=1)
    evs = list(events)
    for i in range(0, len(evs), 300):
        ledger.append([e.raw for e in evs[i : i + 300]])
    return ledger


def _reseal(data: bytes, header: dict[str, Any] | None = None, body: bytes | None = None) -> bytes:
    """A snapshot with another header or body and a correct checksum."""
    at = len(MAGIC)
    (n,) = struct.unpack(">I", data[at : at + 4])
    h = strict_unpack(data[at + 4 : at + 4 + n], n)
    h.update(header or {})
    hb = canonical_pack(h)
    rest = body if body is not None else data[at + 4 + n : -32]
    out = MAGIC + struct.pack(">I", len(hb)) + hb + rest
    return out + hashlib.sha256(out).digest()


@pytest.fixture(scope="module")
def made(
    history: tuple[Genesis, list[Event]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One ledger closed with a snapshot; what it held."""
    genesis, events = history
    d = tmp_path_factory.mktemp("made")
    # One event held back: the events that need it wait (pending) in the snapshot's ledger.
    with _fill(d / "l.db", genesis, events[:700] + events[701:]) as ledger:
        assert ledger.pending_count() > 0
        digest, count, pending = ledger.digest(), ledger.count(), set(ledger.replica.pending)
        plain = to_plain(ledger.replica)
    with Ledger.open(d / "l.db") as again:
        assert again.opened_from_snapshot and again.replayed_on_open == 0
        assert again.digest() == digest and set(again.replica.pending) == pending
        assert to_plain(again.replica) == plain
    return {"dir": d, "digest": digest, "count": count, "pending": pending, "plain": plain}


def _damaged(
    made: dict[str, Any], tmp: Path, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Open a copy of the made ledger with `data` as its snapshot: full replay."""
    for name in ("l.db", "l.db-wal"):
        if (made["dir"] / name).exists():
            shutil.copy(made["dir"] / name, tmp / name)
    (tmp / "l.db.snapshot").write_bytes(data)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="learnmesh.ledger"):
        ledger = Ledger.open(tmp / "l.db", verify_threads=1)
    try:
        assert not ledger.opened_from_snapshot
        assert ledger.replayed_on_open == made["count"]
        assert ledger.digest() == made["digest"]
        assert set(ledger.replica.pending) == made["pending"]
        assert to_plain(ledger.replica) == made["plain"]
    finally:
        ledger.close()
    assert any("every event" in r.getMessage() for r in caplog.records), "no log line"


def _cases(good: bytes) -> list[tuple[str, bytes]]:
    at = len(MAGIC)
    cases = [("empty", b""), ("garbage", b"not a snapshot"), ("magic only", MAGIC)]
    for cut in (at + 2, at + 10, len(good) // 3, len(good) // 2, len(good) - 33, len(good) - 1):
        cases.append((f"truncated at {cut}", good[:cut]))
    for pos in (0, at + 1, at + 5, at + 30, len(good) // 2, len(good) - 40, len(good) - 1):
        b = bytearray(good)
        b[pos] ^= 0x40
        cases.append((f"flipped at {pos}", bytes(b)))
    cases.append(("old pickle format", b"learnmesh-snapshot\n" + good[at:]))
    cases.append(("older version", _reseal(good, {"v": SNAPSHOT_VERSION - 1})))
    cases.append(("newer version", _reseal(good, {"v": SNAPSHOT_VERSION + 1})))
    cases.append(("no version", _reseal(good, {"v": None})))
    cases.append(("ahead of the database", _reseal(good, {"applied": 10**9})))
    cases.append(("wrong body shape", _reseal(good, body=canonical_pack({"accounts": [[1]]}))))
    cases.append(("body not a map", _reseal(good, body=canonical_pack([1, 2]))))
    body = strict_unpack(good[at + 4 + struct.unpack(">I", good[at : at + 4])[0] : -32], 1 << 30)
    body["accounts"][0][1] = "a lot"
    cases.append(("a balance that is text", _reseal(good, body=canonical_pack(body))))
    return cases


def test_a_bad_snapshot_is_ignored_and_the_ledger_replays(
    made: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    good = (made["dir"] / "l.db.snapshot").read_bytes()
    for name, data in _cases(good):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                _damaged(made, Path(tmp), data, caplog)
            except AssertionError as exc:
                raise AssertionError(f"case {name!r}: {exc}") from exc


def test_another_networks_snapshot_is_ignored(
    made: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = Workload(seed=77, actors=4)
    with _fill(tmp_path / "other.db", w.genesis, w.events(50)):
        pass
    _damaged(made, tmp_path, (tmp_path / "other.db.snapshot").read_bytes(), caplog)


def test_a_snapshot_of_other_events_on_the_same_network_is_ignored(
    history: tuple[Genesis, list[Event]],
    made: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Same network, as many events, not the same ones: the id sums differ."""
    genesis, events = history
    cw = ChainWriter(KeyPair(hashlib.sha256(b"someone else").digest()), genesis.network_id)
    first = events[0].author
    theirs = [cw.sign("vouch", {"account": first}, 1_700_000_000_000 + i) for i in range(50)]
    with _fill(tmp_path / "other.db", genesis, theirs + events[:600]) as other:
        assert 600 < other.count() <= made["count"]  # not ahead: only the sums tell
    borrowed = (tmp_path / "other.db.snapshot").read_bytes()
    _damaged(made, tmp_path, borrowed, caplog)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(100, 400), data=st.data())
def test_a_ledger_opened_from_its_snapshot_behaves_as_a_full_replay(
    n: int, data: st.DataObject
) -> None:
    genesis, events = _history(9, n)
    order = [events[i] for i in data.draw(st.permutations(range(len(events))), label="order")]
    cut = data.draw(st.integers(1, len(order)), label="cut")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a.db", Path(tmp) / "b.db"
        with _fill(a, genesis, order[:cut]) as live:
            live.snapshot()
            live_plain = to_plain(live.replica)
        shutil.copy(a, b)  # closed: everything is in the main file
        with (
            Ledger.open(a, verify_threads=1) as snap,
            Ledger.open(b, snapshot_path=Path(tmp) / "none", verify_threads=1) as full,
        ):
            assert snap.opened_from_snapshot and not full.opened_from_snapshot
            assert to_plain(snap.replica) == live_plain
            # Which two events prove a fork, and which event claimed a slot first,
            # depend on arrival order (outside the digest): a full replay, in apply
            # order, may pick others. Everything else is the same.
            pa, pb = to_plain(snap.replica), to_plain(full.replica)
            assert {k for k in pa if pa[k] != pb[k]} <= {"claims", "proofs"}
            assert snap.replica.proofs.keys() == full.replica.proofs.keys()
            assert snap.digest() == full.digest()
            rest = [e.raw for e in order[cut:]]
            ra, rb = snap.append(rest), full.append(rest)
            assert list(ra) == list(rb)
            assert [e.id for e in ra.released] == [e.id for e in rb.released]
            assert snap.digest() == full.digest()
            pa, pb = to_plain(snap.replica), to_plain(full.replica)
            assert {k for k in pa if pa[k] != pb[k]} <= {"claims", "proofs"}
            never = Replica(genesis)
            for e in order:
                never.add(e)
            assert snap.digest() == never.digest()
            assert snap.verify().ok and full.verify().ok
