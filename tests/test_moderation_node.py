"""Moderation on real node processes (issue 12 item 5): a spammer posts, two
members flag, every node's hidden view agrees; a node that blocks the spammer
stops relaying its new events (the node behind it still gets them, by sync)
and hides them; the ledger digest stays equal on all nodes. The CLI drives the
blocklist and reads the flags.

Topology: spam — m1 — m2 (a line), so m2 hears of the spammer's events only
through m1: by m1's gossip, or by m2's sync with m1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _nodes import ApiError, Network, Node, cli, wait_for


def _post(n: Node, title: str) -> str:
    bid: str = n.post(
        "/api/bounties",
        {
            "title": title,
            "description": "Buy followers now, cheap!!!",
            "reward": 10,
            "rubric": [{"name": "x", "max": 10}],
            "skills": [],
        },
    )["id"]
    return bid


def _bounty(n: Node, bid: str) -> dict[str, Any] | None:
    for b in n.get("/api/bounties")["bounties"]:
        if b["id"] == bid:
            return dict(b)
    return None


def _hidden_events(n: Node) -> tuple[set[str], str]:
    r = n.get("/api/flags")
    return {i["subject"] for i in r["hidden"]["events"]}, r["trust_digest"]


@pytest.fixture
def net(tmp_path: Path) -> Any:
    with Network(tmp_path, ["spam", "m1", "m2"], trusted=["m1", "m2"]) as n:
        n.start(edges=[("spam", "m1"), ("m1", "m2")])
        yield n


def test_flags_hide_everywhere_and_a_block_stops_relaying(net: Network) -> None:
    spam, m1, m2 = net["spam"], net["m1"], net["m2"]
    nodes = [spam, m1, m2]

    # -- the spammer posts; two members flag; every node hides it alike -----------
    b1 = _post(spam, "FREE TOKENS click here")
    for n in nodes:
        wait_for(lambda n=n: _bounty(n, b1), f"{n.name} to see the spam", describe=net.describe)
    f1 = m1.post("/api/flags", {"target": b1, "category": "spam", "note": "an ad"})
    assert f1["account"] == spam.account and f1["target"] == b1
    r = cli("--data", str(m2.data), "--json", "flag", b1[:12], "--category", "abuse")
    assert json.loads(r.stdout)["target"] == b1

    def agreed() -> tuple[set[str], str] | None:
        views = [_hidden_events(n) for n in nodes]
        if all(v == views[0] for v in views) and views[0][0] == {b1}:
            return views[0]
        return None

    hidden, _ = wait_for(agreed, "every node to hide the flagged bounty", describe=net.describe)
    assert hidden == {b1}
    view = m2.get("/api/flags")
    item = view["hidden"]["events"][0]
    assert item["target_kind"] == "bounty" and item["account"] == spam.account
    assert sorted(f["flagger"] for f in item["flags"]) == sorted([m1.account, m2.account])
    assert item["categories"] == {"abuse": 1, "spam": 1}
    for n in nodes:
        b = _bounty(n, b1)
        assert b is not None and b["hidden"] is True and b["hidden_by"] == "flags", (n.name, b)
        assert "hidden by community flags" in b["hidden_why"]
    # the spammer cannot flag itself, and a second flag by the same member is refused
    with pytest.raises(ApiError) as exc:
        m1.post("/api/flags", {"target": b1, "category": "other"})
    assert exc.value.status == 409 and "already flagged" in str(exc.value)
    with pytest.raises(ApiError) as exc:
        spam.post("/api/flags", {"account": spam.account, "category": "spam"})
    assert exc.value.status == 400
    # the human output of `flags` lists it
    out = cli("--data", str(m1.data), "flags").stdout
    assert "hidden by community flags" in out and "FREE TOKENS" in out

    # -- m1 blocks the spammer: its new events are admitted but not relayed ----------
    r = cli("--data", str(m1.data), "--json", "block", spam.account, "--reason", "ads")
    assert json.loads(r.stdout) == {"account": spam.account, "blocked": True, "already": False}
    blocks = json.loads(cli("--data", str(m1.data), "--json", "blocks").stdout)
    assert [(b["account"], b["reason"]) for b in blocks["blocks"]] == [(spam.account, "ads")]
    digest = net.wait_converged(["spam", "m1", "m2"])
    m1_before = m1.status()["stats"]
    m2_before = m2.status()["stats"]

    b2 = _post(spam, "MORE FREE TOKENS")
    for n in (m1, m2):
        wait_for(lambda n=n: _bounty(n, b2), f"{n.name} to get the new spam", describe=net.describe)
    m1_after = m1.status()["stats"]
    m2_after = m2.status()["stats"]
    assert m1_after["relay_blocked"] > m1_before["relay_blocked"], (m1_before, m1_after)
    # m2 has no other way to the spammer than m1, and m1 did not pass it on by gossip:
    # it came by m2's sync with m1
    assert m2.status()["peers"] == [m1.peer_id]
    assert m2_after["events_applied_gossip"] == m2_before["events_applied_gossip"]
    assert m2_after["events_applied_sync"] > m2_before["events_applied_sync"]
    # m1 hides it (its own block); m2 does not (not flagged, not blocked there)
    shown1, shown2 = _bounty(m1, b2), _bounty(m2, b2)
    assert shown1 is not None and shown1["hidden_by"] == "block"
    assert shown1["hidden_why"] == "you blocked this author: ads"
    assert shown2 is not None and shown2["hidden"] is False
    detail = m1.get(f"/api/bounties/{b1}")
    assert detail["hidden"] is True and detail["hidden_by"] == "block"
    # the ledger does not depend on the blocklist: one digest everywhere
    after = net.wait_converged(["spam", "m1", "m2"])
    assert after != digest
    metrics = m1.request("GET", "/metrics").text
    assert "learnmesh_relay_blocked_events_total" in metrics

    # -- unblock: relaying resumes ----------------------------------------------------
    r = cli("--data", str(m1.data), "--json", "unblock", spam.account)
    assert json.loads(r.stdout) == {"account": spam.account, "blocked": False}
    again = cli("--data", str(m1.data), "unblock", spam.account, check=False)
    assert again.returncode == 2 and "not blocked" in again.stderr + again.stdout
    assert "Traceback" not in again.stderr
    blocked_then = m1.status()["stats"]["relay_blocked"]
    gossip_then = m2.status()["stats"]["events_applied_gossip"]
    b3 = _post(spam, "third")
    wait_for(lambda: _bounty(m2, b3), "m2 to get the third post", describe=net.describe)
    wait_for(
        lambda: m2.status()["stats"]["events_applied_gossip"] > gossip_then,
        "m2 to get the third post by m1's gossip",
        describe=net.describe,
    )
    assert m1.status()["stats"]["relay_blocked"] == blocked_then
    net.wait_converged(["spam", "m1", "m2"])


def test_user_mistakes_get_a_sentence(net: Network) -> None:
    m1 = net["m1"]
    for body, words in [
        ({"category": "spam"}, "say what to flag"),
        ({"target": "zz", "category": "spam"}, "target"),
        ({"account": m1.account, "category": "rude"}, "category must be one of"),
        ({"target": "ab" * 32, "category": "spam"}, "unknown event"),
        ({"account": m1.account, "category": "spam"}, "cannot flag yourself"),
        ({"account": "lmnope", "category": "spam"}, "account"),
    ]:
        with pytest.raises(ApiError) as exc:
            m1.post("/api/flags", body)
        assert words in str(exc.value), (body, str(exc.value))
    with pytest.raises(ApiError) as exc:
        m1.post("/api/blocks", {"account": m1.account})
    assert "yourself" in str(exc.value)
    r = cli("--data", str(m1.data), "flag", "--category", "spam", check=False)
    assert r.returncode == 2 and "EVENT_ID or --account" in r.stderr + r.stdout


def test_moderation_answers_match_the_description(net: Network) -> None:
    from test_openapi import Checker

    spam, m1 = net["spam"], net["m1"]
    bid = _post(spam, "spam")
    wait_for(lambda: _bounty(m1, bid), "m1 to get the spam", describe=net.describe)
    c = Checker(m1, m1.get("/api/openapi.json"))
    c.call("POST", "/api/flags", body={"target": bid, "category": "spam", "note": "ad"})
    c.call("POST", "/api/flags", body={"account": spam.account, "category": "abuse"})
    status, err = c.call("POST", "/api/flags", body={"account": spam.account, "category": "spam"})
    assert (status, err["error"]) == (409, "duplicate_flag")
    status, _ = c.call("POST", "/api/flags", body={"target": "cd" * 32, "category": "spam"})
    assert status == 404
    _, flags = c.call("GET", "/api/flags")
    assert {i["subject"] for i in flags["hidden"]["events"]} == {bid}
    assert [i["subject"] for i in flags["hidden"]["accounts"]] == [spam.account]
    c.call("POST", "/api/blocks", body={"account": spam.account, "reason": "ads"})
    _, blocks = c.call("GET", "/api/blocks")
    assert blocks["blocks"][0]["reason"] == "ads"
    _, listed = c.call("GET", "/api/bounties")
    assert {b["id"]: b["hidden_by"] for b in listed["bounties"]} == {bid: "block"}
    c.call("GET", "/api/bounties/{bid}", f"/api/bounties/{bid}")
    c.call("DELETE", "/api/blocks/{account}", f"/api/blocks/{spam.account}")
    status, _ = c.call("DELETE", "/api/blocks/{account}", f"/api/blocks/{spam.account}")
    assert status == 404
    _, listed = c.call("GET", "/api/bounties")
    assert {b["id"]: b["hidden_by"] for b in listed["bounties"]} == {bid: "flags"}
