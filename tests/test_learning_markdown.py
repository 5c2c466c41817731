"""The node's Markdown renderer (node/_learning.py `render_markdown`): comment
text becomes a JSON tree of allowed node types only; raw HTML is text, links
keep only http(s) (no user name) and mailto targets, nesting is bounded so no
comment can make the thread's JSON answer fail, and URLs typed by people are
normalised to what the protocol accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learnmesh.node._learning import MAX_TREE_DEPTH, normalise_url, render_markdown, safe_href
from learnmesh.node._service import UserError

ALLOWED = {"p", "em", "strong", "code", "pre", "ul", "ol", "li", "blockquote", "a", "br"}


def _walk(tree: list[Any]) -> tuple[int, list[dict[str, Any]]]:
    """The tree's depth and its element nodes, without recursion."""
    nodes: list[dict[str, Any]] = []
    deepest = 0
    stack: list[tuple[Any, int]] = [(n, 1) for n in tree]
    while stack:
        n, d = stack.pop()
        if isinstance(n, str):
            continue
        assert isinstance(n, dict), n
        deepest = max(deepest, d)
        nodes.append(n)
        stack.extend((k, d + 1) for k in n.get("c", []))
    return deepest, nodes


def _check(tree: list[Any]) -> list[dict[str, Any]]:
    json.dumps(tree)  # what the API answers: must always encode
    depth, nodes = _walk(tree)
    assert depth <= MAX_TREE_DEPTH + 1
    for n in nodes:
        assert n["t"] in ALLOWED, n
        assert set(n) <= {"t", "c", "href"}, n
        if n["t"] == "a":
            assert safe_href(n["href"]) == n["href"]
            assert n["href"].lower().startswith(("https://", "http://", "mailto:"))
        else:
            assert "href" not in n
        for k in n.get("c", []):
            assert isinstance(k, str | dict)
    return nodes


def test_markdown_becomes_allowed_nodes() -> None:
    tree = render_markdown(
        "# Title\n\nSome *em*, **strong**, `code`, a [link](https://a.example/p?q=1).\n"
        "line two\n\n> quoted\n\n- one\n- two\n\n3. three\n\n```\n<pre> block\n```\n\n---"
    )
    _check(tree)
    assert tree[0] == {"t": "p", "c": [{"t": "strong", "c": ["Title"]}]}
    para = tree[1]["c"]
    assert {"t": "em", "c": ["em"]} in para and {"t": "code", "c": ["code"]} in para
    assert {"t": "a", "href": "https://a.example/p?q=1", "c": ["link"]} in para
    assert {"t": "br"} in para
    assert [n["t"] for n in tree[2:]] == ["blockquote", "ul", "ol", "pre", "p"]
    assert tree[5] == {"t": "pre", "c": ["<pre> block\n"]}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ('<img src=x onerror="alert(1)">', '<img src=x onerror="alert(1)">'),
        ('<a href="javascript:alert(1)">x</a>', '<a href="javascript:alert(1)">x</a>'),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),
        ("[x](JaVaScRiPt:alert(1))", "[x](JaVaScRiPt:alert(1))"),
        ("[x](data:text/html;base64,PHNjcmlwdD4=)", "x"),
        ("[x](vbscript:msgbox)", "x"),
        ("[x](https://user:pw@evil.example/)", "x"),
        ("[x](//evil.example/)", "x"),
        ("[x](/api/transfer)", "x"),
        ("![alt text](https://img.example/a.png)", "alt text"),
        ("<https://u@evil.example/>", "https://u@evil.example/"),
    ],
)
def test_hostile_markdown_is_text(text: str, shown: str) -> None:
    tree = render_markdown(text)
    nodes = _check(tree)
    assert not [n for n in nodes if n["t"] == "a"], tree
    flat = json.dumps(tree, ensure_ascii=False)
    assert json.dumps(shown, ensure_ascii=False)[1:-1] in flat, tree


def test_mailto_is_kept_for_the_page_to_show_as_text() -> None:
    tree = render_markdown("[mail me](mailto:ada@school.example)")
    assert tree[0]["c"] == [{"t": "a", "href": "mailto:ada@school.example", "c": ["mail me"]}]


@pytest.mark.parametrize(
    "text",
    [
        "**" * 1000 + "deep" + "**" * 1000,
        "*" * 1999 + "a" + "*" * 1999,
        "_" * 1999 + "a" + "_" * 1999,
        "> " * 2000,
        "- " * 2000,
        "[" * 1000 + "x" + "](https://a.example/)" * 100,
        "*_" * 2000,
    ],
)
def test_nesting_is_bounded_and_always_encodes(text: str) -> None:
    tree = render_markdown(text)
    _check(tree)
    if "deep" in text:
        assert "deep" in json.dumps(tree)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("*_`[]()<>!#>-+ \n\tab:/.@&;\\\"'=1")), max_size=300))
def test_any_text_gives_an_allowed_tree(text: str) -> None:
    _check(render_markdown(text))


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("  https://a.example/x  ", "https://a.example/x"),
        ("HTTPS://A.example", "https://a.example"),
        (
            "https://bücher.example/über uns?q=ä#s",
            "https://xn--bcher-kva.example/%C3%BCber%20uns?q=%C3%A4#s",
        ),
        ("http://a.example:8080/p", "http://a.example:8080/p"),
        ("https://a.example/it's", "https://a.example/it%27s"),
    ],
)
def test_urls_are_normalised(url: str, want: str) -> None:
    assert normalise_url(url) == want


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "ftp://a.example/",
        "javascript:alert(1)",
        "https://u:p@a.example/",
        "a.example",
        "http://[x",
    ],
)
def test_bad_urls_get_a_sentence(url: str) -> None:
    with pytest.raises(UserError) as exc:
        normalise_url(url)
    assert exc.value.message and exc.value.status == 400
