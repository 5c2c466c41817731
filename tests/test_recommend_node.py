"""GET /api/recommendations and `learnmesh recommend` on two real node
processes: a trusted mentor posts a few bounties over gossip, a learner with
python on its profile asks its own node. The answer lists only what the
learner can still do, best first, each with reasons, and matches the API's
description; the CLI prints the same list; bad input gets a sentence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _nodes import ApiError, Network, cli, wait_for
from jsonschema import Draft202012Validator

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


def _validate(spec: dict[str, Any], value: Any) -> None:
    op = spec["paths"]["/api/recommendations"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    root = {**schema, "components": spec["components"]}
    errors = sorted(Draft202012Validator(root).iter_errors(value), key=str)
    assert not errors, f"{errors[0].message} at {list(errors[0].absolute_path)}"


def test_recommendations_api_and_cli(net: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    m, lrn = net["mentor"], net["learner"]
    net.start(edges=[("learner", "mentor")])
    lrn.post("/api/profile", {"name": "Lea", "bio": "", "skills": ["python"]})

    def post(title: str, skills: list[str], reward: int) -> str:
        body = {"title": title, "description": "Do it well.", "reward": reward, "skills": skills}
        return str(m.post("/api/bounties", body)["id"])

    py = post("Write a python parser", ["python"], 3_000)
    essay = post("Write an essay on CRDTs", ["writing"], 3_000)
    closed = post("Already closed", ["python"], 1_000)
    mine = post("One the learner commits to", ["python"], 1_000)
    m.post(f"/api/bounties/{closed}/close", {})
    wait_for(
        lambda: lrn.get(f"/api/bounties/{closed}")["phase"] == "closed",
        "the learner's node to see every bounty and the close",
    )
    lrn.post("/api/submit", {"bounty": mine, "text": "my answer", "files": []})

    r = lrn.get("/api/recommendations")
    _validate(lrn.get("/api/openapi.json"), r)
    assert r["account"] == lrn.account and r["count"] == 2 and len(r["trust_digest"]) == 64
    ids = [x["bounty"] for x in r["recommendations"]]
    assert ids == [py, essay], r  # python is on the learner's profile
    top = r["recommendations"][0]
    assert top["title"] == "Write a python parser" and top["ready"] and top["missing"] == []
    assert top["mentor"] == m.account and top["mentor_name"] is None
    assert "matches your skill python (on your profile)" in top["reasons"], top["reasons"]
    assert any(x.startswith("mentor's trust ") for x in top["reasons"]), top["reasons"]
    assert "new mentor: no settled bounty yet" in top["reasons"]
    assert top["parts"]["skill"] == 200 and top["score"] == sum(top["parts"].values())
    assert "new skill for you: writing" in r["recommendations"][1]["reasons"]

    one = lrn.get("/api/recommendations?limit=1")
    assert [x["bounty"] for x in one["recommendations"]] == [py] and one["count"] == 2
    # The mentor's own bounties are never recommended to it.
    assert m.get("/api/recommendations")["recommendations"] == []

    # What this node blocks is not recommended (and is counted as hidden).
    assert r["hidden"] == 0
    lrn.post("/api/blocks", {"account": m.account, "reason": "testing"})
    blocked = lrn.get("/api/recommendations")
    assert blocked["recommendations"] == [] and blocked["count"] == 0 and blocked["hidden"] == 2
    gone = lrn.request("DELETE", f"/api/blocks/{m.account}")
    assert gone.status_code == 200, gone.text
    assert lrn.get("/api/recommendations")["count"] == 2

    for bad in ("0", "501", "many"):
        with pytest.raises(ApiError) as exc:
            lrn.get(f"/api/recommendations?limit={bad}")
        assert "limit must be" in str(exc.value)

    # The CLI prints the same list from the same node (on a terminal wide
    # enough that no reason is wrapped).
    monkeypatch.setenv("COLUMNS", "200")
    out = json.loads(cli("--data", str(lrn.data), "--json", "recommend").stdout)
    assert [x["bounty"] for x in out["recommendations"]] == [py, essay]
    human = cli("--data", str(lrn.data), "recommend", "--limit", "1").stdout
    assert "Write a python parser" in human and "matches your skill python" in human
    assert "essay" not in human
    bad = cli("--data", str(lrn.data), "recommend", "--limit", "0", check=False)
    assert bad.returncode == 2 and "1..500" in bad.stderr and "Traceback" not in bad.stderr
