"""The propagation baseline: one process of plain py-libp2p GossipSub, one
signed event per message, no batching and no sync.

Run by `learnmesh bench propagation` as
`python -m learnmesh.devnet._baseline DIR INDEX PORT RATE NODES [BOOTSTRAP ...]`.
It writes DIR/bINDEX.ready.json (its addresses), keeps DIR/bINDEX.status.json
(its topic peers) fresh, waits for DIR/go.json ({"t0_ms", "end_ms"}), publishes
its share of the schedule (event k at t0 + k/rate when k % NODES == INDEX),
and writes DIR/bINDEX.result.json: [event_id_hex, created_ms, received_ms] rows,
the same shape as a node's /api/applied.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio
from learnmesh.node._p2p import P2PConfig, P2PError, P2PHost
from learnmesh.protocol import ChainWriter, KeyPair, decode_event

__all__ = ["NETWORK", "TOPIC", "main"]

NETWORK = hashlib.sha256(b"learnmesh/bench/baseline").digest()
TOPIC = "/learnmesh/bench/baseline/1"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _write(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


async def _run(d: Path, index: int, port: int, rate: float, nodes: int, boot: list[str]) -> None:
    seed = hashlib.sha256(b"baseline-node" + index.to_bytes(4, "big")).digest()
    cfg = P2PConfig(identity_seed=seed, listen_port=port, heartbeat_interval=1.0)
    rows: list[list[Any]] = []
    key = KeyPair(hashlib.sha256(b"baseline-key" + seed).digest())
    writer = ChainWriter(key, NETWORK)

    def validate(peer: str, data: bytes) -> bool:
        # The same check a learnmesh node makes: decode and verify the signature.
        try:
            decode_event(data, 32 * 1024, NETWORK)
        except Exception:
            return False
        return True

    async with P2PHost.open(cfg) as host:
        await host.subscribe(TOPIC, validate)
        _write(d / f"b{index}.ready.json", {"addrs": host.listen_addrs(), "pid": os.getpid()})

        async def dial(addr: str) -> None:
            for _ in range(20):
                try:
                    await host.connect(addr)
                    return
                except P2PError:
                    await trio.sleep(0.5)

        async def receive() -> None:
            async for _topic, _origin, data in host.messages():
                got = _now_ms()
                try:
                    ev = decode_event(data, 32 * 1024, NETWORK, verify=False)
                except Exception:
                    continue
                rows.append([ev.id.hex(), ev.timestamp, got])

        async with trio.open_nursery() as nursery:
            for a in boot:
                nursery.start_soon(dial, a)
            nursery.start_soon(receive)
            go = d / "go.json"
            while not go.exists():
                status = {
                    "topic_peers": len(host.topic_peers(TOPIC)),
                    "mesh_peers": len(host.mesh_peers(TOPIC)),
                }
                _write(d / f"b{index}.status.json", status)
                await trio.sleep(0.2)
            plan = json.loads(go.read_text())
            cpu0 = time.process_time()  # this process's CPU over the measured window
            t0, end = int(plan["t0_ms"]), int(plan["end_ms"])
            total = int((end - t0) * rate / 1000)
            for k in range(index, total, nodes):
                at = t0 + k * 1000 / rate
                await trio.sleep(max(0.0, (at - _now_ms()) / 1000))
                ev = writer.sign(
                    "profile", {"name": f"b{index}", "bio": f"event {k}", "skills": []}, _now_ms()
                )
                rows.append([ev.id.hex(), ev.timestamp, ev.timestamp])
                with contextlib.suppress(P2PError):
                    await host.publish(TOPIC, ev.raw)
            drain = float(plan.get("drain_s", 10))
            await trio.sleep(max(0.0, (end - _now_ms()) / 1000) + drain)
            cpu_s = time.process_time() - cpu0
            _write(
                d / f"b{index}.result.json",
                {"rows": rows, "dropped": host.dropped, "cpu_s": cpu_s, "events": total},
            )
            nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    a = sys.argv[1:] if argv is None else argv
    d, index, port, rate, nodes = Path(a[0]), int(a[1]), int(a[2]), float(a[3]), int(a[4])
    trio.run(_run, d, index, port, rate, nodes, a[5:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
