"""The bulk lookup pages (customers/views/bulk.py): paste, check, start, watch, expire, download.

Batches run for real, against the stand-in over HTTP, from threads with their own database
connections: `transaction=True` throughout.
"""

import codecs
import contextlib
import csv
import io
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from django.contrib.auth.models import Permission
from django.db import DatabaseError, OperationalError
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId, DrillId, generated_customer_id
from customers.align.standin.server import serving
from customers.models import AuditEvent, BulkLookup, BulkLookupExport
from customers.services.bulk import export as bulk_export
from customers.services.bulk import paste as bulk_paste
from customers.services.bulk import runner as bulk_runner
from customers.services.bulk import state as bulk_state
from dashboard.ops.shared_cache import shared_cache
from tests.support.bulk import wait_for_batch
from tests.unit.test_health import closed_port

pytestmark = pytest.mark.django_db(transaction=True)

STAND_IN_KEY = "bulk-views-stand-in-key"
BULK = "/customers/bulk/"
START = "/customers/bulk/start/"
ADA = str(DemoId.INDIVIDUAL_APPROVED)
GRACE = str(DemoId.FORM_STARTED)
RESUBMIT = str(DemoId.RESUBMISSION_REQUIRED)
REJECTED = str(DemoId.REJECTED)
UNKNOWN = "6b1d7c1e-0000-4000-8000-000000000000"
ADDRESS_WORDS = ["St James", "SW1Y", "Sheikh Zayed", "Hafenstrasse", "20457", "Example Street"]
HTMX = {"HX-Request": "true"}


@pytest.fixture
def stub(settings):
    with serving(api_key=STAND_IN_KEY, generate=20, slow_seconds=1) as server:
        settings.ALIGN_API_BASE_URL = server.base_url
        settings.ALIGN_API_KEY = STAND_IN_KEY
        settings.ALIGN_API_TIMEOUT = 2
        yield server


@pytest.fixture
def other_client(django_user_model) -> Client:
    colleague = django_user_model.objects.create_user(username="colleague", password="irrelevant-password")
    colleague.user_permissions.add(Permission.objects.get(codename="lookup_customer"))
    client = Client()
    client.force_login(colleague)
    return client


def start_form(ids: list[str]) -> dict[str, str]:
    pasted = "\n".join(ids)
    return {
        "customer_ids": pasted,
        "checked": bulk_paste.list_digest(bulk_paste.read_customer_list(pasted).customer_ids),
    }


def start(client: Client, ids: list[str]) -> str:
    """Start a batch as the form does; its page's address."""
    response = client.post(START, start_form(ids))
    assert response.status_code == 303, response.content.decode()[:500]
    return response["Location"]


def batch_id_of(url: str) -> uuid.UUID:
    return uuid.UUID(url.rstrip("/").rsplit("/", 1)[-1])


def finished(url: str) -> str:
    wait_for_batch(batch_id_of(url))
    return url


def run(client: Client, ids: list[str]) -> str:
    return finished(start(client, ids))


def row_count(html: str) -> int:
    return len(re.findall(r'<tr class="bulk-row"', html))


def csv_of(response) -> list[list[str]]:
    """The rows of a downloaded CSV, after the byte-order mark Excel needs to read it as UTF-8."""
    assert response.content.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def made_at(export: BulkLookupExport) -> str:
    """When the download was made, as its file name says it: in the dashboard's time zone."""
    return f"{timezone.localtime(export.exported_at):%Y-%m-%d-%H%M}"


# --- Access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [BULK, f"{BULK}{uuid.uuid4()}/", f"{BULK}{uuid.uuid4()}/export.csv"])
def test_anonymous_users_are_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_users_without_the_lookup_permission_get_403(client, django_user_model, stub):
    user = django_user_model.objects.create_user(username="visitor", password="irrelevant-password")
    client.force_login(user)
    assert client.get(BULK).status_code == 403
    assert client.post(START, start_form([ADA])).status_code == 403
    assert stub.calls == 0
    assert not BulkLookup.objects.exists()


def test_the_page_is_linked_from_the_top_bar_and_the_search_page(staff_client):
    page = staff_client.get("/customers/").content.decode()
    top_bar = page.split('<header class="topbar">', 1)[1].split("</header>", 1)[0]
    assert f'href="{BULK}"' in top_bar
    assert f'href="{BULK}"' in page.split("</header>", 1)[1]


def test_bulk_is_not_read_as_a_customer_id(staff_client, stub):
    response = staff_client.get(BULK)
    assert response.status_code == 200
    assert b'name="customer_ids"' in response.content
    assert stub.calls == 0


# --- Paste and check --------------------------------------------------------------------------


def test_checking_a_list_says_what_was_read_and_fetches_nothing(staff_client, stub):
    pasted = f"{ADA}\n{ADA.upper()}, <script>alert(1)</script>; {GRACE}\tjane@example.com"
    response = staff_client.post(BULK, {"customer_ids": pasted})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Read: <strong>2 customer IDs, 1 duplicate ignored, 2 not IDs</strong>" in html
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code> — not a customer ID" in html
    assert "<code>jane@example.com</code> — an e-mail address, not a customer ID" in html
    assert "<script>alert(1)</script>" not in html
    assert "Look up 2 customers</button>" in html
    assert f'name="checked" value="{bulk_paste.list_digest([uuid.UUID(ADA), uuid.UUID(GRACE)])}"' in html
    assert stub.calls == 0
    assert not BulkLookup.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("pasted", ["", "  \n\t "])
def test_an_empty_list_asks_for_an_id(staff_client, pasted):
    response = staff_client.post(BULK, {"customer_ids": pasted})
    assert response.status_code == 400
    assert "Paste at least one customer ID." in response.content.decode()
    assert b'id="bulk-start"' not in response.content


def test_more_than_five_hundred_customers_is_refused_before_anything_is_fetched(staff_client, stub):
    ids = [generated_customer_id(index) for index in range(501)]
    response = staff_client.post(BULK, {"customer_ids": "\n".join(ids)})
    assert response.status_code == 400
    assert "That is 501 customer IDs; one bulk lookup takes at most 500." in response.content.decode()
    assert b'id="bulk-start"' not in response.content
    assert staff_client.post(START, start_form(ids)).status_code == 400
    assert stub.calls == 0
    assert not BulkLookup.objects.exists()


def test_a_paste_over_the_size_limit_is_refused_and_not_sent_back(staff_client):
    response = staff_client.post(
        BULK, {"customer_ids": ADA + " " * bulk_paste.MAX_PASTE_CHARS + "tail-marker"}
    )
    assert response.status_code == 400
    assert bulk_paste.PASTE_TOO_LONG in response.content.decode()
    assert b"tail-marker" not in response.content


def test_a_request_over_djangos_upload_limit_is_a_400_not_a_500(staff_client, settings):
    response = staff_client.post(BULK, {"customer_ids": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    assert response.status_code == 400


def test_the_form_needs_its_csrf_token(staff_user, stub):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(BULK, {"customer_ids": ADA}).status_code == 403
    assert client.post(START, start_form([ADA])).status_code == 403
    assert not BulkLookup.objects.exists()


def test_starting_needs_a_post(staff_client):
    assert staff_client.get(START).status_code == 405


def test_a_start_that_did_not_come_from_a_check_is_checked_instead(staff_client, stub):
    response = staff_client.post(START, {"customer_ids": ADA})
    assert response.status_code == 400
    assert bulk_list_changed(response)
    assert b'id="bulk-start"' in response.content
    assert stub.calls == 0
    assert not BulkLookup.objects.exists()


def test_a_list_edited_after_the_check_is_checked_again(staff_client, stub):
    form = start_form([ADA, GRACE]) | {"customer_ids": f"{ADA}\n{UNKNOWN}"}
    response = staff_client.post(START, form)
    assert response.status_code == 400
    assert bulk_list_changed(response)
    assert "Read: <strong>2 customer IDs</strong>" in response.content.decode()
    assert stub.calls == 0


def bulk_list_changed(response) -> bool:
    return "The list changed after it was checked." in response.content.decode()


# --- Start, and the batch's page ------------------------------------------------------------


def test_the_whole_flow_check_start_and_see_every_row(staff_client, staff_user, stub):
    checked = staff_client.post(BULK, {"customer_ids": f"{ADA}\n{GRACE}\nnope\n{UNKNOWN}"}).content.decode()
    digest = re.search(r'name="checked" value="([0-9a-f]+)"', checked)[1]
    response = staff_client.post(
        START, {"customer_ids": f"{ADA}\n{GRACE}\nnope\n{UNKNOWN}", "checked": digest}
    )
    assert response.status_code == 303
    url = finished(response["Location"])
    assert re.fullmatch(r"/customers/bulk/[0-9a-f-]{36}/", url)
    page = staff_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert row_count(html) == 3
    assert 'Done: <strong class="bulk-count">3 of 3</strong>' in html
    assert "1 approved · 1 pending · 1 not found" in html
    assert "read 3 customer IDs, 1 not an ID" in html
    assert f'<a href="/customers/{ADA}/" title="Open customer {ADA}">' in html
    assert "Ada Lovelace" in html
    assert "No customer with this ID" in html
    assert 'hx-trigger="every 1s"' not in html
    assert page["Cache-Control"].count("no-store") == 1
    batch = BulkLookup.objects.get()
    assert (batch.user, batch.ids_submitted, batch.ids_valid, batch.rejected) == (staff_user, 4, 3, 1)


def test_each_bulk_lookup_started_is_counted_for_metrics(staff_client, stub):
    before = REGISTRY.get_sample_value("kycdesk_bulk_lookups_total") or 0
    run(staff_client, [ADA, GRACE])
    assert REGISTRY.get_sample_value("kycdesk_bulk_lookups_total") == before + 1


def test_reloading_the_batch_page_never_runs_it_again(staff_client, stub):
    url = run(staff_client, [ADA, GRACE])
    calls = stub.calls
    for _ in range(3):
        assert staff_client.get(url).status_code == 200
    assert stub.calls == calls
    assert BulkLookup.objects.count() == 1
    assert AuditEvent.objects.count() == 2


def test_the_bulk_view_never_shows_an_address_or_an_email(staff_client, staff_user, stub):
    grant_email_export(staff_user)  # even to those who may download the e-mail addresses
    ids = [ADA, str(DemoId.CORPORATE_APPROVED), RESUBMIT, *[generated_customer_id(i) for i in range(6)]]
    html = staff_client.get(run(staff_client, ids)).content.decode()
    assert row_count(html) == len(ids)
    for words in ADDRESS_WORDS:
        assert words not in html
    assert "@example.com" not in html
    assert "@generated.example" not in html


def test_rows_use_the_single_views_words_and_links(staff_client, stub):
    html = staff_client.get(run(staff_client, [RESUBMIT, REJECTED, DrillId.SERVER_ERROR])).content.decode()
    assert "Resubmission required" in html
    assert "data-resubmission" in html
    assert "Hidden: KYC rejected. Open the customer." in html
    assert DEMO_CUSTOMERS[REJECTED]["kycs"]["kyc_flow_link"] not in html
    assert "Align is unavailable" in html
    assert "Try again shortly." in html
    assert f'hx-post="/customers/{RESUBMIT}/link-copied/"' in html
    assert html.count(">Copy link</button>") == 1


def test_a_customer_without_rails_reads_as_a_dash_not_a_python_none(staff_client, stub):
    """Issue #19, item 15: a grey monospace "None" read like a leaked Python value."""
    html = staff_client.get(run(staff_client, [str(DemoId.KYC_NOT_STARTED)])).content.decode()
    rails = html.split('<td class="bulk-rails">', 1)[1].split("</td>", 1)[0]
    assert ">None<" not in rails
    assert (
        '<span class="muted" aria-hidden="true">\u2013</span><span class="visually-hidden">No rails</span>'
        in rails
    )


def test_names_from_align_are_escaped(staff_client, serve):
    serve(ADA, change=lambda body: body.update(first_name="<img src=x onerror=alert(1)>"))
    html = staff_client.get(run(staff_client, [ADA])).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt; Lovelace" in html
    assert "<img src=x" not in html


def test_a_batch_belongs_to_its_user_alone(staff_client, other_client, stub):
    url = run(staff_client, [ADA])
    assert other_client.get(url).status_code == 404
    assert other_client.get(f"{url}?after=0", headers=HTMX).status_code == 404
    assert other_client.get(f"{url}export.csv").status_code == 404
    assert not BulkLookupExport.objects.exists()


def test_an_unknown_batch_is_not_found(staff_client):
    assert staff_client.get(f"{BULK}{uuid.uuid4()}/").status_code == 404
    assert staff_client.get(f"{BULK}not-a-batch/").status_code == 404


def test_too_many_batches_running_is_a_clear_503(staff_client, stub, monkeypatch):
    monkeypatch.setattr(bulk_runner, "_slots", threading.BoundedSemaphore(1))
    bulk_runner._slots.acquire()
    response = staff_client.post(START, start_form([ADA]))
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "Too many bulk lookups are running; try again in a minute." in response.content.decode()
    assert stub.calls == 0
    assert not BulkLookup.objects.exists()


def test_a_batch_that_cannot_be_put_on_record_is_not_started(staff_client, stub, monkeypatch):
    def refuse(**kwargs):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(BulkLookup.objects, "create", refuse)
    response = staff_client.post(START, start_form([ADA]))
    assert response.status_code == 503
    assert "Lookups are paused: the audit log can&#x27;t be written" in response.content.decode()
    assert stub.calls == 0


# --- Polling ----------------------------------------------------------------------------------


def test_a_poll_answers_only_the_rows_after_those_the_page_has(staff_client, stub):
    url = run(staff_client, [ADA, GRACE, RESUBMIT, UNKNOWN])
    whole = staff_client.get(f"{url}?after=0", headers=HTMX).content.decode()
    later = staff_client.get(f"{url}?after=3", headers=HTMX).content.decode()
    assert row_count(whole) == 4
    assert row_count(later) == 1
    assert later.split("<template>", 1)[0].strip().startswith('<tr class="bulk-row"')
    assert '<div id="bulk-progress" class="bulk-progress" hx-swap-oob="true"' in later
    assert "<!doctype" not in later.lower()


def test_the_poll_stops_once_every_row_of_a_finished_batch_is_on_the_page(staff_client, stub):
    url = run(staff_client, [ADA, GRACE])
    last = staff_client.get(f"{url}?after=1", headers=HTMX).content.decode()
    assert row_count(last) == 1
    assert 'hx-trigger="every 1s"' not in last
    assert "data-finished" in last
    assert "Done: <strong" in last


def test_a_running_batch_polls_every_second_from_where_the_page_is(staff_client, stub, settings):
    settings.ALIGN_BULK_CONCURRENCY = 1
    stub.delay = 0.3
    url = start(staff_client, [ADA, GRACE, RESUBMIT])
    html = staff_client.get(url).content.decode()
    rows = row_count(html)
    assert rows < 3
    assert (
        f'hx-get="{url}?after={rows}" hx-trigger="every 1s" hx-target="#bulk-rows" hx-swap="beforeend"'
        in html
    )
    assert "Checking <strong" in html
    finished(url)


def at_align(url: str, within: float = 5) -> tuple[bulk_state.InFlight, ...]:
    """The batch's customers at Align, once there is one."""
    deadline = time.monotonic() + within
    while not (in_flight := bulk_state.read_batch(batch_id_of(url)).in_flight):
        assert time.monotonic() < deadline, "no customer was sent to Align"
        time.sleep(0.01)
    return in_flight


def test_the_poll_names_the_customer_align_is_slow_on_with_its_seconds(staff_client, stub):
    stub.delay = 1.5
    url = start(staff_client, [ADA])
    at_align(url)
    assert "waiting for Align" not in staff_client.get(f"{url}?after=0", headers=HTMX).content.decode()
    # As if Align had had the customer for 8 s: the runner writes the progress again only at the answer.
    key = bulk_state.cache_key(batch_id_of(url), "progress")
    progress = shared_cache.get(key)
    shared_cache.set(key, progress | {"in_flight": [progress["in_flight"][0] | {"sent_at": time.time() - 8}]})
    poll = staff_client.get(f"{url}?after=0", headers=HTMX).content.decode()
    assert f'waiting for Align on <code title="{ADA}">3f2a9c1e…7e91</code> (8 s)</span>' in poll
    assert "more" not in poll.split("waiting for Align", 1)[1].split("</p>", 1)[0]
    page = staff_client.get(url).content.decode()
    assert "waiting for Align on" in page
    finished(url)
    assert "waiting for Align" not in staff_client.get(f"{url}?after=0", headers=HTMX).content.decode()


def test_the_poll_counts_the_other_customers_align_is_slow_on(staff_client, stub, settings):
    stub.delay = 1.5
    settings.ALIGN_BULK_CONCURRENCY = 3
    url = start(staff_client, [ADA, GRACE, RESUBMIT])
    deadline = time.monotonic() + 5
    while len(at_align(url)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    key = bulk_state.cache_key(batch_id_of(url), "progress")
    progress = shared_cache.get(key)
    long_ago = [entry | {"sent_at": time.time() - 5} for entry in progress["in_flight"]]
    shared_cache.set(key, progress | {"in_flight": long_ago})
    poll = staff_client.get(f"{url}?after=0", headers=HTMX).content.decode()
    assert re.search(
        r"waiting for Align on <code title=\"[0-9a-f-]{36}\">[^<]+</code> \(5 s\) and 2 more</span>", poll
    )
    finished(url)


def test_the_page_and_the_poll_render_a_row_the_same_way(staff_client, stub):
    url = run(staff_client, [RESUBMIT])
    page = staff_client.get(url).content.decode()
    poll = staff_client.get(f"{url}?after=0", headers=HTMX).content.decode()

    def row(html: str) -> str:
        return re.sub(r"\s+", " ", re.search(r'<tr class="bulk-row".*?</tr>', html, re.S)[0])

    assert row(page) == row(poll)


@pytest.mark.parametrize("after", ["x", "1.5", ""])
def test_a_poll_with_a_bad_count_is_refused_without_swapping(staff_client, stub, after):
    url = run(staff_client, [ADA])
    response = staff_client.get(f"{url}?after={after}", headers=HTMX)
    assert response.status_code == 400
    assert response["HX-Reswap"] == "none"


def test_a_poll_or_a_view_keeps_the_batch_watched(staff_client, stub):
    url = run(staff_client, [ADA])
    key = bulk_state.cache_key(batch_id_of(url), "watched")
    shared_cache.set(key, 0)
    staff_client.get(f"{url}?after=1", headers=HTMX)
    assert shared_cache.get(key) > 0


def test_a_batch_whose_process_stopped_says_so_instead_of_polling_for_ever(staff_client, stub):
    url = run(staff_client, [ADA, GRACE])
    key = bulk_state.cache_key(batch_id_of(url))
    meta = shared_cache.get(key)
    shared_cache.set(key, meta | {"status": bulk_state.RUNNING, "ends_by": time.time() - 1})
    html = staff_client.get(url).content.decode()
    assert "the dashboard restarted while this batch ran" in html
    assert 'hx-trigger="every 1s"' not in html
    shared_cache.set(key, meta | {"status": bulk_state.RUNNING, "ends_by": time.time() + 60})
    assert 'hx-trigger="every 1s"' in staff_client.get(url).content.decode()


# --- Expiry -----------------------------------------------------------------------------------


def expire(url: str) -> None:
    batch_id = batch_id_of(url)
    shared_cache.delete_many(
        [
            bulk_state.cache_key(batch_id),
            bulk_state.cache_key(batch_id, "progress"),
            bulk_state.cache_key(batch_id, "rows"),
        ]
    )


def test_an_expired_batch_says_so_and_offers_its_customers_again(staff_client, stub):
    url = run(staff_client, [GRACE, ADA, UNKNOWN])
    expire(url)
    response = staff_client.get(url)
    html = response.content.decode()
    assert response.status_code == 410
    assert "This batch has expired (results are kept 30 minutes after you last looked)." in html
    textarea = re.search(r'<textarea id="bulk-ids"[^>]*>(.*?)</textarea>', html, re.S)[1]
    assert sorted(textarea.split()) == sorted([GRACE, ADA, UNKNOWN])
    assert "Check list" in html
    assert stub.calls == 3


def test_the_poll_of_an_expired_batch_reloads_the_page(staff_client, stub):
    url = run(staff_client, [ADA])
    expire(url)
    response = staff_client.get(f"{url}?after=0", headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"


def test_someone_elses_expired_batch_is_not_found(staff_client, other_client, stub):
    url = run(staff_client, [ADA])
    expire(url)
    assert other_client.get(url).status_code == 404


# --- CSV --------------------------------------------------------------------------------------


def test_the_csv_holds_the_whole_batch_with_the_issues_columns(staff_client, staff_user, stub):
    url = run(staff_client, [ADA, RESUBMIT, UNKNOWN])
    response = staff_client.get(f"{url}export.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    name = f"kyc-bulk-{made_at(BulkLookupExport.objects.get())}-{str(batch_id_of(url))[:8]}.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert "no-store" in response["Cache-Control"]
    header, *records = csv_of(response)
    assert header == bulk_export.CSV_COLUMNS
    assert [record[0] for record in records] == [ADA, RESUBMIT, UNKNOWN]
    assert records[1][3:5] == ["Pending", "Resubmission required"]
    assert records[2][-1] == "No customer with this ID"
    for words in [*ADDRESS_WORDS, "@example.com", "@blue-harbour"]:
        assert words not in response.content.decode()
    export = BulkLookupExport.objects.get()
    assert (export.user, export.rows, export.with_email, export.status_filter) == (staff_user, 3, False, "")
    assert export.batch_id == batch_id_of(url)


@pytest.mark.parametrize(
    ("status", "expected"),
    [("needs_resubmission", [RESUBMIT]), ("pending", [GRACE, RESUBMIT]), ("not_found", [UNKNOWN])],
)
def test_the_csv_of_one_status_matches_the_tables_filter(staff_client, stub, status, expected):
    url = run(staff_client, [ADA, GRACE, RESUBMIT, UNKNOWN])
    response = staff_client.get(f"{url}export.csv?status={status}")
    assert [record[0] for record in csv_of(response)[1:]] == expected
    assert BulkLookupExport.objects.get().status_filter == status


def test_the_csv_of_one_status_is_named_after_it(staff_client, stub, settings):
    """Issue #19, item 10: the whole batch and one status of it no longer download under one name."""
    settings.TIME_ZONE = "Asia/Kolkata"  # the time in the name is the dashboard's, not UTC
    url = run(staff_client, [ADA, RESUBMIT])
    response = staff_client.get(f"{url}export.csv?status=needs_resubmission")
    export = BulkLookupExport.objects.get()
    name = f"kyc-bulk-{made_at(export)}-{str(batch_id_of(url))[:8]}-needs-resubmission.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert timezone.localtime(export.exported_at).utcoffset().total_seconds() == 5.5 * 3600


def test_the_csv_starts_with_a_byte_order_mark_so_excel_keeps_accents_and_dots(staff_client, stub):
    url = run(staff_client, [ADA, UNKNOWN])
    content = staff_client.get(f"{url}export.csv").content
    assert content.startswith(codecs.BOM_UTF8 + b"Customer ID,")
    assert content.count(codecs.BOM_UTF8) == 1


def test_an_unknown_status_for_the_csv_is_a_clear_400(staff_client, stub):
    url = run(staff_client, [ADA])
    response = staff_client.get(f"{url}export.csv?status=everything")
    assert response.status_code == 400
    assert b"No such status" in response.content
    assert not BulkLookupExport.objects.exists()


def grant_email_export(user) -> None:
    user.user_permissions.add(Permission.objects.get(codename="export_customer_email"))


def test_the_email_column_needs_the_permission(staff_client, staff_user, stub, django_user_model):
    grant_email_export(staff_user)
    url = run(staff_client, [ADA])
    header, record = csv_of(staff_client.get(f"{url}export.csv"))
    assert header[-1] == "E-mail"
    assert record[-1] == DEMO_CUSTOMERS[ADA]["email"]
    assert BulkLookupExport.objects.get().with_email


def test_without_the_permission_there_is_no_email_column(staff_client, stub):
    url = run(staff_client, [ADA])
    content = staff_client.get(f"{url}export.csv").content.decode()
    assert "E-mail" not in content
    assert DEMO_CUSTOMERS[ADA]["email"] not in content
    cached = shared_cache.get(bulk_state.cache_key(batch_id_of(url), "rows"))
    assert DEMO_CUSTOMERS[ADA]["email"] not in str(cached)


def test_a_permission_taken_away_since_the_batch_started_takes_the_email_column_with_it(
    staff_client, staff_user, stub, django_user_model
):
    grant_email_export(staff_user)
    url = run(staff_client, [ADA])
    staff_user.user_permissions.remove(Permission.objects.get(codename="export_customer_email"))
    client = Client()
    client.force_login(django_user_model.objects.get(pk=staff_user.pk))
    assert "E-mail" not in client.get(f"{url}export.csv").content.decode()
    assert not BulkLookupExport.objects.get().with_email


def test_a_permission_granted_after_the_batch_started_does_not_add_emails(staff_client, staff_user, stub):
    url = run(staff_client, [ADA])
    grant_email_export(staff_user)
    client = Client()
    client.force_login(staff_user)
    assert DEMO_CUSTOMERS[ADA]["email"] not in client.get(f"{url}export.csv").content.decode()


def test_no_csv_without_its_record_in_the_audit_log(staff_client, stub, monkeypatch):
    url = run(staff_client, [ADA])

    def refuse(**kwargs):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(BulkLookupExport.objects, "create", refuse)
    response = staff_client.get(f"{url}export.csv")
    assert response.status_code == 503
    assert "text/csv" not in response["Content-Type"]
    assert "Content-Disposition" not in response
    assert "Nothing was downloaded" in response.content.decode()
    assert "Ada Lovelace" in response.content.decode()  # the batch's page, with the notice


def test_the_csv_of_an_expired_batch_leads_to_its_page(staff_client, stub):
    url = run(staff_client, [ADA])
    expire(url)
    response = staff_client.get(f"{url}export.csv")
    assert response.status_code == 302
    assert response["Location"] == url
    assert not BulkLookupExport.objects.exists()


# --- Copy link from a row ---------------------------------------------------------------------


def test_copy_link_from_a_batch_row_is_recorded(staff_client, staff_user, stub):
    run(staff_client, [GRACE])
    response = staff_client.post(f"/customers/{GRACE}/link-copied/")
    assert response.status_code == 200
    copy = AuditEvent.objects.get(action=AuditEvent.Action.LINK_COPIED)
    assert (copy.user, str(copy.customer_id)) == (staff_user, GRACE)


# --- The cache can't be reached (issue #19, item 14) ------------------------------------------

CACHE_METHODS = ("get", "get_many", "set", "set_many", "touch", "delete", "delete_many", "add")


def redis_down() -> Exception:
    return redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")


def database_unwritable() -> Exception:
    """What the shared cache raises without REDIS_URL, where it is a table of the database."""
    return OperationalError("attempt to write a readonly database")


@contextlib.contextmanager
def cache_down(*, only_bulk_keys: bool = True, error: Callable[[], Exception] = redis_down) -> Iterator[None]:
    """The shared cache refuses as Redis does when it is down (or as the database does, without
    Redis): for bulk lookups' keys only, by default.

    Other keys still answer, as the sessions (in the cache on the second pass, with REDIS_URL) did
    for the request to arrive signed in.
    """

    def refusing(method):
        def call(keys, *args, **kwargs):
            names = keys if isinstance(keys, list | dict) else [keys]
            if not only_bulk_keys or any(str(name).startswith("kycdesk:bulk") for name in names):
                raise error()
            return method(keys, *args, **kwargs)

        return call

    with pytest.MonkeyPatch.context() as patch:
        for name in CACHE_METHODS:
            patch.setattr(shared_cache, name, refusing(getattr(shared_cache, name)))
        yield


@pytest.mark.parametrize("error", [redis_down, database_unwritable])
def test_starting_a_batch_while_the_cache_is_down_says_so_and_fetches_nothing(
    staff_client, stub, monkeypatch, error
):
    monkeypatch.setattr(bulk_runner, "_slots", threading.BoundedSemaphore(1))
    with cache_down(error=error):
        response = staff_client.post(START, start_form([ADA, GRACE]))
    html = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "<h1>Bulk lookup</h1>" in html
    assert "Lookups in bulk are unavailable right now" in html
    assert "Single lookups on the search page still work. Try again in a minute." in html
    assert "Look up 2 customers</button>" in html  # the list is still there, to try again
    assert stub.calls == 0
    assert not AuditEvent.objects.exists()
    # On record before the cache was asked, so it ends there, none of its customers sent to Align.
    batch = BulkLookup.objects.get()
    assert batch.finished_at is not None
    assert (batch.ids_valid, batch.not_fetched) == (2, 2)
    assert bulk_runner._slots.acquire(blocking=False)


def test_a_batch_started_once_the_cache_is_back_runs(staff_client, stub):
    with cache_down():
        assert staff_client.post(START, start_form([ADA])).status_code == 503
    url = run(staff_client, [ADA])
    assert row_count(staff_client.get(url).content.decode()) == 1


@pytest.mark.parametrize("error", [redis_down, database_unwritable])
def test_a_batch_page_while_the_cache_is_down_says_so(staff_client, stub, error):
    url = run(staff_client, [ADA])
    with cache_down(error=error):
        response = staff_client.get(url)
    html = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "<title>Bulk lookup unavailable · KYC Desk</title>" in html
    assert "This bulk lookup can't be shown right now" in html
    assert 'Single lookups on the <a href="/customers/">search page</a> still work' in html


def test_a_poll_while_the_cache_is_down_says_so_and_polls_on_from_where_the_page_is(staff_client, stub):
    url = run(staff_client, [ADA, GRACE])
    with cache_down():
        response = staff_client.get(f"{url}?after=1", headers=HTMX)
    poll = response.content.decode()
    assert response.status_code == 503
    assert row_count(poll) == 0
    assert '<div id="bulk-progress" class="bulk-progress" hx-swap-oob="true"' in poll
    assert f'hx-get="{url}?after=1" hx-trigger="every 1s" hx-target="#bulk-rows" hx-swap="beforeend"' in poll
    assert "The results can't be read right now" in poll
    # The cache is back: the next poll carries on from there.
    later = staff_client.get(f"{url}?after=1", headers=HTMX).content.decode()
    assert row_count(later) == 1
    assert "Done: <strong" in later


def test_a_csv_while_the_cache_is_down_says_so_and_records_no_download(staff_client, stub):
    url = run(staff_client, [ADA])
    with cache_down():
        response = staff_client.get(f"{url}export.csv")
    assert response.status_code == 503
    assert "This bulk lookup can't be shown right now" in response.content.decode()
    assert not BulkLookupExport.objects.exists()


def test_someone_elses_batch_is_not_found_while_the_cache_is_down(staff_client, other_client, stub):
    url = run(staff_client, [ADA])
    with cache_down():
        assert other_client.get(url).status_code == 404
        assert other_client.get(f"{url}?after=0", headers=HTMX).status_code == 404


def test_single_lookups_need_no_cache(staff_client, serve, settings):
    """What the 503 pages promise. With REDIS_URL the sessions are in the cache too: then, with the
    cache wholly down, nobody is signed in (docs/operations.md, "Database and cache")."""
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        pytest.skip("the sessions are in the cache")
    serve()
    with cache_down(only_bulk_keys=False):
        response = staff_client.get(f"/customers/{ADA}/")
    assert response.status_code == 200
    assert "Ada Lovelace" in response.content.decode()


def test_a_redis_that_cannot_be_reached_is_the_same_503(staff_client, stub, settings):
    """Django's Redis cache, pointed at a port nobody listens on: what its client really raises."""
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        pytest.skip("the sessions are in the cache: nobody would be signed in")
    unreachable = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
    }
    settings.CACHES = {"default": unreachable, settings.SHARED_CACHE: unreachable}
    response = staff_client.post(START, start_form([ADA]))
    assert response.status_code == 503
    assert "Lookups in bulk are unavailable right now" in response.content.decode()
    assert stub.calls == 0
