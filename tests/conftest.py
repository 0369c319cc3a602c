"""Fixtures shared by the whole suite."""

import copy
import ipaddress
import re
import socket
import uuid
from pathlib import Path

import pytest
import responses
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client

from customers.stub import DEMO_CUSTOMERS, DemoId, serving

STAFF_USERNAME = "jane"
STAFF_PASSWORD = "correct horse battery"
STAND_IN_KEY = "browser-tests-stand-in-key"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class NetworkAccessBlocked(RuntimeError):
    """A test tried to reach a host outside this machine."""


def _is_loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _block_external_network(monkeypatch):
    """Every test runs offline: only loopback connections (our own test servers) may open."""
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NetworkAccessBlocked(f"tests may not reach {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def _quick_retry_backoff(monkeypatch):
    """Retries wait milliseconds in tests; the tests of the backoff itself set their own."""
    monkeypatch.setattr("customers.client.BACKOFF_BASE_SECONDS", 0.001)


@pytest.fixture
def align():
    """The Align API, mocked; a test fails if a call it registered was never made."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def customer_url():
    def build(customer_id: uuid.UUID | str) -> str:
        return f"{settings.ALIGN_API_BASE_URL}/v0/customers/{customer_id}"

    return build


@pytest.fixture
def demo_body():
    """A fresh, mutable copy of a demo customer's body, by DemoId."""

    def build(demo_id: str = DemoId.INDIVIDUAL_APPROVED) -> dict:
        return copy.deepcopy(DEMO_CUSTOMERS[str(demo_id)])

    return build


@pytest.fixture
def serve(align, customer_url, demo_body):
    """Register Align's answer for a demo customer (Ada by default), optionally changed by a callback."""

    def register(demo_id=DemoId.INDIVIDUAL_APPROVED, change=None, **kwargs):
        body = demo_body(demo_id)
        if change:
            change(body)
        align.get(customer_url(demo_id), json=body, **kwargs)
        return body

    return register


@pytest.fixture
def staff_user(django_user_model):
    user = django_user_model.objects.create_user(username=STAFF_USERNAME, password=STAFF_PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="lookup_customer"))
    return user


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def htmx_headers() -> dict[str, str]:
    return {"HX-Request": "true"}


# --- Browser tests: Debian's Chromium, the dashboard in live_server, the stand-in over HTTP ---


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}


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
