"""Snapshots of the derived state, so a restart does not replay every event."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pickle
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from learnmesh.protocol import Replica

# A snapshot is a local cache this node wrote itself (a pickle of its Replica),
# never data from a peer: loading a pickle runs code, so it is read only from the
# node's own data directory, and only if its checksum and the fingerprint of the
# protocol code that wrote it match. Anything wrong and the ledger rebuilds from
# its events instead. (Whoever can write the data directory can also replace the
# identity key: the pickle gives no attacker anything new.)
__all__ = ["Snapshot", "protocol_fingerprint", "read_snapshot", "write_snapshot"]

log = logging.getLogger(__name__)

_MAGIC = b"learnmesh-snapshot\n"
_FORMAT = 1


@functools.cache
def protocol_fingerprint() -> str:
    """Hash of the protocol package's source: a snapshot folded by other rules
    (or other class layouts) must not be trusted."""
    h = hashlib.sha256(f"snapshot-format-{_FORMAT}".encode())
    pkg = resources.files("learnmesh.protocol")
    for entry in sorted(pkg.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            h.update(entry.name.encode() + b"\x00" + entry.read_bytes())
    return h.hexdigest()


@dataclass(slots=True)
class Snapshot:
    replica: Replica  # without `raw` (the events are in the database) and with pending
    applied: int  # events with idx <= applied are folded in
    rejected: int  # rejected rows with n <= rejected are known to the replica


def write_snapshot(path: Path, replica: Replica, applied: int, rejected: int) -> None:
    """Write atomically (temp file, fsync, rename): a crash leaves the old one."""
    # A shallow copy without `raw` (the bytes are in the events table: not stored
    # twice); the live replica is not touched, so readers in other threads are safe.
    clone = object.__new__(Replica)
    clone.__dict__.update(replica.__dict__)
    clone.raw = {}
    payload = pickle.dumps(clone, protocol=pickle.HIGHEST_PROTOCOL)
    header = json.dumps(
        {
            "format": _FORMAT,
            "fingerprint": protocol_fingerprint(),
            "network": replica.network.hex(),
            "applied": applied,
            "rejected": rejected,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
    ).encode()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(_MAGIC + struct.pack(">I", len(header)) + header)
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_snapshot(path: Path, network: bytes) -> Snapshot | None:
    """The snapshot, or None (logged) if it is missing, stale or damaged."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("snapshot %s unreadable (%s): rebuilding from events", path, exc)
        return None
    try:
        if not data.startswith(_MAGIC):
            raise ValueError("bad magic")
        at = len(_MAGIC)
        (n,) = struct.unpack(">I", data[at : at + 4])
        header = json.loads(data[at + 4 : at + 4 + n])
        payload = data[at + 4 + n :]
        if header["format"] != _FORMAT or header["fingerprint"] != protocol_fingerprint():
            raise ValueError("written by another version of the protocol code")
        if header["network"] != network.hex():
            raise ValueError("belongs to another network")
        if hashlib.sha256(payload).hexdigest() != header["sha256"]:
            raise ValueError("checksum mismatch")
        replica = pickle.loads(payload)
        if not isinstance(replica, Replica) or replica.network != network:
            raise ValueError("does not hold a replica of this network")
        return Snapshot(replica, int(header["applied"]), int(header["rejected"]))
    except Exception as exc:  # any damage at all means: rebuild
        log.warning("snapshot %s not usable (%s): rebuilding from events", path, exc)
        return None
