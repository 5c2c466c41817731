"""Opening a ledger replays its own events without a signature check per
event: the fold checks each chain's hash links and the last event of each
chain has its signature checked (PROTOCOL.md §10.1). A changed byte anywhere
in a chain is found that way, as `verify(full=True)` (every signature) finds
it; a ledger nobody touched opens and verifies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from learnmesh.ledger import Ledger
from learnmesh.ledger._errors import CorruptLedgerError
from learnmesh.protocol import ChainWriter
from learnmesh.protocol._workload import Workload

T0 = 1_700_000_100_000


def _ledger(tmp_path: Path) -> tuple[Path, list[list[bytes]], Workload]:
    """Three chains of five profiles each (a name per event), stored, no snapshot."""
    w = Workload(seed=5, actors=3)
    chains: list[list[bytes]] = []
    for a, k in enumerate(w.keys[:3]):
        cw = ChainWriter(k, w.network)
        chains.append(
            [
                cw.sign("profile", {"name": f"name-{a}-{i}", "bio": "", "skills": []}, T0 + i).raw
                for i in range(5)
            ]
        )
    db = tmp_path / "l.db"
    with Ledger.open(db, w.genesis) as ledger:
        for i in range(5):
            res = ledger.append([c[i] for c in chains])
            assert all(r.status == "applied" for r in res)
    Path(f"{db}.snapshot").unlink()
    return db, chains, w


def _tamper(db: Path, raw: bytes) -> None:
    """Change one character of the event's name in its stored bytes (it still
    decodes; its id column stays as it was)."""
    changed = raw.replace(b"name-", b"name+", 1)
    assert changed != raw and len(changed) == len(raw)
    con = sqlite3.connect(db)
    try:
        con.execute("DROP TRIGGER events_no_update")  # someone with the file can
        n = con.execute("UPDATE events SET raw = ? WHERE raw = ?", (changed, raw)).rowcount
        con.commit()
    finally:
        con.close()
    assert n == 1


def test_untouched_ledger_opens_by_full_replay_and_verifies_both_ways(tmp_path: Path) -> None:
    db, _, _ = _ledger(tmp_path)
    with Ledger.open(db) as ledger:
        assert not ledger.opened_from_snapshot and ledger.replayed_on_open == 15
        assert ledger.verify(full=False).ok
        assert ledger.verify(full=True).ok


@pytest.mark.parametrize("where", [0, 2], ids=["first", "middle"])
def test_a_changed_event_inside_a_chain_breaks_the_next_link(tmp_path: Path, where: int) -> None:
    db, chains, _ = _ledger(tmp_path)
    _tamper(db, chains[1][where])
    with pytest.raises(CorruptLedgerError, match="does not apply in order"):
        Ledger.open(db)


def test_a_changed_last_event_fails_its_signature_on_open_and_verify(tmp_path: Path) -> None:
    db, chains, _ = _ledger(tmp_path)
    _tamper(db, chains[2][4])
    with pytest.raises(CorruptLedgerError, match="the last of its chain, fails its signature"):
        Ledger.open(db)
    # With the snapshot (written by a good open before the change) the open
    # itself replays nothing; both verifies still find it.
    db2, chains2, _ = _ledger(tmp_path / "b")
    with Ledger.open(db2):
        pass  # writes the snapshot
    _tamper(db2, chains2[2][4])
    with Ledger.open(db2) as ledger:
        assert ledger.opened_from_snapshot
        quick, full = ledger.verify(full=False), ledger.verify(full=True)
    assert not quick.ok and any("signature" in p for p in quick.problems), quick.problems
    assert not full.ok and any("signature" in p for p in full.problems), full.problems
