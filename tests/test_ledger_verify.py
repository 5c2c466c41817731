"""`Ledger.verify(full=True)` (what `ledger verify` runs) checks every
signature in a pass of its own over the stored bytes, on every verify thread,
then folds everything again without a signature check (PROTOCOL.md §10.1).
These tests change stored bytes in real SQLite files and check that each kind
of damage is found, once, with one thread and with two; and that the
signature check read at fixed places agrees with the full decoder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _tamper import each_bit_flipped
from learnmesh.ledger import Ledger
from learnmesh.protocol import (
    ChainWriter,
    RemoteProtocolError,
    check_signature,
    decode_event,
)
from learnmesh.protocol._workload import Workload

T0 = 1_700_000_100_000
BAD_SIG = "fails verification: signature does not match the author's key"


def _profile(cw: ChainWriter, a: int, i: int) -> bytes:
    return cw.sign("profile", {"name": f"name-{a}-{i}", "bio": "", "skills": []}, T0 + i).raw


def _ledger(tmp_path: Path) -> tuple[Path, list[list[bytes]], Workload]:
    """Three chains of five profiles each, stored in chain-interleaved order
    (so chain a's event i has apply index 3 * i + a + 1)."""
    w = Workload(seed=5, actors=4)
    chains = []
    for a, k in enumerate(w.keys[:3]):
        cw = ChainWriter(k, w.network)
        chains.append([_profile(cw, a, i) for i in range(5)])
    db = tmp_path / "l.db"
    with Ledger.open(db, w.genesis) as ledger:
        for i in range(5):
            assert all(r.status == "applied" for r in ledger.append([c[i] for c in chains]))
    return db, chains, w


def _replace(db: Path, table: str, old: bytes, new: bytes) -> None:
    con = sqlite3.connect(db)
    try:
        con.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")  # someone with the file can
        n = con.execute(f"UPDATE {table} SET raw = ? WHERE raw = ?", (new, old)).rowcount
        con.commit()
    finally:
        con.close()
    assert n == 1


def _flip_signature(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 0x01])


def _verify(db: Path, threads: int) -> list[str]:
    with Ledger.open(db, verify_threads=threads) as ledger:  # from its snapshot
        assert ledger.opened_from_snapshot
        report = ledger.verify(full=True)
    assert report.ok == (not report.problems)
    assert 0 < report.signature_seconds <= report.seconds
    return report.problems


@pytest.mark.parametrize("threads", [1, 2])
def test_untouched_ledger_verifies_with_a_signature_pass(tmp_path: Path, threads: int) -> None:
    db, _, _ = _ledger(tmp_path)
    with Ledger.open(db, verify_threads=threads) as ledger:
        report = ledger.verify(full=True)
        quick = ledger.verify(full=False)
    assert report.ok and quick.ok, (report.problems, quick.problems)
    assert report.events == quick.events == 15 and report.digest == quick.digest
    assert report.signature_seconds > 0 and quick.signature_seconds == 0
    js = report.to_json()
    assert js["signature_seconds"] + js["fold_seconds"] == pytest.approx(js["seconds"], abs=0.01)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_changed_signature_is_found_once_by_the_signature_pass(
    tmp_path: Path, threads: int
) -> None:
    """The last event of chain 1 (nothing links to it): the signature pass
    says so first, and once (the fold adds that its id and so the digest
    changed, which is true of any changed byte)."""
    db, chains, _ = _ledger(tmp_path)
    raw = chains[1][4]
    _replace(db, "events", raw, _flip_signature(raw))
    problems = _verify(db, threads)
    assert problems[0].startswith("event #14 (") and problems[0].endswith(BAD_SIG), problems
    assert sum("signature" in p for p in problems) == 1, problems
    assert problems[1:] == [
        f"event #14: stored id {problems[0][11:23]} is not the hash of its bytes",
        problems[2],
    ] and problems[2].startswith("replayed digest "), problems


@pytest.mark.parametrize("threads", [1, 2])
def test_a_validly_signed_replacement_breaks_the_hash_link(tmp_path: Path, threads: int) -> None:
    """Chain 0's third event swapped for another event its author signed at the
    same seq: every signature holds, so the signature pass is clean; the
    stored id no longer hashes the bytes and the next event's prev link breaks."""
    db, chains, w = _ledger(tmp_path)
    cw = ChainWriter(w.keys[0], w.network)
    cw.resume(2, decode_event(chains[0][1], 1 << 20, w.network).id)
    other = cw.sign("profile", {"name": "someone-else", "bio": "", "skills": []}, T0 + 2).raw
    _replace(db, "events", chains[0][2], other)
    problems = _verify(db, threads)
    assert not any("signature" in p for p in problems), problems
    assert any(p.startswith("event #7: stored id") for p in problems), problems
    assert any(p.startswith("event #10 (") and "does not apply in order" in p for p in problems)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_signature_pass_reads_pending_and_rejected_rows(tmp_path: Path, threads: int) -> None:
    db, chains, w = _ledger(tmp_path)
    cw = ChainWriter(w.keys[3], w.network)
    _profile(cw, 3, 0)  # never stored
    waiting = _profile(cw, 3, 1)  # its prev never arrives: pending
    bad = ChainWriter(w.keys[0], w.network)
    bad.resume(5, decode_event(chains[1][4], 1 << 20, w.network).id)  # another chain's id
    kept = _profile(bad, 0, 5)  # refused for its prev and kept as fork evidence
    with Ledger.open(db) as ledger:
        assert [r.status for r in ledger.append([waiting, kept])] == ["pending", "rejected"]
    assert _verify(db, threads) == []
    _replace(db, "pending", waiting, _flip_signature(waiting))
    _replace(db, "rejected", kept, _flip_signature(kept))
    problems = _verify(db, threads)
    assert [p for p in problems if "signature" in p] == [
        p for p in problems if p.startswith(("rejected row 1 (", "pending row 1 ("))
    ]
    assert len(problems) == 2 and all(p.endswith(BAD_SIG) for p in problems), problems


def test_every_flipped_byte_of_a_stored_event_is_found_on_two_threads(tmp_path: Path) -> None:
    """Each single-bit change of one stored event (chain 2's middle one) makes
    the full verify fail, on the parallel path."""
    db, chains, _ = _ledger(tmp_path)
    raw = chains[2][2]
    with Ledger.open(db, verify_threads=2) as ledger:
        for i in each_bit_flipped(db, raw):
            assert not ledger.verify(full=True).ok, f"byte {i} flipped and not detected"
        assert ledger.verify(full=True).ok


def test_fixed_place_signature_check_agrees_with_the_decoder() -> None:
    """For every single-bit change of some events: when the strict decoder
    accepts the bytes without the signature, `check_signature` says what the
    decoder's own signature check says; bytes not laid out as an event give
    None or fail to decode."""
    w = Workload(seed=3)
    net = w.network
    evs = list(w.events(40))
    for ev in evs[::8]:
        assert check_signature(ev.raw) is True
        for i in range(len(ev.raw)):
            b = bytearray(ev.raw)
            b[i] ^= 0x01
            raw = bytes(b)
            try:
                decode_event(raw, 1 << 20, net, verify=False)
            except RemoteProtocolError:
                continue  # not an event: the fold's decode refuses it
            try:
                decode_event(raw, 1 << 20, net, verify=True)
                signed = True
            except RemoteProtocolError as exc:
                assert exc.code == "bad_signature"
                signed = False
            assert check_signature(raw) is signed, i
    assert check_signature(b"") is None and check_signature(b"\x9a" * 200) is None
