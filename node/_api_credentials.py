"""API routes for credentials (the page and the CLI use them):

- `GET /api/credentials`: this node's awarded submissions and their credentials
  (`status` ready, fetching or missing).
- `GET /api/credentials/{sid}`: the signed Open Badges 3.0 credential (JSON) of
  an awarded submission; `?format=bundle` gives the old learnmesh bundle.
- `POST /api/credentials/verify`: a credential JSON body in, the verification
  report out, plus whether this node holds a fork proof against the issuer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from learnmesh.protocol._vc import VCError, did_key_public_key
from starlette.requests import Request
from starlette.responses import Response

from ._credentials import credential_bundle, credential_for, my_credentials, verify_document
from ._service import Node, UserError

__all__ = ["credential_routes"]

Handler = Callable[[Request], Awaitable[Any]]
MAX_VERIFY_BYTES = 16 * 1024 * 1024


def _sid(text: str) -> bytes:
    try:
        b = bytes.fromhex(text)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise UserError("a submission id is 64 hex characters", code="bad_request")
    return b


def issuer_fork(node: Node, issuer: Any, award_seq: int | None = None) -> dict[str, Any]:
    """Whether this node knows the issuer forked its chain (an equivocation
    proof), and if so whether the award (at `award_seq` of the issuer's chain)
    came before the fork and still stands."""
    try:
        pk = did_key_public_key(issuer)
    except VCError:
        return {"checked": False, "reason": "the issuer is not a did:key"}
    seq = node.ledger.replica.state.forks.get(pk)
    if seq is None:
        return {"checked": True, "forked": False}
    out: dict[str, Any] = {"checked": True, "forked": True, "fork_seq": seq}
    if award_seq is not None:
        out["award_stands"] = award_seq < seq
    return out


def credential_routes(node: Node) -> list[tuple[str, str, Handler]]:
    async def list_credentials(request: Request) -> Any:
        return {"credentials": my_credentials(node)}  # on the node's thread: it reads state

    async def get_credential(request: Request) -> Any:
        sid = _sid(request.path_params["sid"])
        fmt = request.query_params.get("format", "vc")
        if fmt == "bundle":
            data = credential_bundle(node, sid)
            if data is None:
                raise UserError("this submission was not awarded", status=409, code="not_awarded")
            return Response(data, media_type="application/x-learnmesh-credential")
        if fmt != "vc":
            raise UserError("format is vc (the default) or bundle")
        found = node.ledger.replica.state.find_submission(sid)
        if found is None:
            raise UserError("no such submission", status=404, code="not_found")
        if not found[1].awarded:
            raise UserError("this submission was not awarded", status=409, code="not_awarded")
        got = credential_for(node, sid)
        if got is None:
            raise UserError(
                "the mentor's node has not issued this credential (yet)",
                status=404,
                code="not_issued",
            )
        ev, data = got
        if data is None and await node.fetch_blob(ev.body["vc"], ev.body["size"]):
            data = node.blobs.get(ev.body["vc"])
        if data is None:
            raise UserError(
                "the credential is announced but no peer has sent it yet; try again soon",
                status=404,
                code="not_fetched",
            )
        return Response(
            data,
            media_type="application/vc",  # VC 2.0's media type for a secured credential
            headers={
                "content-disposition": f'attachment; filename="credential-{sid.hex()[:12]}.json"'
            },
        )

    async def verify(request: Request) -> Any:
        raw = await request.body()
        if len(raw) > MAX_VERIFY_BYTES:
            raise UserError("the credential is too large", status=413, code="too_large")
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise UserError(f"the body is not JSON: {exc}", code="bad_json") from None
        report = await trio.to_thread.run_sync(verify_document, doc, node.clock())
        out = report.to_json()
        seq = (report.learnmesh or {}).get("award_seq")
        out["issuer_fork"] = issuer_fork(node, report.issuer, seq)
        return out

    return [
        ("GET", "/api/credentials", list_credentials),
        ("POST", "/api/credentials/verify", verify),
        ("GET", "/api/credentials/{sid}", get_credential),
    ]
