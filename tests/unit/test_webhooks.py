"""Align's webhooks: the receiver (customers/align/webhooks.py, customers/services/webhooks.py,
webhook_views.align_webhook) and the question an open page asks (webhook_views.kyc_changes).

Deliveries are signed here with customers/align/standin/webhooks.py, the stand-in's own signer, so the
receiver is checked against a second implementation of Align's rule, not against itself.
"""

import copy
import hashlib
import hmac
import io
import json
import logging
import uuid
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from redis import RedisError

from customers.align import webhooks as align_webhooks
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.align.standin.webhooks import kyc_updated_envelope, sign
from customers.models import AuditEvent, KycWebhookEvent
from customers.services import webhooks
from customers.services.webhooks import DeliveryResult
from dashboard.ops.shared_cache import shared_cache
from tests.unit.test_log_context import console_handler

pytestmark = pytest.mark.django_db

URL = "/webhooks/align/"
API_KEY = "test-api-key-5f1c9e0d7a"  # tests/support/settings.py's ALIGN_API_KEY
PREVIOUS_KEY = "the-key-before-this-one-0a9c"
GRACE = str(DemoId.FORM_STARTED)
ADA = str(DemoId.INDIVIDUAL_APPROVED)
WHEN = datetime(2026, 11, 25, 14, 2, 11, 123000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def webhooks_on(settings):
    """Webhooks enabled, and this test's deliveries counted from zero against the rate limit."""
    settings.ALIGN_WEBHOOKS_ENABLED = True
    settings.ALIGN_WEBHOOK_PREVIOUS_API_KEY = ""
    shared_cache.clear()
    yield
    shared_cache.clear()


def customer(demo_id: str = GRACE) -> dict:
    return copy.deepcopy(DEMO_CUSTOMERS[demo_id])


def envelope_bytes(body: dict | None = None, **changes) -> bytes:
    envelope = kyc_updated_envelope(body or customer(), now=WHEN) | changes
    return json.dumps(envelope).encode()


def deliver(client: Client, body: bytes, *, key: str | None = API_KEY, signature: str | None = None, **extra):
    """POST a delivery as Align does: signed with `key`, or carrying `signature` as given."""
    if signature is None and key is not None:
        signature = sign(body, key)
    headers = {"x-hmac-signature": signature} if signature is not None else {}
    return client.generic("POST", URL, body, content_type="application/json", headers=headers, **extra)


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("kycdesk_webhook_deliveries_total", {"result": result}) or 0.0


class ReadCountingStream(io.BytesIO):
    """A request body that remembers how many bytes the receiver read of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size=-1, /):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


@pytest.fixture
def log_output():
    """What the console handler writes while the test runs, formatted as it would write it."""
    console = console_handler()
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(console.formatter)
    for log_filter in console.filters:
        capture.addFilter(log_filter)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(capture)
    try:
        yield stream
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


# --- A good delivery ---------------------------------------------------------------------------


def test_a_signed_kyc_update_is_stored_once_with_its_kyc_state_and_never_calls_align(client, align):
    response = deliver(client, envelope_bytes())

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    event = KycWebhookEvent.objects.get()
    assert event.customer_id == uuid.UUID(GRACE)
    assert event.event_created_at == WHEN
    assert (event.kyc_status, event.kyc_sub_status) == ("pending", "kyc_form_submission_started")
    assert event.breakdown == [["usd", "ach", "pending"]]
    assert event.received_at is not None


def test_a_rail_the_contract_does_not_list_is_stored_as_sent(client):
    body = customer(str(DemoId.UNRECOGNISED_VALUES))
    assert deliver(client, envelope_bytes(body)).status_code == 200
    event = KycWebhookEvent.objects.get()
    assert event.kyc_status == "on_hold"
    assert event.breakdown == [["aed", "uaefts", "approved"], ["usd", "swift", "pending"]]


@pytest.mark.parametrize(
    ("kycs", "stored"),
    [(None, ("", "")), ({"status": None, "kyc_flow_link": "", "status_breakdown": []}, ("(not sent)", ""))],
)
def test_no_kyc_record_and_no_status_are_stored_as_the_audit_log_records_them(client, kycs, stored):
    body = customer() | {"kycs": kycs}
    assert deliver(client, envelope_bytes(body)).status_code == 200
    event = KycWebhookEvent.objects.get()
    assert (event.kyc_status, event.kyc_sub_status) == stored
    assert event.breakdown == []


def test_a_time_without_a_zone_is_read_as_utc(client):
    assert deliver(client, envelope_bytes(created_at="2026-11-25T14:02:11")).status_code == 200
    assert KycWebhookEvent.objects.get().event_created_at == datetime(2026, 11, 25, 14, 2, 11, tzinfo=UTC)


# --- The signature -----------------------------------------------------------------------------


def test_a_delivery_signed_with_another_key_is_refused_and_nothing_is_stored(client):
    response = deliver(client, envelope_bytes(), key="not-the-api-key")
    assert response.status_code == 401
    assert response.json()["status"] == "bad_signature"
    assert KycWebhookEvent.objects.count() == 0


def test_a_delivery_without_a_signature_is_refused(client):
    assert deliver(client, envelope_bytes(), key=None).status_code == 401
    assert KycWebhookEvent.objects.count() == 0


def test_an_upper_case_signature_is_refused_because_align_writes_lower_case(client):
    body = envelope_bytes()
    assert deliver(client, body, signature=sign(body, API_KEY).upper()).status_code == 401
    assert KycWebhookEvent.objects.count() == 0


def test_a_body_changed_by_one_byte_after_signing_is_refused(client):
    body = envelope_bytes()
    signature = sign(body, API_KEY)
    changed = body.replace(b"kyc_form_submission_started", b"kyc_form_submission_startee")
    assert len(changed) == len(body)
    assert deliver(client, changed, signature=signature).status_code == 401
    assert KycWebhookEvent.objects.count() == 0


def test_the_signature_is_the_hmac_of_the_raw_body_not_of_the_json_re_encoded(client):
    """Align signs the bytes it sent: the same JSON spaced differently has another signature."""
    body = json.dumps(json.loads(envelope_bytes()), indent=2).encode()
    assert deliver(client, body).status_code == 200
    assert deliver(client, envelope_bytes(), signature=sign(body, API_KEY)).status_code == 401


def test_during_a_key_rotation_the_previous_key_is_accepted_too(client, settings):
    settings.ALIGN_WEBHOOK_PREVIOUS_API_KEY = PREVIOUS_KEY
    assert deliver(client, envelope_bytes(), key=PREVIOUS_KEY).status_code == 200
    assert deliver(client, envelope_bytes(created_at="2026-11-25T14:05:00Z"), key=API_KEY).status_code == 200
    assert KycWebhookEvent.objects.count() == 2


def test_once_the_previous_key_is_unset_it_is_refused(client, settings):
    settings.ALIGN_WEBHOOK_PREVIOUS_API_KEY = ""
    assert deliver(client, envelope_bytes(), key=PREVIOUS_KEY).status_code == 401
    assert KycWebhookEvent.objects.count() == 0


def test_without_an_api_key_nothing_is_believed_not_even_a_body_signed_with_the_empty_key(client, settings):
    settings.ALIGN_API_KEY = ""
    body = envelope_bytes()
    empty_key_signature = hmac.new(b"", body, hashlib.sha256).hexdigest()
    assert deliver(client, body, signature=empty_key_signature).status_code == 401
    assert KycWebhookEvent.objects.count() == 0


def test_a_signature_that_is_not_ascii_is_refused_not_a_500(client):
    assert deliver(client, envelope_bytes(), signature="\u00e9" * 64).status_code == 401


def test_a_refused_signature_is_logged_once_without_the_body_or_the_signature(client, log_output):
    body = envelope_bytes()
    wrong = sign(body, "not-the-api-key")
    deliver(client, body, signature=wrong)
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert len(warnings) == 1
    assert "signature" in warnings[0]["message"]
    text = log_output.getvalue()
    assert wrong not in text
    assert "grace.hopper@example.com" not in text
    assert "kyc_form_submission_started" not in text


# --- Size --------------------------------------------------------------------------------------


def test_a_body_announced_over_256_kib_is_refused_without_reading_it(client):
    stream = ReadCountingStream(b"x" * (align_webhooks.MAX_BODY_BYTES + 1))
    response = deliver(
        client, b"{}", CONTENT_LENGTH=str(align_webhooks.MAX_BODY_BYTES + 1), **{"wsgi.input": stream}
    )
    assert response.status_code == 413
    assert response.json()["status"] == "too_large"
    assert stream.bytes_read == 0


def test_a_body_of_exactly_256_kib_is_read(client):
    body = envelope_bytes()
    body += b" " * (align_webhooks.MAX_BODY_BYTES - len(body))  # JSON may end in whitespace
    assert deliver(client, body).status_code == 200


def test_a_body_longer_than_its_content_length_is_read_only_as_far_as_it_says(client):
    """A lying Content-Length never makes the receiver read more: the rest is not the signed body."""
    body = envelope_bytes()
    sent = body + b" " * (align_webhooks.MAX_BODY_BYTES * 2)
    stream = ReadCountingStream(sent)
    response = deliver(
        client, body, signature=sign(sent, API_KEY), CONTENT_LENGTH=str(len(body)), **{"wsgi.input": stream}
    )
    assert response.status_code == 401
    assert stream.bytes_read == len(body)
    assert KycWebhookEvent.objects.count() == 0


def test_a_chunked_body_without_content_length_is_asked_for_one(client):
    body = envelope_bytes()
    stream = ReadCountingStream(body)
    response = deliver(
        client, body, CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input": stream}
    )
    assert response.status_code == 411
    assert stream.bytes_read == 0
    assert KycWebhookEvent.objects.count() == 0


def test_a_content_length_that_is_not_a_number_is_a_bad_request(client):
    assert deliver(client, envelope_bytes(), CONTENT_LENGTH="12abc").status_code == 400


def test_reading_stops_one_byte_past_the_limit_whatever_the_stream_holds():
    stream = ReadCountingStream(b"x" * (align_webhooks.MAX_BODY_BYTES * 3))
    with pytest.raises(align_webhooks.BodyTooLarge):
        align_webhooks.read_body(stream)
    assert stream.bytes_read == align_webhooks.MAX_BODY_BYTES + 1


def test_reading_a_body_under_the_limit_returns_all_of_it():
    assert align_webhooks.read_body(io.BytesIO(b"x" * 100_000)) == b"x" * 100_000


# --- What the body says ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json at all", "The body is not JSON."),
        (b"\xff\xfe\xfa", "The body is not JSON."),
        (b"[" * 100_000, "The body is not JSON."),
        (b'["customer.kycs.updated"]', "The body is not a JSON object."),
        (b'"customer.kycs.updated"', "The body is not a JSON object."),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_bad_request(client, body, error):
    response = deliver(client, body)
    assert response.status_code == 400
    assert response.json() == {"status": "bad_request", "error": error}


@pytest.mark.parametrize("field", ["event_type", "entity_id", "created_at"])
def test_an_envelope_without_a_required_field_is_a_bad_request_naming_it(client, field):
    envelope = json.loads(envelope_bytes())
    del envelope[field]
    response = deliver(client, json.dumps(envelope).encode())
    assert response.status_code == 400
    assert response.json()["error"] == f"{field} is missing or not a string."
    assert KycWebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"created_at": "yesterday"}, "created_at is not an ISO 8601 time."),
        ({"created_at": 1764079331}, "created_at is missing or not a string."),
        ({"event_type": "customer.kycs.updated\ud800"}, "event_type is not a valid value."),
        ({"entity_id": "cus_123"}, "entity_id is not a customer ID."),
        ({"entity_id": ADA}, "entity_object is not a customer: customer_id differs from the customer"),
        ({"entity_object": None}, "entity_object is not a customer: the response body is not a JSON object."),
    ],
)
def test_an_envelope_the_desk_cannot_read_is_a_bad_request_that_says_why(client, changes, error):
    response = deliver(client, envelope_bytes(**changes))
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert KycWebhookEvent.objects.count() == 0


def test_a_customer_without_its_email_fails_the_contract_and_is_a_bad_request(client):
    body = customer()
    del body["email"]
    response = deliver(client, envelope_bytes(body))
    assert response.status_code == 400
    assert response.json()["error"] == "entity_object is not a customer: email is missing or null."


@pytest.mark.parametrize(
    "event_type",
    [
        "onramp_transfer.status.updated",
        "offramp_transfer.status.updated",
        "cross_chain_transfer.status.updated",
        "virtual_account.created",
        "customer.deleted.some_day",
    ],
)
def test_other_event_types_are_acknowledged_and_not_stored(client, event_type):
    before = counted("ignored")
    body = json.dumps(
        {
            "event_type": event_type,
            "entity_id": "va_1",
            "entity_type": "x",
            "created_at": "2026-11-25T14:02:11Z",
        }
    ).encode()
    response = deliver(client, body)
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    assert KycWebhookEvent.objects.count() == 0
    assert counted("ignored") == before + 1


# --- Retries: stored once ----------------------------------------------------------------------


def test_the_same_delivery_received_twice_is_stored_once(client):
    body = envelope_bytes()
    assert deliver(client, body).json() == {"status": "accepted"}
    assert deliver(client, body).json() == {"status": "duplicate"}
    assert KycWebhookEvent.objects.count() == 1


def test_a_later_change_of_the_same_customer_is_a_new_delivery(client):
    deliver(client, envelope_bytes())
    approved = customer(ADA) | {"customer_id": GRACE}
    later = envelope_bytes(approved, entity_id=GRACE, created_at="2026-11-25T15:00:00Z")
    assert deliver(client, later).json() == {"status": "accepted"}
    assert KycWebhookEvent.objects.count() == 2


def test_the_delivery_key_covers_the_envelope_and_the_body():
    body = envelope_bytes()
    delivery = align_webhooks.parse_delivery(body)
    key = webhooks.delivery_key(delivery, body)
    assert len(key) == 64
    assert webhooks.delivery_key(delivery, body + b" ") != key
    assert webhooks.delivery_key(align_webhooks.parse_delivery(body), body) == key


def test_a_database_that_cannot_store_it_asks_align_to_deliver_again(client, monkeypatch):
    def unwritable(*args, **kwargs):
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(KycWebhookEvent.objects, "create", unwritable)
    response = deliver(client, envelope_bytes())
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


# --- No personal data --------------------------------------------------------------------------


def test_the_table_has_no_column_for_personal_data():
    columns = {field.name for field in KycWebhookEvent._meta.concrete_fields}
    assert columns == {
        "id",
        "delivery_key",
        "customer_id",
        "event_created_at",
        "received_at",
        "kyc_status",
        "kyc_sub_status",
        "breakdown",
    }


def test_nothing_personal_is_stored_or_logged_from_a_delivery(client, log_output):
    body = customer(str(DemoId.RESUBMISSION_REQUIRED))  # sent with an address although not approved
    raw = envelope_bytes(body)
    deliver(client, raw)
    deliver(client, raw)  # the duplicate
    deliver(client, raw, key="not-the-api-key")
    stored = json.dumps(list(KycWebhookEvent.objects.values()), default=str)
    logged = log_output.getvalue()
    personal = [body["email"], body["company_name"], "Hafenstrasse", "Hamburg", "20457"]
    for text in (stored, logged):
        for value in personal:
            assert value not in text
    assert raw.decode() not in logged
    assert sign(raw, API_KEY) not in logged
    assert sign(raw, "not-the-api-key") not in logged
    assert str(DemoId.RESUBMISSION_REQUIRED) in logged  # IDs are what the log lines carry


# --- Rate limit --------------------------------------------------------------------------------


def test_beyond_the_rate_limit_an_address_is_refused_with_retry_after_and_counted(client, settings):
    settings.ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE = 3
    before = counted("rate_limited")
    answers = [deliver(client, envelope_bytes(created_at=f"2026-11-25T14:0{n}:00Z")) for n in range(5)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    assert 1 <= int(answers[3]["Retry-After"]) <= 60
    assert answers[3].json()["status"] == "rate_limited"
    assert KycWebhookEvent.objects.count() == 3
    assert counted("rate_limited") == before + 2


def test_the_rate_limit_is_per_address(client, settings):
    settings.ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE = 1
    assert deliver(client, envelope_bytes(), REMOTE_ADDR="198.51.100.7").status_code == 200
    assert deliver(client, envelope_bytes(), REMOTE_ADDR="198.51.100.7").status_code == 429
    assert deliver(client, envelope_bytes(), REMOTE_ADDR="198.51.100.8").json() == {"status": "duplicate"}


def test_behind_a_trusted_proxy_the_limit_counts_the_forwarded_address(client, settings):
    settings.ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE = 1
    settings.DASHBOARD_TRUSTED_PROXIES = ["10.0.0.2"]
    proxied = {"REMOTE_ADDR": "10.0.0.2"}
    assert deliver(client, envelope_bytes(), HTTP_X_FORWARDED_FOR="203.0.113.1", **proxied).status_code == 200
    assert deliver(client, envelope_bytes(), HTTP_X_FORWARDED_FOR="203.0.113.1", **proxied).status_code == 429
    assert deliver(client, envelope_bytes(), HTTP_X_FORWARDED_FOR="203.0.113.2", **proxied).status_code == 200


def test_a_refused_flood_is_logged_once_a_minute_not_once_a_delivery(client, settings, log_output):
    settings.ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE = 1
    for _ in range(6):
        deliver(client, b"{}")
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert sum("deliveries a minute" in line["message"] for line in lines) == 1
    assert not any(line["logger"] == "django.request" for line in lines)


def test_the_window_turns_over_each_minute():
    first = webhooks.take_rate("192.0.2.1", now=600.0)
    assert first.allowed
    for _ in range(400):
        webhooks.take_rate("192.0.2.1", now=630.0)
    refused = webhooks.take_rate("192.0.2.1", now=659.5)
    assert not refused.allowed
    assert refused.retry_after == 1
    assert webhooks.take_rate("192.0.2.1", now=660.0).allowed


@pytest.mark.parametrize(
    "error",
    [RedisError("Connection refused"), OperationalError("attempt to write a readonly database")],
    ids=["redis", "database"],
)
def test_when_the_cache_cannot_be_reached_deliveries_are_let_through(client, monkeypatch, error):
    """Redis down, or without Redis a database that can't be written: the count is skipped."""

    def unreachable(*args, **kwargs):
        raise error

    monkeypatch.setattr(shared_cache, "add", unreachable)
    assert deliver(client, envelope_bytes()).status_code == 200


# --- Switched off, other methods, metrics -------------------------------------------------------


def test_with_webhooks_off_the_address_does_not_exist(client, settings):
    settings.ALIGN_WEBHOOKS_ENABLED = False
    assert deliver(client, envelope_bytes()).status_code == 404
    assert KycWebhookEvent.objects.count() == 0


def test_only_post_is_allowed(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_the_receiver_needs_no_login_and_no_csrf_token(settings):
    client = Client(enforce_csrf_checks=True)
    assert deliver(client, envelope_bytes()).status_code == 200


@pytest.mark.parametrize(
    ("result", "send"),
    [
        (DeliveryResult.ACCEPTED, lambda client: deliver(client, envelope_bytes())),
        (DeliveryResult.BAD_SIGNATURE, lambda client: deliver(client, envelope_bytes(), key="wrong")),
        (DeliveryResult.BAD_REQUEST, lambda client: deliver(client, b"[]")),
        (
            DeliveryResult.TOO_LARGE,
            lambda client: deliver(client, b"{}", CONTENT_LENGTH=str(align_webhooks.MAX_BODY_BYTES + 1)),
        ),
    ],
)
def test_every_delivery_counts_in_metrics_by_result(client, result, send):
    before = counted(result)
    send(client)
    assert counted(result) == before + 1


def test_a_duplicate_counts_as_duplicate(client):
    body = envelope_bytes()
    deliver(client, body)
    before = counted("duplicate")
    deliver(client, body)
    assert counted("duplicate") == before + 1


# --- The open page's question: anything newer? ---------------------------------------------------


def changes_url(customer_id: str = GRACE, after: int | str = 0) -> str:
    return f"/customers/{customer_id}/kyc-changes/?after={after}"


def stored_event(customer_id: str = GRACE, n: int = 0) -> KycWebhookEvent:
    return KycWebhookEvent.objects.create(
        delivery_key=f"{customer_id}-{n}".ljust(64, "0")[:64],
        customer_id=customer_id,
        event_created_at=WHEN,
        kyc_status="approved",
    )


def test_nothing_newer_is_204(staff_client):
    event = stored_event()
    assert staff_client.get(changes_url(after=event.pk)).status_code == 204
    assert staff_client.get(changes_url(after=0)).status_code == 200


def test_something_newer_says_so_with_the_newest_id(staff_client):
    first, second = stored_event(n=1), stored_event(n=2)
    response = staff_client.get(changes_url(after=first.pk))
    assert response.status_code == 200
    assert response.json() == {"changed": True, "newest": second.pk}


def test_another_customers_events_are_no_news(staff_client):
    stored_event(ADA)
    assert staff_client.get(changes_url(GRACE, after=0)).status_code == 204


def test_the_question_costs_one_query_of_the_events_and_no_audit_row_and_no_call_to_align(
    staff_client, align
):
    stored_event()
    staff_client.get(changes_url())  # the session and permissions, once, as any page
    with CaptureQueriesContext(connection) as queries:
        assert staff_client.get(changes_url()).status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert sum("customers_kycwebhookevent" in sql for sql in statements) == 1
    assert not any("customers_auditevent" in sql for sql in statements)
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize("after", ["", "-1", "1.5", "abc", "9" * 19])
def test_an_after_that_is_not_an_event_id_is_a_bad_request(staff_client, after):
    response = staff_client.get(changes_url(after=after))
    assert response.status_code == 400
    assert "after must be" in response.json()["error"]


def test_the_question_needs_a_signed_in_user_with_the_lookup_permission(client, django_user_model):
    assert client.get(changes_url()).status_code == 302
    outsider = django_user_model.objects.create_user(username="outsider", password="irrelevant-pass")
    client.force_login(outsider)
    assert client.get(changes_url()).status_code == 403


def test_the_question_is_not_asked_without_webhooks(staff_client, settings):
    settings.ALIGN_WEBHOOKS_ENABLED = False
    assert staff_client.get(changes_url()).status_code == 404


def test_events_that_cannot_be_read_are_a_503_not_a_500(staff_client, monkeypatch):
    def unreadable(*args, **kwargs):
        raise DatabaseError("no such table")

    monkeypatch.setattr("django.db.models.query.QuerySet.first", unreadable)
    assert staff_client.get(changes_url()).status_code == 503
