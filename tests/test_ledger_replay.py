"""One replay for opening, verify and import: the three agree on hostile
histories (forks, bad prevs, waiting events, proofs whose evidence is gone)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from learnmesh.ledger import Ledger
from learnmesh.ledger._snapshot import to_plain
from learnmesh.protocol import ChainWriter, KeyPair, Replica
from learnmesh.protocol._workload import Workload
from test_ledger_snapshot import _history


def test_a_fork_proven_by_a_dropped_event_survives_open_verify_and_export(
    tmp_path: Path,
) -> None:
    """The only evidence of a fork is a waiting event that the bounded pool
    then drops: the stored proof alone must keep the fork in every replay
    (open from the snapshot, open in full, verify, import)."""
    w = Workload(seed=3, actors=4)
    k = w.keys[0]
    cw = ChainWriter(k, w.network)
    t = 1_700_000_100_000
    e1 = cw.sign("profile", {"name": "a", "bio": "", "skills": []}, t)
    e2 = cw.sign("vouch", {"account": w.keys[1].public_key}, t + 1)
    e3 = cw.sign("vouch", {"account": w.keys[2].public_key}, t + 2)
    cw.resume(2, hashlib.sha256(b"never seen").digest())
    f3 = cw.sign("vouch", {"account": w.keys[3].public_key}, t + 3)  # seq 3, waits forever
    stranger = ChainWriter(KeyPair(hashlib.sha256(b"orphan").digest()), w.network)
    stranger.resume(5, hashlib.sha256(b"also never seen").digest())
    orphan = stranger.sign("vouch", {"account": k.public_key}, t + 4)
    db = tmp_path / "l.db"
    with Ledger.open(db, w.genesis, max_pending=1) as ledger:
        ledger.append([e1.raw, e2.raw, e3.raw])
        res = ledger.append([f3.raw])
        assert res[0].status == "pending" and len(res.forks) == 1
        assert ledger.state.forks == {k.public_key: 3}
        assert ledger.append([orphan.raw])[0].status == "pending"
        assert set(ledger.replica.pending) == {orphan.id}  # f3 was dropped
        assert ledger.pending_raws() == [orphan.raw]
        digest = ledger.digest()
        report = ledger.verify()
        assert report.ok, report.problems
        assert report.forks == 1 and report.digest == digest
        ledger.export(tmp_path / "x.lmx")
    with Ledger.open(db) as again:
        assert again.opened_from_snapshot
        assert again.digest() == digest and again.state.forks == {k.public_key: 3}
    Path(f"{db}.snapshot").unlink()
    with Ledger.open(db) as full:
        assert not full.opened_from_snapshot
        assert full.digest() == digest and full.state.forks == {k.public_key: 3}
        assert full.verify().ok
    with Ledger.open(tmp_path / "m.db", w.genesis) as fresh:
        fresh.import_(tmp_path / "x.lmx")
        assert fresh.digest() == digest and fresh.state.forks == {k.public_key: 3}
        assert fresh.verify().ok


def test_open_verify_and_import_agree_on_a_hostile_history(tmp_path: Path) -> None:
    genesis, events = _history(11, 600)
    held = events[:250] + events[251:]  # what needs events[250] waits
    with Ledger.open(tmp_path / "a.db", genesis, verify_threads=2) as a:
        for i in range(0, len(held), 97):
            a.append([e.raw for e in held[i : i + 97]])
        assert a.pending_count() > 0 and a.state.forks and a.rejected_raws()
        report = a.verify()
        assert report.ok, report.problems
        assert report.rejected == len(a.rejected_raws()) and report.pending == a.pending_count()
        digest, plain = a.digest(), to_plain(a.replica)
        a.export(tmp_path / "a.lmx")
    with Ledger.open(tmp_path / "a.db") as again:
        assert again.opened_from_snapshot and to_plain(again.replica) == plain
    with Ledger.open(tmp_path / "b.db", genesis) as b:
        rep = b.import_(tmp_path / "a.lmx")
        assert rep.rejected == len(a.rejected_raws())
        assert b.digest() == digest and b.state.forks == again.state.forks
        assert b.verify().ok
        b.append([events[250].raw])
        never = Replica(genesis)
        for e in events:
            never.add(e)
        assert b.digest() == never.digest() and b.pending_count() == 0
