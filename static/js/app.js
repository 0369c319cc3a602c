// KYC Desk page behaviour. Event delegation on the document, so content swapped in by htmx
// works without re-initialising anything. No inline scripts anywhere: this file is all of it.
"use strict";

(function () {
  const CONFIRMATION_MS = 2000;

  function confirmCopy(button, text) {
    const original = button.dataset.copyLabel || button.textContent;
    button.dataset.copyLabel = original;
    button.textContent = text;
    button.classList.add("is-copied");
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      button.textContent = original;
      button.classList.remove("is-copied");
    }, CONFIRMATION_MS);
  }

  // When the browser refuses the clipboard (no permission, insecure origin), select the text
  // so one Ctrl+C / Cmd+C copies it, and say so.
  function selectForManualCopy(button) {
    const source = button.dataset.copySource && document.querySelector(button.dataset.copySource);
    const target = source || button.previousElementSibling;
    if (target) {
      const range = document.createRange();
      range.selectNodeContents(target);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    const shortcut = /Mac|iPhone|iPad/.test(navigator.platform) ? "⌘C" : "Ctrl+C";
    confirmCopy(button, "Selected: press " + shortcut);
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy-text]");
    if (!button) return;
    const text = button.dataset.copyText;
    const done = button.dataset.copyDone || "Copied";
    if (!navigator.clipboard || !window.isSecureContext) {
      selectForManualCopy(button);
      return;
    }
    navigator.clipboard.writeText(text).then(
      function () { confirmCopy(button, done); },
      function () { selectForManualCopy(button); }
    );
  });

  // Paste-and-go: focusing a filled ID field selects it, so the next paste replaces it.
  document.addEventListener("focusin", function (event) {
    if (event.target.id === "customer-id" && event.target.value) event.target.select();
  });

  // --- Which customer is on screen ------------------------------------------------------------
  // The ID field always names the customer the result area shows (or the ID that failed), so
  // staff never read one customer's card under another customer's ID.
  // What staff typed while the answer was on its way is theirs (the next ID, pasted early): the
  // answer must not overwrite it, or Enter would look the previous customer up again.
  let fieldEditedAt = 0;
  let lookupStartedAt = 0;

  document.addEventListener("input", function (event) {
    if (event.target.id === "customer-id") fieldEditedAt = performance.now();
  });

  function syncFieldWithResult() {
    const input = document.getElementById("customer-id");
    const shown = document.querySelector("#result [data-customer-id]");
    if (!input || !shown || fieldEditedAt > lookupStartedAt) return;
    if (input.value !== shown.dataset.customerId) input.value = shown.dataset.customerId;
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "result") return;
    syncFieldWithResult();
    startCountdowns(event.detail.target);
  });

  // --- A lookup in flight ---------------------------------------------------------------------
  // Read a customer ID the way the server does, only to say which customer is being fetched.
  const HYPHENATED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const BARE = /^[0-9a-f]{32}$/;
  const DETAIL_PATH = /\/customers\/([0-9a-f-]{36})\/?(?:\?|$)/;

  function customerIdFrom(text) {
    let candidate = String(text || "").trim();
    if (/^(https?:\/\/|\/)/i.test(candidate)) {
      const segments = candidate.split(/[?#]/)[0].split("/").filter(Boolean);
      candidate = segments.length ? segments[segments.length - 1] : "";
    }
    candidate = candidate.toLowerCase().replace(/^urn:uuid:/, "").replace(/^\{(.*)\}$/, "$1");
    if (HYPHENATED.test(candidate)) return candidate;
    if (BARE.test(candidate)) {
      return [candidate.slice(0, 8), candidate.slice(8, 12), candidate.slice(12, 16),
        candidate.slice(16, 20), candidate.slice(20)].join("-");
    }
    return null;
  }

  function requestedCustomerId(requestConfig) {
    const fromPath = DETAIL_PATH.exec(requestConfig.path || "");
    if (fromPath) return fromPath[1];
    return customerIdFrom(requestConfig.parameters && requestConfig.parameters.customer_id);
  }

  let inFlight = null;

  function setProgress(region, requested, sameAsShown) {
    const text = region.querySelector(".lookup-progress-text");
    const elapsed = region.querySelector(".lookup-elapsed");
    if (text) {
      if (!requested) text.textContent = "Checking what you entered…";
      else text.textContent = (sameAsShown ? "Refreshing " : "Looking up ") + requested + "…";
    }
    if (elapsed) elapsed.textContent = "0 s";
  }

  // While a lookup runs, the card on screen is either the same customer (dimmed, "Refreshing")
  // or replaced by a skeleton: a previous customer is never left looking like the answer.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!event.detail.target || event.detail.target.id !== "result") return;
    lookupStartedAt = performance.now();
    const region = document.getElementById("lookup-region");
    if (!region) return;
    const requested = requestedCustomerId(event.detail.requestConfig);
    const shown = document.querySelector("#result [data-customer-id]");
    const sameAsShown = Boolean(requested && shown && shown.dataset.customerId === requested);
    region.dataset.pending = sameAsShown ? "same" : "other";
    setProgress(region, requested, sameAsShown);
    // A link (demo, recent, Refresh, Try again) names its customer in the field at once, as a
    // search does; and one far down the side column (on a phone, below the card) brings the
    // field and the progress line into sight.
    const input = document.getElementById("customer-id");
    if (input && requested && !event.detail.elt.closest("form")) input.value = requested;
    // A demo e-mail (the search page's demo list) goes into the field as if it had been typed.
    const demoEmail = event.detail.elt.closest("[data-demo-email]");
    if (input && demoEmail) input.value = demoEmail.elements.customer_id.value;
    const form = document.querySelector(".lookup-form");
    if (form && region.getBoundingClientRect().top < 0) form.scrollIntoView({ block: "start" });
    if (inFlight) window.clearInterval(inFlight.timer);
    const started = Date.now();
    const elapsed = region.querySelector(".lookup-elapsed");
    inFlight = {
      xhr: event.detail.xhr,
      timer: window.setInterval(function () {
        if (elapsed) elapsed.textContent = Math.floor((Date.now() - started) / 1000) + " s";
      }, 1000),
    };
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (!inFlight || event.detail.xhr !== inFlight.xhr) return;
    window.clearInterval(inFlight.timer);
    inFlight = null;
    const region = document.getElementById("lookup-region");
    if (region) delete region.dataset.pending;
  });

  // --- Rate limits: Try again only once Align's wait is over -----------------------------------
  // Counted from a deadline, not by ticks: a background tab's timers may run late. htmx reports
  // one swap several times (the result and each out-of-band part), so a button counts down once.
  function startCountdowns(root) {
    root.querySelectorAll("[data-retry-after]:not([data-counting])").forEach(function (button) {
      const seconds = parseInt(button.dataset.retryAfter, 10);
      if (!(seconds > 0)) return;
      button.dataset.counting = "true";
      const readyAt = Date.now() + seconds * 1000;
      const wait = document.createElement("span");
      wait.className = "retry-wait";
      wait.setAttribute("aria-hidden", "true");
      button.append(wait);
      button.setAttribute("aria-disabled", "true");
      function tick() {
        const remaining = Math.ceil((readyAt - Date.now()) / 1000);
        if (remaining <= 0 || !document.contains(button)) {
          window.clearInterval(timer);
          button.removeAttribute("aria-disabled");
          wait.remove();
          return;
        }
        wait.textContent = " in " + remaining + " s";
      }
      const timer = window.setInterval(tick, 250);
      tick();
    });
  }

  // A waiting Try again neither navigates nor reaches htmx (this runs first, in the capture phase).
  document.addEventListener("click", function (event) {
    const waiting = event.target.closest && event.target.closest("[data-retry-after][aria-disabled='true']");
    if (!waiting) return;
    event.preventDefault();
    event.stopPropagation();
  }, true);

  document.addEventListener("DOMContentLoaded", function () { startCountdowns(document); });

  // The field's error line is swapped out-of-band; keep aria-invalid in step with it.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.target.id !== "customer-id-status") return;
    const input = document.getElementById("customer-id");
    if (!input) return;
    if (event.target.textContent.trim()) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  });

  // Answers htmx does not swap (a 403, a 500) and a dashboard that cannot be reached still get
  // a visible message in the result area instead of silence.
  function showProblem(title, sentence) {
    const result = document.getElementById("result");
    if (!result) return;
    const card = document.createElement("div");
    card.className = "card failure-card";
    card.setAttribute("role", "alert");
    const heading = document.createElement("h2");
    heading.className = "failure-title";
    heading.textContent = title;
    const text = document.createElement("p");
    text.textContent = sentence;
    card.append(heading, text);
    result.replaceChildren(card);
  }

  // The Copy link button's audit beacon fails quietly: the copy has already happened, and the
  // server logs why the record could not be written.
  function isAuditBeacon(event) {
    return Boolean(event.detail.elt && event.detail.elt.closest("[data-audit-beacon]"));
  }

  document.addEventListener("htmx:responseError", function (event) {
    if (isAuditBeacon(event)) return;
    const status = event.detail.xhr.status;
    if (status === 403) {
      showProblem("You don't have access to customer lookups",
        "Ask an administrator to add you to the Compliance staff group (customers.lookup_customer).");
    } else {
      showProblem("Something went wrong on our side (HTTP " + status + ")",
        "The error was logged. Try again; if it keeps happening, tell an administrator.");
    }
  });

  document.addEventListener("htmx:sendError", function (event) {
    if (isAuditBeacon(event)) return;
    showProblem("The dashboard could not be reached",
      "Check your connection, then try again.");
  });
})();
