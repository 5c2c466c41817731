"""Discussion and resources on real node processes: three nodes in a line
(mentor — learner — peer, so the mentor's and the peer's events cross the
learner's node). A question asked on the learner's node (by the CLI) and the
mentor's answer (by the API) appear on every node in one thread, in the same
order; resources suggested on different nodes are ranked the same on every
node; a node that blocks an author marks its comments hidden; bad input gets a
sentence, not a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _nodes import Network, cli, wait_for
from learnmesh.node._blocklist import Blocklist
from learnmesh.protocol import account_from_text

pytestmark = pytest.mark.slow

NAMES = ["mentor", "learner", "peer"]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    root = tmp_path_factory.mktemp("learning")
    n = Network(root, NAMES, trusted=["mentor"])
    try:
        n.start(NAMES)
        n.connect("learner", "mentor")
        n.connect("learner", "peer")
        yield n
    finally:
        n.close()


def _data(net: Network, name: str) -> str:
    return str(net[name].data)


def _thread(net: Network, name: str, bid: str) -> list[tuple[str, int, str]]:
    r = net[name].get(f"/api/bounties/{bid}/comments")
    return [(c["id"], c["depth"], c["text"]) for c in r["comments"]]


def test_question_and_answer_reach_every_node_in_one_thread(net: Network) -> None:
    m = net["mentor"]
    net["learner"].post("/api/profile", {"name": "learner"})
    bid = m.post(
        "/api/bounties",
        {"title": "Write a parser", "reward": 1000, "skills": ["python"], "quorum": 1},
    )["id"]
    wait_for(
        lambda: all(
            bid in [b["id"] for b in net[n].get("/api/bounties")["bounties"]] for n in NAMES
        ),
        "the bounty on every node",
        describe=net.describe,
    )
    # the learner asks by the CLI, with a unique prefix of the bounty id
    question = "**How** long may the parser be?\n\n- one file\n- `tests` too?"
    r = cli("--data", _data(net, "learner"), "--json", "comment", bid[:12], question)
    qid = json.loads(r.stdout)["id"]
    wait_for(
        lambda: [c[0] for c in _thread(net, "mentor", bid)] == [qid],
        "the question on the mentor's node",
        describe=net.describe,
    )
    aid = m.post(
        "/api/comments", {"target": qid, "text": "One file. [See](https://docs.python.org/3/)"}
    )["id"]
    extra = net["peer"].post("/api/comments", {"target": bid, "text": "me too"})["id"]
    want = [
        (qid, 0, question),
        (aid, 1, "One file. [See](https://docs.python.org/3/)"),
        (extra, 0, "me too"),
    ]

    def same() -> bool:
        return all(_thread(net, n, bid) == want for n in NAMES)

    wait_for(same, "one thread, in one order, on every node", describe=net.describe)
    got = net["peer"].get(f"/api/bounties/{bid}/comments")
    assert got["count"] == 3 and got["hidden"] == 0
    q = got["comments"][0]
    assert q["target_kind"] == "bounty" and q["bounty"] == bid and q["replies"] == 1
    assert q["author_name"] == "learner"
    assert q["markdown"][0] == {
        "t": "p",
        "c": [{"t": "strong", "c": ["How"]}, " long may the parser be?"],
    }
    assert q["markdown"][1]["t"] == "ul"
    a = got["comments"][1]
    assert a["target"] == qid and a["target_kind"] == "comment"
    assert {"t": "a", "href": "https://docs.python.org/3/", "c": ["See"]} in a["markdown"][0]["c"]

    # the CLI shows the thread as plain text, the reply indented
    out = cli("--data", _data(net, "peer"), "comments", bid[:12]).stdout
    assert "**How** long may the parser be?" in out
    assert "    One file." in out
    assert out.index("How") < out.index("One file.") < out.index("me too")

    # the thread under one comment, by the API and the CLI
    sub = net["mentor"].get(f"/api/comments/{qid}")
    assert sub["target_kind"] == "comment" and sub["bounty"] == bid
    assert [(c["id"], c["depth"]) for c in sub["comments"]] == [(aid, 0)]
    out = cli("--data", _data(net, "mentor"), "comments", qid).stdout
    assert "One file." in out and "How" not in out
    top = net["mentor"].get(f"/api/comments/{bid}")
    assert [c["id"] for c in top["comments"]] == [qid, aid, extra]

    # a node that blocks the learner marks its comments hidden (only there)
    Blocklist(net["peer"].data).add(account_from_text(net["learner"].account), "spam", 1)
    hid = net["peer"].get(f"/api/bounties/{bid}/comments")
    assert [c["hidden"] for c in hid["comments"]] == [True, False, False]
    assert hid["comments"][0]["hidden_by"] == "block"
    assert "you blocked this author" in hid["comments"][0]["hidden_why"]
    assert not net["mentor"].get(f"/api/bounties/{bid}/comments")["comments"][0]["hidden"]
    out = cli("--data", _data(net, "peer"), "comments", bid[:12]).stdout
    assert "How" not in out and "hidden" in out
    Blocklist(net["peer"].data).remove(account_from_text(net["learner"].account))


def _ranking(net: Network, name: str, q: str = "?skill=python") -> list[tuple[str, str, int]]:
    r = net[name].get("/api/resources" + q)
    return [(x["url"], x["title"], len(x["suggested_by"])) for x in r["resources"]]


def test_resources_are_ranked_the_same_on_every_node(net: Network) -> None:
    m, le, p = net["mentor"], net["learner"], net["peer"]
    bid = m.post("/api/bounties", {"title": "Learn sorting", "reward": 500, "skills": ["python"]})[
        "id"
    ]
    one = {
        "skill": "python",
        "title": "Sorting HOWTO",
        "url": "https://docs.python.org/3/howto/sorting.html",
        "kind": "article",
        "licence": "PSF-2.0",
    }
    p.post("/api/resources", {**one, "title": "Sorting (first)"})
    wait_for(lambda: _ranking(net, "mentor"), "the first suggestion on the mentor's node")
    le.post(
        "/api/resources",
        {
            "skill": "python",
            "title": "A video",
            "url": "https://video.example/sort",
            "kind": "video",
            "licence": "CC-BY-4.0",
            "bounty": bid,
        },
    )
    m.post("/api/resources", one)  # the same url again: one entry, two suggesters
    r = cli(
        "--data",
        _data(net, "learner"),
        "--json",
        "resource",
        "add",
        "--skill",
        "python",
        "--title",
        "Bücher über Sortieren",
        "--url",
        "https://bücher.example/über uns",
        "--kind",
        "book",
        "--licence",
        "CC-BY-SA-4.0",
        "--bounty",
        bid[:12],
    )
    assert json.loads(r.stdout)["id"]

    def agreed() -> list[tuple[str, str, int]] | None:
        ranks = [_ranking(net, n) for n in NAMES]
        return ranks[0] if len(ranks[0]) == 3 and all(x == ranks[0] for x in ranks) else None

    ranking = wait_for(agreed, "one ranking on every node", describe=net.describe)
    assert ranking[0] == ("https://docs.python.org/3/howto/sorting.html", "Sorting (first)", 2)
    assert ("https://xn--bcher-kva.example/%C3%BCber%20uns", "Bücher über Sortieren", 1) in ranking
    digests = {net[n].get("/api/resources")["trust_digest"] for n in NAMES}
    assert len(digests) == 1
    for_bounty = m.get(f"/api/resources?bounty={bid}")["resources"]
    assert {x["kind"] for x in for_bounty} == {"video", "book"}
    assert {x["licence"] for x in for_bounty} == {"CC-BY-4.0", "CC-BY-SA-4.0"}
    assert m.get("/api/resources")["skills"] == {"python": 4}
    # a node that blocks the learner leaves out what only the learner suggested
    learner = account_from_text(le.account)
    Blocklist(p.data).add(learner, "", 1)
    try:
        assert {x["kind"] for x in p.get(f"/api/resources?bounty={bid}")["resources"]} == set()
        assert len(p.get("/api/resources?skill=python")["resources"]) == 1
        assert len(m.get("/api/resources?skill=python")["resources"]) == 3
    finally:
        Blocklist(p.data).remove(learner)
    out = cli("--data", _data(net, "mentor"), "resources", "--skill", "python").stdout
    assert "Sorting (first)" in out and "CC-BY-SA-4.0" in out


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/api/comments", {"target": "00" * 32, "text": "hi"}, 404, "no such event"),
        ("/api/comments", {"target": "zz", "text": "hi"}, 400, "hex id"),
        ("/api/comments", {"target": "BID", "text": "   \n "}, 400, "empty"),
        ("/api/comments", {"target": "BID", "text": "x" * 4001}, 413, "at most 4000"),
        ("/api/comments", {"target": "BID", "text": 5}, 400, "text must be text"),
        ("/api/comments", {"target": "PROFILE", "text": "hi"}, 409, "not on a profile"),
        (
            "/api/resources",
            {"skill": "py", "title": "t", "url": "javascript:alert(1)"},
            400,
            "http:// or https://",
        ),
        (
            "/api/resources",
            {"skill": "py", "title": "t", "url": "data:text/html,x"},
            400,
            "http:// or https://",
        ),
        (
            "/api/resources",
            {"skill": "py", "title": "t", "url": "https://u:p@h.example/"},
            400,
            "user name",
        ),
        (
            "/api/resources",
            {"skill": "py", "title": " ", "url": "https://h.example/"},
            400,
            "title must be 1..200",
        ),
        (
            "/api/resources",
            {"skill": "py", "title": "t", "url": "https://h.example/", "kind": "x"},
            400,
            "kind must be one of",
        ),
        (
            "/api/resources",
            {"skill": "py", "title": "t", "url": "https://h.example/", "bounty": "00" * 32},
            404,
            "no such bounty",
        ),
    ],
)
def test_bad_input_gets_a_sentence(
    net: Network, path: str, body: dict[str, Any], status: int, words: str
) -> None:
    m = net["mentor"]
    bounties = m.get("/api/bounties")["bounties"]
    if not bounties:
        bounties = [m.post("/api/bounties", {"title": "x", "reward": 10})]
    bid = bounties[0]["id"]
    if body.get("target") == "PROFILE":
        body = {**body, "target": m.post("/api/profile", {"name": "mentor"})["id"]}
    elif body.get("target") == "BID":
        body = {**body, "target": bid}
    r = m.request("POST", path, json_body=body)
    assert r.status_code == status, r.text
    assert words in r.json()["message"], r.json()


def test_cli_mistakes_are_one_line(net: Network) -> None:
    r = cli("--data", _data(net, "learner"), "comment", "ffff", "hello", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    r = cli(
        "--data",
        _data(net, "learner"),
        "resource",
        "add",
        "--skill",
        "py",
        "--title",
        "t",
        "--url",
        "ftp://x.example/",
        check=False,
    )
    assert r.returncode == 2 and "http" in r.stderr and "Traceback" not in r.stderr


def test_comments_of_an_unknown_bounty_is_a_404(net: Network, tmp_path: Path) -> None:
    r = net["peer"].request("GET", f"/api/bounties/{'ab' * 32}/comments")
    assert r.status_code == 404
    assert net["peer"].request("GET", "/api/bounties/xyz/comments").status_code == 400


def test_answers_match_the_api_description(net: Network) -> None:
    from test_openapi import Checker

    m = net["mentor"]
    c = Checker(m, m.get("/api/openapi.json"))
    _, ev = c.call("POST", "/api/bounties", body={"title": "Documented", "reward": 10})
    bid = ev["id"]
    _, q = c.call(
        "POST", "/api/comments", body={"target": bid, "text": "**q** [l](https://a.example/)"}
    )
    c.call("POST", "/api/comments", body={"target": q["id"], "text": "> quoted\n\n1. one"})
    _, page = c.call("GET", "/api/bounties/{bid}/comments", f"/api/bounties/{bid}/comments")
    assert [x["depth"] for x in page["comments"]] == [0, 1]
    body = {"skill": "math", "title": "t", "url": "https://a.example/x", "licence": "CC-BY-4.0"}
    c.call("POST", "/api/resources", body=body)
    c.call("POST", "/api/resources", body={**body, "bounty": bid, "kind": "video"})
    c.call("GET", "/api/resources")
    _, th = c.call("GET", "/api/comments/{eid}", f"/api/comments/{q['id']}")
    assert th["count"] == 1 and th["target_kind"] == "comment"
    status, err = c.call("GET", "/api/comments/{eid}", f"/api/comments/{'ef' * 32}")
    assert (status, err["error"]) == (404, "not_found")
    c.call("GET", "/api/resources", f"/api/resources?skill=math&bounty={bid}")
    status, err = c.call("POST", "/api/comments", body={"target": "ab" * 32, "text": "x"})
    assert (status, err["error"]) == (404, "not_found")
    status, _ = c.call("POST", "/api/comments", body={"target": bid})
    assert status == 400
    status, err = c.call(
        "GET", "/api/bounties/{bid}/comments", f"/api/bounties/{'cd' * 32}/comments"
    )
    assert (status, err["error"]) == (404, "not_found")
    status, _ = c.call("POST", "/api/resources", body={**body, "kind": "podcast"})
    assert status == 400
