"""Export and import of a whole ledger as one file (backup, or seeding a new node)."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from learnmesh.protocol import Genesis, ProtocolError, canonical_pack, strict_unpack

from ._decode import Decoder
from ._errors import LedgerError, WrongNetworkError
from ._replay import Record, Target, replay
from ._store import Store

# Format: a magic line, then frames of 4-byte big-endian length + canonical msgpack.
# Frame 1 is the header (format, version, network id, genesis bytes); then one frame
# per record: ["e", raw] applied events in apply order, ["r", raw] events kept as
# fork evidence, ["p", raw] pending events, ["f", first, second] fork proofs; the
# last frame is ["end", counts, sha256 of every byte before it]. Import verifies
# every event again (it is data from outside) and is idempotent.
__all__ = ["ExportSummary", "ImportReport", "export_ledger", "import_ledger", "read_header"]

MAGIC = b"learnmesh-ledger-export\n"
FORMAT = "learnmesh-ledger"
VERSION = 1
_MAX_FRAME = 4 << 20  # two events of at most 1 MiB each, with room to spare
_BATCH = 2000


@dataclass(slots=True)
class ExportSummary:
    path: Path
    events: int = 0
    rejected: int = 0
    pending: int = 0
    forks: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "events": self.events,
            "rejected": self.rejected,
            "pending": self.pending,
            "forks": self.forks,
            "bytes": self.bytes,
        }


@dataclass(slots=True)
class ImportReport:
    records: int = 0
    applied: int = 0
    duplicate: int = 0
    pending: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "applied": self.applied,
            "duplicate": self.duplicate,
            "pending": self.pending,
            "rejected": self.rejected,
            "problems": self.problems,
        }


class _Writer:
    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.h = hashlib.sha256(MAGIC)
        self.n = len(MAGIC)
        f.write(MAGIC)

    def frame(self, value: Any) -> None:
        data = canonical_pack(value)
        head = struct.pack(">I", len(data))
        self.f.write(head + data)
        self.h.update(head + data)
        self.n += 4 + len(data)


def export_ledger(store: Store, genesis: Genesis, path: str | os.PathLike[str]) -> ExportSummary:
    """Write the whole log to `path` atomically (temp file, then rename)."""
    dest = Path(path)
    out = ExportSummary(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            w = _Writer(f)
            w.frame(
                {
                    "format": FORMAT,
                    "v": VERSION,
                    "network": genesis.network_id,
                    "name": genesis.name,
                    "genesis": genesis.encode(),
                }
            )
            for row in store.stream_events():
                w.frame(["e", row[6]])
                out.events += 1
            for _n, _id, raw in store.stream_rejected():
                w.frame(["r", raw])
                out.rejected += 1
            for _n, _id, raw in store.stream_pending():
                w.frame(["p", raw])
                out.pending += 1
            for p in store.fork_proofs():
                w.frame(["f", p.first, p.second])
                out.forks += 1
            counts = {"e": out.events, "r": out.rejected, "p": out.pending, "f": out.forks}
            w.frame(["end", counts, w.h.digest()])
            f.flush()
            os.fsync(f.fileno())
            out.bytes = w.n
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LedgerError(f"cannot write {dest}: {exc.strerror}") from None
    return out


class _Reader:
    def __init__(self, f: IO[bytes], name: str) -> None:
        self.f = f
        self.name = name
        self.h = hashlib.sha256()
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            raise LedgerError(f"{name} is not a learnmesh ledger export")
        self.h.update(magic)

    def frame(self) -> Any | None:
        """The next frame's value, None at a clean end of file."""
        head = self.f.read(4)
        if not head:
            return None
        if len(head) < 4:
            raise LedgerError(f"{self.name} is truncated")
        (n,) = struct.unpack(">I", head)
        if n > _MAX_FRAME:
            raise LedgerError(f"{self.name} is damaged (a record claims {n} bytes)")
        data = self.f.read(n)
        if len(data) < n:
            raise LedgerError(f"{self.name} is truncated")
        digest_before = self.h.digest()
        self.h.update(head + data)
        try:
            value = strict_unpack(data, _MAX_FRAME)
        except ProtocolError as exc:
            raise LedgerError(f"{self.name} is damaged: {exc.reason}") from None
        if isinstance(value, list) and value and value[0] == "end":
            value.append(digest_before)  # the trailer's hash covers what came before it
        return value


def _header(r: _Reader) -> tuple[dict[str, Any], Genesis]:
    h = r.frame()
    if not isinstance(h, dict) or h.get("format") != FORMAT:
        raise LedgerError(f"{r.name} is not a learnmesh ledger export")
    if h.get("v") != VERSION:
        raise LedgerError(
            f"{r.name} is export version {h.get('v')!r}; this program reads {VERSION}"
        )
    try:
        g = Genesis.decode(h["genesis"])
    except (ProtocolError, KeyError, TypeError) as exc:
        raise LedgerError(f"{r.name} has a damaged genesis: {exc}") from None
    if g.network_id != h.get("network"):
        raise LedgerError(f"{r.name}: the network id does not match its genesis")
    return h, g


def read_header(path: str | os.PathLike[str]) -> Genesis:
    """The genesis of an export file (to show it, or join its network)."""
    try:
        with open(path, "rb") as f:
            return _header(_Reader(f, str(path)))[1]
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}") from None


_SECTIONS = {"e": "event", "r": "rejected", "p": "pending", "f": "proof"}


class _Records:
    """The records of an export file after its header, as replay records. A
    damaged or truncated file ends the stream and leaves its error in `error`,
    so everything read before it is still imported (then the error is raised)."""

    def __init__(self, r: _Reader) -> None:
        self.r = r
        self.count = 0
        self.error: LedgerError | None = None

    def __iter__(self) -> Iterator[Record]:
        try:
            yield from self._read()
        except LedgerError as exc:
            self.error = exc

    def _read(self) -> Iterator[Record]:
        name = self.r.name
        counts: dict[str, int] = {"e": 0, "r": 0, "p": 0, "f": 0}
        while True:
            v = self.r.frame()
            if v is None:
                raise LedgerError(
                    f"{name} is truncated (no end marker); the {self.count} records "
                    "read were verified and imported"
                )
            if not isinstance(v, list) or not v or v[0] not in ("e", "r", "p", "f", "end"):
                raise LedgerError(f"{name} is damaged (an unknown record)")
            tag = v[0]
            if tag == "end":
                if len(v) != 4 or v[1] != counts or v[2] != v[3]:
                    raise LedgerError(f"{name} is damaged: the end marker does not match")
                if self.r.f.read(1):
                    raise LedgerError(f"{name} has data after its end marker")
                return
            raws = v[1:]
            if len(raws) != (2 if tag == "f" else 1) or not all(isinstance(x, bytes) for x in raws):
                raise LedgerError(f"{name} is damaged (a malformed {_SECTIONS[tag]} record)")
            self.count += 1
            counts[tag] += 1
            yield Record(_SECTIONS[tag], self.count, *raws)


def import_ledger(
    target: Target, decoder: Decoder, genesis: Genesis, path: str | os.PathLike[str]
) -> ImportReport:
    """Verify and append everything in an export of the same network: the
    file's records are replayed (signatures checked) into `target`, a ledger
    that stores them. Fork proofs are their two events: the ledger finds and
    stores the fork again."""
    rep = ImportReport()
    name = str(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below; errors are mapped first)
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}") from None
    with f:
        r = _Reader(f, name)
        _, g = _header(r)
        if g.network_id != genesis.network_id:
            raise WrongNetworkError(
                f"{name} is from network {g.name!r} ({g.network_id.hex()[:16]}…), "
                f"not this ledger's {genesis.name!r} ({genesis.network_id.hex()[:16]}…)"
            )
        records = _Records(r)
        for o in replay(records, decoder, target, verify=True, batch=_BATCH):
            res = o.result
            if res.status == "applied":
                rep.applied += 1
            elif res.status == "duplicate":
                rep.duplicate += 1
            elif res.status == "pending":
                rep.pending += 1
            else:
                rep.rejected += 1
                if len(rep.problems) < 20:
                    rep.problems.append(f"{res.id.hex()[:12]}: {res.code}: {res.reason}")
        rep.records = records.count
        if records.error is not None:
            raise records.error
        return rep
