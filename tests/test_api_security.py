"""The API's guards and the web page's server side (issues 8 and 9).

Against a real node process (one shared by most tests here, started once):
a foreign Host is refused (421) with the token and with the cookie, on `/` and
the page's files too; a cross-site Origin is refused (403); JSON nested 100,000
deep is a 400, not a 500; a login link works once and only once; the session
cookie is HttpOnly and SameSite=Strict; a cookie POST without the CSRF header is
refused; the security headers are on every response; one Idempotency-Key gives
one bounty and one escrow however many times (and however concurrently) it is
sent; attachments are downloads with a sanitised file name; the event stream
says when the state changed, ends when its client leaves, and does not hold up
the node's shutdown.

In-process (the real app on a node whose clock the test moves, through httpx's
ASGI transport): login codes expire, and each viewer's role and next action on a
bounty follow its phase and deadlines, with the list filters and /api/me.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from _nodes import WAIT, Network, Node, cli, wait_for
from _service import service_node
from learnmesh.node._api import CSP, make_app, safe_filename
from learnmesh.protocol import ChainWriter, Genesis, KeyPair, Params, decode_event

STATIC = Path(__file__).resolve().parent.parent / "node" / "static"
CSRF = {"X-Learnmesh-CSRF": "1"}
EXPIRED = "This login link was already used or has expired. Run `learnmesh web` for a new one."


# -- a real node, shared -----------------------------------------------------------------


class Shared:
    def __init__(self, net: Network, mentor: KeyPair) -> None:
        self.net = net
        self.a: Node = net["a"]
        self.mentor = mentor  # an account the test signs for: bounties for `a` to submit to
        self.writer = ChainWriter(mentor, net.network_id)

    @property
    def port(self) -> int:
        return int(self.a.api.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    mentor = KeyPair(os.urandom(32))
    net = Network(
        tmp_path_factory.mktemp("apisec"),
        ["a"],
        extra_allocations=[(mentor.public_key, 50_000)],
    )
    try:
        net.start()
        yield Shared(net, mentor)
    finally:
        net.close()


def req(node: Node, method: str, path: str, **kw: Any) -> httpx.Response:
    """`Node.request` without the client's cookie jar: every cookie a test
    sends, it sends on purpose (in a Cookie header)."""
    node._http().cookies.clear()
    r = node.request(method, path, **kw)
    node._http().cookies.clear()
    return r


def login(a: Node) -> str:
    """A session id, the way the page gets one: link (token) -> code -> cookie."""
    code = a.post("/api/login-link")["code"]
    r = req(a, "POST", "/api/session", json_body={"code": code}, token="", headers=CSRF)
    assert r.status_code == 200, r.text
    sid = r.cookies.get(cookie_name(a))
    assert sid
    return f"{cookie_name(a)}={sid}"


def cookie_name(a: Node) -> str:
    """Each node's session cookie carries its port (browsers share cookies
    between ports of one host)."""
    return "lm_session_" + a.api.rsplit(":", 1)[1]


def cookie(session: str, **extra: str) -> dict[str, str]:
    """Headers with a session cookie ("name=value", as `login` gives it)."""
    return {"Cookie": session, **extra}


def balance(a: Node) -> int:
    b: int = a.get("/api/balance")["balance"]
    return b


def events(a: Node) -> int:
    n: int = a.status()["events"]
    return n


# -- Host and Origin ---------------------------------------------------------------------


def test_foreign_host_is_refused_with_token_and_cookie(shared: Shared) -> None:
    a, port = shared.a, shared.port
    sid = login(a)
    before = balance(a), events(a)
    foreign = [
        "evil.example",
        f"evil.example:{port}",
        f"127.0.0.1.evil.example:{port}",
        f"localhost.evil.example:{port}",
        "127.0.0.2",
        "",
    ]
    credentials: list[tuple[str | None, dict[str, str]]] = [(None, {}), ("", cookie(sid, **CSRF))]
    for host in foreign:
        for token, extra in credentials:
            for method, path, body in [
                ("GET", "/", None),
                ("GET", "/static/app.js", None),
                ("GET", "/api/status", None),
                ("POST", "/api/transfer", {"to": shared.mentor.account, "amount": 7}),
                ("POST", "/api/login-link", {}),
            ]:
                r = req(
                    a, method, path, json_body=body, token=token, headers={**extra, "Host": host}
                )
                assert r.status_code == 421, (host, token, method, path, r.status_code, r.text)
                assert r.json()["error"] == "host_refused"
                assert r.headers["content-security-policy"] == CSP
    assert (balance(a), events(a)) == before, "a refused request moved nothing"
    # Every loopback spelling, with or without the port, is served.
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
        r = req(a, "GET", "/api/status", headers={"Host": host})
        assert r.status_code == 200, (host, r.text)
        r = req(a, "GET", "/api/status", token="", headers=cookie(sid, Host=host))
        assert r.status_code == 200, (host, r.text)


def test_cross_site_origin_is_refused(shared: Shared) -> None:
    a, port = shared.a, shared.port
    sid = login(a)
    before = balance(a), events(a)
    for origin in (
        "http://evil.example",
        f"http://evil.example:{port}",
        "null",
        f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}",
        f"https://127.0.0.1:{port}",
        f"http://127.0.0.1:{port}.evil.example",
    ):
        for token, extra in [(None, {}), ("", cookie(sid, **CSRF))]:
            r = req(
                a,
                "POST",
                "/api/transfer",
                json_body={"to": shared.mentor.account, "amount": 3},
                token=token,
                headers={**extra, "Origin": origin},
            )
            assert r.status_code == 403, (origin, token, r.status_code, r.text)
            assert r.json()["error"] == "origin_refused"
            r = req(a, "GET", "/api/me", token=token, headers={**extra, "Origin": origin})
            assert r.status_code == 403, (origin, r.status_code)
    assert (balance(a), events(a)) == before
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"):
        r = req(a, "GET", "/api/me", token="", headers=cookie(sid, Origin=origin))
        assert r.status_code == 200, (origin, r.text)


# -- bad JSON ------------------------------------------------------------------------------


def test_deep_or_bad_json_is_a_400(shared: Shared) -> None:
    a = shared.a
    depth = 100_000
    bodies = {
        "deep list": b"[" * depth + b"]" * depth,
        "deep object": b'{"a":' * depth + b"1" + b"}" * depth,
        "deep inside": b'{"to": ' + b"[" * depth + b"]" * depth + b', "amount": 1}',
        "not an object": b"[1, 2]",
        "not JSON": b"{title: 'x'}",
        "not UTF-8": b'{"title": "\xff\xfe"}',
    }
    before = events(a)
    zero = "00" * 32
    posts = [
        "/api/transfer",
        "/api/bounties",
        "/api/submit",
        "/api/review",
        "/api/vouch",
        "/api/profile",
        f"/api/bounties/{zero}/close",
        f"/api/bounties/{zero}/award",
        "/api/session",
        "/api/admin/connect",
        "/api/credentials/verify",
    ]
    for path in posts:
        for what, raw in bodies.items():
            if path == "/api/credentials/verify" and what == "not an object":
                continue  # its own answer: a JSON value that is not a credential
            r = req(
                a, "POST", path, content=raw, headers={"content-type": "application/json", **CSRF}
            )
            assert r.status_code == 400, (path, what, r.status_code, r.text[:200])
            body = r.json()
            if path != "/api/credentials/verify":  # that one's codes are its own
                assert body["error"] == "bad_json", (path, what, body)
            assert body["message"] and "Traceback" not in body["message"]
    assert events(a) == before
    assert a.get("/api/status")["events"] == before, "the node still answers"
    # A body announced over the limit is refused before it is read.
    port = int(a.api.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(
            f"POST /api/transfer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {a.token}\r\nContent-Length: {33 << 20}\r\n\r\n{{".encode()
        )
        got = b""
        while b"}" not in got and len(got) < 8192:  # the status line, headers and JSON body
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
        head = got.decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert '"error":"too_large"' in head, head


# -- login and sessions ------------------------------------------------------------------


def test_login_link_works_once_and_gives_a_strict_httponly_cookie(shared: Shared) -> None:
    a = shared.a
    r = req(a, "POST", "/api/login-link")
    assert r.status_code == 200
    link = r.json()
    code = link["code"]
    assert link["url"] == f"{a.api}/#login={code}" and link["expires_in_s"] == 120
    assert len(code) >= 20

    # The page's POST carries the CSRF header; without it the code is not even looked at.
    r = req(a, "POST", "/api/session", json_body={"code": code}, token="")
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    r = req(a, "POST", "/api/session", json_body={"code": code}, token="", headers=CSRF)
    assert r.status_code == 200, r.text
    set_cookie = r.headers["set-cookie"]
    parts = [p.strip().lower() for p in set_cookie.split(";")]
    sid = r.cookies[cookie_name(a)]
    assert parts[0] == f"{cookie_name(a)}={sid}".lower()
    assert "httponly" in parts and "samesite=strict" in parts and "path=/" in parts
    assert len(base64.urlsafe_b64decode(sid + "=" * (-len(sid) % 4))) == 32
    assert sid not in r.text, "the session id is only in the HttpOnly cookie"
    sid = f"{cookie_name(a)}={sid}"

    # Once only: the same code again, a wrong code, no code.
    for body in ({"code": code}, {"code": code[:-1] + "x"}, {"code": ""}, {}, {"code": 5}):
        r = req(a, "POST", "/api/session", json_body=body, token="", headers=CSRF)
        assert r.status_code == 401, (body, r.text)
        assert r.json() == {"error": "login_expired", "message": EXPIRED}
        assert "set-cookie" not in r.headers

    # The cookie opens the API; it does not make login links (the token does).
    me = req(a, "GET", "/api/me", token="", headers=cookie(sid))
    assert me.status_code == 200 and me.json()["account"] == a.account
    r = req(a, "POST", "/api/login-link", token="", headers=cookie(sid, **CSRF))
    assert r.status_code == 403 and r.json()["error"] == "token_only"
    # A wrong bearer token is refused even next to a valid cookie.
    r = req(a, "GET", "/api/me", token="wrong", headers=cookie(sid))
    assert r.status_code == 401

    # Logout ends the session.
    r = req(a, "POST", "/api/logout", token="", headers=cookie(sid, **CSRF))
    assert r.status_code == 200
    assert f"{cookie_name(a)}=" in r.headers["set-cookie"]
    r = req(a, "GET", "/api/me", token="", headers=cookie(sid))
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_learnmesh_web_prints_a_one_time_link(shared: Shared) -> None:
    a = shared.a
    out = cli("--data", str(a.data), "web").stdout
    assert "2 minutes" in out and "once" in out, out
    assert a.token not in out, "the link does not carry the API token"
    url = next(line.strip() for line in out.splitlines() if "#login=" in line)
    assert url.startswith(f"{a.api}/#login=")
    code = url.split("#login=", 1)[1]
    r = req(a, "POST", "/api/session", json_body={"code": code}, token="", headers=CSRF)
    assert r.status_code == 200, r.text
    r = req(a, "POST", "/api/session", json_body={"code": code}, token="", headers=CSRF)
    assert r.status_code == 401
    js = json.loads(cli("--data", str(a.data), "--json", "web").stdout)
    assert js["expires_in_s"] == 120 and "#login=" in js["url"]


def test_cookie_post_without_csrf_header_is_refused(shared: Shared) -> None:
    a = shared.a
    sid = login(a)
    before = events(a)
    for path, body in [
        ("/api/profile", {"name": "csrf-victim"}),
        ("/api/transfer", {"to": shared.mentor.account, "amount": 1}),
        ("/api/logout", {}),
    ]:
        for bad in ({}, {"X-Learnmesh-CSRF": "0"}, {"X-Learnmesh-CSRF": ""}):
            r = req(a, "POST", path, json_body=body, token="", headers=cookie(sid, **bad))
            assert r.status_code == 403, (path, bad, r.status_code, r.text)
            assert r.json()["error"] == "csrf"
    assert events(a) == before, "nothing was authored"
    r = req(
        a,
        "POST",
        "/api/profile",
        json_body={"name": "by-page"},
        token="",
        headers=cookie(sid, **CSRF),
    )
    assert r.status_code == 200, r.text
    assert events(a) == before + 1
    # The bearer token needs no CSRF header (scripts and the CLI are not a browser).
    a.post("/api/profile", {"name": "by-script"})


# -- headers ---------------------------------------------------------------------------------


def test_security_headers_on_every_response(shared: Shared) -> None:
    a = shared.a
    sid = login(a)
    assert (STATIC / "app.js").exists(), "the page's script is node/static/app.js"
    checks: list[tuple[str, str | None, dict[str, str], int]] = [
        ("/", "", {}, 200),
        ("/static/app.js", "", {}, 200),
        ("/static/no-such-file.js", "", {}, 404),
        ("/api/status", None, {}, 200),
        ("/api/me", "", cookie(sid), 200),
        ("/api/status", "", {}, 401),
        ("/api/no-such-route", None, {}, 404),
        ("/api/status", None, {"Host": "evil.example"}, 421),
    ]
    for path, token, headers, status in checks:
        r = req(a, "GET", path, token=token, headers=headers)
        assert r.status_code == status, (path, r.status_code, r.text[:200])
        h = r.headers
        assert h["content-security-policy"] == CSP, path
        assert h["x-content-type-options"] == "nosniff", path
        assert h["referrer-policy"] == "no-referrer", path
        assert h["x-frame-options"] == "DENY", path
        if path.startswith("/api/"):
            assert h["cache-control"] == "no-store", path
            assert h["content-type"].startswith("application/json"), path
    page = req(a, "GET", "/", token="")
    assert page.headers["content-type"].startswith("text/html")
    js = req(a, "GET", "/static/app.js", token="")
    assert "javascript" in js.headers["content-type"]


# -- idempotency ------------------------------------------------------------------------------


def test_one_idempotency_key_makes_one_bounty_and_one_escrow(shared: Shared) -> None:
    a = shared.a
    title = f"idempotent {os.urandom(4).hex()}"
    body = {"title": title, "reward": 321, "rubric": [{"name": "q", "max": 5}]}
    key = os.urandom(16).hex()
    start = balance(a)
    barrier = threading.Barrier(4)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=a.api, timeout=WAIT) as c:
            barrier.wait()
            r = c.post(
                "/api/bounties",
                json=body,
                headers={"Authorization": f"Bearer {a.token}", "Idempotency-Key": key},
            )
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert len(answers) == 4
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    ids = {r.json()["id"] for r in answers}
    assert len(ids) == 1, ids
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 3
    listed = [b for b in a.get("/api/bounties")["bounties"] if b["title"] == title]
    assert len(listed) == 1 and listed[0]["id"] in ids
    assert balance(a) == start - 321, "one escrow locked"

    # Later repeats replay too; the same key on another request is refused; a new key posts.
    r = req(a, "POST", "/api/bounties", json_body=body, headers={"Idempotency-Key": key})
    assert r.status_code == 200 and r.json()["id"] in ids
    other = {**body, "reward": 322}
    r = req(a, "POST", "/api/bounties", json_body=other, headers={"Idempotency-Key": key})
    assert r.status_code == 422 and r.json()["error"] == "idempotency_mismatch"
    r = req(a, "POST", "/api/bounties", json_body=body, headers={"Idempotency-Key": "x" * 65})
    assert r.status_code == 400 and r.json()["error"] == "bad_idempotency_key"
    r = req(a, "POST", "/api/bounties", json_body=body, headers={"Idempotency-Key": "k2" + key})
    assert r.status_code == 200 and r.json()["id"] not in ids
    assert balance(a) == start - 2 * 321
    # A refused first try does not pin the key: fixed, the same action goes through.
    k3 = "k3" + key
    r = req(
        a,
        "POST",
        "/api/transfer",
        json_body={"to": "lmnope", "amount": 1},
        headers={"Idempotency-Key": k3},
    )
    assert r.status_code == 400
    r = req(
        a,
        "POST",
        "/api/transfer",
        json_body={"to": "lmnope", "amount": 1},
        headers={"Idempotency-Key": k3},
    )
    assert r.status_code == 400 and "idempotent-replayed" not in r.headers


# -- attachments ------------------------------------------------------------------------------


def test_attachment_is_a_download_with_a_safe_name(shared: Shared) -> None:
    a = shared.a
    now = int(time.time() * 1000)
    ev = shared.writer.sign(
        "bounty",
        {
            "title": "attach",
            "description": "",
            "rubric": [{"name": "q", "max": 5}],
            "skills": [],
            "reward": 10,
            "reviewer_share_bp": 0,
            "submit_by": now + 3_600_000,
            "review_by": now + 7_200_000,
            "quorum": 1,
        },
        now,
    )
    r = a.post_raw(ev.raw)
    assert r.status_code == 200, r.text
    payload = b"<html><script>alert(1)</script></html>"
    a.post(
        "/api/submit",
        {
            "bounty": ev.id.hex(),
            "text": "see file",
            "files": [{"name": "x.html", "data_b64": base64.b64encode(payload).decode()}],
        },
    )
    draft = next(d for d in a.get("/api/drafts")["drafts"] if d["bounty"] == ev.id.hex())
    h = draft["attachments"][0]["hash"]
    for name, want in [
        ('../../etc/"passwd"\r\nSet-Cookie: x=1.html', "_.._etc__passwd___Set-Cookie_ x=1.html"),
        ("résumé.pdf", "r_sum_.pdf"),
        ("", "attachment"),
        ("...", "attachment"),
        ('/\\"', "attachment"),
    ]:
        r = httpx.get(
            f"{a.api}/api/blobs/{h}",
            params={"name": name},
            headers={"Authorization": f"Bearer {a.token}"},
        )
        assert r.status_code == 200, r.text
        assert r.content == payload
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["content-disposition"] == f'attachment; filename="{want}"', name
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in r.headers
    assert safe_filename('a"b/c\\d\x00e;f.txt') == "a_b_c_d_e_f.txt"


# -- the event stream ------------------------------------------------------------------------


class Stream:
    """An SSE client on its own thread: events land in a list."""

    def __init__(self, a: Node, headers: dict[str, str]) -> None:
        self.events: list[tuple[str, str]] = []  # (event or "comment", data)
        self.status = 0
        self.content_type = ""
        self._client = httpx.Client(base_url=a.api, timeout=httpx.Timeout(WAIT, read=60.0))
        self._headers = headers
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with (
            contextlib.suppress(httpx.HTTPError),
            self._client.stream("GET", "/api/stream", headers=self._headers) as r,
        ):
            self.status = r.status_code
            self.content_type = r.headers.get("content-type", "")
            event = ""
            for line in r.iter_lines():
                if self._stop:
                    return
                if line.startswith(":"):
                    self.events.append(("comment", line[1:].strip()))
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    self.events.append((event, line[5:].strip()))
                    event = ""

    def changes(self) -> list[dict[str, Any]]:
        return [json.loads(d) for e, d in list(self.events) if e == "change"]

    def close(self) -> None:
        self._stop = True
        self._client.close()


def test_stream_says_when_the_state_changed(shared: Shared) -> None:
    a = shared.a
    sid = login(a)
    r = req(a, "GET", "/api/stream", token="")
    assert r.status_code == 401
    s = Stream(a, cookie(sid))
    try:
        first = wait_for(lambda: s.changes(), "the stream's first change (the current state)")[0]
        assert s.status == 200 and s.content_type.startswith("text/event-stream")
        st = a.status()
        assert first["applied"] == st["stats"]["events_applied"]
        assert first["digest"] == st["digest"]
        n = len(s.changes())
        a.post("/api/profile", {"name": f"streamed {os.urandom(3).hex()}"})
        after = a.status()
        got = wait_for(
            lambda: [c for c in s.changes()[n:] if c["digest"] == after["digest"]],
            "a change event with the new digest",
        )
        assert got[0]["applied"] == first["applied"] + 1
        # Quiet: only a ping comment every 15 s, no repeated change events.
        k = len(s.changes())
        wait_for(lambda: ("comment", "ping") in s.events, "a ping comment", timeout=60)
        assert len(s.changes()) == k
        # Logging out ends the session's open streams.
        r = req(a, "POST", "/api/logout", token="", headers=cookie(sid, **CSRF))
        assert r.status_code == 200
        s.thread.join(WAIT)
        assert not s.thread.is_alive(), "the stream ended with its session"
    finally:
        s.close()


def test_stream_ends_with_its_client_and_never_holds_up_shutdown(tmp_path: Path) -> None:
    with Network(tmp_path, ["s"]) as net:
        net.start()
        n = net["s"]
        streams = [Stream(n, {"Authorization": f"Bearer {n.token}"}) for _ in range(3)]
        wait_for(lambda: n.status()["web"]["streams"] == 3, "three open streams")
        for s in streams[:2]:
            s.close()
        wait_for(lambda: n.status()["web"]["streams"] == 1, "closed clients to end their streams")
        code, took = n.stop(timeout=30)
        assert code == 0, n.log_tail()
        assert took < 15, f"shutdown took {took:.1f} s with a stream open"
        streams[2].thread.join(30)
        assert not streams[2].thread.is_alive(), "the open stream ended with the node"


# -- in-process: the real app on nodes whose clock the test moves ---------------------------


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


class Local:
    """One in-process node (no libp2p) and an httpx client on its real app."""

    def __init__(self, root: Path, name: str, key: KeyPair, genesis: Genesis, clock: Clock) -> None:
        self.name = name
        self.key = key
        self.node = service_node(
            root / name,
            key,
            genesis,
            max_blob_bytes=genesis.params.max_blob_bytes,
            clock=clock,
            monotonic=clock,  # one clock the test moves, for dates and for lifetimes
        )
        self.token = f"token-{name}"
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_app(self.node, self.token)),
            base_url="http://127.0.0.1:8000",
            headers={"Authorization": f"Bearer {self.token}"},
        )

    async def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        r = await self.http.request(method, path, json=body)
        assert r.status_code == status, (self.name, method, path, r.status_code, r.text)
        return r.json()

    async def bounty(self, bid: str) -> dict[str, Any]:
        """The bounty as this node's list shows it to its own account."""
        got = await self.call("GET", "/api/bounties")
        found: dict[str, Any] = next(b for b in got["bounties"] if b["id"] == bid)
        detail = await self.call("GET", f"/api/bounties/{bid}")
        for k in ("my_role", "my_commit", "next_action", "reviewable", "author_name"):
            assert detail[k] == found[k], (k, detail[k], found[k])
        return found

    async def ids(self, **filters: str) -> set[str]:
        r = await self.http.get("/api/bounties", params=filters)
        assert r.status_code == 200, r.text
        return {b["id"] for b in r.json()["bounties"]}


def share(nodes: list[Local]) -> None:
    """Gossip by hand: every node gets every event another holds."""
    for src in nodes:
        rep = src.node.ledger.replica
        for eid in list(rep.raw):
            for dst in nodes:
                if dst is not src and not dst.node.ledger.replica.has(eid):
                    raw = rep.raw[eid]
                    ev = decode_event(raw, src.node.genesis.params.max_event_bytes)
                    dst.node.admit([ev])
    digests = {n.node.ledger.replica.digest() for n in nodes}
    assert len(digests) == 1, "the in-process nodes agree"


@pytest.fixture
async def trio_locals(tmp_path: Path) -> AsyncIterator[tuple[list[Local], Clock]]:
    clock = Clock()
    keys = {n: KeyPair(os.urandom(32)) for n in ("mentor", "learner", "reviewer")}
    genesis = Genesis(
        name="inproc",
        created_ms=int(clock.t * 1000) - 60_000,
        allocations=tuple(sorted((k.public_key, 10_000) for k in keys.values())),
        params=Params(max_blob_bytes=4096),
    )
    nodes = [Local(tmp_path, n, k, genesis, clock) for n, k in keys.items()]
    try:
        yield nodes, clock
    finally:
        for n in nodes:
            await n.http.aclose()
            n.node.ledger.close()


async def test_login_code_expires_after_two_minutes(
    trio_locals: tuple[list[Local], Clock],
) -> None:
    (m, *_), clock = trio_locals
    early = (await m.call("POST", "/api/login-link"))["code"]
    late = (await m.call("POST", "/api/login-link"))["code"]
    clock.t += 119
    r = await m.http.post(
        "/api/session", json={"code": early}, headers={**CSRF, "Authorization": ""}
    )
    assert r.status_code == 200, r.text
    clock.t += 2  # 121 s after it was made
    r = await m.http.post("/api/session", json={"code": late}, headers=CSRF)
    assert r.status_code == 401 and r.json() == {"error": "login_expired", "message": EXPIRED}


async def test_roles_next_actions_filters_and_me(trio_locals: tuple[list[Local], Clock]) -> None:
    (m, learner, rv), clock = trio_locals
    now = int(clock.t * 1000)
    hour = 3_600_000
    await m.call("POST", "/api/profile", {"name": "Mentor Mo", "bio": "teaches", "skills": []})

    # The form's mistakes in the form's words.
    base = {
        "title": "Write a parser",
        "reward": 1000,
        "rubric": [{"name": "correctness", "max": 10}],
    }
    r = await m.http.post(
        "/api/bounties", json={**base, "submit_by": now + 2 * hour, "review_by": now + hour}
    )
    msg = r.json()["message"]
    assert r.status_code == 400 and "review deadline" in msg and "submission deadline" in msg, msg
    assert "submit_by" not in msg and "review_by" not in msg
    r = await m.http.post("/api/bounties", json={**base, "submit_by": "tomorrow"})
    assert r.status_code == 400 and "submission deadline" in r.json()["message"]
    r = await m.http.post("/api/bounties", json={**base, "title": "   "})
    assert r.status_code == 400 and "title" in r.json()["message"]
    r = await m.http.post("/api/bounties", json={**base, "rubric": []})
    assert r.status_code == 400 and "rubric" in r.json()["message"]

    bid = (
        await m.call(
            "POST",
            "/api/bounties",
            {
                **base,
                "description": "A JSON PARSER in Python",
                "skills": ["python", "parsing"],
                "reviewer_share_bp": 1000,
                "submit_by": now + hour,
                "review_by": now + 2 * hour,
            },
        )
    )["id"]
    other = (
        await m.call(
            "POST",
            "/api/bounties",
            {
                **base,
                "title": "Draw a logo",
                "reward": 50,
                "skills": ["design"],
                "submit_by": now + hour,
                "review_by": now + 2 * hour,
            },
        )
    )["id"]
    share([m, learner, rv])

    b = await m.bounty(bid)
    assert (b["my_role"], b["next_action"], b["my_commit"]) == ("mentor", "close", None)
    assert b["author"] == m.key.account and b["author_name"] == "Mentor Mo"
    assert b["skills"] == ["python", "parsing"] and b["reward"] == 1000
    assert b["submit_by"] == now + hour and b["review_by"] == now + 2 * hour
    b = await learner.bounty(bid)
    assert (b["my_role"], b["next_action"], b["my_commit"]) == (None, "submit", None)

    # Filters.
    assert await learner.ids(q="json parser") == {bid}
    assert await learner.ids(skill="design") == {other}
    assert await learner.ids(min_reward="100") == {bid}
    assert await learner.ids(author=m.key.account) == {bid, other}
    assert await learner.ids(author=learner.key.account) == set()
    assert await learner.ids(phase="open") == {bid, other}
    assert await learner.ids(phase="closed") == set()
    assert await m.ids(mine="1") == {bid, other}
    assert await learner.ids(mine="1") == set()
    r = await learner.http.get("/api/bounties", params={"min_reward": "lots"})
    assert r.status_code == 400 and "minimum reward" in r.json()["message"]
    r = await learner.http.get("/api/bounties", params={"author": "nobody"})
    assert r.status_code == 400

    # Wrong shapes and an attachment over the limit are plain 4xx answers, with the limit.
    big = base64.b64encode(b"x" * 5000).decode()
    r = await learner.http.post(
        "/api/submit", json={"bounty": bid, "files": [{"name": "big.bin", "data_b64": big}]}
    )
    assert r.status_code == 413, r.text
    assert "attachment limit of 4,096 bytes" in r.json()["message"]
    for wrong in ({"bounty": bid, "files": 5}, {"bounty": bid, "files": "abc"}):
        r = await learner.http.post("/api/submit", json=wrong)
        assert r.status_code == 400 and "files" in r.json()["message"], r.text
    r = await m.http.post(f"/api/bounties/{bid}/close", json={"accept": 5})
    assert r.status_code == 400 and "accept" in r.json()["message"], r.text
    assert (await m.bounty(bid))["phase"] == "open"

    # The learner submits: then it has a commit and nothing more to do.
    commit = (
        await learner.call("POST", "/api/submit", {"bounty": bid, "text": "my parser", "files": []})
    )["id"]
    share([m, learner, rv])
    b = await learner.bounty(bid)
    assert b["my_role"] == "learner" and b["next_action"] is None
    assert b["my_commit"]["id"] == commit and b["my_commit"]["at"] == int(clock.t * 1000)
    assert await learner.ids(mine="1") == {bid}
    # The reviewer could still submit, until the deadline passes.
    assert (await rv.bounty(bid))["next_action"] == "submit"
    clock.t += 3601
    assert (await rv.bounty(bid))["next_action"] is None
    assert (await m.bounty(bid))["next_action"] == "close"

    await m.call("POST", f"/api/bounties/{bid}/close", {})
    share([m, learner, rv])
    await learner.node._reveal_ready()  # what the running node does on its own
    share([m, learner, rv])
    b = await rv.bounty(bid)
    assert (b["my_role"], b["next_action"]) == ("reviewer", "review")
    sub = b["reviewable"][0]
    assert (await m.bounty(bid))["next_action"] == "award"
    assert (await learner.bounty(bid))["next_action"] is None, "no review of one's own work"
    assert (await m.bounty(other))["next_action"] == "close"

    await rv.call("POST", "/api/review", {"submission": sub, "scores": {"correctness": 8}})
    share([m, learner, rv])
    b = await rv.bounty(bid)
    assert (b["my_role"], b["next_action"], b["my_reviews"]) == ("reviewer", None, [sub])
    assert await rv.ids(mine="1") == {bid}

    r = await m.http.post(f"/api/bounties/{bid}/award", json={"winners": {sub: 5000}})
    assert r.status_code == 409, r.text
    assert r.json() == {
        "error": "over_escrow",
        "message": "the winners' amounts add up to 5000, but only 900 is left in escrow "
        "after the reviewers' share",
    }
    await m.call("POST", f"/api/bounties/{bid}/award", {"winners": {sub: None}})
    r = await m.http.post(f"/api/bounties/{bid}/award", json={"winners": {sub: None}})
    assert r.status_code == 409
    assert r.json() == {"error": "settled", "message": "this bounty is already awarded"}
    r = await m.http.post(f"/api/bounties/{bid}/refund", json={})
    assert r.status_code == 409 and r.json()["error"] == "settled"
    assert (await m.bounty(bid))["next_action"] is None
    assert await m.ids(phase="awarded") == {bid}

    # A closed bounty with no submissions: the mentor's next action is a refund.
    await m.call("POST", f"/api/bounties/{other}/close", {})
    assert (await m.bounty(other))["next_action"] == "refund"

    share([m, learner, rv])
    me = await learner.call("GET", "/api/me")
    assert me["account"] == learner.key.account and me["name"] is None
    assert me["balance"] == me["spendable"] == 10_000 + 900  # the reviewers' 10 % went out
    assert me["reputation"]["points"] >= 10
    assert me["network"] == {"name": "inproc", "id": m.node.network.hex()}
    assert me["params"]["max_blob_bytes"] == m.node.genesis.params.max_blob_bytes
    assert me["params"]["min_quorum"] == 1 and me["params"]["max_reviewer_share_bp"] == 5000
    await learner.call("POST", "/api/vouch", {"account": rv.key.account})
    share([m, learner, rv])
    assert (await learner.call("GET", "/api/me"))["vouches_by_me"] == [rv.key.account]
    assert (await rv.call("GET", "/api/me"))["vouches_for_me"] == [learner.key.account]

    prof = await rv.call("GET", f"/api/profiles/{m.key.account}")
    assert prof["name"] == "Mentor Mo" and prof["bio"] == "teaches"
    assert prof["bounties_posted"] == 2 and prof["work_awarded"] == 0
    prof = await m.call("GET", f"/api/profiles/{learner.key.account}")
    assert prof["work_awarded"] == 1 and prof["reputation"]["points"] >= 10
    await m.call("GET", "/api/profiles/lmnobody", status=400)


async def test_a_repeat_arriving_while_the_first_runs_waits_for_its_answer(
    trio_locals: tuple[list[Local], Clock],
) -> None:
    """The node's authoring may yield (a lock, a disk write): a repeat that
    arrives meanwhile must wait for the first answer, not author again."""
    (m, *_), clock = trio_locals
    original = m.node.post_bounty
    started = 0

    async def slow_post(body: dict[str, Any], terms: dict[str, Any] | None = None) -> Any:
        nonlocal started
        started += 1
        await trio.sleep(0.2)  # the second request arrives while this one runs
        return await original(body, terms)

    m.node.post_bounty = slow_post  # type: ignore[method-assign]
    now = int(clock.t * 1000)
    body = {
        "title": "once",
        "reward": 77,
        "submit_by": now + 3_600_000,
        "review_by": now + 7_200_000,
    }
    answers: list[httpx.Response] = []

    async def post() -> None:
        r = await m.http.post("/api/bounties", json=body, headers={"Idempotency-Key": "k1"})
        answers.append(r)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(post)
    assert [r.status_code for r in answers] == [200, 200, 200], [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert started == 1, "the repeats did not author"
    assert len(m.node.ledger.replica.state.bounties) == 1
    assert (await m.call("GET", "/api/balance"))["balance"] == 10_000 - 77


ODD: list[Any] = [None, True, -1, 0, 1.5, 2**70, "", "x", "ab" * 32, [], {}, [1], {"a": 1}, ["x"]]


async def test_no_user_mistake_is_an_internal_error(trio_locals: tuple[list[Local], Clock]) -> None:
    """Every field of every request, set to each odd value: always a 4xx or a
    success, with a sentence; never a 500."""
    (m, learner, _), clock = trio_locals
    now = int(clock.t * 1000)
    good_bounty = {
        "title": "t",
        "reward": 5,
        "submit_by": now + 3_600_000,
        "review_by": now + 7_200_000,
    }
    bid = (await m.call("POST", "/api/bounties", good_bounty))["id"]
    forms: dict[str, dict[str, Any]] = {
        "/api/bounties": {
            **good_bounty,
            "description": "",
            "rubric": [{"name": "q", "max": 5}],
            "skills": [],
            "reviewer_share_bp": 0,
            "quorum": 1,
        },
        "/api/submit": {"bounty": bid, "text": "t", "files": [{"name": "a", "data_b64": ""}]},
        "/api/review": {"submission": "00" * 32, "scores": {"q": 1}, "comment": ""},
        "/api/transfer": {"to": learner.key.account, "amount": 1, "memo": ""},
        "/api/vouch": {"account": learner.key.account},
        "/api/profile": {"name": "n", "bio": "", "skills": []},
        f"/api/bounties/{bid}/close": {"accept": []},
        f"/api/bounties/{bid}/award": {"winners": {"00" * 32: None}},
        "/api/session": {"code": "x"},
    }
    seen = 0
    for path, form in forms.items():
        for field in form:
            for value in ODD:
                body = {**form, field: value}
                r = await m.http.post(path, json=body, headers=CSRF)
                assert r.status_code < 500, (path, field, value, r.status_code, r.text)
                if r.status_code >= 400:
                    err = r.json()
                    assert set(err) == {"error", "message"} and err["message"], (path, err)
                seen += 1
    for path in ("/api/bounties", "/api/accounts/{a}/events", "/api/applied", "/api/reputation"):
        path = path.replace("{a}", m.key.account)
        for name in ("phase", "skill", "q", "min_reward", "author", "mine", "limit", "since"):
            for value in ("", "x", "-1", "1e3", "lmnobody", "9" * 30):
                r = await m.http.get(path, params={name: value, "account": value})
                assert r.status_code < 500, (path, name, value, r.status_code, r.text)
                seen += 1
    assert seen > 500
