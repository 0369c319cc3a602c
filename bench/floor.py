"""Django's floor: the least a lookup can do in the dashboard's own settings and middleware (issue #21).

`make bench` (serve_bench.py) measures it beside the dashboard's htmx lookup and the bare
stand-in, in the same gunicorn workers, so bench/README.md can say how far above Django's own
floor a lookup is. It does only what every lookup must, in the order a lookup must:

1. a signed-in session: the whole middleware stack runs as for any page, and a signed-out request
   is refused before anything else;
2. the audit row, one INSERT committed before Align is asked (autocommit, as the dashboard writes it);
3. the Align call, through the dashboard's one client (customers/align/client.py): the same pool
   of kept-alive connections, the same deadline, and the same parsing of the answer into a
   Customer, which no lookup may skip, so the floor pays for them as the dashboard does;
4. the outcome, one UPDATE of that row;
5. the same bytes as the dashboard's htmx fragment for that customer: serve_bench.py captures
   the real fragment of each customer once at the start, and the floor returns it verbatim.

Bench only: served under bench.floor_settings, whose ROOT_URLCONF is this module (the real URLs,
then the floor's). Production's dashboard.urls has no such route, and nothing under customers/ or
dashboard/ imports bench/.
"""

import functools
import uuid
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from customers.align import client
from customers.models import AuditEvent
from customers.services import audit
from customers.services.decisions import stored_status_code, stored_sub_status_code
from dashboard import urls as dashboard_urls

# The status of a floor lookup that Align did not answer with a customer; the dashboard says why
# in its card, the floor only that it did not get one.
ALIGN_FAILED_STATUS = 502


@never_cache
@require_GET
def lookup_floor(request: HttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """One lookup, and nothing a lookup could do without."""
    if not request.user.is_authenticated:
        return HttpResponseForbidden("Sign in first.\n", content_type="text/plain")
    fragment = captured_fragment(settings.BENCH_FLOOR_FRAGMENTS, customer_id)
    if fragment is None:
        return HttpResponseNotFound("No fragment captured for this customer.\n", content_type="text/plain")
    actor = audit.Actor.of(request)
    event = AuditEvent.objects.create(
        user=actor.user,
        client_ip=actor.client_ip,
        request_id=actor.request_id,
        action=AuditEvent.Action.LOOKUP,
        customer_id=customer_id,
        outcome=AuditEvent.Outcome.STARTED,
    )
    try:
        customer = client.customer_get(customer_id=customer_id)
    except client.AlignError as error:
        AuditEvent.objects.filter(pk=event.pk).update(outcome=audit.outcome_of_failure(error))
        return HttpResponse(status=ALIGN_FAILED_STATUS)
    AuditEvent.objects.filter(pk=event.pk).update(
        outcome=AuditEvent.Outcome.FOUND,
        kyc_status=stored_status_code(customer.kycs),
        kyc_sub_status=stored_sub_status_code(customer.kycs),
    )
    return HttpResponse(fragment)


@functools.cache
def captured_fragment(directory: str, customer_id: uuid.UUID) -> bytes | None:
    """The customer's fragment as serve_bench.py captured it, read once per worker; None if there is none.

    serve_bench.py writes every file before the first floor lookup, so a None is never kept for
    a file that comes later.
    """
    file = Path(directory) / f"{customer_id}.html"
    if not directory or not file.is_file():
        return None
    return file.read_bytes()


urlpatterns = [
    *dashboard_urls.urlpatterns,
    path("bench/floor/<uuid:customer_id>/", lookup_floor, name="bench_floor"),
]
