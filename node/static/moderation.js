"use strict";
// Moderation (issue 12): a "Flag" action under each bounty (the bounty, its
// submissions and reviews), a "Block" action on profiles, and the
// "Moderation" view: this node's blocks (with Unblock) and what the
// community's flags hide, with the flags and trust behind each item. Lists in
// app.js grey hidden items out with a "Show anyway" toggle. Drawn only with
// LM.h; talks to the node only through LM.api (node/_api_moderation.py).
(() => {
  const LM = window.LM;
  if (!LM) return;
  const { h, put, enc, get, act, errBox, field, card, empty, loading, failBox, who, when, readText, toast } = LM;

  const CATEGORIES = [
    ["spam", "Spam"], ["abuse", "Abuse"], ["plagiarism", "Plagiarism (say what was copied from where)"], ["other", "Other"],
  ];
  const pct = (ppm) => (Number(ppm || 0) / 10000).toFixed(2) + " %";
  const KIND = { bounty: "Bounty", submission: "Submission", review: "Review", account: "Account", other: "Event" };

  function categorySelect() {
    return h("select", { name: "category" }, CATEGORIES.map(([v, t]) => h("option", { value: v }, t)));
  }

  // -- under each bounty: flag the bounty, a submission or a review ------------------------
  LM.bountySection((bid) => {
    const el = h("section", { class: "card moderation-section", id: "moderation-section" });
    const target = h("select", { name: "target", id: "flag-target" });
    const category = categorySelect();
    category.id = "flag-category";
    const note = h("textarea", { name: "note", id: "flag-note", rows: 2, maxlength: 1000, placeholder: "Why (optional)" });
    const box = errBox();
    const btn = h("button", { type: "submit", class: "secondary", id: "flag-send" }, "Flag");
    const mine = h("p", { class: "muted", id: "flag-mine" });
    const form = h("form", { class: "flag-form", novalidate: true, listen: { submit: (e) => { e.preventDefault(); send(); } } },
      h("div", { class: "row wrap" }, field("What", target), field("Category", category)),
      field("Note", note), box, h("div", { class: "actions" }, btn));
    const details = h("details", { class: "flag-details" }, h("summary", {}, "Flag this bounty or its work"),
      h("p", { class: "muted" }, "A flag is a signed event everyone sees. Enough flags from trusted members hide the item for everyone (it stays in the ledger)."),
      form);
    put(el, h("h2", {}, "Moderation"), mine, details);
    let lastKey = null;
    let lastB = null;

    async function send() {
      let body;
      try {
        if (!target.value) throw new Error("There is nothing here you can flag.");
        body = { target: target.value, category: category.value, note: readText(note, "Note", 0, 1000) };
      } catch (e) { LM.showErr(box, e.message); return; }
      const res = await act(btn, box, (key) => LM.api("POST", "/api/flags", body, key(JSON.stringify(body))));
      if (res) { toast("Flag published."); note.value = ""; lastKey = null; await refresh(lastB); }
    }

    async function refresh(b) {
      if (!b) return;
      lastB = b;
      const me = LM.me() ? LM.me().account : null;
      const options = [];
      if (b.author !== me) options.push([b.id, `The bounty “${b.title}”`]);
      for (const s of b.submissions_detail || []) {
        if (s.learner !== me) options.push([s.id, `Work by ${LM.short(s.learner)}`]);
        for (const r of s.reviews || []) if (r.reviewer !== me) options.push([r.id, `Review by ${LM.short(r.reviewer)} of work by ${LM.short(s.learner)}`]);
      }
      let flags = null;
      try { flags = await get("/api/flags"); } catch (e) { /* the form still works */ }
      const flagged = new Set(((flags && flags.mine) || []).map((f) => f.target).filter(Boolean));
      const key = JSON.stringify([options, [...flagged]]);
      if (key === lastKey) return;
      lastKey = key;
      const open = options.filter(([id]) => !flagged.has(id));
      const keep = target.value;
      put(target, open.map(([id, label]) => h("option", { value: id }, label)));
      if (open.some(([id]) => id === keep)) target.value = keep;
      const n = options.length - open.length;
      mine.textContent = n ? `You flagged ${n} item(s) here.` : "";
      details.hidden = !open.length;
    }
    return { el, refresh };
  });

  // -- on a profile: block or unblock this account on this node ----------------------------
  if (LM.profileSection) {
    LM.profileSection((acct) => {
      const el = h("section", { class: "card block-section" });
      const box = errBox();
      const reason = h("input", { type: "text", name: "reason", id: "block-reason", maxlength: 200, placeholder: "A note for yourself (optional)", autocomplete: "off" });
      async function refresh() {
        const me = LM.me() ? LM.me().account : null;
        if (acct === me) { put(el); el.hidden = true; return; }
        const blocks = (await get("/api/blocks")).blocks || [];
        const entry = blocks.find((b) => b.account === acct);
        if (entry) {
          const btn = h("button", { type: "button", class: "secondary", id: "unblock-profile" }, "Unblock");
          btn.addEventListener("click", async () => {
            const res = await act(btn, box, () => LM.api("DELETE", "/api/blocks/" + enc(acct)));
            if (res) { toast("Unblocked."); await refresh(); }
          });
          put(el, h("h2", {}, "Blocked on this node"),
            h("p", { class: "muted" }, "Since ", when(entry.at_ms), entry.reason ? ` — ${entry.reason}` : "",
              ". Their content is greyed out here and this node does not relay it."),
            h("div", { class: "actions" }, btn), box);
        } else {
          const btn = h("button", { type: "button", class: "secondary", id: "block-profile" }, "Block");
          btn.addEventListener("click", async () => {
            const body = { account: acct, reason: reason.value.trim() };
            const res = await act(btn, box, (key) => LM.api("POST", "/api/blocks", body, key(JSON.stringify(body))));
            if (res) { toast("Blocked on this node."); await refresh(); }
          });
          put(el, h("h2", {}, "Block"),
            h("p", { class: "muted" }, "Hide this account's content on this node and stop relaying it. Only this node: the network still has it."),
            field("Reason", reason), h("div", { class: "actions" }, btn), box);
        }
      }
      return { el, refresh };
    });
  }

  // -- the Moderation view ----------------------------------------------------------------
  function itemRow(it) {
    const link = it.bounty ? h("a", { href: "#/bounty/" + enc(it.bounty) }, it.title || "a bounty") : null;
    const cats = Object.entries(it.categories || {}).map(([k, n]) => `${k} ${n}`).join(", ");
    return h("li", { class: "flagged-item" },
      h("p", {}, h("strong", {}, KIND[it.target_kind] || "Item"), " ",
        it.kind === "account" ? who(it.account, it.account_name || null) : ["by ", who(it.account, it.account_name || null)],
        link ? [" · ", link] : null),
      h("p", { class: "muted" }, cats, " · ", it.why),
      h("details", {}, h("summary", {}, `${it.flags.length} flag(s)`),
        h("ul", {}, it.flags.map((f) => h("li", {}, who(f.flagger, f.flagger_name || null),
          ` — ${f.category} (trust ${pct(f.trust_ppm)})`, f.note ? `: ${f.note}` : "")))));
  }

  LM.view("moderation", "Moderation", () => {
    const area = h("div", {}, loading());
    async function refresh() {
      let blocks, flags;
      try { [blocks, flags] = await Promise.all([get("/api/blocks"), get("/api/flags")]); } catch (e) { put(area, failBox(e)); return; }
      const box = errBox();
      const blockRows = (blocks.blocks || []).map((b) => {
        const btn = h("button", { type: "button", class: "secondary unblock" }, "Unblock");
        btn.addEventListener("click", async () => {
          const res = await act(btn, box, () => LM.api("DELETE", "/api/blocks/" + enc(b.account)));
          if (res) { toast("Unblocked."); await refresh(); }
        });
        return h("li", { class: "blocked-account" }, who(b.account, b.name || null),
          b.reason ? h("span", { class: "muted" }, ` — ${b.reason}`) : null,
          h("span", { class: "muted" }, " · since ", when(b.at_ms)), " ", btn);
      });
      const hidden = [...flags.hidden.events, ...flags.hidden.accounts];
      const th = flags.thresholds;
      const relay = blocks.relay || {};
      put(area,
        card(h("h2", {}, "My blocks"),
          h("p", { class: "muted" }, "Blocked accounts are greyed out on this node and this node does not relay their events (the ledger still holds them). ",
            `Held back so far: ${relay.blocked || 0} event(s) of blocked authors, ${relay.over_limit || 0} over the limit of ${relay.per_author_per_min} per author per minute.`),
          blockRows.length ? h("ul", { class: "blocks", id: "my-blocks" }, blockRows) : empty("You have blocked no one."), box),
        card(h("h2", {}, "Hidden by the community"),
          h("p", { class: "muted" }, `Hidden when the flaggers together hold ${pct(th.trust_ppm)} of all trust, or ${th.min_flaggers} flaggers with trust agree. Every node with the same events hides the same things.`),
          hidden.length ? h("ul", { class: "flagged", id: "community-hidden" }, hidden.map(itemRow)) : empty("Nothing is hidden.")),
        card(h("h2", {}, "Flagged, not hidden"),
          flags.below.length ? h("ul", { class: "flagged", id: "community-below" }, flags.below.map(itemRow)) : empty("Nothing else is flagged.")),
        card(h("h2", {}, "My flags"),
          flags.mine.length ? h("ul", { class: "flagged" }, flags.mine.map((f) => h("li", {}, f.category, " · ",
            f.target ? h("code", {}, LM.short(f.target)) : who(f.account), " · ", when(f.timestamp), f.note ? ` — ${f.note}` : "")))
            : empty("You have flagged nothing.")));
    }
    return { el: h("div", { class: "page" }, h("h1", {}, "Moderation"), area), refresh, title: "Moderation" };
  });
})();
