"use strict";
// Recommendations (issue 15): the "For you" view lists the open bounties this
// node ranks for its own account (GET /api/recommendations, computed on this
// node: nothing leaves it), each with the reasons why and the prerequisites
// still missing, linking to each bounty. Drawn only with LM.h.
(() => {
  const LM = window.LM;
  if (!LM) return;
  const { h, put, enc, get, card, empty, loading, failBox, who, amount, countdown, chips } = LM;
  const STEP = 20;
  const MAX = 500;

  function missingLine(r) {
    if (!r.missing || !r.missing.length) return null;
    const items = r.missing.map((m) => {
      if (m.kind === "bounty" && typeof m.bounty === "string" && /^[0-9a-f]{64}$/.test(m.bounty)) {
        return h("li", {},
          h("a", { href: "#/bounty/" + enc(m.bounty) }, m.title || m.bounty.slice(0, 12)),
          m.open ? h("span", { class: "muted" }, " — open now") : null);
      }
      return h("li", {}, "skill ", h("strong", {}, String(m.skill || "")));
    });
    return h("div", { class: "rec-missing", role: "note" },
      h("strong", {}, "First do: "), h("ul", { class: "plain inline" }, items));
  }

  function item(r) {
    return h("li", { class: "bounty rec", id: "rec-" + r.bounty },
      h("div", { class: "bounty-head" },
        h("a", { href: "#/bounty/" + enc(r.bounty), class: "bounty-title" }, r.title),
        h("span", { class: "badges" },
          r.ready
            ? h("span", { class: "badge rec-ready" }, "Ready for you")
            : h("span", { class: "badge rec-blocked" }, "Prerequisites missing"),
          h("span", { class: "badge role", title: "the sum of the parts below" }, "score " + r.score))),
      h("div", { class: "bounty-meta" },
        h("span", { class: "reward" }, amount(r.reward)),
        h("span", {}, "by ", who(r.mentor, r.mentor_name || null)),
        h("span", {}, countdown(r.submit_by, "submissions close in", "submissions closed"))),
      chips(r.skills),
      missingLine(r),
      // the "first do: …" reason is the box above, with links
      h("ul", { class: "reasons" }, (r.reasons || [])
        .filter((x) => !(r.missing && r.missing.length && String(x).startsWith("first do: ")))
        .map((x) => h("li", {}, String(x)))));
  }

  LM.view("next", "For you", () => {
    let limit = STEP;
    const area = h("div", {}, loading());
    const count = h("p", { class: "muted count", id: "rec-count" });
    async function refresh() {
      let r;
      try { r = await get("/api/recommendations?limit=" + limit); } catch (e) { put(area, failBox(e)); return; }
      const list = r.recommendations || [];
      put(count, list.length ? `${list.length} of ${r.count} open bounties, best first.` : "",
        r.hidden ? ` ${r.hidden} hidden by your blocklist or community flags are left out.` : "");
      const more = r.count > list.length && limit < MAX
        ? h("button", { type: "button", class: "secondary", id: "rec-more",
          listen: { click: () => { limit = Math.min(MAX, limit + STEP); refresh(); } } }, "Show more")
        : null;
      put(area, list.length
        ? card(h("ul", { class: "bounties", id: "recommendations" }, list.map(item)), more)
        : card(empty("Nothing to recommend right now: there is no open bounty you can still submit to.")));
    }
    return {
      el: h("div", { class: "page" }, h("h1", {}, "For you"),
        h("p", { class: "muted" },
          "Open bounties ranked for you by your own node, from your skills, the work you did and how "
          + "it was reviewed, the prerequisites you have met, deadlines, rewards and the mentors' "
          + "records. Nothing leaves your node to make this list."),
        count, area),
      refresh, title: "For you",
    };
  });
})();
