"""The audit trail: every lookup and every copied KYC link on record, and no lookup without one.

The two guarantees the compliance team relies on are tested through the views, as staff meet
them: a lookup whose audit row cannot be written never reaches Align, and a lookup whose
*outcome* cannot be written still shows the customer, its access on record as "started".
"""

import dataclasses
import re
import time
import uuid
from datetime import timedelta

import pytest
import requests
import responses
from django.contrib.auth.models import Permission
from django.db import DatabaseError, OperationalError, connection
from django.db.models.sql.compiler import SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.align import client
from customers.align.records import Customer
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.models import AuditEvent, BulkLookup, BulkLookupExport
from customers.services import audit
from dashboard.accounts.sessions import SESSION_STARTED_KEY

pytestmark = pytest.mark.django_db

ADA = uuid.UUID(DemoId.INDIVIDUAL_APPROVED)
ADA_NAME = "Ada Lovelace"
ADA_EMAIL = "ada.lovelace@example.com"
AUDIT_UNAVAILABLE_TITLE = "Lookups are paused: the audit log can&#x27;t be written"
Outcome = AuditEvent.Outcome
# What runs a plain SELECT on this database: on PostgreSQL, a subclass of Django's SQLCompiler.
SELECT_COMPILER = connection.ops.compiler("SQLCompiler")
# Query plans are read in SQLite's words; on PostgreSQL (make test's second pass) they are not checked.
sqlite_query_plans = pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")
Action = AuditEvent.Action


def detail_url(customer_id) -> str:
    return reverse("customers:detail", kwargs={"customer_ref": str(customer_id)})


def beacon_url(customer_id) -> str:
    return reverse("customers:link_copied", kwargs={"customer_id": customer_id})


def recent_lookups_html(html: str) -> str:
    match = re.search(r'<aside id="recent-lookups".*?</aside>', html, re.S)
    assert match, "no recent lookups list in the page"
    return match.group(0)


def recent_entries(html: str) -> list[dict[str, str]]:
    """Each entry of the recent lookups list: its href, hx-get, full ID (title) and inner HTML."""
    return [
        {"href": href, "hx_get": hx_get, "customer_id": title, "inner": inner}
        for href, hx_get, title, inner in re.findall(
            r'<li><a href="([^"]*)" hx-get="([^"]*)" hx-push-url="true" title="([^"]*)">(.*?)</a></li>',
            recent_lookups_html(html),
            re.S,
        )
    ]


def only_event() -> AuditEvent:
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, f"expected exactly one audit row, found {len(events)}"
    return events[0]


@pytest.fixture
def audit_writes_fail(monkeypatch):
    """Every write of an audit row fails, as it does when the database is locked or full."""

    def refuse(self, *args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(AuditEvent, "save", refuse)


@pytest.fixture
def audit_outcome_writes_fail(monkeypatch):
    """The first write of a row works; writing its outcome afterwards fails."""
    real_save = AuditEvent.save

    def save(self, *args, **kwargs):
        if kwargs.get("update_fields"):
            raise OperationalError("database is locked")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(AuditEvent, "save", save)


@pytest.fixture
def audit_reads_fail(monkeypatch):
    """Reading audit rows fails at the database (SELECTs only; writes still work).

    Yields a function that ends the failure, for a test to check what was written.
    """
    real_execute_sql = SQLCompiler.execute_sql
    failing = [True]

    def execute_sql(self, *args, **kwargs):
        if failing and type(self) is SELECT_COMPILER and self.query.model is AuditEvent:
            raise OperationalError("database is locked")
        return real_execute_sql(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "execute_sql", execute_sql)
    return failing.clear


@pytest.fixture
def looked_up(staff_user) -> AuditEvent:
    """staff_user has just looked Ada up and was shown her card, so she may copy Ada's link."""
    (event,) = AuditEvent.objects.bulk_create(
        [AuditEvent(user=staff_user, action=Action.LOOKUP, customer_id=ADA, outcome=Outcome.FOUND)]
    )
    return event


@pytest.fixture
def other_user(django_user_model):
    user = django_user_model.objects.create_user(username="olga", password="irrelevant-password")
    user.user_permissions.add(Permission.objects.get(codename="lookup_customer"))
    return user


# --- A row for every lookup, with its outcome -----------------------------------------------


@pytest.mark.parametrize(
    ("demo_id", "kyc_status"),
    [
        (DemoId.INDIVIDUAL_APPROVED, "approved"),
        (DemoId.FORM_STARTED, "pending"),
        (DemoId.REJECTED, "rejected"),
        (DemoId.KYC_NOT_STARTED, ""),
    ],
)
def test_found_customer_is_recorded_with_the_kyc_status_seen(
    staff_client, staff_user, serve, demo_id, kyc_status
):
    serve(demo_id)
    response = staff_client.get(detail_url(demo_id), REMOTE_ADDR="198.51.100.23")
    assert response.status_code == 200
    event = only_event()
    assert event.user == staff_user
    assert event.action == Action.LOOKUP
    assert event.customer_id == uuid.UUID(demo_id)
    assert event.outcome == Outcome.FOUND
    assert event.kyc_status == kyc_status
    assert event.is_refresh is False
    assert event.client_ip == "198.51.100.23"
    assert event.request_id == response["X-Request-ID"]


def test_null_and_unrecognised_kyc_statuses_are_recorded_as_sent(staff_client, serve):
    serve(change=lambda body: body["kycs"].update(status=None))
    staff_client.get(detail_url(ADA))
    assert only_event().kyc_status == AuditEvent.KYC_STATUS_NOT_SENT
    AuditEvent.objects.all().delete()
    serve(change=lambda body: body["kycs"].update(status="approved_later"))
    staff_client.get(detail_url(ADA))
    assert only_event().kyc_status == "approved_later"


@pytest.mark.parametrize(
    ("status", "kyc_status"),
    [("pending", "pending"), (None, AuditEvent.KYC_STATUS_NOT_SENT), ("x" * 50, "x" * 40)],
    ids=["pending", "status-null", "long-unrecognised"],
)
def test_a_new_kyc_session_is_recorded_with_its_status_coded_as_a_lookups(staff_user, status, kyc_status):
    event = audit.start_kyc_session(audit.Actor(staff_user, None, ""), ADA)
    audit.finish_kyc_session(event, session=client.KycSession(status=status, kyc_flow_link=""))
    event.refresh_from_db()
    assert (event.outcome, event.kyc_status) == (Outcome.SESSION_STARTED, kyc_status)


def test_the_row_holds_ids_and_codes_but_nothing_personal(staff_client, serve):
    body = serve()
    staff_client.get(detail_url(ADA))
    event = only_event()
    stored = " ".join(str(getattr(event, field.attname)) for field in AuditEvent._meta.concrete_fields)
    for personal in (
        body["first_name"],
        body["last_name"],
        body["email"],
        body["address"]["street_line_1"],
        body["kycs"]["kyc_flow_link"],
    ):
        assert personal not in stored


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        pytest.param({"status": 404, "json": {"message": "Customer not found"}}, Outcome.NOT_FOUND, id="404"),
        pytest.param(
            {"body": "{not json", "content_type": "application/json"},
            Outcome.INVALID_RESPONSE,
            id="malformed-json",
        ),
        pytest.param({"json": ["not", "a", "customer"]}, Outcome.INVALID_RESPONSE, id="not-a-customer"),
        pytest.param({"status": 401, "json": {}}, Outcome.KEY_REJECTED, id="401"),
        pytest.param({"status": 403, "json": {}}, Outcome.KEY_REJECTED, id="403"),
        pytest.param({"status": 429, "json": {}}, Outcome.RATE_LIMITED, id="429"),
        pytest.param({"status": 500, "json": {}}, Outcome.UPSTREAM_ERROR, id="500"),
        pytest.param({"status": 503, "json": {}}, Outcome.UPSTREAM_ERROR, id="503-after-retries"),
        pytest.param({"body": requests.exceptions.ConnectTimeout()}, Outcome.TIMEOUT, id="connect-timeout"),
        pytest.param({"body": requests.exceptions.ReadTimeout()}, Outcome.TIMEOUT, id="read-timeout"),
        pytest.param({"body": requests.exceptions.ConnectionError()}, Outcome.UNREACHABLE, id="unreachable"),
    ],
)
def test_failed_lookup_is_recorded_once_with_its_outcome(
    staff_client, staff_user, align, customer_url, answer, outcome
):
    align.get(customer_url(ADA), **answer)
    response = staff_client.get(detail_url(ADA), REMOTE_ADDR="198.51.100.23")
    assert response.status_code != 200
    event = only_event()  # one row per lookup, however many times the client retried
    assert event.user == staff_user
    assert event.action == Action.LOOKUP
    assert event.customer_id == ADA
    assert event.outcome == outcome
    assert event.kyc_status == ""
    assert event.is_refresh is False
    assert event.client_ip == "198.51.100.23"
    assert event.request_id == response["X-Request-ID"]


def test_missing_api_key_is_recorded_as_not_configured(staff_client, staff_user, align, settings):
    settings.ALIGN_API_KEY = ""
    response = staff_client.get(detail_url(ADA))
    assert response.status_code == 503
    event = only_event()
    assert (event.user, event.customer_id, event.outcome) == (staff_user, ADA, Outcome.NOT_CONFIGURED)
    assert event.request_id == response["X-Request-ID"]
    assert len(align.calls) == 0


def test_the_row_is_on_record_before_align_is_asked(staff_client, align, customer_url, demo_body):
    seen_by_align = []

    def answer(request):
        seen_by_align.append(list(AuditEvent.objects.values_list("customer_id", "outcome")))
        return 404, {}, "{}"

    align.add_callback(responses.GET, customer_url(ADA), callback=answer, content_type="application/json")
    staff_client.get(detail_url(ADA))
    assert seen_by_align == [[(ADA, Outcome.STARTED)]]
    assert only_event().outcome == Outcome.NOT_FOUND


@pytest.mark.parametrize(
    ("query", "is_refresh"),
    [("?refresh=1", True), ("", False), ("?refresh=0", False), ("?refresh=yes", False)],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["full-page", "htmx"])
def test_refresh_is_marked_only_for_refresh_1(staff_client, serve, htmx_headers, query, is_refresh, htmx):
    serve()
    headers = htmx_headers if htmx else {}
    assert staff_client.get(detail_url(ADA) + query, headers=headers).status_code == 200
    assert only_event().is_refresh is is_refresh


def test_search_form_in_htmx_records_one_lookup(staff_client, staff_user, serve, htmx_headers):
    serve()
    response = staff_client.get("/customers/", {"customer_id": f" {str(ADA).upper()} "}, headers=htmx_headers)
    assert response.status_code == 200
    event = only_event()
    assert (event.user, event.customer_id, event.outcome, event.is_refresh) == (
        staff_user,
        ADA,
        Outcome.FOUND,
        False,
    )
    assert event.request_id == response["X-Request-ID"]


def test_search_form_without_htmx_records_only_when_the_redirect_is_followed(staff_client, serve):
    serve()
    response = staff_client.get("/customers/", {"customer_id": str(ADA)})
    assert response.status_code == 302
    assert AuditEvent.objects.count() == 0
    staff_client.get(response["Location"])
    assert only_event().outcome == Outcome.FOUND


@pytest.mark.parametrize(
    "path",
    ["/customers/?customer_id=not-a-uuid", "/customers/?customer_id=3f2a9c1e", "/customers/not-a-uuid/"],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["full-page", "htmx"])
def test_invalid_input_records_nothing_and_never_calls_align(staff_client, align, htmx_headers, path, htmx):
    response = staff_client.get(path, headers=htmx_headers if htmx else {})
    assert response.status_code == 400
    assert AuditEvent.objects.count() == 0
    assert len(align.calls) == 0


def test_non_canonical_address_redirect_records_nothing(staff_client, align):
    assert staff_client.get(f"/customers/{str(ADA).upper()}/").status_code == 301
    assert AuditEvent.objects.count() == 0


def test_refused_users_leave_no_row(client, django_user_model, align):
    assert client.get(detail_url(ADA)).status_code == 302
    visitor = django_user_model.objects.create_user(username="visitor", password="irrelevant-password")
    client.force_login(visitor)
    assert client.get(detail_url(ADA)).status_code == 403
    assert AuditEvent.objects.count() == 0
    assert len(align.calls) == 0


# --- The client's address -------------------------------------------------------------------


def test_client_ip_comes_from_x_forwarded_for_of_a_trusted_proxy(staff_client, serve, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = ["10.0.0.1"]
    serve()
    staff_client.get(detail_url(ADA), REMOTE_ADDR="10.0.0.1", headers={"X-Forwarded-For": "203.0.113.7"})
    assert only_event().client_ip == "203.0.113.7"


def test_forged_x_forwarded_for_from_an_untrusted_address_is_ignored(staff_client, serve, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = ["10.0.0.1"]
    serve()
    staff_client.get(
        detail_url(ADA), REMOTE_ADDR="198.51.100.23", headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    )
    assert only_event().client_ip == "198.51.100.23"


def test_without_trusted_proxies_x_forwarded_for_is_ignored(staff_client, serve, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = []
    serve()
    staff_client.get(detail_url(ADA), REMOTE_ADDR="10.0.0.1", headers={"X-Forwarded-For": "203.0.113.7"})
    assert only_event().client_ip == "10.0.0.1"


# --- Guarantee 1: no audit row, no lookup ---------------------------------------------------


def test_when_the_audit_row_cannot_be_written_align_is_not_asked(
    staff_client, align, audit_writes_fail, monkeypatch, caplog
):
    monkeypatch.setattr(
        "customers.align.client.customer_get",
        lambda **kwargs: pytest.fail("Align was asked without an audit row"),
    )
    response = staff_client.get(detail_url(ADA))
    assert response.status_code == 503
    html = response.content.decode()
    assert html.startswith("<!doctype html>")
    assert AUDIT_UNAVAILABLE_TITLE in html
    assert "Nothing was fetched from Align" in html
    assert str(ADA) in html
    for personal in (ADA_NAME, "Ada", "Lovelace", ADA_EMAIL):
        assert personal not in html
    assert len(align.calls) == 0
    assert AuditEvent.objects.count() == 0
    assert any(
        record.name == "customers.services.audit" and record.levelname == "ERROR" and record.exc_info
        for record in caplog.records
    )


def test_when_the_audit_row_cannot_be_written_the_htmx_fragment_says_so(
    staff_client, align, audit_writes_fail, htmx_headers
):
    response = staff_client.get(detail_url(ADA), headers=htmx_headers)
    assert response.status_code == 503
    html = response.content.decode()
    assert "<html" not in html
    assert AUDIT_UNAVAILABLE_TITLE in html
    assert ADA_NAME not in html
    assert ADA_EMAIL not in html
    # Nothing new was recorded, so the recent lookups list is left as it is.
    assert 'id="recent-lookups"' not in html
    assert len(align.calls) == 0


def test_when_the_audit_row_cannot_be_written_the_search_form_does_not_look_up(
    staff_client, align, audit_writes_fail, htmx_headers
):
    response = staff_client.get("/customers/", {"customer_id": str(ADA)}, headers=htmx_headers)
    assert response.status_code == 503
    assert AUDIT_UNAVAILABLE_TITLE in response.content.decode()
    assert ADA_NAME not in response.content.decode()
    assert len(align.calls) == 0


def test_audit_unavailable_offers_try_again_as_a_refresh(staff_client, align, audit_writes_fail):
    html = staff_client.get(detail_url(ADA)).content.decode()
    assert f'href="{detail_url(ADA)}?refresh=1"' in html
    assert ">Try again</a>" in html


@pytest.mark.django_db(transaction=True)
def test_a_real_database_error_on_insert_also_stops_the_lookup(staff_client, align, monkeypatch):
    """Outside a test transaction, as in production: the INSERT itself fails at the database."""
    real_execute_sql = SQLInsertCompiler.execute_sql

    def execute_sql(self, *args, **kwargs):
        if self.query.model is AuditEvent:
            raise OperationalError("database is locked")
        return real_execute_sql(self, *args, **kwargs)

    monkeypatch.setattr(SQLInsertCompiler, "execute_sql", execute_sql)
    response = staff_client.get(detail_url(ADA))
    assert response.status_code == 503
    assert AUDIT_UNAVAILABLE_TITLE in response.content.decode()
    assert len(align.calls) == 0
    assert AuditEvent.objects.count() == 0


# --- Guarantee 2: the outcome is lost, the page is not --------------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["full-page", "htmx"])
def test_when_the_outcome_cannot_be_written_the_customer_is_still_shown(
    staff_client, staff_user, serve, audit_outcome_writes_fail, htmx_headers, caplog, htmx
):
    serve()
    response = staff_client.get(detail_url(ADA), headers=htmx_headers if htmx else {})
    assert response.status_code == 200
    assert ADA_NAME in response.content.decode()
    event = only_event()
    assert (event.user, event.customer_id, event.outcome, event.kyc_status) == (
        staff_user,
        ADA,
        Outcome.STARTED,
        "",
    )
    assert event.request_id == response["X-Request-ID"]
    failures = [
        record
        for record in caplog.records
        if record.name == "customers.services.audit" and record.levelname == "ERROR"
    ]
    assert len(failures) == 1
    assert failures[0].exc_info
    assert "stays 'started'" in failures[0].getMessage()


def test_when_the_outcome_of_a_failure_cannot_be_written_the_failure_is_still_shown(
    staff_client, align, customer_url, audit_outcome_writes_fail
):
    align.get(customer_url(ADA), status=404)
    response = staff_client.get(detail_url(ADA))
    assert response.status_code == 404
    assert "No customer with this ID" in response.content.decode()
    assert only_event().outcome == Outcome.STARTED


@pytest.mark.django_db(transaction=True)
def test_a_real_database_error_on_update_still_shows_the_customer(staff_client, serve, monkeypatch):
    """Outside a test transaction, as in production: the UPDATE of the outcome fails at the database."""
    real_execute_sql = SQLUpdateCompiler.execute_sql

    def execute_sql(self, *args, **kwargs):
        if self.query.model is AuditEvent:
            raise OperationalError("database is locked")
        return real_execute_sql(self, *args, **kwargs)

    monkeypatch.setattr(SQLUpdateCompiler, "execute_sql", execute_sql)
    serve()
    response = staff_client.get(detail_url(ADA))
    assert response.status_code == 200
    assert ADA_NAME in response.content.decode()
    assert only_event().outcome == Outcome.STARTED


def test_finish_lookup_never_raises(staff_user, audit_outcome_writes_fail, rf):
    request = rf.get("/")
    request.user = staff_user
    event = audit.start_lookup(request, ADA, is_refresh=False)
    audit.finish_lookup(event, error=client.UpstreamTimeout("slow"))
    event.refresh_from_db()
    assert event.outcome == Outcome.STARTED


def test_start_lookup_raises_audit_unavailable_on_a_database_error(staff_user, audit_writes_fail, rf):
    request = rf.get("/")
    request.user = staff_user
    with pytest.raises(audit.AuditUnavailable):
        audit.start_lookup(request, ADA, is_refresh=False)


@pytest.mark.parametrize(
    ("query", "automatic"), [("?refresh=auto", True), ("?refresh=1", False), ("", False)]
)
def test_only_the_pages_own_refresh_is_recorded_as_automatic(staff_client, serve, query, automatic):
    """An open page that refreshes itself (services/history.py) is told apart from staff's Refresh."""
    serve()
    staff_client.get(detail_url(ADA) + query)
    assert only_event().automatic is automatic


# --- The Copy link beacon -------------------------------------------------------------------


def test_copy_beacon_records_who_copied_the_link_for_whom(staff_client, staff_user, looked_up):
    response = staff_client.post(beacon_url(ADA), REMOTE_ADDR="198.51.100.23")
    assert response.status_code == 200
    event = AuditEvent.objects.exclude(pk=looked_up.pk).get()
    assert event.user == staff_user
    assert event.action == Action.LINK_COPIED
    assert event.outcome == Outcome.COPIED
    assert event.customer_id == ADA
    assert event.kyc_status == ""
    assert event.is_refresh is False
    assert event.client_ip == "198.51.100.23"
    assert event.request_id == response["X-Request-ID"]


def test_copy_beacon_never_asks_align(staff_client, align, looked_up):
    assert staff_client.post(beacon_url(ADA)).status_code == 200
    assert len(align.calls) == 0


def test_copy_beacon_refuses_get(staff_client):
    assert staff_client.get(beacon_url(ADA)).status_code == 405
    assert AuditEvent.objects.count() == 0


def test_copy_beacon_for_something_not_a_uuid_is_not_found(staff_client):
    assert staff_client.post("/customers/not-a-uuid/link-copied/").status_code == 404
    assert AuditEvent.objects.count() == 0


def test_copy_beacon_sends_anonymous_users_to_login(client):
    response = client.post(beacon_url(ADA))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert AuditEvent.objects.count() == 0


def test_copy_beacon_from_an_expired_htmx_session_redirects_the_whole_page(client):
    response = client.post(
        beacon_url(ADA),
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver/customers/{ADA}/"},
    )
    assert response["HX-Redirect"] == f"/accounts/login/?next=/customers/{ADA}/"
    assert AuditEvent.objects.count() == 0


def test_copy_beacon_refuses_users_without_the_lookup_permission(client, django_user_model):
    visitor = django_user_model.objects.create_user(username="visitor", password="irrelevant-password")
    client.force_login(visitor)
    assert client.post(beacon_url(ADA)).status_code == 403
    assert AuditEvent.objects.count() == 0


def test_copy_beacon_without_a_csrf_token_is_refused(staff_user):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff_user)
    assert csrf_client.post(beacon_url(ADA)).status_code == 403
    assert AuditEvent.objects.count() == 0


def test_copy_beacon_with_the_token_from_the_page_headers_is_accepted(staff_user, serve):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff_user)
    serve()
    html = csrf_client.get(detail_url(ADA)).content.decode()
    token = re.search(r"""<body hx-headers='\{"X-CSRFToken": "([^"]+)"\}'>""", html).group(1)
    assert csrf_client.post(beacon_url(ADA), headers={"X-CSRFToken": token}).status_code == 200
    assert AuditEvent.objects.filter(action=Action.LINK_COPIED, customer_id=ADA).count() == 1


def test_copy_beacon_answers_503_when_the_audit_row_cannot_be_written(
    staff_client, looked_up, audit_writes_fail, caplog
):
    assert staff_client.post(beacon_url(ADA)).status_code == 503
    assert list(AuditEvent.objects.all()) == [looked_up]
    assert any(
        record.name == "customers.services.audit" and record.levelname == "ERROR" for record in caplog.records
    )


def test_customer_card_carries_the_beacon_and_stays_out_of_history(staff_client, serve):
    serve()
    html = staff_client.get(detail_url(ADA)).content.decode()
    button = re.search(r"<button[^>]*>Copy link</button>", html, re.S).group(0)
    assert "data-audit-beacon" in button
    assert f'hx-post="{beacon_url(ADA)}"' in button
    assert 'hx-swap="none"' in button
    assert re.search(r'<article class="card customer-card"[^>]*hx-history="false"', html)


# --- Recent lookups -------------------------------------------------------------------------


def record_lookup(user, customer_id, outcome=Outcome.FOUND, kyc_status="approved") -> AuditEvent:
    return AuditEvent.objects.create(
        user=user, action=Action.LOOKUP, customer_id=customer_id, outcome=outcome, kyc_status=kyc_status
    )


def test_recent_lookups_are_the_last_ten_distinct_customers_newest_first(staff_client, staff_user):
    customers = [uuid.UUID(int=0x1000 + number, version=4) for number in range(12)]
    for customer_id in customers:
        record_lookup(staff_user, customer_id)
    record_lookup(staff_user, customers[5])
    record_lookup(staff_user, customers[2])
    record_lookup(staff_user, customers[2])

    entries = recent_entries(staff_client.get("/customers/").content.decode())

    expected = [customers[2], customers[5], *[customers[n] for n in (11, 10, 9, 8, 7, 6, 4, 3)]]
    assert [uuid.UUID(entry["customer_id"]) for entry in entries] == expected


def test_a_bulk_lookup_does_not_push_single_lookups_out_of_the_recent_list(staff_client, staff_user):
    """Issue #19, item 13: a batch of 50 pushed every single lookup out of the list."""
    record_lookup(staff_user, ADA)
    batch = BulkLookup.objects.create(
        user=staff_user, ids_submitted=50, ids_valid=50, duplicates=0, rejected=0
    )
    for number in range(50):
        AuditEvent.objects.create(
            user=staff_user,
            action=Action.LOOKUP,
            customer_id=uuid.UUID(int=0x2000 + number, version=4),
            outcome=Outcome.FOUND,
            kyc_status="approved",
            batch=batch,
        )

    entries = recent_entries(staff_client.get("/customers/").content.decode())

    assert [uuid.UUID(entry["customer_id"]) for entry in entries] == [uuid.UUID(str(ADA))]


def test_each_recent_lookup_is_an_htmx_link_to_the_customer(staff_client, staff_user):
    record_lookup(staff_user, ADA)
    (entry,) = recent_entries(staff_client.get("/customers/").content.decode())
    assert entry["href"] == detail_url(ADA)
    assert entry["hx_get"] == detail_url(ADA)
    assert str(ADA)[:8] in entry["inner"]
    assert "<time" in entry["inner"]


@pytest.mark.parametrize(
    ("outcome", "kyc_status", "words"),
    [
        (Outcome.FOUND, "approved", "Approved"),
        (Outcome.FOUND, "pending", "Pending"),
        (Outcome.FOUND, "rejected", "Rejected"),
        (Outcome.FOUND, "", "Not started"),
        (Outcome.FOUND, AuditEvent.KYC_STATUS_NOT_SENT, "Unknown"),
        (Outcome.NOT_FOUND, "", "Not found"),
        (Outcome.TIMEOUT, "", "Lookup failed"),
        (Outcome.STARTED, "", "Not recorded"),
    ],
)
def test_recent_lookup_shows_the_status_seen_in_words(staff_client, staff_user, outcome, kyc_status, words):
    record_lookup(staff_user, ADA, outcome=outcome, kyc_status=kyc_status)
    (entry,) = recent_entries(staff_client.get("/customers/").content.decode())
    assert re.search(rf'<span class="badge badge-\w+">.*?{words}</span>', entry["inner"], re.S)


def test_a_customer_looked_up_again_shows_what_was_seen_the_last_time(staff_client, staff_user):
    record_lookup(staff_user, ADA, kyc_status="pending")
    record_lookup(staff_user, ADA, kyc_status="approved")
    (entry,) = recent_entries(staff_client.get("/customers/").content.decode())
    assert "Approved" in entry["inner"]
    assert "Pending" not in entry["inner"]


def test_recent_lookups_never_show_another_users_lookups(staff_client, staff_user, other_user):
    theirs = uuid.uuid4()
    record_lookup(other_user, theirs)
    record_lookup(staff_user, ADA)
    record_lookup(other_user, ADA, kyc_status="rejected")
    html = recent_lookups_html(staff_client.get("/customers/").content.decode())
    assert str(theirs) not in html
    assert str(theirs)[:8] not in html
    (entry,) = recent_entries(html)
    assert "Approved" in entry["inner"]


def test_copied_links_are_not_lookups(staff_client, staff_user):
    record_copy(staff_user)
    html = staff_client.get("/customers/").content.decode()
    assert recent_entries(html) == []
    assert "Customers you look up appear here" in recent_lookups_html(html)


def test_recent_lookups_never_show_names_or_emails(staff_client, serve, demo_body):
    shown = [DemoId.INDIVIDUAL_APPROVED, DemoId.CORPORATE_APPROVED, DemoId.FORM_STARTED]
    for demo_id in shown:
        serve(demo_id)
        assert staff_client.get(detail_url(demo_id)).status_code == 200
    html = staff_client.get("/customers/").content.decode()
    assert len(recent_entries(html)) == 3
    for demo_id in shown:
        body = demo_body(demo_id)
        for personal in (
            body["email"],
            body.get("first_name"),
            body.get("last_name"),
            body.get("company_name"),
        ):
            if personal:
                assert personal not in html


def test_an_htmx_lookup_sends_the_recent_list_out_of_band_with_the_new_customer_first(
    staff_client, staff_user, serve, htmx_headers
):
    earlier = uuid.uuid4()
    record_lookup(staff_user, earlier)
    serve()
    html = staff_client.get("/customers/", {"customer_id": str(ADA)}, headers=htmx_headers).content.decode()
    aside = recent_lookups_html(html)
    assert aside.startswith('<aside id="recent-lookups"')
    assert 'hx-swap-oob="true"' in aside.split(">", 1)[0]
    assert [uuid.UUID(entry["customer_id"]) for entry in recent_entries(html)] == [ADA, earlier]
    assert ADA_NAME not in aside


def test_a_failed_htmx_lookup_also_updates_the_recent_list(staff_client, align, customer_url, htmx_headers):
    align.get(customer_url(ADA), status=404)
    html = staff_client.get(detail_url(ADA), headers=htmx_headers).content.decode()
    (entry,) = recent_entries(html)
    assert entry["customer_id"] == str(ADA)
    assert "Not found" in entry["inner"]


def test_search_page_still_renders_when_recent_lookups_cannot_be_read(
    staff_client, staff_user, audit_reads_fail
):
    response = staff_client.get("/customers/")
    assert response.status_code == 200
    assert "Your recent lookups can't be shown right now." in recent_lookups_html(response.content.decode())
    assert "Look up a customer" in response.content.decode()


def test_lookup_still_works_when_recent_lookups_cannot_be_read(
    staff_client, serve, audit_reads_fail, htmx_headers
):
    serve()
    serve()
    for headers in ({}, htmx_headers):
        response = staff_client.get(detail_url(ADA), headers=headers)
        assert response.status_code == 200
        html = response.content.decode()
        assert ADA_NAME in html
        assert "Your recent lookups can't be shown right now." in recent_lookups_html(html)
    audit_reads_fail()  # the database answers again
    assert AuditEvent.objects.filter(outcome=Outcome.FOUND).count() == 2


def test_recent_lookups_returns_none_when_the_database_fails(staff_user, audit_reads_fail, caplog):
    assert audit.recent_lookups(staff_user) is None
    assert any(
        record.name == "customers.services.audit" and record.levelname == "ERROR" for record in caplog.records
    )


def test_recent_lookups_returns_none_whatever_database_error(staff_user, monkeypatch):
    def broken(self, *args, **kwargs):
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(SQLCompiler, "execute_sql", broken)
    assert audit.recent_lookups(staff_user) is None


def test_recent_lookups_of_a_new_user_is_empty(staff_user):
    assert audit.recent_lookups(staff_user) == []


# --- outcome_of_failure ---------------------------------------------------------------------

OUTCOMES_BY_ERROR = [
    (client.CustomerNotFound, Outcome.NOT_FOUND),
    (client.InvalidResponse, Outcome.INVALID_RESPONSE),
    (client.ApiKeyRejected, Outcome.KEY_REJECTED),
    (client.RateLimited, Outcome.RATE_LIMITED),
    (client.UpstreamTimeout, Outcome.TIMEOUT),
    (client.UpstreamUnreachable, Outcome.UNREACHABLE),
    (client.UpstreamError, Outcome.UPSTREAM_ERROR),
    (client.AlignNotConfigured, Outcome.NOT_CONFIGURED),
    (client.RequestRefused, Outcome.REFUSED),
]


@pytest.mark.parametrize(("error_class", "outcome"), OUTCOMES_BY_ERROR)
def test_outcome_of_failure_maps_each_client_error(error_class, outcome):
    assert audit.outcome_of_failure(error_class("detail")) == outcome


def test_every_client_error_class_has_its_own_outcome():
    defined = {
        value
        for value in vars(client).values()
        if isinstance(value, type) and issubclass(value, client.AlignError) and value is not client.AlignError
    }
    assert defined == {error_class for error_class, _ in OUTCOMES_BY_ERROR}


def test_outcome_of_failure_follows_subclasses_and_defaults_to_upstream_error():
    class SlowerStill(client.UpstreamTimeout):
        pass

    assert audit.outcome_of_failure(SlowerStill("x")) == Outcome.TIMEOUT
    assert audit.outcome_of_failure(client.AlignError("x")) == Outcome.UPSTREAM_ERROR


def test_every_outcome_fits_the_column():
    longest = max(len(value) for value in Outcome.values)
    assert longest <= AuditEvent._meta.get_field("outcome").max_length


# --- Who already copied the KYC link --------------------------------------------------------


def record_copy(user, customer_id=ADA) -> AuditEvent:
    return AuditEvent.objects.create(
        user=user, action=Action.LINK_COPIED, customer_id=customer_id, outcome=Outcome.COPIED
    )


def link_copies_html(html: str) -> str:
    match = re.search(r'<div id="link-copies".*?</div>', html, re.S)
    assert match, "no link copies line in the page"
    return match.group(0)


def test_link_copies_are_the_newest_five_copies_of_this_customers_link(staff_user, other_user):
    copies = [record_copy(staff_user if number % 2 else other_user) for number in range(7)]
    record_copy(staff_user, customer_id=uuid.uuid4())
    record_lookup(staff_user, ADA)
    assert audit.link_copies(customer_id=ADA) == copies[::-1][:5]


def test_link_copies_and_who_made_them_are_read_in_one_query(
    staff_user, other_user, django_assert_num_queries
):
    record_copy(staff_user)
    record_copy(other_user)
    with django_assert_num_queries(1):
        names = [event.user.get_username() for event in audit.link_copies(customer_id=ADA)]
    assert names == [other_user.username, staff_user.username]


@sqlite_query_plans
def test_link_copies_are_read_through_the_customer_index(staff_user):
    record_copy(staff_user)
    with CaptureQueriesContext(connection) as queries:
        audit.link_copies(customer_id=ADA)
    (query,) = queries.captured_queries
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {query['sql']}")
        plan = " / ".join(str(row[-1]) for row in cursor.fetchall())
    assert "USING INDEX audit_customer_action_recent" in plan
    assert "TEMP B-TREE" not in plan


@pytest.mark.parametrize("htmx", [False, True])
def test_a_lookup_reads_the_link_copies_once(staff_client, serve, htmx_headers, htmx):
    serve()
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(detail_url(ADA), headers=htmx_headers if htmx else {})
    reads = [query["sql"] for query in queries if "'link_copied'" in query["sql"]]
    assert len(reads) == 1


def test_reading_link_copies_is_not_audited(staff_user):
    record_copy(staff_user)
    audit.link_copies(customer_id=ADA)
    assert AuditEvent.objects.count() == 1


def test_a_card_showing_link_copies_records_only_its_lookup(staff_client, staff_user, serve):
    record_copy(staff_user)
    serve()
    html = staff_client.get(detail_url(ADA)).content.decode()
    assert "Link last copied by you" in link_copies_html(html)
    assert sorted(AuditEvent.objects.values_list("action", flat=True)) == [Action.LINK_COPIED, Action.LOOKUP]


def test_link_copies_returns_none_when_the_database_fails(staff_user, audit_reads_fail, caplog):
    assert audit.link_copies(customer_id=ADA) is None
    assert any(
        record.name == "customers.services.audit" and record.levelname == "ERROR" for record in caplog.records
    )


def test_lookup_still_shows_the_customer_when_link_copies_cannot_be_read(
    staff_client, serve, audit_reads_fail
):
    serve()
    response = staff_client.get(detail_url(ADA))
    assert response.status_code == 200
    html = response.content.decode()
    assert ADA_NAME in html
    assert "Who copied this link before can't be shown right now." in link_copies_html(html)


def test_copy_beacon_answers_with_the_last_copied_line_to_swap_out_of_band(staff_client, looked_up):
    response = staff_client.post(beacon_url(ADA))
    html = response.content.decode().strip()
    assert html.startswith('<div id="link-copies" class="link-copies" hx-swap-oob="true">')
    assert "Link last copied by you" in html


def test_copy_beacon_still_records_the_copy_when_the_copies_cannot_be_read(
    staff_client, looked_up, monkeypatch
):
    real_execute_sql = SQLCompiler.execute_sql
    failing = [True]

    def execute_sql(self, *args, **kwargs):
        # Only the read of who copied the link (the one that joins their users) fails.
        reads_copies = (
            type(self) is SELECT_COMPILER and self.query.model is AuditEvent and self.query.select_related
        )
        if failing and reads_copies:
            raise OperationalError("database is locked")
        return real_execute_sql(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "execute_sql", execute_sql)
    response = staff_client.post(beacon_url(ADA))
    assert response.status_code == 200
    assert "Who copied this link before can't be shown right now." in response.content.decode()
    failing.clear()  # the database answers again
    assert AuditEvent.objects.filter(action=Action.LINK_COPIED, customer_id=ADA).count() == 1


# --- finish_lookup never raises, whatever fails (issue #10, finding 4) ----------------------


def started_lookup(user, rf) -> AuditEvent:
    request = rf.get("/")
    request.user = user
    return audit.start_lookup(request, ADA, is_refresh=False)


def outcome_failures(caplog) -> list:
    return [
        record
        for record in caplog.records
        if record.name == "customers.services.audit"
        and record.levelname == "ERROR"
        and "stays 'started'" in record.getMessage()
    ]


@pytest.mark.django_db(transaction=True)
def test_finish_lookup_never_raises_when_the_status_seen_cannot_be_stored(staff_user, rf, caplog):
    """Outside a test transaction, as in production: SQLite cannot encode a lone surrogate."""
    event = started_lookup(staff_user, rf)
    unparsable = Customer.from_api(DEMO_CUSTOMERS[str(ADA)], customer_id=ADA)
    unparsable = dataclasses.replace(
        unparsable, kycs=dataclasses.replace(unparsable.kycs, status=f"approved{chr(0xD800)}")
    )
    audit.finish_lookup(event, customer=unparsable)
    event.refresh_from_db()
    assert event.outcome == Outcome.STARTED
    (failure,) = outcome_failures(caplog)
    assert failure.exc_info[0] is UnicodeEncodeError


@pytest.mark.parametrize(
    "error",
    [
        UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed"),
        ValueError("a value the column cannot take"),
        RuntimeError("anything else"),
    ],
    ids=["UnicodeEncodeError", "ValueError", "RuntimeError"],
)
def test_finish_lookup_logs_whatever_the_write_raises_and_returns(staff_user, rf, monkeypatch, caplog, error):
    event = started_lookup(staff_user, rf)
    real_save = AuditEvent.save

    def save(self, *args, **kwargs):
        if kwargs.get("update_fields"):
            raise error
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(AuditEvent, "save", save)
    audit.finish_lookup(event, error=client.InvalidResponse("body does not fit the contract"))
    (failure,) = outcome_failures(caplog)
    assert failure.exc_info[1] is error
    monkeypatch.undo()
    event.refresh_from_db()
    assert event.outcome == Outcome.STARTED


# --- A copy of the link only from someone shown it (issue #10, beacon) ----------------------


def lookup_on_record(user, customer_id=ADA, *, outcome=Outcome.FOUND, minutes_ago: float = 0) -> AuditEvent:
    event = record_lookup(user, customer_id, outcome=outcome)
    if minutes_ago:
        AuditEvent.objects.filter(pk=event.pk).update(
            occurred_at=timezone.now() - timedelta(minutes=minutes_ago)
        )
    return event


def signed_in(client: Client, *, minutes_ago: float) -> None:
    """Move the client's session clock (accounts.sessions) back, as if it signed in that long ago."""
    session = client.session
    session[SESSION_STARTED_KEY] = time.time() - minutes_ago * 60
    session.save()


def copies() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=Action.LINK_COPIED))


def test_copy_beacon_for_a_customer_never_looked_up_is_refused_quietly(staff_client, caplog):
    response = staff_client.post(beacon_url(ADA))
    assert response.status_code == 409
    assert response.content == b""
    assert AuditEvent.objects.count() == 0
    (refusal,) = [record for record in caplog.records if record.name == "customers.services.audit"]
    assert refusal.levelname == "WARNING"
    assert str(ADA) in refusal.getMessage()


def test_copy_beacon_after_looking_the_customer_up_on_the_page_is_recorded(staff_client, staff_user, serve):
    serve()
    assert staff_client.get(detail_url(ADA)).status_code == 200
    assert staff_client.post(beacon_url(ADA)).status_code == 200
    assert [(event.user, event.customer_id) for event in copies()] == [(staff_user, ADA)]


def test_copy_beacon_is_refused_when_only_another_user_looked_the_customer_up(staff_client, other_user):
    lookup_on_record(other_user)
    assert staff_client.post(beacon_url(ADA)).status_code == 409
    assert copies() == []


def test_copy_beacon_is_refused_for_a_customer_other_than_the_one_looked_up(staff_client, staff_user):
    lookup_on_record(staff_user, uuid.uuid4())
    assert staff_client.post(beacon_url(ADA)).status_code == 409
    assert copies() == []


@pytest.mark.parametrize("outcome", [Outcome.NOT_FOUND, Outcome.TIMEOUT, Outcome.INVALID_RESPONSE])
def test_copy_beacon_is_refused_when_the_lookup_showed_no_customer(staff_client, staff_user, outcome):
    lookup_on_record(staff_user, outcome=outcome)
    assert staff_client.post(beacon_url(ADA)).status_code == 409
    assert copies() == []


def test_copy_beacon_is_accepted_when_the_lookups_outcome_could_not_be_written(staff_client, staff_user):
    lookup_on_record(staff_user, outcome=Outcome.STARTED)
    assert staff_client.post(beacon_url(ADA)).status_code == 200
    assert len(copies()) == 1


def test_copy_beacon_is_refused_for_a_lookup_over_an_hour_ago_in_an_earlier_session(staff_client, staff_user):
    signed_in(staff_client, minutes_ago=5)
    lookup_on_record(staff_user, minutes_ago=61)
    assert staff_client.post(beacon_url(ADA)).status_code == 409
    assert copies() == []


def test_copy_beacon_is_accepted_for_a_lookup_over_an_hour_ago_in_this_session(staff_client, staff_user):
    signed_in(staff_client, minutes_ago=180)
    lookup_on_record(staff_user, minutes_ago=170)
    assert staff_client.post(beacon_url(ADA)).status_code == 200
    assert len(copies()) == 1


def test_copy_beacon_is_accepted_for_a_lookup_within_the_last_hour_before_this_session(
    staff_client, staff_user
):
    signed_in(staff_client, minutes_ago=5)
    lookup_on_record(staff_user, minutes_ago=50)
    assert staff_client.post(beacon_url(ADA)).status_code == 200
    assert len(copies()) == 1


def test_copy_beacon_answers_503_when_the_lookups_cannot_be_read(staff_client, looked_up, audit_reads_fail):
    assert staff_client.post(beacon_url(ADA)).status_code == 503
    audit_reads_fail()  # the database answers again
    assert copies() == []


@sqlite_query_plans
def test_the_lookup_behind_a_copy_is_read_through_the_user_customer_index(staff_client, staff_user):
    lookup_on_record(staff_user)
    with CaptureQueriesContext(connection) as queries:
        staff_client.post(beacon_url(ADA))
    (query,) = [query["sql"] for query in queries if "'lookup'" in query["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {query}")
        plan = " / ".join(str(row[-1]) for row in cursor.fetchall())
    seek = (
        "USING INDEX audit_user_customer_recent (user_id=? AND customer_id=? AND action=? AND occurred_at>?)"
    )
    assert seek in plan
    assert "TEMP B-TREE" not in plan


# --- Recent lookups stay as cheap as the audit trail grows (issue #11) ------------------------


def bulk_lookups(user, customer_ids, kyc_status="approved") -> None:
    """Many lookups at once, oldest first, as a long audit trail holds them."""
    AuditEvent.objects.bulk_create(
        AuditEvent(
            user=user,
            action=Action.LOOKUP,
            customer_id=customer_id,
            outcome=Outcome.FOUND,
            kyc_status=kyc_status,
        )
        for customer_id in customer_ids
    )


def sqlite_plan(sql: str) -> str:
    if connection.vendor != "sqlite":
        pytest.skip("reads SQLite's EXPLAIN QUERY PLAN")
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        return " / ".join(str(row[-1]) for row in cursor.fetchall())


def test_recent_lookups_are_one_query_on_a_long_trail(staff_user, django_assert_num_queries):
    bulk_lookups(staff_user, [uuid.UUID(int=number % 40, version=4) for number in range(2000)])
    with django_assert_num_queries(1):
        recent = audit.recent_lookups(staff_user)
    assert len(recent) == audit.RECENT_LOOKUPS_SHOWN


@sqlite_query_plans
def test_recent_lookups_walk_the_user_index_newest_first_without_grouping_or_sorting(staff_user, other_user):
    bulk_lookups(staff_user, [uuid.UUID(int=number % 40, version=4) for number in range(300)])
    bulk_lookups(other_user, [ADA] * 50)
    with CaptureQueriesContext(connection) as queries:
        audit.recent_lookups(staff_user)
    (query,) = queries.captured_queries
    plan = sqlite_plan(query["sql"])
    # The partial index holds exactly the rows that showed a customer (issue #14: lookups and
    # one-match searches by e-mail), newest first per user.
    assert "USING INDEX audit_user_shown_recent (user_id=?)" in plan
    assert "TEMP B-TREE" not in plan
    assert "LIMIT" in query["sql"]


def test_recent_lookups_look_past_a_long_run_of_one_customer(staff_user):
    earlier = [uuid.UUID(int=0x2000 + number, version=4) for number in range(12)]
    bulk_lookups(staff_user, earlier)
    bulk_lookups(staff_user, [ADA] * 300, kyc_status="pending")  # more than the first three reads hold
    bulk_lookups(staff_user, [ADA], kyc_status="rejected")

    recent = audit.recent_lookups(staff_user)

    assert [event.customer_id for event in recent] == [ADA, *earlier[::-1][:9]]
    assert recent[0].kyc_status == "rejected"
    assert recent[0].pk == AuditEvent.objects.filter(customer_id=ADA).order_by("-id")[0].pk


def test_recent_lookups_stop_reading_after_a_fixed_number_of_rows(staff_user):
    older = uuid.uuid4()
    bulk_lookups(staff_user, [older])
    bulk_lookups(staff_user, [ADA] * audit.RECENT_LOOKUPS_SCANNED)
    with CaptureQueriesContext(connection) as queries:
        recent = audit.recent_lookups(staff_user)
    assert [event.customer_id for event in recent] == [ADA]
    assert len(queries) == 6  # 25, 50, 100, 200, 400 and the last 225 of the 1,000 rows


def test_recent_lookups_of_fewer_than_the_first_read_are_all_read_in_one_query(
    staff_user, django_assert_num_queries
):
    customers = [uuid.UUID(int=0x3000 + number, version=4) for number in range(3)]
    bulk_lookups(staff_user, customers)
    with django_assert_num_queries(1):
        recent = audit.recent_lookups(staff_user)
    assert [event.customer_id for event in recent] == customers[::-1]


# --- Bulk lookups: recorded without a request, by the batch's threads ---------------------------


def test_a_lookup_can_be_started_for_an_actor_with_its_batch(staff_user):
    batch = audit.record_bulk_lookup(
        audit.Actor(user=staff_user, client_ip="203.0.113.5", request_id="feedfacecafe"),
        ids_submitted=3,
        ids_valid=2,
        duplicates=1,
        rejected=0,
    )
    actor = audit.Actor(user=staff_user, client_ip="203.0.113.5", request_id="feedfacecafe")
    event = audit.start_lookup_as(actor, ADA, batch_id=batch.pk)
    event.refresh_from_db()
    assert (event.user, event.client_ip, event.request_id, event.batch) == (
        staff_user,
        "203.0.113.5",
        "feedfacecafe",
        batch,
    )
    assert (event.outcome, event.is_refresh) == (Outcome.STARTED, False)
    assert batch.client_ip == "203.0.113.5"


def test_the_actor_of_a_request_is_who_asked_from_where(staff_user, rf, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = ["10.0.0.1"]
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    request.user = staff_user
    request.request_id = "0123456789ab"
    assert audit.Actor.of(request) == audit.Actor(staff_user, "198.51.100.7", "0123456789ab")


def test_a_bulk_lookup_that_cannot_be_recorded_raises_audit_unavailable(staff_user, monkeypatch):
    def refuse(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(BulkLookup.objects, "create", refuse)
    with pytest.raises(audit.AuditUnavailable):
        audit.record_bulk_lookup(
            audit.Actor(staff_user, None, ""), ids_submitted=1, ids_valid=1, duplicates=0, rejected=0
        )


def test_the_end_of_a_bulk_lookup_is_recorded_and_never_raises(staff_user, monkeypatch):
    batch = audit.record_bulk_lookup(
        audit.Actor(staff_user, None, ""), ids_submitted=1, ids_valid=1, duplicates=0, rejected=0
    )
    audit.finish_bulk_lookup(batch.pk, not_fetched=1)
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert batch.not_fetched == 1

    def refuse(self, *args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(SQLUpdateCompiler, "execute_sql", refuse)
    audit.finish_bulk_lookup(batch.pk, not_fetched=2)


def test_a_bulk_download_that_cannot_be_recorded_raises_audit_unavailable(staff_user, rf, monkeypatch):
    batch = audit.record_bulk_lookup(
        audit.Actor(staff_user, None, ""), ids_submitted=1, ids_valid=1, duplicates=0, rejected=0
    )
    request = rf.get("/")
    request.user = staff_user

    def refuse(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(BulkLookupExport.objects, "create", refuse)
    with pytest.raises(audit.AuditUnavailable):
        audit.record_bulk_export(request, batch_id=batch.pk, rows=1, with_email=False, status_filter="")
