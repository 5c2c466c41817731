"""Payments, in and out, with their memos: the API and the CLI, where a hostile
memo must reach the terminal as plain text (no markup, no escape sequences).
The page's view of the same list is checked by the browser tests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from _nodes import Network, cli, wait_for

pytestmark = pytest.mark.slow

HOSTILE = "[bold red]FAKE[/] \x1b[2J\x1b]0;title\x07 \u202eevil :smile:"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    network = Network(tmp_path_factory.mktemp("payments"), ["a", "b"])
    try:
        network.start(edges=[("b", "a")])
        yield network
    finally:
        network.close()


def test_payments_list_memos_both_ways(net: Network) -> None:
    a, b = net["a"], net["b"]
    sent = a.post("/api/transfer", {"to": b.account, "amount": 7, "memo": "thanks for the help"})
    b.post("/api/transfer", {"to": a.account, "amount": 2, "memo": HOSTILE})
    wait_for(
        lambda: any(p["amount"] == 2 for p in a.get("/api/payments")["payments"]),
        "a to see b's payment",
    )
    mine = a.get("/api/payments")["payments"]
    inbound = [p for p in mine if p["direction"] == "in"]
    outbound = [p for p in mine if p["direction"] == "out"]
    assert [(p["from"], p["amount"], p["memo"]) for p in inbound] == [(b.account, 2, HOSTILE)]
    assert [(p["to"], p["amount"], p["memo"], p["id"]) for p in outbound] == [
        (b.account, 7, "thanks for the help", sent["id"])
    ]
    # Someone else's payments, by account; newest first.
    theirs = a.get(f"/api/payments?account={b.account}")["payments"]
    assert [p["direction"] for p in theirs] == ["out", "in"]
    assert theirs[0]["timestamp"] >= theirs[1]["timestamp"]

    out = cli("--data", str(a.data), "payments").stdout
    assert "thanks for the help" in out and "FAKE" in out, out
    assert "\x1b[2J" not in out and "\x1b]0;" not in out and "\u202e" not in out, repr(out)
    assert "[bold red]FAKE[/]" in out, "markup in a memo is shown as typed, not applied"
    js = json.loads(cli("--data", str(a.data), "--json", "payments").stdout)
    assert js["payments"][0]["memo"] in (HOSTILE, "thanks for the help")
