"""Discussion and resources on the web page (node/static/discussion.js), against
what other peers publish.

Two real node processes: the victim's (whose page the browser shows) and
mallory's. Mallory comments on the victim's bounty and replies, in Markdown
that tries every way in: raw `<script>`, `<img onerror>`, raw `<a href=
"javascript:…">`, `[x](javascript:…)` in several spellings, `data:` and
`vbscript:` links, an image, a link with a user name and password; and
suggests a resource whose title and licence are hostile. The victim's page
shows the bounty and the Resources view with the page's CSP bypassed (so the
rendering path alone is tested; a probe shows a payload would have run) and
enforced: nothing runs, no element or attribute the page does not make
appears, hostile text is shown as text, and the only links out are the safe
http(s) ones, each opening a new tab with rel="noopener noreferrer nofollow",
set by h() itself. The victim then asks, replies and suggests through the
page's own forms, and mallory's node receives all of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from _browser import Browser
from _nodes import Network, Node, wait_for
from selenium.common.exceptions import NoAlertPresentException

pytestmark = pytest.mark.slow

HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "[click me](javascript:window.__pwned=3)",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg0KTwvc2NyaXB0Pg==)",
    '<a href="javascript:window.__pwned=5">raw link</a>',
    "![pic](https://img.example/x.png)",
    "[upper](JAVASCRIPT:window.__pwned=7)",
    "[tab](java&#09;script:window.__pwned=8)",
    "[vb](vbscript:msgbox(9))",
    "<https://user:secret@creds.example/login>",
    "[creds](https://user:secret@creds.example/)",
    '<svg onload="window.__pwned=10"></svg>',
    "`<b>code stays text</b>`",
    "[ok link](https://safe.example/page?q=1)",
    "[mail](mailto:teacher@school.example)",
    "{{constructor.constructor('window.__pwned=11')()}}",
]
# What must appear as text on the page (raw HTML is text, not markup).
AS_TEXT = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "<b>code stays text</b>",
    "[click me](javascript:window.__pwned=3)",
    '<a href="javascript:window.__pwned=5">raw link</a>',
    "teacher@school.example",
]
TITLE = '<img src=x onerror="window.__pwned=20">Sorting'
LICENCE = '"><svg onload=window.__pwned=21>'


@dataclass
class World:
    net: Network
    browser: Browser
    bid: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def victim(self) -> Node:
        return self.net["victim"]

    @property
    def mallory(self) -> Node:
        return self.net["mallory"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("webdiscussion")
    net = Network(root, ["victim", "mallory"], trusted=["victim"])
    browser: Browser | None = None
    try:
        net.start(["victim", "mallory"])
        net.connect("mallory", "victim")
        browser = Browser()
        w = World(net, browser)
        _publish(w)
        yield w
    finally:
        if browser is not None:
            browser.close()
        net.close()


def _publish(w: World) -> None:
    v, m = w.victim, w.mallory
    m.post("/api/profile", {"name": "<svg onload=window.__pwned=30>", "bio": "", "skills": []})
    w.bid = v.post(
        "/api/bounties",
        {"title": "Sort a list", "reward": 100, "skills": ["python"], "quorum": 1},
    )["id"]
    wait_for(lambda: m.get(f"/api/bounties/{w.bid}"), "the bounty on mallory's node")
    first = m.post("/api/comments", {"target": w.bid, "text": "\n\n".join(HOSTILE[:8])})["id"]
    second = m.post("/api/comments", {"target": first, "text": "\n\n".join(HOSTILE[8:])})["id"]
    w.comments = [first, second]
    m.post(
        "/api/resources",
        {
            "skill": "python",
            "title": TITLE,
            "url": "https://sorting.example/howto",
            "kind": "article",
            "licence": LICENCE,
            "bounty": w.bid,
        },
    )
    wait_for(
        lambda: (
            len(v.get(f"/api/bounties/{w.bid}/comments")["comments"]) == 2
            and len(v.get("/api/resources?skill=python")["resources"]) == 1
        ),
        "mallory's comments and resource on the victim's node",
        describe=w.net.describe,
    )


DOM_CHECK = """
const bad = [];
for (const el of document.querySelectorAll('*')) {
  for (const a of el.attributes) {
    if (/^on/i.test(a.name) || a.name === 'srcdoc' || a.name === 'style') {
      bad.push(el.tagName + ' ' + a.name);
    }
  }
}
const foreign = 'img,svg,iframe,object,embed,frame,base,form[action],script:not([src])';
for (const el of document.querySelectorAll(foreign)) bad.push(el.tagName);
for (const s of document.scripts) {
  const src = s.getAttribute('src') || '';
  if (!/^\\/static\\/[a-z]+\\.js$/.test(src)) bad.push('script ' + src);
}
const out = [];
for (const a of document.querySelectorAll('[href]')) {
  const v = a.getAttribute('href');
  if (['#/', '/api/', '/static/'].some(p => v.startsWith(p)) || v === 'data:,') {
    const tagged = a.hasAttribute('target') || a.hasAttribute('rel');
    if (a.tagName === 'A' && tagged) bad.push('own link, rel ' + v);
    continue;
  }
  const u = new URL(v);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') bad.push('href ' + v);
  if (u.username || u.password) bad.push('credentials ' + v);
  if (a.getAttribute('rel') !== 'noopener noreferrer nofollow') bad.push('rel ' + v);
  if (a.getAttribute('target') !== '_blank') bad.push('target ' + v);
  out.push(v);
}
return [bad, out];
"""


def _no_alert(b: Browser) -> None:
    try:
        alert = b.driver.switch_to.alert
    except NoAlertPresentException:
        return
    text = alert.text
    alert.dismiss()
    raise AssertionError(f"an alert ran: {text!r}")


def _probe(b: Browser, should_run: bool) -> None:
    """An injected inline handler runs with the CSP bypassed, not with it
    enforced: proof that a payload that got through would have been seen."""
    b.js(
        "const i = document.createElement('img'); i.id = 'probe-img';"
        "i.setAttribute('onerror', 'window.__probe = 1'); i.src = '/nowhere.png';"
        "document.body.appendChild(i);"
    )
    if should_run:
        b.wait(lambda: b.js("return window.__probe") == 1, "the probe to run (CSP bypassed)")
    else:
        b.wait(
            lambda: b.js("return document.getElementById('probe-img').complete"),
            "the probe image to fail",
        )
        assert b.js("return window.__probe") is None, "an inline handler ran despite the CSP"
    b.js("document.getElementById('probe-img').remove(); delete window.__probe;")


def _click(b: Browser, css: str) -> None:
    """Click after scrolling the element to the middle (the sticky header
    would take a click at the top edge)."""
    b.wait(lambda: b.finds(css), f"{css} to be there")
    b.js("document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", css)
    b.click(css)


def _main_text(b: Browser) -> str:
    return str(b.js("return document.querySelector('main').textContent"))


@pytest.mark.parametrize("csp", ["bypassed", "enforced"])
def test_hostile_markdown_never_runs(world: World, csp: str) -> None:
    b = world.browser
    b.driver.execute_cdp_cmd("Page.setBypassCSP", {"enabled": csp == "bypassed"})
    try:
        b.login(world.victim)
        _probe(b, should_run=csp == "bypassed")
        b.go(f"bounty/{world.bid}")
        b.wait(lambda: len(b.finds("article.comment")) == 2, "both comments drawn")
        b.wait(lambda: b.finds("#bounty-resources li.resource"), "the resource drawn")
        for t in [*AS_TEXT, TITLE, "licence " + LICENCE]:
            b.wait(lambda t=t: t in _main_text(b), f"{t[:40]!r} shown as text")
        # the reply is drawn under the comment it answers
        ids = [e.get_attribute("id") for e in b.finds("article.comment")]
        assert ids == [f"c-{world.comments[0]}", f"c-{world.comments[1]}"]
        assert "depth-1" in str(b.find(f"#c-{world.comments[1]}").get_attribute("class"))
        # Markdown became elements: code, a safe link, the mail address as text
        assert b.find(f"#c-{world.comments[1]} .md code").text == "<b>code stays text</b>"
        b.js(
            "for (const el of document.querySelectorAll('main a, main button, main li, main p')) {"
            " el.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));"
            " if (el.focus) el.focus(); }"
        )
        bad, links = b.js(DOM_CHECK)
        assert bad == [], bad
        assert sorted(links) == ["https://safe.example/page?q=1", "https://sorting.example/howto"]
        assert b.js("return window.__pwned") is None
        _no_alert(b)
        b.go("learn/python")
        b.wait(lambda: b.finds("#resources li.resource"), "the Resources view")
        b.wait(lambda: TITLE in _main_text(b), "the hostile title as text")
        bad, links = b.js(DOM_CHECK)
        assert bad == [] and links == ["https://sorting.example/howto"], (bad, links)
        assert b.js("return window.__pwned") is None
        _no_alert(b)
    finally:
        b.driver.execute_cdp_cmd("Page.setBypassCSP", {"enabled": False})


def test_h_refuses_every_link_but_its_own_and_safe_http(world: World) -> None:
    b = world.browser
    b.login(world.victim)
    out = b.js(
        """
        const tries = {};
        const hrefs = ['javascript:alert(1)', 'JavaScript:alert(1)', ' javascript:alert(1)',
          'data:text/html,x', 'vbscript:x', 'https://u:p@x.example/', 'https://@x.example/',
          'http:/x.example', '//evil.example/', 'https://x.example/\\u0000', 'ftp://x.example/',
          'mailto:a@b.example', 'https://ok.example/a b'];
        for (const v of hrefs) {
          try { LM.h('a', {href: v}); tries[v] = 'drawn'; } catch (e) { tries[v] = 'refused'; }
        }
        const ext = LM.h('a', {href: 'https://ok.example/p?q=1#f'}, 'ok');
        const own = LM.h('a', {href: '#/learn'}, 'own');
        let rel = 'drawn', target = 'drawn';
        try { LM.h('a', {href: '#/x', rel: 'opener'}); } catch (e) { rel = 'refused'; }
        try { LM.h('a', {href: '#/x', target: '_self'}); } catch (e) { target = 'refused'; }
        const at = (el, n) => el.getAttribute(n);
        return [tries, at(ext, 'href'), at(ext, 'rel'), at(ext, 'target'),
                at(own, 'rel'), at(own, 'target'), rel, target];
        """
    )
    tries, href, rel, target, own_rel, own_target, rel_try, target_try = out
    drawn = sorted(k for k, v in tries.items() if v == "drawn")
    assert drawn == [], tries
    assert href == "https://ok.example/p?q=1#f"
    assert (rel, target) == ("noopener noreferrer nofollow", "_blank")
    assert (own_rel, own_target) == (None, None)
    assert (rel_try, target_try) == ("refused", "refused")


def test_ask_reply_and_suggest_through_the_page(world: World) -> None:
    b, v, m = world.browser, world.victim, world.mallory
    b.login(v)
    b.go(f"bounty/{world.bid}")
    b.wait(lambda: len(b.finds("article.comment")) >= 2, "the comments")
    b.fill("form.ask-form textarea", "Is **recursion** allowed?")
    _click(b, "#ask-button")
    b.wait(lambda: "Is recursion allowed?" in _main_text(b), "my question drawn")
    assert b.find("article.comment:last-of-type .md strong").text == "recursion"
    _click(b, f"#c-{world.comments[0]} button.reply")
    b.fill(f"#c-{world.comments[0]} form.reply-form textarea", "No scripts here, thanks.")
    _click(b, f"#c-{world.comments[0]} form.reply-form button[type=submit]")
    b.wait(lambda: "No scripts here, thanks." in _main_text(b), "my reply drawn")

    def threads() -> list[tuple[int, str]] | None:
        got = m.get(f"/api/bounties/{world.bid}/comments")["comments"]
        return [(c["depth"], c["text"]) for c in got] if len(got) == 4 else None

    seen = wait_for(threads, "my question and reply on mallory's node")
    assert (1, "No scripts here, thanks.") in seen and (0, "Is **recursion** allowed?") in seen
    # suggest a resource on the Resources view
    b.go("learn/python")
    b.fill("form.suggest-form input[name=title]", "The Python sorting HOWTO")
    b.fill("form.suggest-form input[name=url]", "https://docs.python.org/3/howto/sorting.html")
    b.fill("form.suggest-form input[name=licence]", "PSF-2.0")
    _click(b, "#suggest-button")
    b.wait(lambda: "The Python sorting HOWTO" in _main_text(b), "my suggestion listed")
    wait_for(
        lambda: any(
            r["title"] == "The Python sorting HOWTO" and r["licence"] == "PSF-2.0"
            for r in m.get("/api/resources?skill=python")["resources"]
        ),
        "my suggestion on mallory's node",
    )
    # discuss a resource: its thread opens under it, a comment goes in
    rid = v.get("/api/resources?skill=python")["resources"][-1]["id"]
    _click(b, f"#r-{rid} details.resource-thread summary")
    b.wait(lambda: "No comments yet." in b.find(f"#r-{rid}").text, "the resource's empty thread")
    b.fill(f"#r-{rid} textarea", "Is this *still* current?")
    _click(b, f"#r-{rid} form.reply-form button[type=submit]")
    b.wait(lambda: "Is this still current?" in b.find(f"#r-{rid}").text, "my comment on it")
    b.wait(
        lambda: b.find(f"#r-{rid} details.resource-thread").get_attribute("open") is not None,
        "the thread still open after its list was redrawn",
    )
    # waited, not read at once: the list is redrawn live (a stale or not yet
    # redrawn element counts as "not yet")
    b.wait(lambda: b.find(f"#r-{rid} .md em").text == "still", "the comment's markdown drawn")
    wait_for(
        lambda: m.get(f"/api/comments/{rid}")["count"] == 1,
        "the comment on the resource at mallory's node",
    )
    # a bad address gets a sentence on the form, nothing is sent
    b.fill("form.suggest-form input[name=title]", "bad")
    b.fill("form.suggest-form input[name=url]", "javascript:alert(1)")
    _click(b, "#suggest-button")
    b.wait(lambda: "http://" in b.find("form.suggest-form .err").text, "the form's error")
