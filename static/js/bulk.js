// Bulk lookup page: filter and sort the result table over the rows on the page (nothing is
// fetched again from Align), count what has arrived, and keep the CSV link on the same filter.
// Rows arrive by htmx polls (bulk.html#batch-row); everything here is re-applied after each.
"use strict";

(function () {
  const state = { filter: "all", sort: "position" };

  function rows() {
    const body = document.getElementById("bulk-rows");
    return body ? Array.from(body.querySelectorAll("tr.bulk-row")) : [];
  }

  function matches(row, filter) {
    if (filter === "all") return true;
    if (filter === "needs_resubmission") return row.hasAttribute("data-resubmission");
    return row.dataset.category === filter;
  }

  function compare(a, b) {
    const position = Number(a.dataset.position) - Number(b.dataset.position);
    if (state.sort === "status") {
      return (Number(a.dataset.rank) - Number(b.dataset.rank)) || position;
    }
    if (state.sort === "name") {
      // Rows without a name (failures) go last, in list order.
      const nameA = a.dataset.name, nameB = b.dataset.name;
      if (!nameA !== !nameB) return nameA ? -1 : 1;
      return nameA.localeCompare(nameB) || position;
    }
    return position;
  }

  function counts(all) {
    const found = { all: all.length };
    all.forEach(function (row) {
      found[row.dataset.category] = (found[row.dataset.category] || 0) + 1;
      if (row.hasAttribute("data-resubmission")) {
        found.needs_resubmission = (found.needs_resubmission || 0) + 1;
      }
    });
    return found;
  }

  function apply() {
    const body = document.getElementById("bulk-rows");
    if (!body) return;
    const all = rows();
    const sorted = all.slice().sort(compare);
    // Re-appending moves each row into place; focus stays on the row's button if it had it.
    const focused = document.activeElement;
    sorted.forEach(function (row) { body.appendChild(row); });
    if (focused && body.contains(focused)) focused.focus();
    let shown = 0;
    all.forEach(function (row) {
      row.hidden = !matches(row, state.filter);
      if (!row.hidden) shown += 1;
    });
    const numbers = counts(all);
    document.querySelectorAll("[data-filter]").forEach(function (chip) {
      const number = numbers[chip.dataset.filter] || 0;
      chip.querySelector(".chip-count").textContent = String(number);
      chip.setAttribute("aria-pressed", String(chip.dataset.filter === state.filter));
      chip.hidden = chip.dataset.filter !== "all" && number === 0 && chip.dataset.filter !== state.filter;
    });
    document.querySelectorAll("[data-sort]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.sort === state.sort));
    });
    const empty = document.querySelector(".bulk-empty");
    if (empty) empty.hidden = shown > 0 || all.length === 0;
    const download = document.querySelector(".bulk-download");
    if (download) {
      const url = download.dataset.exportUrl;
      download.href = state.filter === "all" ? url : url + "?status=" + encodeURIComponent(state.filter);
      const chip = document.querySelector("[data-filter='" + state.filter + "']");
      const label = chip && state.filter !== "all" ? chip.firstChild.textContent.trim() : "";
      download.textContent = label ? "Download CSV (" + label + ")" : "Download CSV";
    }
  }

  document.addEventListener("click", function (event) {
    const chip = event.target.closest("[data-filter]");
    if (chip) {
      state.filter = chip.dataset.filter;
      apply();
      return;
    }
    const sort = event.target.closest("[data-sort]");
    if (sort) {
      state.sort = sort.dataset.sort;
      apply();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "bulk-rows") apply();
  });

  // A row's Copy link beacon answers with the single view's "last copied" line, which has no
  // place in the table: the record is what matters, so nothing is swapped in.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.elt && event.detail.elt.closest(".bulk-table [data-audit-beacon]")) {
      event.detail.shouldSwap = false;
    }
  });

  // The start button is for the list that was checked: once the list is edited, check it again.
  document.addEventListener("input", function (event) {
    if (event.target.id !== "bulk-ids") return;
    const start = document.getElementById("bulk-start");
    const changed = document.getElementById("bulk-changed");
    if (start) start.disabled = true;
    if (changed) changed.hidden = false;
  });

  document.addEventListener("DOMContentLoaded", apply);
})();
