"""Open Badges across real node processes: the mentor's node signs the winner's
credential when it awards; the learner, offline at that moment, starts again
after the mentor's node has stopped and still gets the credential (from a third
node that fetched its blob); the file verifies offline with no node at all."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _nodes import ApiError, Network, Node, cli, wait_for
from learnmesh.protocol import ChainWriter

pytestmark = pytest.mark.slow


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    n = Network(
        tmp_path,
        ["mentor", "learner", "relay"],
        allocations={"mentor": 100_000, "learner": 1_000, "relay": 1_000},
        trusted=["mentor"],
    )
    try:
        yield n
    finally:
        n.close()


def _bounty(node: Node, bid: str) -> dict[str, Any]:
    b: dict[str, Any] = node.get(f"/api/bounties/{bid}")
    return b


def _vc_or_none(node: Node, sid: str) -> bytes | None:
    r = node.request("GET", f"/api/credentials/{sid}")
    return r.content if r.status_code == 200 else None


def test_learner_gets_the_credential_after_the_mentor_left(net: Network, tmp_path: Path) -> None:
    m, learner, relay = net["mentor"], net["learner"], net["relay"]
    net.start(edges=[("learner", "mentor"), ("relay", "mentor"), ("learner", "relay")])
    m.post("/api/profile", {"name": "Ada the Mentor", "bio": "", "skills": []})
    bid = m.post(
        "/api/bounties",
        {
            "title": "Explain Merkle trees",
            "description": "Two paragraphs and an example.",
            "reward": 1000,
            "rubric": [{"name": "clarity", "max": 10}, {"name": "depth", "max": 5}],
            "skills": ["cryptography", "writing"],
        },
    )["id"]
    wait_for(lambda: _bounty(learner, bid), "the learner to see the bounty", describe=net.describe)
    learner.post("/api/submit", {"bounty": bid, "text": "A Merkle tree hashes pairs upward."})
    wait_for(lambda: _bounty(m, bid)["commit_ids"], "the commit", describe=net.describe)
    m.post(f"/api/bounties/{bid}/close", {})
    wait_for(lambda: _bounty(m, bid)["submissions"] == 1, "the reveal", describe=net.describe)
    sid = _bounty(m, bid)["submissions_detail"][0]["id"]
    wait_for(lambda: _bounty(relay, bid)["submissions"] == 1, "the relay to see the reveal")
    relay.post(
        "/api/review",
        {"submission": sid, "scores": {"clarity": 8, "depth": 4}, "comment": "clear"},
    )
    wait_for(
        lambda: len(_bounty(m, bid)["submissions_detail"][0]["reviews"]) == 1,
        "the mentor to see the review",
        describe=net.describe,
    )

    # The learner goes offline; the mentor awards, and its node issues the badge.
    code, _ = learner.stop()
    assert code == 0
    m.post(f"/api/bounties/{bid}/award", {"winners": {sid: 800}})
    vc = wait_for(
        lambda: _vc_or_none(relay, sid), "the relay to hold the credential", describe=net.describe
    )
    assert _vc_or_none(m, sid) == vc
    # Then the mentor's node goes away for good.
    code, _ = m.stop()
    assert code == 0

    learner.start(bootstrap=[relay.addr])
    learner.wait_ready()
    wait_for(
        lambda: [
            c for c in learner.get("/api/credentials")["credentials"] if c["status"] == "ready"
        ],
        "the learner's node to get its credential from the relay",
        describe=net.describe,
    )
    listed = json.loads(cli("--data", str(learner.data), "--json", "credential", "list").stdout)
    assert [(c["submission"], c["status"], c["amount"]) for c in listed] == [(sid, "ready", 800)]
    assert listed[0]["title"] == "Explain Merkle trees"
    assert listed[0]["skills"] == ["cryptography", "writing"]
    out = tmp_path / "badge.json"
    cli("--data", str(learner.data), "credential", "get", sid, "--out", str(out))
    assert out.read_bytes() == vc

    # Offline: no node named (an empty data directory), no network.
    r = cli("--data", str(tmp_path / "nowhere"), "--json", "credential", "verify", str(out))
    report = json.loads(r.stdout)
    assert report["valid"], report
    assert report["issuer"]["name"] == "Ada the Mentor"
    assert report["network"]["name"] == "testnet"
    assert report["network"]["id"] == net.network_id.hex()
    assert report["learnmesh"]["learner"] == learner.account
    assert report["learnmesh"]["mentor"] == m.account
    assert report["achievement"] == "Explain Merkle trees"
    doc = json.loads(vc)
    subject = doc["credentialSubject"]
    assert subject["achievement"]["tag"] == ["cryptography", "writing"]
    assert [x["value"] for x in subject["result"]] == ["8", "4"]
    # The human form says who issued what to whom, for which work, where.
    text = cli("--data", str(tmp_path / "nowhere"), "credential", "verify", str(out)).stdout
    for needle in ("Ada the Mentor", learner.account, "testnet", "VALID", sid):
        assert needle in text, text

    # --online asks the learner's node about issuer forks.
    online = json.loads(
        cli(
            "--data", str(learner.data), "--json", "credential", "verify", "--online", str(out)
        ).stdout
    )
    assert online["issuer_fork"] == {"checked": True, "forked": False}
    # The API verifies too, and the old bundle is still served and verifies.
    api = learner.call("POST", "/api/credentials/verify", raw=vc)
    assert api["valid"] and api["issuer_fork"]["forked"] is False
    bundle = learner.call("GET", f"/api/credentials/{sid}?format=bundle")
    assert isinstance(bundle, bytes)
    (tmp_path / "old.credential").write_bytes(bundle)
    old = json.loads(cli("--json", "credential", "verify", str(tmp_path / "old.credential")).stdout)
    assert old["valid"] and old["learner"] == learner.account
    # A tampered copy fails, with the exit code and reason.
    doc["credentialSubject"]["id"] = doc["issuer"]["id"]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    bad = cli("--json", "credential", "verify", str(tmp_path / "bad.json"), check=False)
    assert bad.returncode == 1
    assert not json.loads(bad.stdout)["valid"]
    with pytest.raises(ApiError):
        learner.get(f"/api/credentials/{'00' * 32}")

    # Later the learner's node learns that the mentor forked its chain at seq 1
    # (two different events signed at that seq): every mentor event from there
    # on counts for nothing, the award included, and --online says so.
    fork = ChainWriter(m.key, net.network_id).sign(
        "profile", {"name": "Ada again", "bio": "", "skills": []}, int(time.time() * 1000)
    )
    learner.post_raw(fork.raw)
    wait_for(
        lambda: learner.call("POST", "/api/credentials/verify", raw=vc)["issuer_fork"]["forked"],
        "the learner's node to hold the fork proof",
        describe=net.describe,
    )
    r = cli(
        "--data",
        str(learner.data),
        "--json",
        "credential",
        "verify",
        "--online",
        str(out),
        check=False,
    )
    assert r.returncode == 1, r.stdout
    assert json.loads(r.stdout)["issuer_fork"] == {
        "checked": True,
        "forked": True,
        "fork_seq": 1,
        "award_stands": False,
    }
    text = cli(
        "--data", str(learner.data), "credential", "verify", "--online", str(out), check=False
    ).stdout
    assert "forked its chain at seq 1" in text and "NOT VALID" in text, text
    # Offline, with no network to ask, the file alone still verifies.
    assert cli("--json", "credential", "verify", str(out)).returncode == 0


def test_a_mentor_node_issues_missing_credentials_when_it_starts(net: Network) -> None:
    """An award whose credential was never issued (the mentor's node stopped in
    between; here: an award signed elsewhere and posted raw) gets it on restart."""
    m, learner = net["mentor"], net["learner"]
    net.start(["mentor", "learner"], edges=[("learner", "mentor")])
    bid = m.post("/api/bounties", {"title": "Sort a list", "reward": 500, "skills": []})["id"]
    wait_for(lambda: _bounty(learner, bid), "the learner to see the bounty", describe=net.describe)
    learner.post("/api/submit", {"bounty": bid, "text": "merge sort"})
    wait_for(lambda: _bounty(m, bid)["commit_ids"], "the commit", describe=net.describe)
    m.post(f"/api/bounties/{bid}/close", {})
    wait_for(lambda: _bounty(m, bid)["submissions"] == 1, "the reveal", describe=net.describe)
    sid = _bounty(m, bid)["submissions_detail"][0]["id"]

    head = m.get(f"/api/accounts/{m.account}/events")["events"][0]
    w = ChainWriter(m.key, net.network_id)
    w.resume(head["seq"], bytes.fromhex(head["id"]))
    body = {
        "bounty": bytes.fromhex(bid),
        "winners": [{"submission": bytes.fromhex(sid), "amount": 500}],
        "reviewers": [],
    }
    award = w.sign(
        "award",
        body,
        max(int(time.time() * 1000), head["timestamp"] + 1),
        sorted([bytes.fromhex(bid), bytes.fromhex(sid)]),
    )
    r = m.post_raw(award.raw)
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    missing = m.request("GET", f"/api/credentials/{sid}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_issued"

    code, _ = m.stop()
    assert code == 0
    m.start(bootstrap=[learner.addr])
    m.wait_ready()
    vc = wait_for(
        lambda: _vc_or_none(learner, sid),
        "the learner to get the credential issued on restart",
        describe=net.describe,
    )
    report = learner.call("POST", "/api/credentials/verify", raw=vc)
    assert report["valid"], report
    assert report["learnmesh"]["award"] == award.id.hex()
