"""The audit log in /admin/ as an auditor reads it in a real headless Chromium.

What the admin unit tests cannot see: that every column fits a 1280 px screen, that customer IDs
and times never wrap, and that the audit pages' own stylesheet runs under the CSP. Each test leaves
a screenshot in test-artifacts/ (admin-audit-*.png) for a person to look at.
"""

import uuid

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import Page

from customers.models import AuditEvent, AuditExport, BulkLookup, BulkLookupExport
from dashboard.accounts.models import SignInEvent
from tests.support.browser import ARTIFACTS

AUDITOR_USERNAME = "a.auditor"
AUDITOR_PASSWORD = "audit trail battery"
CHANGELIST = "/admin/customers/auditevent/"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# The longest client IP the list must fit: eight IPv6 groups, none of them compressible.
LONGEST_IP = "2001:db8:85a3:1234:5678:8a2e:370:7334"

# One event of each kind the list must show, the wordiest outcomes and statuses included.
EVENTS = [
    ("lookup", "found", "approved", "198.51.100.23"),
    ("lookup", "found", "pending", LONGEST_IP),
    ("lookup", "found", "rejected", "203.0.113.254"),
    ("lookup", "found", "", "198.51.100.23"),
    ("lookup", "found", AuditEvent.KYC_STATUS_NOT_SENT, "198.51.100.23"),
    ("lookup", "found", "frozen_by_align", "198.51.100.23"),
    ("lookup", "invalid_response", "", LONGEST_IP),
    ("lookup", "started", "", None),
    ("lookup", "not_configured", "", "198.51.100.23"),
    ("link_copied", "copied", "", "198.51.100.23"),
]


@pytest.fixture
def audit_log(django_user_model) -> list[AuditEvent]:
    staff = [
        django_user_model.objects.create_user(username=name, password="irrelevant-password")
        for name in ("j.smith", "olga.kowalczyk")
    ]
    return [
        AuditEvent.objects.create(
            user=staff[index % 2],
            action=action,
            customer_id=uuid.uuid4(),
            outcome=outcome,
            kyc_status=kyc_status,
            is_refresh=index % 3 == 0,
            client_ip=client_ip,
            request_id=f"{index:012x}",
        )
        for index, (action, outcome, kyc_status, client_ip) in enumerate(EVENTS)
    ]


@pytest.fixture
def auditor(django_user_model):
    user = django_user_model.objects.create_user(
        username=AUDITOR_USERNAME, password=AUDITOR_PASSWORD, is_staff=True
    )
    # What the "Compliance auditors" group holds; its data migration does not outlive a flush.
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_auditevent", "export_auditevent"])
    )
    return user


def open_as_auditor(page: Page, dashboard_url: str, path: str) -> None:
    page.goto(f"{dashboard_url}{path}")
    page.get_by_label("Username").fill(AUDITOR_USERNAME)
    page.get_by_label("Password").fill(AUDITOR_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{dashboard_url}{path}")


def line_counts(page: Page, selector: str) -> list[int]:
    """How many lines each matching inline element is laid out on."""
    return page.locator(selector).evaluate_all("elements => elements.map(e => e.getClientRects().length)")


def page_overflow(page: Page) -> int:
    """How far the page is wider than the window: anything above 0 scrolls sideways."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_audit_list_fits_a_1280_px_screen_with_every_column(browser_page, dashboard_url, auditor, audit_log):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    open_as_auditor(page, dashboard_url, CHANGELIST)
    page.screenshot(path=ARTIFACTS / "admin-audit-list-1280.png", full_page=True)

    table_overflow = page.evaluate(
        "document.querySelector('#result_list').scrollWidth"
        " - document.querySelector('#changelist .results').clientWidth"
    )
    assert table_overflow <= 0
    assert page_overflow(page) <= 0
    last_column_right = page.locator("#result_list thead th").last.evaluate(
        "th => th.getBoundingClientRect().right"
    )
    assert last_column_right <= DESKTOP["width"]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_audit_list_shows_each_customer_id_and_time_on_one_line(
    browser_page, dashboard_url, auditor, audit_log, viewport
):
    page = browser_page
    page.set_viewport_size(viewport)
    open_as_auditor(page, dashboard_url, CHANGELIST)
    page.screenshot(path=ARTIFACTS / f"admin-audit-list-{viewport['width']}-rows.png", full_page=True)

    assert line_counts(page, "#result_list .audit-id") == [1] * len(audit_log)
    assert line_counts(page, "#result_list .audit-time") == [1] * len(audit_log)


def test_audit_list_on_a_phone_scrolls_the_table_not_the_page(
    browser_page, dashboard_url, auditor, audit_log
):
    page = browser_page
    page.set_viewport_size(PHONE)
    open_as_auditor(page, dashboard_url, CHANGELIST)
    page.screenshot(path=ARTIFACTS / "admin-audit-list-390.png", full_page=True)

    assert page_overflow(page) <= 0


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_event_page_starts_with_the_time_on_one_line(
    browser_page, dashboard_url, auditor, audit_log, viewport
):
    page = browser_page
    page.set_viewport_size(viewport)
    event = audit_log[1]
    open_as_auditor(page, dashboard_url, f"{CHANGELIST}{event.pk}/change/")
    page.screenshot(path=ARTIFACTS / f"admin-audit-event-{viewport['width']}.png", full_page=True)

    first_row = page.locator("fieldset .form-row").first
    assert first_row.locator("label").inner_text() == "Time:"
    assert line_counts(page, "fieldset .audit-time") == [1]
    assert line_counts(page, "fieldset .audit-id") == [1]
    assert page_overflow(page) <= 0


def test_audit_pages_run_under_the_policy_without_a_violation(
    browser_page, dashboard_url, auditor, audit_log, csp_violations
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    open_as_auditor(page, dashboard_url, CHANGELIST)
    page.locator("#result_list .audit-time").first.click()
    page.wait_for_url(f"{dashboard_url}{CHANGELIST}*/change/")
    assert (
        page.locator("fieldset .audit-id").evaluate("code => getComputedStyle(code).whiteSpace") == "nowrap"
    )
    assert csp_violations == []


# --- Everything one user did (customers/admin/activity.py) ------------------------------------------


@pytest.fixture
def activity_of_smith(audit_log) -> str:
    """j.smith's trail beside the lookups above: a bulk lookup, its download, an export, sign-ins."""
    smith = audit_log[0].user
    SignInEvent.objects.create(user=smith, kind="signed_in", client_ip=LONGEST_IP, request_id="0a1b2c3d4e5f")
    batch = BulkLookup.objects.create(
        user=smith, ids_submitted=315, ids_valid=312, duplicates=2, rejected=1, not_fetched=4
    )
    BulkLookupExport.objects.create(
        user=smith, batch=batch, rows=42, with_email=True, status_filter="needs_resubmission"
    )
    AuditEvent.objects.create(
        user=smith, action="email_search", outcome="found", match_count=3, email_hash="ab" * 32
    )
    AuditEvent.objects.create(
        user=smith,
        action="lookup",
        customer_id=uuid.uuid4(),
        outcome="found",
        kyc_status="pending",
        kyc_sub_status="kyc_form_resubmission_required",
        client_ip=LONGEST_IP,
        request_id="0123456789ab",
    )
    AuditEvent.objects.create(
        user=smith,
        action="kyc_session",
        customer_id=uuid.uuid4(),
        outcome="session_started",
        kyc_status="pending",
        client_ip="198.51.100.23",
    )
    AuditExport.objects.create(user=smith, rows=120, all_matching=False)
    SignInEvent.objects.create(user=smith, kind="sign_in_failed", client_ip="203.0.113.254")
    SignInEvent.objects.create(user=smith, kind="signed_out", client_ip=LONGEST_IP)
    return f"{CHANGELIST}activity/{smith.pk}/"


def test_activity_page_fits_a_1280_px_screen_with_every_column(
    browser_page, dashboard_url, auditor, activity_of_smith, csp_violations
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    open_as_auditor(page, dashboard_url, activity_of_smith)
    page.screenshot(path=ARTIFACTS / "admin-activity-1280.png", full_page=True)

    assert page.locator("h1").inner_text() == "Everything j.smith did"
    assert page_overflow(page) <= 0
    table_overflow = page.evaluate(
        "document.querySelector('#activity').scrollWidth"
        " - document.querySelector('.activity-table').clientWidth"
    )
    assert table_overflow <= 0
    rows = page.locator("#activity tbody tr").count()
    assert line_counts(page, "#activity .audit-time") == [1] * rows
    assert line_counts(page, "#activity .audit-id") == [1] * page.locator("#activity .audit-id").count()
    assert csp_violations == []


def test_activity_page_on_a_phone_scrolls_the_table_not_the_page(
    browser_page, dashboard_url, auditor, activity_of_smith
):
    page = browser_page
    page.set_viewport_size(PHONE)
    open_as_auditor(page, dashboard_url, activity_of_smith)
    page.screenshot(path=ARTIFACTS / "admin-activity-390.png", full_page=True)

    assert page_overflow(page) <= 0
