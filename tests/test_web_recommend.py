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
        top = b.find(f"#rec-{py}").text
        assert "Ready for you" in top and "matches your skill python (on your profile)" in top
        assert "3,000 tokens" in top and "Maria Mentor" in top
        assert "a prerequisite of 'Advanced SQL'" in b.find(f"#rec-{intro}").text
        blocked = b.find(f"#rec-{adv}")
        assert "Prerequisites missing" in blocked.text
        assert "First do: Intro to SQL — open now" in blocked.text, blocked.text
        link = blocked.find_element("css selector", ".rec-missing a")
        assert link.get_attribute("href").endswith(f"#/bounty/{intro}")
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
