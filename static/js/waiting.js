/* The waiting page (templates/waiting_room.html): join the line, follow your place, and go to
   the seat map when admitted. The server rendered the first state (also the no-JavaScript
   page); from here on this script updates it in place:
   - GET /api/events/{id}/queue/{ticket}: your place, estimate, and your pass when admitted;
   - GET /api/events/{id}/waiting-room: the line (how many choose seats, how many wait) and
     the sale's state (on sale, scheduled, closed, sold out). */
(function () {
  "use strict";
  const $ = function (id) { return document.getElementById(id); };
  const room = $("room");
  const EVENT_ID = Number(room.dataset.eventId);
  const QUEUE_URL = "/api/events/" + EVENT_ID + "/queue";
  const LINE_URL = "/api/events/" + EVENT_ID + "/waiting-room";
  const SEATS_URL = "/events/" + EVENT_ID + "/seats";
  const START_KEY = "flashsale.queue-start." + EVENT_ID;
  const LINE_MS = 5000;
  const ENDED = ["closed", "sold_out", "no_line"];  // states with nothing to wait for
  const initial = JSON.parse($("wr-initial").textContent);

  let line = initial.line;           // the last line status (see booking/linestatus.py)
  let place = initial.place;         // the buyer's own ticket state, or null
  let ticket = place ? place.ticket : null;
  let failures = 0;
  let lastSpoken = { position: null, at: 0, paused: null };
  let finished = false;              // admitted, left, or the sale ended: stop polling places
  let pollTimer = null;
  const baseTitle = document.title;

  /* ---- the one function that takes a place in line, with its proof of work ---- */
  async function joinQueue() {
    let pow;  // the proof of work the join carries (static/js/pow.js; {} when the event has none)
    try { pow = await window.powHeaders(EVENT_ID); } catch (e) {
      return { ok: false, status: 0, data: null, detail: String(e.message || e), headers: new Headers() };
    }
    return FS.api(QUEUE_URL, { method: "POST", headers: pow });
  }

  function show(id, visible) { $(id).hidden = !visible; }
  function only(id) {
    ["wr-signin", "wr-joining", "wr-place", "wr-turn", "wr-expired", "wr-left", "wr-ended"]
      .forEach(function (x) { show(x, x === id); });
    show("wr-leave", id === "wr-place");
    show("wr-controls", id === "wr-place" || id === "wr-joining");
  }
  function announce(text) {
    const box = $("wr-announce");
    box.textContent = "";
    setTimeout(function () { box.textContent = text; }, 50);
  }
  function error(text) { if (text) FS.say($("wr-error"), "error", text); else FS.clear($("wr-error")); }
  function touched() { $("wr-updated").textContent = FS.time(new Date()); }
  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function localiseDates() {
    document.querySelectorAll("[data-datetime]").forEach(function (node) {
      if (node.dataset.datetime) node.textContent = FS.dateTime(node.dataset.datetime);
    });
  }

  /* ---- rendering ---- */
  function etaText(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return "about " + Math.max(1, seconds) + " s";
    const m = Math.round(seconds / 60);
    return m < 60 ? "about " + m + " min" : "about " + (seconds / 3600).toFixed(1) + " h";
  }

  function paused(state) {
    if (line && line.line && line.line.full) {
      const n = line.line.active;
      return "We cannot estimate your wait right now: the line is paused while " +
        plural(n, "buyer chooses", "buyers choose") + " seats. It moves again as soon as one " +
        "of them finishes.";
    }
    if (state && state.paused) {
      return "The line is paused by the organiser. We cannot estimate your wait until it moves again.";
    }
    return null;
  }

  function renderLine() {
    if (!line) return;
    // The line's count is shared and up to a second old: never fewer than our own place says.
    const waiting = Math.max(line.line.waiting, (place && place.position) || 0);
    $("wr-waiting").textContent = plural(waiting, "person", "people") + " waiting";
    if (line.event && line.event.name) $("wr-event-name").textContent = line.event.name;
  }

  function renderPlace(state) {
    place = Object.assign({}, place || {}, state);
    only("wr-place");
    const estimate = $("wr-estimate");
    const why = paused(state);
    if (state.pre_queue) {
      $("wr-label").textContent = "You are in line before the opening";
      $("wr-position").textContent = "Drawn at opening";
      $("wr-ahead").textContent = line ? plural(line.line.waiting, "person is", "people are") +
        " in line so far." : "";
      const opens = line && line.event.sale_opens_at;
      estimate.textContent = (opens ? "The sale opens " + FS.dateTime(opens) + ". " : "") +
        "Everyone who joins before then gets a random place at the opening: no need to hurry.";
      return;
    }
    const pos = state.position;
    renderLine();
    $("wr-label").textContent = "Your place in line";
    $("wr-position").textContent = pos ? "#" + FS.number(pos) : "…";
    $("wr-ahead").textContent = pos ? plural(pos - 1, "person", "people") + " ahead of you" : "";
    estimate.textContent = why || (state.eta_seconds !== null && state.eta_seconds !== undefined
      ? "Estimated wait: " + etaText(state.eta_seconds) + "." : "");
    // Progress relative to the first place seen for this event in this tab (survives reloads).
    let start = Number(FS.session(START_KEY) || 0);
    if (pos && pos > start) { start = pos; FS.session(START_KEY, String(start)); }
    const pct = start && pos ? Math.round(100 * (start - pos + 1) / start) : 0;
    $("wr-progress").style.width = pct + "%";
    $("wr-bar").setAttribute("aria-valuenow", String(pct));
    $("wr-bar").setAttribute("aria-valuetext", pos ? "Number " + pos + " in line" : "Waiting");
    speak(pos, why);
  }

  /* Screen readers hear position changes, not every poll: at most every 15 s, or near the front,
     or when the line pauses or moves again. */
  function speak(pos, why) {
    const now = Date.now();
    const pausedNow = !!why;
    if (pausedNow !== lastSpoken.paused && lastSpoken.paused !== null) {
      announce(pausedNow ? why : "The line is moving again. You are number " + pos + ".");
    } else if (pos && pos !== lastSpoken.position && (now - lastSpoken.at > 15000 || pos <= 3)) {
      announce("You are now number " + pos + " in line.");
    } else {
      lastSpoken.paused = pausedNow;
      return;
    }
    lastSpoken = { position: pos, at: now, paused: pausedNow };
  }

  function ended(kind) {
    finished = true;
    stopPolling();
    only("wr-ended");
    const text = kind === "sold_out" ? "This event is sold out. Thank you for waiting."
      : kind === "no_line" ? "This sale has no waiting line right now: you can choose your seats directly."
      : "This sale's waiting room is closed: nobody more is let in.";
    $("wr-ended-text").textContent = text;
    show("wr-seats-link", kind === "no_line");
    $("wr-others").className = kind === "no_line" ? "btn" : "btn btn-primary";
    room.dataset.state = kind;
    announce(text);
  }

  /* ---- admission: alert the buyer, show the pass's countdown, go to the seat map ---- */
  let audio = null;
  function unlockAudio() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx && !audio) audio = new Ctx();
      if (audio && audio.state === "suspended") audio.resume();
    } catch (e) { audio = null; }
  }
  function chime() {
    try {
      if (!audio) unlockAudio();
      if (!audio || audio.state !== "running") return;  // browsers allow sound after a click only
      [0, 0.25].forEach(function (t, i) {
        const osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = i ? 1175 : 880;
        gain.gain.setValueAtTime(0.15, audio.currentTime + t);
        gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + t + 0.22);
        osc.connect(gain).connect(audio.destination);
        osc.start(audio.currentTime + t);
        osc.stop(audio.currentTime + t + 0.25);
      });
    } catch (e) { /* no sound: the title and the page still say it */ }
  }
  function notify(name) {
    try {
      if ("Notification" in window && Notification.permission === "granted") {
        new Notification("It's your turn!", { body: "Choose your seats for " + name +
          " before your pass runs out.", tag: "flashsale-turn-" + EVENT_ID });
      }
    } catch (e) { /* not available here */ }
  }

  let flashTimer = null;
  function admitted(token) {
    finished = true;
    stopPolling();
    FS.saveAdmission(EVENT_ID, token);
    FS.session(START_KEY, null);
    only("wr-turn");
    const name = (line && line.event && line.event.name) || "this event";
    // The window outlives each short-lived token: ask when it ends (then every tab knows).
    let until = FS.passEnds(EVENT_ID);
    function tick() {
      $("wr-pass-left").textContent = until ? FS.clock((until - Date.now()) / 1000) : "…";
    }
    tick();
    setInterval(tick, 1000);
    FS.refreshPass(EVENT_ID).then(function (pass) {
      if (pass && pass.endsAt) { until = pass.endsAt; tick(); }
    });
    document.title = "✅ Your turn! · " + baseTitle;
    chime();
    notify(name);
    const windowSeconds = line && line.line ? line.line.admission_window_seconds : 0;
    announce("It's your turn! Your pass to choose seats is valid for about " +
             FS.duration(until ? (until - Date.now()) / 1000 : windowSeconds) + ".");
    $("wr-turn").focus();
    if (!document.hidden) { setTimeout(go, 1500); return; }
    // A background tab keeps its turn: flash the title until the buyer comes back.
    let on = false;
    flashTimer = setInterval(function () {
      on = !on;
      document.title = on ? "⏰ Choose your seats now!" : "✅ Your turn! · " + baseTitle;
    }, 1000);
    document.addEventListener("visibilitychange", function back() {
      if (document.hidden) return;
      document.removeEventListener("visibilitychange", back);
      clearInterval(flashTimer);
      document.title = "✅ Your turn! · " + baseTitle;
      setTimeout(go, 1500);
    });
  }
  function go() { location.assign(SEATS_URL + "?admitted=1"); }

  /* ---- joining and polling ---- */
  function stopPolling() { if (pollTimer) clearTimeout(pollTimer); pollTimer = null; }
  function later(ms) { stopPolling(); if (!finished) pollTimer = setTimeout(pollPlace, ms); }
  function backoff(retryAfter) {
    failures += 1;
    return Math.max((Number(retryAfter) || 0) * 1000, Math.min(30000, 1000 * Math.pow(2, failures)));
  }

  async function join() {
    finished = false;
    error(null);
    only("wr-joining");
    const r = await joinQueue();
    if (r.status === 201 && r.data) {
      failures = 0;
      ticket = r.data.ticket;
      touched();
      if (r.data.status === "admitted") { later(0); return; }
      renderPlace(r.data);
      later(1200);
      return;
    }
    if (r.status === 401) {
      FS.setUser(null);
      only("wr-signin");
      error(r.detail);
      return;
    }
    if (r.status === 404 || r.status === 409) { await refreshLine(); if (!finished) ended("closed"); return; }
    $("wr-joining-text").textContent = r.detail + " Trying again…";
    setTimeout(join, backoff(r.headers.get("Retry-After")));
  }

  async function pollPlace() {
    pollTimer = null;
    if (finished || !ticket) return;
    const r = await FS.api(QUEUE_URL + "/" + encodeURIComponent(ticket));
    if (finished) return;
    if (r.status === 200 && r.data) {
      failures = 0;
      error(null);
      touched();
      const state = r.data;
      if (state.status === "admitted" && state.admission_token) { admitted(state.admission_token); return; }
      if (state.status === "expired") {
        finished = true;
        only("wr-expired");
        announce("Your pass ran out before you held seats. You can join the line again.");
        return;
      }
      renderPlace(state);
      const eta = state.eta_seconds || 0;
      later(eta <= 5 ? 1000 : Math.min(10000, Math.max(2000, eta * 100)));
      return;
    }
    if (r.status === 404) {
      // The ticket is gone: the sale closed (its line was cleared) or the line was reset.
      await refreshLine();
      if (!finished) join();
      return;
    }
    if (r.status === 429) { later(backoff(r.headers.get("Retry-After"))); return; }
    error(r.detail + " We keep trying.");
    later(backoff(r.headers.get("Retry-After")));
  }

  async function refreshLine() {
    const r = await FS.api(LINE_URL);
    if (!r.ok || !r.data) return;
    line = r.data;
    renderLine();
    const admittedNow = !$("wr-turn").hidden;
    if (ENDED.indexOf(line.state) !== -1 && !admittedNow) {
      ended(line.state);
      return;
    }
    if (room.dataset.state !== line.state && (line.state === "on_sale" || line.state === "scheduled")) {
      room.dataset.state = line.state;
    }
    if (place && !$("wr-place").hidden) renderPlace(place);
  }
  const linePoller = FS.poller(refreshLine, LINE_MS, { background: true });

  /* ---- buttons ---- */
  $("wr-leave").addEventListener("click", async function () {
    if (!ticket || !window.confirm("Leave the line? You would have to join again at the back.")) return;
    const r = await FS.api(QUEUE_URL + "/" + encodeURIComponent(ticket), { method: "DELETE" });
    if (!r.ok) { error(r.detail); return; }
    finished = true;
    stopPolling();
    ticket = null;
    FS.session(START_KEY, null);
    only("wr-left");
    announce("You left the line.");
  });
  ["wr-again", "wr-join-again"].forEach(function (id) {
    $(id).addEventListener("click", function () { FS.session(START_KEY, null); join(); });
  });
  const notifyBtn = $("wr-notify");
  if ("Notification" in window && Notification.permission !== "denied") {
    notifyBtn.hidden = false;
    if (Notification.permission === "granted") {
      notifyBtn.textContent = "We will notify you ✓";
    }
    notifyBtn.addEventListener("click", async function () {
      unlockAudio();  // a click is also what lets the page play the chime later
      try {
        const answer = await Notification.requestPermission();
        notifyBtn.textContent = answer === "granted" ? "We will notify you ✓"
          : "Notifications are off: keep this tab visible";
      } catch (e) { notifyBtn.hidden = true; }
    });
  }
  document.addEventListener("click", unlockAudio, { once: true });

  /* ---- start ---- */
  localiseDates();
  renderLine();
  touched();
  function start() {
    if (line && ENDED.indexOf(line.state) !== -1) { ended(line.state); return; }
    if (place && place.status === "admitted" && place.admission_token) { admitted(place.admission_token); return; }
    if (place && place.status === "expired") { finished = true; only("wr-expired"); return; }
    if (ticket) { renderPlace(place); later(1200); return; }  // the server just polled once
    join();
  }
  FS.onIdentity(function (user) {
    if (user && !ticket && !finished) start();
    if (!user) { finished = true; stopPolling(); only("wr-signin"); }
  });
  linePoller.later(LINE_MS);
  if (!FS.signedIn()) {
    only(line && ENDED.indexOf(line.state) !== -1 ? "wr-ended" : "wr-signin");
    FS.mountSignin(null);  // FS.onIdentity above starts the line once signed in
    return;
  }
  start();
})();
