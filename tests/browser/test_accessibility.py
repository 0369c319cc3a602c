"""Keyboard use, phone width and axe-core checks of every page staff see, in headless Chromium."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from customers.align.standin.demo import DemoId

ADA = str(DemoId.INDIVIDUAL_APPROVED)
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
FOCUSED_LABEL = "() => { const e = document.activeElement; return e.id || e.textContent.trim(); }"


def axe_violations(page: Page) -> list[str]:
    """Run axe-core (from node_modules, never a CDN) and list its findings of any impact.

    The bar is zero serious or critical findings; the pages meet zero of any impact, so the test
    holds them there rather than letting moderate findings creep in.
    """
    assert AXE.exists(), "axe-core is missing: run `make test`, which installs it with npm"
    # Evaluated through DevTools, which the page's Content-Security-Policy does not govern; a
    # script tag would be an inline script, and the policy rightly blocks those.
    page.evaluate(AXE.read_text())
    results = page.evaluate("async () => await axe.run(document)")
    return [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']]}"
        for violation in results["violations"]
    ]


def test_login_page_has_no_accessibility_violations(browser_page, dashboard_url):
    browser_page.goto(f"{dashboard_url}/accounts/login/")
    assert axe_violations(browser_page) == []


@pytest.mark.parametrize(
    "path",
    [
        "/customers/",
        f"/customers/{ADA}/",
        f"/customers/{DemoId.RESUBMISSION_REQUIRED}/",
        f"/customers/{DemoId.KYC_NOT_STARTED}/",
        "/customers/?customer_id=not-an-id",
        "/customers/6b1d7c1e-0000-4000-8000-000000000000/",
    ],
)
def test_lookup_pages_have_no_accessibility_violations(logged_in_page, dashboard_url, path):
    logged_in_page.goto(f"{dashboard_url}{path}")
    assert axe_violations(logged_in_page) == []


def test_keyboard_reaches_field_submit_refresh_and_copy_link_with_visible_focus(
    logged_in_page, dashboard_url
):
    page = logged_in_page
    page.goto(f"{dashboard_url}/customers/{ADA}/")
    page.locator(".skip-link").focus()
    wanted = ["customer-id", "Look up", "refresh-button", "Copy link"]
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        label = page.evaluate(FOCUSED_LABEL)
        if label in wanted and label not in reached:
            reached.append(label)
            outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", f"{label} has no visible focus outline"
        if len(reached) == len(wanted):
            break
    assert reached == wanted


def test_enter_in_the_field_looks_up_without_a_mouse(logged_in_page):
    page = logged_in_page
    expect(page.get_by_label("Customer ID or e-mail", exact=True)).to_be_focused()
    page.keyboard.type(ADA)
    page.keyboard.press("Enter")
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")


@pytest.mark.parametrize("path", ["/customers/", f"/customers/{ADA}/", "/customers/?customer_id=nope"])
def test_phone_width_needs_no_horizontal_scrolling(logged_in_page, dashboard_url, path):
    page = logged_in_page
    page.set_viewport_size(PHONE)
    page.goto(f"{dashboard_url}{path}")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
