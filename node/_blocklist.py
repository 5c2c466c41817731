"""This node's own blocklist: accounts whose content the owner does not want to
see or relay. A node policy, kept in `blocklist.json` in the data directory; the
ledger still admits a blocked author's valid events (the state digest never
depends on one node's choices), but this node hides them and does not forward
them, and drops private messages from them."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_BLOCKS", "BlockEntry", "Blocklist"]

MAX_BLOCKS = 10_000
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class BlockEntry:
    account: bytes
    reason: str
    at_ms: int


class Blocklist:
    """Kept in memory, written atomically on every change, and read again when
    the file changed (another instance in this process, e.g. the messages
    module's, or the CLI's `block` through the API, changed it)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "blocklist.json"
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        self._entries: dict[bytes, BlockEntry] = self._load()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _fresh(self) -> dict[bytes, BlockEntry]:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            self._entries = self._load()
        return self._entries

    def _load(self) -> dict[bytes, BlockEntry]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        out: dict[bytes, BlockEntry] = {}
        if not isinstance(data, dict):
            return out
        for k, v in data.items():
            try:
                acct = bytes.fromhex(k)
            except ValueError:
                continue
            if len(acct) != 32 or not isinstance(v, dict):
                continue
            reason = v.get("reason", "")
            at = v.get("at_ms", 0)
            out[acct] = BlockEntry(
                acct,
                reason if isinstance(reason, str) else "",
                at if isinstance(at, int) else 0,
            )
        return out

    def _save(self) -> None:
        data = {
            e.account.hex(): {"reason": e.reason, "at_ms": e.at_ms} for e in self._entries.values()
        }
        tmp = self.path.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(json.dumps(data, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._stamp = self._file_stamp()

    def is_blocked(self, account: bytes) -> bool:
        return account in self._fresh()

    def get(self, account: bytes) -> BlockEntry | None:
        return self._fresh().get(account)

    def add(self, account: bytes, reason: str = "", at_ms: int = 0) -> bool:
        """Block `account`; False if it was already blocked."""
        if len(account) != 32:
            raise ValueError("an account is 32 bytes")
        with self._lock:
            if account in self._fresh():
                return False
            if len(self._entries) >= MAX_BLOCKS:
                raise ValueError(f"the blocklist is full ({MAX_BLOCKS} accounts)")
            self._entries[account] = BlockEntry(account, reason[:MAX_REASON], at_ms)
            self._save()
            return True

    def remove(self, account: bytes) -> bool:
        """Unblock `account`; False if it was not blocked."""
        with self._lock:
            if self._fresh().pop(account, None) is None:
                return False
            self._save()
            return True

    def entries(self) -> list[BlockEntry]:
        return sorted(self._fresh().values(), key=lambda e: (e.at_ms, e.account))
