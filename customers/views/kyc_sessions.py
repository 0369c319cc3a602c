"""Start a new KYC session for a customer: Compliance leads only, once per customer per minute.

The POST comes from the card's confirmation dialog (static/js/kyc_session.js). In order: the
permission (403 for anyone else, even a forged POST), then the double-submit guard, the audit row
and only then Align (customers/services/kyc_sessions.py). A new session replaces the customer's
link, so a second click, a second tab or a colleague a moment later is told who started one instead.
"""

import uuid
from datetime import datetime

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_htmx.http import reswap, retarget

from customers.align.client import KycSession
from customers.permissions import start_kyc_session_permission_required
from customers.services import audit, audited_calls, kyc_sessions
from customers.views import lookup as views
from dashboard.ops.log_context import bind_customer

NOTICE_TEMPLATE = f"{views.PAGE_TEMPLATE}#kyc-session-notice"


@require_POST
@never_cache
@start_kyc_session_permission_required
def start_kyc_session(request: views.HtmxHttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """Start the session, then swap the whole card for one showing the new link.

    Refusals and failures answer in the card's notice area (#kyc-session-notice) instead.
    """
    bind_customer(customer_id)
    now = timezone.now()
    started = kyc_sessions.start(
        audit.Actor.of(request), customer_id, now=now, card_fetched_at=_card_fetched_at(request)
    )
    if isinstance(started, kyc_sessions.StartedLately):
        return _current_card(request, customer_id, refused=started.notice)
    if started.failure is not None:
        return _notice(request, failure=started.failure, status=started.failure.status)
    return _current_card(request, customer_id, session=started.answer, started_at=now)


def _current_card(
    request: views.HtmxHttpRequest,
    customer_id: uuid.UUID,
    *,
    session: KycSession | None = None,
    started_at: datetime | None = None,
    refused: str | None = None,
) -> HttpResponse:
    """The customer fetched again through the audited lookup, so the card is whole and current
    (and on record as shown, which the Copy link beacon requires).

    After a start, Align's answer to it is the authority on the new link, in case its lookup has
    not caught up yet. After a refusal (a colleague started one), the card shows the customer as
    they are now, not the state the lead pressed Start on.
    """
    if session is not None:
        note = f"New KYC session started {timezone.localtime(started_at):%H:%M} by you"
    else:
        note = f"{refused}. This card now shows the customer as they are."
    lookup = audited_calls.look_up(audit.Actor.of(request), customer_id, is_refresh=True)
    if lookup.answer is None:
        return (
            _notice(request, started_note=note)
            if session is not None
            else _notice(request, already_started=refused)
        )
    customer = kyc_sessions.with_session(lookup.answer, session) if session is not None else lookup.answer
    fetched_at = timezone.now()
    context = {
        "form": views.CustomerLookupForm(initial={"customer_id": customer_id}),
        "customer_id": customer_id,
        "fetched_at": fetched_at,
        "kyc_session_note": note,
        # Told, not congratulated: the lead's own start did not happen.
        "kyc_session_refused": session is None,
    } | views.card_context(request, customer, fetched_at)
    response = views.render_lookup_page(request, context, lookup_recorded=lookup.recorded)
    return reswap(retarget(response, "#result"), "innerHTML")


def _card_fetched_at(request: views.HtmxHttpRequest) -> datetime | None:
    """When the card the lead pressed Start on was fetched (its form says), or None if it can't tell."""
    try:
        fetched_at = parse_datetime(request.POST.get("card_fetched_at", ""))
    except ValueError:
        return None
    return fetched_at if fetched_at is not None and fetched_at.tzinfo is not None else None


def _notice(request: views.HtmxHttpRequest, *, status: int = 200, **context) -> HttpResponse:
    return render(request, NOTICE_TEMPLATE, context, status=status)
