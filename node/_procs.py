"""Local `learnmesh node start` processes: the one harness that the devnet, the
benchmarks and the tests share.

`NodeProcess` owns one node process on one data directory:

- `spawn()` runs `learnmesh --data DIR node start …` in its own process group
  (so a signal reaches all of it and nothing is left behind), stdout and stderr
  appended to `logs/stdout.log` in the data directory. `admin=True` passes
  `--admin`: the `/api/admin/*` routes (connect, partition, heal, sync, clock) exist only
  on such a node; devnets and tests pass it, a node people use never does.
- `check_ready()` looks once for `node.json` written by this very process (the
  node writes it when it listens and serves its API) and reads its peer id,
  addresses and API address; `wait_ready()` polls that with a bound.
- `request()` / `call()` talk to the node's API with its token (`api.token`).
- `terminate()` sends SIGTERM (SIGCONT first, in case it is paused) and waits,
  SIGKILL past the grace; `kill()` sends SIGKILL; `log_tail()` is for failure
  messages.
- `advance_clock(ms)` moves the node's wall clock forward (`POST /api/admin/clock`
  on a running --admin node; the offset file in its data directory, node/_clock.py,
  for one that is down, so it starts with it); `advance_clocks(nodes, ms)` moves
  every node of a network together, as the network's clock skew rule needs.

The harness knows a node only as a process, files in its data directory and an
HTTP endpoint, as any user of the CLI would. It lives beside the node (and not in
the devnet package) because `learnmesh bench gossip` uses it too: nothing in the
node package depends on the devnet.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx

from ._clock import advance_offset_file, check_advance

# advance_clocks' largest step: half the default network clock skew (10 minutes)
CLOCK_STEP_MS = 5 * 60 * 1000

__all__ = [
    "HarnessError",
    "NodeApiError",
    "NodeExited",
    "NodeProcess",
    "advance_clocks",
    "learnmesh_argv",
    "node_start_argv",
]


class HarnessError(Exception):
    """A node process could not be started, did not get ready, or would not stop."""


class NodeExited(HarnessError):
    """The node process exited while it was expected to start or run."""


class NodeApiError(Exception):
    """A node's API answered 4xx/5xx, or did not answer (status 0)."""

    def __init__(self, node: str, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{node}: {method} {path} -> {status}: {body}")
        self.status = status
        self.body = body
        self.code = body.get("error") if isinstance(body, dict) else None


def learnmesh_argv() -> list[str]:
    """How to run the `learnmesh` command from this interpreter, whatever PATH says.
    LEARNMESH_NODE_CMD (or LEARNMESH_DEVNET_CMD, its older name) overrides it, e.g.
    to run another build of the node."""
    override = os.environ.get("LEARNMESH_NODE_CMD") or os.environ.get("LEARNMESH_DEVNET_CMD")
    if override:
        return shlex.split(override)
    return [sys.executable, "-m", "learnmesh.node.cli"]


def node_start_argv(
    data: Path,
    *,
    bootstrap: Sequence[str] = (),
    listen_port: int = 0,
    api_port: int = 0,
    log_level: str = "info",
    admin: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line that starts a node on `data`, listening on 127.0.0.1."""
    argv = [
        *learnmesh_argv(),
        "--data",
        str(data),
        "node",
        "start",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(listen_port),
        "--api-port",
        str(api_port),
        "--log-level",
        log_level,
    ]
    if admin:
        argv.append("--admin")
    for b in bootstrap:
        argv += ["--bootstrap", b]
    return argv + list(extra)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class NodeProcess:
    """One node's data directory and, once spawned, its process and API.

    Subclasses (the devnet's `NodeProc`, the tests' `Node`) add what they need;
    `api_error` is the exception `call()` raises, a subclass of `NodeApiError`."""

    api_error: ClassVar[type[NodeApiError]] = NodeApiError
    # One HTTP client per thread (the devnet calls many nodes from a thread pool),
    # or one for all threads (tests that keep a session cookie across calls).
    client_per_thread: ClassVar[bool] = True
    api_timeout: ClassVar[httpx.Timeout] = httpx.Timeout(30.0, connect=5.0)

    data: Path
    name: str
    proc: subprocess.Popen[bytes] | None
    pid: int
    peer_id: str
    addrs: list[str]
    api: str
    token: str
    account: str

    def __init__(self, data: Path, name: str = "") -> None:
        self.data = data
        self.name = name or data.name
        self.proc = None
        self.pid = 0
        self.peer_id = ""
        self.addrs = []
        self.api = ""
        self.token = ""
        self.account = ""

    # -- process -------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.data / "logs" / "stdout.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(
        self,
        *,
        bootstrap: Sequence[str] = (),
        listen_port: int = 0,
        api_port: int = 0,
        log_level: str = "info",
        admin: bool = False,
        extra: Sequence[str] = (),
    ) -> None:
        """Start the node (without waiting for it: see `wait_ready`)."""
        if self.running:
            assert self.proc is not None
            raise HarnessError(f"{self.name} is already running (pid {self.proc.pid})")
        with contextlib.suppress(FileNotFoundError):
            (self.data / "node.json").unlink()
        argv = node_start_argv(
            self.data,
            bootstrap=bootstrap,
            listen_port=listen_port,
            api_port=api_port,
            log_level=log_level,
            admin=admin,
            extra=extra,
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a signal reaches all of it
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.pid = self.proc.pid
        self.api = ""
        self.close_clients()

    def check_ready(self) -> bool:
        """One look: has this very process written `node.json`? If so, read its
        peer id, addresses, API address and token. Raises `NodeExited` if the
        process is gone."""
        if self.proc is None:
            raise HarnessError(f"{self.name} was never started")
        code = self.proc.poll()
        if code is not None:
            raise NodeExited(
                f"{self.name} exited with code {code} while starting:\n{self.log_tail()}"
            )
        try:
            info = json.loads((self.data / "node.json").read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(info, dict) or info.get("pid") != self.proc.pid:
            return False  # an old node.json, or one being replaced
        self.peer_id = str(info["peer_id"])
        self.addrs = [str(a) for a in info["addrs"]]
        self.api = str(info["api"]).rstrip("/")
        self.account = str(info.get("account") or self.account)
        self.token = (self.data / "api.token").read_text().strip()
        return True

    def wait_ready(self, timeout: float = 120.0, interval: float = 0.1) -> None:
        """Poll `check_ready` until it holds and the API answers `/api/status`."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            try:
                if self.check_ready():
                    self.call("GET", "/api/status")
                    return
            except NodeApiError as exc:
                last = exc
            if time.monotonic() >= deadline:
                hint = f" (last error: {last})" if last else ""
                raise HarnessError(
                    f"{self.name} not ready after {timeout:.0f} s{hint}:\n{self.log_tail()}"
                )
            time.sleep(interval)

    def send_signal(self, sig: int) -> None:
        """Signal the node's process group (nothing if it is not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def terminate(self, grace: float = 10.0) -> bool:
        """SIGCONT and SIGTERM, then wait up to `grace` s; SIGKILL past it. True
        if the node exited on its own (or was not running)."""
        if self.proc is None:
            return True
        clean = True
        if self.proc.poll() is None:
            self.send_signal(signal.SIGCONT)
            self.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                clean = False
                self.kill()
        self.close_clients()
        return clean

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, or cleanup), and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        self.close_clients()

    def advance_clock(self, ms: int) -> int:
        """Move this node's wall clock forward by `ms`: through its API when it runs
        (it must have been started with admin=True and be ready), else in its data
        directory, which it reads when it starts. Returns its offset (ms) after."""
        check_advance(ms)
        if self.proc is not None and self.proc.poll() is None:
            if not self.api:
                raise HarnessError(
                    f"{self.name} is starting: wait until it is ready to move its clock"
                )
            got = self.call("POST", "/api/admin/clock", {"advance_ms": ms})
            return int(got["offset_ms"])
        return advance_offset_file(self.data, ms)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the node's output (or of its own log), for failure messages."""
        for p in (self.log_path, self.data / "logs" / "node.log"):
            try:
                text = p.read_text(errors="replace").splitlines()
            except OSError:
                continue
            if text:
                return f"--- {self.name}: {p} (last {lines} lines) ---\n" + "\n".join(text[-lines:])
        return f"({self.name}: no log in {self.data / 'logs'})"

    # -- the local API -----------------------------------------------------------------

    def _clients(self) -> threading.local:
        tls: threading.local | None = self.__dict__.get("_tls")
        if tls is None:
            tls = self.__dict__.setdefault("_tls", threading.local())
        return tls

    def client(self) -> httpx.Client:
        """An HTTP client on the node's API (the token is added per request)."""
        if not self.api:
            raise self.api_error(self.name, "-", "-", 0, "the node has no API address (not ready)")
        holder: Any = self._clients() if self.client_per_thread else self
        c: httpx.Client | None = getattr(holder, "_http_client", None)
        if c is None or getattr(holder, "_http_base", None) != self.api:
            if c is not None:
                c.close()
            c = httpx.Client(
                base_url=self.api,
                timeout=self.api_timeout,
                # The API is plain HTTP on loopback; without a context of its own a
                # client loads the CA bundle, 75 ms of CPU per (thread, node) pair.
                verify=_tls_context(),
            )
            holder._http_client = c
            holder._http_base = self.api
        return c

    def close_clients(self) -> None:
        """Close this thread's client (or the shared one)."""
        holder: Any = self._clients() if self.client_per_thread else self
        c: httpx.Client | None = getattr(holder, "_http_client", None)
        if c is not None:
            c.close()
            holder._http_client = None

    def async_client(self, timeout: float = 60.0) -> httpx.AsyncClient:
        """An async client with the token (for trio code); the caller closes it."""
        if not self.api:
            raise self.api_error(self.name, "-", "-", 0, "the node has no API address (not ready)")
        return httpx.AsyncClient(
            base_url=self.api,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=httpx.Timeout(timeout),
            verify=_tls_context(),
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One API request as is. `token` overrides the node's own (None: use it;
        "": send no Authorization header at all). Raises httpx errors."""
        tok = self.token if token is None else token
        h = {"Authorization": f"Bearer {tok}"} if tok else {}
        h.update(headers or {})
        kw: dict[str, Any] = {"headers": h}
        if timeout is not None:
            kw["timeout"] = timeout
        if content is not None:
            kw["content"] = content
        elif json_body is not None:
            kw["json"] = json_body
        try:
            return self.client().request(method, path, **kw)
        except httpx.RemoteProtocolError:
            # The server closed a kept-alive connection just as we reused it (it had
            # not read the request): once more, on a new connection.
            self.close_clients()
            return self.client().request(method, path, **kw)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The API's answer: JSON (or bytes, for a blob); `api_error` on 4xx/5xx or
        no answer."""
        try:
            r = self.request(method, path, json_body=body, content=raw, timeout=timeout)
        except httpx.HTTPError as exc:
            raise self.api_error(
                self.name, method, path, 0, f"{type(exc).__name__}: {exc}"
            ) from exc
        data: Any
        if r.headers.get("content-type", "").startswith("application/json"):
            try:
                data = r.json()
            except ValueError:
                data = r.text
        else:
            data = r.text if r.status_code >= 400 else r.content
        if r.status_code >= 400:
            raise self.api_error(self.name, method, path, r.status_code, data)
        return data


def advance_clocks(
    nodes: Sequence[NodeProcess], ms: int, step_ms: int = CLOCK_STEP_MS
) -> list[int]:
    """Move every node's wall clock forward by `ms` (running or down; see
    `NodeProcess.advance_clock`), in steps of at most `step_ms` that every node
    takes before the next: a node holds events dated past its clock plus the
    network's skew (PROTOCOL.md §10), so no node may run a skew ahead of another
    even for a moment. Returns the offsets after."""
    if not isinstance(ms, int) or isinstance(ms, bool) or ms <= 0:
        check_advance(ms)  # its readable refusal
    offsets: list[int] = []
    left = ms
    while left > 0:
        step = min(left, step_ms)
        offsets = [n.advance_clock(step) for n in nodes]
        left -= step
    return offsets
