"""The "For you" page (node/static/recommend.js) in headless chromium, on two
real node processes: a trusted mentor posts an intro, an advanced bounty that
needs the intro, and a python task; the learner (python on its profile) opens
For you on its own node and sees them ranked with reasons, the advanced one
flagged with a link to its missing prerequisite, every title linking to its
bounty. Screenshots at desktop and phone width go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import Browser
from _nodes import Network, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    n = Network(
        tmp_path,
        ["mentor", "learner"],
        allocations={"mentor": 100_000, "learner": 5_000},
        trusted=["mentor"],
    )
    try:
        yield n
    finally:
        n.close()


def test_for_you_lists_ranked_bounties_with_reasons_and_missing_prerequisites(
    net: Network,
) -> None:
    m, lrn = net["mentor"], net["learner"]
    net.start(edges=[("learner", "mentor")])
    m.post("/api/profile", {"name": "Maria Mentor", "bio": "", "skills": []})
    lrn.post("/api/profile", {"name": "Lea", "bio": "", "skills": ["python"]})

    def post(title: str, skills: list[str], reward: int, **terms: list[str]) -> str:
        body = {"title": title, "description": "Do it well.", "reward": reward, "skills": skills}
        return str(m.post("/api/bounties", {**body, **terms})["id"])

    py = post("Write a python parser", ["python"], 3_000)
    intro = post("Intro to SQL", ["sql"], 1_000)
    adv = post("Advanced SQL", ["sql"], 9_000, prereq_bounties=[intro])
    wait_for(
        lambda: lrn.get("/api/recommendations")["count"] == 3,
        "the learner's node to hold the three bounties",
    )

    b = Browser()
    try:
        b.login(lrn)
        assert "For you" in b.texts("#nav a")
        b.click("#nav a[href='#/next']")
        b.wait(
            lambda: b.js("return document.documentElement.dataset.route") == "#/next",
            "the For you view",
        )
        items = b.wait(lambda: b.finds("#recommendations > li.rec") or None, "the ranked list")
        ids = [str(e.get_attribute("id")) for e in items]
        # ready ones first (python is on the profile), the advanced one last
        assert ids == [f"rec-{py}", f"rec-{intro}", f"rec-{adv}"], ids
        b.wait_text("3 of 3 open bounties, best first.", "#rec-count")
        # Read through waits: the list is redrawn live, so an element found a
        # moment ago may have been replaced (stale) by the time it is read.
        for text in (
            "Ready for you",
            "matches your skill python (on your profile)",
            "3,000 tokens",
            "Maria Mentor",
        ):
            b.wait_text(text, f"#rec-{py}")
        b.wait_text("a prerequisite of 'Advanced SQL'", f"#rec-{intro}")
        b.wait_text("Prerequisites missing", f"#rec-{adv}")
        b.wait_text("First do: Intro to SQL — open now", f"#rec-{adv}")
        b.wait(
            lambda: (
                b.find(f"#rec-{adv} .rec-missing a")
                .get_attribute("href")
                .endswith(f"#/bounty/{intro}")
            ),
            "the missing prerequisite's link to the intro bounty",
        )
        b.full_screenshot("for-you-desktop", 1280)
        b.phone()
        try:
            b.full_screenshot("for-you-phone", 390)
        finally:
            b.desktop()
        # each title leads to its bounty's page
        b.click(f"#rec-{py} a.bounty-title")
        b.wait(
            lambda: b.js("return document.documentElement.dataset.route") == f"#/bounty/{py}",
            "the python bounty's page",
        )
        b.wait_text("Write a python parser")
        # the missing prerequisite's link opens the intro
        b.go("next")
        b.click(f"#rec-{adv} .rec-missing a")
        b.wait(
            lambda: b.js("return document.documentElement.dataset.route") == f"#/bounty/{intro}",
            "the intro's page",
        )
        assert not [x for x in b.console() if "SEVERE" in x and "recommend" in x], b.console()
    finally:
        b.close()
