"""The web page in headless chromium, on three real node processes: the whole
bounty story through the pages alone, the forms' checks, live updates, the
node-down banner, and screenshots of every main view at desktop and phone width
(kept in test-artifacts/screenshots/ for a person to look at).

One 3-node network and one browser serve the whole module; the tests run in
file order and build on each other (the story's bounty is what the later
views show).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _browser import Browser
from _nodes import Network, Node, wait_for
from selenium.webdriver.common.action_chains import ActionChains

pytestmark = pytest.mark.slow

TITLE = "Explain CRDTs with a diagram"
REWARD = 1000
ATTACHMENT = b"%PDF-1.4 not really a pdf\n" + bytes(range(256)) * 40


class Story:
    """What the tests of this module share."""

    def __init__(self, net: Network, browser: Browser, root: Path) -> None:
        self.net = net
        self.browser = browser
        self.root = root
        self.bounty = ""
        self.done: set[str] = set()

    @property
    def mentor(self) -> Node:
        return self.net["mentor"]

    @property
    def learner(self) -> Node:
        return self.net["learner"]

    @property
    def reviewer(self) -> Node:
        return self.net["reviewer"]

    def need(self, step: str) -> None:
        if step not in self.done:
            pytest.fail(f"this test builds on the step {step!r}, which did not complete")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    root = tmp_path_factory.mktemp("webstory")
    net = Network(
        root,
        ["mentor", "learner", "reviewer"],
        allocations={"mentor": 100_000, "learner": 5_000, "reviewer": 5_000},
        trusted=["mentor"],
    )
    browser: Browser | None = None
    try:
        net["mentor"].start()
        net["mentor"].wait_ready()
        m = net["mentor"].addr
        net.start(["learner", "reviewer"], bootstrap={"learner": [m], "reviewer": [m]})
        net.wait_peers("learner", "mentor")
        net.wait_peers("reviewer", "mentor")
        for name, who in (
            ("mentor", "Maria Mentor"),
            ("learner", "Lea Learner"),
            ("reviewer", "Rui Reviewer"),
        ):
            net[name].post("/api/profile", {"name": who, "bio": f"{who} on testnet", "skills": []})
        browser = Browser()
        yield Story(net, browser, root)
    finally:
        if browser is not None:
            browser.close()
        net.close()


def _bounty(node: Node, bid: str) -> dict[str, Any]:
    b: dict[str, Any] = node.get(f"/api/bounties/{bid}")
    return b


def _transfers(node: Node) -> int:
    events = node.get(f"/api/accounts/{node.account}/events")["events"]
    return sum(1 for e in events if e["kind"] == "transfer")


def _local(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


def _error(b: Browser, form: str) -> str:
    return str(b.wait(lambda: b.find(f"{form} .err:not([hidden])").text, f"an error in {form}"))


# -- 1. the story --------------------------------------------------------------------------------


def test_mentor_posts_with_checked_form_and_one_bounty_per_double_click(story: Story) -> None:
    b, m = story.browser, story.mentor
    b.login(m)
    assert b.balance() == 100_000
    b.go("post")
    b.wait(lambda: b.find("#post-button"), "the post form")

    # The form checks what the node checks, in words a person reads.
    b.fill("input[name=title]", "   ")
    b.click("#post-button")
    assert "Title must not be blank" in _error(b, "form")
    b.fill("input[name=title]", TITLE)
    for bad in ("1e3", "1.9", "-5", ""):
        b.fill("input[name=reward]", bad)
        b.click("#post-button")
        b.wait(lambda: "Reward" in _error(b, "form"), f"the reward {bad!r} to be refused")
        msg = _error(b, "form")
        assert "Reward must be an integer ≥ 1" in msg or "Reward is required" in msg, msg
    b.fill("input[name=reward]", str(REWARD))
    # The reviewer share is explained with what it reserves.
    b.fill("input[name=reviewer_share]", "10")
    b.wait(
        lambda: "Reserves 100 tokens of the 1,000 tokens reward" in b.find("#share-note").text,
        "the share note",
    )
    # An empty rubric is refused, not silently replaced.
    while b.finds("table.rubric-edit button"):
        b.finds("table.rubric-edit button")[0].click()
    b.click("#post-button")
    assert "rubric needs at least one criterion" in _error(b, "form")
    for name, mx in (("correctness", "10"), ("clarity", "10"), ("depth", "5")):
        b.click("#add-criterion")
        b.finds("input[name=criterion]")[-1].send_keys(name)
        row_max = b.finds("input[name=criterion_max]")[-1]
        row_max.clear()
        row_max.send_keys(mx)
    b.fill("textarea[name=description]", "Write a short explainer of CRDTs, with one diagram.")
    b.fill("input[name=skills]", "distributed-systems, writing")
    now = datetime.now()
    # The review deadline before the submission deadline is refused...
    b.set_value("input[name=submit_by]", _local(now + timedelta(days=3)))
    b.set_value("input[name=review_by]", _local(now + timedelta(days=2)))
    b.click("#post-button")
    assert "Review deadline must be after the submission deadline" in _error(b, "form")
    b.set_value("input[name=review_by]", _local(now + timedelta(days=6)))

    # A double-click on Post makes one bounty.
    ActionChains(b.driver).double_click(b.find("#post-button")).perform()
    b.wait(lambda: "#/bounty/" in b.driver.current_url, "the page of the new bounty")
    story.bounty = b.driver.current_url.split("#/bounty/")[1]
    b.wait_text(TITLE)
    b.wait(lambda: b.balance() == 100_000 - REWARD, "the header balance to drop by the reward")
    mine = [x for x in m.get("/api/bounties")["bounties"] if x["title"] == TITLE]
    assert len(mine) == 1, mine
    got = _bounty(m, story.bounty)
    assert got["rubric"] == [
        {"name": "correctness", "max": 10},
        {"name": "clarity", "max": 10},
        {"name": "depth", "max": 5},
    ]
    assert got["skills"] == ["distributed-systems", "writing"]
    assert got["reward"] == REWARD and got["reviewer_share_bp"] == 1000
    assert got["review_by"] - got["submit_by"] == 3 * 86_400_000
    # The mentor sees Close (and Refund), nothing else.
    b.wait(lambda: b.find("#close-button"), "the Close button")
    assert not b.finds("#submit-form") and not b.finds("#award-button")
    story.done.add("post")


def test_learner_finds_by_search_and_submits_with_an_attachment(story: Story) -> None:
    story.need("post")
    b, learner, bid = story.browser, story.learner, story.bounty
    wait_for(lambda: _bounty(learner, bid), "the learner's node to hear of the bounty")
    b.login(learner)
    b.go("bounties")
    b.fill("input[name=q]", "crdts")  # the description and title, any case
    b.wait(
        lambda: (
            b.finds("a.bounty-title") and all(a.text == TITLE for a in b.finds("a.bounty-title"))
        ),
        "the search to find the bounty",
    )
    b.fill("input[name=q]", "no such words anywhere")
    b.wait_text("No bounty matches these filters.")
    b.fill("input[name=q]", "")
    b.fill("input[name=skill]", "distributed-systems")
    b.fill("input[name=min_reward]", "1.5")
    assert "Min. reward must be an integer" in _error(b, "form")
    b.fill("input[name=min_reward]", "1000")
    b.wait(lambda: [a.text for a in b.finds("a.bounty-title")] == [TITLE], "the filtered list")
    assert "Waiting on you" not in b.main_text()  # an open bounty invites; it does not wait on me
    b.click("a.bounty-title")
    b.wait(lambda: b.find("#submit-form"), "the submit form")
    # The author, skills and rubric are on the page; no mentor action is.
    text = b.main_text()
    assert "Maria Mentor" in text and "distributed-systems" in text and "depth" in text
    assert not b.finds("#close-button") and not b.finds("#award-button")
    assert "at most 8 MiB (this network's limit)" in text

    path = story.root / "diagram.pdf"
    path.write_bytes(ATTACHMENT)
    b.fill("#submit-text", "CRDTs merge concurrent edits without coordination.")
    b.find("#submit-files").send_keys(str(path))
    b.full_screenshot("action-submit-desktop", 1280)
    b.click("#submit-button")
    b.wait(lambda: "You committed at" in b.find("#committed").text, "the commit to be acknowledged")
    assert not b.finds("#submit-form")
    wait_for(
        lambda: len(_bounty(story.mentor, bid)["commit_ids"]) == 1, "the mentor to see the commit"
    )
    story.done.add("submit")


def test_mentor_closes_and_the_work_is_revealed(story: Story) -> None:
    story.need("submit")
    b, bid = story.browser, story.bounty
    b.login(story.mentor)
    b.go(f"bounty/{bid}")
    b.wait(lambda: "1 committed" in b.find("#close-button").text, "Close to count the commit")
    b.click("#close-button")
    # The learner's node reveals by itself; the mentor's page shows it live.
    b.wait_text("CRDTs merge concurrent edits without coordination.")
    b.wait(lambda: b.find("a.file").text == "diagram.pdf", "the attachment link")
    assert not b.finds("#close-button")
    assert b.finds("#award-button")  # closed: Award (and Refund) now
    assert not b.finds("form.review-form")  # the mentor does not review
    story.done.add("close")


def test_reviewer_reviews_with_one_integer_per_criterion(story: Story) -> None:
    story.need("close")
    b, bid = story.browser, story.bounty
    wait_for(
        lambda: _bounty(story.reviewer, bid)["submissions"] == 1,
        "the reviewer's node to see the work",
    )
    b.login(story.reviewer)
    b.go("work")
    b.wait_text("Waiting on you: review a submission")
    b.click("a.bounty-title")
    b.wait(lambda: b.find("form.review-form"), "the review form")
    b.full_screenshot("action-review-desktop", 1280)
    labels = b.texts("form.review-form label")
    assert labels[:3] == ["correctness (0–10)", "clarity (0–10)", "depth (0–5)"], labels
    assert not b.finds("#submit-form") and not b.finds("#award-button")
    scores = b.finds("form.review-form input[name=score]")
    for el, v in zip(scores, ("8", "1.9", "4"), strict=True):
        el.send_keys(v)
    b.click("form.review-form button[type=submit]")
    assert "The score for “clarity” must be an integer in 0..10" in _error(b, "form.review-form")
    scores[1].clear()
    scores[1].send_keys("11")
    b.click("form.review-form button[type=submit]")
    assert "The score for “clarity” must be an integer in 0..10" in _error(b, "form.review-form")
    scores[1].clear()
    scores[1].send_keys("7")
    b.fill("form.review-form textarea[name=comment]", "Clear, and the diagram helps.")
    b.click("form.review-form button[type=submit]")
    b.wait_text("You reviewed this submission.")
    assert not b.finds("form.review-form")
    # Reviews show as a per-criterion table, not as raw JSON.
    rows = b.texts(".review table.scores tbody tr")
    assert rows == ["correctness 8 / 10", "clarity 7 / 10", "depth 4 / 5"], rows
    assert "{" not in b.find(".reviews").text
    story.done.add("review")


def test_mentor_awards_and_every_node_shows_the_result(story: Story) -> None:
    story.need("review")
    b, bid = story.browser, story.bounty
    wait_for(
        lambda: any(s["reviews"] for s in _bounty(story.mentor, bid)["submissions_detail"]),
        "the mentor's node to see the review",
    )
    b.login(story.mentor)
    b.go(f"bounty/{bid}")
    b.wait_text("Review by")
    b.full_screenshot("action-award-desktop", 1280)
    b.fill("input[name=winner_amount]", "2000")
    b.click("#award-button")
    assert "The amounts add up to 2000 but 900 is left" in _error(b, "main")
    b.set_value("input[name=winner_amount]", "")
    b.wait(
        lambda: "900 tokens split evenly between 1 submission(s)" in b.find("#award-note").text,
        "the award note",
    )
    b.click("#award-button")
    b.wait_text("This bounty is settled")
    assert not b.finds("#award-button") and not b.finds("#refund-button")

    # 10 % of the reward to the one (honest) review, the rest to the learner.
    expected = {"mentor": 100_000 - REWARD, "learner": 5_000 + 900, "reviewer": 5_000 + 100}
    for name, want in expected.items():
        node = story.net[name]
        wait_for(
            lambda node=node: _bounty(node, bid)["phase"] == "awarded", f"{name} to see the award"
        )
        b.login(node)
        b.go("account")
        b.wait(
            lambda want=want: b.find("#account-balance").text == f"{want:,}",
            f"{name}'s balance {want}",
        )
        assert b.balance() == want
        rep = node.get("/api/me")["reputation"]
        b.wait(
            lambda rep=rep: b.find(".rep-score").text == str(rep["score"]), f"{name}'s reputation"
        )
        if name == "learner":
            assert rep["points"] >= 10, rep
        # Nothing to do after the settlement, on any node.
        b.go(f"bounty/{bid}")
        b.wait_text("This bounty is settled")
        assert not b.finds(
            "#submit-form, form.review-form, #award-button, #close-button, #refund-button"
        )
    # The mentor's node shows the learner's profile with the awarded work.
    story.done.add("award")


def test_learner_downloads_the_attachment_and_the_credential(story: Story) -> None:
    story.need("award")
    b, learner, bid = story.browser, story.learner, story.bounty
    b.login(learner)
    b.go(f"bounty/{bid}")
    href = b.attr("a.file", "href")
    assert "/api/blobs/" in href and "name=diagram.pdf" in href, href
    b.click("a.file")
    assert b.downloaded("diagram.pdf") == ATTACHMENT

    b.go("credentials")
    has_routes = learner.request("GET", "/api/credentials").status_code != 404
    if not has_routes:
        b.wait_text("Credentials are not available on this node.")
        return
    wait_for(
        lambda: [
            c for c in learner.get("/api/credentials")["credentials"] if c["status"] == "ready"
        ],
        "the learner's credential to be ready",
        describe=lambda: learner.get("/api/credentials"),
    )
    b.go("bounties")
    b.go("credentials")
    name = b.attr("a.cred-download", "download")
    assert TITLE in b.main_text()
    b.click("a.cred-download")
    data = b.downloaded(name)
    cred = json.loads(data)
    assert learner.account in json.dumps(cred) or "did:" in json.dumps(cred)
    # Verify the downloaded file by choosing it.
    saved = story.root / name
    saved.write_bytes(data)
    b.find("#verify-file").send_keys(str(saved))
    b.wait(lambda: b.find("#verify-verdict").text.startswith("Valid"), "the credential to verify")
    # Dropped on the page, the same file verifies too.
    b.go("bounties")
    b.go("credentials")
    b.wait(lambda: b.find("#drop-zone"), "the drop zone")
    b.js(
        "const dt = new DataTransfer();"
        "dt.items.add(new File([arguments[0]], 'dropped.json', {type: 'application/json'}));"
        "document.getElementById('drop-zone').dispatchEvent("
        " new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
        data.decode(),
    )
    b.wait(lambda: b.find("#verify-verdict").text.startswith("Valid"), "the dropped file to verify")
    # A tampered copy does not verify.
    bad = json.loads(data)
    bad["name"] = str(bad.get("name", "")) + " (edited)"
    tampered = story.root / "tampered.json"
    tampered.write_text(json.dumps(bad))
    b.find("#verify-file").send_keys(str(tampered))
    b.wait(
        lambda: b.find("#verify-verdict").text.startswith("Not valid"), "the tampered copy to fail"
    )

    # A node without the credential routes (an older one): the page says so
    # instead of failing. The page's fetch answers what such a node answers.
    b.js(
        "const real = window.fetch;"
        "window.fetch = async (u, o) => String(u).startsWith('/api/credentials')"
        " ? new Response(JSON.stringify({error: 'not_found', message: 'nothing at ' + u}),"
        "   {status: 404, headers: {'content-type': 'application/json'}})"
        " : real(u, o);"
    )
    b.go("bounties")
    b.go("credentials")
    b.wait_text("Credentials are not available on this node.")
    b.find("#verify-file").send_keys(str(saved))
    b.wait_text("Verifying credentials is not available on this node.")


def test_account_forms(story: Story) -> None:
    """Transfer, vouch and profile through the learner's account page."""
    story.need("award")
    b, learner, m = story.browser, story.learner, story.mentor
    b.login(learner)
    b.go("account")
    b.wait(lambda: b.find("#my-account").text == learner.account, "the full account id")
    start = b.balance()
    b.fill("#transfer-form input[name=to]", learner.account)
    b.fill("#transfer-form input[name=amount]", "5")
    b.click("#transfer-button")
    assert "cannot transfer to yourself" in _error(b, "#transfer-form")
    b.fill("#transfer-form input[name=to]", m.account)
    for bad in ("1e3", "2.5", "0"):
        b.fill("#transfer-form input[name=amount]", bad)
        b.click("#transfer-button")
        b.wait(
            lambda: "Amount must be an integer ≥ 1" in _error(b, "#transfer-form"),
            f"the amount {bad!r} to be refused",
        )
    b.fill("#transfer-form input[name=amount]", "5")
    b.fill("#transfer-form input[name=memo]", "for the review tips")
    # The node acts but the answer is lost on the way (the page's fetch fails
    # after the request went through); the user clicks again: the same
    # idempotency key makes the node replay its first answer, not pay twice.
    sent = _transfers(learner)
    b.js(
        "const real = window.fetch; let n = 0;"
        "window.fetch = async (u, o) => { const r = await real(u, o);"
        " if (String(u).includes('/api/transfer') && n++ === 0) throw new TypeError('lost');"
        " return r; };"
    )
    b.click("#transfer-button")
    assert "The node is not answering" in _error(b, "#transfer-form")
    wait_for(lambda: _transfers(learner) == sent + 1, "the first attempt to be authored")
    b.click("#transfer-button")
    b.wait(lambda: b.balance() == start - 5, "the balance to drop by 5")
    b.wait(lambda: not b.find("#transfer-form .err").is_displayed(), "the error to clear")
    b.wait(
        lambda: not b.find("#banner").is_displayed() or "again" in b.find("#banner").text,
        "the unreachable banner to clear",
    )
    assert _transfers(learner) == sent + 1
    b.wait(lambda: "Tokens sent" in b.main_text(), "the transfer in the recent activity")

    b.fill("#vouch-form input[name=account]", story.reviewer.account)
    b.click("#vouch-button")
    b.wait(
        lambda: story.reviewer.account in learner.get("/api/me")["vouches_by_me"],
        "the vouch to be published",
    )
    b.wait(lambda: "Rui Reviewer" in b.main_text(), "the vouch listed by name")

    b.wait(lambda: b.find("#profile-form input[name=name]").get_attribute("value"), "the profile")
    b.fill("#profile-form input[name=name]", "   ")
    b.click("#profile-button")
    assert "Name must not be blank" in _error(b, "#profile-form")
    b.fill("#profile-form input[name=name]", "Lea L.")
    b.fill("#profile-form input[name=skills]", "crdts, writing")
    b.click("#profile-button")
    wait_for(
        lambda: m.get(f"/api/profiles/{learner.account}")["name"] == "Lea L.",
        "the new profile to reach the mentor's node",
    )
    b.wait(lambda: "Lea L." in b.find("#wallet").text, "the header to show the new name")


def test_mentor_refunds_with_a_confirming_second_click(story: Story) -> None:
    b, m = story.browser, story.mentor
    bid = m.post(
        "/api/bounties",
        {"title": "Proofread my notes", "reward": 250, "rubric": [{"name": "care", "max": 5}]},
    )["id"]
    b.login(m)
    b.go("work")
    b.wait_text("Waiting on you: close submissions")
    before = b.balance()
    b.go(f"bounty/{bid}")
    b.click("#refund-button")
    b.wait(lambda: b.find("#refund-button").text == "Confirm refund", "the refund to ask again")
    assert m.get(f"/api/bounties/{bid}")["phase"] == "open"  # one click did nothing yet
    b.click("#refund-button")
    b.wait_text("This bounty is settled: the mentor refunded it.")
    b.wait(lambda: b.balance() == before + 250, "the escrow back in the balance")


# -- 2. live updates and the node-down banner ----------------------------------------------------


def test_live_update_without_reload(story: Story) -> None:
    """The header balance follows a transfer made elsewhere, pushed by /api/stream."""
    b, m, learner = story.browser, story.mentor, story.learner
    b.login(m)
    b.go("network")
    b.wait(lambda: b.find("#net-events"), "the network view")
    before = b.balance()
    b.js("window.__sameDocument = 1")
    learner.post("/api/transfer", {"to": m.account, "amount": 7, "memo": "thanks"})
    b.wait(lambda: b.balance() == before + 7, "the balance to update live")
    assert b.js("return window.__sameDocument") == 1  # no reload happened


# -- 3. screenshots at desktop and phone width ---------------------------------------------


VIEWS = [
    "bounties",
    "bounty/{bid}",
    "post",
    "work",
    "account",
    "credentials",
    "network",
    "profile/{learner}",
]


def test_screenshots_and_phone_width(story: Story) -> None:
    story.need("award")
    b = story.browser
    b.login(story.learner)
    routes = [v.format(bid=story.bounty, learner=story.learner.account) for v in VIEWS]
    for width, label in ((1280, "desktop"), (390, "phone")):
        if label == "phone":
            b.phone()
        else:
            b.desktop()
        for route in routes:
            b.go(route)
            b.wait(
                lambda: "Loading…" not in b.main_text() and b.main_text().strip(),
                f"{route} to load",
            )
            name = route.split("/")[0]
            b.full_screenshot(f"{name}-{label}", width)
            if label == "phone":
                sw = b.js("return document.documentElement.scrollWidth")
                assert sw <= 390, f"{route}: the page is {sw} px wide at phone width"
    b.desktop()


def test_banner_while_the_node_is_down(story: Story) -> None:
    """Runs last: it stops the reviewer's node. The page says the node is
    unreachable; when the node is back (a new process, so the session is gone)
    the page asks for a new login link instead of failing silently."""
    b, r = story.browser, story.reviewer
    b.login(r)
    b.go("bounties")
    b.wait(lambda: b.finds("a.bounty-title"), "the list")
    port = r.api.rsplit(":", 1)[1]
    code, _ = r.stop()
    assert code == 0
    b.wait(
        lambda: "unreachable" in b.find("#banner").text and b.find("#banner").is_displayed(),
        "the banner",
    )
    r.start(extra=["--api-port", port])
    r.wait_ready()
    b.wait_text("Your session has ended")
    b.login(r)
    b.wait(
        lambda: not b.find("#banner").is_displayed() or "again" in b.find("#banner").text,
        "the banner to clear",
    )


# -- 4. quality control that rests on trust (PROTOCOL.md §6.5) --------------------------------


def test_minimum_reviewer_trust_and_the_trust_weighted_award(story: Story) -> None:
    """The mentor posts with a minimum reviewer trust; the learner (trusted in
    distributed-systems by the story's award) and a fresh key review the
    reviewer's work. The page shows which review counts toward the quorum, and
    the Award form which reviews each rule pays and why; the award pays the
    trusted review. The learner's profile shows calibration and where its trust
    comes from."""
    from learnmesh.protocol import ChainWriter, KeyPair

    story.need("award")
    b, m, learner, worker = story.browser, story.mentor, story.learner, story.reviewer
    b.login(m)
    b.go("post")
    b.fill("input[name=title]", "Explain vector clocks")
    b.fill("input[name=reward]", "1000")
    b.fill("input[name=skills]", "distributed-systems")
    b.fill("input[name=min_reviewer_trust]", "lots")
    b.click("#post-button")
    assert "Minimum reviewer trust must be a percent in 0..100" in _error(b, "form")
    b.fill("input[name=min_reviewer_trust]", "0.1")
    b.click("#post-button")
    b.wait(lambda: "#/bounty/" in b.driver.current_url, "the page of the new bounty")
    bid = b.driver.current_url.split("#/bounty/")[1]
    b.wait(
        lambda: "0.10 % of all trust" in b.find("#min-reviewer-trust").text,
        "the minimum reviewer trust on the bounty page",
    )
    assert _bounty(m, bid)["review_trust"]["min_reviewer_trust_ppm"] == 1000

    wait_for(lambda: _bounty(worker, bid), "the worker's node to hear of the bounty")
    worker.post("/api/submit", {"bounty": bid, "text": "Vector clocks order events causally."})
    wait_for(lambda: _bounty(m, bid)["commits"] == 1, "the mentor to see the commit")
    m.post(f"/api/bounties/{bid}/close", {})
    sid = wait_for(
        lambda: [s["id"] for s in _bounty(m, bid)["submissions_detail"]][:1],
        "the work to be revealed",
    )[0]
    wait_for(lambda: _bounty(learner, bid)["submissions"] == 1, "the learner to see the work")
    trusted = learner.post(
        "/api/review", {"submission": sid, "scores": {"correctness": 9, "clarity": 9}}
    )["id"]
    fresh = ChainWriter(KeyPair(bytes([77]) * 32), story.net.network_id)
    body = {
        "bounty": bytes.fromhex(bid),
        "submission": bytes.fromhex(sid),
        "scores": [1, 1],
        "comment": "meh",
    }
    ev = fresh.sign("review", body, int(datetime.now().timestamp() * 1000), [bytes.fromhex(sid)])
    r = m.post_raw(ev.raw)
    assert r.status_code == 200 and "error" not in r.json(), r.text
    rt = wait_for(
        lambda: (
            ((x := _bounty(m, bid)["review_trust"])["submissions"].get(sid, {}).get("reviews", {}))
            .get(trusted, {})
            .get("counts")
            and x
        ),
        "the learner's review to count",
    )
    assert rt["paid_by"] == {"median": [], "trusted": [trusted]}  # 900 vs 100: no plain median

    # The submission says what counts; the Award form which reviews are paid, and why.
    b.go(f"bounty/{bid}")
    b.wait(
        lambda: "1 of 1 wanted review(s) count (quorum met)" in b.find(".review-quorum").text,
        "the quorum line",
    )

    def judged() -> list[str] | None:
        t = b.texts(".review-trust")
        return t if len(t) == 2 else None  # the page follows the node: both reviews, soon

    lines = b.wait(judged, "both reviews with their trust")
    assert lines is not None
    assert any("does not count (below the minimum reviewer trust)" in t for t in lines), lines
    assert any("counts, near the trust-weighted median" in t for t in lines), lines
    assert b.find("#award-reviewers").get_attribute("value") == "trusted"
    # the form was drawn before the reviews came: it follows them
    b.wait(lambda: "2 review(s)" in b.find(".winner").text, "the Award form to count the reviews")
    b.wait(
        lambda: (
            "100 tokens to 1 review(s) near the trust-weighted median" in b.find("#award-note").text
        ),
        "the award note to count the trusted review",
    )

    def paid_row() -> list[str] | None:
        t = b.texts("#award-review-table tbody tr")
        ok = any("Lea L." in x and "100 tokens" in x and "only review that counts" in x for x in t)
        return t if ok else None

    rows = b.wait(paid_row, "the trusted review to be paid, by name, and why")
    assert rows is not None
    assert any("not paid" in t and "minimum trust" in t for t in rows), rows
    b.full_screenshot("action-award-trust-desktop", 1280)
    b.js(
        "const s = document.getElementById('award-reviewers'); s.value = 'median';"
        "s.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    b.wait(
        lambda: (
            "1,000 tokens split evenly" in b.find("#award-note").text
            and "review(s)" not in b.find("#award-note").text
        ),
        "the plain median to pay no review",
    )
    b.js(
        "const s = document.getElementById('award-reviewers'); s.value = 'trusted';"
        "s.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    b.wait(lambda: "900 tokens split evenly" in b.find("#award-note").text, "back to trusted")
    b.click("#award-button")
    b.wait_text("This bounty is settled")
    paid = {x["id"]: x["paid"] for x in _bounty(m, bid)["submissions_detail"][0]["reviews"]}
    assert paid == {trusted: 100, ev.id.hex(): 0}

    # Calibration and the edges that gave the trust, on the learner's profile.
    b.go(f"profile/{learner.account}")
    b.wait(lambda: "Review calibration" in b.find(".trust-calibration").text, "calibration")
    edges = b.texts(".trust-edges tbody tr")
    assert any("paid work" in t and "distributed-systems" in t for t in edges), edges


def test_a_learning_path_posted_from_the_page(story: Story) -> None:
    """The mentor posts a bounty with a prerequisite (the story's bounty) and a
    resource from the form; a bad address is refused in words; every node shows
    the terms, and the prerequisite links to its bounty."""
    story.need("award")
    b, m, learner = story.browser, story.mentor, story.learner
    b.login(m)
    b.go("post")
    b.fill("input[name=title]", "Build a CRDT counter")
    b.fill("input[name=reward]", "500")
    b.wait(
        lambda: any(
            o.get_attribute("value") == story.bounty for o in b.finds("#prereq-bounties option")
        ),
        "the known bounties offered as prerequisites",
    )
    b.js(
        "const s = document.getElementById('prereq-bounties');"
        "for (const o of s.options) o.selected = o.value === arguments[0];",
        story.bounty,
    )
    b.fill("input[name=prereq_skills]", "distributed-systems")
    b.click("#add-resource")
    b.fill("input[name=resource_title]", "A comprehensive study of CRDTs")
    b.fill("input[name=resource_url]", "javascript:alert(1)")
    b.fill("input[name=resource_licence]", "CC-BY-4.0")
    b.click("#post-button")
    assert "must start with http:// or https://" in _error(b, "form")
    b.fill("input[name=resource_url]", "https://hal.inria.fr/inria-00555588")
    b.click("#post-button")
    b.wait(lambda: "#/bounty/" in b.driver.current_url, "the page of the new bounty")
    bid = b.driver.current_url.split("#/bounty/")[1]
    b.wait(lambda: "A comprehensive study of CRDTs" in b.find("#bounty-terms").text, "the terms")
    terms = b.find("#bounty-terms").text
    assert TITLE in terms and "skill: distributed-systems" in terms and "CC-BY-4.0" in terms
    got = wait_for(
        lambda: _bounty(learner, bid).get("terms"), "the learner's node to fold the terms"
    )
    assert got["prereq_bounties"] == [{"id": story.bounty, "title": TITLE}]
    assert got["resources"][0]["url"] == "https://hal.inria.fr/inria-00555588"
    b.click("#bounty-terms .prereqs a")
    b.wait(lambda: story.bounty in b.driver.current_url, "the prerequisite's page")
