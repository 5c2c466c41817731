"""`learnmesh node start`: run one node in the foreground until SIGINT/SIGTERM.

Ready means listening on libp2p and serving the API; only then is
`node.json` written into the data directory. On a signal the node stops its
tasks, closes the ledger and removes `node.json`, within a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve
from learnmesh.ledger import BlobStore, Ledger

from ._api import check_loopback, make_app
from ._api_trust import trust_refresh_loop
from ._clock import CLOCK_FILE, ClockError, OffsetClock
from ._datadir import DataDirError
from ._memtrim import trim_after_bursts
from ._service import Node, NodeSettings

__all__ = ["run_node"]

log = logging.getLogger("learnmesh.node")


class _JsonLines(logging.Formatter):
    """One JSON object per line in the log file: easy to grep, parse and ship."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def _setup_logging(data_dir: Path, level: str) -> None:
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.handlers.clear()
    fh = logging.handlers.RotatingFileHandler(logs / "node.log", maxBytes=10 << 20, backupCount=3)
    fh.setFormatter(_JsonLines())
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(fmt)
    root.addHandler(fh)
    root.addHandler(sh)
    lvl = getattr(logging, level.upper(), None)
    if not isinstance(lvl, int):
        raise ValueError(f"unknown log level {level!r} (use debug, info, warning or error)")
    root.setLevel(lvl)
    # libp2p and hypercorn are chatty at info; our own logger keeps the chosen level.
    for noisy in ("libp2p", "multiaddr", "hypercorn.access", "hypercorn.error", "async_service"):
        logging.getLogger(noisy).setLevel(max(lvl, logging.WARNING))


def _write_ready(data_dir: Path, info: dict[str, Any]) -> None:
    path = data_dir / "node.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, path)


def run_node(
    *,
    data_dir: Path,
    key_seed: bytes,
    genesis: Any,
    token: str,
    settings: NodeSettings,
    restored_marker: Path | None = None,
    admin: bool = False,
) -> int:
    """Run the node until a signal. Returns the process exit code. `admin` adds
    the /api/admin/* routes (devnets and tests fault-inject through them)."""
    check_loopback(settings.api_host)
    _setup_logging(data_dir, settings.log_level)
    clock = _wall_clock(data_dir, admin)
    from learnmesh.protocol import KeyPair

    key = KeyPair(key_seed)
    # The libp2p identity is derived from the account key: stable across restarts,
    # and not the same key used for two purposes.
    p2p_seed = hashlib.sha256(b"learnmesh/p2p-identity\x00" + key_seed).digest()
    ledger = Ledger.open(str(data_dir / "ledger.db"), genesis)
    blobs = BlobStore(data_dir / "blobs", max_bytes=genesis.params.max_blob_bytes)
    node = Node(
        data_dir=data_dir,
        key=key,
        p2p_seed=p2p_seed,
        genesis=genesis,
        ledger=ledger,
        blobs=blobs,
        settings=settings,
        restored_marker=restored_marker,
        clock=clock,
    )
    try:
        trio.run(_main, node, token, data_dir, admin)
    except Exception:
        log.exception("the node stopped on an unexpected error")  # the traceback, in node.log
        raise
    finally:
        (data_dir / "node.json").unlink(missing_ok=True)
        ledger.close()
        log.info("node stopped; ledger closed cleanly")
    return 0


def _wall_clock(data_dir: Path, admin: bool) -> Callable[[], float]:
    """The node's wall clock: on an --admin node (devnets, tests) one that
    POST /api/admin/clock moves forward, from the offset kept in the data
    directory (node/_clock.py); on any other node the system's own."""
    if not admin:
        if (data_dir / CLOCK_FILE).exists():
            log.warning("%s ignored: only an --admin node moves its clock", data_dir / CLOCK_FILE)
        return time.time
    try:
        clock = OffsetClock(data_dir)
    except ClockError as exc:
        raise DataDirError(str(exc)) from None
    if clock.offset_ms:
        log.warning("the wall clock runs %d ms ahead (%s)", clock.offset_ms, CLOCK_FILE)
    return clock


async def _main(node: Node, token: str, data_dir: Path, admin: bool) -> None:
    s = node.settings
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            hc = HyperConfig()
            hc.bind = [f"{s.api_host}:{s.api_port}"]
            hc.accesslog = None
            hc.errorlog = logging.getLogger("hypercorn.error")
            hc.graceful_timeout = 1.0
            # Local scripts keep connections open between calls; a short idle
            # timeout races their next request ("server disconnected").
            hc.keep_alive_timeout = 120.0
            binds = await nursery.start(serve, make_app(node, token, admin=admin), hc)
            nursery.start_soon(trust_refresh_loop, node)  # trust off the event loop
            nursery.start_soon(trim_after_bursts, node.ledger.count)  # RSS after bursts
            api = binds[0] if binds else f"http://{s.api_host}:{s.api_port}"
            assert node.p2p is not None
            info = {
                "pid": os.getpid(),
                "peer_id": node.peer_id,
                "addrs": node.dial_addrs(),
                "api": api,
                "account": node.key.account,
                "network": node.genesis.name,
                "network_id": node.network.hex(),
                "admin": admin,
            }
            _write_ready(data_dir, info)
            log.info("ready: api %s, peer %s", api, node.peer_id)
            if admin:
                log.warning("admin routes on (/api/admin/*): a devnet or test node")
            async for sig in signals:
                log.info("received %s: stopping", signal.Signals(sig).name)
                nursery.cancel_scope.cancel()
                break
