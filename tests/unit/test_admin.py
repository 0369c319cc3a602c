"""The audit log in Django's admin: searchable, filterable, exportable, and never editable."""

import codecs
import csv
import html
import io
import re
import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags

from customers.admin import base as admin_base
from customers.admin.audit import CSV_COLUMNS, AuditEventAdmin
from customers.align.standin.demo import DemoId
from customers.models import AuditEvent, AuditExport, BulkLookup, BulkLookupExport, KycWebhookEvent
from customers.services import audit
from customers.services.decisions import short_customer_id

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/customers/auditevent/"
ADA = uuid.UUID(DemoId.INDIVIDUAL_APPROVED)
GRACE = uuid.UUID(DemoId.FORM_STARTED)
# Shares its first four hex digits with ADA (3f2a...), and nothing more.
NEIGHBOUR = uuid.UUID("3f2a0000-0000-4000-8000-000000000001")
MOMENT = datetime(2026, 11, 25, 14, 2, 11, tzinfo=UTC)


def change_url(event: AuditEvent) -> str:
    return f"{CHANGELIST}{event.pk}/change/"


def delete_url(event: AuditEvent) -> str:
    return f"{CHANGELIST}{event.pk}/delete/"


def listed(response) -> set[uuid.UUID]:
    """The customer IDs of the rows the changelist shows."""
    assert response.status_code == 200
    return {event.customer_id for event in response.context["cl"].result_list}


def text_of(markup: str) -> str:
    """What a reader sees of some HTML: its words, with the whitespace of the markup collapsed."""
    return " ".join(html.unescape(strip_tags(markup)).split())


def list_rows(response) -> list[dict[str, str]]:
    """The changelist's rows as {column: cell HTML}, columns named as in list_display."""
    assert response.status_code == 200
    body = re.search(r'<table id="result_list">.*?<tbody>(.*?)</tbody>', response.content.decode(), re.S)
    cell = re.compile(r'<(td|th) class="field-(\w+)[^"]*">(.*?)</\1>', re.S)
    return [
        {name: content for _, name, content in cell.findall(row)}
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def event_page_rows(response, *, line_break: str = "") -> list[tuple[str, str]]:
    """The event page's read-only rows, in order, as (label, what the value reads).

    `line_break` stands for each <br> in a value, so lines can be told apart.
    """
    assert response.status_code == 200
    content = response.content.decode().replace("<br>", line_break)
    rows = re.findall(r"<label>([^<]*):</label>\s*<div class=\"readonly\">(.*?)</div>", content, re.S)
    return [(label, text_of(value)) for label, value in rows]


def at_moment(event: AuditEvent) -> AuditEvent:
    """The event as if it happened at MOMENT (occurred_at is set on creation, so update it)."""
    AuditEvent.objects.filter(pk=event.pk).update(occurred_at=MOMENT)
    event.refresh_from_db()
    return event


def csv_rows(response) -> list[list[str]]:
    """The rows of an exported file, after the byte-order mark every export starts with."""
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="kyc-audit-log-')
    content = b"".join(response.streaming_content)
    assert content.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def file_name(response) -> str:
    return re.fullmatch(r'attachment; filename="([^"]+)"', response["Content-Disposition"])[1]


def export(client: Client, *events: AuditEvent):
    return client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [event.pk for event in events], "index": 0}
    )


@pytest.fixture
def jane(django_user_model):
    """The staff member whose lookups are on record; she has no admin access."""
    return django_user_model.objects.create_user(username="jane", password="irrelevant-password")


@pytest.fixture
def event(jane) -> AuditEvent:
    return AuditEvent.objects.create(
        user=jane,
        action=AuditEvent.Action.LOOKUP,
        customer_id=ADA,
        outcome=AuditEvent.Outcome.FOUND,
        kyc_status="approved",
        client_ip="198.51.100.23",
        request_id="0123456789ab",
    )


@pytest.fixture
def events(event, jane, django_user_model) -> dict[str, AuditEvent]:
    other = django_user_model.objects.create_user(username="olga", password="irrelevant-password")
    return {
        "ada": event,
        "grace": AuditEvent.objects.create(
            user=jane,
            action=AuditEvent.Action.LOOKUP,
            customer_id=GRACE,
            outcome=AuditEvent.Outcome.NOT_FOUND,
        ),
        "neighbour": AuditEvent.objects.create(
            user=other,
            action=AuditEvent.Action.LINK_COPIED,
            customer_id=NEIGHBOUR,
            outcome=AuditEvent.Outcome.COPIED,
        ),
    }


def admin_user_with(django_user_model, *codenames: str, username="auditor", is_staff=True):
    user = django_user_model.objects.create_user(
        username=username, password="irrelevant-password", is_staff=is_staff
    )
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="customers", codename__in=codenames)
    )
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Nobody writes, superusers included -----------------------------------------------------


def test_superuser_sees_the_changelist(admin_client, events):
    response = admin_client.get(CHANGELIST)
    assert listed(response) == {ADA, GRACE, NEIGHBOUR}
    assert "Add audit event" not in response.content.decode()


def test_add_view_is_refused(admin_client):
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}add/", {"outcome": "found"}).status_code == 403
    assert AuditEvent.objects.count() == 0


def test_change_view_is_read_only(admin_client, event):
    response = admin_client.get(change_url(event))
    assert response.status_code == 200
    html = response.content.decode()
    assert str(ADA) in html
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html
    assert 'name="outcome"' not in html
    assert 'name="customer_id"' not in html
    assert "Delete" not in html


def test_change_view_post_is_refused_and_changes_nothing(admin_client, event):
    response = admin_client.post(
        change_url(event),
        {"outcome": "not_found", "customer_id": str(GRACE), "action": "lookup", "user": event.user_id},
    )
    assert response.status_code == 403
    event.refresh_from_db()
    assert (event.outcome, event.customer_id) == (AuditEvent.Outcome.FOUND, ADA)


def test_delete_view_is_refused_and_the_row_stays(admin_client, event):
    assert admin_client.get(delete_url(event)).status_code == 403
    assert admin_client.post(delete_url(event), {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_bulk_delete_is_not_offered_and_cannot_be_posted(admin_client, events):
    html = admin_client.get(CHANGELIST).content.decode()
    assert 'value="delete_selected"' not in html
    assert 'value="export_csv"' in html
    admin_client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [e.pk for e in events.values()], "post": "yes"},
    )
    assert AuditEvent.objects.count() == 3


def test_history_view_does_not_expose_a_way_to_edit(admin_client, event):
    response = admin_client.get(f"{CHANGELIST}{event.pk}/history/")
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()


# --- What an auditor reads: the event page ---------------------------------------------------


def test_event_page_shows_every_field_of_the_event_time_first(admin_client, event):
    AuditEvent.objects.filter(pk=event.pk).update(is_refresh=True)
    event = at_moment(event)
    shown = [
        ("occurred_at", "Time", "2026-11-25 14:02:11 UTC"),
        ("user", "User", "jane"),
        ("action", "Action", "Lookup"),
        ("customer_id", "Customer ID", str(ADA)),
        ("outcome", "Outcome", "Found"),
        ("kyc_status", "KYC status seen", "Approved"),
        ("kyc_sub_status", "KYC sub-status seen", "-"),
        ("is_refresh", "Refresh", "Yes"),
        ("automatic", "Automatic refresh", "No"),
        ("client_ip", "Client IP", "198.51.100.23"),
        ("request_id", "Request ID", "0123456789ab"),
        ("batch", "Bulk lookup", "None: a lookup of one customer"),
        ("id", "Audit event ID", str(event.pk)),
        ("match_count", "Matches", "-"),
        ("matched_customer_ids", "Matched customer IDs", "-"),
        ("email_hash", "E-mail hash", "-"),
        ("kyc_unchanged", "KYC unchanged", "No"),
        ("repeats_last_card", "Repeats the last card", "No"),
    ]
    assert {name for name, _, _ in shown} == {field.name for field in AuditEvent._meta.concrete_fields}
    assert event_page_rows(admin_client.get(change_url(event))) == [(label, text) for _, label, text in shown]


def test_event_page_shows_the_time_in_the_dashboards_time_zone(admin_client, event, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    event = at_moment(event)
    rows = dict(event_page_rows(admin_client.get(change_url(event))))
    assert rows["Time"] == "2026-11-25 15:02:11 CET"


def test_event_page_shows_the_full_customer_id_as_code(admin_client, event):
    html_page = admin_client.get(change_url(event)).content.decode()
    assert f'<code class="audit-id">{ADA}</code>' in html_page


def test_event_page_title_names_the_user_not_their_number(admin_client, event):
    html_page = admin_client.get(change_url(event)).content.decode()
    assert f"<h2>Lookup of {ADA} by jane</h2>" in html_page
    assert "by user" not in html_page


def test_audit_pages_load_their_stylesheet(admin_client, event):
    for path in (CHANGELIST, change_url(event)):
        assert 'href="/static/css/audit-admin.css"' in admin_client.get(path).content.decode()


# --- What an auditor reads: the list ----------------------------------------------------------


def test_list_shows_the_time_with_seconds_and_zone(admin_client, event):
    at_moment(event)
    (row,) = list_rows(admin_client.get(CHANGELIST))
    assert text_of(row["time"]) == "2026-11-25 14:02:11 UTC"
    assert 'datetime="2026-11-25T14:02:11+00:00"' in row["time"]


def test_list_shows_the_username(admin_client, event):
    (row,) = list_rows(admin_client.get(CHANGELIST))
    assert text_of(row["username"]) == "jane"


def test_list_shortens_the_customer_id_and_keeps_the_whole_id_on_hover(admin_client, events):
    rows = list_rows(admin_client.get(CHANGELIST, {"o": "4"}))
    assert [row["short_customer"] for row in rows] == [
        f'<code class="audit-id" title="{NEIGHBOUR}">3f2a0000…0001</code>',
        f'<code class="audit-id" title="{ADA}">{str(ADA)[:8]}…{str(ADA)[-4:]}</code>',
        f'<code class="audit-id" title="{GRACE}">{str(GRACE)[:8]}…{str(GRACE)[-4:]}</code>',
    ]


@pytest.mark.parametrize(
    ("outcome", "kyc_status", "words"),
    [
        pytest.param("found", "approved", "Approved", id="approved"),
        pytest.param("found", "pending", "Pending", id="pending"),
        pytest.param("found", "rejected", "Rejected", id="rejected"),
        pytest.param("found", "", "Not started", id="no-kyc-record"),
        pytest.param("found", AuditEvent.KYC_STATUS_NOT_SENT, "Unknown", id="status-not-sent"),
        pytest.param("found", "frozen", "frozen unrecognised", id="a-status-align-added-later"),
        pytest.param("not_found", "", "-", id="no-customer-found"),
        pytest.param("copied", "", "-", id="link-copied"),
    ],
)
def test_list_shows_kyc_statuses_in_the_products_words(admin_client, jane, outcome, kyc_status, words):
    AuditEvent.objects.create(
        user=jane, action="lookup", customer_id=ADA, outcome=outcome, kyc_status=kyc_status
    )
    (row,) = list_rows(admin_client.get(CHANGELIST))
    assert text_of(row["kyc_status_seen"]) == words


@pytest.mark.parametrize(
    ("kyc_status", "words"),
    [
        pytest.param("pending", "Pending", id="pending"),
        pytest.param(AuditEvent.KYC_STATUS_NOT_SENT, "Unknown", id="status-not-sent"),
        pytest.param("frozen", "frozen unrecognised", id="a-status-align-added-later"),
    ],
)
def test_a_kyc_session_start_shows_the_status_align_gave_it(admin_client, jane, kyc_status, words):
    """Issue #19, item 5: these rows showed a dash although the database held the status."""
    started = AuditEvent.objects.create(
        user=jane,
        action=AuditEvent.Action.KYC_SESSION_STARTED,
        customer_id=ADA,
        outcome=AuditEvent.Outcome.SESSION_STARTED,
        kyc_status=kyc_status,
    )
    (row,) = list_rows(admin_client.get(CHANGELIST))
    assert text_of(row["kyc_status_seen"]) == words
    assert dict(event_page_rows(admin_client.get(change_url(started))))["KYC status seen"] == words


@pytest.mark.parametrize(
    ("outcome", "kyc_status", "kyc_sub_status", "words"),
    [
        pytest.param(
            "found", "pending", "kyc_form_resubmission_required", "Resubmission required", id="known"
        ),
        pytest.param(
            "found", "pending", "kyc_form_paused", "kyc_form_paused unrecognised", id="one-align-added-later"
        ),
        pytest.param("found", "pending", "", "-", id="from-before-it-was-kept"),
        pytest.param("timeout", "", "kyc_form_submission_started", "-", id="no-customer-shown"),
    ],
)
def test_the_event_page_and_csv_give_the_sub_status_seen_in_the_cards_words(
    admin_client, jane, outcome, kyc_status, kyc_sub_status, words
):
    event = AuditEvent.objects.create(
        user=jane,
        action="lookup",
        customer_id=ADA,
        outcome=outcome,
        kyc_status=kyc_status,
        kyc_sub_status=kyc_sub_status,
    )
    assert dict(event_page_rows(admin_client.get(change_url(event))))["KYC sub-status seen"] == words
    header, row = csv_rows(export(admin_client, event))
    exported = dict(zip(header, row, strict=True))
    assert exported["kyc_sub_status"] == kyc_sub_status
    expected = "" if words == "-" else words.replace(" unrecognised", " (unrecognised)")
    assert exported["kyc_sub_status_words"] == expected


def test_a_kyc_session_start_that_failed_shows_no_status(admin_client, jane):
    AuditEvent.objects.create(
        user=jane,
        action=AuditEvent.Action.KYC_SESSION_STARTED,
        customer_id=ADA,
        outcome=AuditEvent.Outcome.REFUSED,
    )
    (row,) = list_rows(admin_client.get(CHANGELIST))
    assert text_of(row["kyc_status_seen"]) == "-"


def test_list_escapes_a_status_align_added_later(admin_client, jane):
    AuditEvent.objects.create(
        user=jane, action="lookup", customer_id=ADA, outcome="found", kyc_status="<b>frozen</b>"
    )
    (row,) = list_rows(admin_client.get(CHANGELIST))
    assert "&lt;b&gt;frozen&lt;/b&gt;" in row["kyc_status_seen"]


def test_list_says_in_words_whether_a_lookup_was_a_refresh(admin_client, events):
    AuditEvent.objects.filter(pk=events["grace"].pk).update(is_refresh=True)
    rows = list_rows(admin_client.get(CHANGELIST, {"o": "4"}))
    assert [row["refresh"] for row in rows] == ["No", "No", "Yes"]


def test_list_lets_an_ipv6_address_break_only_between_its_groups(admin_client, event):
    AuditEvent.objects.filter(pk=event.pk).update(client_ip="2001:db8:85a3:1234:5678:8a2e:370:7334")
    (row,) = list_rows(admin_client.get(CHANGELIST))
    assert row["client_ip_column"] == (
        '<span class="audit-ip">2001:<wbr>db8:<wbr>85a3:<wbr>1234:<wbr>'
        "5678:<wbr>8a2e:<wbr>370:<wbr>7334</span>"
    )


# --- Search by customer ID ------------------------------------------------------------------


@pytest.mark.parametrize(
    "term",
    [
        pytest.param(str(ADA), id="full-id"),
        pytest.param(f"  {str(ADA).upper()}  ", id="upper-case-with-spaces"),
        pytest.param(str(ADA).replace("-", ""), id="32-hex-digits"),
        pytest.param(f"https://kyc-desk.example/customers/{ADA}/", id="dashboard-link"),
        pytest.param(f"urn:uuid:{ADA}", id="urn"),
        pytest.param(str(ADA)[:8], id="8-char-prefix"),
        pytest.param(str(ADA)[:8].upper(), id="upper-case-prefix"),
        pytest.param(str(ADA)[:13], id="prefix-across-a-hyphen"),
        pytest.param("3f2a9", id="5-char-prefix"),
    ],
)
def test_search_finds_the_customer_and_no_other(admin_client, events, term):
    assert listed(admin_client.get(CHANGELIST, {"q": term})) == {ADA}


def test_short_prefix_shared_by_two_customers_finds_both(admin_client, events):
    assert listed(admin_client.get(CHANGELIST, {"q": "3f2a"})) == {ADA, NEIGHBOUR}


@pytest.mark.parametrize(
    "term",
    [
        pytest.param("Ada Lovelace", id="a-name"),
        pytest.param("3f2", id="under-four-characters"),
        pytest.param("----", id="only-hyphens"),
        pytest.param("3f2a9c1g", id="not-hex"),
        pytest.param("found", id="an-outcome"),
        pytest.param("%", id="sql-wildcard"),
        pytest.param("_f2a", id="sql-single-wildcard"),
        pytest.param(str(uuid.uuid4()), id="an-unknown-id"),
    ],
)
def test_search_that_is_not_an_id_or_its_start_finds_nothing(admin_client, events, term):
    assert listed(admin_client.get(CHANGELIST, {"q": term})) == set()


def test_empty_search_lists_everything(admin_client, events):
    assert listed(admin_client.get(CHANGELIST, {"q": "   "})) == {ADA, GRACE, NEIGHBOUR}


# --- Filters --------------------------------------------------------------------------------


def test_filter_by_outcome(admin_client, events):
    assert listed(admin_client.get(CHANGELIST, {"outcome__exact": "found"})) == {ADA}
    assert listed(admin_client.get(CHANGELIST, {"outcome__exact": "not_found"})) == {GRACE}


def test_filter_by_user(admin_client, events, jane):
    assert listed(admin_client.get(CHANGELIST, {"user__id__exact": jane.pk})) == {ADA, GRACE}
    other = events["neighbour"].user
    assert listed(admin_client.get(CHANGELIST, {"user__id__exact": other.pk})) == {NEIGHBOUR}


def test_filter_by_action(admin_client, events):
    assert listed(admin_client.get(CHANGELIST, {"action__exact": "link_copied"})) == {NEIGHBOUR}


def test_filter_by_refresh(admin_client, events):
    AuditEvent.objects.filter(pk=events["grace"].pk).update(is_refresh=True)
    assert listed(admin_client.get(CHANGELIST, {"is_refresh__exact": "1"})) == {GRACE}


def test_filter_and_search_combine(admin_client, events, jane):
    response = admin_client.get(CHANGELIST, {"q": "3f2a", "user__id__exact": jane.pk})
    assert listed(response) == {ADA}


def test_user_filter_offers_only_users_with_events(admin_client, events, django_user_model):
    django_user_model.objects.create_user(username="never-looked", password="irrelevant-password")
    html = admin_client.get(CHANGELIST).content.decode()
    assert "olga" in html
    assert "never-looked" not in html


# --- CSV export -----------------------------------------------------------------------------


def test_export_gives_a_header_and_the_selected_rows(admin_client, events, jane):
    response = export(admin_client, events["ada"], events["grace"])
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    header, *rows = csv_rows(response)
    assert header == CSV_COLUMNS
    assert len(rows) == 2
    ada = dict(zip(header, rows[0], strict=True))
    assert ada == {
        "occurred_at": events["ada"].occurred_at.isoformat(),
        "user_id": str(jane.pk),
        "username": "jane",
        "action": "lookup",
        "customer_id": str(ADA),
        "outcome": "found",
        "kyc_status": "approved",
        "is_refresh": "False",
        "automatic": "False",
        "client_ip": "198.51.100.23",
        "request_id": "0123456789ab",
        "batch_id": "",
        "match_count": "",
        "matched_customer_ids": "",
        "email_hash": "",
        "kyc_sub_status": "",
        "action_words": "Lookup",
        "outcome_words": "Found",
        "kyc_status_words": "Approved",
        "kyc_sub_status_words": "",
    }
    grace = dict(zip(header, rows[1], strict=True))
    assert (grace["customer_id"], grace["outcome"], grace["client_ip"]) == (str(GRACE), "not_found", "")
    assert (grace["outcome_words"], grace["kyc_status_words"]) == ("Not found", "")


def test_export_keeps_the_columns_auditors_scripts_read_in_their_order_and_adds_words_after_them():
    assert CSV_COLUMNS[:15] == [
        "occurred_at",
        "user_id",
        "username",
        "action",
        "customer_id",
        "outcome",
        "kyc_status",
        "is_refresh",
        "automatic",
        "client_ip",
        "request_id",
        "batch_id",
        "match_count",
        "matched_customer_ids",
        "email_hash",
    ]
    assert CSV_COLUMNS[15:] == [
        "kyc_sub_status",
        "action_words",
        "outcome_words",
        "kyc_status_words",
        "kyc_sub_status_words",
    ]


@pytest.mark.parametrize(
    ("action", "outcome", "kyc_status", "words"),
    [
        pytest.param("lookup", "found", "", ("Lookup", "Found", "Not started"), id="no-kyc-record"),
        pytest.param(
            "lookup", "found", AuditEvent.KYC_STATUS_NOT_SENT, ("Lookup", "Found", "Unknown"), id="not-sent"
        ),
        pytest.param(
            "lookup", "found", "frozen", ("Lookup", "Found", "frozen (unrecognised)"), id="status-added-later"
        ),
        pytest.param("lookup", "timeout", "", ("Lookup", "Timed out", ""), id="timed-out"),
        pytest.param("link_copied", "copied", "", ("KYC link copied", "Link copied", ""), id="link-copied"),
        pytest.param(
            "kyc_session",
            "session_started",
            "pending",
            ("KYC session started", "New KYC session started", "Pending"),
            id="kyc-session",
        ),
    ],
)
def test_export_gives_each_code_in_the_words_the_list_shows(
    admin_client, jane, action, outcome, kyc_status, words
):
    event = AuditEvent.objects.create(
        user=jane, action=action, customer_id=ADA, outcome=outcome, kyc_status=kyc_status
    )
    header, row = csv_rows(export(admin_client, event))
    exported = dict(zip(header, row, strict=True))
    assert (exported["action_words"], exported["outcome_words"], exported["kyc_status_words"]) == words
    (listed_row,) = list_rows(admin_client.get(CHANGELIST))
    assert text_of(listed_row["action"]) == words[0]
    assert text_of(listed_row["outcome"]) == words[1]
    assert text_of(listed_row["kyc_status_seen"]) == (
        words[2].replace(" (unrecognised)", " unrecognised") or "-"
    )


def test_export_gives_a_search_by_e_mail_its_matches_and_hash_and_no_customer(admin_client, jane):
    search = AuditEvent.objects.create(
        user=jane,
        action=AuditEvent.Action.EMAIL_SEARCH,
        customer_id=None,
        outcome="found",
        match_count=2,
        matched_customer_ids=[str(ADA), str(GRACE)],
        email_hash="ab" * 32,
    )
    header, row = csv_rows(export(admin_client, search))
    exported = dict(zip(header, row, strict=True))
    assert (exported["customer_id"], exported["match_count"], exported["email_hash"]) == ("", "2", "ab" * 32)
    assert exported["matched_customer_ids"] == f"{ADA} {GRACE}"


def test_export_leaves_out_unselected_rows(admin_client, events):
    header, *rows = csv_rows(export(admin_client, events["neighbour"]))
    assert [row[header.index("customer_id")] for row in rows] == [str(NEIGHBOUR)]


def test_export_is_oldest_first(admin_client, events):
    header, *rows = csv_rows(export(admin_client, *reversed(events.values())))
    assert [row[header.index("customer_id")] for row in rows] == [str(ADA), str(GRACE), str(NEIGHBOUR)]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_export_escapes_cells_a_spreadsheet_would_run_as_formulas(admin_client, django_user_model, start):
    username = f"{start}cmd|' /C calc'!A0"
    user = django_user_model.objects.create_user(username=username, password="irrelevant-password")
    AuditEvent.objects.create(
        user=user,
        action=AuditEvent.Action.LOOKUP,
        customer_id=ADA,
        outcome=AuditEvent.Outcome.FOUND,
        kyc_status=f'{start}HYPERLINK("https://evil.example")',
    )
    header, row = csv_rows(export(admin_client, *AuditEvent.objects.all()))
    exported = dict(zip(header, row, strict=True))
    assert exported["username"] == "'" + username
    assert exported["kyc_status"] == f'\'{start}HYPERLINK("https://evil.example")'
    assert exported["kyc_status_words"] == f'\'{start}HYPERLINK("https://evil.example") (unrecognised)'


def test_export_leaves_harmless_cells_alone(admin_client, event):
    header, row = csv_rows(export(admin_client, event))
    exported = dict(zip(header, row, strict=True))
    assert exported["username"] == "jane"
    assert exported["kyc_status"] == "approved"


def test_export_starts_with_a_byte_order_mark_so_excel_reads_accents_as_utf_8(
    admin_client, django_user_model
):
    """Issue #19, item 10: without the mark Excel reads the file in a legacy code page."""
    zoe = django_user_model.objects.create_user(username="zoë.müller", password="irrelevant-password")
    event = AuditEvent.objects.create(user=zoe, action="lookup", customer_id=ADA, outcome="found")
    response = export(admin_client, event)
    content = b"".join(response.streaming_content)
    assert content.startswith(codecs.BOM_UTF8 + b"occurred_at,")
    assert content.count(codecs.BOM_UTF8) == 1
    assert "zoë.müller".encode() in content


def test_export_file_name_says_when_it_was_made_in_the_dashboards_time_zone(admin_client, events, settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # +05:30, so neither the hour nor the minute match UTC's
    response = export_all_matching(admin_client)
    made = timezone.localtime(AuditExport.objects.get().exported_at)
    assert file_name(response) == f"kyc-audit-log-{made:%Y-%m-%d-%H%M}.csv"
    assert made.utcoffset().total_seconds() == 5.5 * 3600


def test_export_file_name_names_its_filters_search_and_ticked_rows(admin_client, events, jane):
    query = f"?outcome__exact=found&user__id__exact={jane.pk}&q={ADA}&o=-1&p=1"
    response = admin_client.post(
        f"{CHANGELIST}{query}",
        {"action": "export_csv", "_selected_action": [events["ada"].pk], "index": 0},
    )
    made = timezone.localtime(AuditExport.objects.get().exported_at)
    short = f"{str(ADA)[:8]}-{str(ADA)[-4:]}"
    assert file_name(response) == (
        f"kyc-audit-log-{made:%Y-%m-%d-%H%M}-outcome-found-user-jane-search-{short}-selected-rows.csv"
    )


@pytest.mark.parametrize(
    ("query", "named"),
    [
        pytest.param("?action__exact=link_copied", "action-link-copied", id="action"),
        pytest.param("?is_refresh__exact=1", "is-refresh-yes", id="refresh"),
        pytest.param("?month=2026-11", "month-2026-11", id="month"),
        pytest.param(
            "?occurred_at__gte=2026-11-25+00%3A00%3A00%2B00%3A00&occurred_at__lt=2026-11-26+00%3A00%3A00%2B00%3A00",
            "from-2026-11-25-before-2026-11-26",
            id="a-day",
        ),
        pytest.param("?q=" + "ab" * 32, "search-email-abababab", id="an-e-mail-hash"),
        pytest.param("?q=3f2a", "search-3f2a", id="the-start-of-an-id"),
        pytest.param("?user__id__exact=999999", "user-999999", id="a-user-who-is-not-there"),
    ],
)
def test_export_of_everything_a_filter_matched_names_the_filter(admin_client, events, query, named):
    response = export_all_matching(admin_client, query)
    made = timezone.localtime(AuditExport.objects.get().exported_at)
    assert file_name(response) == f"kyc-audit-log-{made:%Y-%m-%d-%H%M}-{named}.csv"


# --- Who may read and export ----------------------------------------------------------------


def test_view_permission_alone_reads_but_cannot_export(django_user_model, events):
    client = client_for(admin_user_with(django_user_model, "view_auditevent"))
    response = client.get(CHANGELIST)
    assert listed(response) == {ADA, GRACE, NEIGHBOUR}
    html = response.content.decode()
    assert 'value="export_csv"' not in html
    # Without the permission the action does not exist, so Django shows the changelist again.
    refused = export(client, events["ada"])
    assert refused.status_code == 200
    assert refused["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in refused
    assert refused.context["cl"].model is AuditEvent


def test_view_permission_alone_cannot_change_or_delete(django_user_model, event):
    client = client_for(admin_user_with(django_user_model, "view_auditevent"))
    assert client.get(change_url(event)).status_code == 200
    assert client.post(change_url(event), {"outcome": "not_found"}).status_code == 403
    assert client.post(delete_url(event), {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).outcome == AuditEvent.Outcome.FOUND


def test_view_and_export_permissions_export(django_user_model, events):
    client = client_for(admin_user_with(django_user_model, "view_auditevent", "export_auditevent"))
    assert 'value="export_csv"' in client.get(CHANGELIST).content.decode()
    header, *rows = csv_rows(export(client, events["ada"]))
    assert header == CSV_COLUMNS
    assert [row[header.index("customer_id")] for row in rows] == [str(ADA)]


def test_export_permission_without_view_permission_opens_nothing(django_user_model, events):
    client = client_for(admin_user_with(django_user_model, "export_auditevent"))
    assert client.get(CHANGELIST).status_code == 403
    refused = export(client, events["ada"])
    assert refused.status_code == 403


def test_non_staff_user_with_every_permission_is_sent_to_the_admin_login(django_user_model, events):
    user = django_user_model.objects.create_user(
        username="root", password="irrelevant-password", is_staff=False, is_superuser=True
    )
    client = client_for(user)
    for path in ("/admin/", CHANGELIST):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")
    refused = export(client, events["ada"])
    assert refused.status_code == 302
    assert "Content-Disposition" not in refused


def test_compliance_staff_cannot_open_the_admin(django_user_model):
    user = django_user_model.objects.create_user(username="clerk", password="irrelevant-password")
    user.groups.add(Group.objects.get(name="Compliance staff"))
    client = client_for(user)
    for path in ("/admin/", CHANGELIST):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


def test_compliance_staff_with_admin_access_still_cannot_see_the_audit_log(django_user_model):
    user = django_user_model.objects.create_user(
        username="clerk", password="irrelevant-password", is_staff=True
    )
    user.groups.add(Group.objects.get(name="Compliance staff"))
    assert client_for(user).get(CHANGELIST).status_code == 403


# --- Every export is on record (issue #10) --------------------------------------------------

EXPORTS = "/admin/customers/auditexport/"


def export_all_matching(client: Client, query: str = ""):
    """Export with "Select all N" chosen: every event the changelist's filters match."""
    return client.post(
        f"{CHANGELIST}{query}",
        {"action": "export_csv", "select_across": "1", "_selected_action": [0], "index": 0},
    )


def test_export_is_recorded_with_who_when_how_many_and_the_filters(admin_client, admin_user, events):
    before = timezone.now()
    response = admin_client.post(
        f"{CHANGELIST}?outcome__exact=found&q=3f2a",
        {"action": "export_csv", "_selected_action": [events["ada"].pk], "index": 0},
        REMOTE_ADDR="198.51.100.7",
    )
    csv_rows(response)
    recorded = AuditExport.objects.get()
    assert recorded.user == admin_user
    assert before <= recorded.exported_at <= timezone.now()
    assert recorded.rows == 1
    assert recorded.filters == "outcome__exact=found&q=3f2a"
    assert recorded.all_matching is False
    assert recorded.client_ip == "198.51.100.7"
    assert recorded.request_id == response["X-Request-ID"]


def test_export_of_every_matching_event_is_recorded_as_such(admin_client, events):
    _header, *rows = csv_rows(export_all_matching(admin_client, "?action__exact=lookup"))
    recorded = AuditExport.objects.get()
    assert (recorded.rows, recorded.all_matching, recorded.filters) == (2, True, "action__exact=lookup")
    assert len(rows) == recorded.rows


def test_export_holds_exactly_the_rows_recorded_while_new_events_arrive(
    admin_client, events, jane, monkeypatch
):
    real_record_export = audit.record_export

    def record_then_a_lookup_arrives(request, **fields):
        recorded = real_record_export(request, **fields)
        AuditEvent.objects.create(
            user=jane, action=AuditEvent.Action.LOOKUP, customer_id=ADA, outcome=AuditEvent.Outcome.FOUND
        )
        return recorded

    monkeypatch.setattr(audit, "record_export", record_then_a_lookup_arrives)
    _header, *rows = csv_rows(export_all_matching(admin_client))
    assert AuditExport.objects.get().rows == len(rows) == 3
    assert AuditEvent.objects.count() == 4


def test_export_is_not_made_when_it_cannot_be_put_on_record(admin_client, events, monkeypatch, caplog):
    def refuse(self, *args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(AuditExport, "save", refuse)
    response = export(admin_client, events["ada"])
    assert "Content-Disposition" not in response
    assert response.status_code == 302
    followed = admin_client.get(response["Location"])
    assert "Nothing was exported: the export could not be put on record" in followed.content.decode()
    assert any(
        record.name == "customers.services.audit" and record.levelname == "ERROR" for record in caplog.records
    )


def test_a_refused_export_is_not_recorded(django_user_model, events):
    client = client_for(admin_user_with(django_user_model, "view_auditevent"))
    export(client, events["ada"])
    assert AuditExport.objects.count() == 0


def test_whoever_reads_the_audit_log_reads_who_exported_it(django_user_model, events):
    exporter = admin_user_with(django_user_model, "view_auditevent", "export_auditevent", username="exporter")
    csv_rows(export(client_for(exporter), events["ada"], events["grace"]))
    reader = client_for(admin_user_with(django_user_model, "view_auditevent"))
    response = reader.get(EXPORTS)
    assert response.status_code == 200
    (row,) = list_rows(response)
    assert text_of(row["username"]) == "exporter"
    assert text_of(row["rows"]) == "2"
    assert text_of(row["selection"]) == "Rows ticked on one page"
    assert "Audit log exports" in reader.get("/admin/").content.decode()


def test_who_exported_the_audit_log_is_hidden_from_those_who_cannot_read_it(django_user_model, admin_client):
    admin_client.post(CHANGELIST, {"action": "export_csv", "select_across": "1", "index": 0})
    client = client_for(admin_user_with(django_user_model, "export_auditevent", "lookup_customer"))
    assert client.get(EXPORTS).status_code == 403
    assert "Audit log exports" not in client.get("/admin/").content.decode()


def test_nobody_adds_changes_or_deletes_a_record_of_an_export(admin_client, events):
    csv_rows(export(admin_client, events["ada"]))
    recorded = AuditExport.objects.get()
    page = f"{EXPORTS}{recorded.pk}/change/"
    assert admin_client.get(f"{EXPORTS}add/").status_code == 403
    assert admin_client.get(page).status_code == 200
    assert admin_client.post(page, {"rows": 0}).status_code == 403
    assert admin_client.post(f"{EXPORTS}{recorded.pk}/delete/", {"post": "yes"}).status_code == 403
    assert 'name="action"' not in admin_client.get(EXPORTS).content.decode()
    assert AuditExport.objects.get().rows == 1


# --- The list stays fast on a log of millions of rows (issue #11) -----------------------------


def changelist_queries(client: Client, params: dict | None = None) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST, params or {})
    assert response.status_code == 200
    return [query["sql"] for query in queries.captured_queries if "customers_auditevent" in query["sql"]]


def whole_log_counts(sqls: list[str]) -> list[str]:
    """Counts of audit rows that are not bounded by a LIMIT: each one reads every matching row."""
    return [sql for sql in sqls if "COUNT(" in sql.upper() and "LIMIT" not in sql.upper()]


@pytest.mark.parametrize(
    "params", [{}, {"q": "3f2a"}, {"outcome__exact": "found"}, {"month": "2026-11"}], ids=str
)
def test_the_list_never_counts_every_matching_row(admin_client, events, params):
    sqls = changelist_queries(admin_client, params)
    assert any("COUNT(" in sql.upper() for sql in sqls), "the list no longer counts at all: check the test"
    assert whole_log_counts(sqls) == []


def test_the_list_and_its_filters_take_no_distinct_over_the_log(admin_client, events):
    sqls = changelist_queries(admin_client)
    assert [sql for sql in sqls if "DISTINCT" in sql.upper()] == []


def test_the_list_counts_exactly_below_the_cap(admin_client, events):
    assert "3 audit events" in text_of(admin_client.get(CHANGELIST).content.decode())


def test_a_log_past_the_cap_reads_as_at_least_the_cap_and_still_pages(admin_client, jane, monkeypatch):
    monkeypatch.setattr(admin_base, "AUDIT_LIST_COUNT_CAP", 4)
    monkeypatch.setattr(AuditEventAdmin, "list_per_page", 2)
    customers = [uuid.UUID(int=0x5000 + number, version=4) for number in range(7)]
    for customer_id in customers:
        AuditEvent.objects.create(
            user=jane,
            action=AuditEvent.Action.LOOKUP,
            customer_id=customer_id,
            outcome=AuditEvent.Outcome.FOUND,
        )

    first = admin_client.get(CHANGELIST)
    assert "4+ audit events" in text_of(first.content.decode())
    assert [event.customer_id for event in first.context["cl"].result_list] == customers[::-1][:2]
    second = admin_client.get(CHANGELIST, {"p": 2})
    assert [event.customer_id for event in second.context["cl"].result_list] == customers[::-1][2:4]


def at(event: AuditEvent, moment: datetime) -> None:
    AuditEvent.objects.filter(pk=event.pk).update(occurred_at=moment)


def test_month_filter_offers_each_month_from_the_first_event_to_the_last(admin_client, events):
    at(events["ada"], MOMENT)
    at(events["grace"], datetime(2026, 8, 31, 23, 0, tzinfo=UTC))
    at(events["neighbour"], datetime(2026, 10, 2, tzinfo=UTC))
    page = admin_client.get(CHANGELIST).content.decode()
    offered = re.findall(r'href="\?month=(\d{4}-\d{2})"', page)
    assert offered == ["2026-11", "2026-10", "2026-09", "2026-08"]


def test_month_filter_lists_that_months_events_only(admin_client, events):
    at(events["ada"], MOMENT)
    at(events["grace"], datetime(2026, 8, 31, 23, 0, tzinfo=UTC))
    at(events["neighbour"], datetime(2026, 9, 1, tzinfo=UTC))
    assert listed(admin_client.get(CHANGELIST, {"month": "2026-08"})) == {GRACE}
    assert listed(admin_client.get(CHANGELIST, {"month": "2026-11"})) == {ADA}


def test_month_filter_counts_the_month_in_the_dashboards_time_zone(admin_client, events, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    at(events["grace"], datetime(2026, 8, 31, 23, 0, tzinfo=UTC))  # 1 September in Berlin
    assert listed(admin_client.get(CHANGELIST, {"month": "2026-09"})) == {GRACE}
    assert GRACE not in listed(admin_client.get(CHANGELIST, {"month": "2026-08"}))


@pytest.mark.parametrize("value", ["2026-13", "junk", "0-1", "99999999999-01", "2026-"])
def test_a_month_that_is_not_one_lists_nothing_and_is_no_error(admin_client, events, value):
    assert listed(admin_client.get(CHANGELIST, {"month": value})) == set()


def test_search_by_the_start_of_an_id_reads_a_range_of_the_index_not_every_row(admin_client, events):
    sqls = changelist_queries(admin_client, {"q": "3f2a9c1e-7b"})
    assert [sql for sql in sqls if " LIKE " in sql.upper()] == []
    assert listed(admin_client.get(CHANGELIST, {"q": "3f2a9c1e-7b"})) == {ADA}


def test_search_by_more_hex_digits_than_an_id_has_finds_nothing(admin_client, events):
    assert listed(admin_client.get(CHANGELIST, {"q": str(ADA).replace("-", "") + "0"})) == set()


# --- Bulk lookups (issue #12): who checked which list, and who downloaded it ------------------

BULK_LIST = "/admin/customers/bulklookup/"
BULK_EXPORTS = "/admin/customers/bulklookupexport/"


@pytest.fixture
def batch(jane) -> BulkLookup:
    batch = BulkLookup.objects.create(
        user=jane, ids_submitted=315, ids_valid=312, duplicates=2, rejected=1, not_fetched=4
    )
    for customer_id in (ADA, GRACE):
        AuditEvent.objects.create(
            user=jane, action=AuditEvent.Action.LOOKUP, customer_id=customer_id, outcome="found", batch=batch
        )
    return batch


def test_bulk_lookups_list_who_when_and_how_many(admin_client, batch):
    (row,) = list_rows(admin_client.get(BULK_LIST))
    assert text_of(row["username"]) == "jane"
    assert (row["ids_valid"], row["duplicates"], row["rejected"], row["not_fetched"]) == (
        "312",
        "2",
        "1",
        "4",
    )
    assert text_of(row["finished"]) == "Not recorded"


def test_a_bulk_lookup_page_links_to_its_lookups_in_the_audit_log(admin_client, batch, event):
    page = admin_client.get(f"{BULK_LIST}{batch.pk}/change/").content.decode()
    link = re.search(r'<a href="([^"]+)">Its lookups in the audit log</a>', page)[1]
    assert link == f"{CHANGELIST}?batch__id__exact={batch.pk}"
    assert listed(admin_client.get(html.unescape(link))) == {ADA, GRACE}
    assert event.customer_id in listed(admin_client.get(CHANGELIST))


@pytest.mark.parametrize("value", ["not-a-uuid", str(uuid.uuid4())])
def test_filtering_the_audit_log_by_a_batch_that_is_not_one_lists_nothing(admin_client, batch, value):
    assert listed(admin_client.get(CHANGELIST, {"batch__id__exact": value})) == set()


def test_the_audit_log_by_batch_takes_no_distinct_or_whole_count(admin_client, batch):
    sqls = changelist_queries(admin_client, {"batch__id__exact": str(batch.pk)})
    assert whole_log_counts(sqls) == []
    assert [sql for sql in sqls if "DISTINCT" in sql.upper()] == []


def test_an_event_page_names_its_bulk_lookup(admin_client, batch):
    lookup = batch.lookups.first()
    rows = dict(event_page_rows(admin_client.get(change_url(lookup))))
    assert rows["Bulk lookup"] == str(batch.pk)
    assert f'href="{BULK_LIST}{batch.pk}/change/"' in admin_client.get(change_url(lookup)).content.decode()


def test_bulk_lookups_and_their_downloads_are_read_only_for_everyone(admin_client, batch, jane):
    export = BulkLookupExport.objects.create(batch=batch, user=jane, rows=312, with_email=True)
    for base, obj in ((BULK_LIST, batch), (BULK_EXPORTS, export)):
        assert admin_client.get(f"{base}add/").status_code == 403
        assert 'name="_save"' not in admin_client.get(f"{base}{obj.pk}/change/").content.decode()
        assert admin_client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert BulkLookup.objects.count() == 1
    assert BulkLookupExport.objects.count() == 1


def test_bulk_downloads_list_the_batch_and_whether_emails_were_in_it(admin_client, batch, jane):
    BulkLookupExport.objects.create(
        batch=batch, user=jane, rows=42, with_email=True, status_filter="approved"
    )
    (row,) = list_rows(admin_client.get(BULK_EXPORTS))
    assert text_of(row["batch_link"]) == f"{str(batch.pk)[:8]}…{str(batch.pk)[-4:]}"
    assert (row["rows"], row["status_filter"]) == ("42", "approved")


def test_bulk_lookups_are_read_by_whoever_reads_the_audit_log(django_user_model, batch):
    reader = client_for(admin_user_with(django_user_model, "view_auditevent"))
    other = client_for(admin_user_with(django_user_model, username="other-admin"))
    assert reader.get(BULK_LIST).status_code == 200
    assert reader.get(BULK_EXPORTS).status_code == 200
    assert other.get(BULK_LIST).status_code == 403
    assert other.get(BULK_EXPORTS).status_code == 403


def test_bulk_lookups_are_searched_by_batch_id(admin_client, batch, jane):
    BulkLookup.objects.create(user=jane, ids_submitted=1, ids_valid=1, duplicates=0, rejected=0)
    found = admin_client.get(BULK_LIST, {"q": str(batch.pk)}).context["cl"].result_list
    assert [item.pk for item in found] == [batch.pk]
    assert list(admin_client.get(BULK_LIST, {"q": "jane"}).context["cl"].result_list) == []


# --- KYC webhook events (issue #13): read-only, for auditors -----------------------------------

WEBHOOK_LIST = "/admin/customers/kycwebhookevent/"


@pytest.fixture
def webhook_event():
    return KycWebhookEvent.objects.create(
        delivery_key="c" * 64,
        customer_id=GRACE,
        event_created_at=timezone.now(),
        kyc_status="pending",
        kyc_sub_status="kyc_form_resubmission_required",
        breakdown=[["usd", "ach", "pending"], ["usd", "swift", "approved"]],
    )


def test_webhook_events_are_listed_in_the_cards_words_and_found_by_customer_id(admin_client, webhook_event):
    page = admin_client.get(WEBHOOK_LIST).content.decode()
    assert "Pending" in page
    assert short_customer_id(GRACE) in page
    found = admin_client.get(WEBHOOK_LIST, {"q": str(GRACE)[:8]}).context["cl"].result_list
    assert [event.pk for event in found] == [webhook_event.pk]
    assert list(admin_client.get(WEBHOOK_LIST, {"q": "grace"}).context["cl"].result_list) == []


def test_a_webhook_event_can_be_read_but_not_added_changed_or_deleted(admin_client, webhook_event):
    page = admin_client.get(f"{WEBHOOK_LIST}{webhook_event.pk}/change/").content.decode()
    assert "USD · swift" in page
    assert 'name="_save"' not in page
    assert admin_client.get(f"{WEBHOOK_LIST}add/").status_code == 403
    assert admin_client.get(f"{WEBHOOK_LIST}{webhook_event.pk}/delete/").status_code == 403


def webhook_page_rows(event: KycWebhookEvent, client: Client) -> dict[str, str]:
    """The event page's rows by label; the breakdown's lines joined by " | "."""
    return dict(event_page_rows(client.get(f"{WEBHOOK_LIST}{event.pk}/change/"), line_break=" | "))


def test_a_webhook_events_codes_read_in_the_cards_words(admin_client, webhook_event):
    """Issue #19, item 5: the page showed kyc_form_resubmission_required and lower-case codes."""
    rows = webhook_page_rows(webhook_event, admin_client)
    assert rows["KYC status"] == "Pending"
    assert rows["Sub-status"] == "Resubmission required"
    assert rows["Status breakdown"] == "USD · ACH: Pending | USD · swift unrecognised: Approved"
    (row,) = list_rows(admin_client.get(WEBHOOK_LIST))
    assert (text_of(row["status"]), text_of(row["sub_status"])) == ("Pending", "Resubmission required")


def test_a_webhook_events_codes_the_dashboard_does_not_know_are_shown_as_sent_and_marked(admin_client):
    event = KycWebhookEvent.objects.create(
        delivery_key="d" * 64,
        customer_id=GRACE,
        event_created_at=timezone.now(),
        kyc_status="frozen",
        kyc_sub_status="kyc_<b>paused</b>",
        breakdown=[["gbp", "faster_payments", "suspended"]],
    )
    page = admin_client.get(f"{WEBHOOK_LIST}{event.pk}/change/").content.decode()
    assert "kyc_&lt;b&gt;paused&lt;/b&gt;" in page
    rows = webhook_page_rows(event, admin_client)
    assert rows["KYC status"] == "frozen unrecognised"
    assert rows["Sub-status"] == "kyc_<b>paused</b> unrecognised"
    assert rows["Status breakdown"] == "gbp · faster_payments unrecognised: suspended unrecognised"


def test_a_webhook_event_without_kyc_reads_as_not_started(admin_client):
    event = KycWebhookEvent.objects.create(
        delivery_key="e" * 64, customer_id=GRACE, event_created_at=timezone.now(), kyc_status=""
    )
    rows = webhook_page_rows(event, admin_client)
    assert (rows["KYC status"], rows["Sub-status"], rows["Status breakdown"]) == ("Not started", "-", "None")


def test_the_webhook_status_filter_offers_words_and_filters_by_the_code(admin_client, webhook_event):
    for status, key in (("approved", "f"), ("", "0"), ("frozen", "1")):
        KycWebhookEvent.objects.create(
            delivery_key=key * 64, customer_id=ADA, event_created_at=timezone.now(), kyc_status=status
        )
    page = admin_client.get(WEBHOOK_LIST).content.decode()
    offered = re.findall(r'<a href="\?kyc_status=(\w+)"[^>]*>([^<]+)</a>', page)
    assert offered == [
        ("pending", "Pending"),
        ("approved", "Approved"),
        ("rejected", "Rejected"),
        ("none", "Not started"),
        ("not_sent", "Unknown"),
        ("other", "Other (unrecognised)"),
    ]

    def statuses(value: str) -> list[str]:
        listed = admin_client.get(WEBHOOK_LIST, {"kyc_status": value}).context["cl"].result_list
        return [event.kyc_status for event in listed]

    assert statuses("pending") == ["pending"]
    assert statuses("none") == [""]
    assert statuses("other") == ["frozen"]
    assert statuses("junk") == []


def test_the_webhook_pages_show_statuses_as_the_cards_badges(admin_client, webhook_event):
    for path in (WEBHOOK_LIST, f"{WEBHOOK_LIST}{webhook_event.pk}/change/"):
        assert 'href="/static/css/audit-admin.css"' in admin_client.get(path).content.decode()


def test_event_page_names_the_sub_status_a_lookup_saw_in_the_cards_words(admin_client, event):
    AuditEvent.objects.filter(pk=event.pk).update(
        kyc_status="pending", kyc_sub_status="kyc_form_resubmission_required"
    )
    rows = dict(event_page_rows(admin_client.get(change_url(event))))
    assert rows["KYC sub-status seen"] == "Resubmission required"
