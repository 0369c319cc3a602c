"""Search by e-mail in a real headless Chromium, against the stand-in over HTTP (issue #14).

Each outcome at desktop width and at 390 px, under the real Content-Security-Policy and axe-core,
and the e-mail never in a URL the browser requested or showed, nor in the tab title.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from customers.align import stand_in_demo
from customers.align.standin.demo import DemoId
from tests.browser.test_accessibility import PHONE, axe_violations

ADA = str(DemoId.INDIVIDUAL_APPROVED)
SHARED = "treasury@falcon-trading.example"
WIDTHS = [pytest.param({"width": 1280, "height": 900}, id="desktop"), pytest.param(PHONE, id="phone")]


@pytest.fixture
def requested(browser_page) -> list[str]:
    """Every URL the page asked for, and every address it showed."""
    urls: list[str] = []
    browser_page.on("request", lambda request: urls.append(request.url))
    browser_page.on("framenavigated", lambda frame: urls.append(frame.url))
    return urls


def search(page: Page, text: str) -> None:
    field = page.get_by_label("Customer ID or e-mail", exact=True)
    field.fill(text)
    field.press("Enter")


def assert_never_in_an_address(page: Page, urls: list[str], email: str) -> None:
    urls = [*urls, page.url]
    local = email.split("@")[0]
    assert not [url for url in urls if local in url or "%40" in url or "@" in url]


@pytest.mark.parametrize("viewport", WIDTHS)
def test_several_matches_are_a_list_that_opens_each_customer(
    logged_in_page, dashboard_url, csp_violations, requested, viewport
):
    page = logged_in_page
    page.set_viewport_size(viewport)
    search(page, SHARED)
    rows = page.locator(".match-row")
    expect(rows).to_have_count(2)
    expect(page.locator("#result")).to_contain_text("2 customers have this e-mail")
    expect(rows.first).to_contain_text("Falcon")
    expect(page).to_have_title("2 customers · KYC Desk")
    expect(page).to_have_url(f"{dashboard_url}/customers/")
    assert axe_violations(page) == []
    rows.first.click()
    expect(page.locator("#customer-name")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/customers/[0-9a-f-]{36}/$"))
    assert_never_in_an_address(page, requested, SHARED)
    assert csp_violations == []


@pytest.mark.parametrize("viewport", WIDTHS)
def test_one_match_shows_the_card_at_the_customer_address(
    logged_in_page, dashboard_url, csp_violations, requested, viewport
):
    page = logged_in_page
    page.set_viewport_size(viewport)
    search(page, "ada.lovelace@EXAMPLE.com")
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page).to_have_url(f"{dashboard_url}/customers/{ADA}/")
    expect(page).to_have_title("Customer 3f2a9c1e…7e91 · KYC Desk")
    expect(page.locator("#recent-lookups")).to_contain_text("3f2a9c1e…7e91")
    assert axe_violations(page) == []
    assert_never_in_an_address(page, requested, "ada.lovelace@example.com")
    assert csp_violations == []


@pytest.mark.parametrize("viewport", WIDTHS)
def test_no_match_names_the_environment_and_keeps_the_address_on_the_search_page(
    logged_in_page, dashboard_url, csp_violations, requested, viewport
):
    page = logged_in_page
    page.set_viewport_size(viewport)
    search(page, "nobody.here@example.com")
    expect(page.locator("#result")).to_contain_text("No customer with this e-mail in Local stand-in")
    expect(page).to_have_title("Search result · KYC Desk")
    expect(page).to_have_url(f"{dashboard_url}/customers/")
    assert axe_violations(page) == []
    assert_never_in_an_address(page, requested, "nobody.here@example.com")
    assert csp_violations == []


def test_back_after_a_search_never_brings_the_e_mail_into_the_address_bar(
    logged_in_page, dashboard_url, requested
):
    page = logged_in_page
    search(page, SHARED)
    expect(page.locator(".match-row")).to_have_count(2)
    page.locator(".match-row").nth(1).click()
    expect(page.locator("#customer-name")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(f"{dashboard_url}/customers/")
    page.wait_for_load_state("load")
    expect(page.get_by_label("Customer ID or e-mail", exact=True)).to_be_visible()
    assert_never_in_an_address(page, requested, SHARED)


def test_a_failure_shows_the_failure_card(logged_in_page, settings):
    settings.ALIGN_API_KEY = "wrong-key"
    search(logged_in_page, SHARED)
    expect(logged_in_page.locator(".failure-card")).to_contain_text("The dashboard's API key was rejected")


@pytest.fixture
def debug_run(settings):
    """A debug run, whose search page lists the stand-in's demo list; ask for it before the page."""
    settings.DEBUG = True
    stand_in_demo._read.cache_clear()


def test_an_e_mail_to_try_searches_from_a_click_or_the_keyboard_and_never_enters_an_address(
    debug_run, logged_in_page, dashboard_url, csp_violations, requested
):
    page = logged_in_page
    demo_list = page.locator("aside[aria-labelledby='demo-heading']")
    demo_list.get_by_role("button", name=f"Two customers share it {SHARED}").click()
    expect(page.locator(".match-row")).to_have_count(2)
    expect(page.get_by_label("Customer ID or e-mail", exact=True)).to_have_value(SHARED)
    expect(page).to_have_url(f"{dashboard_url}/customers/")

    typed_otherwise = demo_list.get_by_role("button", name="One match, typed in another case")
    typed_otherwise.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page).to_have_url(f"{dashboard_url}/customers/{ADA}/")
    assert axe_violations(page) == []
    for email in (SHARED, "Ada.Lovelace@EXAMPLE.com"):
        assert_never_in_an_address(page, requested, email)
    assert csp_violations == []
