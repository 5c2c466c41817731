"""A harness for tests that run real `learnmesh node start` processes on 127.0.0.1.

- `Network(root, names)` makes one data directory per node (identity, config,
  API token) and one shared genesis that funds every node (plus any extra
  accounts a test wants to sign for itself), in-process and fast.
- `Node` is the shared process harness (`learnmesh.node._procs.NodeProcess`, which
  the devnet and the benchmarks use too) with waits that fail as test failures.
- `Node.start()` runs the node in its own process group, with `--admin` (the
  /api/admin/* routes `Network.connect` and fault tests use) unless
  `admin=False`; stdout and stderr go to `logs/stdout.log` in its data
  directory. `wait_ready()` waits for its
  `node.json` with the new pid and a first API answer; `stop()` sends SIGTERM
  and returns the exit code and how long it took; `kill()` sends SIGKILL.
- `Node.get/post` call the local API with the node's token and raise
  `ApiError` (with the node's answer) on a 4xx/5xx; `Node.request` returns the
  raw response (for the tests of the API's own refusals).
- `Network.advance_clock(ms)` moves every node's wall clock forward together
  (running nodes through POST /api/admin/clock, stopped ones in their data
  directory); `Network.now_ms()` is the network's clock after those moves. Tests
  pass deadlines (a dispute's vote_by) by moving the clock, not by waiting.
- `wait_for(check, what, describe=...)` polls a condition with a generous bound
  and fails with the last value seen, the last error and a description of the
  nodes' state. There are no fixed sleeps anywhere: only conditions.

Always use `Network` as a context manager (or a fixture that calls `close()`):
every process it started is killed on the way out, whatever happened.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import trio
from learnmesh.node._datadir import DataDir, NodeConfig
from learnmesh.node._procs import (
    HarnessError,
    NodeApiError,
    NodeProcess,
    advance_clocks,
    learnmesh_argv,
)
from learnmesh.protocol import ChainWriter, Genesis, KeyPair

__all__ = [
    "WAIT",
    "ApiError",
    "Network",
    "Node",
    "await_for",
    "cli",
    "cli_argv",
    "presign_profiles",
    "wait_for",
]

T = TypeVar("T")

WAIT = 120.0  # seconds: the bound for any condition on a loaded 2-core machine
READY_WAIT = 120.0


class ApiError(NodeApiError, AssertionError):
    """A node's API answered 4xx/5xx, or not at all."""


def cli_argv(*args: str) -> list[str]:
    """The `learnmesh` command as run by this interpreter (the venv running pytest)."""
    return [*learnmesh_argv(), *args]


def cli(*args: str, timeout: float = WAIT, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one `learnmesh` command to completion."""
    try:
        r = subprocess.run(
            cli_argv(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`learnmesh {' '.join(args)}` ran over {timeout:.0f} s") from exc
    if check and r.returncode != 0:
        raise AssertionError(
            f"`learnmesh {' '.join(args)}` exited {r.returncode}\n"
            f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
        )
    return r


_TRANSIENT = (httpx.HTTPError, ApiError, OSError, ValueError, KeyError)


def wait_for(
    check: Callable[[], T | bool | None],
    what: str,
    *,
    timeout: float = WAIT,
    interval: float = 0.25,
    describe: Callable[[], Any] | None = None,
) -> T:
    """Poll `check` until it returns something truthy; return that. Errors of the
    kind a node that is starting or busy gives (connection refused, a 4xx/5xx)
    count as "not yet". On timeout, fail with the last value and error seen and
    `describe()` (the state of the nodes)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = check()
            if last:
                return last  # type: ignore[return-value]
        except _TRANSIENT as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError(_timeout_message(what, timeout, last, last_exc, describe))
        time.sleep(interval)


async def await_for(
    check: Callable[[], T | bool | None],
    what: str,
    *,
    timeout: float = WAIT,
    interval: float = 0.25,
    describe: Callable[[], Any] | None = None,
) -> T:
    """`wait_for` for trio tests: `check` (blocking HTTP) runs in a thread, so the
    test's own libp2p host keeps running meanwhile."""
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = await trio.to_thread.run_sync(check)
            if last:
                return last  # type: ignore[no-any-return]
        except _TRANSIENT as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = await trio.to_thread.run_sync(
                _timeout_message, what, timeout, last, last_exc, describe
            )
            raise AssertionError(msg)
        await trio.sleep(interval)


def _timeout_message(
    what: str,
    timeout: float,
    last: Any,
    last_exc: BaseException | None,
    describe: Callable[[], Any] | None,
) -> str:
    parts = [f"timed out after {timeout:.0f} s waiting for {what}", f"last value: {last!r}"[:3000]]
    if last_exc is not None:
        parts.append(f"last error: {last_exc!r}"[:2000])
    if describe is not None:
        try:
            parts.append(f"state: {describe()}"[:8000])
        except Exception as exc:  # the description is a courtesy; never mask the timeout
            parts.append(f"(state unavailable: {exc!r})")
    return "\n".join(parts)


class Node(NodeProcess):
    """One node's data directory and (when running) its process and API: the
    shared harness (learnmesh.node._procs), with waits that fail as test failures."""

    api_error = ApiError
    client_per_thread = False  # one client, so a session cookie holds across calls
    api_timeout = httpx.Timeout(30.0)

    def __init__(self, name: str, data: Path, key: KeyPair) -> None:
        super().__init__(data, name)
        self.key = key
        self.account = key.account
        self.token = (data / "api.token").read_text().strip()

    def __repr__(self) -> str:
        return f"Node({self.name}, pid={self.proc.pid if self.proc else None})"

    @property
    def addr(self) -> str:
        if not self.addrs:
            raise AssertionError(f"{self.name} has no listen address (not started?)")
        return self.addrs[0]

    # -- process -----------------------------------------------------------------------

    def start(
        self, bootstrap: Sequence[str] = (), extra: Sequence[str] = (), *, admin: bool = True
    ) -> None:
        """Start the node (without waiting: see wait_ready); with the admin routes
        (/api/admin/*) unless `admin=False`, as a node people use runs."""
        if self.running:
            raise AssertionError(f"{self.name} is already running")
        self.spawn(bootstrap=bootstrap, log_level="info", admin=admin, extra=extra)

    def wait_ready(self, timeout: float = READY_WAIT, interval: float = 0.25) -> None:
        """Wait for node.json written by this very process, and a first API answer."""

        def ready() -> bool:
            try:
                if not self.check_ready():
                    return False
            except HarnessError as exc:
                raise AssertionError(str(exc)) from None
            assert self.account == self.key.account, (self.account, self.key.account)
            self.get("/api/status")
            return True

        wait_for(
            ready,
            f"{self.name} to be ready",
            timeout=timeout,
            interval=interval,
            describe=self.log_tail,
        )

    def stop(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; wait for the exit. Returns (exit code, seconds it took)."""
        assert self.proc is not None, f"{self.name} was never started"
        t0 = time.monotonic()
        if not self.terminate(grace=timeout):
            raise AssertionError(
                f"{self.name} did not exit within {timeout:.0f} s of SIGTERM:\n" + self.log_tail()
            )
        return self.proc.returncode, time.monotonic() - t0

    # -- API -----------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        return self.client()

    def _close_client(self) -> None:
        self.close_clients()

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, {} if body is None else body)

    def post_raw(self, raw: bytes) -> httpx.Response:
        """POST a signed event (msgpack) to /api/events; the response as is."""
        return self.request(
            "POST", "/api/events", content=raw, headers={"content-type": "application/msgpack"}
        )

    def status(self) -> dict[str, Any]:
        s: dict[str, Any] = self.get("/api/status")
        return s

    def brief(self) -> dict[str, Any]:
        """The parts of the status that say whether nodes agree (for failure messages)."""
        if not self.running:
            return {"node": self.name, "running": False}
        try:
            s = self.status()
        except ApiError as exc:
            return {"node": self.name, "error": str(exc)[:300]}
        return {
            "node": self.name,
            "events": s["events"],
            "pending": s["pending"],
            "digest": s["digest"][:16],
            "peers": len(s["peers"]),
            "stats": s["stats"],
        }


class Network:
    """N data directories sharing one genesis, and the node processes run on them."""

    def __init__(
        self,
        root: Path,
        names: Sequence[str],
        *,
        allocation: int = 100_000,
        allocations: dict[str, int] | None = None,
        extra_allocations: Iterable[tuple[bytes, int]] = (),
        trusted: Sequence[str] = (),
        network_name: str = "testnet",
    ) -> None:
        self.root = root
        self.nodes: dict[str, Node] = {}
        self.clock_offset_ms = 0  # how far advance_clock has moved every node's clock
        keys: dict[str, KeyPair] = {}
        for name in names:
            dd = DataDir(root / name)
            keys[name] = dd.create_identity(name=name)
            dd.write_config(NodeConfig(listen_host="127.0.0.1", listen_port=0, api_port=0))
            dd.api_token()
        allocs = {keys[n].public_key: (allocations or {}).get(n, allocation) for n in names}
        for acct, amount in extra_allocations:
            allocs[acct] = amount
        self.genesis = Genesis(
            name=network_name,
            created_ms=int(time.time() * 1000) - 60_000,
            allocations=tuple(sorted(allocs.items())),
            trusted=tuple(sorted(keys[n].public_key for n in trusted)),
        )
        self.network_id = self.genesis.network_id
        for name in names:
            DataDir(root / name).write_genesis(self.genesis)
            self.nodes[name] = Node(name, root / name, keys[name])

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def close(self) -> None:
        """Kill every process still running (tests stop them cleanly themselves)."""
        for n in self.nodes.values():
            n.kill()

    def start(
        self,
        names: Sequence[str] | None = None,
        edges: Sequence[tuple[str, str]] = (),
        bootstrap: dict[str, list[str]] | None = None,
    ) -> None:
        """Start the named nodes at once, wait until all are ready, then connect
        each edge (a, b) with a's POST /api/admin/connect to b's address, and wait
        until both sides list each other as peers."""
        chosen = [self.nodes[n] for n in (names or list(self.nodes))]
        for n in chosen:
            n.start(bootstrap=(bootstrap or {}).get(n.name, []))
        for n in chosen:
            n.wait_ready()
        for a, b in edges:
            self.connect(a, b)

    def now_ms(self) -> int:
        """The nodes' wall clock (ms): this machine's, plus every advance_clock."""
        return int(time.time() * 1000) + self.clock_offset_ms

    def advance_clock(self, ms: int) -> int:
        """Move every node's wall clock forward by `ms`, the stopped ones too (they
        start with it); the network's new time (ms)."""
        try:
            offsets = advance_clocks(list(self.nodes.values()), ms)
        except HarnessError as exc:
            raise AssertionError(str(exc)) from None
        self.clock_offset_ms += ms
        assert set(offsets) == {self.clock_offset_ms}, (offsets, self.clock_offset_ms)
        return self.now_ms()

    def connect(self, a: str, b: str) -> None:
        na, nb = self.nodes[a], self.nodes[b]
        wait_for(
            lambda: na.post("/api/admin/connect", {"addr": nb.addr}),
            f"{a} to connect to {b}",
            describe=self.describe,
        )
        self.wait_peers(a, b)

    def wait_peers(self, a: str, b: str) -> None:
        na, nb = self.nodes[a], self.nodes[b]
        wait_for(
            lambda: nb.peer_id in na.status()["peers"] and na.peer_id in nb.status()["peers"],
            f"{a} and {b} to list each other as peers",
            describe=self.describe,
        )

    def describe(self) -> list[dict[str, Any]]:
        return [n.brief() for n in self.nodes.values()]

    def wait_converged(self, names: Sequence[str], *, min_events: int = 0) -> str:
        """Wait until the named nodes report one digest (and at least `min_events`
        events, none pending); return that digest."""
        chosen = [self.nodes[n] for n in names]

        def same() -> str | None:
            ss = [n.status() for n in chosen]
            digests = {s["digest"] for s in ss}
            if len(digests) == 1 and all(
                s["events"] >= min_events and s["pending"] == 0 for s in ss
            ):
                return digests.pop()
            return None

        return wait_for(
            same, f"{', '.join(names)} to converge (>= {min_events} events)", describe=self.describe
        )


def presign_profiles(network: bytes, keys: Sequence[KeyPair], per_key: int) -> list[list[bytes]]:
    """`per_key` profile events on each key's chain, signed here: one list of raw
    events per key, in chain order (profiles need no balance: any key may write)."""
    now = int(time.time() * 1000)
    chains = []
    for i, key in enumerate(keys):
        w = ChainWriter(key, network)
        chains.append(
            [
                w.sign(
                    "profile",
                    {"name": f"k{i}-{seq}", "bio": "pre-signed", "skills": []},
                    now + seq,
                ).raw
                for seq in range(per_key)
            ]
        )
    return chains
