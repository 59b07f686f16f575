/* The sign-in widget of templates/_signin.html: create an account, or sign in with a one-time
   code sent by email. In development no mail is sent: the server answers the code as
   `dev_code` (and logs it), and the widget shows it. FS.mountSignin(onDone) wires it up;
   onDone(user) runs after a session was started (the cookie is set by then). */
window.FS.mountSignin = function (onDone) {
  "use strict";
  const $ = function (id) { return document.getElementById(id); };
  const signup = $("signup-form"), codeForm = $("code-form");
  if (!signup || !codeForm) return;
  let codeSentTo = null;

  function busy(button, text) {
    const old = button.textContent;
    button.disabled = true;
    button.replaceChildren(FS.el("span", { class: "spinner", "aria-hidden": "true" }), " " + text);
    return function () { button.disabled = false; button.textContent = old; };
  }
  function validEmail(v) { return /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v); }
  function done(user) { FS.setUser(user); if (onDone) onDone(user); }

  signup.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const msg = $("signup-msg");
    FS.clear(msg);
    const name = signup.elements.name.value.trim();
    const email = signup.elements.email.value.trim();
    if (!name) { FS.say(msg, "error", "Please enter your name."); signup.elements.name.focus(); return; }
    if (!validEmail(email)) {
      FS.say(msg, "error", "Please enter a valid email address, like name@example.com.");
      signup.elements.email.focus();
      return;
    }
    const restore = busy($("signup-submit"), "Creating…");
    const r = await FS.api("/api/session/signup", { method: "POST", body: { name: name, email: email } });
    restore();
    if (r.status === 201 && r.data) { done(r.data.user); return; }
    FS.say(msg, "error", r.detail);
    if (FS.kind(r) === "email-taken") {
      msg.append(" ", FS.el("button", { type: "button", class: "linkish", text: "Send a code to " + email,
        onclick: function () { codeForm.elements.email.value = email; sendCode(); } }));
    }
  });

  async function sendCode() {
    const msg = $("code-msg"), sent = $("code-sent");
    FS.clear(msg);
    const email = codeForm.elements.email.value.trim();
    if (!validEmail(email)) {
      FS.say(msg, "error", "Please enter the email address you signed up with.");
      codeForm.elements.email.focus();
      return;
    }
    const restore = busy($("code-submit"), "Sending…");
    const r = await FS.api("/api/session/code", { method: "POST", body: { email: email } });
    restore();
    if (r.status !== 202) { FS.say(msg, "error", r.detail); return; }
    codeSentTo = email;
    $("code-field").hidden = false;
    $("code-resend").hidden = false;
    $("code-submit").textContent = "Sign in";
    const minutes = Math.round((r.data.expires_in || 600) / 60);
    let text = "If an account uses " + email + ", we sent it a 6-digit code. It works for " +
               minutes + " minutes.";
    if (r.data && "dev_code" in r.data) {
      text = r.data.dev_code
        ? "Development mode, no email is sent: your code is " + r.data.dev_code +
          " (it is also in the server log)."
        : "Development mode: no account uses " + email + ". Create one instead.";
    }
    FS.say(sent, "", text);
    $("code-input").focus();
  }

  codeForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const email = codeForm.elements.email.value.trim();
    if (!codeSentTo || codeSentTo !== email) { sendCode(); return; }
    const msg = $("code-msg");
    FS.clear(msg);
    const code = codeForm.elements.code.value.replace(/\s+/g, "");
    if (!/^\d{6}$/.test(code)) { FS.say(msg, "error", "The code has 6 digits."); $("code-input").focus(); return; }
    const restore = busy($("code-submit"), "Signing in…");
    const r = await FS.api("/api/session", { method: "POST", body: { email: email, code: code } });
    restore();
    if (r.ok && r.data) { done(r.data.user); return; }
    FS.say(msg, "error", r.detail);
  });
  $("code-resend").addEventListener("click", sendCode);
};
