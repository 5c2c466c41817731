"""Many `learnmesh node start` processes on 127.0.0.1, and their local APIs.

The devnet knows nodes only as processes and HTTP endpoints: it makes their
data directories with the offline CLI, starts and signals the processes (each
in its own process group, so nothing is left behind), and reads `node.json`
and `api.token` as any user of the CLI would.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
from learnmesh.node._procs import (
    HarnessError,
    NodeApiError,
    NodeProcess,
    advance_clocks,
    learnmesh_argv,
)

__all__ = [
    "ApiError",
    "Cluster",
    "DevnetError",
    "NodeProc",
    "learnmesh_argv",
    "poll",
]

T = TypeVar("T")

_ACCOUNT_RE = re.compile(r"lm[a-z2-7]{56}")


class DevnetError(Exception):
    """The devnet could not do what it was asked; the message says what and where."""


class ApiError(DevnetError, NodeApiError):
    """A node's API answered with an error (4xx/5xx) or did not answer."""

    def __init__(self, node: str, method: str, path: str, status: int, body: Any) -> None:
        NodeApiError.__init__(self, node, method, path, status, body)
        detail = body.get("message") if isinstance(body, dict) else body
        self.args = (f"{node}: {method} {path} -> {status}: {detail}",)


def poll(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> T:
    """Call `check` until it returns something other than None (or False), within
    `timeout` seconds. Conditions, never fixed sleeps."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            got = check()
            if got is not None and got is not False:
                return got
        except (ApiError, httpx.HTTPError, OSError, ValueError) as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            hint = f" (last error: {last_exc})" if last_exc else ""
            raise DevnetError(f"timed out after {timeout:.0f} s waiting for {what}{hint}")
        time.sleep(interval)


_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port for a node to listen on, free now and below the kernel's ephemeral
    range. A port the kernel hands out (bind to 0) is in that range, and the
    nodes' own outgoing connections take ports from it: a devnet node started a
    minute after its port was chosen, or restarted on it, then found it in use
    ("Address already in use", a node exiting while starting)."""
    low = _ephemeral_low()
    top = min(low, 32768) - 1
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, top - 12000), top)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a crowded machine
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NodeProc(NodeProcess):
    """One node of the devnet: its data directory, ports and current process (the
    shared harness, learnmesh.node._procs, with the devnet's bookkeeping)."""

    api_error = ApiError
    api_timeout = httpx.Timeout(20.0, connect=5.0)

    index: int
    data: Path
    listen_port: int
    api_port: int
    name: str = ""
    account: str = ""
    peer_id: str = ""
    addrs: list[str] = field(default_factory=list)
    api: str = ""
    token: str = ""
    proc: subprocess.Popen[bytes] | None = None
    pid: int = 0
    state: str = "new"  # new, starting, up, paused, down, stopped
    neighbours: list[int] = field(default_factory=list)  # topology, both directions
    bootstrap: list[int] = field(default_factory=list)  # the earlier nodes it dials
    starts: int = 0
    cpu_done_s: float = 0.0  # CPU of earlier incarnations (killed/restarted)
    rss_mb: list[float] = field(default_factory=list)
    last_cpu_s: float = 0.0
    _ps: Any = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"n{self.index:02d}"

    @property
    def live(self) -> bool:
        return self.state in ("up", "paused")

    # -- the local API -------------------------------------------------------------

    def get(self, path: str, timeout: float | None = None) -> Any:
        return self.call("GET", path, timeout=timeout)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body if body is not None else {})

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        out: dict[str, Any] = self.get("/api/status", timeout=timeout)
        return out

    # -- resources -----------------------------------------------------------------

    def sample(self) -> None:
        """Record RSS and CPU of the current process (psutil)."""
        if self.pid <= 0 or self.state not in ("up", "paused", "starting"):
            return
        try:
            if self._ps is None or self._ps.pid != self.pid:
                self._ps = psutil.Process(self.pid)
            mem = self._ps.memory_info().rss / (1024 * 1024)
            t = self._ps.cpu_times()
            self.last_cpu_s = float(t.user + t.system)
            self.rss_mb.append(round(mem, 1))
        except (psutil.Error, OSError):
            pass

    @property
    def cpu_s(self) -> float:
        return self.cpu_done_s + self.last_cpu_s


class Cluster:
    """A devnet's node processes. Always use as a context manager (or call
    `stop_all` in a finally): every process it started is stopped on the way out."""

    def __init__(
        self,
        root: Path,
        n: int,
        *,
        log: Callable[[str], None] | None = None,
        log_level: str = "info",
        extra_args: Sequence[str] = (),
    ) -> None:
        if n < 1:
            raise DevnetError("a devnet needs at least one node")
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = log or (lambda _m: None)
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.nodes = [NodeProc(i, root / f"n{i:02d}", free_port(), free_port()) for i in range(n)]
        self.genesis_file = root / "genesis.json"
        self.started_at = time.time()
        self._lock = threading.Lock()
        self.clock_offset_ms = 0  # how far advance_clock has moved every node's wall clock

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    # -- offline set-up --------------------------------------------------------------

    def _cli(self, args: list[str], timeout: float = 60.0) -> str:
        argv = learnmesh_argv() + args
        try:
            r = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DevnetError(f"`learnmesh {' '.join(args)}` took over {timeout:.0f} s") from exc
        if r.returncode != 0:
            err = (r.stderr or r.stdout).decode(errors="replace").strip()[-2000:]
            raise DevnetError(f"`learnmesh {' '.join(args)}` failed ({r.returncode}): {err}")
        return r.stdout.decode(errors="replace")

    def init_all(self, workers: int = 2) -> None:
        """`learnmesh init` in every data directory; learn each account id."""

        def one(n: NodeProc) -> None:
            if (n.data / "api.token").exists() and n.account:
                return
            out = self._cli(["--data", str(n.data), "--json", "init", "--name", n.name])
            n.account = _account_in(out) or ""
            if not n.account:
                raise DevnetError(f"`learnmesh init` for {n.name} printed no account id: {out!r}")

        with ThreadPoolExecutor(max_workers=workers) as ex:
            list(ex.map(one, self.nodes))

    def make_genesis(
        self,
        name: str,
        allocations: dict[str, int],
        trusted: Iterable[str] = (),
        workers: int = 2,
    ) -> None:
        """Write the shared genesis with the first node's CLI, and join the others to it."""
        args = ["--data", str(self.nodes[0].data), "genesis", "create", "--name", name]
        for acct, amount in allocations.items():
            args += ["--alloc", f"{acct}={amount}"]
        for t in trusted:
            args += ["--trusted", t]
        args += ["--out", str(self.genesis_file)]
        self._cli(args)

        def join(n: NodeProc) -> None:
            self._cli(["--data", str(n.data), "genesis", "join", str(self.genesis_file)])

        with ThreadPoolExecutor(max_workers=workers) as ex:
            list(ex.map(join, self.nodes[1:]))

    # -- processes ---------------------------------------------------------------------

    def spawn(self, n: NodeProc, bootstrap: Sequence[str]) -> None:
        """Start node `n` (not waiting for it), with the admin routes the devnet's
        faults use. Its own process group, so a signal to the devnet's terminal
        does not reach it and `stop` reaches all of it."""
        try:
            n.spawn(
                bootstrap=bootstrap,
                listen_port=n.listen_port,
                api_port=n.api_port,
                log_level=self.log_level,
                admin=True,
                extra=self.extra_args,
            )
        except HarnessError as exc:
            raise DevnetError(str(exc)) from None
        n.state = "starting"
        n.starts += 1
        n.last_cpu_s = 0.0

    def wait_ready(self, n: NodeProc, timeout: float = 90.0) -> None:
        """Wait for the node's `node.json` (with our pid) and its API to answer."""

        def ready() -> bool | None:
            try:
                if not n.check_ready():
                    return None
            except HarnessError as exc:
                raise DevnetError(str(exc)) from None
            n.status(timeout=5.0)
            return True

        try:
            poll(ready, timeout, f"{n.name} to be ready", interval=0.2)
        except DevnetError as exc:
            if "exited" in str(exc):
                raise
            raise DevnetError(f"{exc}\n{n.log_tail(30)}") from None
        n.state = "up"

    def addr_of(self, n: NodeProc) -> str:
        tcp = [a for a in n.addrs if "/tcp/" in a and "/p2p/" in a]
        if not tcp:
            raise DevnetError(f"{n.name} advertised no /tcp/…/p2p/… address: {n.addrs}")
        return tcp[0]

    def start_all(
        self,
        topology: dict[int, list[int]],
        batch: int = 4,
        timeout: float = 120.0,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        """Start every node gradually: node i dials `topology[i]` (earlier nodes),
        which are up before it starts. A few at a time, waiting on readiness."""
        for i, peers in topology.items():
            self.nodes[i].bootstrap = list(peers)
            for p in peers:
                if i not in self.nodes[p].neighbours:
                    self.nodes[p].neighbours.append(i)
                if p not in self.nodes[i].neighbours:
                    self.nodes[i].neighbours.append(p)
        pending = list(range(len(self.nodes)))
        while pending:
            wave: list[int] = []
            for i in list(pending):
                if len(wave) >= batch:
                    break
                if all(self.nodes[p].state == "up" for p in self.nodes[i].bootstrap):
                    wave.append(i)
                    pending.remove(i)
            if not wave:
                raise DevnetError("topology names a bootstrap node that never comes up")
            for i in wave:
                n = self.nodes[i]
                self.spawn(n, [self.addr_of(self.nodes[p]) for p in n.bootstrap])
            for i in wave:
                self.wait_ready(self.nodes[i], timeout)
                self.log(f"{self.nodes[i].name} up (pid {self.nodes[i].pid})")
                if on_progress:
                    on_progress()

    def now_ms(self) -> int:
        """The nodes' wall clock (ms): this machine's plus every advance_clock."""
        return int(time.time() * 1000) + self.clock_offset_ms

    def advance_clock(self, ms: int) -> int:
        """Move every node's wall clock forward by `ms` together (node/_clock.py):
        the running ones through POST /api/admin/clock, the down ones in their data
        directory (they start with it). A deadline passes without waiting for it.
        Returns the nodes' new time (ms)."""
        paused = [n.name for n in self.nodes if n.state == "paused"]
        if paused:
            raise DevnetError(f"resume {', '.join(paused)} before moving the clock")
        try:
            advance_clocks(self.nodes, ms)
        except (HarnessError, ValueError) as exc:
            raise DevnetError(f"could not move the clock: {exc}") from None
        self.clock_offset_ms += ms
        ahead = self.clock_offset_ms / 1000
        self.log(f"clocks moved {ms / 1000:.0f} s forward (now {ahead:.0f} s ahead)")
        return self.now_ms()

    def restart(self, n: NodeProc, timeout: float = 90.0) -> None:
        """Start a stopped or killed node again, dialing all its topology neighbours."""
        live = [self.nodes[p] for p in n.neighbours if self.nodes[p].live]
        self.spawn(n, [self.addr_of(p) for p in live])
        self.wait_ready(n, timeout)

    def kill(self, n: NodeProc) -> None:
        """SIGKILL, no goodbye: the crash fault."""
        self._signal(n, signal.SIGKILL)
        if n.proc is not None:
            n.proc.wait(timeout=10)
        n.cpu_done_s += n.last_cpu_s
        n.last_cpu_s = 0.0
        n.state = "down"

    def pause(self, n: NodeProc) -> None:
        self._signal(n, signal.SIGSTOP)
        n.state = "paused"

    def resume(self, n: NodeProc) -> None:
        self._signal(n, signal.SIGCONT)
        if n.state == "paused":
            n.state = "up"

    def _signal(self, n: NodeProc, sig: int) -> None:
        n.send_signal(sig)

    def stop(self, n: NodeProc, grace: float = 8.0) -> None:
        """SIGTERM (SIGCONT first if paused), then SIGKILL after `grace` seconds."""
        if n.proc is None:
            return
        if n.proc.poll() is None:
            n.sample()
            if not n.terminate(grace=grace):
                self.log(f"{n.name} ignored SIGTERM for {grace:.0f} s: SIGKILL")
        n.cpu_done_s += n.last_cpu_s
        n.last_cpu_s = 0.0
        n.state = "stopped"

    def stop_all(self) -> None:
        live = [n for n in self.nodes if n.proc is not None and n.state != "stopped"]
        for n in live:
            self._signal(n, signal.SIGCONT)
            n.sample()
            self._signal(n, signal.SIGTERM)
        deadline = time.monotonic() + 8.0
        for n in live:
            assert n.proc is not None
            try:
                n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(n, signal.SIGKILL)
        for n in live:
            self.stop(n, grace=5.0)

    def log_tail(self, n: NodeProc, lines: int = 30) -> str:
        return n.log_tail(lines)

    # -- the network as a whole -------------------------------------------------------------

    @property
    def live(self) -> list[NodeProc]:
        return [n for n in self.nodes if n.live]

    def each(self, fn: Callable[[NodeProc], T], nodes: Sequence[NodeProc] | None = None) -> list[T]:
        nodes = list(self.live if nodes is None else nodes)
        if not nodes:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(nodes))) as ex:
            return list(ex.map(fn, nodes))

    def statuses(self, nodes: Sequence[NodeProc] | None = None) -> dict[str, dict[str, Any]]:
        def one(n: NodeProc) -> tuple[str, dict[str, Any] | None]:
            try:
                return n.name, n.status(timeout=5.0)
            except ApiError:
                return n.name, None

        return {k: v for k, v in self.each(one, nodes) if v is not None}

    def converged(self, nodes: Sequence[NodeProc] | None = None) -> dict[str, Any] | None:
        """The common status if every given node has the same digest and heads."""
        nodes = list(self.live if nodes is None else nodes)
        st = self.statuses(nodes)
        if len(st) != len(nodes) or not st:
            return None
        first = next(iter(st.values()))
        for s in st.values():
            if s["digest"] != first["digest"] or s["heads"] != first["heads"]:
                return None
        return first

    def wait_converged(
        self, timeout: float, nodes: Sequence[NodeProc] | None = None
    ) -> dict[str, Any]:
        return poll(lambda: self.converged(nodes), timeout, "the nodes to converge", 0.3)

    def wait_connected(self, timeout: float = 60.0) -> None:
        """Every live node has at least one peer, and each node's bootstrap peers."""

        def ok() -> bool:
            st = self.statuses()
            if len(st) != len(self.live):
                return False
            for n in self.live:
                peers = set(st[n.name]["peers"])
                want = {self.nodes[p].peer_id for p in n.bootstrap if self.nodes[p].live}
                if not peers or not want <= peers:
                    return False
            return True

        poll(ok, timeout, "every node to connect to its bootstrap peers", 0.3)

    def sample_all(self) -> None:
        for n in self.nodes:
            n.sample()

    def write_state(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        """devnet.json: what `devnet down` needs to stop these processes later."""
        data = {
            "root": str(self.root),
            "genesis": str(self.genesis_file),
            "nodes": [
                {
                    "name": n.name,
                    "pid": n.pid,
                    "data": str(n.data),
                    "api": n.api,
                    "token": n.token,
                    "account": n.account,
                    "peer_id": n.peer_id,
                    "addrs": n.addrs,
                }
                for n in self.nodes
            ],
            **(extra or {}),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, path)


def _account_in(out: str) -> str | None:
    with contextlib.suppress(ValueError):
        data = json.loads(out)
        if isinstance(data, dict):
            for k in ("account", "account_id", "id"):
                v = data.get(k)
                if isinstance(v, str) and _ACCOUNT_RE.fullmatch(v):
                    return v
    m = _ACCOUNT_RE.search(out)
    return m.group(0) if m else None


def sparse_topology(n: int, rng: Any, degree: int = 2) -> dict[int, list[int]]:
    """Node i dials up to `degree` (2 or 3) earlier nodes: one of the latest few
    (locality) and the rest at random, so the graph is connected and sparse."""
    topo: dict[int, list[int]] = {0: []}
    for i in range(1, n):
        k = min(i, degree if i < 4 else rng.choice([degree, degree + 1]))
        picks = {i - 1}
        while len(picks) < k:
            picks.add(rng.randrange(i))
        topo[i] = sorted(picks)
    return topo


def stop_pids(entries: Iterable[dict[str, Any]], grace: float = 8.0) -> list[str]:
    """Stop node processes recorded in devnet.json, checking each pid is still
    that node (its command line names its data directory) before signalling."""
    stopped = []
    targets = []
    for e in entries:
        pid, data = int(e.get("pid") or 0), str(e.get("data", ""))
        if pid <= 0:
            continue
        try:
            p = psutil.Process(pid)
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if data not in cmd or "node" not in cmd:
            continue  # the pid was reused by something else: not ours to stop
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGCONT)
            os.killpg(pid, signal.SIGTERM)
        targets.append((p, e))
    deadline = time.monotonic() + grace
    for p, e in targets:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except psutil.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        except psutil.Error:
            pass
        stopped.append(str(e.get("name", p.pid)))
    return stopped
