/* Proof of work for joining a queue (the server side is waitingroom/pow.py); the waiting page's
 * joinQueue() (static/js/waiting.js) calls it.
 *
 * One function: `await powHeaders(eventId[, challengeBody])` returns the headers a queue join
 * sends ({} when the event asks for no proof of work). It fetches a challenge from
 * GET /api/events/{id}/challenge (or uses `challengeBody`, e.g. the one a refused join carried),
 * then finds a nonce such that SHA-256 of the UTF-8 bytes "<challenge>:<nonce>" starts with
 * `difficulty` zero bits. Web Crypto is asynchronous, so digests run in batches: one await per
 * batch instead of per hash. Web Crypto needs a secure context (HTTPS, or localhost).
 */
(function () {
  "use strict";
  const BATCH = 512;

  function meets(buffer, difficulty) {
    if (difficulty <= 0) return true;
    return (new DataView(buffer).getUint32(0) >>> (32 - difficulty)) === 0;
  }

  async function solve(challenge, difficulty) {
    if (!(window.crypto && window.crypto.subtle)) {
      throw new Error("this page needs HTTPS (Web Crypto) to join the queue");
    }
    const encoder = new TextEncoder();
    const prefix = encoder.encode(challenge + ":");
    for (let base = 0; ; base += BATCH) {
      const digests = [];
      for (let i = 0; i < BATCH; i++) {
        const digits = encoder.encode(String(base + i));
        const message = new Uint8Array(prefix.length + digits.length);
        message.set(prefix);
        message.set(digits, prefix.length);
        digests.push(crypto.subtle.digest("SHA-256", message));
      }
      const results = await Promise.all(digests);
      for (let i = 0; i < BATCH; i++) {
        if (meets(results[i], difficulty)) return String(base + i);
      }
    }
  }

  window.powHeaders = async function powHeaders(eventId, challengeBody) {
    let body = challengeBody;
    if (!body || !body.challenge) {
      const resp = await fetch("/api/events/" + encodeURIComponent(eventId) + "/challenge",
        { cache: "no-store" });
      if (!resp.ok) return {};  // the join's own answer will say what is wrong
      body = await resp.json();
    }
    if (!body.challenge || !(body.difficulty > 0)) return {};
    const nonce = await solve(body.challenge, body.difficulty);
    return { "X-PoW-Challenge": body.challenge, "X-PoW-Nonce": nonce };
  };
})();
