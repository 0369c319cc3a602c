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
