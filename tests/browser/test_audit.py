"""The audit trail as staff meet it in a real headless Chromium, against the local stand-in.

These prove what the view tests cannot: that the Copy link button's beacon really reaches the
audit log, that a failing beacon never gets in the way of the copy, and that the recent lookups
list follows the lookups out-of-band, without a reload.
"""

import re
import uuid
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone
from playwright.sync_api import Page, expect

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId, DrillId
from customers.models import AuditEvent

ADA = str(DemoId.INDIVIDUAL_APPROVED)
GRACE = str(DemoId.FORM_STARTED)
ADA_LINK = DEMO_CUSTOMERS[ADA]["kycs"]["kyc_flow_link"]
COPY_LINK = "button[data-copy-source='#kyc-flow-link']"


def look_up(page: Page, text: str) -> None:
    field = page.get_by_label("Customer ID or e-mail", exact=True)
    field.fill(text)
    field.press("Enter")


def beacon(customer_id: str) -> str:
    return f"/customers/{customer_id}/link-copied/"


@pytest.fixture
def clipboard_page(logged_in_page, dashboard_url):
    logged_in_page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard_url)
    return logged_in_page


def test_copy_link_copies_and_records_who_copied_it(clipboard_page, staff_user):
    page = clipboard_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    with page.expect_response(lambda response: response.url.endswith(beacon(ADA))) as answer:
        page.locator(COPY_LINK).click()
    assert answer.value.status == 200
    expect(page.locator(COPY_LINK)).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == ADA_LINK
    copied = AuditEvent.objects.filter(action=AuditEvent.Action.LINK_COPIED)
    assert [(event.user_id, event.customer_id, event.outcome) for event in copied] == [
        (staff_user.pk, uuid.UUID(ADA), AuditEvent.Outcome.COPIED)
    ]


def test_copy_id_is_not_a_link_copy_and_records_nothing(clipboard_page):
    page = clipboard_page
    look_up(page, ADA)
    button = page.locator("button[data-copy-done='Copied ID']")
    button.click()
    expect(button).to_have_text("Copied ID")
    assert page.evaluate("navigator.clipboard.readText()") == ADA
    page.wait_for_timeout(300)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.LINK_COPIED).exists()


def refuse_audit_writes(self, *args, **kwargs):
    raise OperationalError("database is locked")


@pytest.mark.parametrize("failure", ["server-error", "network-error", "audit-log-unavailable"])
def test_a_failing_beacon_never_gets_in_the_way_of_the_copy(clipboard_page, monkeypatch, failure):
    page = clipboard_page
    if failure == "server-error":
        page.route(re.compile(r"/link-copied/$"), lambda route: route.fulfill(status=500, body="boom"))
    elif failure == "network-error":
        page.route(re.compile(r"/link-copied/$"), lambda route: route.abort("connectionreset"))
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    if failure == "audit-log-unavailable":
        # The live server runs in this process: from now on it cannot write audit rows, so the
        # beacon itself answers 503.
        monkeypatch.setattr(AuditEvent, "save", refuse_audit_writes)
    page.evaluate("window.__noReload = true")
    button = page.locator(COPY_LINK)
    with page.expect_request(lambda request: request.url.endswith(beacon(ADA))) as sent:
        button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == ADA_LINK
    if failure != "network-error":
        answer = sent.value.response()
        assert answer.status == (503 if failure == "audit-log-unavailable" else 500)
    page.wait_for_timeout(300)  # let any error handler run before looking for its card
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page.locator("#result .failure-card")).to_have_count(0)
    expect(page.locator("[role=alert]")).to_have_count(0)
    expect(page.locator("#link-copies")).to_have_text("Not copied from KYC Desk yet.")
    assert page.evaluate("window.__noReload") is True


# --- Recent lookups -------------------------------------------------------------------------


def recent_ids(page: Page) -> list[str]:
    return page.locator("#recent-lookups li a").evaluate_all("links => links.map(link => link.title)")


def test_recent_lookups_follow_each_lookup_without_a_reload(logged_in_page, dashboard_url):
    page = logged_in_page
    recent = page.locator("#recent-lookups")
    expect(recent).to_contain_text("Customers you look up appear here")
    page.evaluate("window.__noReload = true")

    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(recent.locator("li")).to_have_count(1)
    look_up(page, GRACE)
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    expect(recent.locator("li")).to_have_count(2)

    assert recent_ids(page) == [GRACE, ADA]
    expect(recent.locator("li").nth(0)).to_contain_text("Pending")
    expect(recent.locator("li").nth(1)).to_contain_text("Approved")
    expect(recent).not_to_contain_text("Ada")
    expect(recent).not_to_contain_text("Grace")
    assert page.evaluate("window.__noReload") is True


def test_clicking_a_recent_lookup_loads_that_customer_in_place(logged_in_page, dashboard_url):
    page = logged_in_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    look_up(page, GRACE)
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    expect(page.locator("#recent-lookups li")).to_have_count(2)
    page.evaluate("window.__noReload = true")

    page.locator(f"#recent-lookups a[title='{ADA}']").click()

    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page).to_have_url(f"{dashboard_url}/customers/{ADA}/")
    expect(page.locator("#recent-lookups li a").first).to_have_attribute("title", ADA)
    assert recent_ids(page) == [ADA, GRACE]
    assert page.evaluate("window.__noReload") is True


def test_refresh_is_recorded_as_a_refresh(logged_in_page, staff_user):
    page = logged_in_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    fetched_before = page.locator(".fetched-at").get_attribute("datetime")
    page.get_by_role("link", name="Refresh").click()
    expect(page.locator(".fetched-at")).not_to_have_attribute("datetime", fetched_before)
    lookups = AuditEvent.objects.filter(user=staff_user, action=AuditEvent.Action.LOOKUP).order_by("id")
    assert [(event.customer_id, event.is_refresh) for event in lookups] == [
        (uuid.UUID(ADA), False),
        (uuid.UUID(ADA), True),
    ]


# One row per lookup as the list lays it out: each cell's box, and the badge's cut-off, if any.
RECENT_ROWS_SCRIPT = """items => items.map(item => {
    const box = cell => {
        const element = item.querySelector(cell);
        const rect = element.getBoundingClientRect();
        const lines = rect.height / parseFloat(getComputedStyle(element).lineHeight);
        return {left: rect.left, right: rect.right, top: rect.top, bottom: rect.bottom, lines};
    };
    const badge = item.querySelector(".badge");
    return {
        text: item.innerText.replace(/\\s+/g, " ").trim(),
        id: box(".recent-id"), badge: box(".badge"), time: box("time"),
        badgeCut: badge.scrollWidth > badge.clientWidth,
    };
})"""


def test_recent_lookups_keep_each_lookup_on_one_line_in_columns_at_1280_px(logged_in_page):
    page = logged_in_page
    page.set_viewport_size({"width": 1280, "height": 900})
    looked_up = [
        ADA,
        DrillId.KEY_REJECTED,
        DemoId.STATUS_NOT_SENT,
        DrillId.SERVER_ERROR,
        DemoId.KYC_NOT_STARTED,
        GRACE,
    ]
    for count, customer_id in enumerate(looked_up, start=1):
        look_up(page, customer_id)
        expect(page.locator("#recent-lookups li")).to_have_count(count)
    # Lookups from yesterday show the date too: the widest time the list has to fit.
    yesterday = timezone.now() - timedelta(days=1)
    AuditEvent.objects.filter(customer_id__in=[ADA, DrillId.KEY_REJECTED]).update(occurred_at=yesterday)
    page.reload()
    expect(page.locator("#recent-lookups").get_by_text("Lookup failed")).to_have_count(2)

    rows = page.locator("#recent-lookups li").evaluate_all(RECENT_ROWS_SCRIPT)

    for row in rows:
        cells = (row["id"], row["badge"], row["time"])
        assert max(cell["top"] for cell in cells) < min(cell["bottom"] for cell in cells), row["text"]
        assert row["id"]["lines"] < 1.5, row["text"]
        assert row["time"]["lines"] < 1.5, row["text"]
        assert not row["badgeCut"], row["text"]
    for edge in (("id", "left"), ("badge", "left"), ("time", "right")):
        assert len({round(row[edge[0]][edge[1]]) for row in rows}) == 1, edge


def test_recent_lookups_tell_failure_drills_apart_by_their_id_suffix(logged_in_page):
    page = logged_in_page
    for count, drill in enumerate([DrillId.KEY_REJECTED, DrillId.SERVER_ERROR], start=1):
        look_up(page, drill)
        expect(page.locator("#recent-lookups li")).to_have_count(count)
    ids = page.locator("#recent-lookups .recent-id").all_inner_texts()
    assert ids == ["00000000…0500", "00000000…0401"]


# --- The KYC link by KYC state, and who already copied it -------------------------------------


REJECTED = str(DemoId.REJECTED)


def test_rejected_link_stays_hidden_until_show_link_anyway_is_opened_with_the_keyboard(logged_in_page):
    page = logged_in_page
    look_up(page, REJECTED)
    expect(page.locator("#customer-name")).to_be_visible()
    link, button = page.locator("#kyc-flow-link"), page.locator(COPY_LINK)
    warning = page.get_by_text("KYC was rejected: do not onboard.")
    for hidden in (link, button, warning):
        expect(hidden).to_be_hidden()

    disclosure = page.locator("summary", has_text="Show link anyway")
    disclosure.focus()
    page.keyboard.press("Enter")

    for shown in (warning, link, button):
        expect(shown).to_be_visible()
    expect(button).not_to_have_class(re.compile(r"\bbutton-primary\b"))
    page.keyboard.press("Tab")
    expect(link).to_be_focused()
    page.keyboard.press("Tab")
    expect(button).to_be_focused()


def test_copying_the_link_says_by_you_without_a_reload(clipboard_page):
    page = clipboard_page
    look_up(page, GRACE)
    line = page.locator("#link-copies")
    expect(line).to_have_text("Not copied from KYC Desk yet.")
    page.evaluate("window.__noReload = true")

    page.locator(COPY_LINK).click()

    expect(line).to_contain_text(re.compile(r"Link last copied by you at \d\d:\d\d today"))
    expect(line).to_contain_text("Copied less than a minute ago — check before sending it again.")
    expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    assert page.evaluate("window.__noReload") is True


def test_the_last_copies_open_in_a_disclosure(logged_in_page, staff_user, django_user_model):
    colleague = django_user_model.objects.create_user(username="j.smith", password="irrelevant-password")
    for user in (colleague, staff_user, colleague):
        AuditEvent.objects.create(
            user=user,
            action=AuditEvent.Action.LINK_COPIED,
            customer_id=GRACE,
            outcome=AuditEvent.Outcome.COPIED,
        )
    page = logged_in_page
    look_up(page, GRACE)
    expect(page.locator("#link-copies")).to_contain_text("Link last copied by j.smith")
    history = page.locator("#link-copies li")
    expect(history.first).to_be_hidden()

    page.get_by_text("Last 3 copies").click()

    expect(history).to_have_count(3)
    assert [text.split(" at ")[0] for text in history.all_inner_texts()] == ["j.smith", "you", "j.smith"]
    for entry in history.all():
        expect(entry).to_be_visible()


def test_a_refused_beacon_changes_nothing_on_screen(clipboard_page):
    """A copy without a lookup on record (here: Ada's lookup moved to before this session) is refused."""
    page = clipboard_page
    look_up(page, ADA)
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    AuditEvent.objects.filter(action=AuditEvent.Action.LOOKUP).update(
        occurred_at=timezone.now() - timedelta(hours=2)
    )
    page.evaluate("window.__noReload = true")
    button = page.locator(COPY_LINK)
    with page.expect_response(lambda response: response.url.endswith(beacon(ADA))) as answer:
        button.click()
    assert answer.value.status == 409
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == ADA_LINK
    page.wait_for_timeout(300)  # let any error handler run before looking for its card
    expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    expect(page.locator("#result .failure-card")).to_have_count(0)
    expect(page.locator("[role=alert]")).to_have_count(0)
    expect(page.locator("#link-copies")).to_have_text("Not copied from KYC Desk yet.")
    assert page.evaluate("window.__noReload") is True
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.LINK_COPIED).exists()
