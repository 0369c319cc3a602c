"""Everything one person did, in one place (issue #19, item 5): the record of sign-ins and sign-outs
(dashboard/accounts/models.py) and the per-user activity page of the customers admin."""

import html
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.html import strip_tags
from prometheus_client import REGISTRY

from customers.admin import activity
from customers.align.standin.demo import DemoId
from customers.models import AuditEvent, AuditExport, BulkLookup, BulkLookupExport
from dashboard.accounts.models import SignInEvent
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
SIGN_INS = "/admin/accounts/signinevent/"
WRONG_PASSWORD = "not the password at all"


def sign_in(client: Client, username: str = STAFF_USERNAME, password: str = STAFF_PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def recorded() -> list[tuple[str, str]]:
    """The sign-in events on record, oldest first, as (username, kind)."""
    return [
        (event.user.get_username(), event.kind)
        for event in SignInEvent.objects.select_related("user").order_by("id")
    ]


def write_failures(kind: str) -> float:
    return REGISTRY.get_sample_value("kycdesk_audit_write_failures_total", {"action": kind}) or 0.0


# --- Sign-ins on record ------------------------------------------------------------------------------


def test_a_sign_in_is_recorded_with_its_address_and_request(staff_user):
    response = sign_in(Client(), REMOTE_ADDR="198.51.100.23")
    assert response.status_code == 302
    event = SignInEvent.objects.get()
    assert (event.user, event.kind) == (staff_user, SignInEvent.Kind.SIGNED_IN)
    assert event.client_ip == "198.51.100.23"
    assert event.request_id == response["X-Request-ID"]


def test_a_failed_sign_in_is_recorded_against_the_account_without_what_was_typed(staff_user):
    response = sign_in(Client(), password=WRONG_PASSWORD, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    event = SignInEvent.objects.get()
    assert (event.user, event.kind, event.client_ip) == (staff_user, "sign_in_failed", "203.0.113.9")
    assert WRONG_PASSWORD not in str(SignInEvent.objects.values().get())


def test_a_sign_in_event_holds_the_account_and_never_text_that_was_typed():
    """A new field here could keep a username or password: it must be decided on, not added in passing."""
    fields = {field.name for field in SignInEvent._meta.concrete_fields}
    # `detail` is the dashboard's own words for why a single sign-on was refused or a session ended
    # (dashboard/accounts/sso): never the provider's text, a token, or what anyone typed.
    assert fields == {"id", "user", "occurred_at", "kind", "client_ip", "request_id", "detail"}


@pytest.mark.parametrize(
    "username",
    [
        pytest.param("nobody-by-this-name", id="no-such-account"),
        pytest.param(STAFF_PASSWORD, id="a-password-typed-into-the-username-box"),
        pytest.param("", id="nothing-typed"),
    ],
)
def test_a_failed_sign_in_that_names_no_account_is_not_recorded(staff_user, username):
    sign_in(Client(), username=username, password=WRONG_PASSWORD)
    assert recorded() == []


def test_a_sign_out_is_recorded(staff_user):
    client = Client()
    sign_in(client)
    response = client.post(LOGOUT)
    assert response.status_code == 302
    assert recorded() == [(STAFF_USERNAME, "signed_in"), (STAFF_USERNAME, "signed_out")]
    assert SignInEvent.objects.latest("id").request_id == response["X-Request-ID"]


def test_a_sign_out_without_a_signed_in_user_records_nothing():
    assert Client().post(LOGOUT).status_code == 302
    assert recorded() == []


def test_a_sign_in_goes_ahead_when_its_record_cannot_be_written(staff_user, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise OperationalError("database is locked")

    before = write_failures("signed_in")
    monkeypatch.setattr(SignInEvent.objects, "create", refuse)
    client = Client()
    with caplog.at_level(logging.ERROR, logger="dashboard.accounts.sessions"):
        response = sign_in(client)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff_user.pk)
    assert any("signed_in event could not be recorded" in record.getMessage() for record in caplog.records)
    assert write_failures("signed_in") == before + 1


def test_a_failed_sign_in_is_still_refused_when_its_record_cannot_be_written(staff_user, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(SignInEvent.objects, "create", refuse)
    client = Client()
    assert sign_in(client, password=WRONG_PASSWORD).status_code == 200
    assert "_auth_user_id" not in client.session


# --- The sign-in records in the admin ---------------------------------------------------------------


def admin_with(django_user_model, *permissions: tuple[str, str], username: str = "reader") -> Client:
    user = django_user_model.objects.create_user(
        username=username, password="irrelevant-password", is_staff=True
    )
    user.user_permissions.add(
        *(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in permissions
        )
    )
    client = Client()
    client.force_login(user)
    return client


def test_sign_in_events_are_read_with_their_own_permission(django_user_model, staff_user):
    sign_in(Client())
    reader = admin_with(django_user_model, ("accounts", "view_signinevent"))
    response = reader.get(SIGN_INS)
    assert response.status_code == 200
    assert [event.kind for event in response.context["cl"].result_list if event.user == staff_user] == [
        "signed_in"
    ]


def test_an_auditor_reads_sign_ins_on_the_activity_page_not_in_this_list(django_user_model, staff_user):
    auditor = admin_with(django_user_model, ("customers", "view_auditevent"))
    assert auditor.get(SIGN_INS).status_code == 403


def test_nobody_adds_changes_or_deletes_a_sign_in_event(admin_client, staff_user):
    sign_in(Client())
    event = SignInEvent.objects.get(user=staff_user)
    page = f"{SIGN_INS}{event.pk}/change/"
    assert admin_client.get(f"{SIGN_INS}add/").status_code == 403
    assert admin_client.get(page).status_code == 200
    assert 'name="_save"' not in admin_client.get(page).content.decode()
    assert admin_client.post(page, {"kind": "signed_out"}).status_code == 403
    assert admin_client.post(f"{SIGN_INS}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SignInEvent.objects.get(pk=event.pk).kind == "signed_in"


# --- Everything one user did: the activity page ------------------------------------------------------

ADA = uuid.UUID(DemoId.INDIVIDUAL_APPROVED)
GRACE = uuid.UUID(DemoId.FORM_STARTED)
NEIGHBOUR = uuid.UUID("3f2a0000-0000-4000-8000-000000000001")
CHANGELIST = "/admin/customers/auditevent/"
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def activity_url(user) -> str:
    return f"{CHANGELIST}activity/{user.pk}/"


def at(record, minutes: int, field: str = "occurred_at"):
    """The record as if made `minutes` after START (its time is set on creation, so update it)."""
    type(record).objects.filter(pk=record.pk).update(**{field: START + timedelta(minutes=minutes)})
    record.refresh_from_db()
    return record


def page_rows(response) -> list[dict[str, str]]:
    """The activity table's rows as {column: what it reads}."""
    assert response.status_code == 200, response.content.decode()[:300]
    body = re.search(r'<table id="activity">.*?<tbody>(.*?)</tbody>', response.content.decode(), re.S)
    if body is None:
        return []
    cell = re.compile(r'<td class="activity-(\w+)">(.*?)</td>', re.S)
    return [
        {name: " ".join(html.unescape(strip_tags(content)).split()) for name, content in cell.findall(row)}
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def older_link(response) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">Older</a>', response.content.decode())
    return html.unescape(found[1]) if found else None


@pytest.fixture
def auditor(django_user_model):
    """An auditor as the Compliance auditors group makes one: the audit log's permissions and no other."""
    user = django_user_model.objects.create_user(username="a.auditor", password="irrelevant-password")
    user.is_staff = True
    user.save()
    user.groups.add(Group.objects.get(name="Compliance auditors"))
    return user


@pytest.fixture
def auditor_client(auditor) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


@pytest.fixture
def smith(django_user_model):
    return django_user_model.objects.create_user(username="j.smith", password="irrelevant-password")


@pytest.fixture
def trail(smith) -> None:
    """One of each thing j.smith can do, a minute apart, oldest first."""
    at(
        SignInEvent.objects.create(user=smith, kind="signed_in", client_ip="198.51.100.23", request_id="r1"),
        0,
    )
    lookup = dict(user=smith, action="lookup", customer_id=ADA, outcome="found", kyc_status="approved")
    at(AuditEvent.objects.create(**lookup, client_ip="198.51.100.23", request_id="r2"), 1)
    at(AuditEvent.objects.create(**lookup, is_refresh=True), 2)
    at(AuditEvent.objects.create(**lookup, is_refresh=True, automatic=True), 3)
    at(AuditEvent.objects.create(user=smith, action="link_copied", customer_id=ADA, outcome="copied"), 4)
    search = dict(user=smith, action="email_search", outcome="found", email_hash="ab" * 32)
    at(AuditEvent.objects.create(**search, match_count=2, matched_customer_ids=[str(ADA), str(GRACE)]), 5)
    kyc_session = dict(user=smith, action="kyc_session", customer_id=GRACE)
    at(AuditEvent.objects.create(**kyc_session, outcome="session_started", kyc_status="pending"), 6)
    batch = BulkLookup.objects.create(
        user=smith, ids_submitted=315, ids_valid=312, duplicates=2, rejected=1, not_fetched=4
    )
    at(batch, 7, "started_at")
    at(AuditEvent.objects.create(**lookup, batch=batch), 8)
    AuditEvent.objects.filter(action="kyc_session").update(kyc_sub_status="kyc_form_submission_started")
    export = BulkLookupExport.objects.create(
        user=smith, batch=batch, rows=42, with_email=True, status_filter="needs_resubmission"
    )
    at(export, 9, "exported_at")
    at(AuditExport.objects.create(user=smith, rows=120, all_matching=True), 10, "exported_at")
    at(SignInEvent.objects.create(user=smith, kind="signed_out"), 11)


def test_the_page_shows_everything_one_user_did_newest_first_in_words(auditor_client, smith, trail):
    rows = page_rows(auditor_client.get(activity_url(smith)))
    short_ada, short_grace = (f"{str(id_)[:8]}…{str(id_)[-4:]}" for id_ in (ADA, GRACE))
    assert [(row["what"], row["customer"], row["outcome"], row["status"]) for row in rows] == [
        ("Signed out", "-", "-", "-"),
        ("Audit log exported as CSV", "-", "120 events: every event the filters matched", "-"),
        (
            "Bulk lookup CSV downloaded",
            "-",
            "42 customers · Needs resubmission only · with e-mail addresses",
            "-",
        ),
        ("Lookup in a bulk lookup", short_ada, "Found", "Approved"),
        ("Bulk lookup", "-", "312 customer IDs, 4 not fetched", "-"),
        ("KYC session started", short_grace, "New KYC session started", "Pending Form started"),
        ("Searched by e-mail", "-", "2 matches", "-"),
        ("KYC link copied", short_ada, "Link copied", "-"),
        ("Automatic refresh", short_ada, "Found", "Approved"),
        ("Refresh", short_ada, "Found", "Approved"),
        ("Lookup", short_ada, "Found", "Approved"),
        ("Signed in with a password", "-", "-", "-"),
    ]
    assert rows[-2]["time"] == "2026-11-25 09:01:00 UTC"
    assert (rows[-2]["ip"], rows[-2]["request"]) == ("198.51.100.23", "r2")
    assert (rows[-1]["ip"], rows[-1]["request"]) == ("198.51.100.23", "r1")


def test_the_page_says_in_the_dashboards_time_zone_when(auditor_client, smith, trail, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    rows = page_rows(auditor_client.get(activity_url(smith)))
    assert rows[-1]["time"] == "2026-11-25 10:00:00 CET"


def test_each_row_leads_to_its_record_and_a_customer_to_the_audit_log_about_them(
    auditor_client, smith, trail
):
    page = auditor_client.get(activity_url(smith)).content.decode()
    batch, export = BulkLookup.objects.get(), BulkLookupExport.objects.get()
    kyc_session = AuditEvent.objects.get(action="kyc_session")
    for path in (
        f"/admin/customers/bulklookup/{batch.pk}/change/",
        f"/admin/customers/bulklookupexport/{export.pk}/change/",
        f"/admin/customers/auditexport/{AuditExport.objects.get().pk}/change/",
        f"{CHANGELIST}{kyc_session.pk}/change/",
    ):
        assert f'<a href="{path}">' in page
        assert auditor_client.get(path).status_code == 200
    assert f'<a href="{CHANGELIST}?q={GRACE}" title="{GRACE}">' in page


def test_a_search_by_e_mail_shows_its_count_never_its_hash(auditor_client, smith, trail):
    page = auditor_client.get(activity_url(smith)).content.decode()
    assert "ab" * 32 not in page
    assert "abababab" not in page


def test_only_that_users_activity_is_shown(auditor_client, smith, trail, django_user_model):
    other = django_user_model.objects.create_user(username="olga", password="irrelevant-password")
    AuditEvent.objects.create(user=other, action="lookup", customer_id=NEIGHBOUR, outcome="found")
    SignInEvent.objects.create(user=other, kind="signed_in")
    page = auditor_client.get(activity_url(smith)).content.decode()
    assert str(NEIGHBOUR)[:8] not in page
    assert len(page_rows(auditor_client.get(activity_url(other)))) == 2


def test_a_user_with_nothing_on_record(auditor_client, smith):
    response = auditor_client.get(activity_url(smith))
    assert page_rows(response) == []
    assert "Nothing on record for j.smith." in response.content.decode()


def test_the_page_names_the_user_and_leads_back(auditor_client, smith):
    page = auditor_client.get(activity_url(smith)).content.decode()
    assert "<h1>Everything j.smith did</h1>" in page
    assert '<a href="/admin/customers/">Customer lookups</a>' in page
    assert f'<a href="{CHANGELIST}">Audit events</a>' in page
    assert f'href="{CHANGELIST}?user__id__exact={smith.pk}"' in page
    assert 'href="/static/css/audit-admin.css"' in page


# --- Who reads it -------------------------------------------------------------------------------------


def test_the_audit_log_permission_alone_opens_it_without_any_permission_of_the_accounts_app(
    django_user_model, smith, trail
):
    reader = django_user_model.objects.create_user(username="reader", password="irrelevant-password")
    reader.is_staff = True
    reader.save()
    reader.user_permissions.add(
        Permission.objects.get(content_type__app_label="customers", codename="view_auditevent")
    )
    assert not reader.has_perm("accounts.view_signinevent")
    client = Client()
    client.force_login(reader)
    assert client.get(activity_url(smith)).status_code == 200


def test_an_auditor_reads_the_whole_sign_in_trail_where_refusals_that_name_nobody_show(auditor, trail):
    """Customers migration 0011: a refused single sign-on with no account is on no user's activity page."""
    SignInEvent.objects.create(
        kind=SignInEvent.Kind.SSO_REFUSED, detail="the callback's state is not one this browser started"
    )
    client = Client()
    client.force_login(auditor)
    page = client.get("/admin/accounts/signinevent/").content.decode()
    assert "Single sign-on refused" in page
    assert "(nobody)" in page


def test_staff_who_cannot_read_the_audit_log_cannot_read_it(django_user_model, smith, trail):
    clerk = django_user_model.objects.create_user(
        username="clerk", password="irrelevant-password", is_staff=True
    )
    clerk.groups.add(Group.objects.get(name="Compliance staff"))
    client = Client()
    client.force_login(clerk)
    assert client.get(activity_url(smith)).status_code == 403


def test_someone_who_is_not_staff_is_sent_to_the_admin_login(staff_client, smith):
    response = staff_client.get(activity_url(smith))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_a_user_who_does_not_exist_is_not_found(auditor_client):
    assert auditor_client.get(f"{CHANGELIST}activity/999999/").status_code == 404


# --- Reached from the audit log --------------------------------------------------------------------------


def test_the_audit_lists_user_column_leads_to_the_users_activity(auditor_client, smith, trail):
    page = auditor_client.get(CHANGELIST).content.decode()
    assert f'<a href="{activity_url(smith)}" title="Everything j.smith did">j.smith</a>' in page
    assert (
        'title="Everything j.smith did">j.smith</a>'
        in auditor_client.get("/admin/customers/bulklookup/").content.decode()
    )


def test_the_audit_list_filtered_to_one_user_offers_their_activity(auditor_client, smith, trail):
    filtered = auditor_client.get(CHANGELIST, {"user__id__exact": smith.pk}).content.decode()
    assert f'<a href="{activity_url(smith)}">Everything j.smith did</a>' in filtered
    assert "did</a></li>" not in auditor_client.get(CHANGELIST).content.decode()


def test_each_event_page_offers_its_users_activity(auditor_client, smith, trail):
    event = AuditEvent.objects.filter(user=smith).first()
    page = auditor_client.get(f"{CHANGELIST}{event.pk}/change/").content.decode()
    assert f'<a href="{activity_url(smith)}">Everything j.smith did</a>' in page


# --- A page at a time ---------------------------------------------------------------------------------


def walk(client: Client, url: str) -> list[list[dict[str, str]]]:
    """Every page from the newest, following Older links."""
    pages = []
    while url is not None:
        response = client.get(url)
        pages.append(page_rows(response))
        older = older_link(response)
        url = f"{url.split('?')[0]}{older}" if older else None
        assert len(pages) < 50, "the Older links never end"
    return pages


def test_older_pages_hold_the_rest_once_each_and_the_last_says_so(auditor_client, smith, trail, monkeypatch):
    everything = page_rows(auditor_client.get(activity_url(smith)))
    monkeypatch.setattr(activity, "PAGE_SIZE", 5)
    pages = walk(auditor_client, activity_url(smith))
    assert [len(page) for page in pages] == [5, 5, 2]
    assert [row for page in pages for row in page] == everything
    first = auditor_client.get(activity_url(smith))
    assert "Newest</a>" not in first.content.decode()
    second = auditor_client.get(f"{activity_url(smith)}{older_link(first)}").content.decode()
    assert '<a href="?">Newest</a>' in second
    assert "The oldest on record." not in second


def test_rows_arriving_while_an_auditor_reads_do_not_shift_the_older_pages(
    auditor_client, smith, trail, monkeypatch
):
    monkeypatch.setattr(activity, "PAGE_SIZE", 5)
    first = auditor_client.get(activity_url(smith))
    AuditEvent.objects.create(user=smith, action="lookup", customer_id=GRACE, outcome="found")
    SignInEvent.objects.create(user=smith, kind="signed_in")
    second = page_rows(auditor_client.get(f"{activity_url(smith)}{older_link(first)}"))
    assert [row["what"] for row in second] == [
        "KYC session started",
        "Searched by e-mail",
        "KYC link copied",
        "Automatic refresh",
        "Refresh",
    ]


def test_what_the_user_does_meanwhile_waits_for_the_first_page(auditor_client, smith, trail, monkeypatch):
    """Even in a record none of whose rows were on the page read (here the bulk downloads)."""
    monkeypatch.setattr(activity, "PAGE_SIZE", 2)
    first = auditor_client.get(activity_url(smith))
    assert [row["what"] for row in page_rows(first)] == ["Signed out", "Audit log exported as CSV"]
    BulkLookupExport.objects.create(user=smith, batch=BulkLookup.objects.get(), rows=1, with_email=False)
    SignInEvent.objects.create(user=smith, kind="signed_in")
    second = page_rows(auditor_client.get(f"{activity_url(smith)}{older_link(first)}"))
    assert [(row["what"], row["time"]) for row in second] == [
        ("Bulk lookup CSV downloaded", "2026-11-25 09:09:00 UTC"),
        ("Lookup in a bulk lookup", "2026-11-25 09:08:00 UTC"),
    ]
    newest = page_rows(auditor_client.get(activity_url(smith)))
    assert [row["what"] for row in newest] == ["Signed in with a password", "Bulk lookup CSV downloaded"]


def test_rows_at_the_same_moment_are_each_shown_once(auditor_client, smith, monkeypatch):
    """Bulk lookups are read by their time, then their ID: a page may end between two of one moment."""
    monkeypatch.setattr(activity, "PAGE_SIZE", 1)
    batches = [
        at(
            BulkLookup.objects.create(user=smith, ids_submitted=1, ids_valid=1, duplicates=0, rejected=0),
            0,
            "started_at",
        )
        for _ in range(3)
    ]
    url, shown = activity_url(smith), []
    while url is not None:
        response = auditor_client.get(url)
        shown += re.findall(r"/admin/customers/bulklookup/([0-9a-f-]+)/change/", response.content.decode())
        older = older_link(response)
        url = f"{activity_url(smith)}{older}" if older else None
        assert len(shown) <= 3
    assert sorted(shown) == sorted(str(batch.pk) for batch in batches)


def test_a_page_far_back_costs_what_the_first_does(auditor_client, smith, trail, monkeypatch):
    """One read per record, each a page long, however far back: no count, no offset."""
    monkeypatch.setattr(activity, "PAGE_SIZE", 2)
    tables = ("customers_", "accounts_signinevent")

    def reads(url: str) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            response = auditor_client.get(url)
        assert response.status_code == 200
        return [query["sql"] for query in queries.captured_queries if any(t in query["sql"] for t in tables)]

    first = reads(activity_url(smith))
    far = reads(f"{activity_url(smith)}{older_link(auditor_client.get(activity_url(smith)))}")
    assert len(first) == len(far) == len(activity.RECORDS)
    for sql in first + far:
        assert "COUNT(" not in sql.upper()
        assert "OFFSET" not in sql.upper()
        assert "LIMIT 3" in sql.upper()


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("?lookup=not-a-number", id="not-an-id"),
        pytest.param("?bulk_lookup=2026-11-25", id="a-time-without-its-batch"),
        pytest.param("?bulk_lookup=yesterday~" + str(ADA), id="not-a-time"),
    ],
)
def test_an_older_link_that_is_not_one_is_a_bad_request(auditor_client, smith, query):
    assert auditor_client.get(f"{activity_url(smith)}{query}").status_code == 400
