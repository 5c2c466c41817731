"""JSON-LD canonicalisation with bundled contexts, and the full verification of
an Open Badges 3.0 credential: offline, with nothing fetched, ever.

The published contexts are bundled byte for byte in node/contexts/ (the W3C VC
2.0 context, whose SHA-256 the VC 2.0 Recommendation publishes, and the Open
Badges 3.0.3 context). The document loader serves only those and refuses every
other URL, so a credential that names another context fails with that reason
instead of making a request.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as _dt
import hashlib
import importlib.resources
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from learnmesh.protocol import (
    RemoteProtocolError,
    account_text,
    decode_event,
    strict_unpack,
    verify_credential,
)
from learnmesh.protocol._vc import (
    BUNDLE_MEDIA_TYPE,
    OB_CONTEXT,
    VC_CONTEXT,
    VCError,
    did_key,
    parse_time,
    submission_urn,
    verify_proof,
)

__all__ = [
    "BUNDLED_CONTEXTS",
    "CONTEXT_SHA256",
    "Canonicalizer",
    "ContextRefused",
    "VCReport",
    "canonicalize",
    "default_canonicalizer",
    "verify_vc",
]

VC1_CONTEXT = "https://www.w3.org/2018/credentials/v1"
DI_CONTEXT = "https://w3id.org/security/data-integrity/v2"
_OB = "https://purl.imsglobal.org/spec/ob/v3p0/"

# URL -> (file in node/contexts, SHA-256 of its bytes). The W3C ones are the
# digests their specifications publish (VC 2.0, VC 1.1, Data Integrity 1.0); the
# Open Badges ones are 1EdTech's files, whose content equals the Digital
# Credentials Consortium's copies. Ours use VC 2.0 and OB 3.0.3; the VC 1.1 set
# (with OB 3.0.1/3.0.2 and Data Integrity v2) is for badges issued elsewhere.
CONTEXT_SHA256 = {
    VC_CONTEXT: (
        "credentials-v2.jsonld",
        "59955ced6697d61e03f2b2556febe5308ab16842846f5b586d7f1f7adec92734",
    ),
    OB_CONTEXT: (
        "ob-context-3.0.3.json",
        "ef2fa9c7846dce233cc166b43639027278be4ee44f00bb1d45c75de2dd0cd761",
    ),
    VC1_CONTEXT: (
        "credentials-v1.jsonld",
        "ab4ddd9a531758807a79a5b450510d61ae8d147eab966cc9a200c07095b0cdcc",
    ),
    DI_CONTEXT: (
        "data-integrity-v2.jsonld",
        "67f21e6e33a6c14e5ccfd2fc7865f7474fb71a04af7e94136cb399dfac8ae8f4",
    ),
    _OB + "context-3.0.2.json": (
        "ob-context-3.0.2.json",
        "00666ad080ba407687ed1846b7f5e7495f5019042b202a727de47c48a1755c53",
    ),
    _OB + "context-3.0.1.json": (
        "ob-context-3.0.1.json",
        "d582f3564282fb3b709136d28412e78e70b678b4dbc2f0221f67d84932748355",
    ),
}


def _load_bundled() -> dict[str, bytes]:
    out = {}
    folder = importlib.resources.files("learnmesh.node") / "contexts"
    for url, (name, digest) in CONTEXT_SHA256.items():
        data = (folder / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:  # a damaged install, not user input
            raise RuntimeError(f"the bundled context {name} is not the published one")
        out[url] = data
    return out


BUNDLED_CONTEXTS: dict[str, bytes] = _load_bundled()


class ContextRefused(Exception):
    """A document named a context that is not bundled; it is never fetched."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class Canonicalizer:
    """RDFC-1.0 (URDNA2015) canonical N-Quads of JSON-LD documents, resolving
    contexts only from `contexts` (URL -> bytes); every other URL is refused."""

    def __init__(self, contexts: Mapping[str, bytes] = BUNDLED_CONTEXTS) -> None:
        self._contexts = {u: json.loads(b) for u, b in contexts.items()}
        self._cache: LRUCache[str, Any] = LRUCache(maxsize=64)
        self.refused: list[str] = []
        self._lock = threading.Lock()  # pyld's resolver cache is not thread-safe

    def _loader(self, url: str, options: Any = None) -> dict[str, Any]:
        doc = self._contexts.get(url)
        if doc is None:
            self.refused.append(url)
            raise ContextRefused(url)
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": copy.deepcopy(doc),
        }

    def _options(self) -> dict[str, Any]:
        from pyld.context_resolver import ContextResolver

        return {
            "documentLoader": self._loader,
            "contextResolver": ContextResolver(self._cache, self._loader),
        }

    def _run(self, fn: Any, *args: Any) -> Any:
        jsonld = _pyld()
        try:
            with self._lock:
                return fn(*args)
        except ContextRefused as exc:
            raise VCError(f"the context {exc.url} is not bundled; it is never fetched") from None
        except jsonld.JsonLdError as exc:
            cause: BaseException | None = exc
            while cause is not None:
                if isinstance(cause, ContextRefused):
                    raise VCError(
                        f"the context {cause.url} is not bundled; it is never fetched"
                    ) from None
                cause = cause.__cause__ or cause.__context__
            raise VCError(f"not valid JSON-LD: {_jsonld_reason(exc)}") from None
        except (ValueError, TypeError, ArithmeticError, RecursionError, KeyError) as exc:
            raise VCError(f"cannot process the document: {type(exc).__name__}: {exc}") from None

    def canonicalize(self, document: dict[str, Any]) -> str:
        opts = {**self._options(), "algorithm": "URDNA2015", "format": "application/n-quads"}
        out = self._run(_pyld().normalize, document, opts)
        assert isinstance(out, str)
        return out

    def __call__(self, document: dict[str, Any]) -> str:
        return self.canonicalize(document)

    def undefined_terms(self, document: dict[str, Any]) -> list[str]:
        """Properties that expansion drops (terms no context defines): they would
        not be signed, and standard verifiers refuse them."""
        dropped: list[str] = []

        def note(prop: str | None) -> None:
            if prop is not None and prop not in dropped:
                dropped.append(prop)

        expanded = self._run(
            lambda: _pyld().expand(document, self._options(), on_property_dropped=note)
        )
        # A type no context defines stays a relative IRI, which RDF drops too.
        for t in _relative_types(expanded):
            note(t)
        return dropped


def _pyld() -> Any:
    """pyld's jsonld module, imported on first use: it adds about 5 MB to every
    node process (measured), and most nodes never sign or check a credential."""
    from pyld import jsonld

    return jsonld


def _relative_types(node: Any) -> list[str]:
    """Relative IRIs in an expanded document: types and ids no context defines.
    (pyld resolves them against a placeholder base where jsonld.js leaves them
    relative; either way a standard verifier refuses them.)"""
    base = getattr(_pyld(), "DEFAULT_BASE_IRI", "http://example.org/base/")
    out: list[str] = []
    if isinstance(node, list):
        for x in node:
            out += _relative_types(x)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k in ("@type", "@id"):
                for t in v if isinstance(v, list) else [v]:
                    if isinstance(t, str) and (":" not in t or t.startswith(base)):
                        what = "type" if k == "@type" else "relative id"
                        out.append(f"{what} {t.removeprefix(base)}")
            else:
                out += _relative_types(v)
    return out


def _jsonld_reason(exc: Exception) -> str:
    msg = str(getattr(exc, "message", "") or exc).splitlines()[0]
    details = getattr(exc, "details", None) or {}
    code = details.get("code") if isinstance(details, dict) else None
    return f"{msg} ({code})" if code else msg


_DEFAULT: Canonicalizer | None = None

# Issuers' clocks drift: a validFrom this little ahead of ours is not "in the future".
CLOCK_SKEW = _dt.timedelta(minutes=5)


def canonicalize(document: dict[str, Any]) -> str:
    """Canonical N-Quads with the bundled contexts only."""
    return default_canonicalizer().canonicalize(document)


def default_canonicalizer() -> Canonicalizer:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Canonicalizer()
    return _DEFAULT


# -- verification ------------------------------------------------------------------------


@dataclass
class VCReport:
    """What a credential claims and which checks it passed. `valid` holds when
    every check passed; `checks` lists (name, ok, reason) in the order run."""

    valid: bool = False
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    id: str | None = None
    name: str | None = None
    issuer: str | None = None
    issuer_name: str | None = None
    subject: str | None = None
    achievement: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    work: str | None = None
    network: str | None = None
    network_id: str | None = None
    learnmesh: dict[str, Any] | None = None

    def check(self, name: str, ok: bool, reason: str) -> bool:
        self.checks.append((name, ok, reason))
        return ok

    @property
    def failures(self) -> list[tuple[str, str]]:
        return [(n, r) for n, ok, r in self.checks if not ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "checks": [{"check": n, "ok": ok, "reason": r} for n, ok, r in self.checks],
            "id": self.id,
            "name": self.name,
            "issuer": {"id": self.issuer, "name": self.issuer_name},
            "subject": self.subject,
            "achievement": self.achievement,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "work": self.work,
            "network": {"name": self.network, "id": self.network_id},
            "learnmesh": self.learnmesh,
        }


MAX_DEPTH = 64
_PLAIN_KEYWORDS = {"@context", "@id", "@type", "@value", "@language", "@direction"}


def _depth(v: Any) -> int:
    """Nesting depth, without recursion (a hostile file may nest thousands deep)."""
    deepest, stack = 0, [(v, 0)]
    while stack:
        x, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        if isinstance(x, dict):
            stack += [(y, d + 1) for y in x.values()]
        elif isinstance(x, list):
            stack += [(y, d + 1) for y in x]
    return deepest


def _keywords(v: Any) -> list[str]:
    """JSON-LD keywords other than the plain ones, outside the contexts."""
    out: list[str] = []
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            for k, y in x.items():
                if k == "@context":
                    continue
                if k.startswith("@") and k not in _PLAIN_KEYWORDS and k not in out:
                    out.append(k)
                stack.append(y)
        elif isinstance(x, list):
            stack += x
    return out


def _types(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _id_of(v: Any) -> Any:
    return v.get("id") if isinstance(v, dict) else v


def _required_fields(doc: dict[str, Any]) -> str | None:
    """The first missing or malformed Open Badges 3.0 / VC 2.0 required field."""
    ctx = doc.get("@context")
    if not isinstance(ctx, list) or not ctx or ctx[0] not in (VC_CONTEXT, VC1_CONTEXT):
        return f"@context must be a list starting with {VC_CONTEXT} (or {VC1_CONTEXT})"
    if not any(isinstance(c, str) and c.startswith(_OB) for c in ctx):
        return "@context must include the Open Badges 3.0 context"
    types = _types(doc.get("type"))
    if "VerifiableCredential" not in types:
        return "type must include VerifiableCredential"
    if "OpenBadgeCredential" not in types and "AchievementCredential" not in types:
        return "type must include OpenBadgeCredential"
    cid = doc.get("id")
    if not isinstance(cid, str) or ":" not in cid:
        return "id must be an absolute URI"
    if not isinstance(doc.get("name"), str) or not doc["name"]:
        return "name is required"
    issuer = doc.get("issuer")
    if not isinstance(issuer, dict):
        return "issuer must be a Profile object"
    if not isinstance(issuer.get("id"), str):
        return "issuer.id is required"
    if "Profile" not in _types(issuer.get("type")):
        return "issuer.type must include Profile"
    subj = doc.get("credentialSubject")
    if not isinstance(subj, dict):
        return "credentialSubject must be one object"
    if "AchievementSubject" not in _types(subj.get("type")):
        return "credentialSubject.type must include AchievementSubject"
    ach = subj.get("achievement")
    if not isinstance(ach, dict):
        return "credentialSubject.achievement is required"
    for f in ("id", "name", "description", "criteria"):
        if not ach.get(f):
            return f"achievement.{f} is required"
    if "Achievement" not in _types(ach.get("type")):
        return "achievement.type must include Achievement"
    crit = ach["criteria"]
    if not isinstance(crit, dict) or not (crit.get("id") or crit.get("narrative")):
        return "achievement.criteria needs an id or a narrative"
    return None


def _learnmesh_bundle(doc: dict[str, Any]) -> bytes | None:
    prefix = f"data:{BUNDLE_MEDIA_TYPE};base64,"
    for ev in _types(doc.get("evidence")) if doc.get("evidence") is not None else []:
        eid = _id_of(ev)
        if isinstance(eid, str) and eid.startswith(prefix):
            try:
                return base64.b64decode(eid[len(prefix) :], validate=True)
            except (binascii.Error, ValueError):
                raise VCError("the learnmesh proof bundle is not valid base64") from None
    return None


def verify_vc(
    doc: Any,
    now: _dt.datetime,
    canonicalizer: Canonicalizer | None = None,
) -> VCReport:
    """Every check of an eddsa-rdfc-2022 OpenBadgeCredential with a did:key
    issuer, offline. `now` (the caller's clock) is for the validity dates."""
    c = canonicalizer or default_canonicalizer()
    r = VCReport()
    if not isinstance(doc, dict):
        r.check("shape", False, "a credential is a JSON object")
        return r
    if _depth(doc) > MAX_DEPTH:
        r.check("shape", False, f"the document nests deeper than {MAX_DEPTH} levels")
        return r
    r.id = doc.get("id") if isinstance(doc.get("id"), str) else None
    r.name = doc.get("name") if isinstance(doc.get("name"), str) else None
    issuer = doc.get("issuer")
    r.issuer = _id_of(issuer) if isinstance(_id_of(issuer), str) else None
    if isinstance(issuer, dict) and isinstance(issuer.get("name"), str):
        r.issuer_name = issuer["name"]
    subj = doc.get("credentialSubject")
    if isinstance(subj, dict):
        r.subject = subj.get("id") if isinstance(subj.get("id"), str) else None
        ach = subj.get("achievement")
        if isinstance(ach, dict) and isinstance(ach.get("name"), str):
            r.achievement = ach["name"]
    for ev in _types(doc.get("evidence")) if doc.get("evidence") is not None else []:
        eid = _id_of(ev)
        if isinstance(eid, str) and not eid.startswith("data:") and r.work is None:
            r.work = eid

    missing = _required_fields(doc)
    r.check("fields", missing is None, missing or "the Open Badges 3.0 required fields are present")

    # Dates (VC 1.1 names them issuanceDate and expirationDate).
    ctx = doc.get("@context")
    v1 = isinstance(ctx, list) and bool(ctx) and ctx[0] == VC1_CONTEXT
    start, end = ("issuanceDate", "expirationDate") if v1 else ("validFrom", "validUntil")
    try:
        vf = parse_time(doc.get(start), start)
        r.valid_from = doc[start]
        vu = None
        if end in doc:
            vu = parse_time(doc[end], end)
            r.valid_until = doc[end]
        if vf > now + CLOCK_SKEW:
            r.check("dates", False, f"not valid yet: {start} {doc[start]} is in the future")
        elif vu is not None and vu < vf:
            r.check("dates", False, f"{end} is before {start}")
        elif vu is not None and vu < now:
            r.check("dates", False, f"expired: {end} {doc[end]} has passed")
        else:
            r.check("dates", True, f"valid from {doc[start]}")
    except VCError as exc:
        r.check("dates", False, exc.reason)

    # Terms the contexts do not define are not signed: refuse them, as standard
    # verifiers do; and JSON-LD keywords beyond the plain ones, whose content
    # need not reach the signed statements either.
    try:
        dropped, keywords = c.undefined_terms(doc), _keywords(doc)
        problems = []
        if dropped:
            problems.append(f"terms no context defines: {', '.join(dropped)}")
        if keywords:
            problems.append(f"JSON-LD keywords a credential may not use: {', '.join(keywords)}")
        r.check(
            "terms",
            not problems,
            "; ".join(problems) or "every term is defined by the bundled contexts",
        )
    except VCError as exc:
        r.check("terms", False, exc.reason)

    # The proof, and that its key is the issuer's.
    try:
        signer = verify_proof(doc, c.canonicalize)
        r.check("proof", True, f"eddsa-rdfc-2022 signature by {did_key(signer)}")
        r.check(
            "issuer key",
            r.issuer == did_key(signer),
            "the proof's key is the issuer's did:key"
            if r.issuer == did_key(signer)
            else f"the proof is by {did_key(signer)}, not by the issuer {r.issuer}",
        )
    except VCError as exc:
        r.check("proof", False, exc.reason)

    # The learnmesh evidence, when present.
    try:
        bundle = _learnmesh_bundle(doc)
        if bundle is not None:
            _check_learnmesh(r, bundle)
    except VCError as exc:
        r.check("learnmesh", False, exc.reason)
    r.valid = all(ok for _, ok, _ in r.checks)
    return r


def _check_learnmesh(r: VCReport, bundle: bytes) -> None:
    try:
        cred = verify_credential(bundle)
    except RemoteProtocolError as exc:
        r.check("learnmesh", False, f"the learnmesh proof bundle does not verify: {exc.reason}")
        return
    from learnmesh.protocol import account_from_text

    mentor = account_from_text(cred.mentor)
    learner = account_from_text(cred.learner)
    r.network, r.network_id = cred.network, cred.network_id.hex()
    r.learnmesh = cred.to_json()
    award_raw = strict_unpack(bundle, 1 << 20)["events"][4]  # checked just above
    r.learnmesh["award_seq"] = decode_event(award_raw, 1 << 20, verify=False).seq
    problems = []
    if r.issuer != did_key(mentor):
        problems.append(f"the issuer is not the bounty's mentor {cred.mentor}")
    if r.subject != did_key(learner):
        problems.append(f"the subject is not the learner {cred.learner}")
    urn = submission_urn(cred.network_id, cred.submission)
    if r.work != urn:
        problems.append("the evidence names another submission than the bundle's")
    r.check(
        "learnmesh",
        not problems,
        "; ".join(problems)
        or (
            f"the signed events prove that {account_text(mentor)} awarded submission "
            f"{cred.submission.hex()[:16]}… by {account_text(learner)} "
            f"({cred.amount} tokens) on network {cred.network}"
        ),
    )
