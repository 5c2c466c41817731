"""The API's description (node/_openapi.py) against the real routes and answers.

- The app's route table and the described routes are the same set of (method,
  path), with and without `--admin`; the description is valid OpenAPI 3.1.
- A real node process serves it at GET /api/openapi.json (with the token only),
  and real calls' requests and answers (and errors) match the documented shapes.
- API.md is what `python -m learnmesh.node._openapi` writes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _nodes import ApiError, Network, Node
from _service import service_node
from jsonschema import Draft202012Validator
from learnmesh.node import _api
from learnmesh.node._api import make_app
from learnmesh.node._openapi import PATH_PARAMS, ROUTES, markdown, openapi, served_routes
from learnmesh.node._service import Node as ServiceNode
from learnmesh.protocol import ChainWriter, Genesis, KeyPair
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def local_node(tmp_path: Path) -> Iterator[ServiceNode]:
    key = KeyPair(os.urandom(32))
    genesis = Genesis(
        name="inproc",
        created_ms=int(time.time() * 1000) - 60_000,
        allocations=((key.public_key, 1000),),
    )
    node = service_node(tmp_path, key, genesis)
    try:
        yield node
    finally:
        node.ledger.close()


def test_every_served_route_is_described_and_every_described_route_is_served(
    local_node: ServiceNode,
) -> None:
    documented = set(ROUTES)
    admin_only = {k for k, d in ROUTES.items() if d.admin}
    assert admin_only, "the admin routes are described"
    with_admin = served_routes(make_app(local_node, "t", admin=True).routes)
    without = served_routes(make_app(local_node, "t").routes)
    assert len(with_admin) == len(set(with_admin)), "a (method, path) served twice"
    assert sorted(set(with_admin) - documented) == [], "served but not described"
    assert sorted(documented - set(with_admin)) == [], "described but not served"
    assert set(without) == documented - admin_only, "admin routes only with --admin"


def test_description_is_valid_openapi_and_names_every_parameter(
    local_node: ServiceNode,
) -> None:
    app = make_app(local_node, "t", admin=True)
    spec = openapi(app.routes)
    validate(spec)  # OpenAPI 3.1, its schemas JSON Schema 2020-12
    assert spec["openapi"] == "3.1.0"
    ops = {(m.upper(), p): op for p, item in spec["paths"].items() for m, op in item.items()}
    assert set(ops) == set(ROUTES)
    for (method, path), op in ops.items():
        assert op["summary"] != "(not described)", (method, path)
        named = {x["name"] for x in op.get("parameters", []) if x["in"] == "path"}
        in_path = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
        assert named == in_path, (method, path)
        assert in_path <= set(PATH_PARAMS), (method, path)
        assert "200" in op["responses"], (method, path)
        if path.startswith("/api/") and ROUTES[(method, path)].auth != "public":
            assert "401" in op["responses"], (method, path)
    # the routes that replay on a repeated Idempotency-Key are the ones the API treats so
    assert {k for k, d in ROUTES.items() if d.idempotent} == _api._IDEMPOTENT


def test_api_md_is_up_to_date() -> None:
    have = (ROOT / "API.md").read_text()
    assert have == markdown(), (
        "API.md is out of date: run `.venv/bin/python -m learnmesh.node._openapi > API.md`"
    )


# -- against a real node ------------------------------------------------------------------------


def _schema_of(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    op = spec["paths"][path][method.lower()]
    resp = op["responses"].get(str(status))
    assert resp is not None, f"{method} {path} answered {status}, which is not documented"
    schema: dict[str, Any] = resp["content"]["application/json"]["schema"]
    return schema


def _validate(spec: dict[str, Any], schema: dict[str, Any], value: Any, what: str) -> None:
    root = {**schema, "components": spec["components"]}  # so "#/components/..." resolves
    errors = sorted(Draft202012Validator(root).iter_errors(value), key=str)
    assert not errors, f"{what}: {errors[0].message} at {list(errors[0].absolute_path)}"


def _properties(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The top-level properties a schema documents (through $ref and allOf)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _properties(spec, spec["components"]["schemas"][name])
    out = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        out |= _properties(spec, part)
    return out


class Checker:
    """Real calls on a node, each checked against the description."""

    def __init__(self, node: Node, spec: dict[str, Any]) -> None:
        self.node = node
        self.spec = spec
        self.checked: set[tuple[str, str]] = set()

    def call(
        self,
        method: str,
        template: str,
        path: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        op = self.spec["paths"][template][method.lower()]
        body_errors: list[str] = []
        if body is not None and "requestBody" in op:
            req = op["requestBody"]["content"]["application/json"]["schema"]
            root = {**req, "components": self.spec["components"]}
            body_errors = [e.message for e in Draft202012Validator(root).iter_errors(body)]
        r = self.node.request(method, path or template, json_body=body, headers=headers)
        # a body the description accepts is not refused as malformed, and one it
        # does not accept is refused
        if body_errors:
            assert r.status_code == 400, f"{method} {template} took {body}: {body_errors}"
        elif body is not None and "requestBody" in op:
            assert r.status_code != 400, f"{method} {template} refused {body}: {r.text}"
        data = r.json()
        schema = _schema_of(self.spec, method, template, r.status_code)
        _validate(self.spec, schema, data, f"{method} {template} -> {r.status_code}")
        if r.status_code < 400:
            extra = set(data) - _properties(self.spec, schema) if isinstance(data, dict) else set()
            assert not extra, f"{method} {template} answers undocumented fields {sorted(extra)}"
        else:
            codes = set(op["responses"][str(r.status_code)]["x-error-codes"])
            assert data["error"] in codes or "<protocol code>" in codes, (
                f"{method} {template} -> {r.status_code} {data['error']}: not among {codes}"
            )
        self.checked.add((method, template))
        return r.status_code, data


@pytest.mark.slow
def test_real_answers_match_the_description(tmp_path: Path) -> None:
    with Network(tmp_path, ["a", "b"], allocation=10_000) as net:
        a, b = net["a"], net["b"]
        net.start()

        r = a.request("GET", "/api/openapi.json", token="")
        assert r.status_code == 401, r.text
        spec = a.get("/api/openapi.json")
        validate(spec)
        served = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
        assert served == set(ROUTES), "the node process serves every route (it runs --admin)"
        assert spec["servers"] == [{"url": a.api}]

        c = Checker(a, spec)
        c.call("GET", "/api/status")
        c.call("GET", "/api/peers")
        c.call("GET", "/api/me")
        c.call("GET", "/api/balances")
        c.call("GET", "/api/balance")
        c.call("GET", "/api/balance/{account}", f"/api/balance/{b.account}")
        c.call("POST", "/api/profile", body={"name": "Ada", "bio": "hi", "skills": ["math"]})
        c.call("POST", "/api/transfer", body={"to": b.account, "amount": 5, "memo": "thanks"})
        _, ev = c.call(
            "POST",
            "/api/bounties",
            body={
                "title": "Explain CRDTs",
                "reward": 100,
                "rubric": [{"name": "clarity", "max": 10}],
                "skills": ["math"],
            },
        )
        bid = ev["id"]
        c.call("GET", "/api/bounties")
        c.call("GET", "/api/bounties/{bid}", f"/api/bounties/{bid}")
        c.call("GET", "/api/payments")
        c.call("GET", "/api/reputation")
        c.call("GET", "/api/accounts/{account}/events", f"/api/accounts/{a.account}/events")
        c.call("GET", "/api/profiles/{account}", f"/api/profiles/{a.account}")
        c.call("GET", "/api/drafts")
        c.call("GET", "/api/credentials")
        c.call("GET", "/api/trust")
        c.call("GET", "/api/trust/{account}", f"/api/trust/{a.account}")
        c.call("GET", "/api/trust/reviews/{bid}", f"/api/trust/reviews/{bid}")
        c.call("GET", "/api/applied")
        c.call("POST", "/api/vouch", body={"account": b.account})
        c.call("POST", "/api/bounties/{bid}/close", f"/api/bounties/{bid}/close", body={})
        c.call("POST", "/api/bounties/{bid}/refund", f"/api/bounties/{bid}/refund")
        status, err = c.call("POST", "/api/bounties/{bid}/refund", f"/api/bounties/{bid}/refund")
        assert (status, err["error"]) == (409, "settled")
        _, report = c.call("POST", "/api/credentials/verify", body={"type": ["nothing"]})
        assert report["valid"] is False
        _, link = c.call("POST", "/api/login-link", body={})
        csrf = {"X-Learnmesh-CSRF": "1"}
        c.call("POST", "/api/session", body={"code": link["code"]}, headers=csrf)
        status, err = c.call("POST", "/api/session", body={"code": link["code"]}, headers=csrf)
        assert (status, err["error"]) == (401, "login_expired")  # a code works once
        c.call("POST", "/api/logout", body={})
        _, connected = c.call("POST", "/api/admin/connect", body={"addr": b.addr})
        assert connected["peer"] == b.peer_id
        c.call("POST", "/api/admin/sync", body={})
        c.call("POST", "/api/admin/partition", body={"peers": [b.peer_id]})
        c.call("POST", "/api/admin/heal", body={})
        status, err = c.call("POST", "/api/admin/partition", body={"peers": "everyone"})
        assert (status, err["error"]) == (400, "bad_request")
        _, before = c.call("POST", "/api/admin/clock", body={})
        assert before["offset_ms"] == 0
        _, moved = c.call("POST", "/api/admin/clock", body={"advance_ms": 1000})
        assert moved["offset_ms"] == 1000 and moved["now_ms"] >= before["now_ms"] + 1000
        for wrong in (0, -5, 86_400_001, "1000", True):
            status, err = c.call("POST", "/api/admin/clock", body={"advance_ms": wrong})
            assert (status, err["error"]) == (400, "bad_request"), wrong

        # errors: documented status, code and shape
        status, err = c.call("GET", "/api/bounties/{bid}", "/api/bounties/" + "ab" * 32)
        assert (status, err["error"]) == (404, "not_found")
        status, err = c.call("GET", "/api/bounties/{bid}", "/api/bounties/xyz")
        assert status == 400
        status, err = c.call("POST", "/api/transfer", body={"to": b.account, "amount": 10**9})
        assert (status, err["error"]) == (409, "insufficient_funds")
        status, err = c.call(
            "POST", "/api/bounties/{bid}/refund", f"/api/bounties/{'cd' * 32}/refund"
        )
        assert (status, err["error"]) == (404, "not_found")
        # disputes (node/_api_disputes.py): a real dispute's answers are checked
        # against this description in tests/test_disputes_node.py
        c.call("GET", "/api/disputes")
        c.call("GET", "/api/jury")
        none = "ab" * 32
        status, err = c.call("GET", "/api/disputes/{did}", f"/api/disputes/{none}")
        assert (status, err["error"]) == (404, "not_found")
        dispute = {"target": bid, "claim": "wrong", "bond": 20}
        status, err = c.call("POST", "/api/disputes", body=dispute)
        assert (status, err["error"]) == (409, "not_disputable")
        status, err = c.call("POST", "/api/disputes", body={**dispute, "bond": 5})
        assert (status, err["error"]) == (400, "bond_too_small")
        for act, act_body in (("vote", {"verdict": "uphold"}), ("reveal", {}), ("claim", {})):
            status, err = c.call(
                "POST", f"/api/disputes/{{did}}/{act}", f"/api/disputes/{none}/{act}", body=act_body
            )
            assert (status, err["error"]) == (404, "not_found")

        # learning together, moderation, messages, recommendations, batch authoring:
        # each engineer's own node tests check these answers in depth; here every
        # route is called once against the served description
        c.call("POST", "/api/comments", body={"target": bid, "text": "A *question*?"})
        c.call("GET", "/api/bounties/{bid}/comments", f"/api/bounties/{bid}/comments")
        c.call("GET", "/api/comments/{eid}", f"/api/comments/{bid}")
        resource = {"skill": "math", "title": "Proofs", "url": "https://example.org/proofs"}
        c.call("POST", "/api/resources", body={**resource, "kind": "book", "licence": "CC-BY-4.0"})
        c.call("GET", "/api/resources", "/api/resources?skill=math")
        c.call("POST", "/api/flags", body={"account": b.account, "category": "spam"})
        c.call("GET", "/api/flags")
        c.call("POST", "/api/blocks", body={"account": b.account, "reason": "test"})
        c.call("GET", "/api/blocks")
        c.call("DELETE", "/api/blocks/{account}", f"/api/blocks/{b.account}")
        c.call("POST", "/api/messages", body={"to": b.account, "text": "hello"})
        c.call("GET", "/api/messages")
        c.call("GET", "/api/messages/{account}", f"/api/messages/{b.account}")
        c.call("GET", "/api/recommendations", "/api/recommendations?limit=5")
        batch = [{"kind": "profile", "name": "Ada L.", "bio": "", "skills": []}]
        c.call("POST", "/api/events/batch", body={"events": batch})

        # a field the description marks required is required
        required = spec["paths"]["/api/transfer"]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]["required"]
        assert set(required) == {"to", "amount"}
        for missing in required:
            body = {"to": b.account, "amount": 1}
            del body[missing]
            with pytest.raises(ApiError) as info:
                a.post("/api/transfer", body)
            assert info.value.status == 400, info.value

        # the raw-event route: msgpack in, the documented answer out
        w = ChainWriter(KeyPair(os.urandom(32)), net.network_id)
        raw = w.sign("profile", {"name": "x", "bio": "", "skills": []}, int(time.time() * 1000))
        for content, want in ((raw.raw, 200), (raw.raw, 200), (b"\x01junk", 422)):
            r = a.post_raw(content)
            assert r.status_code == want, r.text
            schema = _schema_of(spec, "POST", "/api/events", r.status_code)
            _validate(spec, schema, r.json(), f"POST /api/events -> {r.status_code}")
        c.checked.add(("POST", "/api/events"))

        # the text answers carry their documented media type
        for path in ("/metrics", "/"):
            r = a.request("GET", path)
            media = next(iter(spec["paths"][path]["get"]["responses"]["200"]["content"]))
            assert r.status_code == 200 and r.headers["content-type"].startswith(media), path
        # every JSON route was called here, but for these (the story tests drive them)
        json_routes = {k for k, d in ROUTES.items() if d.media == "application/json"}
        assert sorted(json_routes - c.checked) == [
            ("GET", "/api/openapi.json"),  # checked above as a whole
            ("POST", "/api/bounties/{bid}/award"),
            ("POST", "/api/review"),
            ("POST", "/api/submit"),
        ]
