// Start new KYC session: the confirmation dialog (templates/customers/lookup.html, kyc-session).
// A native <dialog> opened by showModal(): it traps focus, Escape closes it, and Cancel closes it
// too; focus then goes back to the button that opened it. Loaded as a file: the CSP forbids
// inline script. The POST itself is htmx's (the form's hx-post), CSRF token included.
(function () {
  "use strict";

  let opener = null;

  document.addEventListener("click", function (event) {
    const open = event.target.closest("[data-dialog-open]");
    if (open) {
      const dialog = document.getElementById(open.dataset.dialogOpen);
      if (dialog && !dialog.open) {
        opener = open;
        dialog.showModal();
      }
      return;
    }
    const close = event.target.closest("[data-dialog-close]");
    if (close) {
      const dialog = close.closest("dialog");
      if (dialog) dialog.close();
    }
  });

  // "close" also follows Escape (the dialog's own cancel), so focus returns either way.
  document.addEventListener("close", function (event) {
    if (event.target.id !== "kyc-session-dialog") return;
    if (opener && opener.isConnected) opener.focus();
  }, true);

  // Once the start has an answer the dialog's work is done: the answer is in the card.
  document.addEventListener("htmx:afterRequest", function (event) {
    const dialog = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("#kyc-session-dialog");
    if (dialog && dialog.open) dialog.close();
  });

  // After a successful start the card is new, and the button gone: focus the note saying so.
  document.addEventListener("htmx:afterSwap", function (event) {
    const note = event.detail.target.querySelector(".kyc-session-note");
    if (note) note.focus();
  });
}());
