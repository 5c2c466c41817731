"""Event kinds for learning together (discussion and resources).

Schemas only; the rules are in protocol/_learning.py.

Wire codes are assigned in protocol/_kinds.py:
17 comment, 18 resource.

- `comment {target, text}` refs `{target}`: Markdown text (1..4000 characters)
  on a bounty, a submission (reveal), a review, another comment or a resource.
- `resource {bounty, skill, title, url, kind, licence}` refs `{bounty}` when
  `bounty` is not b"": a suggested learning resource for a skill.

`check_resource_record` is the one check of a resource's `title`, `url`,
`kind` and `licence`, for any kind that lists resources (bounty terms too).
"""

from __future__ import annotations

from typing import Any

from ._kinds import Kind
from ._schema import fail, hash_id, text

__all__ = [
    "EXTRA_KINDS",
    "MAX_COMMENT_CHARS",
    "MAX_URL_CHARS",
    "RESOURCE_KINDS",
    "check_resource_record",
    "check_url",
]

MAX_COMMENT_CHARS = 4000
MAX_URL_CHARS = 500
RESOURCE_KINDS = ("article", "video", "course", "book", "exercise", "other")


_URL_BAD = frozenset(" \"'<>\\^`{|}")


def check_url(kind: str, url: Any) -> str:
    """An http(s) URL of 1..500 printable ASCII characters, none of
    space " ' < > \\ ^ ` { | }, with a host and no user name. Decided by
    these characters alone (no URL parser, no Unicode tables), so every node
    decides alike; anything else is percent-encoded before it is signed."""
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL_CHARS:
        raise fail(kind, f"url must be text of 1..{MAX_URL_CHARS} characters")
    if any(not 0x21 <= ord(c) <= 0x7E or c in _URL_BAD for c in url):
        raise fail(
            kind,
            "url must be printable ASCII without spaces, quotes or angle brackets "
            "(percent-encode anything else)",
        )
    low = url[:8].lower()
    if low.startswith("https://"):
        rest = url[8:]
    elif low.startswith("http://"):
        rest = url[7:]
    else:
        raise fail(kind, "url must start with http:// or https://")
    authority = rest
    for sep in "/?#":
        authority = authority.split(sep, 1)[0]
    if not authority or authority[0] == ":" or "@" in authority:
        raise fail(kind, "url must name a host (and no user name) after http:// or https://")
    return url


def check_resource_record(kind: str, rec: dict[str, Any]) -> None:
    """`title` 1..200, `url` (check_url), `kind` one of RESOURCE_KINDS, `licence`
    0..64 characters (SPDX-like, "" = unknown)."""
    text(kind, rec, "title", 1, 200)
    check_url(kind, rec["url"])
    if rec["kind"] not in RESOURCE_KINDS:
        raise fail(kind, f"kind must be one of {', '.join(RESOURCE_KINDS)}")
    text(kind, rec, "licence", 0, 64)


def _comment(body: dict[str, Any], author: bytes) -> None:
    hash_id("comment", body["target"], "target")
    text("comment", body, "text", 1, MAX_COMMENT_CHARS)


def _resource(body: dict[str, Any], author: bytes) -> None:
    k = "resource"
    b = body["bounty"]
    if b != b"":
        hash_id(k, b, "bounty (or empty bytes for none)")
    text(k, body, "skill", 1, 32)
    check_resource_record(k, body)


def _comment_refs(body: dict[str, Any]) -> set[bytes]:
    return {body["target"]}


def _resource_refs(body: dict[str, Any]) -> set[bytes]:
    return {body["bounty"]} if body["bounty"] else set()


EXTRA_KINDS: list[Kind] = [
    Kind(17, "comment", frozenset({"target", "text"}), 20480, _comment, refs=_comment_refs),
    Kind(
        18,
        "resource",
        frozenset({"bounty", "skill", "title", "url", "kind", "licence"}),
        4096,
        _resource,
        refs=_resource_refs,
    ),
]
