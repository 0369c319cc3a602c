"""Start new KYC session in a real headless Chromium, against a stand-in of its own (issue #14).

The confirmation dialog (opened by static JS, closed by Cancel or Escape, focus back on the
button), the start and the card's swap, at desktop width and at 390 px, under the real CSP and
axe-core. The stand-in is this module's own: starting a session changes its customers.
"""

import re

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import Page, expect

from customers.align.standin.demo import STUB_FLOW_BASE, DemoId
from customers.align.standin.server import serving
from dashboard.ops.shared_cache import shared_cache
from tests.browser.test_accessibility import PHONE, axe_violations
from tests.conftest import STAND_IN_KEY

NOT_STARTED = str(DemoId.KYC_NOT_STARTED)
NO_LINK = str(DemoId.NO_KYC_LINK)
REJECTED = str(DemoId.REJECTED)
BUTTON = "Start new KYC session"
WIDTHS = [
    pytest.param({"width": 1280, "height": 900}, NOT_STARTED, id="desktop"),
    pytest.param(PHONE, NO_LINK, id="phone"),
]


@pytest.fixture(scope="module")
def session_stand_in():
    with serving(api_key=STAND_IN_KEY, slow_seconds=3) as server:
        yield server


@pytest.fixture
def lead_page(logged_in_page, staff_user, session_stand_in, settings):
    """Signed in as a Compliance lead, with the dashboard on this module's stand-in."""
    staff_user.user_permissions.add(Permission.objects.get(codename="start_kyc_session"))
    settings.ALIGN_API_BASE_URL = session_stand_in.base_url
    return logged_in_page


def open_customer(page: Page, dashboard_url: str, customer_id: str) -> None:
    page.goto(f"{dashboard_url}/customers/{customer_id}/")
    expect(page.locator("#customer-name")).to_be_visible()


@pytest.mark.parametrize(("viewport", "customer_id"), WIDTHS)
def test_confirming_starts_a_session_and_swaps_in_the_new_link(
    lead_page, dashboard_url, csp_violations, session_stand_in, viewport, customer_id
):
    page = lead_page
    page.set_viewport_size(viewport)
    open_customer(page, dashboard_url, customer_id)
    page.get_by_role("button", name=BUTTON).click()
    dialog = page.get_by_role("dialog", name="Start a new KYC session?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(customer_id)
    expect(dialog).to_contain_text("the new link replaces the old one")
    assert axe_violations(page) == []
    calls_before = session_stand_in.calls
    dialog.get_by_role("button", name="Start new session").click()
    expect(page.locator(".kyc-session-note")).to_have_text(
        re.compile(r"New KYC session started \d\d:\d\d by you")
    )
    expect(page.locator(".kyc-session-note")).to_be_focused()
    expect(page.locator("#kyc-flow-link")).to_have_attribute("href", re.compile(re.escape(STUB_FLOW_BASE)))
    expect(page.get_by_role("button", name="Copy link")).to_be_visible()
    expect(page.get_by_role("button", name=BUTTON)).to_have_count(0)
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page).to_have_url(f"{dashboard_url}/customers/{customer_id}/")
    assert session_stand_in.calls - calls_before == 2  # the start, then the card's lookup
    assert axe_violations(page) == []
    assert csp_violations == []


def test_cancel_and_escape_close_the_dialog_and_return_focus_to_the_button(
    lead_page, dashboard_url, csp_violations
):
    page = lead_page
    open_customer(page, dashboard_url, REJECTED)
    button = page.get_by_role("button", name=BUTTON)
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    # Focus is inside the dialog, so the keyboard reaches its buttons.
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(button).to_be_focused()
    button.click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(button).to_be_focused()
    assert csp_violations == []


def test_staff_without_the_permission_see_no_button(logged_in_page, dashboard_url):
    open_customer(logged_in_page, dashboard_url, NOT_STARTED)
    expect(logged_in_page.locator(".kyc-section, #kyc-heading")).to_have_count(1)
    expect(logged_in_page.get_by_role("button", name=BUTTON)).to_have_count(0)


def test_a_second_start_within_the_minute_is_answered_in_the_card(lead_page, dashboard_url, session_stand_in):
    """The card is fetched again (one lookup), so it shows the customer as they are now."""
    page = lead_page
    open_customer(page, dashboard_url, REJECTED)
    # A second tab started one a moment ago: this page still shows the button.
    shared_cache.add(
        f"kycdesk:kyc-session:{REJECTED}", {"user": "sam", "at": "2026-11-25T14:05:00+00:00"}, 60
    )
    try:
        calls_before = session_stand_in.calls
        page.get_by_role("button", name=BUTTON).click()
        page.get_by_role("dialog").get_by_role("button", name="Start new session").click()
        expect(page.locator(".kyc-session-note")).to_contain_text(
            "A new session was started for this customer by sam at"
        )
        expect(page.locator(".kyc-session-note")).to_contain_text(
            "This card now shows the customer as they are."
        )
        assert session_stand_in.calls == calls_before + 1  # the lookup, never a start
    finally:
        shared_cache.delete(f"kycdesk:kyc-session:{REJECTED}")
