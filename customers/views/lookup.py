"""Customer lookup pages: translate a request into one upstream call and its result into a page.

Both views render `customers/lookup.html`: the whole page for a normal request, its `result`
partial for an htmx request, so a deep link and an htmx swap show identical markup. Every
lookup goes through customers.services.audited_calls: no audit row, no lookup.
"""

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url, replace_url
from django_htmx.middleware import HtmxDetails

from customers.align import stand_in_demo
from customers.align.records import Customer
from customers.context_processors import describe_upstream
from customers.forms import EMAIL_NOT_IN_LINKS, CustomerLookupForm, EmailQuery
from customers.permissions import customer_page_required, lookup_permission_required
from customers.services import audit, audited_calls, history
from customers.services.decisions import INVALID_INPUT
from dashboard.ops.log_context import bind_customer

PAGE_TEMPLATE = "customers/lookup.html"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def customer_pages(view):
    """What every customer page shares: staff only (a sign-in comes back to the page asked for), never
    cached, varies on htmx."""
    return customer_page_required(never_cache(vary_on_headers("HX-Request")(view)))


@require_http_methods(["GET", "POST"])
@customer_pages
def customer_search(request: HtmxHttpRequest) -> HttpResponse:
    """The search form posts what staff typed, so it never lands in a URL, a history or a proxy log.

    A GET with `?customer_id=` still works for links made before the form posted.
    """
    data = request.POST if request.method == "POST" else request.GET
    if "customer_id" not in data:
        return render_lookup_page(request, {"form": CustomerLookupForm()})
    form = CustomerLookupForm(data)
    if not form.is_valid():
        return _invalid_input(request, form)
    customer_id = form.cleaned_data["customer_id"]
    if isinstance(customer_id, EmailQuery):
        if request.method != "POST":
            return _email_in_link(request)
        return _email_search(request, customer_id)
    if not _wants_fragment(request):
        return redirect("customers:detail", customer_ref=customer_id)
    return push_url(
        _lookup(request, customer_id), reverse("customers:detail", kwargs={"customer_ref": customer_id})
    )


@require_GET
@customer_pages
def customer_detail(request: HtmxHttpRequest, customer_ref: str) -> HttpResponse:
    form = CustomerLookupForm({"customer_id": customer_ref})
    if not form.is_valid():
        return _invalid_input(request, form)
    customer_id = form.cleaned_data["customer_id"]
    if isinstance(customer_id, EmailQuery):
        return _email_in_link(request)
    if str(customer_id) != customer_ref:
        return redirect("customers:detail", customer_ref=customer_id, permanent=True)
    # "1" is staff's Refresh; "auto" the open page refreshing itself (customers/services/history.py).
    refresh = request.GET.get("refresh")
    automatic = refresh == history.AUTOMATIC_REFRESH
    return _lookup(request, customer_id, is_refresh=refresh == "1" or automatic, automatic=automatic)


@require_POST
@lookup_permission_required
def link_copied(request: HtmxHttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """The Copy link button's beacon: who sent the KYC link to which customer, and when.

    The copy itself happens in the browser whatever this answers; a failure here is logged.
    The answer is the card's "Link last copied by you" line, swapped out of band. A beacon for
    a customer this user has not looked up lately is refused with 409 (they have the permission;
    what is missing is a lookup on record), so nobody can put copies on record, or on other
    staff's cards, for customers they never opened.
    """
    bind_customer(customer_id)
    try:
        audit.record_link_copied(request, customer_id)
    except audit.NoLookupOnRecord:
        return HttpResponse(status=409)
    except audit.AuditUnavailable:
        return HttpResponse(status=503)
    context = {"link_copies": audit.link_copies(customer_id=customer_id), "link_copies_out_of_band": True}
    return render(request, f"{PAGE_TEMPLATE}#link-copies", context)


def _lookup(
    request: HtmxHttpRequest, customer_id: uuid.UUID, *, is_refresh: bool = False, automatic: bool = False
) -> HttpResponse:
    bind_customer(customer_id)
    context = {
        "form": CustomerLookupForm(initial={"customer_id": customer_id}),
        "customer_id": customer_id,
        "fetched_at": timezone.now(),
    }
    lookup = audited_calls.look_up(
        audit.Actor.of(request), customer_id, is_refresh=is_refresh, automatic=automatic
    )
    customer, failure = lookup.answer, lookup.failure
    if customer is not None:
        before = history.state_before_refresh(request.GET) if automatic else None
        if (
            before is not None
            and before.same_as(history.KycState.of_customer(customer))
            and _wants_fragment(request)
        ):
            # Nothing changed: the card on screen stays as it is, its "last checked" line moves on.
            return _checked_at(HttpResponse(status=204), context["fetched_at"])
        context |= card_context(request, customer, context["fetched_at"])
        context["status_change"] = history.status_change(before, customer, at=context["fetched_at"])
    if failure is not None:
        context["failure"] = failure
    response = render_lookup_page(
        request,
        context,
        status=failure.status if failure else 200,
        lookup_recorded=lookup.recorded,
    )
    if failure and failure.retry_after is not None:
        response["Retry-After"] = str(failure.retry_after)
    return _checked_at(response, context["fetched_at"]) if automatic else response


def card_context(request: HtmxHttpRequest, customer: Customer, fetched_at) -> dict:
    """What the customer card shows beside the customer: link copies, KYC history, the watch, and
    Your recent lookups, whose audit rows come in the card's one read (audit.card_trail)."""
    trail = audit.card_trail(customer_id=customer.customer_id, user=request.user)
    kyc_history = history.kyc_history(
        customer=customer, trail=trail, viewer_id=request.user.pk, seen_at=fetched_at
    )
    return {
        "customer": customer,
        "link_copies": trail.link_copies if trail else None,
        "kyc_history": kyc_history,
        "kyc_watch": history.watch_for(customer, kyc_history),
        "recent_lookups": trail.recent_lookups if trail else None,
    }


def _email_search(request: HtmxHttpRequest, query: EmailQuery) -> HttpResponse:
    """One match is the customer's card, several a list, none a sentence; the e-mail stays out of
    every URL, title and log line, so the address pushed is the customer's ID or the search page."""
    fetched_at = timezone.now()
    found = audited_calls.search_by_email(audit.Actor.of(request), query)
    context = {"form": CustomerLookupForm(), "fetched_at": fetched_at, "email_search": True}
    address = reverse("customers:search")
    status = 200
    if found.failure is not None:
        context["failure"], status = found.failure, found.failure.status
    elif len(found.answer) == 1:
        customer = found.answer[0]
        bind_customer(customer.customer_id)
        context |= card_context(request, customer, fetched_at) | {"customer_id": customer.customer_id}
        address = reverse("customers:detail", kwargs={"customer_ref": customer.customer_id})
    else:
        context["matches"] = found.answer
    response = render_lookup_page(request, context, status=status, lookup_recorded=found.recorded)
    if _wants_fragment(request):
        push_url(response, address)
    if found.failure and found.failure.retry_after is not None:
        response["Retry-After"] = str(found.failure.retry_after)
    return response


def _email_in_link(request: HtmxHttpRequest) -> HttpResponse:
    """An e-mail in a URL is refused like invalid input, and not echoed back into the field."""
    form = CustomerLookupForm()
    form.cleaned_data = {}
    form.add_error("customer_id", EMAIL_NOT_IN_LINKS)
    return _invalid_input(request, form)


def _checked_at(response: HttpResponse, fetched_at) -> HttpResponse:
    """When an automatic check ran, for the card's "last checked 14:02", in the dashboard's time zone."""
    response[history.CHECKED_AT_HEADER] = f"{timezone.localtime(fetched_at):%H:%M}"
    return response


def _invalid_input(request: HtmxHttpRequest, form: CustomerLookupForm) -> HttpResponse:
    """Not a customer ID: the field says why, the result area that nothing was looked up.

    An htmx answer also moves the address bar to the search page, so a reload cannot look up
    the customer shown before, and what was typed never reaches the address bar.
    """
    response = render_lookup_page(
        request, {"form": form, "failure": INVALID_INPUT}, status=INVALID_INPUT.status
    )
    if _wants_fragment(request):
        search_url = reverse("customers:search")
        # On the search page already (perhaps with an old ?customer_id=), replace that entry.
        on_search_page = urlsplit(request.htmx.current_url or "").path == search_url
        if on_search_page:
            replace_url(response, search_url)
        else:
            push_url(response, search_url)
    return response


def _wants_fragment(request: HtmxHttpRequest) -> bool:
    """htmx swaps a fragment, except when it restores history and needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_lookup_page(
    request: HtmxHttpRequest, context: dict, *, status: int = 200, lookup_recorded: bool = False
) -> HttpResponse:
    """The whole page, or for htmx the result area with the tab title and the field's message.

    After a recorded lookup the fragment also carries Recent lookups, swapped out of band.
    A customer's card brings its own (card_context); other pages read them here.
    """
    wants_recent_lookups = lookup_recorded or not _wants_fragment(request)
    if wants_recent_lookups and "recent_lookups" not in context:  # a card's context has them already
        context = context | {"recent_lookups": audit.recent_lookups(request.user)}
    if not _wants_fragment(request):
        context = context | {"demo_list": _stand_in_demo_list()}
        return render(request, PAGE_TEMPLATE, context, status=status)
    context = context | {"swap_out_of_band": True, "lookup_recorded": lookup_recorded}
    return render(request, f"{PAGE_TEMPLATE}#fragment", context, status=status)


def _stand_in_demo_list() -> stand_in_demo.DemoList | None:
    """In a debug run pointed at the local stand-in, its demo customers, drills and e-mails to click through.

    Asked of the stand-in itself (customers/align/stand_in_demo.py): never in production, and never
    of Align.
    """
    if not settings.DEBUG or not describe_upstream(settings.ALIGN_API_BASE_URL).is_local:
        return None
    return stand_in_demo.demo_list(settings.ALIGN_API_BASE_URL)
