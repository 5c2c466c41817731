"""The node's wall clock that a test or devnet moves forward (node/_clock.py,
POST /api/admin/clock): only forward, at most a day a call, kept in the data
directory across restarts, moved for a stopped node by the harness, and read
only by a node started with --admin. The dispute tests (tests/test_disputes_node.py,
tests/test_web_disputes.py, tests/test_devnet_disputes.py) pass their voting
windows with it instead of waiting them out.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _nodes import Network
from _service import service_node
from learnmesh.node._api import make_app
from learnmesh.node._clock import (
    MAX_ADVANCE_MS,
    ClockError,
    OffsetClock,
    advance_offset_file,
    read_offset,
)
from learnmesh.node._datadir import DataDirError
from learnmesh.node._procs import advance_clocks
from learnmesh.node._runner import _wall_clock
from learnmesh.node._service import Node as ServiceNode
from learnmesh.protocol import Genesis, KeyPair

# -- the clock itself -------------------------------------------------------------------------


def test_the_clock_moves_only_forward_and_keeps_its_offset(tmp_path: Path) -> None:
    base = [1_000.0]
    clock = OffsetClock(tmp_path, base=lambda: base[0])
    assert clock() == 1_000.0 and clock.offset_ms == 0
    assert clock.advance(90_000) == 1_090_000
    base[0] += 1.5  # the system's time goes on under the offset
    assert clock() == 1_091.5
    for wrong, why in (
        (0, "only moves forward"),
        (-1, "only moves forward"),
        (MAX_ADVANCE_MS + 1, "one day"),
        (1.5, "whole number"),
        ("10", "whole number"),
        (True, "whole number"),
    ):
        with pytest.raises(ClockError, match=why):
            clock.advance(wrong)  # type: ignore[arg-type]
    assert clock.offset_ms == 90_000  # a refused step moved nothing
    assert clock.advance(MAX_ADVANCE_MS) and clock.offset_ms == 90_000 + MAX_ADVANCE_MS
    # kept in the data directory: a new clock (a restarted node) starts there
    assert OffsetClock(tmp_path).offset_ms == 90_000 + MAX_ADVANCE_MS
    assert advance_offset_file(tmp_path, 10) == 90_010 + MAX_ADVANCE_MS  # a node that is down
    assert read_offset(tmp_path) == OffsetClock(tmp_path).offset_ms == 90_010 + MAX_ADVANCE_MS
    assert read_offset(tmp_path / "elsewhere") == 0


def test_a_broken_clock_file_is_a_clear_error(tmp_path: Path) -> None:
    for text, why in (
        ("not json", "not a clock file"),
        ('{"offset": 5}', "not a clock file"),
        ('{"offset_ms": -5}', "≥ 0"),
        ('{"offset_ms": "5"}', "whole number"),
    ):
        (tmp_path / "clock.json").write_text(text)
        with pytest.raises(ClockError, match=why):
            read_offset(tmp_path)
        # `node start --admin` refuses it as a data directory mistake (no traceback)
        with pytest.raises(DataDirError, match=r"clock\.json"):
            _wall_clock(tmp_path, admin=True)


def test_only_an_admin_node_reads_the_clock_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    advance_offset_file(tmp_path, 3_600_000)
    with caplog.at_level(logging.WARNING, logger="learnmesh.node"):
        plain = _wall_clock(tmp_path, admin=False)
    assert plain is time.time  # a node people use runs on the system's clock
    assert "ignored" in caplog.text
    admin = _wall_clock(tmp_path, admin=True)
    assert isinstance(admin, OffsetClock) and admin.offset_ms == 3_600_000
    assert abs(admin() - 3_600 - time.time()) < 5


# -- the admin route, in process ----------------------------------------------------------------


def _service_node(data: Path, clock: Any) -> ServiceNode:
    key = KeyPair(os.urandom(32))
    genesis = Genesis(
        name="inproc",
        created_ms=int(time.time() * 1000) - 60_000,
        allocations=((key.public_key, 1000),),
    )
    return service_node(data, key, genesis, clock=clock)


@pytest.fixture
async def apps(tmp_path: Path) -> AsyncIterator[tuple[ServiceNode, httpx.AsyncClient, Any]]:
    """An --admin app on a node with a movable clock, and one on a fixed clock."""
    moving = _service_node(tmp_path / "moving", OffsetClock(tmp_path / "moving"))
    fixed = _service_node(tmp_path / "fixed", time.time)

    def client(node: ServiceNode) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_app(node, "t", admin=True)),
            base_url="http://127.0.0.1:8000",
            headers={"Authorization": "Bearer t"},
        )

    a, b = client(moving), client(fixed)
    try:
        yield moving, a, b
    finally:
        for c, n in ((a, moving), (b, fixed)):
            await c.aclose()
            n.ledger.close()


async def test_the_admin_route_moves_the_wall_clock_not_the_monotonic_one(
    apps: tuple[ServiceNode, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    node, api, fixed = apps
    mono = node.monotonic()
    r = await api.post("/api/admin/clock", json={})
    assert r.status_code == 200 and r.json()["offset_ms"] == 0, r.text
    r = await api.post("/api/admin/clock", json={"advance_ms": 7_200_000})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["offset_ms"] == 7_200_000
    assert abs(got["now_ms"] - 7_200_000 - time.time() * 1000) < 5_000
    assert abs(node.now_ms() - got["now_ms"]) < 5_000
    assert node.monotonic() - mono < 60  # timeouts, bans and rate limits: not moved
    # events the node writes are dated by the moved clock
    r = await api.post("/api/profile", json={"name": "Ada", "bio": "", "skills": []})
    assert r.status_code == 200, r.text
    r = await api.get(f"/api/accounts/{node.key.account}/events")
    (ev,) = r.json()["events"]
    assert abs(ev["timestamp"] - 7_200_000 - time.time() * 1000) < 5_000
    for wrong in (0, -1, MAX_ADVANCE_MS + 1, "60000", None):
        r = await api.post("/api/admin/clock", json={"advance_ms": wrong})
        assert r.status_code == 400 and r.json()["error"] == "bad_request", (wrong, r.text)
        assert r.json()["message"].startswith("advance_ms must")
    r = await api.post("/api/admin/clock", json={"advance_ms": -1})
    assert "only moves forward" in r.json()["message"]
    assert json.loads((node.data_dir / "clock.json").read_text()) == {"offset_ms": 7_200_000}
    # a node whose clock is not movable says so
    r = await fixed.post("/api/admin/clock", json={"advance_ms": 1000})
    assert r.status_code == 409 and r.json()["error"] == "fixed_clock", r.text


# -- real processes: restart, and a node that is down when the clocks move ------------------


@pytest.mark.slow
def test_a_node_keeps_its_clock_across_a_restart_and_moves_while_down(tmp_path: Path) -> None:
    with Network(tmp_path, ["a"]) as net:
        a = net["a"]
        net.start()
        assert a.post("/api/admin/clock", {})["offset_ms"] == 0
        now = net.advance_clock(600_000)
        a.post("/api/profile", {"name": "Ada", "bio": "", "skills": []})
        (ev,) = a.get(f"/api/accounts/{a.account}/events")["events"]
        assert abs(ev["timestamp"] - now) < 30_000
        code, _ = a.stop()
        assert code == 0
        net.advance_clock(2 * 600_000 + 1)  # while it is down: in steps, in its data directory
        assert json.loads((a.data / "clock.json").read_text()) == {"offset_ms": 1_800_001}
        a.start()
        a.wait_ready()
        got = a.post("/api/admin/clock", {})
        assert got["offset_ms"] == 1_800_001 == net.clock_offset_ms
        assert abs(got["now_ms"] - net.now_ms()) < 30_000
        with pytest.raises(ValueError, match="only moves forward"):
            advance_clocks([a], 0)
