"""The top bar on a phone (issue #19, item 16): who is signed in stays visible, beside Log out."""

from playwright.sync_api import expect

from tests.browser.test_accessibility import PHONE


def test_on_a_phone_the_username_and_log_out_share_the_first_row_and_the_links_the_second(logged_in_page):
    page = logged_in_page
    page.set_viewport_size(PHONE)
    page.reload()
    name = page.locator(".account-name")
    log_out = page.get_by_role("button", name="Log out")
    brand = page.locator(".brand-mark")
    bulk = page.locator(".account-nav").get_by_role("link", name="Bulk lookup")
    expect(name).to_be_visible()
    expect(name).to_have_text("jane")
    brand_box, name_box, log_out_box, bulk_box = (
        locator.bounding_box() for locator in (brand, name, log_out, bulk)
    )
    first_row = brand_box["y"] + brand_box["height"]
    assert name_box["y"] < first_row
    assert log_out_box["y"] < first_row
    assert bulk_box["y"] >= first_row
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(page.get_by_role("link", name="KYC Desk")).to_be_visible()
