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
    """Read once, kept in memory, written atomically on every change."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "blocklist.json"
        self._lock = threading.Lock()
        self._entries: dict[bytes, BlockEntry] = self._load()

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

    def is_blocked(self, account: bytes) -> bool:
        return account in self._entries

    def add(self, account: bytes, reason: str = "", at_ms: int = 0) -> bool:
        """Block `account`; False if it was already blocked."""
        if len(account) != 32:
            raise ValueError("an account is 32 bytes")
        with self._lock:
            if account in self._entries:
                return False
            if len(self._entries) >= MAX_BLOCKS:
                raise ValueError(f"the blocklist is full ({MAX_BLOCKS} accounts)")
            self._entries[account] = BlockEntry(account, reason[:MAX_REASON], at_ms)
            self._save()
            return True

    def remove(self, account: bytes) -> bool:
        """Unblock `account`; False if it was not blocked."""
        with self._lock:
            if self._entries.pop(account, None) is None:
                return False
            self._save()
            return True

    def entries(self) -> list[BlockEntry]:
        return sorted(self._entries.values(), key=lambda e: (e.at_ms, e.account))
