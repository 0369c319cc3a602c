"""Bulk lookup in a real headless Chromium, against a stand-in of Align over HTTP.

Paste a list, see what was read, start it, watch rows arrive by polling (no reload), filter, sort,
copy a KYC link (clipboard and audit), download the CSV, reload in the middle of a batch, all at
desktop width and at 390 px, under the real Content-Security-Policy and axe-core.
"""

import csv
import re
import time

import pytest
from playwright.sync_api import Page, expect

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId, generated_customer_id, generated_drill
from customers.align.standin.server import serving
from customers.models import AuditEvent, BulkLookup
from tests.browser.test_accessibility import PHONE, axe_violations
from tests.conftest import STAND_IN_KEY

ADA = str(DemoId.INDIVIDUAL_APPROVED)
GRACE = str(DemoId.FORM_STARTED)
RESUBMIT = str(DemoId.RESUBMISSION_REQUIRED)
REJECTED = str(DemoId.REJECTED)
UNKNOWN = "6b1d7c1e-0000-4000-8000-000000000000"
MIXED = [ADA, GRACE, RESUBMIT, REJECTED, str(DemoId.KYC_NOT_STARTED), UNKNOWN, str(DemoId.UNDER_REVIEW)]
PLAIN = [generated_customer_id(index) for index in range(60) if generated_drill(index) is None]
BATCH_URL = re.compile(r"/customers/bulk/[0-9a-f-]{36}/$")


@pytest.fixture(scope="module")
def bulk_stand_in():
    with serving(api_key=STAND_IN_KEY, generate=60, slow_seconds=3) as server:
        yield server


@pytest.fixture
def bulk_page(logged_in_page, dashboard_url, bulk_stand_in, settings):
    """Signed in, with the dashboard pointed at a stand-in that also serves generated customers."""
    settings.ALIGN_API_BASE_URL = bulk_stand_in.base_url
    bulk_stand_in.delay = 0
    return logged_in_page


def check(page: Page, dashboard_url: str, ids: list[str]) -> None:
    page.goto(f"{dashboard_url}/customers/bulk/")
    page.get_by_label("Customer IDs").fill("\n".join(ids))
    page.get_by_role("button", name="Check list").click()


def start(page: Page, dashboard_url: str, ids: list[str]) -> None:
    check(page, dashboard_url, ids)
    page.locator("#bulk-start").click()
    page.wait_for_url(BATCH_URL)


def wait_until_done(page: Page, total: int) -> None:
    expect(page.locator("#bulk-progress")).to_have_attribute("data-finished", "", timeout=20_000)
    expect(page.locator(".bulk-count")).to_have_text(f"{total} of {total}")


def read_csv(path) -> list[list[str]]:
    """The rows of a downloaded CSV; `utf-8-sig` reads past its byte-order mark, as Excel does."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file))


def visible_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "#bulk-rows tr.bulk-row:not([hidden]) th a",
        "links => links.map(link => link.getAttribute('href').split('/')[2])",
    )


def test_paste_check_and_watch_rows_arrive_without_a_reload(
    bulk_page, dashboard_url, bulk_stand_in, settings
):
    page = bulk_page
    settings.ALIGN_BULK_CONCURRENCY = 2
    bulk_stand_in.delay = 0.25
    ids = PLAIN[:14]
    check(page, dashboard_url, [*ids, "jane@example.com", ids[0].upper()])
    expect(page.locator(".bulk-read-counts")).to_have_text(
        "Read: 14 customer IDs, 1 duplicate ignored, 1 not an ID."
    )
    expect(page.locator(".bulk-rejected-list")).to_contain_text("jane@example.com — an e-mail address")
    calls_before = bulk_stand_in.calls
    page.get_by_role("button", name="Look up 14 customers").click()
    page.wait_for_url(BATCH_URL)
    page.evaluate("window.__noReload = true")
    counts = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        counts.add(page.locator(".bulk-count").inner_text())
        if page.locator("#bulk-progress[data-finished]").count():
            break
        page.wait_for_timeout(200)
    wait_until_done(page, 14)
    assert len(counts) >= 3, f"the count should move as rows arrive; saw {counts}"
    assert page.locator("#bulk-rows tr.bulk-row").count() == 14
    assert page.evaluate("window.__noReload") is True
    assert bulk_stand_in.calls - calls_before == 14
    expect(page.locator(".chip[data-filter='all'] .chip-count")).to_have_text("14")


def test_filter_and_sort_run_on_the_rows_with_the_keyboard_too(bulk_page, dashboard_url, bulk_stand_in):
    page = bulk_page
    start(page, dashboard_url, MIXED)
    wait_until_done(page, len(MIXED))
    calls = bulk_stand_in.calls

    resubmission = page.get_by_role("button", name=re.compile(r"^Needs resubmission 1$"))
    resubmission.focus()
    page.keyboard.press("Enter")
    expect(resubmission).to_have_attribute("aria-pressed", "true")
    assert visible_ids(page) == [RESUBMIT]
    download = page.get_by_role("link", name="Download CSV (Needs resubmission)")
    expect(download).to_have_attribute("href", re.compile(r"export\.csv\?status=needs_resubmission$"))

    pending = page.get_by_role("button", name=re.compile(r"^Pending 3$"))
    pending.focus()
    page.keyboard.press("Space")
    expect(resubmission).to_have_attribute("aria-pressed", "false")
    assert sorted(visible_ids(page)) == sorted([GRACE, RESUBMIT, str(DemoId.UNDER_REVIEW)])

    page.get_by_role("button", name=re.compile(r"^All 7$")).click()
    assert len(visible_ids(page)) == 7

    page.get_by_role("button", name="Name", exact=True).click()
    names = page.eval_on_selector_all("#bulk-rows tr.bulk-row", "rows => rows.map(row => row.dataset.name)")
    named = [name for name in names if name]
    assert named == sorted(named)
    assert names[-1] == ""  # the row without a name (not found) goes last

    page.get_by_role("button", name="Status", exact=True).click()
    expect(page.get_by_role("button", name="Status", exact=True)).to_have_attribute("aria-pressed", "true")
    first_two = visible_ids(page)[:2]
    assert first_two == [UNKNOWN, REJECTED]

    page.get_by_role("button", name="List order").click()
    assert visible_ids(page) == MIXED
    assert bulk_stand_in.calls == calls


def test_copy_link_puts_the_rows_link_on_the_clipboard_and_is_audited(
    bulk_page, dashboard_url, staff_user, csp_violations
):
    page = bulk_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard_url)
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    start(page, dashboard_url, [ADA, GRACE])
    wait_until_done(page, 2)
    row = page.locator(f"#bulk-rows tr:has(a[href='/customers/{GRACE}/'])")
    button = row.locator("button[data-copy-text]")
    expect(button).to_have_text("Copy link")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == DEMO_CUSTOMERS[GRACE]["kycs"]["kyc_flow_link"]
    deadline = time.monotonic() + 5
    while not AuditEvent.objects.filter(action=AuditEvent.Action.LINK_COPIED, customer_id=GRACE).exists():
        assert time.monotonic() < deadline, "the copy was not recorded"
        time.sleep(0.05)
    assert AuditEvent.objects.get(action=AuditEvent.Action.LINK_COPIED).user == staff_user
    expect(page.locator("#bulk-rows tr.bulk-row")).to_have_count(2)
    assert errors == []
    assert csp_violations == []


def test_download_the_csv_of_the_table_and_of_one_status(bulk_page, dashboard_url):
    page = bulk_page
    start(page, dashboard_url, MIXED)
    wait_until_done(page, len(MIXED))
    with page.expect_download() as whole:
        page.get_by_role("link", name="Download CSV").click()
    assert re.fullmatch(r"kyc-bulk-\d{4}-\d{2}-\d{2}-\d{4}-[0-9a-f]{8}\.csv", whole.value.suggested_filename)
    records = read_csv(whole.value.path())
    assert records[0][:3] == ["Customer ID", "Type", "Name or company"]
    assert [record[0] for record in records[1:]] == MIXED

    page.get_by_role("button", name=re.compile(r"^Rejected 1$")).click()
    with page.expect_download() as one_status:
        page.get_by_role("link", name="Download CSV (Rejected)").click()
    assert one_status.value.suggested_filename.endswith("-rejected.csv")
    rejected = read_csv(one_status.value.path())
    assert [record[0] for record in rejected[1:]] == [REJECTED]


def test_at_phone_width_the_table_is_readable_without_scrolling_sideways(bulk_page, dashboard_url):
    page = bulk_page
    page.set_viewport_size(PHONE)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard_url)
    start(page, dashboard_url, MIXED)
    wait_until_done(page, len(MIXED))
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    row = page.locator(f"#bulk-rows tr:has(a[href='/customers/{GRACE}/'])")
    expect(row.get_by_text("Grace Hopper")).to_be_visible()
    button = row.locator("button[data-copy-text]")
    button.scroll_into_view_if_needed()
    expect(button).to_be_in_viewport()
    button.click()
    expect(button).to_have_text("Copied")
    page.get_by_role("button", name=re.compile(r"^Rejected 1$")).click()
    assert visible_ids(page) == [REJECTED]
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV (Rejected)").click()
    assert download.value.suggested_filename.endswith(".csv")


def test_the_batch_survives_a_reload_in_the_middle(bulk_page, dashboard_url, bulk_stand_in, settings):
    page = bulk_page
    settings.ALIGN_BULK_CONCURRENCY = 1
    bulk_stand_in.delay = 0.2
    ids = PLAIN[:12]
    calls_before = bulk_stand_in.calls
    start(page, dashboard_url, ids)
    expect(page.locator("#bulk-rows tr.bulk-row").nth(2)).to_be_attached(timeout=10_000)
    page.reload()
    assert not page.locator("#bulk-progress[data-finished]").count()
    assert page.locator("#bulk-rows tr.bulk-row").count() >= 2
    wait_until_done(page, 12)
    assert page.locator("#bulk-rows tr.bulk-row").count() == 12
    assert sorted(visible_ids(page)) == sorted(ids)
    assert bulk_stand_in.calls - calls_before == 12
    assert BulkLookup.objects.count() == 1


def test_the_bulk_pages_have_no_accessibility_violations(bulk_page, dashboard_url, bulk_stand_in):
    page = bulk_page
    page.goto(f"{dashboard_url}/customers/bulk/")
    assert axe_violations(page) == []
    check(page, dashboard_url, [ADA, "not-an-id", "jane@example.com"])
    assert axe_violations(page) == []
    bulk_stand_in.delay = 0.3
    page.locator("#bulk-start").click()
    page.wait_for_url(BATCH_URL)
    assert axe_violations(page) == []  # while it runs
    start(page, dashboard_url, MIXED)
    wait_until_done(page, len(MIXED))
    assert axe_violations(page) == []
    page.set_viewport_size(PHONE)
    assert axe_violations(page) == []
    page.get_by_role("button", name=re.compile(r"^Not found 1$")).click()
    assert axe_violations(page) == []


def test_the_whole_bulk_workflow_runs_under_the_policy_without_a_violation(
    bulk_page, dashboard_url, csp_violations
):
    page = bulk_page
    start(page, dashboard_url, [*MIXED, *PLAIN[:10]])
    wait_until_done(page, len(MIXED) + 10)
    page.get_by_role("button", name="Status", exact=True).click()
    page.get_by_role("button", name=re.compile(r"^Approved \d+$")).click()
    page.reload()
    wait_until_done(page, len(MIXED) + 10)
    assert csp_violations == []
    assert page.evaluate("window.__cspViolations") == []


def test_an_edited_list_must_be_checked_again_before_it_starts(bulk_page, dashboard_url, bulk_stand_in):
    page = bulk_page
    calls = bulk_stand_in.calls
    check(page, dashboard_url, [ADA, GRACE])
    start_button = page.get_by_role("button", name="Look up 2 customers")
    expect(start_button).to_be_enabled()
    page.get_by_label("Customer IDs").press("End")
    page.keyboard.type(f"\n{RESUBMIT}")
    expect(start_button).to_be_disabled()
    expect(page.get_by_text("The list changed: check it again before looking it up.")).to_be_visible()
    page.get_by_role("button", name="Check list").click()
    expect(page.get_by_role("button", name="Look up 3 customers")).to_be_enabled()
    assert bulk_stand_in.calls == calls


def test_the_progress_line_names_the_customer_align_is_slow_on_and_counts_its_seconds(
    bulk_page, dashboard_url, bulk_stand_in, settings
):
    page = bulk_page
    settings.ALIGN_API_TIMEOUT = 10
    bulk_stand_in.delay = 6
    start(page, dashboard_url, [ADA])
    waiting = page.locator("#bulk-progress .bulk-waiting")
    expect(waiting).to_have_text(re.compile(r"waiting for Align on 3f2a9c1e…7e91 \((3|4) s\)$"), timeout=6000)
    first = int(re.search(r"\((\d) s\)", waiting.inner_text())[1])
    # Each poll counts on from when the customer was sent, and the line is gone once it is answered.
    expect(waiting).to_have_text(re.compile(rf"\({first + 1} s\)$"), timeout=3000)
    wait_until_done(page, 1)
    expect(waiting).to_have_count(0)
