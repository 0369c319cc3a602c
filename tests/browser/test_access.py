"""Logging in and out in a real headless Chromium."""

import re

from playwright.sync_api import expect

from customers.align.standin.demo import DemoId
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME

ADA = str(DemoId.INDIVIDUAL_APPROVED)


def test_wrong_password_shows_an_error_and_right_one_lands_in_the_id_field(
    browser_page, dashboard_url, staff_user
):
    page = browser_page
    page.goto(f"{dashboard_url}/customers/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/customers/$"))
    page.get_by_label("Username").fill(STAFF_USERNAME)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("enter a correct username and password")

    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{dashboard_url}/customers/")
    expect(page.get_by_label("Customer ID or e-mail", exact=True)).to_be_focused()


def test_logout_returns_to_login_and_back_shows_no_customer_data(logged_in_page, dashboard_url):
    page = logged_in_page
    page.goto(f"{dashboard_url}/customers/{ADA}/")
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{dashboard_url}/accounts/login/")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert "Ada Lovelace" not in page.content()
    assert "ada.lovelace@example.com" not in page.content()


def test_logout_says_you_have_been_logged_out_once(logged_in_page, dashboard_url):
    page = logged_in_page
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{dashboard_url}/accounts/login/")
    expect(page.get_by_role("status")).to_have_text("You have been logged out.")
    page.reload()
    expect(page.get_by_text("You have been logged out.")).to_have_count(0)


def test_top_bar_with_every_account_link_fits_a_phone(logged_in_page, staff_user):
    staff_user.is_staff = True
    staff_user.save()
    page = logged_in_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    account = page.locator(".topbar .account")
    for control in (
        account.get_by_role("link", name="Set up two-factor"),
        account.get_by_role("link", name="Admin"),
        account.get_by_role("button", name="Log out"),
    ):
        box = control.bounding_box()
        assert box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
