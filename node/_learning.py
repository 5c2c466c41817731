"""Discussion and resources on the node: what the API (node/_api_learning.py)
and the CLI (node/_cli_learning.py) show and write.

Comment text is Markdown. It is rendered here, never on the page as HTML:
markdown-it-py (CommonMark, raw HTML off, linkify off) parses it into tokens,
and `render_markdown` turns the tokens into a small JSON tree of allowed node
types only:

    node := "text" | {"t": TYPE, "c": [node, ...]} | {"t": "a", "href": URL, "c": [...]}
            | {"t": "br"}
    TYPE := p | em | strong | code | pre | ul | ol | li | blockquote

Headings become a paragraph of strong text; a link keeps its href only when
it is an absolute http(s) URL with a host and no user name (the protocol's
`check_url`) or a mailto: address, else its text stays as text; images become
their alt text; anything else becomes text. The page builds elements from the
tree with LM.h (node/static/discussion.js), whose own link check refuses
anything else again.

Comments by an account this node blocks (node/_blocklist.py), or hidden by
the community's flags (protocol/_moderation.py's `hidden`), are listed with
`hidden`, `hidden_by` ("block" | "flags") and `hidden_why` (the same shape as
node/_api_moderation.py's marker): the page folds them away. Resources whose
every suggester this node blocks (or flags hide as an account) are left out.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from learnmesh.protocol import (
    Hidden,
    RemoteProtocolError,
    State,
    account_text,
    comments_for_bounty,
    hidden,
    resources_for,
    thread,
)
from learnmesh.protocol._event import Event
from learnmesh.protocol._kinds_learning import (
    MAX_COMMENT_CHARS,
    MAX_URL_CHARS,
    RESOURCE_KINDS,
    check_url,
)
from learnmesh.protocol._learning import CommentRecord, target_kind
from learnmesh.protocol._trust import ONE

from ._api_trust import node_trust
from ._service import Node, UserError

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = [
    "bounty_comments",
    "comment_json",
    "event_thread",
    "list_resources",
    "normalise_url",
    "post_comment",
    "post_resource",
    "render_markdown",
]

MdNode = str | dict[str, Any]


@functools.cache
def _md() -> MarkdownIt:
    """The CommonMark parser, loaded on first use: markdown-it is not needed
    before a node is ready (start-up time, issue 14)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


_BLOCKS = {
    "paragraph": "p",
    "blockquote": "blockquote",
    "bullet_list": "ul",
    "ordered_list": "ol",
    "list_item": "li",
}
_INLINE = {"em": "em", "strong": "strong"}
_MAX_HREF = 2000
MAX_TREE_DEPTH = 24  # elements inside elements; markdown-it bounds blocks (20), not emphasis


def safe_href(href: str) -> str | None:
    """The href a rendered link may keep: an http(s) URL that passes the
    protocol's URL rule, or a mailto: address; None for anything else."""
    if len(href) > _MAX_HREF:
        return None
    if href[:7].lower() == "mailto:":
        addr = href[7:]
        ok = addr and all(0x21 <= ord(c) <= 0x7E and c not in "\"'<>\\`{|}/" for c in addr)
        return href if ok and "@" in addr else None
    try:
        check_url("link", href)
    except RemoteProtocolError:
        return None
    return href


@functools.lru_cache(maxsize=4096)
def render_markdown(text: str) -> list[MdNode]:
    """Markdown to the tree described above (cached: comments never change).
    Built with a stack, without recursion; at most MAX_TREE_DEPTH elements
    deep (markdown-it bounds nested blocks, not nested emphasis: `**` × 1000
    around a word would otherwise nest a thousand deep), deeper content is
    kept in the element at that depth."""
    root: list[MdNode] = []
    stack: list[list[MdNode]] = [root]  # where the next node goes

    def put(node: MdNode) -> None:
        if node == "":
            return
        kids = stack[-1]
        if isinstance(node, str) and kids and isinstance(kids[-1], str):
            kids[-1] += node  # adjacent text is one string
        else:
            kids.append(node)

    def open_(t: str, **extra: Any) -> None:
        if len(stack) > MAX_TREE_DEPTH:  # deeper nesting (say **** × 1000) stays flat
            stack.append(stack[-1])
            return
        node: dict[str, Any] = {"t": t, **extra, "c": []}
        put(node)
        stack.append(node["c"])

    for tok in _md().parse(text):
        kind = tok.type
        if kind == "inline":
            _inline(tok.children or [], put, open_, stack)
        elif kind in ("fence", "code_block"):
            put({"t": "pre", "c": [tok.content]})
        elif kind == "heading_open":
            open_("p")
            open_("strong")
        elif kind == "heading_close":
            stack.pop()
            stack.pop()
        elif kind.endswith("_open"):
            base = kind[: -len("_open")]
            if base == "paragraph" and tok.hidden:  # a tight list's item: no <p>
                stack.append(stack[-1])
            elif base in _BLOCKS:
                open_(_BLOCKS[base])
            else:
                stack.append(stack[-1])  # unknown container: its content stays
        elif kind.endswith("_close"):
            if len(stack) > 1:
                stack.pop()
        elif kind == "hr":
            put({"t": "p", "c": ["———"]})
        elif tok.content:
            put({"t": "p", "c": [tok.content]})
    return root


def _inline(
    tokens: list[Token],
    put: Any,
    open_: Any,
    stack: list[list[MdNode]],
) -> None:
    depth = len(stack)
    for tok in tokens:
        kind = tok.type
        if kind == "text":
            put(tok.content)
        elif kind in ("softbreak", "hardbreak"):
            put({"t": "br"})
        elif kind == "code_inline":
            put({"t": "code", "c": [tok.content]})
        elif kind == "link_open":
            href = tok.attrs.get("href")
            ok = safe_href(href) if isinstance(href, str) else None
            if ok is not None:
                open_("a", href=ok)
            else:
                stack.append(stack[-1])  # the link's text stays, as text
        elif kind.endswith("_open"):
            t = _INLINE.get(kind[: -len("_open")])
            if t is not None:
                open_(t)
            else:
                stack.append(stack[-1])
        elif kind.endswith("_close"):
            if len(stack) > depth:
                stack.pop()
        elif kind == "image":
            put(tok.content)  # its alt text
        elif tok.content:
            put(tok.content)
    del stack[depth:]  # an unclosed inline (never, in markdown-it) closes here


# -- who may be seen ---------------------------------------------------------------------


def _name_of(st: State, acct: bytes) -> str | None:
    a = st.accounts.get(acct)
    name = a.profile.get("name") if a is not None and a.profile else None
    return name if isinstance(name, str) else None


BLOCKED_LABEL = "you blocked this author"
FLAGS_LABEL = "hidden by community flags"


def comment_json(
    st: State,
    c: CommentRecord,
    depth: int,
    hide: tuple[str, str] | None,
    replies: int,
) -> dict[str, Any]:
    """One comment for the API; `hide` is (hidden_by, hidden_why) or None."""
    kind = target_kind(st, c.target)
    return {
        "id": c.id.hex(),
        "target": c.target.hex(),
        "target_kind": kind[0] if kind else None,
        "bounty": c.root.hex() if c.root else None,
        "depth": depth,
        "replies": replies,
        "author": account_text(c.author),
        "author_name": _name_of(st, c.author),
        "timestamp": c.timestamp,
        "text": c.text,
        "markdown": render_markdown(c.text),
        "hidden": hide is not None,
        "hidden_by": hide[0] if hide else None,
        "hidden_why": hide[1] if hide else None,
    }


def bounty_comments(node: Node, bid: bytes) -> dict[str, Any]:
    """Every thread under a bounty in reading order (each comment before its
    replies; `depth` 0 for comments on the bounty, its submissions, reviews
    and resources), with rendered Markdown and hidden flags."""
    st, snap = node_trust(node)
    if bid not in st.bounties:
        raise UserError("no such bounty", status=404, code="not_found")
    flags = hidden(st, snap.clock_free)
    out = []
    for top in comments_for_bounty(st, bid):
        for depth, c in top.walk():
            n = len(st.learning.replies.get(c.id, ()))
            out.append(comment_json(st, c, depth, _hide(node, flags, c), n))
    return {
        "bounty": bid.hex(),
        "count": len(out),
        "hidden": sum(1 for c in out if c["hidden"]),
        "comments": out,
    }


def event_thread(node: Node, target: bytes) -> dict[str, Any]:
    """The comments on any one event and their replies, in reading order
    (`thread`), with the same fields as `bounty_comments`."""
    st, snap = node_trust(node)
    kind = target_kind(st, target)
    if kind is None:
        raise UserError(
            "no such bounty, submission, review, comment or resource", status=404, code="not_found"
        )
    flags = hidden(st, snap.clock_free)
    out = []
    for top in thread(st, target):
        for depth, c in top.walk():
            out.append(
                comment_json(
                    st, c, depth, _hide(node, flags, c), len(st.learning.replies.get(c.id, ()))
                )
            )
    return {
        "target": target.hex(),
        "target_kind": kind[0],
        "bounty": kind[1].hex() if kind[1] else None,
        "count": len(out),
        "hidden": sum(1 for c in out if c["hidden"]),
        "comments": out,
    }


def _hide(node: Node, flags: Hidden, c: CommentRecord) -> tuple[str, str] | None:
    """(hidden_by, hidden_why) when this node blocks the author or flags hide it."""
    block = node.blocklist.get(c.author)
    if block is not None:
        return ("block", BLOCKED_LABEL + (f": {block.reason}" if block.reason else ""))
    item = flags.of(c.id, c.author)
    if item is not None:
        return ("flags", f"{FLAGS_LABEL}: {item.why}")
    return None


_BLANK = re.compile(r"^\s*$")


async def post_comment(node: Node, target: bytes, text: Any) -> Event:
    """Write a comment on any event a comment may name."""
    if not isinstance(text, str):
        raise UserError("text must be text (Markdown)")
    if _BLANK.match(text):
        raise UserError("the comment is empty")
    if len(text) > MAX_COMMENT_CHARS:
        raise UserError(
            f"a comment is at most {MAX_COMMENT_CHARS} characters (this one has {len(text)})",
            status=413,
            code="too_large",
        )
    st = node.ledger.replica.state
    if target_kind(st, target) is None:
        if target not in node.ledger.replica.raw:
            raise UserError("no such event to comment on", status=404, code="not_found")
        what = node.stored_event(target).kind.name
        raise UserError(
            "a comment goes on a bounty, a submission, a review, a comment or a resource, "
            f"not on a {what} event" + (" (that one is void)" if target in st.void else ""),
            status=409,
            code="bad_target",
        )
    return await node.author("comment", {"target": target, "text": text}, refs=[target])


# -- resources ---------------------------------------------------------------------------

_URL_SAFE = "!#$%&()*+,-./:;=?@[]~_"


def normalise_url(url: Any) -> str:
    """A URL a person typed, as the protocol's rule wants it: trimmed, the
    host in IDNA (punycode), every other non-ASCII or unsafe character
    percent-encoded. A clear error for anything that is not http(s)."""
    if not isinstance(url, str) or not url.strip():
        raise UserError("url is required (an http:// or https:// address)")
    u = unicodedata.normalize("NFC", url.strip())
    try:
        parts = urlsplit(u)
        host = parts.hostname or ""
    except ValueError as exc:
        raise UserError(f"url is not a valid address: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise UserError("url must be an http:// or https:// address with a host")
    if parts.username is not None or parts.password is not None:
        raise UserError("url must not carry a user name or password")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UserError("url's host name is not valid") from None
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host:  # an IPv6 literal
        netloc = f"[{host}]" + (f":{parts.port}" if parts.port is not None else "")
    out = urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            quote(parts.path, safe=_URL_SAFE),
            quote(parts.query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )
    if len(out) > MAX_URL_CHARS:
        raise UserError(f"url is over {MAX_URL_CHARS} characters once encoded")
    try:
        check_url("resource", out)
    except RemoteProtocolError as exc:
        raise UserError(exc.reason) from None
    return out


def _text_field(d: dict[str, Any], key: str, lo: int, hi: int, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise UserError(f"{key} must be text")
    v = v.strip()
    if not lo <= len(v) <= hi:
        raise UserError(f"{key} must be {lo}..{hi} characters" + (" (not blank)" if lo else ""))
    return v


async def post_resource(node: Node, d: dict[str, Any], bounty: bytes | None) -> Event:
    """Suggest a resource for a skill (and a bounty)."""
    skill = _text_field(d, "skill", 1, 32)
    title = _text_field(d, "title", 1, 200)
    licence = _text_field(d, "licence", 0, 64, "")
    kind = d.get("kind", "article")
    if kind not in RESOURCE_KINDS:
        raise UserError(f"kind must be one of {', '.join(RESOURCE_KINDS)}")
    url = normalise_url(d.get("url"))
    st = node.ledger.replica.state
    if bounty is not None and bounty not in st.bounties:
        raise UserError("no such bounty", status=404, code="not_found")
    body = {
        "bounty": bounty or b"",
        "skill": skill,
        "title": title,
        "url": url,
        "kind": kind,
        "licence": licence,
    }
    return await node.author("resource", body, refs=[bounty] if bounty else [])


def list_resources(node: Node, skill: str | None, bounty: bytes | None) -> dict[str, Any]:
    """Suggestions ranked by the suggesters' clock-free trust in the skill (the
    same on every node that holds the same events), without those whose every
    suggester this node blocks or the community's flags hide as an account."""
    st, snap = node_trust(node)
    flags = hidden(st, snap.clock_free)
    out = []
    for g in resources_for(st, skill, bounty, snap.clock_free):
        who = [
            a
            for a in g.suggesters
            if not node.blocklist.is_blocked(a) and flags.of(None, a) is None
        ]
        if not who:
            continue
        r = g.first
        out.append(
            {
                "id": r.id.hex(),
                "skill": r.skill,
                "title": r.title,
                "url": r.url,
                "kind": r.kind,
                "licence": r.licence,
                "bounty": r.bounty.hex() if r.bounty else None,
                "suggested_at": r.timestamp,
                "suggested_by": [
                    {"account": account_text(a), "name": _name_of(st, a)} for a in who
                ],
                "suggestions": [s.id.hex() for s in g.suggestions],
                "trust_ppm": g.score * 1_000_000 // ONE,
                "comments": len(st.learning.replies.get(r.id, ())),
            }
        )
    skills: dict[str, int] = {}
    for rec in st.learning.resources.values():
        skills[rec.skill] = skills.get(rec.skill, 0) + 1
    return {
        "skill": skill,
        "bounty": bounty.hex() if bounty else None,
        "resources": out,
        "skills": dict(sorted(skills.items())),
        "trust_digest": snap.clock_free.digest.hex(),
        "events": snap.events,
    }
