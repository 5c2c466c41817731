"use strict";
// The learnmesh page. Everything on screen is built by h() below: element
// names and attributes from a fixed list, text only as text nodes, links only
// to paths this file builds. Nothing a peer publishes is ever parsed as HTML.
(() => {
  // ---------------------------------------------------------------- safe DOM

  const TAGS = new Set([
    "a", "article", "blockquote", "br", "button", "code", "dd", "details", "div", "dl", "dt", "em", "fieldset",
    "footer", "form", "h1", "h2", "h3", "header", "input", "label", "legend", "li", "nav", "ol",
    "option", "p", "pre", "section", "select", "small", "span", "strong", "summary", "table",
    "tbody", "td", "textarea", "th", "thead", "time", "tr", "ul",
  ]);
  const ATTRS = new Set([
    "accept", "autocomplete", "checked", "class", "colspan", "datetime", "disabled", "download",
    "for", "hidden", "href", "id", "inputmode", "max", "maxlength", "min", "multiple", "name",
    "novalidate", "placeholder", "readonly", "required", "role", "rows", "scope", "selected", "spellcheck",
    "step", "tabindex", "title", "type", "value",
  ]);
  // Links go only to this page's routes or to the node's API, with every
  // variable part percent-encoded by enc(): no scheme, no quote, no space.
  const SAFE_HREF = /^(#\/[A-Za-z0-9/_\-.~%]*|\/api\/[A-Za-z0-9/_\-.~%]+(\?[A-Za-z0-9_\-.~%=&]*)?)$/;
  // Or an absolute http(s) URL elsewhere (a learning resource, a link in a
  // comment): parsed by URL(), no user name or password; h() itself opens it
  // in a new tab without opener, referrer or endorsement (rel, target).
  function externalHref(v) {
    if (!/^https?:\/\/[^\s]/i.test(v) || /[\u0000-\u0020\u007f-\u009f]/.test(v)) return null;
    if (v.replace(/^https?:\/\//i, "").split(/[/?#\\]/)[0].includes("@")) return null;  // a user name
    let u;
    try { u = new URL(v); } catch (e) { return null; }
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    if (u.username || u.password || !u.hostname) return null;
    return u.href;
  }

  function enc(s) {
    return encodeURIComponent(String(s)).replace(
      /[!'()*]/g,
      (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
    );
  }

  function h(tag, attrs, ...kids) {
    if (!TAGS.has(tag)) throw new Error("h: refused element " + tag);
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "listen") {
        for (const [ev, fn] of Object.entries(v)) {
          if (typeof fn !== "function") throw new Error("h: a listener must be a function");
          el.addEventListener(ev, fn);
        }
      } else if (k.startsWith("aria-") && /^aria-[a-z]+$/.test(k)) {
        el.setAttribute(k, String(v));
      } else if (!ATTRS.has(k)) {
        throw new Error("h: refused attribute " + k);
      } else if (k === "href") {
        if (typeof v !== "string") throw new Error("h: refused link");
        const ext = SAFE_HREF.test(v) ? null : externalHref(v);
        if (!SAFE_HREF.test(v) && ext === null) throw new Error("h: refused link");
        el.setAttribute("href", ext === null ? v : ext);
        if (ext !== null) {
          el.setAttribute("rel", "noopener noreferrer nofollow");
          el.setAttribute("target", "_blank");
        }
      } else if (k === "value") {
        el.value = String(v);
      } else if (k === "checked" || k === "disabled" || k === "selected") {
        el[k] = Boolean(v);
      } else if (k === "class") {
        el.className = String(v);
      } else {
        el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    add(el, kids);
    return el;
  }

  function add(el, kids) {
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      if (Array.isArray(k)) add(el, k);
      else if (k instanceof Node) el.appendChild(k);
      else el.appendChild(document.createTextNode(String(k)));
    }
  }

  const $ = (id) => document.getElementById(id);
  const put = (el, ...kids) => { el.replaceChildren(); add(el, kids); return el; };

  // ---------------------------------------------------------------- format

  function short(acct) {
    const s = String(acct || "");
    return s.length > 16 ? s.slice(0, 10) + "…" + s.slice(-4) : s;
  }
  function amount(n) {
    return Number(n).toLocaleString("en-US") + (Number(n) === 1 ? " token" : " tokens");
  }
  function when(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "unknown time";
    return new Date(ms).toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    });
  }
  function span(ms) {
    let s = Math.max(0, Math.round(ms / 1000));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const hh = Math.floor(s / 3600); s -= hh * 3600;
    const m = Math.floor(s / 60);
    if (d > 0) return `${d} d ${hh} h`;
    if (hh > 0) return `${hh} h ${m} min`;
    if (m > 0) return `${m} min`;
    return "under a minute";
  }
  function bytes(n) {
    if (n >= 1024 * 1024) return (n / 1024 / 1024).toFixed(n % (1024 * 1024) ? 1 : 0) + " MiB";
    if (n >= 1024) return (n / 1024).toFixed(n % 1024 ? 1 : 0) + " KiB";
    return n + " bytes";
  }
  // A countdown: a span the ticker below keeps current.
  function countdown(ms, before, after) {
    const el = h("span", { class: "countdown" });
    el.lmDeadline = { ms, before, after };
    tick(el);
    return el;
  }
  function tick(el) {
    const { ms, before, after } = el.lmDeadline;
    const left = ms - Date.now();
    el.textContent = left > 0 ? `${before} ${span(left)}` : after;
    el.classList.toggle("soon", left > 0 && left < 86400000);
  }
  setInterval(() => document.querySelectorAll(".countdown").forEach((el) => el.lmDeadline && tick(el)), 10000);

  const PHASES = {
    open: "Open", awaiting_close: "Awaiting close", closed: "In review", awarded: "Awarded",
    refunded: "Refunded", abandoned: "Abandoned",
  };
  const ACTIONS = {
    submit: "submit your work", close: "close submissions", award: "award the work",
    refund: "refund the bounty", review: "review a submission",
  };
  const KINDS = {
    profile: "Profile published", bounty: "Bounty posted", commit: "Work committed", close: "Submissions closed",
    reveal: "Work revealed", review: "Review sent", award: "Bounty awarded", refund: "Bounty refunded",
    transfer: "Tokens sent", vouch: "Vouch published",
  };
  const phaseBadge = (b) => h("span", { class: "badge phase-" + (PHASES[b.status] ? b.status : "other") },
    PHASES[b.status] || String(b.status || b.phase));

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  function newKey() {
    const a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.from(a, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  // Every non-GET carries the CSRF header and an idempotency key: one key per
  // user action, so a repeated request authors nothing new.
  async function api(method, path, body, key) {
    const headers = { Accept: "application/json" };
    const opts = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") {
      headers["X-Learnmesh-CSRF"] = "1";
      headers["Idempotency-Key"] = key || newKey();
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body === undefined ? {} : body);
    }
    let r;
    try {
      r = await fetch(path, opts);
    } catch (e) {
      nodeDown();
      throw new ApiError(0, "unreachable", "The node is not answering (is it running?). Try again in a moment.");
    }
    if (S.down && (!stream || stream.readyState === 1)) nodeUp();
    let data = null;
    if ((r.headers.get("content-type") || "").startsWith("application/json")) {
      try { data = await r.json(); } catch (e) { data = null; }
    }
    if (!r.ok) {
      const code = data && typeof data.error === "string" ? data.error : "http_" + r.status;
      const msg = data && typeof data.message === "string" ? data.message
        : `The node answered ${r.status} ${r.statusText}.`;
      if (r.status === 401 && path !== "/api/session") sessionGone();
      throw new ApiError(r.status, code, msg);
    }
    return data;
  }
  const get = (path) => api("GET", path);
  const post = (keyFor, path, body) => api("POST", path, body, keyFor(path + " " + JSON.stringify(body)));
  const missing = (e) => e instanceof ApiError && (e.status === 404 || e.status === 405) && !/no such/i.test(e.message);

  // ---------------------------------------------------------------- state

  const S = {
    me: null,          // GET /api/me
    view: null,        // the current view: {el, refresh()}
    filters: { q: "", skill: "", phase: "", min_reward: "" },
    names: new Map(),  // account -> Promise<name|null>
    down: false,
    loggedIn: false,
    loginError: null,  // a spent login link's message, shown once
    lastBounty: null,  // the bounty the bounty view fetched last (for its sections)
  };

  async function loadMe() {
    let me;
    try {
      me = await get("/api/me");
    } catch (e) {
      if (!missing(e)) throw e;
      // An older node: build the same shape from the routes it has.
      const [st, bal, rep] = await Promise.all([get("/api/status"), get("/api/balance"), get("/api/reputation")]);
      me = {
        account: st.account, name: null, balance: bal.balance, spendable: bal.spendable,
        reputation: (rep.reputation || {})[st.account] || null, vouches_by_me: [], vouches_for_me: [],
        peer_id: st.peer_id, network: { name: st.network, id: st.network_id }, params: {},
      };
    }
    S.me = me;
    drawHeader();
    return me;
  }

  function param(name, dflt) {
    const v = S.me && S.me.params ? S.me.params[name] : undefined;
    return typeof v === "number" ? v : dflt;
  }

  function nameOf(acct) {
    if (!S.names.has(acct)) {
      S.names.set(acct, get("/api/profiles/" + enc(acct)).then(
        (p) => (p && typeof p.name === "string" && p.name ? p.name : null),
        () => null,
      ));
    }
    return S.names.get(acct);
  }
  // A link to a profile: the short account at once, the name when known.
  function who(acct, known) {
    const a = h("a", { href: "#/profile/" + enc(acct), class: "who", title: String(acct) },
      known || (S.me && acct === S.me.account ? "you" : short(acct)));
    if (!known && !(S.me && acct === S.me.account)) {
      nameOf(acct).then((n) => { if (n) a.textContent = n; });
    }
    return a;
  }

  // ---------------------------------------------------------------- chrome

  const NAV = [
    ["bounties", "Bounties"], ["post", "Post a bounty"], ["work", "My work"],
    ["account", "Account"], ["credentials", "Credentials"], ["network", "Network"],
  ];

  // Feature scripts (node/static/*.js, listed in index.html after this file)
  // add views and bounty sections through window.LM below; they draw with the
  // same h() and talk to the node with the same api(), so there is still one
  // rendering path.
  const EXTRA_VIEWS = new Map();  // route name -> (arg) => view
  const BOUNTY_SECTIONS = [];     // (bountyId) => {el, refresh(bounty)}
  const PROFILE_SECTIONS = [];    // (account) => {el, refresh()}

  let headerSig = null;
  function drawHeader() {
    const me = S.me;
    const cur = currentRoute()[0];
    const sig = JSON.stringify([S.loggedIn, cur, me && [me.network, me.balance, me.name, me.account]]);
    if (sig === headerSig) return;  // unchanged: keep the nodes (and the focus)
    headerSig = sig;
    put($("net"), me && me.network ? me.network.name : "");
    put($("nav"), S.loggedIn ? NAV.map(([r, label]) =>
      h("a", { href: "#/" + r, class: cur === r ? "current" : null, "aria-current": cur === r ? "page" : null }, label)) : []);
    put($("wallet"), me ? [
      h("a", { href: "#/account", class: "balance", title: "Your balance" },
        h("strong", { id: "balance" }, Number(me.balance).toLocaleString("en-US")), " tokens"),
      h("span", { class: "me-name" }, me.name || short(me.account)),
    ] : []);
  }

  let toastTimer = 0;
  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
  }

  let bannerTimer = 0;
  function nodeDown() {
    if (!S.loggedIn) return;
    S.down = true;
    clearTimeout(bannerTimer);
    const b = $("banner");
    b.className = "banner down";
    b.textContent = "The node is unreachable, retrying… What you see may be out of date.";
    b.hidden = false;
  }
  function nodeUp() {
    if (!S.down) return;
    S.down = false;
    const b = $("banner");
    b.className = "banner up";
    b.textContent = "Connected to the node again.";
    b.hidden = false;
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => { b.hidden = true; }, 6000);
    scheduleRefresh();
  }

  // ---------------------------------------------------------------- login

  function showLogin(message) {
    S.loggedIn = false;
    S.me = null;
    if (stream) { stream.close(); stream = null; }
    drawHeader();
    $("banner").hidden = true;
    put($("main"), h("section", { class: "card narrow login" },
      h("h1", {}, "Sign in to your node"),
      message ? h("p", { class: "err", role: "alert", id: "login-error" }, message) : null,
      h("p", {}, "This page talks to the learnmesh node on this computer. To open it, run this in a terminal:"),
      h("pre", { class: "cmd" }, "learnmesh web"),
      h("p", { class: "muted" }, "and open the link it prints. A link works once, for two minutes; "
        + "your session then lasts until you log out or the node restarts."),
    ));
  }

  function sessionGone() {
    if (S.loggedIn) showLogin("Your session has ended (the node may have restarted). Run `learnmesh web` for a new link.");
  }

  // The fragment `#login=<code>`: exchange it for a session cookie, then leave
  // the address (and the history entry) without it.
  async function tryLogin() {
    const frag = new URLSearchParams(location.hash.slice(1));
    const code = frag.get("login");
    if (code === null) return false;
    try {
      await api("POST", "/api/session", { code });
    } catch (e) {
      // A spent link: say so, and keep a session this browser may still hold.
      history.replaceState(null, "", "/");
      S.loginError = e.message;
      start();
      return true;
    }
    location.replace("/");
    return true;
  }

  async function logout(btn) {
    btn.disabled = true;
    try { await api("POST", "/api/logout", {}); } catch (e) { /* the session is gone either way */ }
    showLogin("You are logged out.");
  }

  // ---------------------------------------------------------------- live updates

  let stream = null;
  let pollTimer = 0;
  function openStream() {
    if (stream) stream.close();
    if (typeof EventSource === "undefined") { poll(); return; }
    stream = new EventSource("/api/stream");
    stream.addEventListener("change", () => scheduleRefresh());
    stream.onopen = () => nodeUp();
    stream.onerror = () => {
      if (!stream) return;
      if (stream.readyState === EventSource.CLOSED) {
        // Refused rather than dropped: find out why.
        stream = null;
        get("/api/me").then(() => poll(), () => { setTimeout(() => S.loggedIn && openStream(), 3000); });
      } else {
        nodeDown();
      }
    };
  }
  function poll() {  // a node without /api/stream
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      if (!S.loggedIn) return;
      try { await refreshAll(); nodeUp(); } catch (e) { /* shown by api() */ }
      poll();
    }, 5000);
  }

  let refreshTimer = 0;
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => refreshAll().catch(() => {}), 200);
  }
  async function refreshAll() {
    if (!S.loggedIn) return;
    await loadMe();
    if (S.view && S.view.refresh) await S.view.refresh();
  }

  // ---------------------------------------------------------------- forms

  class FormError extends Error {}

  function readInt(input, label, lo, hi) {
    const s = input.value.trim();
    const range = hi === undefined ? `≥ ${lo}` : `in ${lo}..${hi}`;
    if (s === "") throw new FormError(`${label} is required`, input);
    if (!/^[0-9]+$/.test(s)) throw new FormError(`${label} must be an integer ${range} (digits only)`);
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < lo || (hi !== undefined && n > hi)) {
      throw new FormError(`${label} must be an integer ${range}`);
    }
    return n;
  }
  function readText(input, label, lo, hi, { blank = true } = {}) {
    const v = input.value;
    if (!blank && lo > 0 && v.trim() === "") throw new FormError(`${label} must not be blank`);
    if (v.length < lo || v.length > hi) throw new FormError(`${label} must be text of ${lo}..${hi} characters`);
    return v;
  }
  function readSkills(input) {
    const list = input.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (list.length > 16) throw new FormError("skills must be a list of at most 16 tags");
    if (list.some((s) => s.length > 32)) throw new FormError("each skill is 1..32 characters");
    if (new Set(list).size !== list.length) throw new FormError("skills must not repeat");
    return list;
  }
  function readAccount(input, label) {
    const v = input.value.trim();
    if (!v) throw new FormError(`${label} is required`);
    if (!/^lm[A-Za-z0-9]+$/.test(v)) throw new FormError(`${label} must be an account id (lm…)`);
    return v;
  }

  // A form's error box: shown on failure, cleared on success or a new try.
  function errBox() { return h("div", { class: "err", role: "alert", hidden: true }); }
  function showErr(box, msg) { box.textContent = msg; box.hidden = false; }
  function clearErr(box) { box.textContent = ""; box.hidden = true; }

  // Run one user action: the button is disabled while it runs; the error box
  // says what went wrong in the node's words.
  //
  // Each action has one idempotency key until it succeeds: a retry of the same
  // request (say, after the connection dropped before the answer came) gets
  // the node's first answer instead of acting twice; a changed request is a
  // new action with a new key.
  const keys = new WeakMap();  // button -> {fp, key}
  async function act(btn, box, fn) {
    if (btn.disabled || btn.lmBusy) return undefined;
    btn.lmBusy = true;
    btn.disabled = true;
    btn.classList.add("busy");
    clearErr(box);
    const keyFor = (fp) => {
      let k = keys.get(btn);
      if (!k || k.fp !== fp) { k = { fp, key: newKey() }; keys.set(btn, k); }
      return k.key;
    };
    try {
      const res = await fn(keyFor);
      keys.delete(btn);
      return res;
    } catch (e) {
      showErr(box, e.message || String(e));
      return undefined;
    } finally {
      btn.lmBusy = false;
      btn.disabled = false;
      btn.classList.remove("busy");
    }
  }

  function field(label, input, hint) {
    const id = input.id || "f-" + newKey().slice(0, 8);
    input.id = id;
    return h("div", { class: "field" }, h("label", { for: id }, label), input,
      hint ? h("small", { class: "hint" }, hint) : null);
  }
  const intInput = (name, value) => h("input", { type: "text", inputmode: "numeric", name, value, autocomplete: "off" });

  function localInput(ms) {  // a datetime-local value for a time in ms
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }
  function readWhen(input, label) {
    if (!input.value) throw new FormError(`${label} is required`);
    const ms = new Date(input.value).getTime();
    if (!isFinite(ms)) throw new FormError(`${label} is not a valid date and time`);
    return ms;
  }

  function readFileB64(file) {
    return new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ""));
      r.onerror = () => reject(new FormError(`could not read ${file.name}`));
      r.readAsDataURL(file);
    });
  }

  // ---------------------------------------------------------------- views

  function card(...kids) { return h("section", { class: "card" }, ...kids); }
  function empty(text) { return h("p", { class: "empty" }, text); }
  function loading() { return h("p", { class: "muted" }, "Loading…"); }
  function chips(list) {
    return list && list.length ? h("ul", { class: "chips" }, list.map((s) => h("li", { class: "chip" }, s))) : null;
  }
  // An outside resource: a link if h() takes absolute http(s) links, else its
  // title and address as plain text (never a link h() has not checked).
  function resourceLink(r) {
    try { return h("a", { href: r.url, class: "ext" }, r.title); } catch (e) {
      return h("span", {}, r.title, " ", h("code", {}, r.url));
    }
  }
  function failBox(e) { return h("p", { class: "err", role: "alert" }, e.message || String(e)); }

  // Moderation (node/static/moderation.js has the rest): an item the node marks
  // hidden (its author blocked on this node, or hidden by community flags) is
  // greyed out with the reason and a "Show anyway" toggle, never dropped.
  function moderated(el, item) {
    el.classList.remove("moderated");
    if (!item || item.hidden !== true) return el;
    const inner = h("div", { class: "moderated-body", hidden: true }, Array.from(el.childNodes));
    inner.style.opacity = "0.55";
    const label = item.hidden_by === "block" ? "you blocked this author" : "hidden by community flags";
    const btn = h("button", { type: "button", class: "link show-anyway" }, "Show anyway");
    btn.addEventListener("click", () => { inner.hidden = !inner.hidden; btn.textContent = inner.hidden ? "Show anyway" : "Hide"; });
    el.classList.add("moderated");
    el.append(h("p", { class: "muted hidden-note", title: String(item.hidden_why || "") }, label, " · ", btn), inner);
    return el;
  }

  // One bounty in a list.
  function bountyItem(b) {
    const me = S.me ? S.me.account : null;
    const deadline = b.phase === "open" && b.status === "open"
      ? countdown(b.submit_by, "submissions close in", "submissions closed")
      : b.phase === "closed" ? countdown(b.review_by, "reviews close in", "review deadline passed") : null;
    return moderated(h("li", { class: "bounty" },
      h("div", { class: "bounty-head" },
        h("a", { href: "#/bounty/" + enc(b.id), class: "bounty-title" }, b.title),
        h("span", { class: "badges" },
          b.my_role ? h("span", { class: "badge role" }, "you: " + b.my_role) : null,
          phaseBadge(b))),
      h("div", { class: "bounty-meta" },
        h("span", { class: "reward" }, amount(b.reward)),
        h("span", {}, "by ", who(b.author, b.author === me ? "you" : b.author_name || null)),
        deadline ? h("span", {}, deadline) : null,
        h("span", { class: "muted" }, `${b.commits} committed · ${b.submissions} revealed`)),
      chips(b.skills),
      b.next_action === "submit" ? h("p", { class: "hint" }, "Open to you: submit your work before the deadline.")
        : b.next_action ? h("p", { class: "next" }, "Waiting on you: " + (ACTIONS[b.next_action] || b.next_action)) : null,
    ), b);
  }

  function bountyQuery(f) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v !== "" && v !== null && v !== undefined) q.set(k, String(v));
    const s = q.toString();
    return "/api/bounties" + (s ? "?" + s : "");
  }

  // -- the bounties list, with search and filters
  function viewBounties() {
    const f = S.filters;
    const q = h("input", { type: "search", name: "q", value: f.q, placeholder: "Search titles and descriptions", autocomplete: "off" });
    const skill = h("input", { type: "text", name: "skill", value: f.skill, placeholder: "e.g. python", autocomplete: "off" });
    const phase = h("select", { name: "phase" },
      h("option", { value: "" }, "Any phase"),
      Object.entries(PHASES).map(([k, v]) => h("option", { value: k, selected: f.phase === k }, v)));
    phase.value = f.phase;
    const sort = h("select", { name: "sort" },
      h("option", { value: "new" }, "Newest first"),
      h("option", { value: "deadline" }, "Deadline soonest"),
      h("option", { value: "reward" }, "Highest reward"));
    sort.value = S.sort || "new";
    const minReward = intInput("min_reward", f.min_reward);
    minReward.placeholder = "0";
    const box = errBox();
    const list = h("div", { class: "list" }, loading());
    const count = h("p", { class: "muted count" });
    let timer = 0;
    let lastSig = null;
    const changed = () => { clearTimeout(timer); timer = setTimeout(refresh, 250); };
    for (const el of [q, skill, minReward]) el.addEventListener("input", changed);
    phase.addEventListener("change", changed);
    sort.addEventListener("change", () => { S.sort = sort.value; changed(); });
    const form = h("form", { class: "filters", role: "search", listen: { submit: (e) => { e.preventDefault(); refresh(); } } },
      field("Search", q), field("Skill", skill), field("Phase", phase), field("Min. reward", minReward), field("Sort", sort), box);

    async function refresh() {
      let min = "";
      try {
        if (minReward.value.trim() !== "") min = readInt(minReward, "Min. reward", 0);
        clearErr(box);
      } catch (e) { showErr(box, e.message); return; }
      Object.assign(f, { q: q.value.trim(), skill: skill.value.trim(), phase: phase.value, min_reward: min === "" ? "" : String(min) });
      let data;
      try { data = await get(bountyQuery(f)); } catch (e) { lastSig = null; put(list, failBox(e)); return; }
      // The node filters; these checks only keep a node that ignores a filter honest.
      const rows = (data.bounties || []).filter((b) =>
        (!f.skill || (b.skills || []).includes(f.skill))
        && (!f.phase || b.phase === f.phase || b.status === f.phase)
        && (f.min_reward === "" || b.reward >= Number(f.min_reward)));
      const next = (b) => (b.phase === "open" ? b.submit_by : b.phase === "closed" ? b.review_by : Infinity);
      const passed = (b) => (next(b) < Date.now() ? 1 : 0);  // passed deadlines go last
      if (sort.value === "deadline") rows.sort((x, y) => passed(x) - passed(y) || next(x) - next(y));
      else if (sort.value === "reward") rows.sort((x, y) => y.reward - x.reward);
      const sig = JSON.stringify([rows, sort.value, f]);
      if (sig === lastSig) return;
      lastSig = sig;
      count.textContent = rows.length === 1 ? "1 bounty" : `${rows.length} bounties`;
      put(list, rows.length ? h("ul", { class: "bounties" }, rows.map(bountyItem))
        : empty(Object.values(f).some(Boolean) ? "No bounty matches these filters." : "No bounties yet. Post the first one!"));
    }
    const el = h("div", { class: "page" },
      h("div", { class: "page-head" }, h("h1", {}, "Bounties"), h("a", { href: "#/post", class: "button primary" }, "Post a bounty")),
      card(form), count, list);
    return { el, refresh, title: "Bounties" };
  }

  // -- post a bounty
  function viewPost() {
    const box = errBox();
    const title = h("input", { type: "text", name: "title", maxlength: 200, required: true, autocomplete: "off" });
    const desc = h("textarea", { name: "description", rows: 6, maxlength: 8000 });
    const skills = h("input", { type: "text", name: "skills", placeholder: "python, writing", autocomplete: "off" });
    const reward = intInput("reward", "100");
    const share = intInput("reviewer_share", "10");
    const quorum = intInput("quorum", String(Math.max(1, param("min_quorum", 1))));
    const minTrust = h("input", { type: "text", name: "min_reviewer_trust", inputmode: "decimal", value: "0", autocomplete: "off" });
    const submitBy = h("input", { type: "datetime-local", name: "submit_by", required: true, value: localInput(Date.now() + 7 * 86400000) });
    const reviewBy = h("input", { type: "datetime-local", name: "review_by", required: true, value: localInput(Date.now() + 14 * 86400000) });
    const shareNote = h("p", { class: "hint note", id: "share-note" });
    const prereqSel = h("select", { name: "prereq_bounties", id: "prereq-bounties", multiple: true });
    const prereqSkills = h("input", { type: "text", name: "prereq_skills", placeholder: "sql, statistics", autocomplete: "off" });
    const resRows = h("tbody", { id: "resource-rows" });
    get("/api/bounties").then((d) => put(prereqSel, (d.bounties || []).map((b) =>
      h("option", { value: b.id }, `${b.title} (${short(b.author)})`)))).catch(() => {});
    function addResource() {
      const t = h("input", { type: "text", name: "resource_title", maxlength: 200, placeholder: "Title", "aria-label": "Resource title", autocomplete: "off" });
      const u = h("input", { type: "text", name: "resource_url", maxlength: 500, placeholder: "https://…", "aria-label": "Resource address", autocomplete: "off" });
      const k = h("select", { name: "resource_kind", "aria-label": "Resource kind" },
        ["article", "video", "course", "book", "exercise", "other"].map((x) => h("option", { value: x }, x)));
      const l = h("input", { type: "text", name: "resource_licence", maxlength: 64, placeholder: "CC-BY-4.0", "aria-label": "Licence", autocomplete: "off" });
      const tr = h("tr", {}, h("td", {}, t), h("td", {}, u), h("td", {}, k), h("td", {}, l),
        h("td", {}, h("button", { type: "button", class: "link", "aria-label": "Remove resource", listen: { click: () => { tr.remove(); } } }, "Remove")));
      resRows.appendChild(tr);
    }
    const rows = h("tbody", {});
    const balanceNote = h("small", { class: "hint" });

    function addRow(name, max) {
      const n = h("input", { type: "text", name: "criterion", value: name, maxlength: 64, placeholder: "e.g. clarity", "aria-label": "Criterion name", autocomplete: "off" });
      const m = intInput("criterion_max", max);
      m.setAttribute("aria-label", "Maximum score");
      const tr = h("tr", {}, h("td", {}, n), h("td", { class: "num" }, m),
        h("td", {}, h("button", { type: "button", class: "link", "aria-label": "Remove criterion",
          listen: { click: () => { tr.remove(); } } }, "Remove")));
      rows.appendChild(tr);
    }
    addRow("correctness", "10");
    addRow("clarity", "10");

    function explain() {
      const r = /^[0-9]+$/.test(reward.value.trim()) ? Number(reward.value.trim()) : null;
      const p = /^[0-9]+$/.test(share.value.trim()) ? Number(share.value.trim()) : null;
      if (r === null || p === null || p > 50) {
        shareNote.textContent = "The reviewer share (0–50 % of the reward) pays the reviewers whose scores agree with the others'.";
        return;
      }
      const reserved = Math.floor(r * p * 100 / 10000);
      shareNote.textContent = `Reserves ${amount(reserved)} of the ${amount(r)} reward for reviewers whose scores are near the median; `
        + `at least ${amount(r - reserved)} goes to the work you award. What no honest review earns comes back to you.`;
    }
    reward.addEventListener("input", explain);
    share.addEventListener("input", explain);
    explain();
    balanceNote.textContent = S.me ? `You hold ${amount(S.me.balance)}; the reward is locked in escrow until you award or refund.` : "";

    const postBtn = h("button", { type: "submit", class: "primary", id: "post-button" }, "Post bounty");
    const form = h("form", { class: "card form", novalidate: true, listen: { submit: (e) => { e.preventDefault(); send(); } } },
      field("Title", title),
      field("Description", desc, "What should the learner do? Plain text."),
      field("Skills", skills, "Comma separated, up to 16 tags of at most 32 characters."),
      h("div", { class: "row" },
        field("Reward (tokens)", reward, balanceNote),
        field("Reviewer share (%)", share),
        field("Reviews wanted (quorum)", quorum)),
      shareNote,
      field("Minimum reviewer trust (%)", minTrust, "A review counts toward the quorum, and for a trust-weighted award, only if its reviewer holds at least this share of all trust in the bounty's skills. 0: every review counts. Published with the bounty, fixed once posted."),
      h("fieldset", { class: "terms" }, h("legend", {}, "Learning path"),
        field("Bounties to do first", prereqSel, "Optional; hold Ctrl (⌘) to pick several. Learners see which they have done."),
        field("Skills to have first", prereqSkills, "Optional, comma separated."),
        h("p", { class: "hint" }, "Resources for learners (open ones, with their licence, are best):"),
        h("table", { class: "resource-edit" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Title"), h("th", { scope: "col" }, "Address"), h("th", { scope: "col" }, "Kind"), h("th", { scope: "col" }, "Licence"), h("th", {}, ""))),
          resRows),
        h("button", { type: "button", class: "secondary", id: "add-resource", listen: { click: addResource } }, "Add resource")),
      h("fieldset", { class: "rubric" }, h("legend", {}, "Rubric"),
        h("p", { class: "hint" }, "Reviewers score each criterion from 0 to its maximum (1–100)."),
        h("table", { class: "rubric-edit" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Criterion"), h("th", { scope: "col" }, "Max"), h("th", {}, ""))),
          rows),
        h("button", { type: "button", class: "secondary", id: "add-criterion", listen: { click: () => addRow("", "10") } }, "Add criterion")),
      h("div", { class: "row" },
        field("Submission deadline", submitBy, "Learners commit their work before this."),
        field("Review deadline", reviewBy, "Reviews are accepted until this; award before it.")),
      box,
      h("div", { class: "actions" }, postBtn));

    async function send() {
      let body;
      try {
        const crit = [...rows.querySelectorAll("tr")].map((tr) => {
          const [n, m] = tr.querySelectorAll("input");
          const name = readText(n, "each criterion name", 1, 64, { blank: false });
          return { name, max: readInt(m, `the maximum for “${name}”`, 1, 100) };
        });
        if (!crit.length) throw new FormError("rubric needs at least one criterion");
        if (crit.length > 16) throw new FormError("rubric must be a list of at most 16 entries");
        if (new Set(crit.map((c) => c.name)).size !== crit.length) throw new FormError("rubric criteria names must be unique");
        const r = readInt(reward, "Reward", 1);
        if (S.me && r > S.me.balance) throw new FormError(`not enough balance: the reward is ${r} but you hold ${S.me.balance}`);
        const sb = readWhen(submitBy, "Submission deadline");
        const rb = readWhen(reviewBy, "Review deadline");
        if (sb <= Date.now()) throw new FormError("Submission deadline must be in the future");
        if (rb <= sb) throw new FormError("Review deadline must be after the submission deadline");
        const mt = minTrust.value.trim() || "0";
        if (!/^[0-9]{1,3}(\.[0-9]{1,4})?$/.test(mt) || Number(mt) > 100) {
          throw new FormError("Minimum reviewer trust must be a percent in 0..100 (at most 4 decimals)");
        }
        body = {
          title: readText(title, "Title", 1, 200, { blank: false }),
          description: readText(desc, "Description", 0, 8000),
          skills: readSkills(skills),
          reward: r,
          reviewer_share_bp: readInt(share, "Reviewer share (%)", 0, 50) * 100,
          quorum: readInt(quorum, "Reviews wanted (quorum)", Math.max(1, param("min_quorum", 1)), 16),
          rubric: crit,
          submit_by: sb,
          review_by: rb,
          min_reviewer_trust_ppm: Math.round(Number(mt) * 10000),
          prereq_bounties: [...prereqSel.selectedOptions].map((o) => o.value),
          prereq_skills: readSkills(prereqSkills),
          resources: [...resRows.querySelectorAll("tr")].map((tr) => {
            const [t, u, l] = tr.querySelectorAll("input");
            const title = readText(t, "each resource title", 1, 200, { blank: false });
            const url = readText(u, `the address of “${title}”`, 1, 500, { blank: false });
            if (!/^https?:\/\/[^\s"'<>]+$/.test(url)) throw new FormError(`the address of “${title}” must start with http:// or https://`);
            return { title, url, kind: tr.querySelector("select").value, licence: readText(l, "licence", 0, 64) };
          }),
        };
        if (body.prereq_bounties.length > 8 || body.prereq_skills.length > 8) throw new FormError("at most 8 prerequisite bounties and 8 prerequisite skills");
        if (body.resources.length > 16) throw new FormError("at most 16 resources");
      } catch (e) { showErr(box, e.message); return; }
      const res = await act(postBtn, box, (key) => post(key, "/api/bounties", body));
      if (res && res.id) {
        toast("Bounty posted; its reward is in escrow.");
        location.hash = "#/bounty/" + enc(res.id);
      }
    }
    const el = h("div", { class: "page narrow" }, h("h1", {}, "Post a bounty"), form);
    return { el, refresh: async () => { balanceNote.textContent = S.me ? `You hold ${amount(S.me.balance)}; the reward is locked in escrow until you award or refund.` : ""; }, title: "Post a bounty" };
  }

  // -- one bounty
  function viewBounty(id) {
    const head = h("div", {}, loading());
    const actions = h("div", { class: "actions-area" });
    const body = h("div", {});
    let actionKey = null;
    let lastSig = null;
    let awardInfo = null;  // redraws the Award form's list of paid reviews
    const reviewForms = new Map();
    const pctOf = (ppm) => (Number(ppm || 0) / 10000).toFixed(2) + " %";

    async function refresh() {
      let b;
      try { b = await get("/api/bounties/" + enc(id)); } catch (e) { lastSig = null; S.lastBounty = null; put(head, failBox(e)); put(body); put(actions); return; }
      S.lastBounty = b;
      // A change elsewhere in the network need not redraw this bounty.
      const sig = JSON.stringify([b, S.me.account]);
      if (sig === lastSig) return;
      lastSig = sig;
      drawBounty(b);
    }

    function drawBounty(b) {
      const me = S.me.account;
      const mentor = b.author === me;
      const subs = b.submissions_detail || [];
      const rubric = b.rubric || [];
      const share = Math.floor(b.reward * b.reviewer_share_bp / 10000);
      put(head,
        h("div", { class: "page-head" }, h("h1", { class: "bounty-h1" }, b.title), phaseBadge(b)),
        h("div", { class: "bounty-meta" },
          h("span", { class: "reward" }, amount(b.reward)),
          h("span", {}, "posted by ", who(b.author, mentor ? "you" : b.author_name || null), " · ", when(b.posted_at))),
        chips(b.skills),
        card(
          h("dl", { class: "facts" },
            h("dt", {}, "Submissions close"), h("dd", {}, when(b.submit_by), " ",
              b.phase === "open" ? h("span", { class: "muted" }, "(", countdown(b.submit_by, "in", "passed"), ")") : null),
            h("dt", {}, "Reviews close"), h("dd", {}, when(b.review_by), " ",
              b.phase === "open" || b.phase === "closed" ? h("span", { class: "muted" }, "(", countdown(b.review_by, "in", "passed"), ")") : null),
            h("dt", {}, "Reviewer share"), h("dd", {}, `${b.reviewer_share_bp / 100} % (${amount(share)})`),
            h("dt", {}, "Escrow"), h("dd", {}, amount(b.escrow)),
            h("dt", {}, "Learners committed"), h("dd", {}, String(b.commits)),
            h("dt", {}, "Reviews wanted"), h("dd", {}, String(b.quorum)),
            b.review_trust && b.review_trust.min_reviewer_trust_ppm ? [h("dt", {}, "Minimum reviewer trust"),
              h("dd", { id: "min-reviewer-trust" }, `${pctOf(b.review_trust.min_reviewer_trust_ppm)} of all trust in its skills (reviews by others do not count toward the quorum)`)] : null),
          b.description ? h("p", { class: "text" }, b.description) : h("p", { class: "muted" }, "No description."),
          drawTerms(b.terms),
          h("h2", {}, "Rubric"),
          h("table", { class: "scores" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Criterion"), h("th", { scope: "col", class: "num" }, "Max"))),
            h("tbody", {}, rubric.map((c) => h("tr", {}, h("td", {}, c.name), h("td", { class: "num" }, String(c.max))))))));
      moderated(head, b);

      // The actions panel is redrawn only when what it offers changes, so a
      // live update never wipes what the user is typing.
      const myCommit = typeof b.my_commit === "object" && b.my_commit ? b.my_commit
        : Object.entries(b.commit_ids || {}).filter(([, a]) => a === me).map(([c]) => ({ id: c }))[0] || null;
      const reviewedByMe = new Set(subs.filter((s) => (s.reviews || []).some((r) => r.reviewer === me)).map((s) => s.id));
      const key = JSON.stringify([b.phase, b.status, b.commits, mentor, myCommit && myCommit.id, subs.map((s) => s.id), [...reviewedByMe]]);
      if (key !== actionKey) {
        actionKey = key;
        awardInfo = null;
        put(actions, drawActions(b, mentor, myCommit, subs));
      }
      if (awardInfo) awardInfo(b);

      put(body,
        h("h2", {}, subs.length ? `Submissions (${subs.length})` : "Submissions"),
        subs.length ? subs.map((s) => drawSubmission(b, s, mentor, reviewedByMe.has(s.id)))
          : empty(b.phase === "open" ? "Work stays sealed until the mentor closes submissions; then each learner's node reveals it."
            : "No work was revealed for this bounty."));
    }

    // The bounty's terms (PROTOCOL.md §6.6): prerequisites and the mentor's resources.
    function drawTerms(t) {
      if (!t) return null;
      const pre = (t.prereq_bounties || []).map((p) => h("li", {}, h("a", { href: "#/bounty/" + enc(p.id) }, p.title || short(p.id))));
      const skills = (t.prereq_skills || []).map((x) => h("li", {}, "skill: ", x));
      const res = t.resources || [];
      return h("div", { class: "terms", id: "bounty-terms" },
        pre.length || skills.length ? [h("h2", {}, "Do first"), h("ul", { class: "plain prereqs" }, pre, skills)] : null,
        res.length ? [h("h2", {}, "Resources"), h("ul", { class: "plain resources" }, res.map((r) =>
          h("li", {}, resourceLink(r), " ", h("span", { class: "muted" }, `(${r.kind}, ${r.licence || "licence unknown"})`))))] : null);
    }

    function drawActions(b, mentor, myCommit, subs) {
      const now = Date.now();
      if (b.phase === "awarded" || b.phase === "refunded") {
        return card(h("p", { class: "settled" }, b.phase === "awarded" ? "This bounty is settled: the mentor awarded it." : "This bounty is settled: the mentor refunded it."));
      }
      const out = [];
      if (mentor) {
        out.push(mentorActions(b, subs));
      } else if (myCommit) {
        const t = myCommit.time ?? myCommit.at ?? myCommit.timestamp;
        out.push(card(h("p", { class: "done", id: "committed" },
          typeof t === "number" ? `You committed at ${when(t)}.` : "You committed your work.",
          " ", b.phase === "open" ? "Your node reveals it by itself once the mentor closes submissions." : "")));
      } else if (b.phase === "open" && now <= b.submit_by) {
        out.push(submitForm(b));
      } else if (b.phase === "open") {
        out.push(card(h("p", { class: "muted" }, "Submissions are closed; the mentor has not closed the bounty yet.")));
      }
      if (!mentor && b.phase === "closed" && now > b.review_by) {
        out.push(card(h("p", { class: "muted" }, "The review deadline has passed.")));
      }
      return out;
    }

    function submitForm(b) {
      const box = errBox();
      const limit = param("max_blob_bytes", 8 * 1024 * 1024);
      const text = h("textarea", { name: "text", rows: 8, maxlength: 16000, id: "submit-text" });
      const files = h("input", { type: "file", name: "files", multiple: true, id: "submit-files" });
      const btn = h("button", { type: "submit", class: "primary", id: "submit-button" }, "Commit my work");
      async function send() {
        let payload;
        try {
          const t = readText(text, "Your work", 0, 16000);
          const fl = [...files.files];
          if (fl.length > 16) throw new FormError("attachments must be a list of at most 16 entries");
          for (const f of fl) if (f.size > limit) throw new FormError(`${f.name} is over the network's attachment limit (${bytes(limit)})`);
          if (!t.trim() && !fl.length) throw new FormError("Write something or attach a file");
          payload = { t, fl };
        } catch (e) { showErr(box, e.message); return; }
        const res = await act(btn, box, async (key) => {
          const enc64 = await Promise.all(payload.fl.map(async (f) => ({ name: f.name, data_b64: await readFileB64(f) })));
          return post(key, "/api/submit", { bounty: b.id, text: payload.t, files: enc64 });
        });
        if (res) { toast("Committed. Your work stays sealed until the mentor closes submissions."); actionKey = null; lastSig = null; await refresh(); }
      }
      return h("form", { class: "card form", id: "submit-form", novalidate: true, listen: { submit: (e) => { e.preventDefault(); send(); } } },
        h("h2", {}, "Submit your work"),
        h("p", { class: "hint" }, "Your node commits a sealed fingerprint now and reveals the work after the mentor closes submissions, so nobody can copy it before the deadline."),
        field("Your work", text),
        field("Attachments", files, `Up to 16 files, each at most ${bytes(limit)} (this network's limit).`),
        box, h("div", { class: "actions" }, btn));
    }

    function mentorActions(b, subs) {
      const box = errBox();
      const parts = [h("h2", {}, "Your bounty")];
      const refundBtn = h("button", { type: "button", class: "danger", id: "refund-button" }, "Refund");
      let armed = false;
      refundBtn.addEventListener("click", async () => {
        if (!armed) { armed = true; refundBtn.textContent = "Confirm refund"; return; }
        const res = await act(refundBtn, box, (key) => post(key, `/api/bounties/${enc(b.id)}/refund`, {}));
        if (res) { toast("Refunded: the escrow is back in your balance."); actionKey = null; lastSig = null; await refreshAll(); }
      });
      if (b.phase === "open") {
        const closeBtn = h("button", { type: "button", class: "primary", id: "close-button" },
          b.commits ? `Close submissions (${b.commits} committed)` : "Close submissions");
        closeBtn.addEventListener("click", async () => {
          const res = await act(closeBtn, box, (key) => post(key, `/api/bounties/${enc(b.id)}/close`, {}));
          if (res) { toast("Closed. Learners' nodes now reveal their work."); actionKey = null; lastSig = null; await refresh(); }
        });
        parts.push(h("p", { class: "hint" }, "Closing accepts every commit so far; each learner's node then reveals its work for review. Refunding cancels the bounty and returns the escrow."),
          h("div", { class: "actions" }, closeBtn, refundBtn));
      } else if (b.phase === "closed") {
        const share = Math.floor(b.reward * b.reviewer_share_bp / 10000);
        const reviewed = subs.some((s) => (s.reviews || []).length);
        const boxes = subs.map((s) => {
          const cb = h("input", { type: "checkbox", name: "winner", value: s.id, checked: true, "aria-label": "Award this work" });
          const cnt = h("span", {}, ` · ${(s.reviews || []).length} review(s)`);
          const amt = intInput("winner_amount", "");
          amt.placeholder = "even split";
          amt.setAttribute("aria-label", "Amount for this work (blank: an even split of the rest)");
          const row = h("div", { class: "winner" },
            h("label", { class: "check" }, cb, h("span", {}, "work by ", who(s.learner), cnt)),
            amt);
          return { s, cb, amt, row, cnt };
        });
        const awardBtn = h("button", { type: "button", class: "primary", id: "award-button", disabled: !subs.length }, "Award");
        const note = h("p", { class: "hint", id: "award-note" });
        // Which reviews the reviewers' share pays: near the trust-weighted median
        // (suggested) or near the plain median; the node says which, and why.
        const rule = h("select", { name: "reviewers", id: "award-reviewers" },
          h("option", { value: "trusted", selected: true }, "near the trust-weighted median (suggested)"),
          h("option", { value: "median" }, "near the plain median"));
        const payList = h("div", { id: "award-reviews" });
        const ruleField = h("div", { hidden: !reviewed }, field("Pay the reviews", rule));
        // Reviews arrive while the form is open: these follow the latest view.
        let rt = b.review_trust || null;
        let curSubs = subs;
        let reviewedNow = reviewed;
        const paidIds = () => (rt && rt.paid_by && rt.paid_by[rule.value]) || [];
        const reviewTotal = () => {
          if (!rt) return reviewedNow ? share : 0;
          const n = paidIds().length;
          return n ? Math.floor(share / n) * n : 0;
        };
        const poolOf = () => b.escrow - reviewTotal();
        const drawPay = () => {
          ruleField.hidden = !reviewedNow;
          if (!rt || !reviewedNow) { put(payList); return; }
          const trusted = rule.value === "trusted";
          const paid = new Set(paidIds());
          const each = paid.size ? Math.floor(share / paid.size) : 0;
          const rows = [];
          for (const s of curSubs) {
            const st = (rt.submissions || {})[s.id];
            if (!st || !(s.reviews || []).length) continue;
            rows.push(h("tr", { class: "sub-row" }, h("td", { colspan: 5 }, "Work by ", who(s.learner), " · ",
              st.weighted_median === null || st.weighted_median === undefined ? "no review counts"
                : `trust-weighted median ${st.weighted_median} ‰`,
              ` · ${st.counted} of ${b.quorum} wanted review(s) count`)));
            for (const r of s.reviews) {
              const j = (st.reviews || {})[r.id] || {};
              rows.push(h("tr", { class: paid.has(r.id) ? "paid" : "unpaid" },
                h("td", {}, who(r.reviewer)),
                h("td", { class: "num" }, `${j.total ?? "–"} ‰`),
                h("td", { class: "num" }, pctOf(j.weight_ppm)),
                h("td", { class: "num" }, paid.has(r.id) ? amount(each) : "not paid"),
                h("td", {}, trusted ? String(j.why || "") : (paid.has(r.id) ? "near the plain median" : "not near the plain median, or alone on its work"))));
            }
          }
          put(payList,
            h("p", { class: "hint" }, trusted
              ? `A review's weight is its reviewer's trust in this bounty's skills; the trust-weighted median is the score half the weight lies at or below. Reviews that count and are within ${rt.tolerance_pm} ‰ of it share the reviewers' ${amount(share)}.`
              : `Every review weighs the same; reviews within ${rt.tolerance_pm} ‰ of the median share the reviewers' ${amount(share)}.`),
            h("table", { class: "scores", id: "award-review-table" },
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Reviewer"), h("th", { scope: "col", class: "num" }, "Score"),
                h("th", { scope: "col", class: "num" }, "Weight (trust)"), h("th", { scope: "col", class: "num" }, "Paid"), h("th", { scope: "col" }, "Why"))),
              h("tbody", {}, rows)));
        };
        // The amounts the form asks for: {submission: amount or null (even split)}.
        const winnersOf = () => {
          const winners = {};
          let fixed = 0;
          for (const x of boxes) {
            if (!x.cb.checked) continue;
            if (x.amt.value.trim() === "") { winners[x.s.id] = null; continue; }
            const n = readInt(x.amt, "Each amount", 1);
            fixed += n;
            winners[x.s.id] = n;
          }
          if (!Object.keys(winners).length) throw new FormError("Choose at least one submission to award.");
          const pool = poolOf();
          if (fixed > pool) throw new FormError(`The amounts add up to ${fixed} but ${pool} is left after the reviewers' share`);
          return winners;
        };
        const explain = () => {
          let w;
          try { w = winnersOf(); } catch (e) { note.textContent = e.message; return; }
          const even = Object.values(w).filter((v) => v === null).length;
          const fixed = Object.values(w).reduce((t, v) => t + (v || 0), 0);
          const parts2 = [];
          if (fixed) parts2.push(`${amount(fixed)} as you set`);
          const pool = poolOf();
          if (even) parts2.push(`${amount(pool - fixed)} split evenly between ${even} submission(s)`);
          const back = even ? 0 : pool - fixed;
          const n = paidIds().length;
          const toReviews = reviewTotal();
          note.textContent = parts2.join(" and ")
            + (toReviews ? `; ${amount(toReviews)} to ${rt ? n : "the honest"} review(s)${rt ? (rule.value === "trusted" ? " near the trust-weighted median" : " near the median") : ""}` : "")
            + (back ? `; ${amount(back)} comes back to you.` : ".");
        };
        boxes.forEach((x) => { x.cb.addEventListener("change", explain); x.amt.addEventListener("input", explain); x.amt.addEventListener("change", explain); });
        rule.addEventListener("change", () => { drawPay(); explain(); });
        awardInfo = (nb) => {
          rt = nb.review_trust || null;
          curSubs = nb.submissions_detail || [];
          reviewedNow = curSubs.some((s) => (s.reviews || []).length);
          for (const x of boxes) {
            const now = curSubs.find((s) => s.id === x.s.id);
            if (now) x.cnt.textContent = ` · ${(now.reviews || []).length} review(s)`;
          }
          drawPay();
          explain();
        };
        drawPay();
        explain();
        awardBtn.addEventListener("click", async () => {
          let winners;
          try { winners = winnersOf(); } catch (e) { showErr(box, e.message); return; }
          const res = await act(awardBtn, box, (key) => post(key, `/api/bounties/${enc(b.id)}/award`, { winners, reviewers: rule.value }));
          if (res) { toast("Awarded. The learners and reviewers are paid."); actionKey = null; lastSig = null; await refreshAll(); }
        });
        parts.push(subs.length ? h("div", { class: "winners" }, h("p", {}, "Choose the work to award; leave an amount blank to split the rest evenly."), boxes.map((x) => x.row)) : empty("No work is revealed yet; award once it is, or refund."),
          ruleField, payList,
          note, h("div", { class: "actions" }, awardBtn, refundBtn));
      }
      parts.push(box);
      return card(...parts);
    }

    function drawSubmission(b, s, mentor, reviewedByMe) {
      const me = S.me.account;
      const rubric = b.rubric || [];
      const reviews = s.reviews || [];
      const canReview = !mentor && s.learner !== me && !reviewedByMe && b.phase === "closed" && Date.now() <= b.review_by;
      const st = b.review_trust && b.review_trust.submissions ? b.review_trust.submissions[s.id] : null;
      return moderated(h("article", { class: "card submission" },
        h("header", { class: "sub-head" },
          h("span", {}, "Work by ", who(s.learner)),
          s.awarded ? h("span", { class: "badge phase-awarded" }, "awarded " + amount(s.awarded)) : null),
        s.text ? h("p", { class: "text" }, s.text) : h("p", { class: "muted" }, "No text."),
        (s.attachments || []).length ? h("ul", { class: "files" }, s.attachments.map((a) =>
          h("li", {}, h("a", { href: `/api/blobs/${enc(a.hash)}?name=${enc(a.name)}`, download: a.name, class: "file" }, a.name),
            h("span", { class: "muted" }, " " + bytes(a.size) + (a.have === false ? " · not fetched yet" : ""))))) : null,
        st && reviews.length ? h("p", { class: "muted review-quorum" },
          `${st.counted} of ${b.quorum} wanted review(s) count`, st.quorum_met ? " (quorum met)" : " (quorum not met)",
          st.weighted_median === null || st.weighted_median === undefined ? "" : ` · trust-weighted median ${st.weighted_median} ‰`) : null,
        reviews.length ? h("div", { class: "reviews" }, reviews.map((r) => drawReview(rubric, r, st && st.reviews ? st.reviews[r.id] : null))) : null,
        reviewedByMe ? h("p", { class: "done" }, "You reviewed this submission.") : null,
        canReview ? keptReviewForm(b, s) : null), s);
    }

    function drawReview(rubric, r, j) {
      const sc = r.scores || {};
      return moderated(h("div", { class: "review" },
        h("p", {}, "Review by ", who(r.reviewer), r.paid ? h("span", { class: "muted" }, ` · paid ${amount(r.paid)}`) : null),
        j ? h("p", { class: "muted review-trust" }, `total ${j.total} ‰ · reviewer's trust in these skills ${pctOf(j.weight_ppm)} · `,
          j.counts ? (j.near ? "counts, near the trust-weighted median" : "counts, far from the trust-weighted median")
            : "does not count (below the minimum reviewer trust)") : null,
        h("table", { class: "scores" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Criterion"), h("th", { scope: "col", class: "num" }, "Score"))),
          h("tbody", {}, rubric.map((c) => h("tr", {}, h("td", {}, c.name),
            h("td", { class: "num" }, `${sc[c.name] ?? "–"} / ${c.max}`))))),
        r.comment ? h("p", { class: "text comment" }, r.comment) : null), r);
    }

    // A review form outlives the redraws of its submission (live updates), so
    // what the reviewer typed stays.
    function keptReviewForm(b, s) {
      if (!reviewForms.has(s.id)) reviewForms.set(s.id, reviewForm(b, s));
      return reviewForms.get(s.id);
    }

    function reviewForm(b, s) {
      const box = errBox();
      const inputs = (b.rubric || []).map((c) => {
        const inp = intInput("score", "");
        return { c, inp, f: field(`${c.name} (0–${c.max})`, inp) };
      });
      const comment = h("textarea", { name: "comment", rows: 3, maxlength: 2000 });
      const btn = h("button", { type: "submit", class: "primary review-button" }, "Send review");
      async function send() {
        let body;
        try {
          const scores = {};
          for (const { c, inp } of inputs) scores[c.name] = readInt(inp, `The score for “${c.name}”`, 0, c.max);
          body = { submission: s.id, scores, comment: readText(comment, "Comment", 0, 2000) };
        } catch (e) { showErr(box, e.message); return; }
        const res = await act(btn, box, (key) => post(key, "/api/review", body));
        if (res) { toast("Review sent."); reviewForms.delete(s.id); actionKey = null; lastSig = null; await refresh(); }
      }
      return h("form", { class: "review-form", novalidate: true, listen: { submit: (e) => { e.preventDefault(); send(); } } },
        h("h3", {}, "Your review"),
        h("div", { class: "row wrap" }, inputs.map((x) => x.f)),
        field("Comment", comment), box, h("div", { class: "actions" }, btn));
    }

    // Sections that feature scripts add (LM.bountySection): one bad section
    // shows its own error and leaves the rest of the page alone.
    const sections = BOUNTY_SECTIONS.map((f) => f(id));
    async function refreshAll() {
      await refresh();
      const b = S.lastBounty && S.lastBounty.id === id ? S.lastBounty : null;
      if (!b) return;
      await Promise.all(sections.map((sec) => sec.refresh(b).catch((e) => put(sec.el, failBox(e)))));
    }
    const el = h("div", { class: "page" }, head, actions, body, sections.map((sec) => sec.el));
    return { el, refresh: refreshAll, title: "Bounty" };
  }

  // -- my work
  function viewWork() {
    const area = h("div", {}, loading());
    async function refresh() {
      let data, every;
      try { [data, every] = await Promise.all([get("/api/bounties?mine=1"), get("/api/bounties")]); } catch (e) { put(area, failBox(e)); return; }
      const me = S.me.account;
      const all = (data.bounties || []).filter((b) => b.my_role || b.author === me);
      const role = (b) => b.my_role || (b.author === me ? "mentor" : null);
      // Any open bounty invites a submission; what waits on me is the rest.
      const waiting = (every.bounties || []).filter((b) => b.next_action && b.next_action !== "submit");
      const sec = (title, list, none) => card(h("h2", {}, title),
        list.length ? h("ul", { class: "bounties" }, list.map(bountyItem)) : empty(none));
      put(area,
        sec("Waiting on you", waiting, "Nothing waits on you right now."),
        sec("Bounties I posted", all.filter((b) => role(b) === "mentor"), "You have not posted a bounty yet."),
        sec("My submissions", all.filter((b) => role(b) === "learner"), "You have not submitted work yet."),
        sec("My reviews", all.filter((b) => role(b) === "reviewer"), "You have not reviewed anything yet."));
    }
    return { el: h("div", { class: "page" }, h("h1", {}, "My work"), area), refresh, title: "My work" };
  }

  function repCard(rep) {
    if (!rep) return empty("No reputation yet.");
    return h("dl", { class: "facts" },
      h("dt", {}, "Score"), h("dd", { class: "rep-score" }, String(rep.score ?? 0)),
      h("dt", {}, "Points"), h("dd", {}, String(rep.points ?? 0)),
      h("dt", {}, "Abandoned bounties"), h("dd", {}, String(rep.abandoned ?? 0)),
      h("dt", {}, "Trusted"), h("dd", {}, rep.trusted ? "yes (a network anchor)" : "no"),
      rep.equivocated ? [h("dt", {}, "Warning"), h("dd", { class: "err" }, "this account signed conflicting events")] : null);
  }

  // Trust per skill (GET /api/trust/{account}): each share is parts per
  // million of all the trust in that skill.
  async function trustRows(acct) {
    let t;
    try { t = await get("/api/trust/" + enc(acct)); } catch (e) { return null; }
    if (!t || typeof t !== "object") return null;
    const pct = (ppm) => (Number(ppm || 0) / 10000).toFixed(2) + " %";
    const rank = (x) => (x && x.rank ? `#${x.rank} of ${x.of}` : "–");
    const skills = t.skills && typeof t.skills === "object" ? Object.entries(t.skills) : [];
    const overall = t.overall || {};
    return [
      h("p", { class: "trust-overall" }, "Overall: ", h("strong", {}, pct(overall.ppm)), " of all trust · rank ", rank(overall),
        t.seed ? " · a trusted anchor of the network" : "", t.forked ? " · signed conflicting events" : ""),
      skills.length ? h("table", { class: "scores" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Skill"), h("th", { scope: "col", class: "num" }, "Share of trust"),
          h("th", { scope: "col", class: "num" }, "Rank"))),
        h("tbody", {}, skills.map(([k, v]) => h("tr", {}, h("td", {}, k),
          h("td", { class: "num" }, pct(v && v.ppm)), h("td", { class: "num" }, rank(v))))))
        : empty("No trust in any skill yet: it comes from awarded work, honest reviews and vouches."),
      calibration(t.calibration),
      edgesTable(t.edges_in),
    ];
  }

  // How often a reviewer lands near the trust-weighted median of the reviews
  // of the same work (GET /api/trust/{account}'s calibration).
  function calibration(c) {
    const judged = Number((c && c.judged) || 0);
    const near = Number((c && c.near) || 0);
    return h("p", { class: "trust-calibration" }, "Review calibration: ",
      judged ? h("strong", {}, `${near} of ${judged}`) : "no reviews judged yet",
      judged ? ` reviews near the trust-weighted median (${Math.round(near * 100 / judged)} %)` : " (a review is judged once its work has two reviews)");
  }

  const EDGE_KINDS = { work: "paid work", review: "honest review, paid", vouch: "vouch" };
  // The edges that gave an account its trust, largest first.
  function edgesTable(edges) {
    const list = Array.isArray(edges) ? [...edges].sort((a, b) => Number(b.gives || 0) - Number(a.gives || 0)).slice(0, 20) : [];
    if (!list.length) return null;
    const pct = (ppm) => (Number(ppm || 0) / 10000).toFixed(2) + " %";
    return [h("h3", {}, "Where it comes from"),
      h("table", { class: "scores trust-edges" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "From"), h("th", { scope: "col" }, "Why"),
          h("th", { scope: "col" }, "Skills"), h("th", { scope: "col", class: "num" }, "Gives"))),
        h("tbody", {}, list.map((e) => h("tr", {},
          h("td", {}, who(e.from)),
          h("td", {}, EDGE_KINDS[e.kind] || String(e.kind), e.amount ? ` (${amount(e.amount)})` : "",
            e.bounty ? [" · ", h("a", { href: "#/bounty/" + enc(e.bounty) }, "bounty")] : null),
          h("td", {}, (e.skills || []).join(", ") || "–"),
          h("td", { class: "num" }, pct(e.gives_ppm))))))];
  }

  // -- my account
  function viewAccount() {
    const info = h("div", {}, loading());
    const vouches = h("div", {});
    const activity = h("div", {});
    const payments = h("div", {});
    const trust = h("div", {});

    const tBox = errBox();
    const tTo = h("input", { type: "text", name: "to", placeholder: "lm…", autocomplete: "off" });
    const tAmount = intInput("amount", "");
    const tMemo = h("input", { type: "text", name: "memo", maxlength: 200, autocomplete: "off" });
    const tBtn = h("button", { type: "submit", class: "primary", id: "transfer-button" }, "Send");
    const transfer = h("form", { class: "card form", id: "transfer-form", novalidate: true, listen: { submit: async (e) => {
      e.preventDefault();
      let body;
      try {
        const to = readAccount(tTo, "Recipient");
        if (to === S.me.account) throw new FormError("cannot transfer to yourself");
        const n = readInt(tAmount, "Amount", 1);
        if (n > S.me.balance) throw new FormError(`not enough balance: sending ${n} but you hold ${S.me.balance}`);
        body = { to, amount: n, memo: readText(tMemo, "Memo", 0, 200) };
      } catch (err) { showErr(tBox, err.message); return; }
      const res = await act(tBtn, tBox, (key) => post(key, "/api/transfer", body));
      if (res) { toast(`Sent ${amount(body.amount)}.`); tAmount.value = ""; tMemo.value = ""; await refreshAll(); }
    } } }, h("h2", {}, "Send tokens"), field("Recipient account", tTo), field("Amount", tAmount),
      field("Memo (optional)", tMemo), tBox, h("div", { class: "actions" }, tBtn));

    const vBox = errBox();
    const vAcct = h("input", { type: "text", name: "account", placeholder: "lm…", autocomplete: "off" });
    const vBtn = h("button", { type: "submit", class: "primary", id: "vouch-button" }, "Vouch");
    const vouch = h("form", { class: "card form", id: "vouch-form", novalidate: true, listen: { submit: async (e) => {
      e.preventDefault();
      let acct;
      try {
        acct = readAccount(vAcct, "Account");
        if (acct === S.me.account) throw new FormError("cannot vouch for yourself");
      } catch (err) { showErr(vBox, err.message); return; }
      const res = await act(vBtn, vBox, (key) => post(key, "/api/vouch", { account: acct }));
      if (res) { toast("Vouch published."); vAcct.value = ""; await refreshAll(); }
    } } }, h("h2", {}, "Vouch for someone"),
      h("p", { class: "hint" }, "A vouch says you know this person is real; it feeds their reputation."),
      field("Their account", vAcct), vBox, h("div", { class: "actions" }, vBtn));

    const pBox = errBox();
    const pName = h("input", { type: "text", name: "name", maxlength: 64, autocomplete: "off" });
    const pBio = h("textarea", { name: "bio", rows: 3, maxlength: 500 });
    const pSkills = h("input", { type: "text", name: "skills", autocomplete: "off", placeholder: "python, writing" });
    const pBtn = h("button", { type: "submit", class: "primary", id: "profile-button" }, "Save profile");
    let profileLoaded = false;
    const profile = h("form", { class: "card form", id: "profile-form", novalidate: true, listen: { submit: async (e) => {
      e.preventDefault();
      let body;
      try {
        body = { name: readText(pName, "Name", 1, 64, { blank: false }), bio: readText(pBio, "Bio", 0, 500), skills: readSkills(pSkills) };
      } catch (err) { showErr(pBox, err.message); return; }
      const res = await act(pBtn, pBox, (key) => post(key, "/api/profile", body));
      if (res) { toast("Profile published."); S.names.delete(S.me.account); await refreshAll(); }
    } } }, h("h2", {}, "Your profile"),
      h("p", { class: "hint" }, "Everyone on the network sees your profile."),
      field("Name", pName), field("Bio", pBio), field("Skills", pSkills, "Comma separated."), pBox, h("div", { class: "actions" }, pBtn));

    async function refresh() {
      const me = S.me;
      const copyBtn = h("button", { type: "button", class: "secondary small", id: "copy-account" }, "Copy");
      copyBtn.addEventListener("click", async () => {
        try { await navigator.clipboard.writeText(me.account); copyBtn.textContent = "Copied"; }
        catch (e) {
          const r = document.createRange(); r.selectNodeContents(acctEl);
          const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r);
          copyBtn.textContent = "Selected: press Ctrl+C";
        }
      });
      const acctEl = h("code", { class: "account", id: "my-account" }, me.account);
      put(info,
        card(h("h2", {}, "Account"),
          h("div", { class: "copyline" }, acctEl, copyBtn),
          h("div", { class: "stats" },
            h("div", { class: "stat" }, h("span", { class: "stat-n", id: "account-balance" }, Number(me.balance).toLocaleString("en-US")), h("span", {}, "balance")),
            h("div", { class: "stat" }, h("span", { class: "stat-n", id: "account-spendable" }, Number(me.spendable).toLocaleString("en-US")), h("span", {}, "spendable now"))),
          h("p", { class: "hint" }, "Spendable is what you can post or send now; the rest of what you received (an award, a transfer) becomes spendable when you next act.")),
        card(h("h2", {}, "Reputation"), repCard(me.reputation)));
      const list = (accts, none) => accts && accts.length ? h("ul", { class: "plain" }, accts.map((a) => h("li", {}, who(typeof a === "string" ? a : a.account)))) : empty(none);
      put(vouches, card(h("h2", {}, "Vouches"),
        h("div", { class: "two" },
          h("div", {}, h("h3", {}, "For you"), list(me.vouches_for_me, "Nobody has vouched for you yet.")),
          h("div", {}, h("h3", {}, "By you"), list(me.vouches_by_me, "You have not vouched for anyone.")))));
      const tr = await trustRows(me.account);
      put(trust, tr ? card(h("h2", {}, "Trust"), tr) : []);
      try {
        const pay = await get("/api/payments?limit=20");
        const prow = (p) => h("tr", {},
          h("td", { class: "muted" }, when(p.timestamp)),
          h("td", { class: p.direction === "in" ? "num ok" : "num" }, (p.direction === "in" ? "+" : "−") + String(p.amount)),
          h("td", {}, p.direction === "in" ? "from " : "to ", who(p.direction === "in" ? p.from : p.to)),
          h("td", { class: "memo" }, p.kind === "transfer" ? String(p.memo || "") : "award payout",
            p.void ? h("span", { class: "err inline" }, " (void)") : null));
        put(payments, card(h("h2", {}, "Payments"),
          (pay.payments || []).length
            ? h("table", { class: "scores", id: "payments" }, h("tbody", {}, pay.payments.map(prow)))
            : empty("No tokens received or sent yet.")));
      } catch (e) { put(payments); }
      try {
        const ev = await get(`/api/accounts/${enc(me.account)}/events?limit=20`);
        const rows = (ev.events || []).slice(0, 20);
        put(activity, card(h("h2", {}, "Recent activity"),
          rows.length ? h("ul", { class: "plain activity" }, rows.map((e) => h("li", {},
            h("span", { class: "kind" }, KINDS[e.kind] || String(e.kind)), " ",
            h("span", { class: "muted" }, when(e.timestamp)),
            e.void ? h("span", { class: "err inline" }, " void: " + String(e.void)) : null)))
            : empty("Nothing yet.")));
      } catch (e) { put(activity); }
      if (!profileLoaded) {
        profileLoaded = true;
        try {
          const p = await get("/api/profiles/" + enc(me.account));
          if (p) { pName.value = p.name || ""; pBio.value = p.bio || ""; pSkills.value = (p.skills || []).join(", "); }
        } catch (e) { /* no profile yet */ }
      }
    }
    const logoutBtn = h("button", { type: "button", class: "secondary", id: "logout-button" }, "Log out");
    logoutBtn.addEventListener("click", () => logout(logoutBtn));
    const el = h("div", { class: "page" },
      h("div", { class: "page-head" }, h("h1", {}, "My account"), logoutBtn),
      info, trust, vouches, h("div", { class: "two" }, transfer, vouch), payments, profile, activity);
    return { el, refresh, title: "My account" };
  }

  // -- someone's profile
  function viewProfile(acct) {
    const area = h("div", {}, loading());
    async function refresh() {
      let p;
      try { p = await get("/api/profiles/" + enc(acct)); } catch (e) { put(area, failBox(e)); return; }
      let list = [];
      try { list = ((await get("/api/bounties?author=" + enc(acct))).bounties || []).filter((b) => b.author === acct); } catch (e) { /* shown empty */ }
      const tr = await trustRows(acct);
      const isMe = S.me && acct === S.me.account;
      const vBox = errBox();
      const vBtn = h("button", { type: "button", class: "secondary", id: "vouch-profile" }, "Vouch for this person");
      vBtn.addEventListener("click", async () => {
        const res = await act(vBtn, vBox, (key) => post(key, "/api/vouch", { account: acct }));
        if (res) toast("Vouch published.");
      });
      put(area,
        card(h("div", { class: "page-head" }, h("h1", { class: "profile-name" }, p.name || short(acct)), isMe ? h("span", { class: "badge" }, "you") : null),
          h("code", { class: "account" }, acct),
          p.bio ? h("p", { class: "text" }, p.bio) : null,
          chips(p.skills),
          h("div", { class: "stats" },
            h("div", { class: "stat" }, h("span", { class: "stat-n" }, String(p.bounties_posted ?? 0)), h("span", {}, "bounties posted")),
            h("div", { class: "stat" }, h("span", { class: "stat-n" }, String(p.work_awarded ?? 0)), h("span", {}, "work awarded"))),
          isMe ? null : h("div", { class: "actions" }, vBtn), vBox),
        card(h("h2", {}, "Reputation"), repCard(p.reputation)),
        tr ? card(h("h2", {}, "Trust"), tr) : null,
        card(h("h2", {}, "Bounties posted"), list.length ? h("ul", { class: "bounties" }, list.map(bountyItem)) : empty("None yet.")));
      await Promise.all(sections.map((sec) => sec.refresh().catch((e) => put(sec.el, failBox(e)))));
    }
    const sections = PROFILE_SECTIONS.map((f) => f(acct));  // LM.profileSection
    return { el: h("div", { class: "page" }, area, sections.map((sec) => sec.el)), refresh, title: "Profile" };
  }

  // -- credentials
  function viewCredentials() {
    const mine = h("div", {}, loading());
    const box = errBox();
    const report = h("div", { id: "verify-report" });
    const file = h("input", { type: "file", id: "verify-file", accept: ".json,.jsonld,.credential,application/json" });
    const drop = h("div", { class: "drop", id: "drop-zone", tabindex: 0, role: "button" },
      h("strong", {}, "Drop a credential file here"), h("span", { class: "muted" }, " or choose one below."));

    async function verify(f) {
      clearErr(box);
      put(report, loading());
      try {
        if (f.size > 1024 * 1024) throw new FormError("a credential file is at most 1 MiB");
        const text = await f.text();
        let body;
        try { body = JSON.parse(text); } catch (e) { throw new FormError("This file is not a credential (it is not JSON)."); }
        let r;
        try { r = await api("POST", "/api/credentials/verify", body); } catch (e) {
          if (missing(e)) throw new FormError("Verifying credentials is not available on this node.");
          throw e;
        }
        put(report, drawReport(r));
      } catch (e) { put(report); showErr(box, e.message); }
    }
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault(); drop.classList.remove("over");
      const f = e.dataTransfer && e.dataTransfer.files[0];
      if (f) verify(f);
    });
    drop.addEventListener("click", () => file.click());
    drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); file.click(); } });
    file.addEventListener("change", () => { if (file.files[0]) verify(file.files[0]); });

    function drawReport(r) {
      const ok = r && r.valid === true;
      const facts = [];
      const fact = (k, v) => { if (v !== null && v !== undefined && v !== "") facts.push(h("dt", {}, k), h("dd", {}, v)); };
      fact("Achievement", r.achievement || r.name);
      fact("Issued by", r.issuer && typeof r.issuer === "object" ? [r.issuer.name || "", r.issuer.name ? " " : "", h("code", { class: "account" }, String(r.issuer.id || ""))] : r.issuer);
      fact("Awarded to", r.subject ? h("code", { class: "account" }, String(r.subject)) : null);
      fact("Valid from", r.valid_from);
      fact("Valid until", r.valid_until);
      fact("Network", r.network && typeof r.network === "object" ? r.network.name : r.network);
      if (r.issuer_fork && r.issuer_fork.forked) fact("Warning", h("span", { class: "err" }, "this node holds proof that the issuer signed conflicting events"));
      const checks = Array.isArray(r.checks) ? r.checks : [];
      return card(h("p", { class: ok ? "verdict ok" : "verdict bad", id: "verify-verdict" },
        ok ? "Valid: this credential checks out." : "Not valid: see the failed checks below."),
        h("dl", { class: "facts" }, facts),
        checks.length ? h("table", { class: "scores checks" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Check"), h("th", { scope: "col" }, "Result"), h("th", { scope: "col" }, "Why"))),
          h("tbody", {}, checks.map((c) => h("tr", { class: c.ok ? "pass" : "fail" },
            h("td", {}, String(c.check)), h("td", {}, c.ok ? "passed" : "FAILED"), h("td", {}, String(c.reason || "")))))) : null);
    }
    function flat(v) {
      if (v === null || v === undefined) return "–";
      if (Array.isArray(v)) return v.length ? h("ul", { class: "plain" }, v.map((x) => h("li", {}, flat(x)))) : "–";
      if (typeof v === "object") return h("dl", { class: "facts inner" }, Object.entries(v).map(([k, x]) => [h("dt", {}, k.replace(/_/g, " ")), h("dd", {}, flat(x))]));
      return String(v);
    }

    async function refresh() {
      let data;
      try { data = await get("/api/credentials"); } catch (e) {
        put(mine, missing(e) ? empty("Credentials are not available on this node.") : failBox(e));
        return;
      }
      const list = Array.isArray(data) ? data : data.credentials || [];
      put(mine, list.length ? h("ul", { class: "creds" }, list.map((c) => {
        const sid = c.submission || c.id;
        const title = c.bounty_title || c.title || (typeof c.bounty === "string" && !/^[0-9a-f]{64}$/.test(c.bounty) ? c.bounty : "Awarded work");
        const ready = c.status === undefined || c.status === "ready";
        return h("li", { class: "cred" },
          h("div", {}, h("strong", {}, title),
            c.amount ? h("span", { class: "muted" }, " · " + amount(c.amount)) : null,
            c.awarded_at_ms || c.awarded_at ? h("span", { class: "muted" }, " · " + when(c.awarded_at_ms || c.awarded_at)) : null,
            c.mentor ? h("div", { class: "muted" }, "issued by ", who(c.mentor)) : null),
          chips(c.skills),
          ready ? h("a", { href: `/api/credentials/${enc(sid)}`, download: `credential-${String(sid).slice(0, 12)}.json`, class: "button secondary small cred-download" }, "Download")
            : h("span", { class: "muted" }, c.status === "fetching" ? "on its way from the mentor's node…" : "not issued by the mentor's node yet"));
      })) : empty("No credentials yet: they come with awarded work."));
    }
    const el = h("div", { class: "page" }, h("h1", {}, "Credentials"),
      card(h("h2", {}, "Mine"), h("p", { class: "hint" }, "A credential proves your work was awarded; anyone can check it, even offline."), mine),
      card(h("h2", {}, "Verify a credential"), drop, field("Credential file", file), box, report));
    return { el, refresh, title: "Credentials" };
  }

  // -- the network
  function viewNetwork() {
    const area = h("div", {}, loading());
    async function refresh() {
      let st, pr;
      try { [st, pr] = await Promise.all([get("/api/status"), get("/api/peers")]); } catch (e) { put(area, failBox(e)); return; }
      const peers = pr.peers || st.peers || [];
      const mesh = new Set(pr.mesh_peers || st.mesh_peers || []);
      const scores = pr.scores || {};
      const forks = st.forks || [];
      put(area,
        card(h("h2", {}, "This node"),
          h("dl", { class: "facts" },
            h("dt", {}, "Network"), h("dd", {}, st.network || ""),
            h("dt", {}, "Network id"), h("dd", {}, h("code", { class: "account" }, st.network_id || "")),
            h("dt", {}, "Peer id"), h("dd", {}, h("code", { class: "account" }, st.peer_id || "")),
            h("dt", {}, "Events"), h("dd", { id: "net-events" }, String(st.events)),
            h("dt", {}, "Waiting for missing events"), h("dd", {}, String(st.pending)),
            h("dt", {}, "State digest"), h("dd", {}, h("code", {}, String(st.digest || "").slice(0, 16))),
            h("dt", {}, "Authors known"), h("dd", {}, String(Object.keys(st.heads || {}).length)),
            h("dt", {}, "Up for"), h("dd", {}, span((st.uptime_s || 0) * 1000)))),
        card(h("h2", {}, `Peers (${peers.length})`),
          peers.length ? h("table", { class: "scores peers" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Peer"), h("th", { scope: "col" }, "Gossip mesh"), h("th", { scope: "col", class: "num" }, "Score"))),
            h("tbody", {}, peers.map((p) => h("tr", {}, h("td", {}, h("code", { title: p }, short(p))),
              h("td", {}, mesh.has(p) ? "yes" : "no"),
              h("td", { class: "num" }, scores[p] ? String(scores[p].score) + (scores[p].banned ? " (banned)" : "") : "–")))))
            : empty("No peers connected: this node cannot hear the network right now.")),
        card(h("h2", {}, "Forks detected"),
          forks.length ? [h("p", { class: "err" }, "These accounts signed two different events at one place in their chain; their later events are void:"),
            h("ul", { class: "plain" }, forks.map((a) => h("li", {}, who(a))))] : empty("None: every author's chain is linear.")),
        (pr.rejections || []).length ? card(h("h2", {}, "Recently refused from peers"),
          h("ul", { class: "plain" }, pr.rejections.slice(-10).reverse().map((r) => h("li", {},
            r && typeof r === "object" ? [h("code", { title: String(r.peer) }, short(r.peer)), " ", String(r.reason ?? "")] : String(r))))) : null);
    }
    return { el: h("div", { class: "page" }, h("h1", {}, "Network"), area), refresh, title: "Network" };
  }

  // ---------------------------------------------------------------- routing

  function currentRoute() {
    const m = /^#\/([a-z]+)(?:\/([^/?#]+))?/.exec(location.hash);
    if (!m) return ["bounties", null];
    let arg = null;
    try { arg = m[2] ? decodeURIComponent(m[2]) : null; } catch (e) { arg = null; }
    return [m[1], arg];
  }

  function route() {
    if (!S.loggedIn) return;
    const [name, arg] = currentRoute();
    let v;
    if (name === "bounty" && arg) v = viewBounty(arg);
    else if (name === "profile" && arg) v = viewProfile(arg);
    else if (name === "post") v = viewPost();
    else if (name === "work") v = viewWork();
    else if (name === "account") v = viewAccount();
    else if (name === "credentials") v = viewCredentials();
    else if (name === "network") v = viewNetwork();
    else if (EXTRA_VIEWS.has(name)) v = EXTRA_VIEWS.get(name)(arg);
    else v = viewBounties();
    v.route = location.hash;
    S.view = v;
    document.documentElement.dataset.route = location.hash;  // which view is drawn (tests wait on it)
    document.title = v.title + " · learnmesh";
    drawHeader();
    put($("main"), v.el);
    window.scrollTo(0, 0);
    v.refresh().catch(() => {});
  }

  async function start() {
    try {
      await loadMe();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) { showLogin(S.loginError || null); S.loginError = null; return; }
      put($("main"), h("section", { class: "card narrow" }, h("h1", {}, "The node is not answering"),
        h("p", {}, e.message), h("p", { class: "muted" }, "This page retries by itself.")));
      setTimeout(start, 3000);
      return;
    }
    S.loggedIn = true;
    drawHeader();
    openStream();
    route();
    if (S.loginError) { toast(S.loginError); S.loginError = null; }
  }

  async function onHash() {
    if (await tryLogin()) return;
    if (!S.loggedIn) { start(); return; }
    if (S.view && S.view.route === location.hash) return;
    route();
  }

  // The API that feature scripts use (see EXTRA_VIEWS above).
  window.LM = Object.freeze({
    h, put, add, enc, api, get, act, errBox, showErr, clearErr, field, intInput, card, empty,
    loading, chips, failBox, who, short, amount, when, span, countdown, bytes, readInt, resourceLink,
    readText, readSkills, readAccount, readWhen, localInput, newKey, toast, missing, ApiError,
    me: () => S.me,
    refresh: () => scheduleRefresh(),
    // A top-level view: `factory(arg)` returns {el, refresh: async () => …, title};
    // `label` (or null) adds it to the navigation bar.
    view(name, label, factory) {
      if (!/^[a-z]+$/.test(name) || EXTRA_VIEWS.has(name)) throw new Error("LM.view: bad or repeated name " + name);
      EXTRA_VIEWS.set(name, factory);
      if (label) NAV.push([name, String(label)]);
    },
    // A section under a bounty's page: `factory(bountyId)` returns
    // {el, refresh: async (bounty) => …}, called on every refresh of that page.
    bountySection(factory) { BOUNTY_SECTIONS.push(factory); },
    // A section under a profile's page: `factory(account)` returns
    // {el, refresh: async () => …}, called on every refresh of that page.
    profileSection(factory) { PROFILE_SECTIONS.push(factory); },
  });

  window.addEventListener("hashchange", onHash);
  // Deferred feature scripts run before DOMContentLoaded: start after them.
  const boot = () => tryLogin().then((busy) => { if (!busy) start(); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
