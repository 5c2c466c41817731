"use strict";
// Private messages (node/_api_messages.py): conversations, one conversation
// with a send box, and a "Message" link on other people's profiles. Draws only
// with LM.h (text as text nodes); talks to the node only through LM.api.
// Messages do not change the ledger, so the open view polls every few seconds.
(() => {
  const LM = window.LM;
  const { h, put, enc, get, act, errBox, card, empty, loading, who, when, failBox, toast } = LM;
  const POLL_MS = 3000;
  const MAX_CHARS = 4000;

  function preview(text) {
    const line = String(text || "").split("\n")[0];
    return line.length > 80 ? line.slice(0, 79) + "…" : line;
  }

  function sendBox(to, onSent) {
    const box = errBox();
    const text = h("textarea", {
      id: "message-text", name: "text", rows: 3, maxlength: MAX_CHARS, required: true,
      placeholder: "Write a private message…", "aria-label": "Message",
    });
    const toInput = to ? null : h("input", {
      id: "message-to", name: "to", type: "text", autocomplete: "off", spellcheck: "false",
      placeholder: "lm…", "aria-label": "To (account)",
    });
    const btn = h("button", { type: "submit", class: "primary", id: "message-send" }, "Send privately");
    const form = h("form", { class: "card form message-form", id: "message-form", novalidate: true, listen: { submit: async (e) => {
      e.preventDefault();
      let body;
      try {
        const acct = to || LM.readAccount(toInput, "To");
        body = { to: acct, text: LM.readText(text, "The message", 1, MAX_CHARS, { blank: false }) };
      } catch (err) { LM.showErr(box, err.message); return; }
      const res = await act(btn, box, (key) => LM.api("POST", "/api/messages", body, key(JSON.stringify(body))));
      if (res) {
        text.value = "";
        toast("Sent. Only the recipient's node can read it.");
        await onSent(body.to);
      }
    } } },
    to ? null : LM.field("To (account)", toInput),
    LM.field("Message", text, "End-to-end encrypted: relaying nodes see neither the text nor who sent it."),
    h("div", { class: "actions" }, btn), box);
    return form;
  }

  function conversationList(data) {
    if (!data.conversations.length) return empty("No private messages yet. Open someone's profile and choose Message, or write to an account below.");
    return h("ul", { class: "conversations", id: "conversations" }, data.conversations.map((c) =>
      h("li", { class: "conversation" + (c.unread ? " unread" : "") },
        h("a", { href: "#/messages/" + enc(c.account), class: "conv-link" }, c.name || LM.short(c.account)),
        c.unread ? h("span", { class: "badge unread-count" }, `${c.unread} new`) : null,
        h("span", { class: "muted conv-when" }, " ", when(c.last_ms)),
        h("div", { class: "conv-last" }, c.last_outgoing ? "You: " : "", preview(c.last_text)))));
  }

  function thread(data) {
    if (!data.messages.length) return empty("No messages with this account yet.");
    return h("ol", { class: "thread", id: "thread" }, data.messages.map((m) =>
      h("li", { class: "message " + (m.outgoing ? "out" : "in") },
        h("div", { class: "message-head" },
          m.outgoing ? h("strong", {}, "You") : who(m.from, data.name),
          h("time", { class: "muted", datetime: new Date(m.sent_ms).toISOString() }, " ", when(m.sent_ms))),
        h("p", { class: "text message-text" }, m.text))));
  }

  LM.view("messages", "Messages", (arg) => {
    const area = h("div", { id: "messages-area" }, loading());
    let sig = null;
    let timer = 0;
    async function refresh() {
      if (arg) {
        let data;
        try { data = await get("/api/messages/" + enc(arg)); } catch (e) { put(area, failBox(e)); return; }
        const s = JSON.stringify(data.messages.map((m) => m.id));
        if (s === sig) return;  // unchanged: keep what is drawn
        sig = s;
        put(area, thread(data));
        const last = area.querySelector(".message:last-child");
        if (last && last.scrollIntoView) last.scrollIntoView({ block: "nearest" });
      } else {
        let data;
        try { data = await get("/api/messages"); } catch (e) { put(area, failBox(e)); return; }
        const s = JSON.stringify(data.conversations);
        if (s === sig) return;
        sig = s;
        put(area, conversationList(data));
      }
    }
    const poll = () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        if (!el.isConnected) return;  // the view was left: stop polling
        try { await refresh(); } catch (e) { /* shown on the next try */ }
        poll();
      }, POLL_MS);
    };
    const head = arg
      ? h("div", { class: "page-head" }, h("h1", {}, "Conversation with ", who(arg)),
        h("a", { href: "#/messages", class: "secondary" }, "All conversations"))
      : h("h1", {}, "Messages");
    const el = h("div", { class: "page messages" }, head,
      card(area),
      sendBox(arg, async (to) => {
        if (!arg && to) { location.hash = "#/messages/" + enc(to); return; }
        sig = null;
        await refresh();
      }));
    poll();
    return { el, refresh, title: "Messages" };
  });

  // A "Message" link on someone else's profile (#/profile/<account>): added
  // beside the profile's own actions once the page has drawn them.
  function addProfileLink() {
    const m = /^#\/profile\/([^/?#]+)/.exec(location.hash);
    if (!m) return;
    let acct;
    try { acct = decodeURIComponent(m[1]); } catch (e) { return; }
    const me = LM.me();
    if (me && me.account === acct) return;
    const head = document.querySelector("#main .profile-name");
    if (!head || document.getElementById("message-profile")) return;
    const cardEl = head.closest(".card");
    if (!cardEl) return;
    const link = h("a", { href: "#/messages/" + enc(acct), class: "button secondary", id: "message-profile" }, "Message");
    const actions = cardEl.querySelector(".actions");
    if (actions) actions.appendChild(link);
    else cardEl.appendChild(h("div", { class: "actions" }, link));
  }
  const main = document.getElementById("main");
  if (main) new MutationObserver(addProfileLink).observe(main, { childList: true, subtree: true });
})();
