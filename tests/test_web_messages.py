"""Private messages on the web page (node/static/messages.js), in headless
chromium against two real node processes: from a profile's "Message" link to a
conversation, sending through the form, a reply arriving by itself (the view
polls), hostile text shown as text, the conversation list, and the form's
refusal of an empty message.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import Browser
from _nodes import Network, wait_for

pytestmark = pytest.mark.slow

HOSTILE = '<img src=x onerror="window.__pwned=1"> </script><script>window.__pwned=2</script>'


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path, ["ada", "bob"])
    try:
        net.start(edges=[("ada", "bob")])
        net["ada"].post("/api/profile", {"name": "Ada"})
        net["bob"].post("/api/profile", {"name": "Bob the mentor"})
        net.wait_converged(["ada", "bob"], min_events=2)
        yield net
    finally:
        net.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def test_message_from_a_profile_reply_arrives_and_hostile_text_stays_text(
    pair: Network, browser: Browser
) -> None:
    ada, bob = pair["ada"], pair["bob"]
    browser.login(ada)
    assert "Messages" in browser.texts("#nav a")

    # a profile of someone else has a Message link; mine has none
    browser.go(f"profile/{bob.account}")
    browser.wait_text("Bob the mentor")
    browser.click("#message-profile")
    browser.wait(
        lambda: (
            browser.js("return document.documentElement.dataset.route")
            == f"#/messages/{bob.account}"
        ),
        "the Message link to open the conversation",
    )
    browser.wait_text("No messages with this account yet.")

    # an empty message is refused by the form, nothing is sent
    browser.click("#message-send")
    browser.wait_text("must not be blank", "#message-form")

    question = f"Could you look at my draft before Friday? {uuid.uuid4().hex[:8]}"
    browser.fill("#message-text", question)
    browser.click("#message-send")
    browser.wait_text(question, "#thread")
    wait_for(
        lambda: (
            question in [m["text"] for m in bob.get(f"/api/messages/{ada.account}")["messages"]]
        ),
        "bob's node to receive ada's message",
    )
    assert browser.find("#message-text").get_attribute("value") == ""

    # bob replies with hostile text: it arrives by itself, shown as text, runs nothing
    reply = f"Sure. {HOSTILE} {uuid.uuid4().hex[:8]}"
    bob.post("/api/messages", {"to": ada.account, "text": reply})
    browser.wait_text(reply, "#thread")
    assert browser.js("return window.__pwned === undefined")
    assert browser.finds("#thread img") == []
    heads = browser.texts("#thread .message-head")
    assert heads[0].startswith("You") and heads[1].startswith("Bob the mentor")
    browser.full_screenshot("messages-conversation-desktop", 1280)
    browser.full_screenshot("messages-conversation-phone", 390)
    browser.desktop()

    # the conversation list names bob and shows the latest text
    browser.go("messages")
    items = browser.texts("#conversations .conversation")
    assert len(items) == 1 and "Bob the mentor" in items[0] and "Sure." in items[0]

    # my own profile has no Message link
    browser.go(f"profile/{ada.account}")
    browser.wait_text("Ada")
    assert browser.finds("#message-profile") == []

    # writing to an account from the list view opens that conversation
    browser.go("messages")
    browser.fill("#message-to", "not-an-account")
    browser.fill("#message-text", "hello")
    browser.click("#message-send")
    browser.wait_text("account id", "#message-form")
