"""Recommendations: open bounties ranked for one account, on that account's own node.

`recommend(state, view, account, now_ms)` is pure: it reads the state this node
already holds and the trust view the node already keeps (node/_api_trust.py's
`node_trust`), does no I/O, and gives the same answer for the same inputs. No
data leaves the node for this: nothing is asked of any peer, and nothing the
learner looks at is published. Other nodes could compute the same list (the
events are public), but only this node does so for its own account.

Candidates: bounties in phase `open` whose `submit_by` is after `now_ms`, not
posted by the account, and not committed to by it (committing is the only way
to do one, so "done" is included).

Order: first every bounty whose prerequisites the learner has met (or that has
none), then those with missing prerequisites; within each group by score, high
first; ties by bounty id. Every number that decides the order is an integer.
The score is the sum of these parts (each also in `parts`, each with a reason
a person can read):

- `skill` (0..1000): for each of the bounty's skills, what the learner shows
  in it, capped at 1000, averaged over the bounty's skills:
  its profile lists it (200); it holds trust in it (200, plus 1 per 500 ppm of
  all trust in that skill, up to 200 more); its work in bounties of that skill
  was awarded (100 per awarded work up to 3, plus a fifth of the mean review
  score of its reviewed work in that skill, in per mille of the rubric
  maximum: up to 200 more).
- `prerequisites`: +150 when the bounty lists prerequisites and all are met
  (a next step on a path); nothing when it lists none. A bounty with missing
  ones is in the second group and says which (`missing`).
- `unlocks`: +100 per other open bounty, not the learner's own, that lists this
  one as a prerequisite and that the learner has not done (up to 3): the
  foundation before the advanced work.
- `deadline`: time left until `submit_by`: under 6 hours −300 (too close to do
  the work); under a day 0; under 3 days +50; more +100.
- `reward`: `200 × reward // (reward + median)`, the median over the
  candidates' rewards (100 at the median, approaching 200).
- `mentor_trust`: `isqrt` of the mentor's overall trust in parts per million
  of all trust, at most 200 (1 % of all trust gives 100).
- `mentor_record`: over the mentor's bounties that are awarded, refunded after
  a learner committed (a cancel after delivery), or left unsettled past
  `review_by`: `(200 × awarded − 400 × bad) // (awarded + bad)`, from −400 to
  200; 0 for a mentor with none yet. A mentor shown to have forked its chain:
  −1000.

A learner has met a prerequisite bounty when its work there was awarded
(`Submission.awarded > 0`), a prerequisite skill when it holds trust in that
skill or has awarded work in a bounty of that skill (docs: learning-design).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import isqrt
from typing import TYPE_CHECKING, Any

from learnmesh.protocol._state import Bounty, State, Submission

if TYPE_CHECKING:
    from learnmesh.protocol._terms import BountyTerms
    from learnmesh.protocol._trust import TrustView

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Learner",
    "Missing",
    "Recommendation",
    "learner_profile",
    "recommend",
]

DEFAULT_LIMIT = 20
MAX_LIMIT = 500
_HOUR = 3_600_000
_DAY = 24 * _HOUR

# The parts' weights: see the module docstring (which is the specification).
SKILL_CAP = 1000
PROFILE_PTS = 200
TRUST_PTS = 200
TRUST_PPM_PER_PT = 500
TRUST_EXTRA_CAP = 200
WORK_PTS = 100
WORK_CAP = 3
QUALITY_DIV = 5  # mean review per mille // 5: up to 200
PREREQ_MET_PTS = 150
UNLOCK_PTS = 100
UNLOCK_CAP = 3
TOO_CLOSE_MS = 6 * _HOUR
TOO_CLOSE_PTS = -300
FAR_PTS = 100
NEAR_PTS = 50
REWARD_PTS = 200
MENTOR_TRUST_CAP = 200
RECORD_GOOD = 200
RECORD_BAD = 400
FORKED_PTS = -1000


@dataclass(slots=True)
class _SkillHistory:
    awarded: int = 0
    review_pm_sum: int = 0  # sum of review totals, per mille of the rubric maximum
    reviews: int = 0


@dataclass(slots=True)
class Learner:
    """What the state says about one account as a learner."""

    account: bytes
    profile_skills: frozenset[str]
    trust_ppm: dict[str, int]  # skill -> its trust in it, ppm of all trust in that skill
    history: dict[str, _SkillHistory]  # skill -> its work in bounties of that skill
    awarded_bounties: frozenset[bytes]  # bounties where its work was awarded
    committed: frozenset[bytes]

    def has_skill(self, skill: str) -> bool:
        """A prerequisite skill is met by trust in it or awarded work in it."""
        h = self.history.get(skill)
        return self.trust_ppm.get(skill, 0) > 0 or (h is not None and h.awarded > 0)


@dataclass(frozen=True, slots=True)
class Missing:
    kind: str  # "bounty" | "skill"
    bounty: bytes | None  # for kind "bounty"
    title: str | None  # the prerequisite bounty's title (None if this node lacks it)
    skill: str | None  # for kind "skill"
    open: bool  # the prerequisite bounty is open and this learner can still do it

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bounty": self.bounty.hex() if self.bounty else None,
            "title": self.title,
            "skill": self.skill,
            "open": self.open,
        }


@dataclass(slots=True)
class Recommendation:
    bounty: Bounty
    score: int
    ready: bool  # no prerequisite missing
    parts: dict[str, int]
    reasons: list[str]
    missing: list[Missing] = field(default_factory=list)

    def sort_key(self) -> tuple[int, int, bytes]:
        return (0 if self.ready else 1, -self.score, self.bounty.id)


def _ppm(x: int, total: int) -> int:
    return x * 1_000_000 // total if total > 0 else 0


def _pct(ppm: int) -> str:
    """Parts per million as a percent with two decimals, without floats."""
    return f"{ppm // 10_000}.{ppm % 10_000 // 100:02d} %"


def _left(ms: int) -> str:
    if ms >= _DAY:
        d, h = divmod(ms // _HOUR, 24)
        return f"{d} d {h} h" if h else f"{d} d"
    if ms >= _HOUR:
        return f"{ms // _HOUR} h {ms % _HOUR // 60_000} min"
    return f"{max(1, ms // 60_000)} min"


def _q(text: str, cap: int = 60) -> str:
    """A title quoted for a reason, shortened."""
    t = " ".join(text.split())
    return "'" + (t if len(t) <= cap else t[: cap - 1] + "…") + "'"


def _submission_of(state: State, cid: bytes) -> tuple[Bounty, Submission] | None:
    c = state.commits.get(cid)
    if c is None:
        return None
    b = state.bounties.get(c.bounty)
    if b is None:
        return None
    for sub in b.submissions.values():
        if sub.commit == cid:
            return b, sub
    return None


def learner_profile(state: State, view: TrustView, account: bytes) -> Learner:
    """The account's skills, trust per skill and reviewed, awarded work."""
    a = state.accounts.get(account)
    prof = (a.profile if a else None) or {}
    raw_skills = prof.get("skills", [])
    profile_skills = (
        frozenset(s for s in raw_skills if isinstance(s, str))
        if isinstance(raw_skills, list)
        else frozenset()
    )
    trust_ppm: dict[str, int] = {}
    for skill, scores in view.skills.items():
        mine = scores.get(account, 0)
        if mine > 0:
            trust_ppm[skill] = max(1, _ppm(mine, sum(scores.values())))
    history: dict[str, _SkillHistory] = {}
    awarded: set[bytes] = set()
    for cid in sorted(a.revealed if a else ()):
        found = _submission_of(state, cid)
        if found is None:
            continue
        b, sub = found
        if sub.awarded > 0:
            awarded.add(b.id)
        mx = b.max_score
        totals = [sum(state.reviews[r].scores) * 1000 // mx for r in sub.reviews] if mx else []
        for skill in b.skills:
            h = history.setdefault(skill, _SkillHistory())
            h.awarded += sub.awarded > 0
            h.review_pm_sum += sum(totals)
            h.reviews += len(totals)
    return Learner(
        account=account,
        profile_skills=profile_skills,
        trust_ppm=trust_ppm,
        history=history,
        awarded_bounties=frozenset(awarded),
        committed=frozenset(a.committed if a else ()),
    )


@dataclass(slots=True)
class _MentorRecord:
    awarded: int = 0
    refunded_after_delivery: int = 0
    lapsed: int = 0


def _mentor_records(state: State, now_ms: int) -> dict[bytes, _MentorRecord]:
    out: dict[bytes, _MentorRecord] = {}
    for b in state.bounties.values():
        if b.phase == "awarded":
            out.setdefault(b.author, _MentorRecord()).awarded += 1
        elif b.phase == "refunded":
            if b.commits:
                out.setdefault(b.author, _MentorRecord()).refunded_after_delivery += 1
        elif now_ms > b.review_by:
            out.setdefault(b.author, _MentorRecord()).lapsed += 1
    return out


def _skill_part(learner: Learner, skill: str) -> tuple[int, list[str]]:
    pts = 0
    why: list[str] = []
    if skill in learner.profile_skills:
        pts += PROFILE_PTS
    ppm = learner.trust_ppm.get(skill, 0)
    if ppm:
        pts += TRUST_PTS + min(TRUST_EXTRA_CAP, ppm // TRUST_PPM_PER_PT)
    h = learner.history.get(skill)
    if h is not None and h.awarded:
        pts += WORK_PTS * min(WORK_CAP, h.awarded)
        if h.reviews:
            pts += h.review_pm_sum // h.reviews // QUALITY_DIV
    if ppm or (h is not None and h.awarded) or skill in learner.profile_skills:
        bits = []
        if ppm:
            bits.append(f"trust {_pct(ppm)}")
        if h is not None and h.awarded:
            n = h.awarded
            bits.append(f"{n} awarded work{'s' if n != 1 else ''}")
            if h.reviews:
                mean = h.review_pm_sum // h.reviews
                bits.append(f"reviewed {mean // 10} % on average")
        if skill in learner.profile_skills and not bits:
            bits.append("on your profile")
        why.append(f"matches your skill {skill} ({', '.join(bits)})")
    return min(SKILL_CAP, pts), why


def recommend(
    state: State,
    view: TrustView,
    account: bytes,
    now_ms: int,
    limit: int | None = DEFAULT_LIMIT,
) -> list[Recommendation]:
    """Open bounties for `account`, best first (see the module docstring)."""
    learner = learner_profile(state, view, account)
    records = _mentor_records(state, now_ms)
    overall_total = sum(view.overall.values())
    candidates = [
        b
        for b in state.bounties.values()
        if b.phase == "open"
        and b.submit_by > now_ms
        and b.author != account
        and b.id not in learner.committed
    ]
    if not candidates:
        return []
    rewards = sorted(b.reward for b in candidates)
    n = len(rewards)
    median = rewards[n // 2] if n % 2 else (rewards[n // 2 - 1] + rewards[n // 2]) // 2
    # Which open bounties each candidate is a prerequisite of (for `unlocks`).
    unlocks: dict[bytes, list[Bounty]] = {}
    terms_of: dict[bytes, BountyTerms | None] = {}
    for b in candidates:
        t = state.terms.get(b.id)
        terms_of[b.id] = t
        if t is not None:
            for p in t.prereq_bounties:
                unlocks.setdefault(p, []).append(b)

    out: list[Recommendation] = []
    for b in candidates:
        parts: dict[str, int] = {}
        reasons: list[str] = []
        # skills
        if b.skills:
            total = 0
            for s in b.skills:
                pts, why = _skill_part(learner, s)
                total += pts
                reasons += why
            parts["skill"] = total // len(b.skills)
            if not parts["skill"]:
                reasons.append(f"new skill for you: {', '.join(b.skills)}")
        else:
            parts["skill"] = 0
        # prerequisites
        missing: list[Missing] = []
        t = terms_of[b.id]
        met: list[str] = []
        labels: list[str] = []  # the missing ones, as a person reads them
        if t is not None:
            for p in t.prereq_bounties:
                pb = state.bounties.get(p)
                title = pb.title if pb is not None else None
                label = _q(title) if title is not None else p.hex()[:12]
                if p in learner.awarded_bounties:
                    met.append(f"prerequisite {label} done")
                    continue
                can = (
                    pb is not None
                    and pb.phase == "open"
                    and pb.submit_by > now_ms
                    and pb.author != account
                    and p not in learner.committed
                )
                missing.append(Missing("bounty", p, title, None, can))
                if can:
                    labels.append(f"{label} (open now)")
                elif p in learner.committed:
                    labels.append(f"{label} (your work there is not awarded yet)")
                elif pb is None:
                    labels.append(f"{label} (not on this node yet)")
                else:
                    labels.append(f"{label} (no longer open)")
            for s in t.prereq_skills:
                if learner.has_skill(s):
                    met.append(f"prerequisite skill {s} met")
                else:
                    missing.append(Missing("skill", None, None, s, False))
                    labels.append(f"skill {s}")
        if missing:
            reasons.append("first do: " + ", ".join(labels))
        elif met:
            parts["prerequisites"] = PREREQ_MET_PTS
        reasons += met
        # what it opens up
        later = [
            x
            for x in unlocks.get(b.id, [])
            if x.id not in learner.awarded_bounties and x.author != account
        ]
        if later:
            later.sort(key=lambda x: x.id)
            parts["unlocks"] = UNLOCK_PTS * min(UNLOCK_CAP, len(later))
            reasons.append(
                "a prerequisite of "
                + ", ".join(_q(x.title, 40) for x in later[:UNLOCK_CAP])
                + (f" and {len(later) - UNLOCK_CAP} more" if len(later) > UNLOCK_CAP else "")
            )
        # deadline
        left = b.submit_by - now_ms
        if left < TOO_CLOSE_MS:
            parts["deadline"] = TOO_CLOSE_PTS
            reasons.append(f"closes in {_left(left)}: little time to do the work")
        elif left < _DAY:
            parts["deadline"] = 0
            reasons.append(f"closes in {_left(left)}")
        elif left < 3 * _DAY:
            parts["deadline"] = NEAR_PTS
            reasons.append(f"{_left(left)} left to submit")
        else:
            parts["deadline"] = FAR_PTS
            reasons.append(f"{_left(left)} left to submit")
        # reward
        parts["reward"] = REWARD_PTS * b.reward // (b.reward + median) if b.reward + median else 0
        rel = "above" if b.reward > median else "below" if b.reward < median else "at"
        reasons.append(f"reward {b.reward:,} ({rel} the median {median:,} of open bounties)")
        # the mentor
        m_ppm = _ppm(view.overall.get(b.author, 0), overall_total)
        parts["mentor_trust"] = min(MENTOR_TRUST_CAP, isqrt(m_ppm))
        if m_ppm:
            reasons.append(f"mentor's trust {_pct(m_ppm)} of all")
        rec = records.get(b.author)
        if b.author in state.forks:
            parts["mentor_record"] = FORKED_PTS
            reasons.append("the mentor signed conflicting events (a forked chain)")
        elif rec is None:
            parts["mentor_record"] = 0
            reasons.append("new mentor: no settled bounty yet")
        else:
            bad = rec.refunded_after_delivery + rec.lapsed
            done = rec.awarded + bad
            parts["mentor_record"] = (RECORD_GOOD * rec.awarded - RECORD_BAD * bad) // done
            reasons.append(
                f"mentor settled {rec.awarded} of {done} "
                f"bount{'y' if done == 1 else 'ies'} with an award"
            )
            if rec.refunded_after_delivery:
                k = rec.refunded_after_delivery
                reasons.append(f"mentor refunded {k} after work was committed")
            if rec.lapsed:
                reasons.append(f"mentor left {rec.lapsed} unsettled past the review deadline")
        if t is not None and t.resources:
            k = len(t.resources)
            reasons.append(f"{k} learning resource{'s' if k != 1 else ''} listed")
        out.append(
            Recommendation(
                bounty=b,
                score=sum(parts.values()),
                ready=not missing,
                parts=parts,
                reasons=reasons,
                missing=missing,
            )
        )
    out.sort(key=Recommendation.sort_key)
    return out if limit is None else out[:limit]
