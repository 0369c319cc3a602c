"""Single sign-on in Chromium: the login page's button, the local identity provider's own form, the
way back signed in, and logout through the provider's end-session page.

The provider is the local stand-in (dashboard/accounts/sso/standin.py) in a process of its own,
enforcing S256 PKCE and the nonce; tests/system/test_single_sign_on.py covers the rest.
"""

import uuid

import pytest
from playwright.sync_api import expect

from dashboard.accounts.sso import provider


@pytest.fixture
def signed_on_dashboard(dashboard_url, settings, identity_provider):
    settings.SINGLE_SIGN_ON = True
    settings.DASHBOARD_OIDC_ISSUER = identity_provider.issuer
    settings.DASHBOARD_OIDC_CLIENT_ID = "kyc-desk-browser"
    settings.DASHBOARD_OIDC_CLIENT_SECRET = "kyc-desk-browser-secret"
    settings.DASHBOARD_OIDC_PROVIDER_NAME = "Acme SSO"
    settings.DASHBOARD_OIDC_GROUP_MAP = {"kyc-staff": "Compliance staff"}
    settings.DASHBOARD_OIDC_TRUSTED_AMR = ["mfa"]
    settings.DASHBOARD_PASSWORD_SIGN_IN = "break-glass"
    provider.forget()
    yield dashboard_url
    provider.forget()


def test_staff_click_through_the_providers_form_and_back_signed_in_then_log_out_there_too(
    browser_page, signed_on_dashboard, identity_provider
):
    page = browser_page
    sub = f"browser-{uuid.uuid4().hex[:10]}"
    identity_provider.set_user(
        sub, {"preferred_username": "grace", "given_name": "Grace", "groups": ["kyc-staff"], "amr": ["mfa"]}
    )
    page.goto(f"{signed_on_dashboard}/customers/bulk/")
    expect(page.get_by_role("group").get_by_text("Break-glass sign-in for administrators")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_hidden()

    page.get_by_role("link", name="Sign in with Acme SSO").click()
    page.wait_for_url(f"{identity_provider.issuer}/oauth2/authorize?*")
    page.locator('input[name="sub"]').fill(sub)
    page.get_by_role("button", name="Authorize").click()

    page.wait_for_url(f"{signed_on_dashboard}/customers/bulk/")
    expect(page.locator(".account-name")).to_have_text("grace")
    expect(page.get_by_role("link", name="Set up two-factor")).to_have_count(0)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{identity_provider.issuer}/oauth2/end_session?*")
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{signed_on_dashboard}/accounts/login/")
    expect(page.get_by_role("status")).to_have_text("You have been logged out.")


def test_a_forged_callback_lands_on_the_login_page_saying_nobody_was_signed_in(
    browser_page, signed_on_dashboard
):
    page = browser_page
    page.goto(f"{signed_on_dashboard}/accounts/sso/callback/?code=forged&state=forged")
    page.wait_for_url(f"{signed_on_dashboard}/accounts/login/")
    expect(page.get_by_role("status")).to_contain_text("didn't complete, so nobody was signed in")
    expect(page.get_by_role("link", name="Sign in with Acme SSO")).to_be_visible()
