"""Start a new KYC session for a customer: Compliance leads only, once per customer per minute.

The POST comes from the card's confirmation dialog (static/js/kyc_session.js). In order: the
permission (403 for anyone else, even a forged POST), then a double-submit guard in the shared
cache, then the audit row, and only then Align. A new session replaces the customer's link, so a
second click, a second tab or a colleague a moment later is told who started one instead.
"""

import uuid
from dataclasses import replace
from datetime import datetime

from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from customers.align.client import AlignError, KycSession, kyc_session_start
from customers.align.records import Customer, Kyc
from customers.permissions import start_kyc_session_permission_required
from customers.services import audit
from customers.services.decisions import AUDIT_UNAVAILABLE, describe_failure
from customers.views import lookup as views
from dashboard.ops.log_context import bind_customer

# Long enough to absorb a double click, a second tab and a colleague on the same call.
GUARD_SECONDS = 60
NOTICE_TEMPLATE = f"{views.PAGE_TEMPLATE}#kyc-session-notice"


def guard_key(customer_id: uuid.UUID) -> str:
    return f"kycdesk:kyc-session:{customer_id}"


@require_POST
@never_cache
@start_kyc_session_permission_required
def start_kyc_session(request: views.HtmxHttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """Start the session, then swap the whole card for one showing the new link.

    Refusals and failures answer in the card's notice area (#kyc-session-notice) instead.
    """
    bind_customer(customer_id)
    now = timezone.now()
    # cache.add is atomic in every backend: of two concurrent starts, exactly one gets the key.
    if not cache.add(
        guard_key(customer_id), {"user": request.user.get_username(), "at": now.isoformat()}, GUARD_SECONDS
    ):
        return _already_started(request, cache.get(guard_key(customer_id)))
    try:
        event = audit.start_kyc_session(audit.Actor.of(request), customer_id)
    except audit.AuditUnavailable:
        cache.delete(guard_key(customer_id))
        return _notice(request, failure=AUDIT_UNAVAILABLE, status=AUDIT_UNAVAILABLE.status)
    try:
        session = kyc_session_start(customer_id=customer_id)
    except AlignError as error:
        audit.finish_kyc_session(event, error=error)
        # Released, so staff can try again at once: the failure card says what went wrong.
        cache.delete(guard_key(customer_id))
        failure = describe_failure(error)
        return _notice(request, failure=failure, status=failure.status)
    audit.finish_kyc_session(event, session=session)
    return _card_with_new_link(request, customer_id, session, started_at=now)


def _card_with_new_link(
    request: views.HtmxHttpRequest, customer_id: uuid.UUID, session: KycSession, *, started_at: datetime
) -> HttpResponse:
    """The customer fetched again through the audited lookup, so the card is whole and current
    (and on record as shown, which the Copy link beacon requires); Align's answer to the start
    is the authority on the new link, in case its lookup has not caught up yet."""
    note = f"New KYC session started {timezone.localtime(started_at):%H:%M} by you"
    customer, _failure, recorded = views.audited_fetch(request, customer_id, is_refresh=True)
    if customer is None:
        return _notice(request, started_note=note)
    fetched_at = timezone.now()
    context = {
        "form": views.CustomerLookupForm(initial={"customer_id": customer_id}),
        "customer_id": customer_id,
        "fetched_at": fetched_at,
        "kyc_session_note": note,
    } | views.card_context(request, with_session(customer, session), fetched_at)
    response = views.render_lookup_page(request, context, lookup_recorded=recorded)
    response["HX-Retarget"] = "#result"
    response["HX-Reswap"] = "innerHTML"
    return response


def with_session(customer: Customer, session: KycSession) -> Customer:
    """The customer with the session Align just started, when its lookup does not show it yet."""
    kyc = customer.kycs
    if kyc is not None and kyc.kyc_flow_link == session.kyc_flow_link:
        return customer
    if kyc is None:
        kyc = Kyc(
            status=session.status, sub_status=None, kyc_flow_link=session.kyc_flow_link, status_breakdown=()
        )
    else:
        kyc = replace(kyc, status=session.status, sub_status=None, kyc_flow_link=session.kyc_flow_link)
    return replace(customer, kycs=kyc)


def _already_started(request: views.HtmxHttpRequest, guard: dict | None) -> HttpResponse:
    """Nothing is sent to Align: a session was started for this customer within the last minute."""
    if guard is None:  # expired between add and get: the minute is over, say so plainly
        text = "A new session was started for this customer a minute ago. Refresh to see its link."
    else:
        at = timezone.localtime(datetime.fromisoformat(guard["at"]))
        text = f"A new session was started for this customer by {guard['user']} at {at:%H:%M}"
    return _notice(request, already_started=text)


def _notice(request: views.HtmxHttpRequest, *, status: int = 200, **context) -> HttpResponse:
    return render(request, NOTICE_TEMPLATE, context, status=status)
