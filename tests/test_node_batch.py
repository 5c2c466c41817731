"""`POST /api/events/batch`: many events of a node's own chain in one request,
on real node processes (real libp2p, real SQLite).

Each event is made on the state the one before it left (head, balance,
claims), all are stored in one transaction, a refused event stops the batch
with the ones before it kept, an Idempotency-Key replays, and the chain stays
one chain across a SIGKILL and a restart (the head kept in memory agrees with
the ledger).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _nodes import Network, cli

pytestmark = pytest.mark.slow


@pytest.fixture
def net2(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path, ["a", "b"], allocations={"a": 1_000, "b": 1_000})
    try:
        yield net
    finally:
        net.close()


def test_batch_authors_in_order_stops_at_a_refusal_and_replays(net2: Network) -> None:
    a, b = net2["a"], net2["b"]
    net2.start(edges=[("a", "b")])
    net2.wait_peers("a", "b")

    # 300 events: profiles, transfers (each claims or spends on the balance the
    # ones before it left) and a vouch.
    items: list[dict[str, object]] = []
    for i in range(300):
        if i % 3 == 0:
            items.append({"kind": "transfer", "to": b.account, "amount": 2, "memo": f"m{i}"})
        elif i == 299:
            items.append({"kind": "vouch", "account": b.account})
        else:
            items.append({"kind": "profile", "name": f"a{i}", "bio": "", "skills": ["x"]})
    out = a.post("/api/events/batch", {"events": items})
    assert out["complete"] is True and "stopped" not in out, out
    assert len(out["ids"]) == 300 and len(set(out["ids"])) == 300
    st = a.status()
    assert st["heads"][a.account] == 300
    assert st["balance"] == 1_000 - 2 * 100
    assert st["stats"]["events_applied_own"] >= 300
    net2.wait_converged(["a", "b"], min_events=300)
    assert b.get(f"/api/balance/{b.account}")["balance"] == 1_000 + 2 * 100

    # A transfer over what is left stops the batch there; the two before it stay.
    over = [
        {"kind": "profile", "name": "before-1"},
        {"kind": "transfer", "to": b.account, "amount": 5},
        {"kind": "transfer", "to": b.account, "amount": 10_000},
        {"kind": "profile", "name": "never"},
    ]
    out = a.post("/api/events/batch", {"events": over})
    assert out["complete"] is False and len(out["ids"]) == 2, out
    assert out["stopped"]["index"] == 2 and out["stopped"]["message"], out
    assert a.status()["heads"][a.account] == 302

    # The first event refused: nothing made, the error itself (with its index).
    r = a.request(
        "POST",
        "/api/events/batch",
        json_body={"events": [{"kind": "transfer", "to": b.account, "amount": 10_000}]},
    )
    assert r.status_code == 409 and r.json()["message"].startswith("events[0]:"), r.text
    # A malformed entry anywhere: a 400 naming it, before anything is signed.
    for bad, where in (
        ({"events": [{"kind": "profile", "name": "ok"}, {"kind": "bounty"}]}, "events[1]"),
        ({"events": [{"kind": "transfer", "to": b.account, "amount": 0}]}, "events[0]"),
        ({"events": [{"kind": "profile", "name": 3}]}, "events[0]"),
        ({"events": []}, "events is"),
        ({"events": [{"kind": "profile", "name": "x"}] * 1001}, "at most 1000"),
    ):
        r = a.request("POST", "/api/events/batch", json_body=bad)
        assert r.status_code == 400 and where in r.json()["message"], (bad, r.text)
    assert a.status()["heads"][a.account] == 302

    # One Idempotency-Key: the repeat replays the first answer and makes nothing.
    key = os.urandom(8).hex()
    body = {"events": [{"kind": "profile", "name": f"k{i}"} for i in range(5)]}
    first = a.request("POST", "/api/events/batch", json_body=body, headers={"Idempotency-Key": key})
    again = a.request("POST", "/api/events/batch", json_body=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.headers.get("idempotent-replayed") == "true"
    assert first.json()["ids"] == again.json()["ids"]
    assert a.status()["heads"][a.account] == 307

    # Killed right after an acknowledged batch: all of it survives, and the
    # restarted node goes on with the same chain (no fork), single and batched.
    done = a.post("/api/events/batch", {"events": [{"kind": "profile", "name": "z"}] * 50})
    a.kill()
    shown = json.loads(cli("--data", str(a.data), "--json", "ledger", "show").stdout)
    assert shown["heads"][a.account] == {"seq": 357, "id": done["ids"][-1]}
    a.start(bootstrap=[b.addr])
    a.wait_ready()
    a.post("/api/profile", {"name": "after"})
    a.post("/api/events/batch", {"events": [{"kind": "profile", "name": "after-2"}] * 3})
    net2.wait_converged(["a", "b"], min_events=361)
    for n in (a, b):
        st = n.status()
        assert st["forks"] == [] and st["heads"][a.account] == 361, st["heads"]
    a.stop()
    report = json.loads(cli("--data", str(a.data), "--json", "ledger", "verify").stdout)
    assert report["ok"], report
