/* Readable messages for every problem the API answers, in one table.

   The API answers errors as problem+json: `type` ends in a kind ("…/problems/hold-expired"),
   `detail` is for developers. Pages never show `detail` alone: FS.message(result) looks the
   kind up here (then the admission `reason`, then the HTTP status) and returns words for a
   buyer. `{detail}` in a message is replaced by the server's detail when it helps. */
window.FS_MESSAGES = (function () {
  "use strict";
  const BY_KIND = {
    // input
    "malformed-json": "Something went wrong sending that form. Please try again.",
    "validation": "Please check what you entered: {detail}.",
    "unsupported-media-type": "Something went wrong sending that form. Please reload the page.",
    "body-too-large": "That request was too large. Please choose fewer seats.",
    // who you are
    "unauthenticated": "Please sign in to continue.",
    "session-expired": "Your session has ended. Please sign in again.",
    "cross-origin": "For your safety this can only be done from this site's own pages.",
    "email-taken": "There is already an account with this email. Sign in with a code instead.",
    "invalid-code": "That code is not right. Check it and try again ({detail}).",
    "code-expired": "That code has expired or was already used. Ask for a new one.",
    "too-many-attempts": "Too many wrong codes. Ask for a new code.",
    "too-many-codes": "Too many codes were sent to this email. Please wait a few minutes.",
    "too-many-accounts": "Too many accounts were just created from your network. Please wait a minute.",
    "forbidden": "You are not allowed to do that.",
    // waiting room and admission
    "admission-required": "This sale has a waiting room: join the line to get your pass first.",
    "admission-rejected": "Your pass to buy is no longer valid.",
    "waiting-room-closed": "The waiting room for this sale is closed.",
    "waiting-room-unavailable": "The waiting room is busy right now. We will keep trying.",
    "ticket-not-found": "Your place in line was not found. Joining the line again…",
    "poll-rate-limited": "Checking too often; slowing down.",
    "event-not-found": "We could not find this event. It may have been removed.",
    // seats and holds
    "not-on-sale": "These seats are not on sale right now.",
    "seats-unavailable": "Sorry, some of those seats were just taken by someone else.",
    "unknown-seats": "Some of those seats are not part of this event. Please reload the seat map.",
    "too-many-seats": "You can hold at most {max} seats at once.",
    "duplicate-seats": "A seat was chosen twice. Please check your selection.",
    "buyer-seat-cap": "You already have as many seats for this event as one buyer may have.",
    // reservations and payment
    "not-found": "We could not find that. It may not exist, or it belongs to another account.",
    "hold-expired": "Your hold has expired and the seats went back on sale. Nothing was charged.",
    "hold-cancelled": "This reservation was cancelled, so it cannot be paid.",
    "already-paid": "This reservation is already paid. You're all set.",
    "payment-in-progress": "A payment for this reservation is already in progress.",
    "not-cancellable": "This reservation can no longer be cancelled.",
    "idempotency-key-required": "Something went wrong starting the payment. Please try again.",
    "idempotency-key-invalid": "Something went wrong starting the payment. Please try again.",
    "idempotency-key-reused": "Something went wrong starting the payment. Please reload the page.",
    // the service
    "unavailable": "The service is very busy right now. Please try again in a moment.",
    "internal": "Something went wrong on our side. Please try again.",
    "method-not-allowed": "That action is not available here.",
  };
  // Why an admission pass was refused (the `reason` of an admission-rejected problem).
  const BY_REASON = {
    expired: "Your pass to buy has run out of time.",
    not_active: "Your pass to buy has been used or has ended.",
    forged: "Your pass to buy could not be read.",
    wrong_user: "That pass to buy belongs to another account.",
    wrong_event: "That pass to buy is for another event.",
  };
  const BY_STATUS = {
    0: "You seem to be offline. Check your connection; we will try again.",
    400: "Something went wrong with that request. Please try again.",
    401: "Please sign in to continue.",
    403: "You are not allowed to do that.",
    404: "We could not find that page or item.",
    409: "That could not be done right now: things changed in the meantime.",
    422: "Please check what you entered.",
    429: "Too many requests. Please wait a moment.",
    500: "Something went wrong on our side. Please try again.",
    502: "The service is restarting. Please try again in a moment.",
    503: "The service is very busy right now. Please try again in a moment.",
  };

  /* Why a payment failed (reservation.payment.failure_reason, written by the worker). */
  function paymentFailure(reason) {
    const r = String(reason || "");
    if (/declin/i.test(r)) return "The payment was declined by your bank or card. Nothing was charged.";
    if (/expired/i.test(r)) return "Your hold ran out before the payment went through, so the charge was refunded.";
    if (/cancel/i.test(r)) return "The reservation was cancelled before the payment went through, so the charge was refunded.";
    return "The payment did not go through. Nothing was charged.";
  }

  function kindOf(data) {
    const type = data && typeof data.type === "string" ? data.type : "";
    const slash = type.lastIndexOf("/");
    return slash === -1 ? type : type.slice(slash + 1);
  }

  /* The words for a failed FS.api() result {status, data}. `vars` fills {name} slots. */
  function message(result, vars) {
    const data = result && result.data;
    const kind = kindOf(data);
    let text = BY_KIND[kind];
    if (kind === "admission-rejected" && data && BY_REASON[data.reason]) {
      text = BY_REASON[data.reason];
    }
    if (!text) text = BY_STATUS[result && result.status] || BY_STATUS[500];
    const fill = Object.assign({ detail: data && data.detail ? String(data.detail) : "" },
                               vars || {});
    return text.replace(/\{(\w+)\}/g, function (m, k) {
      return fill[k] !== undefined ? String(fill[k]) : m;
    }).replace(/\s*\(\)/, "").replace(/:\s*\./, ".");
  }

  return { message: message, kindOf: kindOf, paymentFailure: paymentFailure, BY_KIND: BY_KIND, BY_REASON: BY_REASON,
           BY_STATUS: BY_STATUS };
})();
