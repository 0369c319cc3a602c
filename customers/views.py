"""Customer lookup pages: translate a request into one upstream call and its result into a page.

Both views render `customers/lookup.html`: the whole page for a normal request, its `result`
partial for an htmx request, so a deep link and an htmx swap show identical markup. Every
lookup goes through customers.audit first: no audit row, no lookup.
"""

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails

from customers import audit
from customers.access import lookup_permission_required
from customers.client import AlignError, customer_get
from customers.forms import CustomerLookupForm
from customers.presentation import AUDIT_UNAVAILABLE, INVALID_INPUT, LookupFailure, describe_failure
from customers.records import Customer
from customers.stub import DEMO_DESCRIPTIONS, DRILL_DESCRIPTIONS
from dashboard.log_context import bind_customer

PAGE_TEMPLATE = "customers/lookup.html"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def customer_pages(view):
    """What every customer page shares: GET only, staff only, never cached, varies on htmx."""
    return require_GET(lookup_permission_required(never_cache(vary_on_headers("HX-Request")(view))))


@customer_pages
def customer_search(request: HtmxHttpRequest) -> HttpResponse:
    if "customer_id" not in request.GET:
        return _render(request, {"form": CustomerLookupForm()})
    form = CustomerLookupForm(request.GET)
    if not form.is_valid():
        return _invalid_input(request, form, update_field_status=True)
    customer_id = form.cleaned_data["customer_id"]
    if not _wants_fragment(request):
        return redirect("customers:detail", customer_ref=customer_id)
    response = _lookup(request, customer_id, update_field_status=True)
    response["HX-Push-Url"] = reverse("customers:detail", kwargs={"customer_ref": customer_id})
    return response


@customer_pages
def customer_detail(request: HtmxHttpRequest, customer_ref: str) -> HttpResponse:
    form = CustomerLookupForm({"customer_id": customer_ref})
    if not form.is_valid():
        return _invalid_input(request, form)
    customer_id = form.cleaned_data["customer_id"]
    if str(customer_id) != customer_ref:
        return redirect("customers:detail", customer_ref=customer_id, permanent=True)
    return _lookup(request, customer_id, is_refresh=request.GET.get("refresh") == "1")


@require_POST
@lookup_permission_required
def link_copied(request: HtmxHttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """The Copy link button's beacon: who sent the KYC link to which customer, and when.

    The copy itself happens in the browser whatever this answers; a failure here is logged.
    """
    bind_customer(customer_id)
    try:
        audit.record_link_copied(request, customer_id)
    except audit.AuditUnavailable:
        return HttpResponse(status=503)
    return HttpResponse(status=204)


def _lookup(
    request: HtmxHttpRequest,
    customer_id: uuid.UUID,
    *,
    is_refresh: bool = False,
    update_field_status: bool = False,
) -> HttpResponse:
    bind_customer(customer_id)
    context = {
        "form": CustomerLookupForm(initial={"customer_id": customer_id}),
        "customer_id": customer_id,
        "fetched_at": timezone.now(),
    }
    customer, failure, recorded = _audited_fetch(request, customer_id, is_refresh=is_refresh)
    if customer is not None:
        context["customer"] = customer
    if failure is not None:
        context["failure"] = failure
    response = _render(
        request,
        context,
        status=failure.status if failure else 200,
        update_field_status=update_field_status,
        lookup_recorded=recorded,
    )
    if failure and failure.retry_after is not None:
        response["Retry-After"] = str(failure.retry_after)
    return response


def _audited_fetch(
    request: HtmxHttpRequest, customer_id: uuid.UUID, *, is_refresh: bool
) -> tuple[Customer | None, LookupFailure | None, bool]:
    """Ask Align only once the lookup is on record, then record how it ended.

    Returns the customer or the failure to show, and whether the lookup was recorded.
    """
    try:
        event = audit.start_lookup(request, customer_id, is_refresh=is_refresh)
    except audit.AuditUnavailable:
        return None, AUDIT_UNAVAILABLE, False
    try:
        customer = customer_get(customer_id=customer_id)
    except AlignError as error:
        audit.finish_lookup(event, error=error)
        return None, describe_failure(error), True
    audit.finish_lookup(event, customer=customer)
    return customer, None, True


def _invalid_input(
    request: HtmxHttpRequest, form: CustomerLookupForm, *, update_field_status: bool = False
) -> HttpResponse:
    """Not a customer ID: say so next to the field and in the result area; Align is not called."""
    context = {"form": form, "failure": INVALID_INPUT, "rejected_input": form.data.get("customer_id", "")}
    return _render(request, context, status=INVALID_INPUT.status, update_field_status=update_field_status)


def _wants_fragment(request: HtmxHttpRequest) -> bool:
    """htmx swaps a fragment, except when it restores history and needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render(
    request: HtmxHttpRequest,
    context: dict,
    *,
    status: int = 200,
    update_field_status: bool = False,
    lookup_recorded: bool = False,
) -> HttpResponse:
    """The whole page, or for htmx the result area plus, after a recorded lookup, Recent lookups."""
    if not _wants_fragment(request):
        context = context | {
            "demo_customers": DEMO_DESCRIPTIONS,
            "failure_drills": DRILL_DESCRIPTIONS,
            "recent_lookups": audit.recent_lookups(request.user),
        }
        return render(request, PAGE_TEMPLATE, context, status=status)
    context = context | {"update_field_status": update_field_status}
    html = render_to_string(f"{PAGE_TEMPLATE}#result", context, request)
    if lookup_recorded:
        recent = {"recent_lookups": audit.recent_lookups(request.user), "swap_out_of_band": True}
        html += render_to_string(f"{PAGE_TEMPLATE}#recent-lookups", context | recent, request)
    return HttpResponse(html, status=status)
