"use strict";
// Discussion and learning resources (issue 15): under every bounty, its
// threads (comments on it, its submissions, their reviews and its resources,
// with replies) and the resources suggested for it and its skills; a
// "Resources" view to browse and suggest resources by skill.
//
// Comment Markdown arrives from the node already parsed into a tree of
// allowed node types (node/_learning.py); md() below builds elements from it
// with LM.h only, so raw HTML in a comment is text and every link passes h()'s
// own check (an http(s) URL opens in a new tab without opener or referrer).
(() => {
  const LM = window.LM;
  if (!LM) return;
  const { h, put, enc, api, get, act, errBox, field, card, empty, loading, failBox, who, when, toast } = LM;

  const MD_TAGS = new Set(["p", "em", "strong", "code", "pre", "ul", "ol", "li", "blockquote"]);
  const MAX_DEPTH = 48;
  const KINDS = ["article", "video", "course", "book", "exercise", "other"];

  // The node's Markdown tree as elements (strings stay text nodes).
  function md(nodes, depth) {
    const out = [];
    if (!Array.isArray(nodes)) return out;
    for (const n of nodes) {
      if (typeof n === "string") { out.push(n); continue; }
      if (!n || typeof n !== "object") continue;
      const kids = Array.isArray(n.c) ? n.c : [];
      if ((depth || 0) > MAX_DEPTH) { out.push(...md(kids, depth + 1)); continue; }
      if (n.t === "br") out.push(h("br", {}));
      else if (n.t === "a") out.push(link(n.href, md(kids, depth + 1)));
      else if (MD_TAGS.has(n.t)) out.push(h(n.t, {}, md(kids, depth + 1)));
      else out.push(...md(kids, depth + 1));
    }
    return out;
  }

  // A link from a comment: http(s) through h()'s check; a mailto: address is
  // shown as text beside its label; anything h() refuses stays text.
  function link(href, label) {
    if (typeof href === "string" && /^mailto:/i.test(href)) {
      return h("span", { class: "md-mail" }, label, " <", href.slice(7), ">");
    }
    try {
      return h("a", { href: String(href), class: "ext" }, label);
    } catch (e) {
      return h("span", {}, label);
    }
  }

  // A resource's title as an external link (or text when h() refuses it).
  function resourceLink(r) {
    try {
      return h("a", { href: r.url, class: "ext resource-title" }, r.title);
    } catch (e) {
      return h("span", { class: "resource-title" }, r.title, " (", r.url, ")");
    }
  }

  async function send(btn, box, path, body) {
    return act(btn, box, (keyFor) => api("POST", path, body, keyFor(path + " " + JSON.stringify(body))));
  }

  function textarea(name, placeholder) {
    return h("textarea", { name, rows: 3, maxlength: 4000, placeholder });
  }

  function readComment(ta, box) {
    const v = ta.value;
    if (!v.trim()) { LM.showErr(box, "Write something first."); return null; }
    if (v.length > 4000) { LM.showErr(box, "A comment is at most 4000 characters."); return null; }
    return v;
  }

  const ON = { reveal: "on a submission", review: "on a review", resource: "on a resource" };

  // -- the discussion under a bounty

  LM.bountySection((bid) => {
    const list = h("div", { class: "comments", id: "comments" }, loading());
    const count = h("span", { class: "muted", id: "comment-count" });
    const replyForms = new Map();  // comment id -> form (kept across redraws)
    let lastSig = null;
    let refreshNow = async () => {};

    function replyForm(c) {
      let f = replyForms.get(c.id);
      if (f) return f;
      const ta = textarea("reply", "Your reply (Markdown)");
      const box = errBox();
      const btn = h("button", { type: "submit", class: "primary" }, "Reply");
      f = h("form", { class: "reply-form", novalidate: true, listen: { submit: async (e) => {
        e.preventDefault();
        const text = readComment(ta, box);
        if (text === null) return;
        const res = await send(btn, box, "/api/comments", { target: c.id, text });
        if (res) { ta.value = ""; replyForms.delete(c.id); toast("Reply posted."); lastSig = null; await refreshNow(); }
      } } }, field("Reply", ta), box, h("div", { class: "actions" }, btn));
      replyForms.set(c.id, f);
      return f;
    }

    function commentItem(c) {
      const depth = Math.min(Number(c.depth) || 0, 6);
      const body = h("div", { class: "md" }, md(c.markdown, 0));
      const head = h("div", { class: "comment-head" },
        who(c.author, c.author_name || null), " · ", h("span", { class: "muted" }, when(c.timestamp)),
        c.depth === 0 && ON[c.target_kind] ? h("span", { class: "muted" }, " · " + ON[c.target_kind]) : null);
      const slot = h("div", {});
      if (replyForms.has(c.id)) slot.appendChild(replyForms.get(c.id));
      const replyBtn = h("button", { type: "button", class: "link reply", listen: { click: () => {
        if (slot.firstChild) { put(slot); replyForms.delete(c.id); return; }
        const f = replyForm(c);
        put(slot, f);
        const ta = f.querySelector("textarea");
        if (ta) ta.focus();
      } } }, "Reply");
      const shown = c.hidden
        ? h("details", { class: "hidden-comment" }, h("summary", {}, "Hidden: " + (c.hidden_why || "")), body)
        : body;
      return h("article", { class: "comment depth-" + depth, id: "c-" + c.id }, head, shown,
        h("div", { class: "actions" }, replyBtn), slot);
    }

    const askTa = textarea("question", "Ask the mentor a question, or comment (Markdown: **bold**, `code`, lists, links)");
    const askBox = errBox();
    const askBtn = h("button", { type: "submit", class: "primary", id: "ask-button" }, "Post");
    const ask = h("form", { class: "ask-form", novalidate: true, listen: { submit: async (e) => {
      e.preventDefault();
      const text = readComment(askTa, askBox);
      if (text === null) return;
      const res = await send(askBtn, askBox, "/api/comments", { target: bid, text });
      if (res) { askTa.value = ""; toast("Comment posted."); lastSig = null; await refreshNow(); }
    } } }, field("Ask or comment", askTa), askBox, h("div", { class: "actions" }, askBtn));

    // -- resources for this bounty and its skills
    const resList = h("div", { class: "resources", id: "bounty-resources" }, loading());
    let resSig = null;
    let skills = [];
    const suggest = suggestForm(() => skills, bid, async () => { resSig = null; await refreshResources(); });

    async function refreshResources() {
      const calls = [get("/api/resources?bounty=" + enc(bid)),
        ...skills.map((s) => get("/api/resources?skill=" + enc(s)))];
      const [forBounty, ...bySkill] = await Promise.all(calls);
      const sig = JSON.stringify([forBounty.resources, bySkill.map((r) => r.resources)]);
      if (sig === resSig) return;
      resSig = sig;
      const mine = forBounty.resources || [];
      const seen = new Set(mine.map((r) => r.url + "\u0000" + r.skill));
      const parts = [
        h("h3", {}, "Suggested for this bounty"),
        mine.length ? resourceList(mine) : empty("No resource suggested for this bounty yet."),
      ];
      skills.forEach((s, i) => {
        const rows = (bySkill[i].resources || []).filter((r) => !seen.has(r.url + "\u0000" + r.skill)).slice(0, 5);
        if (rows.length) parts.push(h("h3", {}, "For " + s), resourceList(rows));
      });
      put(resList, parts);
    }

    async function refresh(bounty) {
      skills = Array.isArray(bounty.skills) ? bounty.skills : [];
      let r;
      try { r = await get("/api/bounties/" + enc(bid) + "/comments"); } catch (e) { lastSig = null; put(list, failBox(e)); return; }
      const sig = JSON.stringify(r.comments.map((c) => [c.id, c.hidden, c.author_name]));
      put(count, r.count ? ` (${r.count})` : "");
      if (sig !== lastSig) {
        lastSig = sig;
        put(list, r.comments.length ? r.comments.map(commentItem) : empty("No questions or comments yet. Ask the mentor below."));
      }
      try { await refreshResources(); } catch (e) { resSig = null; put(resList, failBox(e)); }
    }
    refreshNow = async () => { if (LM.refresh) LM.refresh(); };

    const el = h("div", { class: "discussion" },
      card(h("h2", {}, "Discussion", count), list, ask),
      card(h("h2", {}, "Learning resources"), resList, suggest));
    return { el, refresh };
  });

  function resourceList(rows) {
    return h("ul", { class: "plain resource-list" }, rows.map((r) => h("li", { class: "resource", id: "r-" + r.id },
      resourceLink(r),
      h("div", { class: "resource-meta" },
        h("span", { class: "badge" }, r.kind),
        h("span", { class: "badge licence", title: "licence" }, r.licence ? "licence " + r.licence : "licence unknown"),
        h("span", { class: "muted" }, " " + r.skill),
        h("span", { class: "muted" }, ` · trust ${(r.trust_ppm / 10000).toFixed(2)} %`),
        h("span", { class: "muted" }, " · suggested by "),
        (r.suggested_by || []).map((s, i) => [i ? ", " : "", who(s.account, s.name || null)])),
      threadBox(r.id, r.comments || 0))));
  }

  // The comments on one resource (GET /api/comments/{id}), loaded when opened;
  // stays open across redraws of its list.
  const openThreads = new Set();
  function threadBox(target, n) {
    const body = h("div", { class: "comments" });
    const ta = textarea("comment", "Comment on this resource (Markdown)");
    const box = errBox();
    const btn = h("button", { type: "submit", class: "primary" }, "Comment");
    async function load() {
      let r;
      try { r = await get("/api/comments/" + enc(target)); } catch (e) { put(body, failBox(e)); return; }
      put(body, r.comments.length ? r.comments.map(plainItem) : empty("No comments yet."));
    }
    const form = h("form", { class: "reply-form", novalidate: true, listen: { submit: async (e) => {
      e.preventDefault();
      const text = readComment(ta, box);
      if (text === null) return;
      const res = await send(btn, box, "/api/comments", { target, text });
      if (res) { ta.value = ""; toast("Comment posted."); await load(); }
    } } }, field("Comment", ta), box, h("div", { class: "actions" }, btn));
    const d = h("details", { class: "resource-thread", listen: { toggle: () => {
      if (d.open) { openThreads.add(target); load(); } else openThreads.delete(target);
    } } }, h("summary", {}, n ? `Discussion (${n})` : "Discuss"), body, form);
    if (openThreads.has(target)) d.open = true;  // a property, as a click would set it
    return d;
  }

  function plainItem(c) {
    const depth = Math.min(Number(c.depth) || 0, 6);
    const body = h("div", { class: "md" }, md(c.markdown, 0));
    return h("article", { class: "comment depth-" + depth, id: "c-" + c.id },
      h("div", { class: "comment-head" }, who(c.author, c.author_name || null), " · ",
        h("span", { class: "muted" }, when(c.timestamp))),
      c.hidden ? h("details", { class: "hidden-comment" }, h("summary", {}, "Hidden: " + (c.hidden_why || "")), body) : body);
  }

  // A form to suggest a resource: for a bounty (skill picked from its skills
  // or typed) or, without a bounty, for any skill.
  function suggestForm(skillsNow, bid, done) {
    const skill = h("input", { type: "text", name: "skill", maxlength: 32, autocomplete: "off",
      placeholder: "a skill, e.g. python" });
    const title = h("input", { type: "text", name: "title", maxlength: 200, autocomplete: "off" });
    const url = h("input", { type: "text", name: "url", maxlength: 500, autocomplete: "off",
      inputmode: "url", placeholder: "https://…" });
    const kind = h("select", { name: "kind" }, KINDS.map((k) => h("option", { value: k }, k)));
    const licence = h("input", { type: "text", name: "licence", maxlength: 64, autocomplete: "off",
      placeholder: "e.g. CC-BY-4.0, CC-BY-SA-4.0 (empty: unknown)" });
    const box = errBox();
    const btn = h("button", { type: "submit", class: "primary", id: "suggest-button" }, "Suggest");
    const form = h("form", { class: "suggest-form", novalidate: true, listen: { submit: async (e) => {
      e.preventDefault();
      const sk = skill.value.trim() || (skillsNow()[0] || "");
      if (!sk) { LM.showErr(box, "Name the skill this resource teaches."); return; }
      if (!title.value.trim()) { LM.showErr(box, "Give the resource a title."); return; }
      if (!/^https?:\/\//i.test(url.value.trim())) { LM.showErr(box, "The address must start with http:// or https://."); return; }
      const body = { skill: sk, title: title.value.trim(), url: url.value.trim(), kind: kind.value, licence: licence.value.trim() };
      if (bid) body.bounty = bid;
      const res = await send(btn, box, "/api/resources", body);
      if (res) { title.value = ""; url.value = ""; licence.value = ""; toast("Resource suggested."); await done(); }
    } } },
      h("h3", {}, "Suggest a resource"),
      h("div", { class: "row wrap" }, field("Skill", skill, bid ? "empty: the bounty's first skill" : null), field("Kind", kind)),
      field("Title", title), field("Address", url), field("Licence", licence), box,
      h("div", { class: "actions" }, btn));
    return form;
  }

  // -- the Resources view: browse by skill, suggest

  LM.view("learn", "Resources", (arg) => {
    const skill = arg && arg.length <= 32 ? arg : null;
    const chipsEl = h("div", { class: "skill-chips" });
    const area = h("div", { id: "resources" }, loading());
    let sig = null;
    async function refresh() {
      let r;
      try { r = await get("/api/resources" + (skill ? "?skill=" + enc(skill) : "")); } catch (e) { put(area, failBox(e)); return; }
      const s = JSON.stringify([r.resources, r.skills]);
      if (s === sig) return;
      sig = s;
      put(chipsEl, h("ul", { class: "chips" },
        h("li", { class: "chip" + (skill ? "" : " current") }, h("a", { href: "#/learn" }, "all")),
        Object.entries(r.skills || {}).map(([k, n]) => h("li", { class: "chip" + (k === skill ? " current" : "") },
          h("a", { href: "#/learn/" + enc(k) }, `${k} (${n})`)))));
      put(area, (r.resources || []).length ? resourceList(r.resources)
        : empty(skill ? `No resource suggested for ${skill} yet.` : "No resource suggested yet."));
    }
    const form = suggestForm(() => (skill ? [skill] : []), null, async () => { sig = null; await refresh(); });
    const el = h("div", { class: "page" },
      h("h1", {}, skill ? "Resources for " + skill : "Learning resources"),
      h("p", { class: "muted" }, "Suggested by members, ranked by the suggesters' trust in the skill. Each opens in a new tab."),
      card(chipsEl, area), card(form));
    return { el, refresh, title: skill ? "Resources: " + skill : "Resources" };
  });
})();
