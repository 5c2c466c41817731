"""Recommendations: open bounties ranked for one account, on that account's own node.

`rank(state, view, account, now_ms, limit)` (and `recommend`, its list) is
pure: it reads the state this node
already holds and the trust view the node already keeps (node/_api_trust.py's
`node_trust`), does no I/O, and gives the same answer for the same inputs. No
data leaves the node for this: nothing is asked of any peer, and nothing the
learner looks at is published. Other nodes could compute the same list (the
events are public), but only this node does so for its own account.

Candidates: bounties in phase `open` whose `submit_by` is after `now_ms`, not
posted by the account, and not committed to by it (committing is the only way
to do one, so "done" is included), and not hidden by the caller (the node
passes the bounties and authors its blocklist or the community's flags hide).

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
- `unlocks`: +100 per other candidate (so open, not the learner's own and not
  committed to by it) that lists this one as a prerequisite bounty, up to 3:
  the foundation before the advanced work.
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

Every candidate is scored with integers alone; only the first `limit` after
sorting get their parts, reasons and missing prerequisites written out (on a
large state, allocating those for every candidate cost more than the ranking,
mostly in garbage collection). The mentors' settling counts are kept per state
(rebuilt when it changed, like the trust view); lapsed bounties are counted
against `now_ms` on each call.

A learner has met a prerequisite bounty when its work there was awarded
(`Submission.awarded > 0`), a prerequisite skill when it holds trust in that
skill or has awarded work in a bounty of that skill (docs: learning-design).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from math import isqrt
from typing import TYPE_CHECKING, Any

from learnmesh.protocol._state import Bounty, State, Submission

if TYPE_CHECKING:
    from learnmesh.protocol._trust import TrustView

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Learner",
    "Missing",
    "Ranking",
    "Recommendation",
    "learner_profile",
    "rank",
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


class _MentorBook:
    """What a state says about each mentor's settling, less what needs a clock:
    awards and refunds after a commit per mentor, and the unsettled bounties'
    review deadlines (lapsed ones are counted against `now` on each call)."""

    __slots__ = ("__weakref__", "awarded", "key", "refunded", "unsettled")

    def __init__(self, state: State) -> None:
        self.key = _state_key(state)
        self.awarded: dict[bytes, int] = {}
        self.refunded: dict[bytes, int] = {}  # refunded after a learner committed
        self.unsettled: list[tuple[int, bytes]] = []  # (review_by, mentor)
        for b in state.bounties.values():
            if b.phase == "awarded":
                self.awarded[b.author] = self.awarded.get(b.author, 0) + 1
            elif b.phase == "refunded":
                if b.commits:
                    self.refunded[b.author] = self.refunded.get(b.author, 0) + 1
            else:
                self.unsettled.append((b.review_by, b.author))
        self.unsettled.sort()

    def lapsed(self, now_ms: int) -> dict[bytes, int]:
        out: dict[bytes, int] = {}
        for review_by, mentor in self.unsettled:
            if review_by >= now_ms:
                break
            out[mentor] = out.get(mentor, 0) + 1
        return out


_BOOKS: weakref.WeakKeyDictionary[State, _MentorBook] = weakref.WeakKeyDictionary()


def _state_key(state: State) -> tuple[int, int, int]:
    return (state.event_count, len(state.void), len(state.forks))


def _mentor_book(state: State) -> _MentorBook:
    """Kept per state and rebuilt only when it changed (as the trust view is)."""
    book = _BOOKS.get(state)
    if book is None or book.key != _state_key(state):
        book = _BOOKS[state] = _MentorBook(state)
    return book


def _skill_points(learner: Learner) -> dict[str, tuple[int, str]]:
    """For each skill the learner shows anything in: its points (capped) and
    the reason."""
    out: dict[str, tuple[int, str]] = {}
    known = set(learner.profile_skills) | set(learner.trust_ppm) | set(learner.history)
    for skill in sorted(known):
        pts = 0
        bits = []
        ppm = learner.trust_ppm.get(skill, 0)
        if skill in learner.profile_skills:
            pts += PROFILE_PTS
        if ppm:
            pts += TRUST_PTS + min(TRUST_EXTRA_CAP, ppm // TRUST_PPM_PER_PT)
            bits.append(f"trust {_pct(ppm)}")
        h = learner.history.get(skill)
        if h is not None and h.awarded:
            pts += WORK_PTS * min(WORK_CAP, h.awarded)
            n = h.awarded
            bits.append(f"{n} awarded work{'s' if n != 1 else ''}")
            if h.reviews:
                mean = h.review_pm_sum // h.reviews
                pts += mean // QUALITY_DIV
                bits.append(f"reviewed {mean // 10} % on average")
        if pts:
            if not bits:
                bits.append("on your profile")
            out[skill] = (min(SKILL_CAP, pts), f"matches your skill {skill} ({', '.join(bits)})")
    return out


@dataclass(slots=True)
class _Context:
    state: State
    account: bytes
    now_ms: int
    learner: Learner
    skill_points: dict[str, tuple[int, str]]
    book: _MentorBook
    lapsed: dict[bytes, int]
    mentor_ppm: dict[bytes, int]
    median: int
    unlocks: dict[bytes, list[Bounty]]  # bounty -> candidates that list it as a prerequisite


def _evaluate(
    ctx: _Context, b: Bounty, explain: bool
) -> tuple[int, bool, dict[str, int], list[str], list[Missing]]:
    """The score of one candidate and whether it is ready; with `explain`, also
    its parts, reasons and missing prerequisites (else those stay empty, so the
    first pass over every candidate allocates little)."""
    state, learner, now_ms = ctx.state, ctx.learner, ctx.now_ms
    parts: dict[str, int] = {}
    reasons: list[str] = []
    missing: list[Missing] = []
    # skills
    skill = 0
    if b.skills:
        sp = ctx.skill_points
        for s in b.skills:
            got = sp.get(s)
            if got is not None:
                skill += got[0]
                if explain:
                    reasons.append(got[1])
        skill //= len(b.skills)
        if explain and not skill:
            reasons.append(f"new skill for you: {', '.join(b.skills)}")
    score = skill
    # prerequisites
    ready = True
    t = state.terms.get(b.id)
    prereq = 0
    if t is not None:
        met: list[str] = []
        labels: list[str] = []  # the missing ones, as a person reads them
        for p in t.prereq_bounties:
            done = p in learner.awarded_bounties
            if not done:
                ready = False
            if not explain:
                continue
            pb = state.bounties.get(p)
            title = pb.title if pb is not None else None
            label = _q(title) if title is not None else p.hex()[:12]
            if done:
                met.append(f"prerequisite {label} done")
                continue
            can = (
                pb is not None
                and pb.phase == "open"
                and pb.submit_by > now_ms
                and pb.author != ctx.account
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
            has = learner.has_skill(s)
            if not has:
                ready = False
            if explain:
                if has:
                    met.append(f"prerequisite skill {s} met")
                else:
                    missing.append(Missing("skill", None, None, s, False))
                    labels.append(f"skill {s}")
        if ready and (t.prereq_bounties or t.prereq_skills):
            prereq = PREREQ_MET_PTS
        if explain:
            if labels:
                reasons.append("first do: " + ", ".join(labels))
            reasons += met
    score += prereq
    # what it opens up
    later = ctx.unlocks.get(b.id)
    unlocks = UNLOCK_PTS * min(UNLOCK_CAP, len(later)) if later else 0
    score += unlocks
    if explain and later:
        later = sorted(later, key=lambda x: x.id)
        reasons.append(
            "a prerequisite of "
            + ", ".join(_q(x.title, 40) for x in later[:UNLOCK_CAP])
            + (f" and {len(later) - UNLOCK_CAP} more" if len(later) > UNLOCK_CAP else "")
        )
    # deadline
    left = b.submit_by - now_ms
    if left < TOO_CLOSE_MS:
        deadline = TOO_CLOSE_PTS
    elif left < _DAY:
        deadline = 0
    elif left < 3 * _DAY:
        deadline = NEAR_PTS
    else:
        deadline = FAR_PTS
    score += deadline
    if explain:
        if left < TOO_CLOSE_MS:
            reasons.append(f"closes in {_left(left)}: little time to do the work")
        elif left < _DAY:
            reasons.append(f"closes in {_left(left)}")
        else:
            reasons.append(f"{_left(left)} left to submit")
    # reward
    median = ctx.median
    reward = REWARD_PTS * b.reward // (b.reward + median) if b.reward + median else 0
    score += reward
    if explain:
        rel = "above" if b.reward > median else "below" if b.reward < median else "at"
        reasons.append(f"reward {b.reward:,} ({rel} the median {median:,} of open bounties)")
    # the mentor
    m_ppm = ctx.mentor_ppm.get(b.author, 0)
    mentor_trust = min(MENTOR_TRUST_CAP, isqrt(m_ppm))
    score += mentor_trust
    awarded = ctx.book.awarded.get(b.author, 0)
    refunded = ctx.book.refunded.get(b.author, 0)
    lapsed = ctx.lapsed.get(b.author, 0)
    bad = refunded + lapsed
    if b.author in state.forks:
        record = FORKED_PTS
    elif awarded + bad == 0:
        record = 0
    else:
        record = (RECORD_GOOD * awarded - RECORD_BAD * bad) // (awarded + bad)
    score += record
    if not explain:
        return score, ready, parts, reasons, missing
    if m_ppm:
        reasons.append(f"mentor's trust {_pct(m_ppm)} of all")
    if b.author in state.forks:
        reasons.append("the mentor signed conflicting events (a forked chain)")
    elif awarded + bad == 0:
        reasons.append("new mentor: no settled bounty yet")
    else:
        total = awarded + bad
        reasons.append(
            f"mentor settled {awarded} of {total} bount{'y' if total == 1 else 'ies'} with an award"
        )
        if refunded:
            reasons.append(f"mentor refunded {refunded} after work was committed")
        if lapsed:
            reasons.append(f"mentor left {lapsed} unsettled past the review deadline")
    if t is not None and t.resources:
        k = len(t.resources)
        reasons.append(f"{k} learning resource{'s' if k != 1 else ''} listed")
    parts["skill"] = skill
    if prereq:
        parts["prerequisites"] = prereq
    if unlocks:
        parts["unlocks"] = unlocks
    parts["deadline"] = deadline
    parts["reward"] = reward
    parts["mentor_trust"] = mentor_trust
    parts["mentor_record"] = record
    return score, ready, parts, reasons, missing


@dataclass(slots=True)
class Ranking:
    """The first `limit` recommendations, explained, and how many there were."""

    count: int
    items: list[Recommendation]
    skipped: int = 0  # open bounties left out because the caller hides them


def rank(
    state: State,
    view: TrustView,
    account: bytes,
    now_ms: int,
    limit: int | None = DEFAULT_LIMIT,
    hidden_bounties: frozenset[bytes] = frozenset(),
    hidden_authors: frozenset[bytes] = frozenset(),
) -> Ranking:
    """Every candidate scored (integers only), sorted, and the first `limit`
    explained (see the module docstring). Bounties in `hidden_bounties` or by
    authors in `hidden_authors` (the node's blocklist, the community's flags)
    are left out and counted in `skipped`."""
    learner = learner_profile(state, view, account)
    candidates = [
        b
        for b in state.bounties.values()
        if b.phase == "open"
        and b.submit_by > now_ms
        and b.author != account
        and b.id not in learner.committed
    ]
    skipped = 0
    if hidden_bounties or hidden_authors:
        shown = [
            b for b in candidates if b.id not in hidden_bounties and b.author not in hidden_authors
        ]
        skipped = len(candidates) - len(shown)
        candidates = shown
    if not candidates:
        return Ranking(0, [], skipped)
    rewards = sorted(b.reward for b in candidates)
    n = len(rewards)
    median = rewards[n // 2] if n % 2 else (rewards[n // 2 - 1] + rewards[n // 2]) // 2
    unlocks: dict[bytes, list[Bounty]] = {}
    for b in candidates:
        t = state.terms.get(b.id)
        if t is not None:
            for p in t.prereq_bounties:
                unlocks.setdefault(p, []).append(b)
    overall_total = sum(view.overall.values())
    mentors = {b.author for b in candidates}
    book = _mentor_book(state)
    ctx = _Context(
        state=state,
        account=account,
        now_ms=now_ms,
        learner=learner,
        skill_points=_skill_points(learner),
        book=book,
        lapsed=book.lapsed(now_ms),
        mentor_ppm={m: _ppm(view.overall.get(m, 0), overall_total) for m in mentors},
        median=median,
        unlocks=unlocks,
    )
    keyed = []
    for b in candidates:
        score, ready, _, _, _ = _evaluate(ctx, b, False)
        keyed.append((0 if ready else 1, -score, b.id, b))
    keyed.sort(key=lambda k: k[:3])
    out = []
    for _, _, _, b in keyed if limit is None else keyed[:limit]:
        score, ready, parts, reasons, missing = _evaluate(ctx, b, True)
        out.append(Recommendation(b, score, ready, parts, reasons, missing))
    return Ranking(len(keyed), out, skipped)


def recommend(
    state: State,
    view: TrustView,
    account: bytes,
    now_ms: int,
    limit: int | None = DEFAULT_LIMIT,
) -> list[Recommendation]:
    """Open bounties for `account`, best first (see the module docstring)."""
    return rank(state, view, account, now_ms, limit).items
