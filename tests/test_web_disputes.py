"""Disputes on the web page, in headless chromium on five real node processes
(the network of tests/test_disputes_node.py: a mentor, two learners, two
jurors with nodes and one trusted juror without).

A learner whose weaker rival was paid opens the bounty, finds "Dispute this
award" (and "Dispute this review" for a review of its work), files the
dispute with the form; a juror sees the jury duty with its deadline in the
Disputes view and votes on the dispute's page; voting closes (the test moves
every node's wall clock past it, POST /api/admin/clock, rather than wait), the
jurors' nodes reveal by themselves and the learner's page shows the outcome
and the bond paid back. Screenshots at desktop and phone width go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _browser import Browser
from _nodes import Network, Node, wait_for
from test_disputes_node import dispute_network, settled_bounty, start_network

pytestmark = pytest.mark.slow

VOTE_S = 300  # the voting window: never waited out (under the 10-minute clock skew)


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[tuple[Network, Browser]]:
    net = dispute_network(tmp_path)
    browser: Browser | None = None
    try:
        start_network(net)
        for name, who in (("mentor", "Maria Mentor"), ("l1", "Lea Learner"), ("j1", "Jo Juror")):
            net[name].post("/api/profile", {"name": who, "bio": "", "skills": []})
        browser = Browser()
        yield net, browser
    finally:
        if browser is not None:
            browser.close()
        net.close()


def _dispute(node: Node, did: str) -> dict[str, Any]:
    d: dict[str, Any] = node.get(f"/api/disputes/{did}")
    return d


def test_file_vote_and_see_the_outcome_on_the_page(setting: tuple[Network, Browser]) -> None:
    net, b = setting
    nodes = [net[x] for x in ("mentor", "l1", "l2", "j1", "j2")]
    _, l1, l2, j1, j2 = nodes

    def review_l1(bid: str, subs: dict[str, str]) -> None:  # of l1's work, before the award
        j1.post(
            "/api/review",
            {"submission": subs[l1.account], "scores": {"quality": 1}, "comment": "meh"},
        )
        wait_for(
            lambda: any(s["reviews"] for s in l1.get(f"/api/bounties/{bid}")["submissions_detail"]),
            "l1 to see the review",
        )

    unfair = settled_bounty(net, "Explain consensus", l2, nodes, before_award=review_l1)

    # -- the learner finds the offers on the bounty's page and files with the form -------------
    b.login(l1)
    b.go(f"bounty/{unfair['id']}")
    offers = b.wait(
        lambda: [e.text for e in b.finds(".dispute-offer")] or None, "the dispute offers"
    )
    assert "Dispute this award" in offers
    assert any(t.startswith("Dispute this review (of your work") for t in offers), offers
    b.click(".dispute-offer")  # the first: the award
    b.fill(
        "#dispute-form textarea[name=claim]",
        "My answer meets the rubric; the paid one is two lines.",
    )
    b.fill("#dispute-form input[name=bond]", "5")
    # voting closes in 5 minutes (a datetime-local value may carry seconds; the
    # form shows minutes): the jurors below vote well within that on a loaded
    # machine, and the test then moves the clocks past it
    close_at = (datetime.now() + timedelta(seconds=VOTE_S)).replace(microsecond=0)
    b.set_value("#dispute-form input[name=vote_by]", close_at.strftime("%Y-%m-%dT%H:%M:%S"))
    b.click("#dispute-form button[type=submit]")
    err = b.wait(lambda: b.find("#dispute-form .err:not([hidden])").text, "the bond error")
    assert "≥ 10" in err  # checked before anything is sent
    b.fill("#dispute-form input[name=bond]", "25")
    b.click("#dispute-form button[type=submit]")
    b.wait(
        lambda: re.match(r".*#/dispute/([0-9a-f]{64})$", b.driver.current_url),
        "the page to open the new dispute",
    )
    did = str(re.match(r".*#/dispute/([0-9a-f]{64})$", b.driver.current_url).group(1))  # type: ignore[union-attr]
    b.wait_text("My answer meets the rubric", "#dispute-claim")
    rows = b.texts("#jury-table tbody tr")
    assert len(rows) == 3 and all("not yet" in r for r in rows), rows
    assert _dispute(l1, did)["bond"] == 25
    b.full_screenshot("disputes-filed-desktop", 1280)

    # -- a juror sees the duty with its deadline, and votes on the page ------------------------
    wait_for(lambda: _dispute(j1, did), "j1 to hear of the dispute")
    b.login(j1)
    b.go("disputes")
    b.wait_text("Vote as a juror", "#my-disputes")
    assert "voting closes in" in b.find("#my-disputes").text
    b.full_screenshot("disputes-list-phone", 390)
    b.go(f"dispute/{did}")
    sel = b.wait(lambda: b._enabled("#vote-form select[name=verdict]"), "the vote form")
    sel.send_keys("Uphold")
    b.fill("#vote-form textarea[name=reason]", "the paid work is two lines")
    b.click("#vote-form button[type=submit]")
    b.wait_text("Your node reveals your vote once voting closes", "#dispute-next")
    assert _dispute(j1, did)["jurors"][0]["verdict"] is None  # sealed
    j2.post(f"/api/disputes/{did}/vote", {"verdict": "uphold", "reason": "agreed"})

    # -- voting closes: revealed by the jurors' nodes, decided, the bond back ------------------
    vote_by = _dispute(l1, did)["vote_by"]
    assert vote_by > net.now_ms()  # the jurors voted while voting was open
    net.advance_clock(vote_by + 2000 - net.now_ms())
    wait_for(
        lambda: _dispute(l1, did)["phase"] == "upheld" and _dispute(l1, did)["escrow"] == 0,
        "the dispute to be upheld and the bond claimed back",
        timeout=150,
        describe=lambda: _dispute(l1, did),
    )
    b.login(l1)
    b.go(f"dispute/{did}")
    b.wait_text("Outcome: upheld", "#dispute-outcome")
    moves = b.texts("#bond-moves li")
    assert len(moves) == 2 and moves[1].startswith("Paid to"), moves
    verdicts = " ".join(b.texts("#jury-table tbody tr"))
    assert verdicts.count("uphold") == 2 and "the paid work is two lines" in verdicts
    b.full_screenshot("dispute-upheld-desktop", 1280)
    b.full_screenshot("dispute-upheld-phone", 390)
    assert not [line for line in b.console() if "SEVERE" in line], b.console()
