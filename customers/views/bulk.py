"""Bulk lookup pages: paste a list, see what was read, start it, watch its rows arrive, download them.

All render `customers/bulk.html`. A batch's page polls itself every second while the batch runs
(an htmx GET with `?after=<rows it has>`): the answer is only the rows completed since, appended
to the table, and the progress line out of band. A full page (reload, deep link) renders every
row so far from the same row partial. Polling rather than server-sent events: a poll holds a
worker thread for milliseconds, not for the length of the batch, and any instance behind the
load balancer can answer it, because the batch lives in the shared cache (customers.services.bulk).
While that cache can't be reached, starting a batch and a batch's page, poll and CSV answer 503
with words that say so, never a 500.
"""

import csv
import functools
import io
import uuid

from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh, reswap

from customers.models import BulkLookup
from customers.services import audit
from customers.services.bulk import export as csv_export
from customers.services.bulk import paste as bulk_paste
from customers.services.bulk import rows as bulk_rows
from customers.services.bulk import runner as bulk_runner
from customers.services.bulk import state as bulk_state
from customers.services.decisions import AUDIT_UNAVAILABLE
from customers.services.spreadsheets import BYTE_ORDER_MARK, csv_file_name
from customers.views.lookup import HtmxHttpRequest, customer_pages

BULK_TEMPLATE = "customers/bulk.html"
EMAIL_EXPORT_PERMISSION = "customers.export_customer_email"
TOO_MANY_RUNNING = "Too many bulk lookups are running; try again in a minute."
LIST_CHANGED = "The list changed after it was checked. Check what was read, then start it."
BULK_UNAVAILABLE = (
    "Lookups in bulk are unavailable right now: the cache that keeps their results can't be reached. "
    "Nothing was looked up. Single lookups on the search page still work. Try again in a minute."
)
EXPORT_NOT_RECORDED = (
    "Nothing was downloaded: the download could not be put on record in the audit log. "
    "Try again in a minute; if it keeps happening, tell an administrator."
)


@require_http_methods(["GET", "POST"])
@customer_pages
def bulk_lookup(request: HtmxHttpRequest) -> HttpResponse:
    """The paste box; posted, what was read from it, before anything is fetched."""
    if request.method == "GET":
        return _paste_page(request, pasted="")
    pasted = request.POST.get("customer_ids", "")
    found = bulk_paste.read_customer_list(pasted)
    return _paste_page(request, pasted=pasted, found=found, status=200 if found.can_start else 400)


@require_POST
@customer_pages
def bulk_start(request: HtmxHttpRequest) -> HttpResponse:
    """Start the list that was checked, and send the browser to its page (303: a reload never re-runs it).

    The form sends the paste again with the digest of the IDs the check read: a list edited
    since, or a POST that did not come from a check, is checked again instead of started.
    """
    pasted = request.POST.get("customer_ids", "")
    found = bulk_paste.read_customer_list(pasted)
    if not found.can_start:
        return _paste_page(request, pasted=pasted, found=found, status=400)
    if request.POST.get("checked") != bulk_paste.list_digest(found.customer_ids):
        return _paste_page(request, pasted=pasted, found=found, notice=LIST_CHANGED, status=400)
    try:
        batch_id = bulk_runner.start_batch(
            audit.Actor.of(request), found, with_email=request.user.has_perm(EMAIL_EXPORT_PERMISSION)
        )
    except bulk_runner.TooManyBatches:
        response = _paste_page(request, pasted=pasted, found=found, notice=TOO_MANY_RUNNING, status=503)
        response["Retry-After"] = "60"
        return response
    except bulk_state.ResultsUnavailable:
        response = _paste_page(request, pasted=pasted, found=found, notice=BULK_UNAVAILABLE, status=503)
        response["Retry-After"] = "60"
        return response
    except audit.AuditUnavailable:
        notice = f"{AUDIT_UNAVAILABLE.title}. {AUDIT_UNAVAILABLE.sentence}"
        return _paste_page(request, pasted=pasted, found=found, notice=notice, status=503)
    response = redirect("customers:bulk_batch", batch_id=batch_id)
    response.status_code = 303  # See Other: the page is fetched with GET, and a reload never posts again
    return response


def batch_pages(view):
    """What a batch's page and its CSV share: GET only, a customer page, and while the cache is
    unreachable a 503 that says so, never a 500."""

    @functools.wraps(view)
    def answer(request: HtmxHttpRequest, batch_id: uuid.UUID) -> HttpResponse:
        try:
            return view(request, batch_id)
        except bulk_state.ResultsUnavailable:
            return _results_unavailable(request, batch_id)

    return require_GET(customer_pages(answer))


@batch_pages
def bulk_batch(request: HtmxHttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    """A batch's page; with htmx and `?after=N`, the rows after the first N and the progress line."""
    state = _owned_batch(request, batch_id)
    if state is None:
        if request.htmx:
            # The poll of a page whose batch expired: reload it, to say so in full.
            return HttpResponseClientRefresh()
        return _expired_page(request, batch_id)
    bulk_state.keep_watching(state)
    if request.htmx and "after" in request.GET:
        return _poll(request, state)
    return _batch_page(request, state)


@batch_pages
def bulk_export(request: HtmxHttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    """The batch's rows as CSV (those of one status with `?status=`), once the download is on record."""
    state = _owned_batch(request, batch_id)
    if state is None:
        return redirect("customers:bulk_batch", batch_id=batch_id)
    status = request.GET.get("status", "")
    if status and status not in bulk_rows.CATEGORY_WORDS:
        return HttpResponseBadRequest(
            f"No such status. Use one of: {', '.join(bulk_rows.CATEGORY_WORDS)}; or none for every row.\n",
            content_type="text/plain; charset=utf-8",
        )
    bulk_state.keep_watching(state)
    rows = [row for row in bulk_state.rows_after(state) if not status or bulk_rows.matches(row, status)]
    with_email = state.with_email and request.user.has_perm(EMAIL_EXPORT_PERMISSION)
    try:
        export = audit.record_bulk_export(
            request, batch_id=batch_id, rows=len(rows), with_email=with_email, status_filter=status
        )
    except audit.AuditUnavailable:
        return _batch_page(request, state, notice=EXPORT_NOT_RECORDED, status=503)
    text = io.StringIO()
    csv.writer(text).writerows(csv_export.csv_records(rows, with_email=with_email))
    filename = csv_file_name("bulk", state.batch_id[:8], status, made_at=export.exported_at)
    response = HttpResponse(BYTE_ORDER_MARK + text.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _owned_batch(request: HtmxHttpRequest, batch_id: uuid.UUID) -> bulk_state.BatchState | None:
    """The batch if it is this user's; someone else's is not found (its existence is not theirs to know)."""
    state = bulk_state.read_batch(batch_id)
    if state is not None and state.owner_id != request.user.pk:
        raise Http404("No such bulk lookup")
    return state


def _paste_page(
    request: HtmxHttpRequest,
    *,
    pasted: str,
    found: bulk_paste.CustomerList | None = None,
    notice: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        # A paste too long to read is not sent back: it would only be too long again.
        "pasted": pasted if len(pasted) <= bulk_paste.MAX_PASTE_CHARS else "",
        "found": found,
        "notice": notice,
        "max_customers": bulk_paste.MAX_CUSTOMERS,
    }
    if found is not None and found.can_start:
        context["checked"] = bulk_paste.list_digest(found.customer_ids)
    return render(request, BULK_TEMPLATE, context, status=status)


def _batch_page(
    request: HtmxHttpRequest, state: bulk_state.BatchState, *, notice: str = "", status: int = 200
) -> HttpResponse:
    rows = bulk_state.rows_after(state)
    context = _batch_context(state, after=len(rows)) | {"rows": rows, "notice": notice}
    return render(request, BULK_TEMPLATE, context, status=status)


def _poll(request: HtmxHttpRequest, state: bulk_state.BatchState) -> HttpResponse:
    try:
        after = min(max(int(request.GET["after"]), 0), state.done)
    except ValueError:
        return reswap(HttpResponseBadRequest(), "none")
    rows = bulk_state.rows_after(state, after)
    context = _batch_context(state, after=after + len(rows)) | {"rows": rows, "swap_out_of_band": True}
    # One render for all of it: a render per row would run the context processors once a row.
    return render(request, f"{BULK_TEMPLATE}#batch-poll", context)


def _batch_context(state: bulk_state.BatchState, *, after: int) -> dict:
    return {
        "state": state,
        "after": after,
        # Polling stops once the batch has ended and every row of it is on the page, or once it
        # is clear that the process running it stopped.
        "polling": not (state.finished and after >= state.done) and not state.stalled,
        "categories": bulk_rows.CATEGORY_WORDS,
        "results_kept_minutes": bulk_state.RESULTS_TTL_SECONDS // 60,
    }


def _results_unavailable(request: HtmxHttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    """The cache can't be reached: the page says so, and a poll says so and keeps polling from where
    the page is, so the rows carry on arriving once the cache is back. Whose batch it is comes from
    its record, as for an expired batch."""
    if not BulkLookup.objects.filter(pk=batch_id, user=request.user).exists():
        raise Http404("No such bulk lookup")
    if request.htmx and "after" in request.GET:
        try:
            after = max(int(request.GET["after"]), 0)
        except ValueError:
            return reswap(HttpResponseBadRequest(), "none")
        context = {"batch_id": batch_id, "after": after}
        return render(request, f"{BULK_TEMPLATE}#batch-poll-unavailable", context, status=503)
    response = render(request, BULK_TEMPLATE, {"unavailable": True}, status=503)
    response["Retry-After"] = "60"
    return response


def _expired_page(request: HtmxHttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    """Gone from the cache: say so, and offer the customers it sent to Align, ready to run again."""
    if not BulkLookup.objects.filter(pk=batch_id, user=request.user).exists():
        raise Http404("No such bulk lookup")
    rerun = bulk_state.rerun_list(batch_id)
    context = {
        "expired": True,
        "pasted": "\n".join(rerun),
        "rerun_count": len(rerun),
        "max_customers": bulk_paste.MAX_CUSTOMERS,
        "results_kept_minutes": bulk_state.RESULTS_TTL_SECONDS // 60,
    }
    return render(request, BULK_TEMPLATE, context, status=410)
