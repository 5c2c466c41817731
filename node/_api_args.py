"""Reading what a request carries, shared by the API's route modules
(node/_api.py and node/_api_<feature>.py): one JSON-object body reader and one
event-id parser, so every route refuses the same mistakes in the same words."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ._service import UserError

__all__ = ["MAX_BODY", "hex_id", "json_object"]

MAX_BODY = 32 * 1024 * 1024  # also enforced from Content-Length by node/_api.py's guard


async def json_object(
    request: Request, max_bytes: int = MAX_BODY, too_large: str = "request body too large"
) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); 413 over `max_bytes`,
    400 `bad_json` for anything that is not one JSON object."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise UserError(too_large, status=413)
    try:
        data = json.loads(raw or b"{}")
    except RecursionError:
        raise UserError("the request body is nested too deeply", code="bad_json") from None
    except ValueError:
        raise UserError("the request body is not valid JSON", code="bad_json") from None
    if not isinstance(data, dict):
        raise UserError("the request body must be a JSON object", code="bad_json")
    return data


def hex_id(v: Any, what: str) -> bytes:
    """A 32-byte event id given as 64 hex characters."""
    if not isinstance(v, str):
        raise UserError(f"{what} must be a hex id (64 characters)")
    try:
        b = bytes.fromhex(v)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise UserError(f"{what} must be a hex id of 32 bytes (64 hex characters)")
    return b
