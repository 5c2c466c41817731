"""Bounty terms on real nodes: a mentor posts a bounty with prerequisites and
resources (CLI and API), every node folds the same terms, and a mistake in the
terms is refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

from _nodes import Network, cli, wait_for


def test_terms_travel_with_their_bounty_and_mistakes_write_nothing(tmp_path: Path) -> None:
    with Network(tmp_path, ["a", "b"]) as net:
        net.start(edges=[("a", "b")])
        a, b = net["a"], net["b"]
        intro = a.post("/api/bounties", {"title": "Intro to SQL", "reward": 100})["id"]
        out = cli(
            "--data", str(a.data), "--json", "bounty", "post", "--title", "Window functions",
            "--reward", "200", "--skill", "sql", "--prereq", intro[:12],
            "--prereq-skill", "sql", "--resource",
            "Window functions explained|https://example.org/window|article|CC-BY-4.0",
            "--resource", "Exercises|https://example.org/ex",
        )  # fmt: skip
        adv = json.loads(out.stdout)["id"]

        def terms_on(node_b: bool) -> object:
            node = b if node_b else a
            try:
                return node.get(f"/api/bounties/{adv}")["terms"]
            except Exception:
                return None

        t = wait_for(lambda: terms_on(True), "b to fold the bounty's terms")
        assert t == terms_on(False)
        assert t["prereq_bounties"] == [{"id": intro, "title": "Intro to SQL"}]  # type: ignore[index]
        assert t["prereq_skills"] == ["sql"]  # type: ignore[index]
        assert t["resources"] == [  # type: ignore[index]
            {"title": "Window functions explained", "url": "https://example.org/window",
             "kind": "article", "licence": "CC-BY-4.0"},
            {"title": "Exercises", "url": "https://example.org/ex", "kind": "other",
             "licence": ""},
        ]  # fmt: skip
        shown = cli("--data", str(b.data), "bounty", "show", adv).stdout
        assert "Intro to SQL" in shown and "CC-BY-4.0" in shown
        assert a.get(f"/api/bounties/{intro}")["terms"] is None

        # Mistakes: a sentence, exit 2, and no bounty written without its terms.
        before = len(a.get("/api/bounties")["bounties"])
        bad = cli(
            "--data", str(a.data), "bounty", "post", "--title", "x", "--reward", "5",
            "--resource", "Bad|javascript:alert(1)", check=False,
        )  # fmt: skip
        assert bad.returncode == 2 and "http:// or https://" in bad.stderr
        assert "Traceback" not in bad.stderr
        r = a.request(
            "POST",
            "/api/bounties",
            json_body={"title": "y", "reward": 5, "prereq_bounties": ["ab" * 32]},
        )
        assert r.status_code == 404 and "prerequisite" in r.json()["message"]
        r = a.request(
            "POST", "/api/bounties", json_body={"title": "y", "reward": 5, "prereq_bounties": "x"}
        )
        assert r.status_code == 400 and "prereq_bounties" in r.json()["message"]
        assert len(a.get("/api/bounties")["bounties"]) == before
