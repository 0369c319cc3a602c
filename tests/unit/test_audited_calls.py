"""customers/services/audited_calls.py: every call to Align made for staff is on record first.

Each kind of call (a lookup, a search by e-mail, a KYC session start) is checked for the same
four things: the row is written before Align is asked; no row, no call; how it ended is recorded
on that row; an AlignError becomes the failure staff see, and is kept for the caller.
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import OperationalError
from responses import matchers

from customers.align import client
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.forms import parse_email
from customers.models import AuditEvent
from customers.services import audit, audited_calls
from customers.services.decisions import AUDIT_UNAVAILABLE, describe_failure
from customers.services.email_search import email_hash

pytestmark = pytest.mark.django_db

ADA = str(DemoId.INDIVIDUAL_APPROVED)
SEARCHED = "ada.lovelace@example.com"
NEW_LINK = "https://kyc.example/flow/new-session-2b7e"


@pytest.fixture
def actor(staff_user) -> audit.Actor:
    return audit.Actor(user=staff_user, client_ip="203.0.113.7", request_id="audited0001")


@dataclass(frozen=True)
class Kind:
    """One kind of audited call: how to make it, Align's address and good answer, the row's action."""

    call: Callable[[audit.Actor], audited_calls.Audited]
    method: str
    path: str
    query: dict[str, str] | None
    good_answer: dict
    good_status: int
    action: str
    found_outcome: str


KINDS = {
    "lookup": Kind(
        call=lambda actor: audited_calls.look_up(actor, uuid.UUID(ADA)),
        method="GET",
        path=f"/v0/customers/{ADA}",
        query=None,
        good_answer=DEMO_CUSTOMERS[ADA],
        good_status=200,
        action=AuditEvent.Action.LOOKUP,
        found_outcome=AuditEvent.Outcome.FOUND,
    ),
    "email-search": Kind(
        call=lambda actor: audited_calls.search_by_email(actor, parse_email(SEARCHED)),
        method="GET",
        path="/v0/customers",
        query={"email": SEARCHED},
        good_answer={"items": [DEMO_CUSTOMERS[ADA]]},
        good_status=200,
        action=AuditEvent.Action.EMAIL_SEARCH,
        found_outcome=AuditEvent.Outcome.FOUND,
    ),
    "kyc-session": Kind(
        call=lambda actor: audited_calls.start_kyc_session(actor, uuid.UUID(ADA)),
        method="POST",
        path=f"/v0/customers/{ADA}/kycs",
        query=None,
        good_answer={"kycs": {"status": "pending", "kyc_flow_link": NEW_LINK}},
        good_status=201,
        action=AuditEvent.Action.KYC_SESSION_STARTED,
        found_outcome=AuditEvent.Outcome.SESSION_STARTED,
    ),
}
each_kind = pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))


def register(align, settings, kind: Kind, callback) -> None:
    match = [matchers.query_param_matcher(kind.query)] if kind.query else []
    align.add_callback(kind.method, f"{settings.ALIGN_API_BASE_URL}{kind.path}", callback, match=match)


@each_kind
def test_the_row_is_on_record_before_align_is_asked_and_its_outcome_after(actor, align, settings, kind):
    rows_when_asked = []

    def answer(request):
        rows_when_asked.extend(AuditEvent.objects.values_list("action", "outcome", "user_id"))
        return kind.good_status, {"Content-Type": "application/json"}, json.dumps(kind.good_answer)

    register(align, settings, kind, answer)
    result = kind.call(actor)
    assert rows_when_asked == [(kind.action, AuditEvent.Outcome.STARTED, actor.user.pk)]
    assert (result.failure, result.error, result.recorded) == (None, None, True)
    assert result.answer is not None
    event = AuditEvent.objects.get()
    assert (event.action, event.outcome, event.request_id) == (kind.action, kind.found_outcome, "audited0001")


@each_kind
def test_no_row_no_call(actor, align, monkeypatch, kind):
    def refuse(self, *args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(AuditEvent, "save", refuse)
    result = kind.call(actor)
    assert result == audited_calls.Audited(failure=AUDIT_UNAVAILABLE, recorded=False)
    assert len(align.calls) == 0


@each_kind
@pytest.mark.parametrize(
    ("status", "headers", "error_class", "outcome"),
    [
        pytest.param(404, {}, client.CustomerNotFound, "not_found", id="404"),
        pytest.param(401, {}, client.ApiKeyRejected, "key_rejected", id="401"),
        pytest.param(429, {"Retry-After": "7"}, client.RateLimited, "rate_limited", id="429"),
        pytest.param(500, {}, client.UpstreamError, "upstream_error", id="500"),
    ],
)
def test_an_align_error_is_recorded_and_becomes_the_failure_staff_see(
    actor, align, settings, kind, status, headers, error_class, outcome
):
    def answer(request):
        return status, {"Content-Type": "application/json", **headers}, json.dumps({"message": "no"})

    register(align, settings, kind, answer)
    if kind.action == AuditEvent.Action.EMAIL_SEARCH and status == 404:
        error_class, outcome = client.InvalidResponse, "invalid_response"  # the search itself is missing
    # Retry-After 7 is past the call's deadline (ALIGN_API_TIMEOUT), so nothing waits it out.
    result = kind.call(actor)
    assert isinstance(result.error, error_class)
    assert result.failure == describe_failure(result.error)
    assert (result.answer, result.recorded) == (None, True)
    assert AuditEvent.objects.get().outcome == outcome


def test_a_bulk_rows_lookup_carries_its_batch_and_returns_a_rate_limit_at_once(actor, align, customer_url):
    # Retry-After 1 is within the deadline: a single lookup would wait it out and ask again.
    align.get(customer_url(ADA), status=429, headers={"Retry-After": "1"}, json={})
    batch = audit.record_bulk_lookup(actor, ids_submitted=1, ids_valid=1, duplicates=0, rejected=0)
    result = audited_calls.look_up(actor, uuid.UUID(ADA), batch_id=batch.pk, wait_on_rate_limit=False)
    assert isinstance(result.error, client.RateLimited)
    assert result.error.retry_after == 1
    assert len(align.calls) == 1
    event = AuditEvent.objects.get()
    assert (event.batch_id, event.outcome) == (batch.pk, "rate_limited")


def test_a_refresh_is_recorded_as_one(actor, serve):
    serve()
    audited_calls.look_up(actor, uuid.UUID(ADA), is_refresh=True, automatic=True)
    event = AuditEvent.objects.get()
    assert (event.is_refresh, event.automatic) == (True, True)


def test_a_search_is_on_record_by_the_e_mails_keyed_hash_only(actor, align, settings):
    align.get(f"{settings.ALIGN_API_BASE_URL}/v0/customers", json={"items": []})
    found = audited_calls.search_by_email(actor, parse_email(SEARCHED))
    assert found.answer == ()
    event = AuditEvent.objects.get()
    assert (event.email_hash, event.outcome, event.match_count) == (
        email_hash(parse_email(SEARCHED)),
        "not_found",
        0,
    )
