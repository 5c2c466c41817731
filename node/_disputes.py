"""Disputes and juries on a running node (issue 12; the rules are in
protocol/_disputes.py, PROTOCOL.md).

Domain commands over a `Node` (functions taking the node, not Node methods):

- `file_dispute`: a learner disputes an award or a refund, a learner or a
  co-reviewer disputes a review. The node finds the disputant's standing
  (`subject`) when it is not given, draws the jury with the protocol's
  `draw_jury` over its jury trust view (the one `panel_check` judges panels
  by), fills the deadlines and locks the bond (a spend: it claims credits like
  a bounty does).
- `appeal`: a party of a decided dispute asks a larger jury (doubled bond).
- `jury_vote`: a juror commits to a verdict. The verdict, its salt and the
  reason are kept in `jury/<dispute>.json` in the data directory (mode 0600,
  written before the commit is signed, like a learner's sealed work) and the
  node reveals them by itself once `vote_by` has passed (`jury_reveal`, also
  `learnmesh jury reveal`, does it by hand after `vote_by`).
- `claim`: once a strict majority of the panel has revealed, the disputant
  (upheld) or a juror of the majority (rejected) takes its share of the bond.
- `what_waits`: what this account must do next, with deadlines.

`duty_loop` is the small periodic task the node runs (started in Node.run):
it reveals votes whose voting window has closed and claims bonds owed, so a
person does not have to remember either.
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from learnmesh.protocol import Event, State, account_text
from learnmesh.protocol._disputes import (
    APPEAL_JURY_SIZE,
    JURY_SIZE,
    MIN_BOND,
    DisputeStatus,
    dispute_claim_body,
    dispute_status,
    draw_jury,
    jury_commit_body,
    jury_reveal_body,
)
from learnmesh.protocol._errors import LocalProtocolError
from learnmesh.protocol._kinds_disputes import VERDICTS

from ._service import UserError

if TYPE_CHECKING:
    from ._service import Node

__all__ = [
    "DAY_MS",
    "VERDICTS",
    "DisputeRecord",
    "appeal",
    "claim",
    "dispute_json",
    "disputes_json",
    "duty_loop",
    "file_dispute",
    "jury_reveal",
    "jury_vote",
    "records",
    "what_waits",
]

log = logging.getLogger("learnmesh.node.disputes")

DAY_MS = 86_400_000
DEFAULT_VOTE_MS = 3 * DAY_MS  # jurors commit within this
DEFAULT_REVEAL_MS = 2 * DAY_MS  # then reveal within this
MAX_WINDOW_MS = 30 * DAY_MS  # reveal_by <= the dispute's time + 30 days (the protocol's bound)
LOOP_S = 2.0  # how often the node looks for votes to reveal and bonds to claim
_VOTES_DIR = "jury"


# -- the protocol's book, read for this node's views ------------------------------------------


@dataclass
class DisputeRecord:
    """One dispute as this node's views need it (read from `state.disputes`)."""

    id: bytes
    disputant: bytes
    respondent: bytes
    target: bytes
    target_kind: str
    subject: bytes
    bounty: bytes
    claim: str
    evidence: list[dict[str, Any]]
    bond: int
    escrow: int
    share: int  # what each juror of a rejecting majority claims
    jurors: list[bytes]
    vote_by: int
    reveal_by: int
    appeal_of: bytes | None
    filed_at: int
    commits: dict[bytes, bytes] = field(default_factory=dict)  # juror -> jury_commit id
    reveals: dict[bytes, tuple[bytes, str, str]] = field(default_factory=dict)  # id, verdict, why
    claims: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)  # account -> id, amount
    appeals: list[bytes] = field(default_factory=list)
    majority: str | None = None  # the verdict a strict majority of the panel revealed


def records(node: Node, involving: bytes | None = None) -> dict[bytes, DisputeRecord]:
    """Every applied dispute, by id (void ones never enter the book); with
    `involving`, only those where that account is the disputant or a juror."""
    state = node.ledger.replica.state
    book = state.disputes
    out: dict[bytes, DisputeRecord] = {}
    for did, d in book.disputes.items():
        if involving is not None and involving != d.disputant and involving not in d.jurors:
            continue
        rec = DisputeRecord(
            id=did,
            disputant=d.disputant,
            respondent=d.respondent,
            target=d.target,
            target_kind=d.kind,
            subject=d.subject,
            bounty=d.bounty,
            claim=d.claim,
            evidence=list(d.evidence),
            bond=d.bond,
            escrow=d.escrow,
            share=d.share(),
            jurors=list(d.jurors),
            vote_by=d.vote_by,
            reveal_by=d.reveal_by,
            appeal_of=d.appeal_of or None,
            filed_at=d.filed_at,
            commits=dict(d.commits),
            appeals=[a.id for a in book.appeals_of(did)],
            majority=book.majority(d),
        )
        for juror, rid in d.reveals.items():
            r = book.reveals[rid]
            rec.reveals[juror] = (rid, r.verdict, r.reason)
        for acct, cid in d.claims.items():
            rec.claims[acct] = (cid, state.credits.get(cid, {}).get(acct, 0))
        out[did] = rec
    return out


# -- standing: what the disputant may dispute, and with what --------------------------------


@dataclass(frozen=True)
class Standing:
    target_kind: str  # award, refund or review
    bounty: bytes
    respondent: bytes
    subject: bytes


def standing(node: Node, target: bytes, subject: bytes | None = None) -> Standing:
    """Whether this account may dispute `target` and its `subject` (found when
    not given): a learner's submission for an award, its accepted commit for
    a refund, the reviewed submission (its learner) or one's own review of the
    same submission (a co-reviewer) for a review. A clear UserError otherwise."""
    state = node.ledger.replica.state
    me = node.key.public_key
    if target not in node.ledger.replica.raw:
        raise UserError("no such event to dispute", status=404, code="not_found")
    if target in state.void:
        raise UserError(
            "that event is void: it had no effect to dispute", status=409, code="void_target"
        )
    ev = node.stored_event(target)
    kind = ev.kind.name
    if kind not in ("award", "refund", "review"):
        raise UserError(
            f"only an award, a refund or a review can be disputed (that is a {kind})",
            status=409,
            code="not_disputable",
        )
    if ev.author == me:
        raise UserError("you cannot dispute your own " + kind, status=403, code="no_standing")
    b = state.bounties.get(ev.body["bounty"])
    if b is None:
        raise UserError("the disputed event's bounty is unknown here", status=404, code="not_found")
    if kind == "award":
        mine = [s.id for s in b.submissions.values() if s.learner == me]
        if not mine:
            raise UserError(
                "you have no revealed submission in this bounty: only its learners dispute "
                "its award",
                status=403,
                code="no_standing",
            )
        found = _pick(subject, mine, "your submission in this bounty")
    elif kind == "refund":
        mine = [c for c in b.accepted if b.commits.get(c) == me]
        if not mine:
            raise UserError(
                "the mentor's close did not accept a commit of yours: only a learner whose "
                "work was accepted disputes a refund",
                status=403,
                code="no_standing",
            )
        found = _pick(subject, mine, "your accepted commit in this bounty")
    else:
        rv = state.reviews.get(target)
        if rv is None:
            raise UserError("that review is not applied here", status=404, code="not_found")
        sub = b.submissions.get(rv.submission)
        own = [sub.id] if sub is not None and sub.learner == me else []
        own += [r for r in (sub.reviews if sub else []) if state.reviews[r].reviewer == me]
        if not own:
            raise UserError(
                "only the reviewed learner or another reviewer of the same work disputes a review",
                status=403,
                code="no_standing",
            )
        found = _pick(subject, own, "the reviewed work (yours) or your own review of it")
    return Standing(kind, b.id, ev.author, found)


def _pick(subject: bytes | None, allowed: list[bytes], what: str) -> bytes:
    if subject is None:
        return sorted(allowed)[0]
    if subject not in allowed:
        raise UserError(f"subject must be {what}", status=403, code="bad_subject")
    return subject


# -- filing and appealing ---------------------------------------------------------------------


def _deadlines(node: Node, vote_by: int | None, reveal_by: int | None) -> tuple[int, int]:
    now = node.now_ms()
    v = vote_by if vote_by is not None else now + DEFAULT_VOTE_MS
    r = reveal_by if reveal_by is not None else v + DEFAULT_REVEAL_MS
    if v <= now:
        raise UserError("the voting deadline must be in the future", code="bad_deadline")
    if r <= v:
        raise UserError(
            "the reveal deadline must be after the voting deadline", code="bad_deadline"
        )
    if r > now + MAX_WINDOW_MS:
        raise UserError("the reveal deadline must be within 30 days", code="bad_deadline")
    return v, r


def _evidence(node: Node, files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    if len(files) > 8:
        raise UserError("at most 8 evidence files", code="too_many")
    out: list[dict[str, Any]] = []
    for name, data in files:
        if len(data) > node.genesis.params.max_blob_bytes:
            raise UserError(
                f"{name} is over the network's attachment limit", status=413, code="too_large"
            )
        h = node.blobs.put(data)
        out.append({"hash": h, "name": name[:128] or "file", "size": len(data)})
    return out


async def file_dispute(
    node: Node,
    target: bytes,
    subject: bytes | None,
    claim: str,
    evidence: list[tuple[str, bytes]],
    bond: int,
    *,
    vote_by: int | None = None,
    reveal_by: int | None = None,
) -> Event:
    """Dispute an award, a refund or a review (see `standing`); the bond is
    locked from this account's own chain until the jury decides."""
    if bond < MIN_BOND:
        raise UserError(f"the bond is at least {MIN_BOND} tokens", code="bond_too_small")
    if not claim.strip():
        raise UserError("say what is wrong: the claim is empty", code="bad_claim")
    s = standing(node, target, subject)
    state = node.ledger.replica.state
    me = node.key.public_key
    for rec in records(node).values():
        if rec.target == target and rec.disputant == me and rec.appeal_of is None:
            raise UserError(
                f"you already disputed this {s.target_kind} (dispute {rec.id.hex()[:16]})",
                status=409,
                code="already_disputed",
            )
    if state.balance(me) < bond:  # the fold says it too; this says it plainly
        raise UserError(
            f"the bond of {bond} is more than your balance ({state.balance(me)})",
            status=409,
            code="insufficient_funds",
        )
    v, r = _deadlines(node, vote_by, reveal_by)
    like = {"target": target, "subject": s.subject, "disputant": me, "appeal_of": b""}
    jurors = _draw(state, like, JURY_SIZE)
    if len(jurors) < JURY_SIZE:
        raise UserError(
            f"too few eligible jurors: a dispute needs {JURY_SIZE} members with trust in the "
            f"bounty's skills who are not parties to it (found {len(jurors)})",
            status=409,
            code="no_jury",
        )
    body = {
        "target": target,
        "subject": s.subject,
        "claim": claim,
        "evidence": _evidence(node, evidence),
        "bond": bond,
        "jurors": jurors,
        "vote_by": v,
        "reveal_by": r,
        "appeal_of": b"",
    }
    ev = await node.author("dispute", body, [target, s.subject], claims=True)
    log.info("filed dispute %s against %s %s", ev.id.hex()[:12], s.target_kind, target.hex()[:12])
    return ev


async def appeal(
    node: Node,
    dispute: bytes,
    claim: str,
    evidence: list[tuple[str, bytes]],
    bond: int | None = None,
    *,
    vote_by: int | None = None,
    reveal_by: int | None = None,
) -> Event:
    """Appeal a dispute (its disputant or its respondent): a larger jury,
    disjoint from the first, and at least twice its bond."""
    size = APPEAL_JURY_SIZE
    recs = records(node)
    rec = recs.get(dispute)
    me = node.key.public_key
    if rec is None:
        raise UserError("no such dispute", status=404, code="not_found")
    if rec.appeal_of is not None:
        raise UserError("an appeal cannot be appealed", status=409, code="final")
    if me not in (rec.disputant, rec.respondent):
        raise UserError(
            "only the dispute's parties (its disputant and respondent) appeal",
            status=403,
            code="no_standing",
        )
    if any(recs[a].disputant == me for a in rec.appeals if a in recs):
        raise UserError("you already appealed this dispute", status=409, code="already_appealed")
    bond = 2 * rec.bond if bond is None else bond
    if bond < 2 * rec.bond:
        raise UserError(
            f"an appeal's bond is at least twice the dispute's ({2 * rec.bond})",
            code="bond_too_small",
        )
    if not claim.strip():
        raise UserError("say why the jury was wrong: the claim is empty", code="bad_claim")
    state = node.ledger.replica.state
    if state.balance(me) < bond:
        raise UserError(
            f"the bond of {bond} is more than your balance ({state.balance(me)})",
            status=409,
            code="insufficient_funds",
        )
    v, r = _deadlines(node, vote_by, reveal_by)
    like = {"target": rec.target, "subject": rec.subject, "disputant": me, "appeal_of": dispute}
    jurors = _draw(state, like, size)  # the first jury is left out by the draw itself
    if len(jurors) < size:
        raise UserError(
            f"too few eligible jurors: an appeal needs {size} members with trust who are not "
            f"parties and did not sit on the first jury (found {len(jurors)})",
            status=409,
            code="no_jury",
        )
    body = {
        "target": rec.target,
        "subject": rec.subject,
        "claim": claim,
        "evidence": _evidence(node, evidence),
        "bond": bond,
        "jurors": jurors,
        "vote_by": v,
        "reveal_by": r,
        "appeal_of": dispute,
    }
    return await node.author("dispute", body, [rec.target, rec.subject, dispute], claims=True)


# -- voting: commit now, reveal after vote_by ---------------------------------------------------


def _votes_dir(node: Node) -> Path:
    return node.data_dir / _VOTES_DIR


def _vote_path(node: Node, dispute: bytes) -> Path:
    return _votes_dir(node) / f"{dispute.hex()}.json"


def _save_vote(node: Node, v: dict[str, Any]) -> None:
    d = _votes_dir(node)
    d.mkdir(mode=0o700, exist_ok=True)
    path = _vote_path(node, bytes.fromhex(v["dispute"]))
    tmp = path.with_suffix(".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(json.dumps(v))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load_vote(node: Node, dispute: bytes) -> dict[str, Any] | None:
    try:
        v = json.loads(_vote_path(node, dispute).read_text())
    except (OSError, ValueError):
        return None
    return v if isinstance(v, dict) else None


def saved_votes(node: Node) -> list[dict[str, Any]]:
    out = []
    d = _votes_dir(node)
    if d.exists():
        for p in sorted(d.glob("*.json")):
            try:
                v = json.loads(p.read_text())
            except (OSError, ValueError):
                log.warning("unreadable vote file %s", p)
                continue
            if isinstance(v, dict):
                out.append(v)
    return out


async def jury_vote(node: Node, dispute: bytes, verdict: str, reason: str = "") -> Event:
    """Commit to a verdict (uphold or reject); the node reveals it after vote_by."""
    if verdict not in VERDICTS:
        raise UserError("the verdict is uphold or reject", code="bad_verdict")
    if len(reason) > 1000:
        raise UserError("the reason is at most 1000 characters", code="bad_reason")
    me = node.key.public_key
    rec = records(node).get(dispute)
    if rec is None:
        raise UserError("no such dispute", status=404, code="not_found")
    if me not in rec.jurors:
        raise UserError("you are not on this dispute's jury", status=403, code="not_juror")
    if me in rec.commits:
        raise UserError("you already voted on this dispute", status=409, code="already_voted")
    if node.now_ms() >= rec.vote_by:
        raise UserError("the voting deadline has passed", status=409, code="late")
    salt = os.urandom(16)
    vote: dict[str, Any] = {
        "dispute": dispute.hex(),
        "verdict": verdict,
        "reason": reason,
        "salt": salt.hex(),
        "vote_by": rec.vote_by,
        "reveal_by": rec.reveal_by,
        "commit": None,
        "revealed": None,
    }
    _save_vote(node, vote)  # kept before signing: a node killed between still can reveal
    body = jury_commit_body(dispute, me, verdict, salt)
    try:
        ev = await node.author("jury_commit", body, [dispute])
    except BaseException:
        _vote_path(node, dispute).unlink(missing_ok=True)
        raise
    vote["commit"] = ev.id.hex()
    _save_vote(node, vote)
    return ev


async def jury_reveal(node: Node, dispute: bytes) -> Event:
    """Reveal this account's vote on `dispute` once vote_by has passed (the
    node does it by itself; this is the same by hand)."""
    me = node.key.public_key
    rec = records(node).get(dispute)
    if rec is None:
        raise UserError("no such dispute", status=404, code="not_found")
    v = _load_vote(node, dispute)
    commit = rec.commits.get(me)
    if v is None or commit is None:
        raise UserError("you have no vote on this dispute to reveal", status=409, code="no_vote")
    if me in rec.reveals:
        raise UserError("your vote is already revealed", status=409, code="already_revealed")
    now = node.now_ms()
    if now <= rec.vote_by:
        raise UserError(
            "votes are revealed after the voting deadline (the node does it by itself)",
            status=409,
            code="too_early",
        )
    if now > rec.reveal_by:
        raise UserError("the reveal deadline has passed", status=409, code="late")
    body = jury_reveal_body(
        dispute, commit, v["verdict"], bytes.fromhex(v["salt"]), v.get("reason", "")
    )
    ev = await node.author("jury_reveal", body, [commit])
    v["commit"] = commit.hex()
    v["revealed"] = ev.id.hex()
    _save_vote(node, v)
    log.info("revealed the vote on dispute %s", dispute.hex()[:12])
    return ev


# -- outcomes and claims ------------------------------------------------------------------------


def owed(rec: DisputeRecord, me: bytes) -> int:
    """What this account may still claim from the dispute's bond (0 if
    nothing): the rest of the bond to an upheld disputant, `bond // panel` to
    each juror of a rejecting majority (PROTOCOL.md, dispute_claim)."""
    verdict = rec.majority
    if verdict is None or me in rec.claims:
        return 0
    if verdict == "uphold":
        return rec.escrow if me == rec.disputant else 0
    mine = rec.reveals.get(me)
    if mine is not None and mine[1] == "reject":
        return min(rec.share, rec.escrow)
    return 0


async def claim(node: Node, dispute: bytes) -> Event:
    """Take this account's share of a decided dispute's bond: the whole bond
    back to an upheld disputant, an equal share to each juror of a rejecting
    majority."""
    me = node.key.public_key
    rec = records(node).get(dispute)
    if rec is None:
        raise UserError("no such dispute", status=404, code="not_found")
    if me in rec.claims:
        raise UserError("you already claimed from this dispute", status=409, code="already_claimed")
    verdict = rec.majority
    if verdict is None:
        raise UserError(
            "no strict majority of the jury has revealed the same verdict yet",
            status=409,
            code="undecided",
        )
    if owed(rec, me) <= 0:
        who = "its disputant" if verdict == "uphold" else "the jurors who voted to reject"
        raise UserError(
            f"nothing is owed to you: the jury voted to {verdict}, so {who} claim the bond",
            status=403,
            code="not_owed",
        )
    try:
        body = dispute_claim_body(node.ledger.replica.state, dispute, me)
    except LocalProtocolError as exc:
        raise UserError(exc.reason, status=409, code=exc.code) from None
    ev = await node.author("dispute_claim", body, [dispute, *body["votes"]])
    log.info("claimed from dispute %s (%s)", dispute.hex()[:12], verdict)
    return ev


# -- views: one dispute, all of them, what waits on me ---------------------------------------


def _phase(node: Node, rec: DisputeRecord, now: int) -> DisputeStatus:
    """The protocol's dispute_status: phase, the appeal chain's final outcome,
    whether the panel was drawn fairly, who must act."""
    return dispute_status(node.ledger.replica.state, rec.id, now)


def _role(rec: DisputeRecord, me: bytes) -> str | None:
    if me == rec.disputant:
        return "disputant"
    if me == rec.respondent:
        return "respondent"
    if me in rec.jurors:
        return "juror"
    return None


def _next(node: Node, rec: DisputeRecord, me: bytes, now: int, phase: str) -> dict[str, Any]:
    """The next thing this account does on the dispute, and by when."""
    role = _role(rec, me)
    if role == "juror":
        if me not in rec.commits:
            if now < rec.vote_by:
                return {"action": "vote", "by": rec.vote_by, "auto": False}
            return {"action": None, "by": None, "auto": False, "missed": "vote"}
        if me not in rec.reveals:
            if now <= rec.reveal_by:
                has = _load_vote(node, rec.id) is not None
                return {"action": "reveal", "by": rec.reveal_by, "auto": has, "after": rec.vote_by}
            return {"action": None, "by": None, "auto": False, "missed": "reveal"}
    if owed(rec, me) > 0:
        return {"action": "claim", "by": None, "auto": True}
    if (
        role in ("disputant", "respondent")
        and rec.appeal_of is None
        and phase in ("upheld", "rejected")
        and not rec.appeals
    ):
        loser = rec.respondent if phase == "upheld" else rec.disputant
        if me == loser:
            return {"action": "appeal", "by": None, "auto": False}
    return {"action": None, "by": None, "auto": False}


def _name(state: State, acct: bytes) -> str | None:
    a = state.accounts.get(acct)
    n = a.profile.get("name") if a is not None and a.profile else None
    return n if isinstance(n, str) else None


def dispute_json(node: Node, rec: DisputeRecord, now: int) -> dict[str, Any]:
    """One dispute for the API and the page (node/_openapi.py's Dispute)."""
    state = node.ledger.replica.state
    me = node.key.public_key
    ph = _phase(node, rec, now)
    b = state.bounties.get(rec.bounty)
    jurors = []
    for j in rec.jurors:
        rv = rec.reveals.get(j)
        jurors.append(
            {
                "account": account_text(j),
                "name": _name(state, j),
                "committed": j in rec.commits,
                "revealed": rv is not None,
                "verdict": rv[1] if rv else None,
                "reason": rv[2] if rv else None,
                "claimed": rec.claims[j][1] if j in rec.claims else None,
            }
        )
    by = {"commit": rec.vote_by, "reveal": rec.reveal_by, "claim": None}
    must_act = [
        {"account": account_text(a), "action": "vote" if w == "commit" else w, "by": by[w]}
        for a, w in ph.waiting
    ]
    movements = [{"kind": "bond", "from": account_text(rec.disputant), "amount": rec.bond}]
    for acct, (cid, amount) in sorted(rec.claims.items(), key=lambda kv: kv[1][0]):
        movements.append(
            {"kind": "claim", "to": account_text(acct), "amount": amount, "id": cid.hex()}
        )
    nxt = _next(node, rec, me, now, ph.phase)
    evidence = [
        {
            "hash": e["hash"].hex(),
            "name": e["name"],
            "size": e["size"],
            "have": node.blobs.has(e["hash"]),
        }
        for e in rec.evidence
    ]
    return {
        "id": rec.id.hex(),
        "target": rec.target.hex(),
        "target_kind": rec.target_kind,
        "subject": rec.subject.hex(),
        "bounty": rec.bounty.hex(),
        "bounty_title": b.title if b is not None else None,
        "disputant": account_text(rec.disputant),
        "disputant_name": _name(state, rec.disputant),
        "respondent": account_text(rec.respondent),
        "respondent_name": _name(state, rec.respondent),
        "claim": rec.claim,
        "evidence": evidence,
        "bond": rec.bond,
        "escrow": rec.escrow,
        "jurors": jurors,
        "vote_by": rec.vote_by,
        "reveal_by": rec.reveal_by,
        "filed_at": rec.filed_at,
        "appeal_of": rec.appeal_of.hex() if rec.appeal_of else None,
        "appeals": [a.hex() for a in rec.appeals],
        "phase": ph.phase,
        "outcome": ph.final,
        "panel_fair": ph.panel_fair,
        "votes": {
            "committed": len(rec.commits),
            "revealed": len(rec.reveals),
            "uphold": sum(1 for _, v, _ in rec.reveals.values() if v == "uphold"),
            "reject": sum(1 for _, v, _ in rec.reveals.values() if v == "reject"),
            "panel": len(rec.jurors),
            "majority": rec.majority,
        },
        "must_act": must_act,
        "bond_movements": movements,
        "my_role": _role(rec, me),
        "next_action": nxt["action"],
        "next_by": nxt["by"],
        "next_auto": nxt["auto"],
        "owed_to_me": owed(rec, me),
    }


def disputes_json(node: Node, now: int, bounty: bytes | None = None) -> list[dict[str, Any]]:
    """Every dispute (or those of one bounty), newest first."""
    recs = records(node)
    rows = [dispute_json(node, r, now) for r in recs.values() if bounty in (None, r.bounty)]
    return sorted(rows, key=lambda d: (-d["filed_at"], d["id"]))


def what_waits(node: Node, now: int) -> dict[str, Any]:
    """What this account must do next: jury duty (vote by, reveal by), bonds
    it may claim, disputes against it and its own disputes."""
    me = node.key.public_key
    recs = records(node)
    duty, claims, against, mine = [], [], [], []
    for rec in sorted(recs.values(), key=lambda r: (r.vote_by, r.id)):
        ph = _phase(node, rec, now)
        nxt = _next(node, rec, me, now, ph.phase)
        row = {
            "dispute": rec.id.hex(),
            "target_kind": rec.target_kind,
            "bounty": rec.bounty.hex(),
            "phase": ph.phase,
            "action": nxt["action"],
            "by": nxt["by"],
            "auto": nxt["auto"],
            "vote_by": rec.vote_by,
            "reveal_by": rec.reveal_by,
        }
        role = _role(rec, me)
        if role == "juror" and nxt["action"] in ("vote", "reveal"):
            duty.append(row)
        if nxt["action"] == "claim":
            claims.append({**row, "amount": owed(rec, me)})
        if role == "respondent":
            against.append(row)
        if role == "disputant":
            mine.append(row)
    return {
        "account": account_text(me),
        "now": now,
        "jury": duty,
        "claims": claims,
        "against_me": against,
        "mine": mine,
    }


# -- the node's own task: reveal votes after vote_by, claim what is owed ------------------


async def duty_loop(node: Node, interval: float = LOOP_S) -> None:
    """Started by Node.run: every `interval` seconds, reveal this node's votes
    whose voting window has closed, and claim bonds owed to this account."""
    while True:
        await trio.sleep(interval)
        try:
            await duty_once(node)
        except Exception:  # a bug here must not end the node
            log.exception("dispute duties failed")


async def duty_once(node: Node) -> list[Event]:
    """One pass of `duty_loop`; the events it authored."""
    me = node.key.public_key
    now = node.now_ms()
    done: list[Event] = []
    if not node.ledger.replica.state.disputes.disputes:
        return done
    _fetch_evidence(node)
    recs = records(node, involving=me)  # only where this account votes or is owed
    waits = _RETRY.setdefault(node, {})
    later = node.monotonic()
    for v in saved_votes(node):
        if v.get("revealed") or now <= int(v.get("vote_by", 0)) or now > int(v.get("reveal_by", 0)):
            continue
        did = bytes.fromhex(v["dispute"])
        rec = recs.get(did)
        if rec is None or me not in rec.commits or waits.get(did, 0.0) > later:
            continue
        if me in rec.reveals:
            v["revealed"] = rec.reveals[me][0].hex()
            _save_vote(node, v)
            continue
        try:
            done.append(await jury_reveal(node, did))
        except UserError as exc:
            waits[did] = later + _RETRY_S
            log.warning("could not reveal the vote on %s: %s", did.hex()[:12], exc.message)
    if done:
        recs = records(node, involving=me)
    for rec in recs.values():
        if owed(rec, me) > 0 and waits.get(rec.id, 0.0) <= later:
            try:
                done.append(await claim(node, rec.id))
            except UserError as exc:
                waits[rec.id] = later + _RETRY_S
                log.warning("could not claim from %s: %s", rec.id.hex()[:12], exc.message)
    return done


def _fetch_evidence(node: Node) -> None:
    """Ask peers once for each dispute's evidence this node lacks (the blob
    fetch retries by itself, backing off), so jurors can read it and every
    node can pass it on, as with a submission's attachments."""
    if not node.settings.fetch_attachments:
        return
    asked = _ASKED.setdefault(node, set())
    for d in node.ledger.replica.state.disputes.disputes.values():
        for e in d.evidence:
            h = e["hash"]
            if h not in asked and not node.blobs.has(h):
                asked.add(h)
                node._spawn(node.fetch_blob, h, e["size"])


_ASKED: weakref.WeakKeyDictionary[Node, set[bytes]] = weakref.WeakKeyDictionary()
_RETRY_S = 60.0  # a reveal or claim the node could not make is tried again after this
_RETRY: weakref.WeakKeyDictionary[Node, dict[bytes, float]] = weakref.WeakKeyDictionary()


def _draw(state: State, like: dict[str, Any], size: int) -> list[bytes]:
    """The protocol's draw, over its jury trust view (what panel_check uses)."""
    try:
        return draw_jury(state, like, None, size)
    except LocalProtocolError as exc:
        raise UserError(exc.reason, status=409, code=exc.code) from None
