// A pending customer's open page keeps up with its KYC by itself (issue #13).
//
// The card says how, in data- attributes (customers/services/history.py: KycWatch):
// - "webhook": every data-watch-seconds, ask our own server whether a webhook newer than
//   data-watch-after has arrived for this customer (one indexed query; no call to Align). Only
//   when one has, look the customer up again.
// - "fallback" (webhooks off): look the customer up again every data-watch-seconds, for at most
//   data-watch-stop-after seconds.
// Only while the tab is visible: a hidden tab runs no timer, and when it is shown again the check
// that fell due meanwhile runs at once. An automatic lookup answers 204 when the status is what
// the card shows, so the card stays as it is; otherwise the new card replaces it, saying what
// changed, and the announcer below the result says it to screen readers.
// Requests carry X-Automatic-Request, so they do not keep an idle session alive
// (dashboard/accounts/sessions.py), and HX-Request, so an ended session answers with a redirect to log in.
"use strict";

(function () {
  const CHECKED_AT_HEADER = "X-Checked-At";
  let watch = null;
  // The watch a swap of our own hands on to the next card of the same customer, so the fallback's
  // time limit runs from when watching began, not from the last change.
  let carried = null;

  function visible() {
    return document.visibilityState === "visible";
  }

  function staffLookupInFlight() {
    const region = document.getElementById("lookup-region");
    return Boolean(region && region.dataset.pending);
  }

  function requestOptions() {
    return {
      credentials: "same-origin",
      cache: "no-store",
      headers: {
        "HX-Request": "true",
        "HX-Current-URL": window.location.href,
        "X-Automatic-Request": "1",
      },
    };
  }

  // Start watching the card on screen, if it asks to be watched; stop watching one that left.
  function begin() {
    const card = document.querySelector("#result .customer-card[data-kyc-watch]");
    if (watch && watch.card === card) return;
    if (watch) window.clearTimeout(watch.timer);
    watch = null;
    const handedOn = carried;
    carried = null;
    if (!card) return;
    const sameCustomer = handedOn && handedOn.customerId === card.dataset.customerId;
    watch = {
      card: card,
      customerId: card.dataset.customerId,
      mode: card.dataset.kycWatch,
      intervalMs: Math.max(1, parseInt(card.dataset.watchSeconds, 10) || 60) * 1000,
      refreshUrl: card.dataset.watchRefresh,
      changesUrl: card.dataset.watchChanges,
      after: card.dataset.watchAfter || "0",
      newest: null,
      stopAfterMs: (parseInt(card.dataset.watchStopAfter, 10) || 0) * 1000,
      startedAt: sameCustomer ? handedOn.startedAt : Date.now(),
      lastCheck: Date.now(),
      timer: null,
      stopped: false,
    };
    const line = card.querySelector("[data-watch-line]");
    if (line) line.hidden = false;
    schedule();
  }

  function schedule() {
    if (!watch || watch.stopped) return;
    window.clearTimeout(watch.timer);
    watch.timer = null;
    if (!visible()) return;
    const due = Math.max(0, watch.lastCheck + watch.intervalMs - Date.now());
    watch.timer = window.setTimeout(check, due);
  }

  function check() {
    const current = watch;
    if (!current || current.stopped || !visible()) return;
    if (current.stopAfterMs && Date.now() - current.startedAt >= current.stopAfterMs) {
      stop(current, "Stopped checking after " + Math.round(current.stopAfterMs / 60000) + " minutes");
      return;
    }
    current.lastCheck = Date.now();
    // Staff's own lookup is on its way: its answer replaces the card, and says what to do next.
    if (staffLookupInFlight()) {
      schedule();
      return;
    }
    const news = current.mode === "webhook" ? askForNews(current) : Promise.resolve(true);
    news
      .then(function (changed) { return changed ? lookUpAgain(current) : null; })
      .catch(function () { /* the dashboard could not be reached: the next check tries again */ })
      .then(function () { if (watch === current) schedule(); });
  }

  // An ended session answers an htmx request with HX-Redirect to the login page: go there, as a
  // click on Refresh would, rather than keep a customer on screen for nobody.
  function followedRedirect(response) {
    const to = response.headers.get("HX-Redirect");
    if (!to) return false;
    window.location.assign(to);
    return true;
  }

  function askForNews(current) {
    const url = current.changesUrl + "?after=" + encodeURIComponent(current.after);
    return fetch(url, requestOptions()).then(function (response) {
      if (followedRedirect(response) || response.status !== 200) return false;
      return response.json().then(function (answer) {
        current.newest = String(answer.newest);
        return true;
      });
    });
  }

  function lookUpAgain(current) {
    return fetch(current.refreshUrl, requestOptions()).then(function (response) {
      if (followedRedirect(response)) return null;
      if (response.status === 204) {
        checked(current, response);
        return null;
      }
      return response.text().then(function (html) {
        if (response.ok) swapCard(current, html);
        else couldNotCheck(current);
      });
    });
  }

  // Nothing changed: the card stays, and says when it was last checked.
  function checked(current, response) {
    if (current.newest) current.after = current.newest;
    const at = response.headers.get(CHECKED_AT_HEADER);
    const time = current.card.querySelector("[data-watch-checked]");
    if (at && time) {
      time.textContent = at;
      time.setAttribute("datetime", at);
    }
  }

  function couldNotCheck(current) {
    const line = current.card.querySelector("[data-watch-line]");
    if (current.mode === "webhook") {
      // Asking again would call Align every few seconds for as long as it fails.
      current.stopped = true;
      if (line) line.textContent = "Align reported a change, but the customer could not be fetched again. Press Refresh.";
      return;
    }
    const state = current.card.querySelector("[data-watch-state]");
    if (state) state.textContent = "Checking every " + current.intervalMs / 1000 + " s (the last check failed)";
  }

  function swapCard(current, html) {
    const result = document.getElementById("result");
    // Only over the card this check was made for, and never over a lookup staff started meanwhile.
    if (watch !== current || !result || !result.contains(current.card) || staffLookupInFlight()) return;
    carried = { customerId: current.customerId, startedAt: current.startedAt };
    // The result area reads every new card aloud; for this swap only the change is said, below.
    result.setAttribute("aria-live", "off");
    htmx.swap(result, html, { swapStyle: "innerHTML" }, { eventInfo: { target: result } });
    announce(result);
  }

  function announce(result) {
    const change = result.querySelector("[data-kyc-change]");
    const announcer = document.getElementById("kyc-change-announcer");
    if (!change || !announcer) return;
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = change.textContent; }, 100);
  }

  function stop(current, words) {
    current.stopped = true;
    window.clearTimeout(current.timer);
    const state = current.card.querySelector("[data-watch-state]");
    if (state) state.textContent = words;
    const button = current.card.querySelector("[data-watch-stop]");
    if (!button) return;
    const hadFocus = document.activeElement === button;
    button.hidden = true;
    const line = current.card.querySelector("[data-watch-line]");
    if (hadFocus && line) {
      line.setAttribute("tabindex", "-1");
      line.focus();
    }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-watch-stop]");
    if (button && watch && watch.card.contains(button)) stop(watch, "Stopped checking");
  });

  document.addEventListener("visibilitychange", function () {
    if (!watch) return;
    if (visible()) schedule();
    else window.clearTimeout(watch.timer);
  });

  // Staff's next lookup is read aloud as before.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.target && event.detail.target.id === "result") {
      event.detail.target.setAttribute("aria-live", "polite");
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "result") begin();
  });

  document.addEventListener("DOMContentLoaded", begin);
})();
