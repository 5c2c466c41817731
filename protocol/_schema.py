"""Schema helpers shared by every module that defines event kinds: each check
raises RemoteProtocolError("schema", "<kind>: <reason a person can read>")."""

from __future__ import annotations

from typing import Any

from ._errors import RemoteProtocolError

__all__ = [
    "MAX_AMOUNT",
    "MAX_CLAIMS",
    "MAX_TS",
    "fail",
    "hash_id",
    "integer",
    "records",
    "skills",
    "text",
]

MAX_AMOUNT = 2**63 - 1
MAX_CLAIMS = 64
MAX_TS = 2**48 - 1


def fail(kind: str, reason: str) -> RemoteProtocolError:
    return RemoteProtocolError("schema", f"{kind}: {reason}")


def text(kind: str, body: dict[str, Any], name: str, lo: int, hi: int) -> str:
    v = body[name]
    if not isinstance(v, str) or not lo <= len(v) <= hi:
        raise fail(kind, f"{name} must be text of {lo}..{hi} characters")
    return v


def integer(kind: str, body: dict[str, Any], name: str, lo: int, hi: int) -> int:
    v = body[name]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise fail(kind, f"{name} must be an integer in {lo}..{hi}")
    return v


def hash_id(kind: str, v: Any, name: str) -> bytes:
    if not isinstance(v, bytes) or len(v) != 32:
        raise fail(kind, f"{name} must be a 32-byte id")
    return v


def skills(kind: str, body: dict[str, Any]) -> None:
    v = body["skills"]
    if not isinstance(v, list) or len(v) > 16:
        raise fail(kind, "skills must be a list of at most 16 tags")
    for s in v:
        if not isinstance(s, str) or not 1 <= len(s) <= 32:
            raise fail(kind, "each skill is 1..32 characters")
    if len(set(v)) != len(v):
        raise fail(kind, "skills must not repeat")


def records(
    kind: str, body: dict[str, Any], name: str, fields: set[str], hi: int
) -> list[dict[str, Any]]:
    v = body[name]
    if not isinstance(v, list) or len(v) > hi:
        raise fail(kind, f"{name} must be a list of at most {hi} entries")
    for r in v:
        if not isinstance(r, dict) or set(r) != fields:
            raise fail(kind, f"each {name} entry has exactly {sorted(fields)}")
    return v


# The names other kind modules have used since before this module existed.
_fail, _text, _int, _hash, _skills, _records = fail, text, integer, hash_id, skills, records
