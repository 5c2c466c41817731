"""The devnet's moderation step (issue 12 item 5): a spammer flagged and blocked.

Called by the `disputes` scenario (devnet/_scenario_disputes.py) on its running
cluster; usable by any scenario:

    from ._scenario_moderation import moderation_step
    report["moderation"] = moderation_step(cluster, log=view.log)

`moderation_step(cluster, nodes=None, *, spammer=None, flaggers=None, blocker=None,
spam_posts=3, after_block=2, timeout=120.0, unblock=True, log=print) -> dict`

Synchronous (it uses each NodeProc's blocking API client) and needs at least 3
live nodes. What it does, through each node's real API:

1. `spammer` (default: the last live node; it needs a balance of a few tokens)
   posts `spam_posts` junk bounties (reward 1 each); every live node gets them.
2. `flaggers` (default: the two live non-spammer accounts with the most overall
   trust, GET /api/trust) flag each of them as spam (POST /api/flags).
3. Every live node's hidden view (GET /api/flags) must hide all of them and be
   the same on every node (same hidden ids, same trust digest).
4. `blocker` (default: a live neighbour of the spammer that is not a flagger)
   blocks the spammer (POST /api/blocks); the spammer posts `after_block` more;
   every live node still gets them (the blocker admits them; nodes behind it by
   other paths or by sync), the blocker's `relay_blocked` counter grows (it
   did not forward them by gossip) and its bounty list marks them hidden by
   its block. With `unblock`, the blocker unblocks at the end.
5. The nodes converge on one digest: the ledger never depends on a blocklist.

Returns the report fields (plain JSON):

- `spammer`, `flaggers`, `blocker`: node names; `spam_bounties`: the ids posted
  before the block, `spam_after_block`: those after;
- `spam_hidden_on_nodes`: how many live nodes hide every flagged spam bounty;
  `live_nodes`; `hidden_agreed`: every live node's hidden view the same;
  `hidden_why`: one node's sentence for the first item;
- `blocked_relay_stopped`: the blocker held back the new spam from its gossip
  (`relay_blocked_events`: by how much its counter grew; each copy a
  neighbour sent counts, so two posts may count 6 with three neighbours);
- `blocked_hidden_on_blocker`: the blocker's list greys the new spam out;
- `spam_reached_all`: every live node got the post-block spam anyway;
- `converged`: one digest on every live node afterwards; `digest`;
- `ok`: all of the above held; `error`: why not, when a step timed out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._cluster import ApiError, Cluster, DevnetError, NodeProc, poll

__all__ = ["moderation_step"]


def _has_bounty(n: NodeProc, bid: str) -> bool:
    try:
        n.get(f"/api/bounties/{bid}")
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _hidden(n: NodeProc) -> tuple[frozenset[str], str, dict[str, str]]:
    r = n.get("/api/flags")
    items = r["hidden"]["events"]
    return (
        frozenset(i["subject"] for i in items),
        str(r["trust_digest"]),
        {i["subject"]: i["why"] for i in items},
    )


def _pick_flaggers(live: list[NodeProc], spammer: NodeProc, want: int = 2) -> list[NodeProc]:
    by_acct = {n.account: n for n in live if n is not spammer}
    ranked: list[NodeProc] = []
    try:
        rows = live[0].get("/api/trust?limit=10000")["accounts"]
        ranked = [by_acct[r["account"]] for r in rows if r["account"] in by_acct]
    except (ApiError, KeyError):
        pass
    for n in by_acct.values():  # accounts with no trust at all come last
        if n not in ranked:
            ranked.append(n)
    return ranked[:want]


def _post_spam(spammer: NodeProc, title: str) -> str:
    r = spammer.post(
        "/api/bounties",
        {
            "title": title,
            "description": "Cheap followers, free tokens, click the link!!!",
            "reward": 1,
            "rubric": [{"name": "spam", "max": 1}],
            "skills": [],
        },
    )
    return str(r["id"])


def moderation_step(
    cluster: Cluster,
    nodes: Sequence[NodeProc] | None = None,
    *,
    spammer: NodeProc | None = None,
    flaggers: Sequence[NodeProc] | None = None,
    blocker: NodeProc | None = None,
    spam_posts: int = 3,
    after_block: int = 2,
    timeout: float = 120.0,
    unblock: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """A spammer flagged by members and blocked by a node (see the module doc)."""
    live = [n for n in (cluster.nodes if nodes is None else nodes) if n.live]
    if len(live) < 3:
        raise DevnetError("the moderation step needs at least 3 live nodes")
    spam_node = spammer or live[-1]
    flag_nodes = list(flaggers) if flaggers else _pick_flaggers(live, spam_node)
    if blocker is None:
        idx = {n.index for n in live}
        near = [
            cluster.nodes[i]
            for i in spam_node.neighbours
            if i in idx and cluster.nodes[i] not in flag_nodes
        ]
        others = [n for n in live if n is not spam_node and n not in flag_nodes]
        blocker = (near or others or [n for n in live if n is not spam_node])[0]
    out: dict[str, Any] = {
        "spammer": spam_node.name,
        "flaggers": [n.name for n in flag_nodes],
        "blocker": blocker.name,
        "live_nodes": len(live),
        "spam_bounties": [],
        "spam_after_block": [],
        "spam_hidden_on_nodes": 0,
        "hidden_agreed": False,
        "hidden_why": "",
        "blocked_relay_stopped": False,
        "relay_blocked_events": 0,
        "blocked_hidden_on_blocker": False,
        "spam_reached_all": False,
        "converged": False,
        "digest": None,
        "ok": False,
        "error": None,
    }
    try:
        # 1-2: spam, then flags from the members with the most trust
        spam = [_post_spam(spam_node, f"FREE TOKENS #{i + 1}") for i in range(spam_posts)]
        out["spam_bounties"] = spam
        log(f"moderation: {spam_node.name} posted {len(spam)} spam bounties")
        poll(
            lambda: all(_has_bounty(n, b) for n in live for b in spam),
            timeout,
            "every node to get the spam",
        )
        for f in flag_nodes:
            for b in spam:
                f.post("/api/flags", {"target": b, "category": "spam", "note": "an ad"})
        log(f"moderation: {', '.join(n.name for n in flag_nodes)} flagged them")

        # 3: every node's hidden view hides them all, the same everywhere
        want = frozenset(spam)

        def agreed() -> list[tuple[frozenset[str], str, dict[str, str]]] | None:
            views = [_hidden(n) for n in live]
            same = all(v[:2] == views[0][:2] for v in views)
            return views if same and want <= views[0][0] else None

        try:
            views = poll(agreed, timeout, "every node to hide the flagged spam alike")
        except DevnetError:
            views = [_hidden(n) for n in live]
        out["spam_hidden_on_nodes"] = sum(1 for v in views if want <= v[0])
        out["hidden_agreed"] = all(v[:2] == views[0][:2] for v in views)
        out["hidden_why"] = views[0][2].get(spam[0], "")
        log(f"moderation: spam hidden on {out['spam_hidden_on_nodes']}/{len(live)} nodes")

        # 4: a node blocks the spammer: admitted, not relayed, hidden there
        blocker.post("/api/blocks", {"account": spam_node.account, "reason": "devnet spam"})
        before = int(blocker.status()["stats"].get("relay_blocked", 0))
        later = [_post_spam(spam_node, f"STILL FREE #{i + 1}") for i in range(after_block)]
        out["spam_after_block"] = later
        poll(
            lambda: all(_has_bounty(n, b) for n in live for b in later),
            timeout,
            "every node to get the spam posted after the block",
        )
        out["spam_reached_all"] = True
        try:
            grown = poll(
                lambda: int(blocker.status()["stats"].get("relay_blocked", 0)) - before or None,
                timeout / 4,
                f"{blocker.name} to hold back the spammer's events",
            )
        except DevnetError:
            grown = 0
        out["relay_blocked_events"] = grown
        out["blocked_relay_stopped"] = grown >= 1
        listed = {b["id"]: b for b in blocker.get("/api/bounties")["bounties"]}
        out["blocked_hidden_on_blocker"] = all(
            listed.get(b, {}).get("hidden_by") == "block" for b in later
        )
        log(
            f"moderation: {blocker.name} blocked {spam_node.name}; "
            f"{grown} of its events not relayed"
        )
        if unblock:
            blocker.call("DELETE", f"/api/blocks/{spam_node.account}")

        # 5: one ledger everywhere
        st = cluster.wait_converged(timeout, live)
        out["converged"] = True
        out["digest"] = st["digest"]
    except (DevnetError, ApiError) as exc:
        out["error"] = str(exc)[:500]
        log(f"moderation: {out['error']}")
    out["ok"] = (
        out["error"] is None
        and out["spam_hidden_on_nodes"] == len(live)
        and out["hidden_agreed"]
        and out["blocked_relay_stopped"]
        and out["blocked_hidden_on_blocker"]
        and out["spam_reached_all"]
        and out["converged"]
    )
    return out
