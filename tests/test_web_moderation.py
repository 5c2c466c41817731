"""Moderation in the web page (headless chromium, two real node processes): a
member flags a spammer's bounty from the bounty page, the list greys it out as
"hidden by community flags" with "Show anyway"; the member blocks the spammer
from its profile, the list then says "you blocked this author"; the
Moderation view lists the block (with Unblock) and what the community hid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import Browser
from _nodes import Network, Node, wait_for

pytestmark = pytest.mark.slow

SPAM = "FREE TOKENS click here"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Network, Browser, str]]:
    root: Path = tmp_path_factory.mktemp("webmod")
    net = Network(root, ["member", "spammer"], trusted=["member"])
    browser: Browser | None = None
    try:
        net.start(edges=[("spammer", "member")])
        net["spammer"].post("/api/profile", {"name": "Spam Bot", "bio": "", "skills": []})
        bid = net["spammer"].post(
            "/api/bounties",
            {
                "title": SPAM,
                "description": "cheap followers",
                "reward": 5,
                "rubric": [{"name": "x", "max": 10}],
                "skills": [],
            },
        )["id"]
        wait_for(
            lambda: any(b["id"] == bid for b in net["member"].get("/api/bounties")["bounties"]),
            "the member's node to get the spam",
            describe=net.describe,
        )
        browser = Browser()
        yield net, browser, str(bid)
    finally:
        if browser is not None:
            browser.close()
        net.close()


def _listed(node: Node, bid: str) -> dict[str, Any]:
    for b in node.get("/api/bounties")["bounties"]:
        if b["id"] == bid:
            return dict(b)
    raise AssertionError(f"{bid} not listed")


def test_flag_hide_show_anyway_block_and_unblock(env: tuple[Network, Browser, str]) -> None:
    net, b, bid = env
    member, spammer = net["member"], net["spammer"]
    b.login(member)

    # the bounty list shows the spam as any other bounty at first
    b.go("bounties")
    b.wait_text(SPAM)
    assert not b.finds("li.bounty.moderated")

    # flag it from its page
    b.go(f"bounty/{bid}")
    b.click(".flag-details summary")
    b.wait(lambda: b.find("#flag-target option"), "the flag form's choices")
    assert SPAM in b.find("#flag-target").text
    b.set_value("#flag-category", "spam")
    b.fill("#flag-note", "an advert")
    b.click("#flag-send")
    b.wait_text("Flag published", "#toast")
    flags = member.get("/api/flags")
    assert [i["subject"] for i in flags["hidden"]["events"]] == [bid]
    assert flags["mine"][0]["note"] == "an advert"
    b.wait_text("You flagged 1 item(s) here", "#moderation-section")

    # the list greys it out with the reason, and shows it on demand
    b.go("bounties")
    b.wait(lambda: b.find("li.bounty.moderated .hidden-note"), "the spam greyed out")
    assert "hidden by community flags" in b.find("li.bounty.moderated .hidden-note").text
    assert not b.find("li.bounty.moderated .moderated-body").is_displayed()
    assert SPAM not in b.main_text()
    b.screenshot("moderation-list-hidden")
    b.click("li.bounty.moderated .show-anyway")
    b.wait(lambda: b.find("li.bounty.moderated .moderated-body").is_displayed(), "show anyway")
    assert SPAM in b.main_text()

    # block the spammer from its profile
    b.go(f"profile/{spammer.account}")
    b.fill("#block-reason", "ads")
    b.click("#block-profile")
    b.wait_text("Blocked on this node", ".block-section")
    assert [x["account"] for x in member.get("/api/blocks")["blocks"]] == [spammer.account]
    assert _listed(member, bid)["hidden_by"] == "block"
    b.go("bounties")
    b.wait_text("you blocked this author", "li.bounty.moderated .hidden-note")

    # the Moderation view: my block and what the community hid; unblock from there
    b.go("moderation")
    b.wait_text("Spam Bot", "#my-blocks")
    b.wait_text(SPAM, "#community-hidden")
    b.screenshot("moderation-view")
    assert "an advert" in (b.find("#community-hidden").get_attribute("textContent") or "")
    b.click("#my-blocks .unblock")
    b.wait_text("You have blocked no one")
    assert member.get("/api/blocks")["blocks"] == []
    assert _listed(member, bid)["hidden_by"] == "flags"  # the community's flags still hide it

    # a person's own content offers no flag or block of itself
    b.go(f"profile/{member.account}")
    b.wait_text("Reputation")
    assert not b.finds("#block-profile")
    # no script error from the page or this feature (other feature scripts are
    # other tests' business)
    others = ("disputes.js", "messages.js", "discussion.js", "recommend.js")
    severe = [m for m in b.console() if m.startswith("SEVERE") and not any(o in m for o in others)]
    assert severe == [], severe
