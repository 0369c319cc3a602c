"""A pending customer's page keeps up by itself, in a real headless Chromium (static/js/watch.js).

With webhooks: a real stand-in approves the customer and delivers the signed webhook to the live
dashboard, and the open page turns approved without a reload. Without them: the page looks the
customer up again on its own, shows when it last checked, and stops when the status settles, after
30 minutes, or on Stop. A hidden tab asks nothing. Time is Playwright's fake clock where the test
is about intervals, so minutes pass in milliseconds and "nothing happened" is not a guess.
"""

import re
import time
from collections.abc import Callable

import pytest
import requests
from playwright.sync_api import Page, expect

from customers.align.standin.demo import DemoId
from customers.align.standin.server import serving
from customers.models import AuditEvent, KycWebhookEvent
from tests.browser.test_accessibility import PHONE, axe_violations
from tests.conftest import STAND_IN_KEY

GRACE = str(DemoId.FORM_STARTED)
SECOND = 1000
MINUTE = 60 * SECOND
HIDE = """() => {
    Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
    document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
    Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "visible"});
    document.dispatchEvent(new Event("visibilitychange"));
}"""


@pytest.fixture
def own_stand_in(live_server, settings):
    """A stand-in of this test's own, whose customers a simulation may change, that delivers its
    webhooks to the live dashboard; the dashboard is pointed at it."""
    with serving(api_key=STAND_IN_KEY, webhook_url=f"{live_server.url}/webhooks/align/") as server:
        settings.ALIGN_API_BASE_URL = server.base_url
        settings.ALIGN_API_KEY = STAND_IN_KEY
        yield server


def approve_in_align(stand_in, customer_id: str) -> None:
    answer = requests.post(
        f"{stand_in.base_url}/v0/customers/simulate",
        json={"action": "kyc.status.approve", "customer_id": customer_id},
        headers={"Api-Key": STAND_IN_KEY},
        timeout=5,
    )
    assert answer.status_code == 200


class Requests:
    """The page's requests whose URL matches, counted as the browser sends them."""

    def __init__(self, page: Page, pattern: str) -> None:
        self.page = page
        self.urls: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url) if pattern in request.url else None)

    @property
    def count(self) -> int:
        self.page.evaluate("1")  # a round trip, so events the browser already sent have arrived
        return len(self.urls)

    def wait_for(self, count: int, *, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while self.count < count:
            assert time.monotonic() < deadline, f"expected {count} requests, saw {self.urls}"
            self.page.wait_for_timeout(50)


def wait_until(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def open_customer(page: Page, dashboard_url: str, customer_id: str = GRACE) -> None:
    page.goto(f"{dashboard_url}/customers/{customer_id}/")
    expect(page.locator("#customer-name")).to_be_visible()
    page.evaluate("window.__noReload = true")


# --- With webhooks -----------------------------------------------------------------------------


def test_a_pending_page_turns_approved_by_itself_when_the_stand_in_sends_a_webhook(
    logged_in_page, dashboard_url, own_stand_in, settings, csp_violations
):
    settings.ALIGN_WEBHOOKS_ENABLED = True
    settings.DASHBOARD_WATCH_POLL_SECONDS = 1
    page = logged_in_page
    open_customer(page, dashboard_url)
    expect(page.locator(".kyc-status")).to_contain_text("Pending")
    expect(page.locator("[data-watch-line]")).to_have_text("Updates by itself when Align reports a change.")
    calls_before = own_stand_in.calls

    approve_in_align(own_stand_in, GRACE)

    change = page.locator("[data-kyc-change]")
    expect(change).to_have_text(re.compile(r"^Status changed: Pending · Form started → Approved, \d\d:\d\d$"))
    expect(page.locator(".kyc-status")).to_contain_text("Approved")
    expect(page.locator("#kyc-change-announcer")).to_have_text(change.inner_text())
    expect(page.locator("[data-watch-line]")).to_have_count(0)
    assert page.evaluate("window.__noReload") is True
    history = page.locator(".history-list")
    expect(history.locator(".history-entry").first).to_contain_text("Approved")
    expect(history).to_contain_text("Align")
    assert KycWebhookEvent.objects.get().kyc_status == "approved"
    assert own_stand_in.calls == calls_before + 2  # the simulation, and the one automatic lookup
    automatic = AuditEvent.objects.get(automatic=True)
    assert (automatic.kyc_status, automatic.is_refresh) == ("approved", True)
    assert axe_violations(page) == []
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert csp_violations == []


def test_polling_pauses_while_the_tab_is_hidden_and_checks_at_once_when_it_is_shown(
    logged_in_page, dashboard_url, own_stand_in, settings
):
    settings.ALIGN_WEBHOOKS_ENABLED = True
    page = logged_in_page
    page.clock.install()
    polls = Requests(page, "/kyc-changes/")
    open_customer(page, dashboard_url)
    expect(page.locator("[data-watch-line]")).to_be_visible()
    assert polls.count == 0

    page.clock.run_for(10 * SECOND + 500)
    polls.wait_for(1)

    page.evaluate(HIDE)
    page.clock.run_for(2 * MINUTE)
    assert polls.count == 1

    page.evaluate(SHOW)
    polls.wait_for(2)  # at once: the check that fell due while hidden
    page.clock.run_for(10 * SECOND + 500)
    polls.wait_for(3)  # then every 10 s again
    assert "?after=0" in polls.urls[-1]
    assert AuditEvent.objects.filter(automatic=True).count() == 0  # asking costs no lookup


# --- Without webhooks: the page looks the customer up again itself ------------------------------


def test_the_fallback_checks_every_minute_and_stops_once_the_status_settles(
    logged_in_page, dashboard_url, own_stand_in, settings
):
    page = logged_in_page
    page.clock.install()
    checks = Requests(page, "refresh=auto")
    open_customer(page, dashboard_url)
    line = page.locator("[data-watch-line]")
    expect(line).to_have_text(re.compile(r"^Checking every 60 s · last checked \d\d:\d\d Stop$"))

    page.clock.run_for(MINUTE + 500)
    checks.wait_for(1)
    wait_until(lambda: AuditEvent.objects.filter(automatic=True).count() == 1)
    expect(page.locator("[data-kyc-change]")).to_have_count(0)  # unchanged: the card stays
    assert page.evaluate("window.__noReload") is True

    approve_in_align(own_stand_in, GRACE)
    page.clock.run_for(MINUTE + 500)
    checks.wait_for(2)
    expect(page.locator("[data-kyc-change]")).to_contain_text(
        "Status changed: Pending · Form started → Approved"
    )
    expect(page.locator(".kyc-status")).to_contain_text("Approved")
    expect(line).to_have_count(0)

    page.clock.run_for(10 * MINUTE)
    assert checks.count == 2
    assert AuditEvent.objects.filter(automatic=True).count() == 2


def test_the_fallback_stops_after_thirty_minutes(logged_in_page, dashboard_url, own_stand_in):
    page = logged_in_page
    page.clock.install()
    checks = Requests(page, "refresh=auto")
    open_customer(page, dashboard_url)
    page.clock.run_for(31 * MINUTE)
    expect(page.locator("[data-watch-state]")).to_have_text("Stopped checking after 30 minutes")
    expect(page.locator("[data-watch-stop]")).to_be_hidden()
    seen = checks.count
    page.clock.run_for(30 * MINUTE)
    assert checks.count == seen


def test_stop_works_from_the_keyboard_and_nothing_is_asked_afterwards(
    logged_in_page, dashboard_url, own_stand_in
):
    page = logged_in_page
    page.clock.install()
    checks = Requests(page, "refresh=auto")
    open_customer(page, dashboard_url)
    stop = page.get_by_role("button", name="Stop")
    stop.focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-watch-state]")).to_have_text("Stopped checking")
    expect(stop).to_be_hidden()
    assert page.evaluate("document.activeElement.matches('[data-watch-line]')")
    page.clock.run_for(5 * MINUTE)
    assert checks.count == 0


def test_a_settled_customer_is_not_watched(logged_in_page, dashboard_url, own_stand_in):
    page = logged_in_page
    page.clock.install()
    checks = Requests(page, "refresh=auto")
    open_customer(page, dashboard_url, str(DemoId.INDIVIDUAL_APPROVED))
    expect(page.locator("[data-watch-line]")).to_have_count(0)
    page.clock.run_for(5 * MINUTE)
    assert checks.count == 0


def test_the_card_with_its_history_has_no_accessibility_violations_at_either_width(
    logged_in_page, dashboard_url, own_stand_in
):
    page = logged_in_page
    open_customer(page, dashboard_url)
    expect(page.locator("[data-watch-line]")).to_be_visible()
    expect(page.locator(".history-list")).to_be_visible()
    assert axe_violations(page) == []
    page.set_viewport_size(PHONE)
    assert axe_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
