"""Content-addressed blob files (attachments): named by sha256, checked both ways."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ._errors import BlobError

# Layout: <dir>/ab/cd/abcd…(64 hex). Writes are atomic (temp file, fsync, rename),
# so a reader never sees half a blob; reads re-hash, so a damaged file is an error,
# never wrong content handed to a peer.
__all__ = ["BlobStore"]


class BlobStore:
    def __init__(self, root: str | os.PathLike[str], max_bytes: int = 8 * 1024 * 1024) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, h: bytes) -> Path:
        if not isinstance(h, bytes) or len(h) != 32:
            raise BlobError("a blob hash is 32 bytes")
        x = h.hex()
        return self.root / x[:2] / x[2:4] / x

    def has(self, h: bytes) -> bool:
        try:
            return self.path(h).is_file()
        except BlobError:
            return False

    def put(self, data: bytes) -> bytes:
        """Store `data`; returns its sha256."""
        self._check_size(len(data))
        h = hashlib.sha256(data).digest()
        self._write(h, data)
        return h

    def put_expected(self, h: bytes, data: bytes) -> None:
        """Store bytes fetched for hash `h`, refusing them unless they hash to it."""
        self._check_size(len(data))
        if hashlib.sha256(data).digest() != h:
            raise BlobError(f"blob content does not match its hash {h.hex()[:16]}…")
        self._write(h, data)

    def get(self, h: bytes) -> bytes:
        """The blob's bytes, checked against the hash. A damaged file is moved
        aside (so `has` is False and it can be fetched again) and raises."""
        p = self.path(h)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise BlobError(f"no blob {h.hex()[:16]}…") from None
        if hashlib.sha256(data).digest() != h:
            os.replace(p, p.with_name(p.name + ".corrupt"))
            raise BlobError(f"blob {h.hex()[:16]}… is damaged on disk (moved aside)")
        return data

    def size(self, h: bytes) -> int:
        try:
            return self.path(h).stat().st_size
        except FileNotFoundError:
            raise BlobError(f"no blob {h.hex()[:16]}…") from None

    def _check_size(self, n: int) -> None:
        if n > self.max_bytes:
            raise BlobError(f"a blob of {n} bytes is over the network's limit of {self.max_bytes}")

    def _write(self, h: bytes, data: bytes) -> None:
        p = self.path(h)
        try:
            if hashlib.sha256(p.read_bytes()).digest() == h:
                return  # already here and intact: content addressing makes this a no-op
        except FileNotFoundError:
            pass
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
