"""The web page against what other peers publish, and against token theft.

Three real node processes: the victim's (whose page the browser shows), and two
hostile authors' (mallory, accomplice), plus a third hostile key (eve) whose
signed events reach the network through mallory's API. They publish every text
a user can set (profile name, bio and skills, bounty title, description, skills
and rubric criterion names, submission text and attachment names, review
comment, transfer memo) with payloads that, if any ran, would set
`window.__pwned`, raise an alert or send the victim's tokens to mallory. The
victim's page visits every view and every bounty: nothing runs, the hostile
text is shown as text, and the victim's balance does not move.

The visit is made twice: once with the page's Content-Security-Policy bypassed
(Chrome's Page.setBypassCSP), so the rendering path alone is what is tested,
and once with it enforced. A probe injected by the test itself proves each
time that a payload would have been noticed (with the CSP bypassed) or blocked
(with it enforced): the test can fail.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _browser import Browser
from _nodes import Network, Node, wait_for
from learnmesh.protocol import ChainWriter, KeyPair
from selenium.common.exceptions import NoAlertPresentException

pytestmark = pytest.mark.slow


def _payloads(mallory: str) -> list[str]:
    steal = (
        "fetch('/api/transfer',{method:'POST',headers:{'X-Learnmesh-CSRF':'1',"
        "'Content-Type':'application/json'},body:JSON.stringify({to:'" + mallory + "',"
        "amount:500,memo:'pwned'})})"
    )
    return [
        '<img src=x onerror="window.__pwned=1">',
        '"><svg onload="window.__pwned=2">',
        "'><img src=x onerror=window.__pwned=3>",
        "</script><script>window.__pwned=4</script>",
        "javascript:window.__pwned=5",
        '<a href="javascript:window.__pwned=6">click</a>',
        "<img src=x onerror=alert(7)>",
        '" onmouseover="window.__pwned=8" x="',
        "' autofocus onfocus='window.__pwned=9' x='",
        f'<img src=x onerror="{steal}">',
        "<iframe srcdoc='<script>parent.__pwned=10</script>'></iframe>",
        "{{constructor.constructor('window.__pwned=11')()}}",
    ]


# Short ones for fields of at most 32 characters (skills) and 64 (names).
SHORT = [
    "<svg onload=__pwned=21>",
    '"><img src=x onerror=__pwned=22>',
    "'onmouseover='__pwned=23",
    "javascript:__pwned=24",
    "</script><script>__pwned=25",
    "<img src=x onerror=alert(26)>",
]
NAMES = [
    '"><img src=x onerror=window.__pwned=31>',
    "'><svg onload=window.__pwned=32>",
    "</script><script>window.__pwned=33</script>",
    "javascript:window.__pwned=34",
    '<img src=x onerror="alert(35)">',
    '" onfocus="window.__pwned=36" autofocus x="',
]
FILE_NAMES = [
    '"><img src=x onerror=window.__pwned=41>.pdf',
    "javascript:window.__pwned=42",
    "</script><script>window.__pwned=43</script>.txt",
    "..%2F..%2Fetc\"passwd'<b>.sh",
]


class Hostile:
    def __init__(self, net: Network, browser: Browser, eve: KeyPair) -> None:
        self.net = net
        self.browser = browser
        self.eve = eve
        self.bounties: dict[str, str] = {}
        self.texts: dict[str, list[str]] = {}  # route -> hostile strings it must show as text
        self.balance = 0

    @property
    def victim(self) -> Node:
        return self.net["victim"]


def _bounty(node: Node, bid: str) -> dict[str, Any]:
    b: dict[str, Any] = node.get(f"/api/bounties/{bid}")
    return b


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    root = tmp_path_factory.mktemp("webxss")
    eve = KeyPair(os.urandom(32))
    net = Network(
        root,
        ["victim", "mallory", "accomplice"],
        allocations={"victim": 10_000, "mallory": 10_000, "accomplice": 10_000},
        extra_allocations=[(eve.public_key, 1_000)],
        trusted=["mallory"],
    )
    browser: Browser | None = None
    try:
        net.start(["victim", "mallory", "accomplice"])
        net.connect("mallory", "victim")
        net.connect("accomplice", "victim")
        net.connect("accomplice", "mallory")
        browser = Browser()
        h = Hostile(net, browser, eve)
        _publish(h)
        yield h
    finally:
        if browser is not None:
            browser.close()
        net.close()


def _publish(h: Hostile) -> None:
    v, m, a = h.victim, h.net["mallory"], h.net["accomplice"]
    p = _payloads(m.account)
    long_text = "\n".join(p)
    for node, name in ((m, NAMES[0]), (a, NAMES[1])):
        node.post("/api/profile", {"name": name, "bio": long_text[:500], "skills": SHORT[:3]})

    # Bounty A (mallory): every bounty field hostile; the accomplice submits
    # hostile work; eve reviews it with a hostile comment; it stays in review,
    # so the victim's page draws the review form with the hostile criteria.
    rubric = [{"name": n, "max": 10} for n in NAMES]
    title_a = p[1] + " " + p[3]
    bid_a = m.post(
        "/api/bounties",
        {
            "title": title_a,
            "description": long_text,
            "reward": 1_000,
            "rubric": rubric,
            "skills": SHORT,
        },
    )["id"]
    wait_for(lambda: _bounty(a, bid_a), "the accomplice to see bounty A")
    files = [
        {"name": n, "data_b64": base64.b64encode(f"file {i}".encode()).decode()}
        for i, n in enumerate(FILE_NAMES)
    ]
    a.post("/api/submit", {"bounty": bid_a, "text": long_text, "files": files})
    wait_for(lambda: _bounty(m, bid_a)["commits"] == 1, "mallory to see the commit")
    m.post(f"/api/bounties/{bid_a}/close", {})
    wait_for(lambda: _bounty(m, bid_a)["submissions"] == 1, "the hostile work to be revealed")
    sid = _bounty(m, bid_a)["submissions_detail"][0]["id"]

    w = ChainWriter(h.eve, h.net.network_id)
    now = int(time.time() * 1000)
    comment = long_text[:2000]
    for kind, body, refs in (
        ("profile", {"name": NAMES[2], "bio": p[0], "skills": [SHORT[3]]}, []),
        (
            "review",
            {
                "bounty": bytes.fromhex(bid_a),
                "submission": bytes.fromhex(sid),
                "scores": [5] * len(rubric),
                "comment": comment,
            },
            [bytes.fromhex(sid)],
        ),
    ):
        r = m.post_raw(w.sign(kind, body, now, refs).raw)
        assert r.status_code == 200 and r.json()["status"] == "applied", r.text
        now += 1

    # Bounty C (accomplice): open; the victim commits to it through its API,
    # so "my work" lists it.
    title_c = p[0] + " " + SHORT[0]
    bid_c = a.post(
        "/api/bounties",
        {
            "title": title_c,
            "description": p[9] + "\n" + p[4],
            "reward": 500,
            "rubric": [{"name": NAMES[3], "max": 5}],
            "skills": SHORT[3:],
        },
    )["id"]
    wait_for(lambda: _bounty(v, bid_c), "the victim to see bounty C")
    v.post("/api/submit", {"bounty": bid_c, "text": "my honest work", "files": []})

    # A transfer with a hostile memo, and a vouch, to the victim.
    memo = p[0][:200]
    m.post("/api/transfer", {"to": v.account, "amount": 3, "memo": memo})
    m.post("/api/vouch", {"account": v.account})
    wait_for(
        lambda: (
            v.get("/api/me")["vouches_for_me"] == [m.account]
            and len(_bounty(v, bid_a)["submissions_detail"][0]["reviews"]) == 1
            and v.get("/api/me")["balance"] == 10_003
        ),
        "the victim's node to hold everything",
    )
    h.balance = v.get("/api/me")["balance"]
    h.bounties = {"A": bid_a, "C": bid_c}
    h.texts = {
        f"bounty/{bid_a}": [title_a, *NAMES, *SHORT, *FILE_NAMES, p[0], p[9]],
        f"bounty/{bid_c}": [title_c, p[9], p[4], NAMES[3]],
        "bounties": [title_a, title_c, *SHORT],
        "work": [title_c],
        f"profile/{m.account}": [NAMES[0], p[0], *SHORT[:3]],
        f"profile/{a.account}": [NAMES[1]],
        f"profile/{h.eve.account}": [NAMES[2], p[0], SHORT[3]],
        "account": [NAMES[0], memo],  # the memo, in the payments list
    }


# The page's own DOM: no element or attribute it does not make itself.
DOM_CHECK = """
const bad = [];
for (const el of document.querySelectorAll('*')) {
  for (const a of el.attributes) {
    if (/^on/i.test(a.name) || a.name === 'srcdoc' || a.name === 'style') {
      bad.push(el.tagName + ' ' + a.name);
    }
  }
}
const foreign = 'img,svg,iframe,object,embed,frame,base,form[action]';
for (const el of document.querySelectorAll(foreign)) bad.push(el.tagName);
const scripts = [...document.scripts].map(s => s.getAttribute('src'));
if (JSON.stringify(scripts) !== JSON.stringify(arguments[0])) {
  bad.push('scripts ' + JSON.stringify(scripts));
}
for (const a of document.querySelectorAll('[href]')) {
  const v = a.getAttribute('href');
  const ours = ['#/', '/api/', '/static/'].some(p => v.startsWith(p)) || v === 'data:,';
  if (ours) continue;
  // an outside link h() made: http(s), no credentials, a new tab without referrer
  let u = null;
  try { u = new URL(v); } catch (e) { bad.push('href ' + v); continue; }
  if (!['http:', 'https:'].includes(u.protocol) || u.username || u.password
      || a.getAttribute('rel') !== 'noopener noreferrer nofollow'
      || a.getAttribute('target') !== '_blank') bad.push('href ' + v);
}
return bad;
"""
# The scripts index.html loads (the page's own, then its feature scripts), in order:
# a DOM with any other script, inline or not, fails.
PAGE_SCRIPTS = re.findall(
    r'<script src="(/static/[a-z]+\.js)" defer></script>',
    (Path(__file__).resolve().parent.parent / "node" / "static" / "index.html").read_text(),
)


def _no_alert(b: Browser) -> None:
    try:
        alert = b.driver.switch_to.alert
    except NoAlertPresentException:
        return
    text = alert.text
    alert.dismiss()
    raise AssertionError(f"an alert ran: {text!r}")


def _probe(b: Browser, should_run: bool) -> None:
    """Give the test teeth: an injected handler runs with the CSP bypassed and
    is blocked with it enforced."""
    b.js(
        "const i = document.createElement('img'); i.id = 'probe-img';"
        "i.setAttribute('onerror', 'window.__probe = 1'); i.src = '/nowhere.png';"
        "document.body.appendChild(i);"
    )
    if should_run:
        b.wait(lambda: b.js("return window.__probe") == 1, "the probe to run (CSP bypassed)")
    else:
        b.wait(
            lambda: b.js("const i = document.getElementById('probe-img'); return i.complete"),
            "the probe image to fail",
        )
        assert b.js("return window.__probe") is None, "an inline handler ran despite the CSP"
    b.js("document.getElementById('probe-img').remove(); delete window.__probe;")


@pytest.mark.parametrize("csp", ["bypassed", "enforced"])
def test_hostile_text_never_runs_in_the_victims_page(hostile: Hostile, csp: str) -> None:
    b, v = hostile.browser, hostile.victim
    b.driver.execute_cdp_cmd("Page.setBypassCSP", {"enabled": csp == "bypassed"})
    b.login(v)
    b.js("window.__start = performance.timeOrigin")
    a, c = hostile.bounties["A"], hostile.bounties["C"]
    routes = [
        "bounties",
        f"bounty/{a}",
        f"bounty/{c}",
        "work",
        "account",
        "credentials",
        "network",
        "post",
        f"profile/{hostile.net['mallory'].account}",
        f"profile/{hostile.net['accomplice'].account}",
        f"profile/{hostile.eve.account}",
    ]
    _probe(b, should_run=csp == "bypassed")
    for route in routes:
        b.go(route)
        b.wait(
            lambda: "Loading…" not in b.main_text() and len(b.main_text()) > 20,
            f"{route} to load",
        )
        _no_alert(b)
        want = hostile.texts.get(route, [])
        # The names of profiles fill in after the page; wait for each text.
        for t in want:
            b.wait(
                lambda t=t: (
                    t in b.js("return document.querySelector('main').textContent")
                    or t in b.js("return document.querySelector('header').textContent")
                ),
                f"{route} to show {t[:40]!r} as text",
            )
        if route == f"bounty/{a}":
            # The victim may review: one field per hostile criterion, named as text.
            labels = b.texts("form.review-form label")
            for n in NAMES:
                assert f"{n} (0–10)" in labels, labels
            # Hover and focus every field and link: attribute-breaking payloads
            # would fire on these.
            b.js(
                "for (const el of document.querySelectorAll("
                "'main a, main input, main textarea, main button, main td, main li')) {"
                " el.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));"
                " if (el.focus) el.focus(); }"
            )
            hrefs = b.wait(
                lambda: [str(e.get_attribute("href")) for e in b.finds("a.file")] or None,
                "the attachment links",
            )
            assert len(hrefs) == len(FILE_NAMES)
            assert all("/api/blobs/" in h for h in hrefs), hrefs
        if csp == "enforced":  # for a person to look at: hostile text, drawn as text
            b.full_screenshot(f"hostile-{routes.index(route):02d}-{route.split('/')[0]}", 1280)
        bad = b.js(DOM_CHECK, PAGE_SCRIPTS)
        assert bad == [], f"{route}: {bad}"
        assert b.js("return window.__pwned") is None, f"{route}: a payload ran"
        _no_alert(b)
    # The same document the whole time? Not required; but nothing may have run.
    assert b.js("return window.__pwned") is None
    # No transfer left the victim's node, and its balance did not move.
    events = v.get(f"/api/accounts/{v.account}/events")["events"]
    assert not [e for e in events if e["kind"] == "transfer"], events
    assert v.get("/api/me")["balance"] == hostile.balance
    assert b.balance() == hostile.balance
    b.driver.execute_cdp_cmd("Page.setBypassCSP", {"enabled": False})


# -- the session: nothing for scripts to steal -------------------------------------------------


def test_session_cookie_is_not_readable_and_the_link_is_gone(hostile: Hostile) -> None:
    b, v = hostile.browser, hostile.victim
    link = v.post("/api/login-link")["url"]
    b.driver.get(link)
    b.wait(lambda: b.driver.current_url == v.api + "/", "the link to leave the address bar")
    b.wait(lambda: b.find("#balance").text != "", "the page to be logged in")
    assert "#" not in b.driver.current_url
    assert b.js("return document.cookie") == ""
    assert b.js("return sessionStorage.length + localStorage.length") == 0
    cookies = {c["name"]: c for c in b.driver.get_cookies()}
    session = cookies["lm_session_" + v.api.rsplit(":", 1)[1]]  # per node: its port
    assert session["httpOnly"] is True and session["sameSite"] == "Strict", session
    html = b.js("return document.documentElement.outerHTML")
    for secret in (session["value"], v.token, link.split("#login=")[1]):
        assert secret not in html
        assert secret not in b.js("return JSON.stringify(performance.getEntries())")
    assert "login=" not in b.js("return location.href")

    # The spent link again: the page says so in plain words (and keeps the session).
    b.go("account")
    b.wait(lambda: b.find("#my-account").text == v.account, "the account view")
    b.driver.get(link)
    b.wait(
        lambda: "already used or has expired" in b.find("#toast").text,
        "the spent link's message",
    )
    assert "login=" not in b.driver.current_url
    # A fresh link pasted into the open tab (a hashchange, no reload) logs in.
    b.js("window.__sameTab = 1")
    fresh = v.post("/api/login-link")["url"]
    b.driver.get(fresh)
    b.wait(lambda: b.driver.current_url == v.api + "/", "the fresh link to be used")
    b.wait(lambda: b.find("#balance").text != "", "logged in again")

    # Logged out, the page asks for a new link and the API refuses the cookie.
    b.go("account")
    b.click("#logout-button")
    b.wait_text("You are logged out.")
    r = httpx.get(v.api + "/api/me", cookies={session["name"]: session["value"]})
    assert r.status_code == 401


def test_security_headers_and_no_inline_code(hostile: Hostile) -> None:
    v = hostile.victim
    for path in ("/", "/static/app.js", "/static/app.css"):
        r = httpx.get(v.api + path)
        assert r.status_code == 200, (path, r.status_code)
        csp = r.headers.get("content-security-policy", "")
        for part in (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ):
            assert part in csp, (path, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers.get("x-content-type-options") == "nosniff"
        assert r.headers.get("referrer-policy") == "no-referrer"
    page = httpx.get(v.api + "/").text
    assert "<script>" not in page and "style" not in page.replace("stylesheet", "")
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", page), "an inline handler in the page"
    js = httpx.get(v.api + "/static/app.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in js, sink
    # Attachments are downloads, never rendered.
    a = _bounty(v, hostile.bounties["A"])["submissions_detail"][0]["attachments"][0]
    wait_for(
        lambda: (
            httpx.get(
                f"{v.api}/api/blobs/{a['hash']}", params={"name": a["name"]}, headers=_auth(v)
            ).status_code
            == 200
        ),
        "the attachment to reach the victim's node",
    )
    r = httpx.get(f"{v.api}/api/blobs/{a['hash']}", params={"name": a["name"]}, headers=_auth(v))
    assert r.headers["content-type"] == "application/octet-stream"
    disp = r.headers["content-disposition"]
    assert disp.startswith("attachment"), disp
    assert "<" not in disp and '"' not in disp.split("filename=", 1)[1].strip('"'), disp


def _auth(n: Node) -> dict[str, str]:
    return {"Authorization": f"Bearer {n.token}"}
