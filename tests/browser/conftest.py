"""The browser tests: Debian's Chromium driven by Playwright, the dashboard in live_server, the
stand-in over HTTP. Every test here is marked `browser` and gets a database that live_server's
thread can see (transaction=True); nothing outside this folder loads Playwright.
"""

import os
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from customers.align import stand_in_demo
from customers.align.standin.server import serving
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME, STAND_IN_KEY
from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS
from tests.support.markers import mark_folder

# Playwright's sync API runs an event loop in the test's thread, where Django would otherwise
# refuse the test's own database calls (creating users, reading the audit trail).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, pytest.mark.browser, pytest.mark.django_db(transaction=True))


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """One Debian Chromium for the whole run; Playwright never downloads a browser of its own here."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A page in a fresh context (cookies, storage, permissions), as each test starts signed out."""
    context = chromium.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def stand_in():
    with serving(api_key=STAND_IN_KEY, slow_seconds=3) as server:
        yield server


@pytest.fixture
def dashboard_url(live_server, stand_in, settings) -> str:
    """The dashboard under test, pointed at the stand-in with a short timeout."""
    settings.ALIGN_API_BASE_URL = stand_in.base_url
    settings.ALIGN_API_KEY = STAND_IN_KEY
    settings.ALIGN_API_TIMEOUT = 2
    stand_in.delay = 0
    return live_server.url


@pytest.fixture
def debug_run(settings):
    """A debug run, whose search page lists the stand-in's demo customers; ask for it before the page."""
    settings.DEBUG = True
    stand_in_demo._read.cache_clear()


@pytest.fixture
def browser_page(page, request):
    """A Chromium page that leaves a full-page screenshot of where the test ended as evidence."""
    page.set_default_timeout(5000)
    yield page
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    ARTIFACTS.mkdir(exist_ok=True)
    if not page.is_closed():
        page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


# Reports each Content-Security-Policy violation of a page to the test (csp_violations).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const report = `${event.effectiveDirective} blocked ${event.blockedURI || "inline code"}`
    + ` at ${event.sourceFile || location.pathname}:${event.lineNumber}`;
  window.__cspViolations.push(report);
  if (window.__reportCspViolation) window.__reportCspViolation(report);
});
"""


@pytest.fixture
def csp_violations(browser_page) -> list[str]:
    """Every CSP violation (and console complaint about the policy) on this page, in order.

    Request it before the page loads anything: the listener is installed for every document.
    """
    violations: list[str] = []
    browser_page.on(
        "console",
        lambda message: (
            violations.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    browser_page.expose_function("__reportCspViolation", lambda report: violations.append(report))
    browser_page.add_init_script(RECORD_VIOLATIONS)
    return violations


@pytest.fixture
def logged_in_page(browser_page, dashboard_url, staff_user):
    page = browser_page
    page.goto(f"{dashboard_url}/accounts/login/")
    page.get_by_label("Username").fill(STAFF_USERNAME)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{dashboard_url}/customers/")
    return page
