"""Enrolling and verifying through the real pages, under the real Content-Security-Policy."""

import re
from base64 import b32decode

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.test_accessibility import axe_violations
from tests.support.browser import ARTIFACTS

PHONE = {"width": 390, "height": 844}
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def current_code(key: bytes) -> str:
    return f"{totp(key):06d}"


@pytest.fixture
def csp_violations(logged_in_page: Page) -> list[str]:
    """Chromium reports every blocked inline style or script on the console."""
    found: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    logged_in_page.on("console", record)
    return found


def test_enrolment_at_phone_width_shows_qr_and_recovery_codes_without_csp_violations(
    logged_in_page, dashboard_url, settings, csp_violations
):
    page = logged_in_page
    settings.DASHBOARD_REQUIRE_2FA = True
    page.set_viewport_size(PHONE)

    page.goto(f"{dashboard_url}/customers/")
    expect(page).to_have_url(re.compile(r"/accounts/two-factor/setup/\?next=%2Fcustomers%2F$"))
    qr = page.locator(".qr-box svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 150
    assert page.evaluate(OVERFLOW) == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "two-factor-setup-phone.png", full_page=True)

    secret = page.locator("#secret-key").inner_text().replace(" ", "")
    page.get_by_label("6-digit code from the app").fill(current_code(b32decode(secret)))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()

    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    assert page.evaluate(OVERFLOW) == 0
    assert csp_violations == []
    assert axe_violations(page) == []
    page.screenshot(path=ARTIFACTS / "two-factor-recovery-codes-phone.png", full_page=True)

    page.get_by_role("link", name="I've saved them: continue").click()
    expect(page).to_have_url(f"{dashboard_url}/customers/")


def test_verify_page_takes_the_app_code_and_returns_to_the_page_asked_for(
    logged_in_page, dashboard_url, staff_user, csp_violations
):
    page = logged_in_page
    device = TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=True)

    page.goto(f"{dashboard_url}/customers/?customer_id=not-an-id")
    expect(page).to_have_url(re.compile(r"/accounts/two-factor/verify/\?next="))
    assert csp_violations == []
    assert axe_violations(page) == []

    field = page.get_by_label("Code from your authenticator app, or a recovery code")
    expect(field).to_be_focused()
    field.fill(f"{(int(current_code(device.bin_key)) + 500_000) % 1_000_000:06d}")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("That code didn't work")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "two-factor-verify-wrong-code.png", full_page=True)

    page.wait_for_timeout(1100)  # django-otp refuses every code for a second after a wrong one
    field.fill(current_code(device.bin_key))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{dashboard_url}/customers/?customer_id=not-an-id")
    assert csp_violations == []
