"""The dashboard works in a real Chromium under its real Content-Security-Policy, with no violations.

A `securitypolicyviolation` listener is injected by the DevTools protocol before any page script
runs (so the CSP does not apply to it) and reports every violation to the test, across
navigations; console messages about the policy are collected as well.
"""

from playwright.sync_api import Page, expect

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId, DrillId
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME

ADA = str(DemoId.INDIVIDUAL_APPROVED)


def log_in(page: Page, dashboard_url: str) -> None:
    page.get_by_label("Username").fill(STAFF_USERNAME)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{dashboard_url}/customers/")


def test_pages_are_served_with_the_content_security_policy(browser_page, dashboard_url):
    response = browser_page.goto(f"{dashboard_url}/accounts/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "'unsafe-inline'" not in policy


def test_violation_recorder_catches_a_blocked_inline_script(
    browser_page, dashboard_url, staff_user, csp_violations
):
    """Proves the zero-violation test below can fail: inline code is blocked and reported."""
    page = browser_page
    page.goto(f"{dashboard_url}/accounts/login/")
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.__inlineRan = true";
            document.body.append(script);
        }"""
    )
    page.wait_for_function("window.__cspViolations.length > 0")
    assert page.evaluate("window.__inlineRan") is None
    assert any("script-src" in violation for violation in csp_violations)


def test_whole_workflow_runs_under_the_policy_without_a_single_violation(
    debug_run, browser_page, dashboard_url, staff_user, csp_violations
):
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard_url)

    page.goto(f"{dashboard_url}/accounts/login/")
    log_in(page, dashboard_url)

    # Search through the form: htmx swaps the card in, so htmx works under the policy.
    page.evaluate("window.__noReload = true")
    field = page.get_by_label("Customer ID or e-mail", exact=True)
    field.fill(ADA)
    with page.expect_response(
        lambda response: response.request.method == "POST" and response.url.endswith("/customers/")
    ) as swap:
        field.press("Enter")
    assert "script-src 'self'" in swap.value.headers["content-security-policy"]
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    assert page.evaluate("window.__noReload") is True

    fetched_before = page.locator(".fetched-at").get_attribute("datetime")
    page.get_by_role("link", name="Refresh").click()
    expect(page.locator(".fetched-at")).not_to_have_attribute("datetime", fetched_before)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")

    copy_link = page.locator("button[data-copy-source='#kyc-flow-link']")
    copy_link.click()
    expect(copy_link).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == DEMO_CUSTOMERS[ADA]["kycs"]["kyc_flow_link"]

    page.locator(f".side-card a[href='/customers/{DrillId.SERVER_ERROR}/']").click()
    expect(page.locator("#result .failure-title")).to_contain_text("Align is unavailable")
    assert page.evaluate("window.__noReload") is True

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{dashboard_url}/accounts/login/")

    assert csp_violations == []
    assert page.evaluate("window.__cspViolations") == []


def test_htmx_runs_without_injected_styles_eval_or_script_execution(
    browser_page, dashboard_url, staff_user, csp_violations
):
    """htmx is told by its meta config not to add a <style> (which the policy would block),
    never to eval, and never to run scripts inside swapped content."""
    page = browser_page
    page.goto(f"{dashboard_url}/accounts/login/")
    log_in(page, dashboard_url)
    page.get_by_label("Customer ID or e-mail", exact=True).fill(ADA)
    page.get_by_label("Customer ID or e-mail", exact=True).press("Enter")
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    config = page.evaluate(
        """() => ({
            includeIndicatorStyles: htmx.config.includeIndicatorStyles,
            allowEval: htmx.config.allowEval,
            allowScriptTags: htmx.config.allowScriptTags,
            historyCacheSize: htmx.config.historyCacheSize,
            styleElements: document.querySelectorAll("style").length,
        })"""
    )
    assert config == {
        "includeIndicatorStyles": False,
        "allowEval": False,
        "allowScriptTags": False,
        "historyCacheSize": 0,
        "styleElements": 0,
    }
    assert csp_violations == []
