"""Credentials: a self-contained proof that a learner's work was awarded.

The file holds the genesis and the signed events that prove it: the bounty (by
the mentor), the learner's commit and reveal, the mentor's close and award. Anyone
can check it offline, with no ledger and no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._encoding import canonical_pack, strict_unpack
from ._errors import RemoteProtocolError
from ._event import Event, decode_event
from ._genesis import Genesis
from ._identity import account_text
from ._state import commitment_of, content_hash

__all__ = ["Credential", "CredentialError", "make_credential", "verify_credential"]

_MAGIC = "learnmesh-credential"
_MAX_BYTES = 1 << 20


class CredentialError(RemoteProtocolError):
    pass


@dataclass(frozen=True, slots=True)
class Credential:
    """What a verified credential states."""

    network: str
    network_id: bytes
    learner: str
    mentor: str
    bounty_title: str
    skills: tuple[str, ...]
    amount: int
    awarded_at: int
    submission: bytes
    award: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "network_id": self.network_id.hex(),
            "learner": self.learner,
            "mentor": self.mentor,
            "bounty": self.bounty_title,
            "skills": list(self.skills),
            "amount": self.amount,
            "awarded_at_ms": self.awarded_at,
            "submission": self.submission.hex(),
            "award": self.award.hex(),
        }


def make_credential(
    genesis: Genesis, bounty: Event, commit: Event, close: Event, reveal: Event, award: Event
) -> bytes:
    data = canonical_pack(
        {
            "type": _MAGIC,
            "v": 1,
            "genesis": genesis.encode(),
            "events": [bounty.raw, commit.raw, close.raw, reveal.raw, award.raw],
        }
    )
    verify_credential(data)  # never hand out a credential that does not verify
    return data


def _need(cond: bool, reason: str) -> None:
    if not cond:
        raise CredentialError("credential", reason)


def verify_credential(data: bytes, expected_network: bytes | None = None) -> Credential:
    """Check every signature and link; raise CredentialError with the reason."""
    m = strict_unpack(data, _MAX_BYTES)
    _need(
        isinstance(m, dict) and m.get("type") == _MAGIC and type(m.get("v")) is int and m["v"] == 1,
        "not a learnmesh credential",
    )
    _need(set(m) == {"type", "v", "genesis", "events"}, "unexpected fields")
    genesis = Genesis.decode(m["genesis"])
    net = genesis.network_id
    if expected_network is not None:
        _need(net == expected_network, "the credential is from another network")
    raws = m["events"]
    _need(isinstance(raws, list) and len(raws) == 5, "a credential holds exactly five events")
    try:
        bounty, commit, close, reveal, award = (
            decode_event(r, genesis.params.max_event_bytes, net) for r in raws
        )
    except RemoteProtocolError as exc:
        raise CredentialError("credential", f"an event does not verify: {exc.reason}") from exc
    kinds = [e.kind.name for e in (bounty, commit, close, reveal, award)]
    _need(kinds == ["bounty", "commit", "close", "reveal", "award"], f"wrong event kinds {kinds}")
    _need(commit.body["bounty"] == bounty.id, "the commit is for another bounty")
    _need(commit.timestamp <= bounty.body["submit_by"], "the commit was after the deadline")
    _need(
        close.author == bounty.author and close.body["bounty"] == bounty.id,
        "the close is not the mentor's",
    )
    _need(commit.id in close.body["accepted"], "the close did not accept the commit")
    _need(reveal.author == commit.author, "the reveal is not by the learner who committed")
    _need(
        reveal.body["commit"] == commit.id and reveal.body["close"] == close.id,
        "the reveal links elsewhere",
    )
    digest = content_hash(reveal.body["text"], reveal.body["attachments"])
    _need(
        commitment_of(bounty.id, reveal.author, digest, reveal.body["salt"])
        == commit.body["commitment"],
        "the revealed work does not match the commitment",
    )
    _need(
        award.author == bounty.author and award.body["bounty"] == bounty.id,
        "the award is not the mentor's",
    )
    amounts = [w["amount"] for w in award.body["winners"] if w["submission"] == reveal.id]
    _need(bool(amounts), "the award does not name this submission")
    return Credential(
        network=genesis.name,
        network_id=net,
        learner=account_text(reveal.author),
        mentor=account_text(bounty.author),
        bounty_title=bounty.body["title"],
        skills=tuple(bounty.body["skills"]),
        amount=amounts[0],
        awarded_at=award.timestamp,
        submission=reveal.id,
        award=award.id,
    )
