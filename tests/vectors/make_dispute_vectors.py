"""Generate tests/vectors/disputes.json: test vectors for the dispute kinds
(PROTOCOL.md §6.8), one valid event of each (dispute, jury_commit, jury_reveal,
dispute_claim) in a small signed history, a few void ones, the vote
commitment, the jury draw and the final digest.

Deterministic: keys come from fixed seeds, timestamps and salts are fixed. Run
`python tests/vectors/make_dispute_vectors.py` to regenerate after a deliberate
change (tests/test_protocol_vectors.py fails until you do).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from learnmesh.protocol import (
    DOMAIN,
    ChainWriter,
    Event,
    Genesis,
    KeyPair,
    Params,
    Replica,
    canonical_pack,
    commit_body,
    dispute_outcomes,
    draw_jury,
    reveal_body,
    vote_commitment,
)
from learnmesh.protocol._disputes import (
    dispute_body,
    dispute_claim_body,
    jury_commit_body,
    jury_reveal_body,
    jury_seed,
)

OUT = pathlib.Path(__file__).with_name("disputes.json")
T0 = 1_700_000_000_000
DAY = 86_400_000
NAMES = ["mentor", "winner", "disputant", "juror1", "juror2", "juror3"]


def _seed(i: int) -> bytes:
    return bytes([0xB0 + i]) * 32


def build() -> dict[str, Any]:
    keys = [KeyPair(_seed(i)) for i in range(len(NAMES))]
    pk = [k.public_key for k in keys]
    # The three jurors are the genesis's trusted accounts: the only accounts with
    # trust, so the draw (over overall trust: the bounty names no skill) is them.
    genesis = Genesis(
        name="dispute-vectors",
        description="learnmesh dispute test vectors",
        created_ms=T0,
        allocations=tuple(sorted((k, 10_000) for k in pk)),
        trusted=tuple(sorted(pk[3:])),
        params=Params(),
    )
    net = genesis.network_id
    w = [ChainWriter(k, net) for k in keys]
    events: list[tuple[Event, str]] = []
    t = T0

    def emit(i: int, kind: str, body: dict[str, Any], refs: list[bytes], note: str = "") -> Event:
        nonlocal t
        t += 1000
        ev = w[i].sign(kind, body, t, sorted(refs))
        events.append((ev, note))
        return ev

    bounty = emit(
        0,
        "bounty",
        {
            "title": "Explain recursion",
            "description": "",
            "rubric": [{"name": "correctness", "max": 10}],
            "skills": [],
            "reward": 1000,
            "reviewer_share_bp": 0,
            "submit_by": T0 + DAY,
            "review_by": T0 + 2 * DAY,
            "quorum": 1,
        },
        [],
    )
    salt = bytes(range(16))
    texts = {
        1: "A function that calls itself.",
        2: "A function that calls itself on a smaller input.",
    }
    commits = {
        i: emit(i, "commit", commit_body(bounty.id, pk[i], texts[i], [], salt), [bounty.id])
        for i in (1, 2)
    }
    close = emit(
        0,
        "close",
        {"bounty": bounty.id, "accepted": sorted(c.id for c in commits.values())},
        [bounty.id, *(c.id for c in commits.values())],
    )
    reveals = {
        i: emit(
            i,
            "reveal",
            reveal_body(bounty.id, commits[i].id, close.id, texts[i], [], salt),
            [commits[i].id, close.id],
        )
        for i in (1, 2)
    }
    award = emit(
        0,
        "award",
        {
            "bounty": bounty.id,
            "winners": [{"submission": reveals[1].id, "amount": 1000}],
            "reviewers": [],
        },
        [bounty.id, reveals[1].id],
    )
    replica = Replica(genesis)
    for ev, _ in events:
        replica.add(ev)
    like = {
        "target": award.id,
        "subject": reveals[2].id,
        "disputant": pk[2],
        "appeal_of": b"",
    }
    jurors = draw_jury(replica.state, like)
    evidence = [{"hash": bytes(range(32)), "name": "diff.txt", "size": 42}]
    dispute = emit(
        2,
        "dispute",
        dispute_body(
            award.id,
            reveals[2].id,
            "The base case is missing from the awarded answer.",
            100,
            jurors,
            t + 1000 + DAY,
            t + 1000 + 2 * DAY,
            evidence,
        ),
        [award.id, reveals[2].id],
    )
    verdicts = ["uphold", "uphold", "reject"]
    vsalts = [bytes([0x10 + i]) * 16 for i in range(3)]
    who = {pk[i]: i for i in range(len(pk))}
    jc = [
        emit(who[j], "jury_commit", jury_commit_body(dispute.id, j, v, s), [dispute.id])
        for j, v, s in zip(jurors, verdicts, vsalts, strict=True)
    ]
    emit(
        who[jurors[0]],
        "jury_commit",
        jury_commit_body(dispute.id, jurors[0], "reject", vsalts[0]),
        [dispute.id],
        note="duplicate_vote",
    )
    jr = [
        emit(
            who[j],
            "jury_reveal",
            jury_reveal_body(dispute.id, c.id, v, s, "read both answers"),
            [c.id],
        )
        for j, c, v, s in zip(jurors, jc, verdicts, vsalts, strict=True)
    ]
    emit(
        2,
        "dispute_claim",
        {"dispute": dispute.id, "votes": [jr[0].id]},
        [dispute.id, jr[0].id],
        note="no_majority",
    )
    for ev, _ in events[len(replica.raw) :]:
        replica.add(ev)
    claim_body = dispute_claim_body(replica.state, dispute.id, pk[2])
    emit(2, "dispute_claim", claim_body, [dispute.id, *claim_body["votes"]])
    emit(1, "dispute_claim", claim_body, [dispute.id, *claim_body["votes"]], note="not_disputant")

    replica = Replica(genesis)
    for ev, _ in events:
        replica.add(ev)
    state = replica.state
    void = state.void
    for ev, note in events:
        assert (void[ev.id][0] if ev.id in void else "") == note, (ev.short(), void.get(ev.id))
    assert state.check_invariants() == []
    out = dispute_outcomes(state)
    assert out.final == {dispute.id: "upheld"}
    return {
        "about": "learnmesh dispute test vectors (PROTOCOL.md §6.8); see "
        "tests/vectors/make_dispute_vectors.py. All byte strings are lowercase hex.",
        "keys": [
            {"name": n, "seed": _seed(i).hex(), "public_key": pk[i].hex()}
            for i, n in enumerate(NAMES)
        ],
        "genesis": {"raw": genesis.encode().hex(), "network_id": net.hex()},
        "events": [
            {
                "kind": ev.kind.name,
                "author": NAMES[pk.index(ev.author)],
                "seq": ev.seq,
                "id": ev.id.hex(),
                "raw": ev.raw.hex(),
                "signed": (DOMAIN + ev.raw[:-66]).hex(),
                "void": note or None,
            }
            for ev, note in events
        ],
        "vote_commitment": {
            "dispute": dispute.id.hex(),
            "juror": jurors[0].hex(),
            "verdict": verdicts[0],
            "salt": vsalts[0].hex(),
            "commitment": vote_commitment(dispute.id, jurors[0], verdicts[0], vsalts[0]).hex(),
        },
        "jury": {
            "seed": jury_seed(award.id, reveals[2].id, pk[2]).hex(),
            "drawn": [j.hex() for j in jurors],
        },
        "final": {
            "digest_input": canonical_pack(state.digest_map()).hex(),
            "digest": replica.digest().hex(),
            "balances": {NAMES[i]: state.balance(pk[i]) for i in range(len(pk))},
            "escrow": state.disputes.escrow(),
            "outcome": "upheld",
        },
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
