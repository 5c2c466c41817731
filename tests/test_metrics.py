"""`GET /metrics`: real node processes scraped in Prometheus' text format.

Two nodes on 127.0.0.1: the scrape needs the API token; events posted on one
node move its `own` and `api` counts, the other node's gossip/sync counts and
ledger size, refused and void events are counted by their protocol code, and
API latency is recorded by route template and status class. In-process: two
apps in one process each keep their own registry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _nodes import Network, Node, wait_for
from _service import service_node
from learnmesh.node._api import make_app
from learnmesh.protocol import ChainWriter, Genesis, KeyPair, account_from_text
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse(text: str) -> Samples:
    """Every sample by name, then by its sorted labels."""
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def scrape(node: Node) -> Samples:
    r = node.request("GET", "/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    return parse(r.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(samples.get(name, {}).values())


@pytest.fixture
def net2(tmp_path: Path) -> Iterator[Network]:
    with Network(tmp_path, ["a", "b"]) as net:
        yield net


@pytest.mark.slow
def test_metrics_of_a_real_node_move_with_its_events(net2: Network) -> None:
    a, b = net2["a"], net2["b"]
    net2.start(edges=[("a", "b")])

    # Without the token: refused like every other API route.
    r = a.request("GET", "/metrics", token="")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized", r.text
    assert a.request("GET", "/metrics", token="wrong").status_code == 401

    # Peers, and the gossip mesh once a heartbeat has grafted it.
    def meshed() -> bool:
        m = scrape(a)
        return (
            value(m, "learnmesh_peers_connected") == 1
            and value(m, "learnmesh_gossip_mesh_peers") >= 1
        )

    wait_for(meshed, "a's metrics to show b connected and in its gossip mesh")
    a0, b0 = scrape(a), scrape(b)
    info = a0["learnmesh_node_info"]
    (labels,) = info
    assert dict(labels)["account"] == a.account and dict(labels)["peer_id"] == a.peer_id

    # Three events authored on a.
    for i in range(3):
        a.post("/api/profile", {"name": f"a{i}", "bio": "", "skills": []})
    # One raw event signed elsewhere, posted to a; then an overspend on that chain,
    # and bytes that are no event at all.
    key = KeyPair(os.urandom(32))
    w = ChainWriter(key, net2.network_id)
    now = int(time.time() * 1000)
    ok = w.sign("profile", {"name": "ext", "bio": "", "skills": []}, now)
    assert a.post_raw(ok.raw).status_code == 200
    over = w.sign(
        "transfer", {"to": account_from_text(b.account), "amount": 10**9, "memo": ""}, now + 1
    )
    r = a.post_raw(over.raw)
    over_answer: dict[str, Any] = r.json()
    assert over_answer["status"] in ("applied", "rejected"), over_answer
    r = a.post_raw(b"\x93\x01\x02\x03 not an event")
    assert r.status_code == 422, r.text
    garbage_code = r.json()["error"]

    a1 = scrape(a)
    applied = "learnmesh_events_applied_total"
    assert value(a1, applied, source="own") == value(a0, applied, source="own") + 3
    api_applied = 2 if over_answer["status"] == "applied" else 1
    assert value(a1, applied, source="api") == value(a0, applied, source="api") + api_applied
    assert value(a1, "learnmesh_ledger_events") == value(a0, "learnmesh_ledger_events") + 3 + (
        api_applied
    )
    rejected = "learnmesh_events_rejected_total"
    assert value(a1, rejected, code=garbage_code) >= value(a0, rejected, code=garbage_code) + 1
    if over_answer["status"] == "applied":  # applied without effect: void, with its code
        code = over_answer["error"]
        void = "learnmesh_events_void_total"
        assert value(a1, void, code=code) == value(a0, void, code=code) + 1, a1.get(void)
    else:
        code = over_answer["error"]
        assert value(a1, rejected, code=code) >= value(a0, rejected, code=code) + 1
    assert value(a1, "learnmesh_ledger_db_bytes") > 0
    assert value(a1, "learnmesh_pending_events") == 0

    # b takes every one of them in by gossip or sync.
    grew = 3 + api_applied

    def b_has_them() -> Samples | None:
        m = scrape(b)
        got = value(m, applied, source="gossip") + value(m, applied, source="sync")
        was = value(b0, applied, source="gossip") + value(b0, applied, source="sync")
        ok = value(m, "learnmesh_ledger_events") == value(b0, "learnmesh_ledger_events") + grew
        return m if ok and got == was + grew else None

    b1 = wait_for(b_has_them, "b's metrics to count a's events", describe=net2.describe)
    assert value(b1, applied, source="own") == 0

    # anti-entropy syncs with a connected peer every few seconds
    def b_synced() -> Samples | None:
        m = scrape(b)
        return m if total(m, "learnmesh_sync_rounds_total") >= 1 else None

    synced = wait_for(b_synced, "b's metrics to count a sync round")
    last = value(synced, "learnmesh_sync_last_success_timestamp_seconds")
    assert time.time() - 600 < last <= time.time() + 1, last

    # API latency: by route template, method and status class.
    hist = "learnmesh_api_request_duration_seconds_count"
    ok_status = value(a1, hist, route="/api/status", method="GET", status="2xx")
    assert ok_status >= 1, a1.get(hist)
    assert value(a1, hist, route="/metrics", method="GET", status="4xx") == 2
    assert value(a1, hist, route="/api/events", method="POST", status="4xx") == 1 + (
        over_answer["status"] == "rejected"
    )
    a.get("/api/status")
    a2 = scrape(a)
    assert value(a2, hist, route="/api/status", method="GET", status="2xx") == ok_status + 1
    bucket = "learnmesh_api_request_duration_seconds_bucket"
    assert value(a2, bucket, route="/api/status", method="GET", status="2xx", le="+Inf") == (
        ok_status + 1
    )
    # a request no route serves is timed too, as unmatched
    assert a.request("GET", "/api/no-such-route").status_code == 404
    a3 = scrape(a)
    assert value(a3, hist, route="unmatched", method="GET", status="4xx") == 1


class _Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


async def test_two_apps_in_one_process_keep_their_own_metrics(tmp_path: Path) -> None:
    keys = [KeyPair(os.urandom(32)) for _ in range(2)]
    clock = _Clock()
    genesis = Genesis(
        name="inproc",
        created_ms=int(clock.t * 1000) - 60_000,
        allocations=tuple(sorted((k.public_key, 1000) for k in keys)),
    )
    nodes, clients = [], []
    try:
        for i, key in enumerate(keys):
            node = service_node(tmp_path / f"n{i}", key, genesis, clock=clock)
            nodes.append(node)
            clients.append(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=make_app(node, "t")),
                    base_url="http://127.0.0.1:8000",
                    headers={"Authorization": "Bearer t"},
                )
            )
        r = await clients[0].post("/api/profile", json={"name": "zero", "bio": "", "skills": []})
        assert r.status_code == 200, r.text
        m0 = parse((await clients[0].get("/metrics")).text)
        m1 = parse((await clients[1].get("/metrics")).text)
        applied = "learnmesh_events_applied_total"
        assert value(m0, applied, source="own") == 1
        assert value(m1, applied, source="own") == 0
        hist = "learnmesh_api_request_duration_seconds_count"
        assert value(m0, hist, route="/api/profile", method="POST", status="2xx") == 1
        assert value(m1, hist, route="/api/profile", method="POST", status="2xx") == 0
        # any token is an HTTP method: an odd one is labelled OTHER (a bounded label set)
        r = await clients[1].request("BREW", "/api/status")
        assert r.status_code == 405, r.text
        m1 = parse((await clients[1].get("/metrics")).text)
        assert value(m1, hist, route="/api/status", method="OTHER", status="4xx") == 1
        assert not [k for k in m1[hist] if ("method", "BREW") in k]
        assert value(m0, "learnmesh_peers_connected") == 0  # no libp2p host in-process

        # Penalties and bans, as the node's peer book decides them.
        node = nodes[0]
        for _ in range(6):  # 10 points each, decaying 1 a second: past the ban score of 50
            node.penalise("12D3KooWbad", "undecodable: test")
        m0 = parse((await clients[0].get("/metrics")).text)
        assert value(m0, "learnmesh_peer_penalties_total") == 6
        assert value(m0, "learnmesh_peer_bans_total") == 1
        assert value(m0, "learnmesh_peers_banned") == 1
        # An event dated two hours ahead is held; one a week ahead is refused.
        w = ChainWriter(KeyPair(os.urandom(32)), genesis.network_id)
        hour = 3_600_000
        soon = w.sign("profile", {"name": "soon", "bio": "", "skills": []}, int(clock.t * 1000))
        w2 = ChainWriter(w.key, genesis.network_id)
        early = w2.sign(
            "profile", {"name": "e", "bio": "", "skills": []}, soon.timestamp + 2 * hour
        )
        late = ChainWriter(KeyPair(os.urandom(32)), genesis.network_id).sign(
            "profile", {"name": "l", "bio": "", "skills": []}, soon.timestamp + 7 * 24 * hour
        )
        r = await clients[0].post("/api/events", content=early.raw)
        assert r.status_code == 202 and r.json()["status"] == "held", r.text
        r = await clients[0].post("/api/events", content=late.raw)
        assert r.status_code == 422 and r.json()["error"] == "future", r.text
        m0 = parse((await clients[0].get("/metrics")).text)
        assert value(m0, "learnmesh_events_held_total") == 1
        assert value(m0, "learnmesh_events_held_now") == 1
        assert value(m0, "learnmesh_events_rejected_total", code="future") == 1
        assert value(m0, "learnmesh_ledger_events") == 1  # only the profile
    finally:
        for c in clients:
            await c.aclose()
        for n in nodes:
            n.ledger.close()
