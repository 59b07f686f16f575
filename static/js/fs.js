/* Shared browser helpers (window.FS), loaded by every page after messages.js.

   Identity: the server renders window.FS_ME ({id, name} or null) from the signed, HTTP-only
   session cookie, and every API call sends that cookie (same origin). Nothing secret lives in
   storage. The admission pass for event N is kept per buyer in localStorage
   "flashsale.admission.<user id>.<N>" (the latest token) and "flashsale.pass-ends.<user id>.<N>"
   (when the admission window ends), so every tab of the same buyer shares it. Tokens live
   shorter than the window (ADMISSION_TOKEN_TTL_SECONDS): FS.refreshPass() gets a fresh one
   from the buyer's ticket. Tabs tell each other about sign-in and sign-out through
   localStorage "flashsale.session". */
window.FS = (function () {
  "use strict";
  const ADMISSION_PREFIX = "flashsale.admission.";
  const PASS_ENDS_PREFIX = "flashsale.pass-ends.";
  const SESSION_PING = "flashsale.session";
  const LEGACY_TOKEN = "flashsale.token";  // bearer token kept by earlier versions of the pages
  let me = window.FS_ME || null;

  function get(storage, key) {
    try { return storage.getItem(key); } catch (e) { return null; }
  }
  function set(storage, key, value) {
    try { storage.setItem(key, value); return true; } catch (e) { return false; }
  }
  function remove(storage, key) {
    try { storage.removeItem(key); } catch (e) { /* storage disabled */ }
  }

  function user() { return me; }
  function signedIn() { return !!me; }

  /* Called after sign-in or sign-out on this page: header, other tabs, listeners. */
  const listeners = [];
  function onIdentity(fn) { listeners.push(fn); }
  function setUser(u, quiet) {
    me = u ? { id: u.id, name: u.name } : null;
    renderWhoami();
    if (!quiet) set(localStorage, SESSION_PING, String(Date.now()));
    listeners.forEach(function (fn) { fn(me); });
  }
  async function signOut() {
    await api("/api/session", { method: "DELETE" });
    clearAdmissions();
    setUser(null);
  }
  // Another tab signed in or out: ask the server who we are now.
  window.addEventListener("storage", async function (ev) {
    if (ev.key !== SESSION_PING) return;
    const r = await api("/api/session");
    if (r.ok && r.data) setUser(r.data.user, true);
  });

  function admissionKey(eventId) {
    return me ? ADMISSION_PREFIX + me.id + "." + eventId : null;
  }
  /* The stored token if it is good for `marginMs` more (default 2 s), else null. */
  function admissionToken(eventId, marginMs) {
    const key = admissionKey(eventId);
    const raw = key && get(localStorage, key);
    if (!raw) return null;
    const exp = passExpiry(raw);
    if (exp && exp <= Date.now() + (marginMs === undefined ? 2000 : marginMs)) return null;
    return raw;
  }
  function saveAdmission(eventId, token, endsAtMs) {
    const key = admissionKey(eventId);
    if (!key) return;
    set(localStorage, key, token);
    if (endsAtMs) set(localStorage, PASS_ENDS_PREFIX + me.id + "." + eventId, String(endsAtMs));
  }
  /* When the buyer's admission window ends (epoch ms, browser clock), if known. */
  function passEnds(eventId) {
    if (!me) return null;
    const v = Number(get(localStorage, PASS_ENDS_PREFIX + me.id + "." + eventId) || 0);
    return v > Date.now() ? v : null;
  }
  function clearAdmission(eventId) {
    const key = admissionKey(eventId);
    if (!key) return;
    remove(localStorage, key);
    remove(localStorage, PASS_ENDS_PREFIX + me.id + "." + eventId);
  }
  /* A fresh admission token for the buyer's active admission, from their own ticket (any tab or
     device): {token, endsAt} or null when they are not admitted. */
  async function refreshPass(eventId) {
    if (!me) return null;
    const mine = await api("/api/events/" + eventId + "/waiting-room/me");
    if (!mine.ok || !mine.data) {
      const kept = admissionToken(eventId);
      return kept ? { token: kept, endsAt: passEnds(eventId) } : null;
    }
    if (!mine.data.admitted || !mine.data.ticket) { clearAdmission(eventId); return null; }
    const endsAt = mine.data.admission_ends_at * 1000 - clockSkew(mine.headers);
    set(localStorage, PASS_ENDS_PREFIX + me.id + "." + eventId, String(endsAt));
    const polled = await api("/api/events/" + eventId + "/queue/" + encodeURIComponent(mine.data.ticket));
    const token = (polled.ok && polled.data && polled.data.admission_token) || admissionToken(eventId);
    if (!token) return null;
    saveAdmission(eventId, token, endsAt);
    return { token: token, endsAt: endsAt };
  }
  function clearAdmissions() {
    try {
      for (let i = localStorage.length - 1; i >= 0; i--) {
        const k = localStorage.key(i);
        if (k && (k.indexOf(ADMISSION_PREFIX) === 0 || k.indexOf(PASS_ENDS_PREFIX) === 0)) {
          localStorage.removeItem(k);
        }
      }
    } catch (e) { /* storage disabled */ }
  }
  /* When an admission pass (a JWT) runs out, in epoch ms: read from its `exp` claim. */
  function passExpiry(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const claims = JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
      return typeof claims.exp === "number" ? claims.exp * 1000 : null;
    } catch (e) { return null; }
  }
  function session(key, value) {
    if (value === undefined) return get(sessionStorage, key);
    if (value === null) { remove(sessionStorage, key); return null; }
    set(sessionStorage, key, value);
    return value;
  }
  function local(key, value) {
    if (value === undefined) return get(localStorage, key);
    if (value === null) { remove(localStorage, key); return null; }
    set(localStorage, key, value);
    return value;
  }

  /* fetch wrapper: never throws. Resolves to {ok, status, data, detail, headers}; `detail` is
     the readable message for a failure (from messages.js), ready to show to a buyer. */
  async function api(path, options) {
    const opts = options || {};
    const headers = Object.assign({ "Accept": "application/json" }, opts.headers || {});
    let body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    let response;
    try {
      response = await fetch(path, {
        method: opts.method || "GET", headers: headers, body: body,
        cache: "no-store", credentials: "same-origin",
      });
    } catch (e) {
      const failed = { ok: false, status: 0, data: null, headers: new Headers() };
      failed.detail = message(failed);
      return failed;
    }
    let data = null;
    const type = response.headers.get("Content-Type") || "";
    if (type.indexOf("json") !== -1) {
      try { data = await response.json(); } catch (e) { data = null; }
    }
    const result = { ok: response.ok, status: response.status, data: data, detail: "",
                     headers: response.headers };
    if (!response.ok) result.detail = message(result, opts.vars);
    return result;
  }
  function message(result, vars) { return window.FS_MESSAGES.message(result, vars); }
  function kind(result) { return window.FS_MESSAGES.kindOf(result && result.data); }

  /* Server clock minus browser clock, from the Date header (1 s resolution). */
  function clockSkew(headers) {
    const d = Date.parse(headers && headers.get("Date") || "");
    if (isNaN(d)) return 0;
    const skew = d - Date.now();
    return Math.abs(skew) > 2000 ? skew : 0;
  }

  // Prices are integer cents; the API names no currency, so the shop's currency is assumed.
  const moneyFmt = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD" });
  function money(cents) { return moneyFmt.format((cents || 0) / 100); }
  function dateTime(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso || "";
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
  function time(d) {
    return (d instanceof Date ? d : new Date(d)).toLocaleTimeString(undefined,
      { hour: "numeric", minute: "2-digit", second: "2-digit" });
  }
  function number(n) { return (n || 0).toLocaleString(); }
  function duration(seconds) {
    const s = Math.max(0, Math.ceil(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function clock(seconds) {
    const s = Math.max(0, Math.ceil(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  // crypto.randomUUID exists only in secure contexts (https, localhost); fall back to v4 by hand.
  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.prototype.map.call(b, function (x) { return x.toString(16).padStart(2, "0"); });
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
           "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  /* Tiny DOM builder: text is always set as text, never parsed as HTML. */
  function el(tag, attrs) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const k in attrs) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : v);
      }
    }
    for (let i = 2; i < arguments.length; i++) {
      const c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  /* Replace a message area's content with text, optionally followed by a link. */
  function say(node, kindName, text, link) {
    node.className = "notice" + (kindName ? " notice-" + kindName : "");
    node.replaceChildren(text);
    if (link) node.append(" ", el("a", { href: link.href, text: link.text }));
    node.hidden = false;
  }
  function clear(node) { node.replaceChildren(); node.hidden = true; }

  function signInHref() {
    return "/signin?next=" + encodeURIComponent(location.pathname + location.search);
  }

  function renderWhoami() {
    const box = document.getElementById("fs-whoami");
    if (!box) return;
    if (me) {
      const form = el("form", { method: "post", action: "/signout", id: "fs-signout" },
        el("button", { type: "submit", class: "linkish", text: "Sign out" }));
      box.replaceChildren(
        el("a", { href: "/account", text: "My bookings" }),
        el("span", { class: "who" }, el("span", { class: "who-label", text: "Signed in as " }),
           el("strong", { id: "fs-me-name", text: me.name })),
        form);
      bindSignOut();
    } else {
      box.replaceChildren(el("a", { href: signInHref(), id: "fs-signin-link", text: "Sign in" }));
    }
  }
  function bindSignOut() {
    const form = document.getElementById("fs-signout");
    if (!form || form.dataset.bound) return;
    form.dataset.bound = "1";
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      await signOut();
      location.assign("/");
    });
  }
  document.addEventListener("DOMContentLoaded", bindSignOut);

  /* An earlier version of these pages kept a bearer token in localStorage: turn it into a
     session once, then forget it. */
  async function adoptLegacyToken() {
    const legacy = get(localStorage, LEGACY_TOKEN);
    if (!legacy) return;
    remove(localStorage, LEGACY_TOKEN);
    remove(localStorage, "flashsale.user");
    if (me) return;
    const r = await api("/api/session", { method: "POST", body: { token: legacy } });
    if (r.ok && r.data) setUser(r.data.user);
  }
  adoptLegacyToken();

  /* setTimeout-driven poller that never overlaps itself. With {background: true} it keeps
     running in hidden tabs (the waiting room: the buyer must not lose their turn). */
  function poller(fn, intervalMs, opts) {
    const background = !!(opts && opts.background);
    let timer = null, running = false, stopped = false;
    async function tick() {
      timer = null;
      if (stopped || running) return;
      if (document.hidden && !background) return;  // resumed by visibilitychange
      running = true;
      let next;
      try { next = await fn(); } finally { running = false; }
      if (!stopped) schedule(typeof next === "number" ? next : intervalMs);
    }
    function schedule(ms) {
      if (timer) clearTimeout(timer);
      // ±20% jitter so thousands of open tabs do not poll in lockstep
      timer = setTimeout(tick, Math.round(ms * (0.8 + Math.random() * 0.4)));
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && !stopped && !running) { if (timer) clearTimeout(timer); tick(); }
    });
    return {
      now: function () { if (timer) clearTimeout(timer); return tick(); },
      later: schedule,
      stop: function () { stopped = true; if (timer) clearTimeout(timer); },
      get stopped() { return stopped; },
    };
  }

  /* Run fn once at an instant given in server time (epoch ms), e.g. a sale's opening. */
  function at(whenMs, skewMs, fn) {
    const delay = whenMs - (Date.now() + (skewMs || 0));
    // setTimeout caps at ~24.8 days; far-off openings are caught by the periodic refresh.
    if (delay > 2147483000) return null;
    return setTimeout(fn, Math.max(0, delay) + 250);
  }

  return { user: user, signedIn: signedIn, setUser: setUser, signOut: signOut,
           onIdentity: onIdentity, admissionToken: admissionToken, saveAdmission: saveAdmission,
           clearAdmission: clearAdmission, passExpiry: passExpiry, passEnds: passEnds,
           refreshPass: refreshPass, session: session,
           local: local, api: api, message: message, kind: kind, clockSkew: clockSkew,
           money: money, dateTime: dateTime, time: time, number: number, duration: duration,
           clock: clock, uuid: uuid, el: el, say: say, clear: clear, signInHref: signInHref,
           renderWhoami: renderWhoami, poller: poller, at: at };
})();
