"""The web page's login and the API's request guards, kept in the node's memory.

- `LoginCodes`: `learnmesh web` (bearer token) asks for a one-time code, valid
  `LOGIN_TTL_S` seconds and usable once; the page trades it for a session.
- `Sessions`: random session ids held in an HttpOnly, SameSite=Strict cookie.
  A node restart forgets them all (the page asks for a new link).
- `Idempotency`: the first answer to a creating request, kept per principal
  (token or session) and `Idempotency-Key` for `IDEMPOTENCY_TTL_S` seconds, so
  a repeat (a double click, a retry) replays it instead of authoring again. A
  repeat that arrives while the first is still running waits for its answer.
- `host_allowed` / `origin_allowed`: the DNS-rebinding and cross-site checks.

Times come from a clock passed in (the node's), so tests can move it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

__all__ = [
    "IDEMPOTENCY_TTL_S",
    "LOGIN_TTL_S",
    "Idempotency",
    "LoginCodes",
    "Sessions",
    "host_allowed",
    "origin_allowed",
]

LOGIN_TTL_S = 120.0
IDEMPOTENCY_TTL_S = 600.0
MAX_KEY_LEN = 64
_MAX_CODES = 64
_MAX_SESSIONS = 256
_MAX_IDEMPOTENT = 10_000

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _h(secret: str) -> bytes:
    """Secrets are kept and looked up by their hash: a dict lookup then leaks
    nothing useful through its timing, and any text (even non-ASCII) is safe."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _split_host(value: str) -> tuple[str, str | None]:
    """`host[:port]` (IPv6 in brackets) -> (host, port or None)."""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        host, rest = value[: end + 1], value[end + 1 :]
        if not rest:
            return host, None
        return (host, rest[1:]) if rest.startswith(":") else (value, None)
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, port
    return value, None


def host_allowed(host_header: str | None) -> bool:
    """A loopback Host (with or without a port): anything else may be a DNS
    rebinding page that learned to talk to 127.0.0.1 under its own name."""
    if not host_header:
        return False
    host, port = _split_host(host_header.strip().lower())
    if host not in _LOOPBACK_NAMES:
        return False
    return port is None or (port.isdigit() and 0 < int(port) < 65536)


def origin_allowed(origin: str, port: int | None) -> bool:
    """The page's own origin only: http://127.0.0.1|localhost|[::1]:<our port>."""
    if port is None:
        return False
    return origin.strip().lower() in {f"http://{h}:{port}" for h in _LOOPBACK_NAMES}


class LoginCodes:
    """One-time login codes: each valid `ttl` seconds, usable once."""

    def __init__(self, clock: Callable[[], float], ttl: float = LOGIN_TTL_S) -> None:
        self._clock = clock
        self._ttl = ttl
        self._codes: OrderedDict[bytes, float] = OrderedDict()  # hash of code -> expiry

    def issue(self) -> str:
        self._prune()
        code = secrets.token_urlsafe(24)
        self._codes[_h(code)] = self._clock() + self._ttl
        while len(self._codes) > _MAX_CODES:
            self._codes.popitem(last=False)
        return code

    def redeem(self, code: str) -> bool:
        """True once for a code issued less than `ttl` ago; False ever after."""
        self._prune()
        return self._codes.pop(_h(code), None) is not None  # the pop makes it once-only

    def _prune(self) -> None:
        now = self._clock()
        for c in [c for c, exp in self._codes.items() if exp <= now]:
            del self._codes[c]


class Sessions:
    """Session ids of logged-in pages (in memory: a restart logs everyone out)."""

    def __init__(self) -> None:
        self._ids: OrderedDict[bytes, None] = OrderedDict()  # hashes of session ids

    def create(self) -> str:
        sid = secrets.token_urlsafe(32)
        self._ids[_h(sid)] = None
        while len(self._ids) > _MAX_SESSIONS:
            self._ids.popitem(last=False)
        return sid

    def valid(self, sid: str | None) -> bool:
        return bool(sid) and _h(sid or "") in self._ids

    def end(self, sid: str | None) -> None:
        if sid:
            self._ids.pop(_h(sid), None)

    def __len__(self) -> int:
        return len(self._ids)


@dataclass
class _Entry:
    fingerprint: bytes
    expires: float
    done: trio.Event = field(default_factory=trio.Event)
    answer: tuple[int, bytes, str] | None = None  # status, body, media type


class Idempotency:
    """First answers to creating requests, per (principal, key)."""

    def __init__(self, clock: Callable[[], float], ttl: float = IDEMPOTENCY_TTL_S) -> None:
        self._clock = clock
        self._ttl = ttl
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> bytes:
        return hashlib.sha256(method.encode() + b" " + path.encode() + b"\x00" + body).digest()

    def begin(self, principal: str, key: str, fingerprint: bytes) -> tuple[bool, _Entry]:
        """(True, entry) when this request runs (the caller must `finish` or
        `abandon` it); (False, entry) when an earlier one with this key exists."""
        self._prune()
        k = (principal, key)
        e = self._entries.get(k)
        if e is not None:
            return False, e
        e = _Entry(fingerprint, self._clock() + self._ttl)
        self._entries[k] = e
        while len(self._entries) > _MAX_IDEMPOTENT:
            self._entries.popitem(last=False)
        return True, e

    def finish(self, principal: str, key: str, e: _Entry, answer: tuple[int, bytes, str]) -> None:
        e.answer = answer
        e.done.set()

    def abandon(self, principal: str, key: str, e: _Entry) -> None:
        """The first request failed without authoring: a repeat may run again."""
        if self._entries.get((principal, key)) is e:
            del self._entries[(principal, key)]
        e.done.set()

    def _prune(self) -> None:
        now = self._clock()
        while self._entries:
            k, e = next(iter(self._entries.items()))
            if e.expires > now or not e.done.is_set():
                break
            del self._entries[k]
