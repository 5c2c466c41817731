"""Tampering with a ledger's file the way someone holding it could: for tests
that the ledger's verify finds it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path


def each_bit_flipped(db: Path, raw: bytes) -> Iterator[int]:
    """Change the stored event `raw` in the file one byte at a time (its
    lowest bit), committed: yields the byte's index while the file holds that
    change, and puts the original bytes back before the next."""
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER IF EXISTS events_no_update")
    try:
        for i in range(len(raw)):
            b = bytearray(raw)
            b[i] ^= 0x01
            changed = bytes(b)
            assert (
                con.execute("UPDATE events SET raw = ? WHERE raw = ?", (changed, raw)).rowcount == 1
            )
            con.commit()
            yield i
            con.execute("UPDATE events SET raw = ? WHERE raw = ?", (raw, changed))
            con.commit()
    finally:
        con.close()
