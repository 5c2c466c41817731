"use strict";
// Disputes and juries (issue 12): the "Disputes" view (disputes and jury duty
// with deadlines and next steps), one dispute's page (claim, evidence, jurors,
// votes, outcome, bond), and a section under each bounty that offers "Dispute
// this award" / "Dispute this review" where this account has standing. Drawn
// only with LM.h; talks to the node only through LM.api (node/_api_disputes.py).
(() => {
  const LM = window.LM;
  if (!LM) return;
  const { h, put, enc, get, act, errBox, field, intInput, card, empty, loading, failBox, who,
    amount, when, countdown, readInt, readText, toast } = LM;

  const PHASE = {
    voting: "Jury voting", revealing: "Votes being revealed", upheld: "Upheld",
    rejected: "Rejected", undecided: "Undecided",
  };
  const KIND = { award: "award", refund: "refund", review: "review" };
  const badge = (d) => h("span", { class: "badge dispute-" + (PHASE[d.phase] ? d.phase : "other") },
    PHASE[d.phase] || String(d.phase));

  // What this account does next on a dispute, in words (and by when).
  function nextStep(d) {
    const a = d.next_action;
    if (a === "vote") return ["Vote as a juror ", countdown(d.vote_by, "— voting closes in", "— voting closed")];
    if (a === "reveal") {
      return d.next_auto
        ? ["Your node reveals your vote once voting closes (", LM.when(d.vote_by), ")"]
        : ["Reveal your vote ", countdown(d.reveal_by, "— reveals close in", "— reveals closed")];
    }
    if (a === "claim") return [`Claim ${amount(d.owed_to_me)} (your node does it by itself)`];
    if (a === "appeal") return ["You may appeal: a larger jury, at least twice the bond"];
    return null;
  }

  // A dispute this node hides (its disputant blocked here, or hidden by
  // community flags) is greyed out behind "Show anyway", unless it involves me.
  function fold(el, d) {
    if (d.hidden !== true) return el;
    const label = d.hidden_by === "block" ? "you blocked this disputant" : "hidden by community flags";
    if (d.my_role) {
      el.prepend(h("p", { class: "muted hidden-note", title: String(d.hidden_why || "") }, label));
      return el;
    }
    const inner = h("div", { class: "moderated-body", hidden: true }, Array.from(el.childNodes));
    const btn = h("button", { type: "button", class: "link show-anyway", listen: { click: () => {
      inner.hidden = !inner.hidden; btn.textContent = inner.hidden ? "Show anyway" : "Hide";
    } } }, "Show anyway");
    el.append(h("p", { class: "muted hidden-note", title: String(d.hidden_why || "") }, label, " · ", btn), inner);
    return el;
  }

  function disputeItem(d) {
    const step = nextStep(d);
    return fold(h("li", { class: "dispute-item" },
      h("a", { href: "#/dispute/" + enc(d.id), class: "title" },
        `Dispute of ${d.target_kind === "review" ? "a review" : "the " + (KIND[d.target_kind] || "event")}`,
        d.bounty_title ? ` in «${d.bounty_title}»` : ""),
      " ", badge(d),
      d.appeal_of ? h("span", { class: "badge" }, "Appeal") : null,
      d.panel_fair ? null : h("span", { class: "badge warn" }, "Panel not drawn fairly"),
      h("div", { class: "meta muted" },
        "by ", who(d.disputant, d.disputant_name), " · bond ", amount(d.bond),
        d.my_role ? ` · you: ${d.my_role}` : "",
        d.phase === "voting" ? [" · ", countdown(d.vote_by, "voting closes in", "voting closed")] : null,
        d.phase === "revealing" ? [" · ", countdown(d.reveal_by, "reveals close in", "reveals closed")] : null),
      step ? h("div", { class: "next" }, h("strong", {}, "Next: "), step) : null), d);
  }

  // -- the list: jury duty first, then every dispute
  LM.view("disputes", "Disputes", () => {
    const area = h("div", {}, loading());
    async function refresh() {
      let list, jury;
      try { [list, jury] = await Promise.all([get("/api/disputes"), get("/api/jury")]); } catch (e) { put(area, failBox(e)); return; }
      const all = list.disputes || [];
      const byId = new Map(all.map((d) => [d.id, d]));
      const waiting = [...jury.jury, ...jury.claims, ...jury.against_me, ...jury.mine]
        .map((row) => byId.get(row.dispute)).filter(Boolean);
      const seen = new Set();
      const unique = waiting.filter((d) => !seen.has(d.id) && seen.add(d.id));
      put(area,
        card(h("h2", {}, "Waiting on you"),
          jury.jury.length || jury.claims.length
            ? null : h("p", { class: "muted", id: "jury-empty" }, "No jury duty and no bond owed to you right now."),
          unique.length ? h("ul", { class: "disputes", id: "my-disputes" }, unique.map(disputeItem))
            : empty("No dispute involves you.")),
        card(h("h2", {}, "Every dispute"),
          all.length ? h("ul", { class: "disputes", id: "all-disputes" }, all.map(disputeItem))
            : empty("No disputes on this network. A learner can dispute an award from the bounty's page.")));
    }
    return {
      el: h("div", { class: "page" }, h("h1", {}, "Disputes"),
        h("p", { class: "muted" }, "A learner wronged by an award, a refund or a review can ask a jury drawn "
          + "from the community. Jurors vote sealed, then their nodes reveal the votes; the majority decides "
          + "who gets the bond."), area),
      refresh, title: "Disputes",
    };
  });

  // -- one dispute
  LM.view("dispute", null, (id) => {
    const head = h("div", {}, loading());
    const body = h("div", {});
    let lastSig = null;
    async function refresh() {
      let d;
      try { d = await get("/api/disputes/" + enc(id)); } catch (e) { put(head, failBox(e)); put(body); lastSig = null; return; }
      const sig = JSON.stringify(d, (k, v) => (k === "now" ? undefined : v));
      if (sig === lastSig) return;  // unchanged: keep the nodes (and a half-typed reason)
      lastSig = sig;
      put(head,
        h("h1", {}, `Dispute of ${d.target_kind === "review" ? "a review" : "an " + d.target_kind}`),
        h("p", {}, badge(d), d.appeal_of ? [" ", h("a", { href: "#/dispute/" + enc(d.appeal_of) }, "appeal of an earlier dispute")] : null,
          d.panel_fair ? null : h("span", { class: "badge warn" }, "Panel not drawn fairly: its outcome is ignored"),
          " in ", h("a", { href: "#/bounty/" + enc(d.bounty) }, d.bounty_title || "a bounty")),
        d.outcome ? h("p", { class: "outcome", id: "dispute-outcome" }, `Outcome: ${d.outcome}`) : null);
      const v = d.votes;
      const step = nextStep(d);
      put(body,
        fold(card(h("h2", {}, "Claim"),
          h("p", { class: "claim", id: "dispute-claim" }, d.claim),
          h("dl", { class: "facts" },
            h("dt", {}, "Disputant"), h("dd", {}, who(d.disputant, d.disputant_name)),
            h("dt", {}, "Respondent"), h("dd", {}, who(d.respondent, d.respondent_name)),
            h("dt", {}, "Bond"), h("dd", {}, amount(d.bond), d.escrow !== d.bond ? ` (${amount(d.escrow)} still locked)` : ""),
            h("dt", {}, "Voting closes"), h("dd", {}, when(d.vote_by), " ", countdown(d.vote_by, "(in", "(closed)"), d.phase === "voting" ? ")" : ""),
            h("dt", {}, "Reveals close"), h("dd", {}, when(d.reveal_by))),
          d.evidence.length ? h("div", {}, h("h3", {}, "Evidence"), h("ul", { class: "files" }, d.evidence.map((e) =>
            h("li", {}, e.have ? h("a", { href: "/api/blobs/" + enc(e.hash), download: e.name }, e.name) : e.name,
              " ", h("small", { class: "muted" }, LM.bytes(e.size)))))) : null), d),
        step ? card(h("h2", {}, "Your next step"), h("p", { id: "dispute-next" }, step),
          d.next_action === "vote" ? voteForm(d) : null,
          d.next_action === "claim" ? claimButton(d) : null,
          d.next_action === "reveal" && Date.now() > d.vote_by ? revealButton(d) : null,
          d.next_action === "appeal" ? appealForm(d) : null) : null,
        card(h("h2", {}, "Jury"),
          h("p", { class: "muted" }, `${v.committed} of ${v.panel} voted · ${v.revealed} revealed · `
            + `${v.uphold} uphold, ${v.reject} reject`),
          h("table", { class: "jury", id: "jury-table" },
            h("thead", {}, h("tr", {}, h("th", {}, "Juror"), h("th", {}, "Voted"), h("th", {}, "Verdict"), h("th", {}, "Reason"))),
            h("tbody", {}, d.jurors.map((j) => h("tr", {},
              h("td", {}, who(j.account, j.name)),
              h("td", {}, j.committed ? "yes" : "not yet"),
              h("td", {}, j.verdict || (j.committed ? "sealed" : "—")),
              h("td", {}, j.reason || "")))))),
        card(h("h2", {}, "Bond"),
          h("ul", { class: "moves", id: "bond-moves" }, d.bond_movements.map((m) => h("li", {},
            m.kind === "bond" ? ["Locked by ", who(m.from), ": ", amount(m.amount)]
              : ["Paid to ", who(m.to), ": ", amount(m.amount)])))));
    }

    function voteForm(d) {
      const verdict = h("select", { name: "verdict" },
        h("option", { value: "" }, "Choose…"),
        h("option", { value: "uphold" }, "Uphold: the claim is right"),
        h("option", { value: "reject" }, "Reject: the claim is wrong"));
      const reason = h("textarea", { name: "reason", rows: 3, maxlength: 1000 });
      const box = errBox();
      const btn = h("button", { type: "submit", class: "primary" }, "Vote (sealed)");
      async function send() {
        if (!verdict.value) { LM.showErr(box, "Choose a verdict."); return; }
        let why;
        try { why = readText(reason, "The reason", 0, 1000); } catch (e) { LM.showErr(box, e.message); return; }
        const res = await act(btn, box, (key) => LM.api("POST", `/api/disputes/${enc(d.id)}/vote`,
          { verdict: verdict.value, reason: why }, key("vote " + d.id)));
        if (res) { toast("Vote sealed. Your node reveals it when voting closes."); lastSig = null; await refresh(); }
      }
      return h("form", { id: "vote-form", novalidate: true, listen: { submit: (e) => { e.preventDefault(); send(); } } },
        field("Verdict", verdict), field("Reason (shown when revealed)", reason), box, h("div", { class: "actions" }, btn));
    }

    function claimButton(d) {
      const box = errBox();
      const btn = h("button", { type: "button", class: "primary", listen: { click: async () => {
        const res = await act(btn, box, (key) => LM.api("POST", `/api/disputes/${enc(d.id)}/claim`, {}, key("claim " + d.id)));
        if (res) { toast("Claimed."); lastSig = null; await refresh(); }
      } } }, `Claim ${amount(d.owed_to_me)} now`);
      return h("div", {}, box, h("div", { class: "actions" }, btn));
    }

    function revealButton(d) {
      const box = errBox();
      const btn = h("button", { type: "button", listen: { click: async () => {
        const res = await act(btn, box, (key) => LM.api("POST", `/api/disputes/${enc(d.id)}/reveal`, {}, key("reveal " + d.id)));
        if (res) { toast("Vote revealed."); lastSig = null; await refresh(); }
      } } }, "Reveal my vote now");
      return h("div", {}, box, h("div", { class: "actions" }, btn));
    }

    function appealForm(d) {
      const claim = h("textarea", { name: "claim", rows: 3, maxlength: 2000 });
      const bond = intInput("bond", String(2 * d.bond));
      const box = errBox();
      const btn = h("button", { type: "submit" }, "Appeal");
      async function send() {
        let body;
        try {
          body = { appeal_of: d.id, claim: readText(claim, "Why the jury was wrong", 1, 2000, { blank: false }),
            bond: readInt(bond, "The bond", 2 * d.bond) };
        } catch (e) { LM.showErr(box, e.message); return; }
        const res = await act(btn, box, (key) => LM.api("POST", "/api/disputes", body, key(JSON.stringify(body))));
        if (res) { toast("Appealed."); location.hash = "#/dispute/" + enc(res.id); }
      }
      return h("form", { id: "appeal-form", novalidate: true, listen: { submit: (e) => { e.preventDefault(); send(); } } },
        field("Why the jury was wrong", claim), field("Bond", bond, `at least ${2 * d.bond} (twice the dispute's)`),
        box, h("div", { class: "actions" }, btn));
    }

    return { el: h("div", { class: "page" }, head, body), refresh, title: "Dispute" };
  });

  // -- under a bounty: its disputes, and "Dispute this award / review" where this account may
  LM.bountySection((bountyId) => {
    const el = h("div", { class: "disputes-section" });
    let open = null;  // the form being filled: {kind, target}
    let lastSig = null;

    // What this account may dispute here: the award or refund if its work was
    // in the bounty; a review of its own work, or of work it reviewed too.
    function disputable(b) {
      const me = LM.me() && LM.me().account;
      const out = [];
      const subs = b.submissions_detail || [];
      const mine = subs.filter((s) => s.learner === me);
      if (b.settled_by && b.author !== me) {
        const accepted = Object.entries(b.commit_ids || {}).some(([c, a]) => a === me && (b.accepted || []).includes(c));
        if ((b.phase === "awarded" && mine.length) || (b.phase === "refunded" && accepted)) {
          out.push({ kind: b.phase === "awarded" ? "award" : "refund", target: b.settled_by,
            label: b.phase === "awarded" ? "Dispute this award" : "Dispute this refund" });
        }
      }
      for (const s of subs) {
        const reviewedByMe = (s.reviews || []).some((r) => r.reviewer === me);
        if (s.learner !== me && !reviewedByMe) continue;
        for (const r of s.reviews || []) {
          if (r.reviewer === me) continue;
          out.push({ kind: "review", target: r.id, label: `Dispute this review (of ${s.learner === me ? "your work" : "work you reviewed"}, by ${LM.short(r.reviewer)})` });
        }
      }
      return out;
    }

    function form(item) {
      const claim = h("textarea", { name: "claim", rows: 4, maxlength: 2000 });
      const bond = intInput("bond", "10");
      const files = h("input", { type: "file", name: "evidence", multiple: true });
      const voteBy = h("input", { type: "datetime-local", name: "vote_by", value: LM.localInput(Date.now() + 3 * 86400000) });
      const box = errBox();
      const btn = h("button", { type: "submit", class: "primary" }, "File the dispute");
      async function send() {
        let body;
        try {
          body = { target: item.target, claim: readText(claim, "What is wrong", 1, 2000, { blank: false }),
            bond: readInt(bond, "The bond", 10) };
          const v = LM.readWhen(voteBy, "The voting deadline");
          if (v <= Date.now()) { LM.showErr(box, "The voting deadline must be in the future."); return; }
          body.vote_by = v;
          body.reveal_by = v + 2 * 86400000;
        } catch (e) { LM.showErr(box, e.message); return; }
        const list = Array.from(files.files || []);
        if (list.length > 8) { LM.showErr(box, "At most 8 evidence files."); return; }
        const res = await act(btn, box, async (key) => {
          body.files = await Promise.all(list.map(async (f) => ({ name: f.name, data_b64: await fileB64(f) })));
          return LM.api("POST", "/api/disputes", body, key(item.target + body.claim + body.bond));
        });
        if (res) { toast("Dispute filed: the jury is drawn."); open = null; location.hash = "#/dispute/" + enc(res.id); }
      }
      return h("form", { class: "dispute-form", id: "dispute-form", novalidate: true,
        listen: { submit: (e) => { e.preventDefault(); send(); } } },
        h("h3", {}, item.label),
        field("What is wrong", claim, "The jury reads this; say what happened and what you ask."),
        field("Bond", bond, "Locked from your balance. Returned if the jury upholds; shared by the jurors if it rejects."),
        field("Evidence (optional)", files),
        field("Voting closes", voteBy, "Jurors vote sealed until then; their nodes reveal the votes in the two days after."),
        box, h("div", { class: "actions" }, btn));
    }

    function fileB64(file) {
      return new Promise((resolve, reject) => {
        const r = new FileReader();
        r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ""));
        r.onerror = () => reject(new Error(`could not read ${file.name}`));
        r.readAsDataURL(file);
      });
    }

    async function refresh(b) {
      let list;
      try { list = await get("/api/disputes?bounty=" + enc(b.id)); } catch (e) { if (!LM.missing(e)) throw e; put(el); return; }
      const here = (list.disputes || []).filter((d) => d.bounty === b.id);
      const offers = disputable(b).filter((o) => !here.some((d) => d.target === o.target && d.disputant === (LM.me() || {}).account));
      const sig = JSON.stringify([here.map((d) => [d.id, d.phase, d.next_action]), offers.map((o) => o.target), open && open.target]);
      if (sig === lastSig) return;
      lastSig = sig;
      if (!here.length && !offers.length) { put(el); return; }
      put(el, card(h("h2", {}, "Disputes"),
        here.length ? h("ul", { class: "disputes" }, here.map(disputeItem)) : null,
        offers.length ? h("div", { class: "actions wrap" }, offers.map((o) => h("button", {
          type: "button", class: "dispute-offer", "aria-expanded": open && open.target === o.target ? "true" : "false",
          listen: { click: () => { open = open && open.target === o.target ? null : o; lastSig = null; refresh(b); } },
        }, o.label))) : null,
        open ? form(open) : null));
    }
    return { el, refresh };
  });
})();
