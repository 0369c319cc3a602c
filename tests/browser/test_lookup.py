"""The lookup page in a real headless Chromium, against the local stand-in over real HTTP.

These prove what unit tests cannot: that htmx swaps the result in place (including error
answers, which htmx 2 ignores by default), that the address bar and history follow the
customer, and that Copy link really puts the link on the clipboard.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId, DrillId

ADA = str(DemoId.INDIVIDUAL_APPROVED)
GRACE = str(DemoId.FORM_STARTED)


def look_up(page: Page, text: str) -> None:
    field = page.get_by_label("Customer ID or e-mail", exact=True)
    field.fill(text)
    field.press("Enter")


def test_lookup_swaps_in_place_and_pushes_the_customer_address(logged_in_page, dashboard_url, stand_in):
    page = logged_in_page
    page.evaluate("window.__noReload = 'still here'")
    stand_in.delay = 0.6
    look_up(page, f"   {ADA.upper()}  ")
    expect(page.locator(".lookup-progress")).to_be_visible()
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page.locator(".lookup-progress")).to_be_hidden()
    assert page.evaluate("window.__noReload") == "still here"
    assert page.url == f"{dashboard_url}/customers/{ADA}/"


def test_invalid_input_shows_inline_message_and_never_calls_align(logged_in_page, stand_in):
    page = logged_in_page
    calls_before = stand_in.calls
    look_up(page, "3f2a-not-an-id")
    expect(page.locator("#customer-id-status")).to_contain_text("Not a customer ID")
    expect(page.locator("#result")).to_contain_text("Nothing was looked up")
    expect(page.get_by_label("Customer ID or e-mail", exact=True)).to_have_attribute("aria-invalid", "true")
    assert stand_in.calls == calls_before
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page.locator("#customer-id-status")).to_have_text("")
    field = page.get_by_label("Customer ID or e-mail", exact=True)
    expect(field).not_to_have_attribute("aria-invalid", "true")


@pytest.mark.parametrize(
    ("customer_id", "title"),
    [
        ("6b1d7c1e-0000-4000-8000-000000000000", "No customer with this ID"),
        (DrillId.KEY_REJECTED, "The dashboard's API key was rejected"),
        (DrillId.SERVER_ERROR, "Align is unavailable"),
        (DrillId.RATE_LIMITED, "Align is rate-limiting us"),
        (DrillId.MALFORMED, "Unexpected response from Align"),
    ],
)
def test_error_answers_are_swapped_into_the_result_area(logged_in_page, customer_id, title):
    page = logged_in_page
    page.evaluate("window.__noReload = true")
    look_up(page, str(customer_id))
    expect(page.locator("#result .failure-title")).to_contain_text(title)
    assert page.evaluate("window.__noReload") is True


def test_timeout_is_swapped_into_the_result_area(logged_in_page, settings):
    settings.ALIGN_API_TIMEOUT = 0.5
    look_up(logged_in_page, DrillId.SLOW)
    expect(logged_in_page.locator("#result .failure-title")).to_contain_text("Align did not answer in time")


def test_wrong_api_key_is_reported_without_showing_any_key(logged_in_page, settings):
    settings.ALIGN_API_KEY = "revoked-key-7f3a"
    look_up(logged_in_page, ADA)
    expect(logged_in_page.locator("#result .failure-title")).to_contain_text(
        "The dashboard's API key was rejected"
    )
    assert "revoked-key-7f3a" not in logged_in_page.content()


def test_unreachable_align_is_swapped_into_the_result_area(logged_in_page, settings):
    settings.ALIGN_API_BASE_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there
    look_up(logged_in_page, ADA)
    expect(logged_in_page.locator("#result .failure-title")).to_contain_text("Align is unavailable")


def test_copy_link_puts_exactly_the_flow_link_on_the_clipboard(logged_in_page, dashboard_url):
    page = logged_in_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard_url)
    look_up(page, ADA)
    button = page.locator("button[data-copy-source='#kyc-flow-link']")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == DEMO_CUSTOMERS[ADA]["kycs"]["kyc_flow_link"]


def test_copy_link_falls_back_to_selecting_the_link_when_the_clipboard_is_refused(logged_in_page):
    page = logged_in_page
    look_up(page, ADA)
    page.evaluate("() => { navigator.clipboard.writeText = () => Promise.reject(new Error('denied')); }")
    button = page.locator("button[data-copy-source='#kyc-flow-link']")
    button.click()
    expect(button).to_contain_text("Selected")
    assert page.evaluate("window.getSelection().toString()") == DEMO_CUSTOMERS[ADA]["kycs"]["kyc_flow_link"]


def test_refresh_fetches_again_in_place_and_updates_fetched_at(logged_in_page, stand_in):
    page = logged_in_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    page.evaluate("window.__noReload = true")
    fetched_before = page.locator(".fetched-at").get_attribute("datetime")
    calls_before = stand_in.calls
    page.get_by_role("link", name="Refresh").click()
    expect(page.locator(".fetched-at")).not_to_have_attribute("datetime", fetched_before)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    assert stand_in.calls == calls_before + 1
    assert page.evaluate("window.__noReload") is True


def test_back_and_forward_restore_the_right_customer(logged_in_page, dashboard_url):
    page = logged_in_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    look_up(page, GRACE)
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    page.go_back()
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    assert page.url == f"{dashboard_url}/customers/{ADA}/"
    page.go_forward()
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    assert page.url == f"{dashboard_url}/customers/{GRACE}/"


def test_deep_link_in_a_new_page_renders_the_same_card_as_the_swap(logged_in_page, dashboard_url):
    page = logged_in_page
    look_up(page, GRACE)
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    expect(page.locator("#result .htmx-added, #result .htmx-settling")).to_have_count(0)
    swapped = page.inner_html("#result")
    new_page = page.context.new_page()
    new_page.goto(page.url)
    deep_linked = new_page.inner_html("#result")
    new_page.close()

    def without_time(html: str) -> str:
        html = re.sub(r"<time[^>]*>.*?</time>", "", html)
        # The History grows by the deep link's own lookup (tests/unit/test_history.py checks its lines).
        html = re.sub(r'<ol class="history-list">.*?</ol>', "", html, flags=re.S)
        return re.sub(r"\s+", " ", html).strip()

    assert without_time(swapped) == without_time(deep_linked)


def test_address_shows_only_for_approved_customers(logged_in_page):
    page = logged_in_page
    look_up(page, ADA)
    expect(page.locator("address.address")).to_contain_text("St James")
    look_up(page, DemoId.RESUBMISSION_REQUIRED)
    expect(page.locator("#customer-name")).to_have_text("Blue Harbour Logistics GmbH")
    expect(page.locator("address")).to_have_count(0)
    expect(page.locator("#result")).to_contain_text("Hidden until KYC is approved.")
    assert "Hafenstrasse" not in page.content()


def test_expired_session_sends_the_whole_page_to_login(logged_in_page):
    page = logged_in_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    page.context.clear_cookies()
    page.get_by_role("link", name="Refresh").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/customers/"))
    expect(page.locator(".customer-card")).to_have_count(0)


def test_a_second_lookup_replaces_one_still_in_flight(logged_in_page, dashboard_url, stand_in):
    """Staff who paste a new ID before the first answer arrives see the new customer, not the old."""
    page = logged_in_page
    stand_in.delay = 0.8
    look_up(page, ADA)
    expect(page.locator(".lookup-progress")).to_be_visible()
    look_up(page, GRACE)
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    page.wait_for_timeout(1200)
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    assert page.url == f"{dashboard_url}/customers/{GRACE}/"


# --- Nothing on screen may suggest the wrong customer ---------------------------------------

FIELD = "#customer-id"


def demo_link(page: Page, customer_id: str):
    return page.locator(f".demo-list a[href='/customers/{customer_id}/']")


def test_the_field_names_the_customer_shown_after_every_kind_of_swap(debug_run, logged_in_page):
    page = logged_in_page
    look_up(page, f"urn:uuid:{ADA.upper()}")
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page.locator(FIELD)).to_have_value(ADA)

    demo_link(page, GRACE).click()
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    expect(page.locator(FIELD)).to_have_value(GRACE)

    page.locator(f"#recent-lookups a[href='/customers/{ADA}/']").click()
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page.locator(FIELD)).to_have_value(ADA)

    page.locator(FIELD).fill("something typed but not sent")
    page.get_by_role("link", name="Refresh").click()
    expect(page.locator(FIELD)).to_have_value(ADA)

    demo_link(page, DrillId.SERVER_ERROR).click()
    expect(page.locator("#result .failure-title")).to_contain_text("Align is unavailable")
    expect(page.locator(FIELD)).to_have_value(str(DrillId.SERVER_ERROR))

    page.go_back()
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page.locator(FIELD)).to_have_value(ADA)
    page.wait_for_load_state("load")
    page.go_forward()
    expect(page.locator("#result .failure-title")).to_contain_text("Align is unavailable")
    expect(page.locator(FIELD)).to_have_value(str(DrillId.SERVER_ERROR))


def test_an_id_pasted_while_a_lookup_runs_is_not_overwritten_by_its_answer(logged_in_page, stand_in):
    page = logged_in_page
    stand_in.delay = 0.8
    look_up(page, ADA)
    expect(page.locator(".lookup-progress")).to_be_visible()
    page.locator(FIELD).fill(GRACE)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page.locator(FIELD)).to_have_value(GRACE)
    page.locator(FIELD).press("Enter")
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")


def test_invalid_input_leaves_the_field_as_typed(logged_in_page):
    page = logged_in_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    look_up(page, "Ada Lovelace")
    expect(page.locator("#result")).to_contain_text("Nothing was looked up")
    expect(page.locator(FIELD)).to_have_value("Ada Lovelace")


def test_invalid_input_after_a_customer_leaves_an_address_that_does_not_look_anyone_up(
    logged_in_page, dashboard_url, stand_in
):
    page = logged_in_page
    sent = []
    page.on("request", lambda request: sent.append(request.url))
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    look_up(page, "jane.doe@example")  # not a whole e-mail address: invalid input, not a search
    expect(page.locator("#result")).to_contain_text("Nothing was looked up")
    expect(page).to_have_url(f"{dashboard_url}/customers/")
    calls_before = stand_in.calls
    page.reload()
    expect(page.locator(".empty-card")).to_be_visible()
    expect(page.locator(".customer-card")).to_have_count(0)
    assert stand_in.calls == calls_before
    assert not [url for url in sent if "jane.doe" in url or "example.com" in url]
    page.go_back()
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")


def test_the_tab_title_follows_swaps_and_matches_the_deep_link(logged_in_page, dashboard_url):
    page = logged_in_page
    drill = str(DrillId.KEY_REJECTED)
    for typed, title, deep_path in (
        (GRACE, f"Customer {GRACE[:8]}…{GRACE[-4:]} · KYC Desk", f"/customers/{GRACE}/"),
        (drill, f"Customer {drill[:8]}…{drill[-4:]} · KYC Desk", f"/customers/{drill}/"),
        ("not an id", "Nothing was looked up · KYC Desk", "/customers/not-an-id/"),
    ):
        look_up(page, typed)
        expect(page).to_have_title(title)
        deep = page.context.new_page()
        deep.goto(f"{dashboard_url}{deep_path}")
        assert deep.title() == title
        deep.close()


def test_empty_input_is_explained_once_beside_the_field(logged_in_page, stand_in):
    page = logged_in_page
    calls_before = stand_in.calls
    look_up(page, "")
    expect(page.locator("#customer-id-status")).to_have_text("Paste a customer ID first.")
    expect(page.locator(FIELD)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#result .failure-title")).to_have_text("!Nothing was looked up")
    expect(page.get_by_text("Paste a customer ID first.")).to_have_count(1)
    assert stand_in.calls == calls_before


def test_a_slow_lookup_of_another_customer_hides_the_previous_card(debug_run, logged_in_page, stand_in):
    page = logged_in_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    stand_in.delay = 1.6
    demo_link(page, GRACE).click()
    progress = page.locator(".lookup-progress")
    expect(progress).to_contain_text(f"Looking up {GRACE}")
    expect(page.locator("#customer-name")).to_be_hidden()
    expect(page.locator(".lookup-skeleton")).to_be_visible()
    expect(page.locator(FIELD)).to_have_value(GRACE)
    expect(progress.locator(".lookup-elapsed")).to_have_text("1 s")
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    expect(progress).to_be_hidden()
    expect(page.locator(".lookup-skeleton")).to_be_hidden()


def test_a_lookup_started_far_down_the_side_column_on_a_phone_is_brought_into_sight(
    debug_run, logged_in_page, stand_in
):
    page = logged_in_page
    page.set_viewport_size({"width": 390, "height": 844})
    stand_in.delay = 1
    link = demo_link(page, DrillId.MALFORMED)
    link.scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 0
    link.click()
    expect(page.locator(".lookup-progress")).to_be_in_viewport()
    expect(page.locator(FIELD)).to_be_in_viewport()


def test_a_slow_refresh_keeps_the_same_customer_dimmed_and_says_so(logged_in_page, stand_in):
    page = logged_in_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    stand_in.delay = 1
    page.get_by_role("link", name="Refresh").click()
    expect(page.locator(".lookup-progress")).to_contain_text(f"Refreshing {ADA}")
    expect(page.locator("#customer-name")).to_be_visible()
    expect(page.locator(".lookup-skeleton")).to_be_hidden()
    expect(page.locator(".lookup-progress")).to_be_hidden()


def test_try_again_waits_out_the_rate_limit(logged_in_page, stand_in):
    page = logged_in_page
    page.clock.install()
    look_up(page, DrillId.RATE_LIMITED)
    button = page.get_by_role("link", name="Try again")
    expect(button).to_have_attribute("aria-disabled", "true")
    expect(button).to_contain_text("in 30 s")
    expect(page.locator("#result")).to_contain_text("Align asked us to wait 30 seconds.")
    calls_before = stand_in.calls
    button.click(force=True)
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert stand_in.calls == calls_before
    page.clock.fast_forward(10_000)
    expect(button).to_contain_text("in 20 s")
    page.clock.fast_forward(21_000)
    expect(button).not_to_have_attribute("aria-disabled", "true")
    expect(button).to_have_text("Try again")
    with page.expect_response(lambda response: "refresh=1" in response.url):
        button.click()
    assert stand_in.calls == calls_before + 1


@pytest.mark.parametrize(
    ("drill", "offers_try_again"),
    [
        (DrillId.SERVER_ERROR, True),  # amber: transient
        (DrillId.KEY_REJECTED, False),  # red: an administrator must fix it
        (DrillId.MALFORMED, False),  # red
        ("6b1d7c1e-0000-4000-8000-000000000000", False),  # blue: check the ID
    ],
)
def test_only_transient_failures_offer_try_again(logged_in_page, drill, offers_try_again):
    page = logged_in_page
    look_up(page, str(drill))
    expect(page.locator("#result .failure-card")).to_be_visible()
    expect(page.get_by_role("link", name="Try again")).to_have_count(1 if offers_try_again else 0)


def test_the_rate_limit_countdown_is_said_once_after_each_kind_of_swap(debug_run, logged_in_page, stand_in):
    """Each swap counts down on its own button only, never adding to one that already counts."""
    page = logged_in_page
    page.clock.install()
    button = page.get_by_role("link", name="Try again")
    with page.expect_response(lambda response: response.url.endswith(f"/{DrillId.RATE_LIMITED}/")):
        demo_link(page, DrillId.RATE_LIMITED).click()
    expect(button).to_have_text(re.compile(r"^Try again in 30 s$"))
    # The card this lookup swaps in, not the one still on screen while it runs.
    with page.expect_response(lambda response: response.request.method == "POST"):
        look_up(page, DrillId.RATE_LIMITED)
    expect(button).to_have_text(re.compile(r"^Try again in 30 s$"))
    page.clock.fast_forward(31_000)
    expect(button).to_have_text("Try again")
    button.click()
    expect(button).to_have_attribute("aria-disabled", "true")
    expect(button).to_have_text(re.compile(r"^Try again in 30 s$"))
