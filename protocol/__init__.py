"""learnmesh protocol core: events, canonical encoding, signing, validation and
the state fold. No I/O, no clock, no randomness: time and keys come in as
arguments, so every node computes the same state from the same events."""

from ._author import ChainWriter, award_body, commit_body, reveal_body
from ._credential import Credential, CredentialError, make_credential, verify_credential
from ._disputes import (
    DisputeBook,
    DisputeOutcomes,
    DisputeStatus,
    dispute_outcomes,
    dispute_status,
    draw_jury,
    panel_check,
)
from ._encoding import canonical_pack, strict_unpack
from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._event import (
    BAD_SIGNATURE,
    DOMAIN,
    WIRE_VERSION,
    Event,
    check_signature,
    decode_event,
    make_event,
)
from ._genesis import Genesis, Params
from ._identity import KeyPair, account_from_text, account_text, verify_signature
from ._kinds import KINDS, Kind
from ._kinds_disputes import (
    APPEAL_JURY_SIZE,
    DISPUTE_WINDOW_MS,
    JURY_SIZE,
    MAX_DISPUTE_SPAN_MS,
    MIN_BOND,
    vote_commitment,
)
from ._learning import (
    CommentRecord,
    LearningBook,
    RankedResource,
    ResourceRecord,
    ThreadNode,
    comments_for_bounty,
    resources_for,
    thread,
)
from ._moderation import FlagBook, Hidden, HiddenItem, hidden
from ._replica import EquivocationProof, Outcome, Replica
from ._reputation import Reputation, honest_reviews, reputation, trusted_accounts
from ._state import (
    BOUNTY_PHASES,
    FINAL_PHASES,
    Bounty,
    Review,
    State,
    Submission,
    commitment_of,
    content_hash,
)
from ._trust import (
    TrustEdge,
    TrustView,
    review_judgements,
    reviewer_calibration,
    trust_digest,
    trust_view,
    weighted_median,
)

__all__ = [
    "APPEAL_JURY_SIZE",
    "BAD_SIGNATURE",
    "BOUNTY_PHASES",
    "DISPUTE_WINDOW_MS",
    "DOMAIN",
    "FINAL_PHASES",
    "JURY_SIZE",
    "KINDS",
    "MAX_DISPUTE_SPAN_MS",
    "MIN_BOND",
    "WIRE_VERSION",
    "Bounty",
    "ChainWriter",
    "CommentRecord",
    "Credential",
    "CredentialError",
    "DisputeBook",
    "DisputeOutcomes",
    "DisputeStatus",
    "EquivocationProof",
    "Event",
    "FlagBook",
    "Genesis",
    "Hidden",
    "HiddenItem",
    "KeyPair",
    "Kind",
    "LearningBook",
    "LocalProtocolError",
    "Outcome",
    "Params",
    "ProtocolError",
    "RankedResource",
    "RemoteProtocolError",
    "Replica",
    "Reputation",
    "ResourceRecord",
    "Review",
    "State",
    "Submission",
    "ThreadNode",
    "TrustEdge",
    "TrustView",
    "account_from_text",
    "account_text",
    "award_body",
    "canonical_pack",
    "check_signature",
    "comments_for_bounty",
    "commit_body",
    "commitment_of",
    "content_hash",
    "decode_event",
    "dispute_outcomes",
    "dispute_status",
    "draw_jury",
    "hidden",
    "honest_reviews",
    "make_credential",
    "make_event",
    "panel_check",
    "reputation",
    "resources_for",
    "reveal_body",
    "review_judgements",
    "reviewer_calibration",
    "strict_unpack",
    "thread",
    "trust_digest",
    "trust_view",
    "trusted_accounts",
    "verify_credential",
    "verify_signature",
    "vote_commitment",
    "weighted_median",
]
