"""Bulk lookups (customers/services/bulk.py): reading a pasted list, the rows, the CSV, and running a batch.

Batches run for real: their threads fetch from a stand-in of Align over HTTP on loopback, and write
the audit trail from their own database connections, hence `transaction=True` for those tests.
"""

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection

from customers.align import client
from customers.align.records import Customer
from customers.align.standin.demo import (
    DEMO_CUSTOMERS,
    DemoId,
    DrillId,
    GeneratedDrill,
    generated_customer_id,
    generated_drill,
)
from customers.align.standin.server import StubHandler, StubServer
from customers.models import AuditEvent, BulkLookup
from customers.services import audit
from customers.services.bulk import export as bulk_export
from customers.services.bulk import paste as bulk_paste
from customers.services.bulk import rows as bulk_rows
from customers.services.bulk import runner as bulk_runner
from customers.services.bulk import state as bulk_state
from customers.services.bulk.rows import Category
from customers.services.decisions import AUDIT_UNAVAILABLE, describe_failure, kyc_warnings
from dashboard.ops.shared_cache import shared_cache
from tests.support.bulk import wait_for_batch

STAND_IN_KEY = "bulk-tests-stand-in-key"
ADA = str(DemoId.INDIVIDUAL_APPROVED)
GRACE = str(DemoId.FORM_STARTED)
UNKNOWN = "6b1d7c1e-0000-4000-8000-000000000000"
# The first generated customers that answer normally (every GENERATED_DRILL_EVERY, three are drills).
PLAIN = [generated_customer_id(index) for index in range(200) if generated_drill(index) is None]
RATE_LIMITED_ONCE = next(
    generated_customer_id(index)
    for index in range(50)
    if generated_drill(index) == GeneratedDrill.RATE_LIMITED_ONCE
)


# --- Reading the pasted list ----------------------------------------------------------------


@pytest.mark.parametrize("separator", ["\n", "\r\n", ",", ";", "\t", " ", ", ", " ;\t", "\u00a0"])
def test_every_separator_splits_the_list(separator):
    found = bulk_paste.read_customer_list(separator.join([ADA, GRACE, UNKNOWN]))
    assert [str(customer_id) for customer_id in found.customer_ids] == [ADA, GRACE, UNKNOWN]
    assert found.can_start


def test_mixed_separators_and_blank_lines_read_as_one_list():
    text = f"\n\n{ADA},{GRACE}\r\n\t{UNKNOWN} ;\n\n"
    assert bulk_paste.read_customer_list(text).customer_ids == tuple(
        uuid.UUID(i) for i in (ADA, GRACE, UNKNOWN)
    )


def test_each_entry_is_read_like_the_single_lookup_reads_its_field():
    forms = [
        ADA.upper(),
        "{" + GRACE + "}",
        f"urn:uuid:{UNKNOWN}",
        f"https://kyc-desk.example/customers/{DemoId.REJECTED}/",
        str(DemoId.UNDER_REVIEW).replace("-", ""),
    ]
    found = bulk_paste.read_customer_list("\n".join(forms))
    assert [str(i) for i in found.customer_ids] == [ADA, GRACE, UNKNOWN, DemoId.REJECTED, DemoId.UNDER_REVIEW]
    assert found.rejected_count == 0


def test_duplicates_after_canonicalisation_count_once_in_first_seen_order():
    found = bulk_paste.read_customer_list(f"{GRACE}\n{ADA}\n{ADA.upper()}\n{{{ADA}}}\n{GRACE}")
    assert [str(i) for i in found.customer_ids] == [GRACE, ADA]
    assert found.duplicates == 3
    assert found.entries == 5
    assert found.read_as == "2 customer IDs, 3 duplicates ignored"


def test_entries_that_are_not_ids_are_reported_with_a_reason_and_never_kept():
    found = bulk_paste.read_customer_list(f"{ADA}\njane.doe@example.com\n3f2a-not-an-id\n{'f' * 2001}")
    assert [str(i) for i in found.customer_ids] == [ADA]
    assert found.rejected_count == 3
    assert [(entry.text, entry.reason) for entry in found.rejected[:2]] == [
        ("jane.doe@example.com", "an e-mail address, not a customer ID"),
        ("3f2a-not-an-id", "not a customer ID"),
    ]
    assert found.rejected[2].reason == "too long to be a customer ID"
    assert found.read_as == "1 customer ID, 3 not IDs"
    assert found.can_start


def test_a_rejected_entry_is_cut_short_and_its_invisible_characters_written_out():
    found = bulk_paste.read_customer_list("x" * 80 + "\nabc\u202efdp.exe")
    long_one, bidi = found.rejected
    assert long_one.text == "x" * 59 + "…"
    assert len(long_one.text) == bulk_paste.REJECTED_SHOWN_CHARS
    assert bidi.text == "abc\\u202efdp.exe"


def test_only_the_first_hundred_rejected_entries_are_listed():
    found = bulk_paste.read_customer_list(ADA + "\n" + "\n".join(f"nope{index}" for index in range(130)))
    assert len(found.rejected) == bulk_paste.REJECTED_LISTED
    assert found.rejected_count == 130
    assert found.rejected_not_listed == 30


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t", ",;, ;"])
def test_an_empty_paste_asks_for_an_id(text):
    found = bulk_paste.read_customer_list(text)
    assert found.problem == "Paste at least one customer ID."
    assert not found.can_start


def test_a_paste_of_nothing_but_non_ids_cannot_start():
    found = bulk_paste.read_customer_list("hello world")
    assert found.problem == bulk_paste.NO_CUSTOMER_IDS
    assert found.rejected_count == 2


def test_five_hundred_customers_are_accepted():
    found = bulk_paste.read_customer_list("\n".join(generated_customer_id(index) for index in range(500)))
    assert len(found.customer_ids) == 500
    assert found.can_start


def test_more_than_five_hundred_distinct_customers_are_refused_with_a_clear_message():
    found = bulk_paste.read_customer_list("\n".join(generated_customer_id(index) for index in range(501)))
    assert not found.can_start
    assert found.problem == (
        "That is 501 customer IDs; one bulk lookup takes at most 500. "
        "Split the list and look each part up on its own."
    )


def test_duplicates_do_not_count_towards_the_limit():
    ids = [generated_customer_id(index) for index in range(500)]
    assert bulk_paste.read_customer_list("\n".join(ids + ids[:100])).can_start


def test_a_paste_too_long_to_be_a_list_of_ids_is_not_read():
    found = bulk_paste.read_customer_list(ADA + " " * bulk_paste.MAX_PASTE_CHARS)
    assert found.problem == bulk_paste.PASTE_TOO_LONG
    assert found.customer_ids == ()


def test_the_digest_names_the_list_in_its_order():
    ids = bulk_paste.read_customer_list(f"{ADA}\n{GRACE}").customer_ids
    assert bulk_paste.list_digest(ids) == bulk_paste.list_digest(list(ids))
    assert bulk_paste.list_digest(ids) != bulk_paste.list_digest(ids[::-1])


# --- Rows -----------------------------------------------------------------------------------


def customer(demo_id: str) -> Customer:
    return Customer.from_api(DEMO_CUSTOMERS[str(demo_id)], customer_id=uuid.UUID(demo_id))


@pytest.mark.parametrize(
    ("demo_id", "category", "badge", "sub_status"),
    [
        (DemoId.INDIVIDUAL_APPROVED, Category.APPROVED, "Approved", None),
        (DemoId.FORM_STARTED, Category.PENDING, "Pending", "Form started"),
        (DemoId.UNDER_REVIEW, Category.PENDING, "Pending", "Under review"),
        (DemoId.RESUBMISSION_REQUIRED, Category.PENDING, "Pending", "Resubmission required"),
        (DemoId.REJECTED, Category.REJECTED, "Rejected", None),
        (DemoId.KYC_NOT_STARTED, Category.NOT_STARTED, "Not started", None),
        (DemoId.STATUS_NOT_SENT, Category.UNKNOWN, "Unknown", None),
        (DemoId.UNRECOGNISED_VALUES, Category.UNKNOWN, "on_hold", None),
    ],
)
def test_a_row_uses_the_single_views_badges(demo_id, category, badge, sub_status):
    row = bulk_rows.customer_row(0, customer(demo_id), with_email=False)
    assert row.category == category
    assert row.status.label == badge
    assert (row.sub_status.label if row.sub_status else None) == sub_status


def test_only_pending_resubmission_needs_resubmission():
    assert bulk_rows.customer_row(
        0, customer(DemoId.RESUBMISSION_REQUIRED), with_email=False
    ).needs_resubmission
    assert not bulk_rows.customer_row(0, customer(DemoId.FORM_STARTED), with_email=False).needs_resubmission


def test_a_row_holds_name_type_and_a_compact_breakdown_but_never_the_address():
    row = bulk_rows.customer_row(3, customer(DemoId.CORPORATE_APPROVED), with_email=False)
    assert (row.position, row.name, row.customer_type.label) == (3, "Falcon Trading FZ-LLC", "Corporate")
    assert row.breakdown_text == "AED·UAEFTS ✓ USD·Wire …"
    cached = str(row.to_cache())
    assert "Sheikh Zayed" not in cached
    assert "Dubai" not in cached
    assert "treasury@" not in cached


def test_a_row_holds_the_email_only_when_asked():
    assert bulk_rows.customer_row(0, customer(ADA), with_email=True).email == "ada.lovelace@example.com"
    assert bulk_rows.customer_row(0, customer(ADA), with_email=False).email == ""


@pytest.mark.parametrize(
    ("demo_id", "has_link", "action", "reason"),
    [
        (DemoId.FORM_STARTED, True, "offer", ""),
        (DemoId.INDIVIDUAL_APPROVED, True, "offer", ""),
        (
            DemoId.STATUS_NOT_SENT,
            True,
            "offer_with_warning",
            "Align sent no overall KYC status: check it before sending the link.",
        ),
        (
            DemoId.UNRECOGNISED_VALUES,
            True,
            "offer_with_warning",
            "This KYC status is new to the dashboard: check it before sending the link.",
        ),
        (DemoId.REJECTED, False, "withhold", "Hidden: KYC rejected. Open the customer."),
        (DemoId.NO_KYC_LINK, False, "withhold", "Align sent no KYC link"),
        (DemoId.NON_WEB_LINK, False, "withhold", "Not a web link: open the customer"),
        (DemoId.KYC_NOT_STARTED, False, "withhold", "No KYC link yet"),
    ],
)
def test_a_row_offers_the_link_by_the_single_views_rules(demo_id, has_link, action, reason):
    row = bulk_rows.customer_row(0, customer(demo_id), with_email=False)
    assert bool(row.offered_link) == has_link
    assert (row.link_action, row.link_reason) == (action, reason)
    assert "javascript:" not in row.offered_link


def test_a_row_carries_the_cards_warnings():
    row = bulk_rows.customer_row(0, customer(DemoId.UNRECOGNISED_VALUES), with_email=False)
    assert row.warnings == kyc_warnings(customer(DemoId.UNRECOGNISED_VALUES).kycs)
    assert len(row.warnings) == 2
    assert bulk_rows.customer_row(0, customer(ADA), with_email=False).warnings == ()


def test_a_row_survives_the_cache_as_it_was():
    for demo_id in DEMO_CUSTOMERS:
        row = bulk_rows.customer_row(7, customer(demo_id), with_email=True)
        assert bulk_rows.BatchRow.from_cache(row.to_cache()) == row


def test_a_row_cached_before_the_link_decision_reads_and_hands_out_no_link():
    """A batch still running while the dashboard is updated was cached with the fields of before."""
    earlier = bulk_rows.customer_row(7, customer(DemoId.REJECTED), with_email=False).to_cache()
    for field in ("warnings", "link_action", "offered_link", "link_reason"):
        del earlier[field]
    earlier |= {
        "kyc_link": DEMO_CUSTOMERS[DemoId.REJECTED]["kycs"]["kyc_flow_link"],
        "link_offer": "hidden_behind_disclosure",
        "link_problem": "",
    }
    row = bulk_rows.BatchRow.from_cache(earlier)
    assert (row.name, row.status.label) == ("Marco Ferrante", "Rejected")
    assert (row.link_action, row.offered_link, row.warnings) == ("", "", ())
    failed = bulk_rows.failure_row(
        2, uuid.UUID(UNKNOWN), describe_failure(client.CustomerNotFound("x")), "not_found"
    )
    assert bulk_rows.BatchRow.from_cache(failed.to_cache()) == failed


@pytest.mark.parametrize(
    ("outcome", "category"),
    [("not_found", Category.NOT_FOUND), ("timeout", Category.FAILED), ("not_fetched", Category.NOT_FETCHED)],
)
def test_failure_rows_count_under_their_own_chip(outcome, category):
    row = bulk_rows.failure_row(0, uuid.UUID(UNKNOWN), AUDIT_UNAVAILABLE, outcome)
    assert row.category == category
    assert row.outcome_words == AUDIT_UNAVAILABLE.title


def test_sorting_by_status_puts_what_needs_attention_first():
    ranks = {
        name: bulk_rows.customer_row(0, customer(demo_id), with_email=False).status_rank
        for name, demo_id in [
            ("approved", DemoId.INDIVIDUAL_APPROVED),
            ("resubmission", DemoId.RESUBMISSION_REQUIRED),
            ("pending", DemoId.FORM_STARTED),
            ("rejected", DemoId.REJECTED),
        ]
    }
    failed = bulk_rows.failure_row(0, uuid.UUID(UNKNOWN), AUDIT_UNAVAILABLE, "timeout").status_rank
    assert failed < ranks["rejected"] < ranks["resubmission"] < ranks["pending"] < ranks["approved"]


def test_the_summary_line_counts_in_the_issues_words():
    counts = {
        "approved": 42,
        "pending": 31,
        "needs_resubmission": 12,
        "rejected": 3,
        "not_found": 2,
        "failed": 1,
    }
    assert bulk_rows.summary_line(counts) == (
        "42 approved · 31 pending (12 need resubmission) · 3 rejected · 2 not found · 1 failed"
    )
    assert bulk_rows.summary_line({"pending": 2, "not_fetched": 1}) == "2 pending · 1 not fetched"
    assert bulk_rows.summary_line({}) == ""


def test_needs_resubmission_matches_only_those_rows():
    resubmit = bulk_rows.customer_row(0, customer(DemoId.RESUBMISSION_REQUIRED), with_email=False)
    started = bulk_rows.customer_row(1, customer(DemoId.FORM_STARTED), with_email=False)
    assert bulk_rows.matches(resubmit, Category.NEEDS_RESUBMISSION)
    assert not bulk_rows.matches(started, Category.NEEDS_RESUBMISSION)
    assert bulk_rows.matches(started, Category.PENDING)


# --- CSV ------------------------------------------------------------------------------------


def test_csv_has_the_issues_columns_in_list_order():
    rows = [
        bulk_rows.customer_row(1, customer(DemoId.RESUBMISSION_REQUIRED), with_email=False),
        bulk_rows.failure_row(
            2, uuid.UUID(UNKNOWN), describe_failure(client.CustomerNotFound("x")), "not_found"
        ),
        bulk_rows.customer_row(0, customer(ADA), with_email=False),
    ]
    header, first, second, third = bulk_export.csv_records(rows, with_email=False)
    assert header == [
        "Customer ID",
        "Type",
        "Name or company",
        "KYC status",
        "Sub-status",
        "Breakdown",
        "KYC link",
        "KYC link note",
        "Warnings",
        "Outcome",
    ]
    assert first == [
        ADA,
        "Individual",
        "Ada Lovelace",
        "Approved",
        "",
        "USD·ACH: Approved; USD·Wire: Approved; EUR·SEPA: Approved",
        DEMO_CUSTOMERS[ADA]["kycs"]["kyc_flow_link"],
        "",
        "",
        "Found",
    ]
    assert second[:5] == [
        str(DemoId.RESUBMISSION_REQUIRED),
        "Corporate",
        "Blue Harbour Logistics GmbH",
        "Pending",
        "Resubmission required",
    ]
    assert third == [UNKNOWN, "", "", "", "", "", "", "", "", "No customer with this ID"]


@pytest.mark.parametrize(
    ("demo_id", "link", "note"),
    [
        (DemoId.REJECTED, "", "Hidden: KYC rejected. Open the customer."),
        (DemoId.NON_WEB_LINK, "", "Not a web link: open the customer"),
        (DemoId.NO_KYC_LINK, "", "Align sent no KYC link"),
        (DemoId.KYC_NOT_STARTED, "", "No KYC link yet"),
        (
            DemoId.STATUS_NOT_SENT,
            DEMO_CUSTOMERS[DemoId.STATUS_NOT_SENT]["kycs"]["kyc_flow_link"],
            "Align sent no overall KYC status: check it before sending the link.",
        ),
    ],
)
def test_csv_hands_out_a_link_only_where_the_table_does_and_says_why_not(demo_id, link, note):
    _, record = bulk_export.csv_records(
        [bulk_rows.customer_row(0, customer(demo_id), with_email=False)], with_email=False
    )
    assert record[6:8] == [link, note]


def test_csv_carries_the_rows_warnings():
    unrecognised = customer(DemoId.UNRECOGNISED_VALUES)
    _, record = bulk_export.csv_records(
        [bulk_rows.customer_row(0, unrecognised, with_email=False)], with_email=False
    )
    assert record[8] == " ".join(kyc_warnings(unrecognised.kycs))
    assert "the KYC status “on_hold”" in record[8]
    assert "don't treat AED · UAEFTS as usable" in record[8]


def test_csv_email_column_only_when_asked():
    rows = [bulk_rows.customer_row(0, customer(ADA), with_email=True)]
    header, record = bulk_export.csv_records(rows, with_email=True)
    assert header[-1] == "E-mail"
    assert record[-1] == "ada.lovelace@example.com"
    assert "E-mail" not in next(iter(bulk_export.csv_records(rows, with_email=False)))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_a_spreadsheet_would_run_are_escaped(demo_body, start):
    body = demo_body(ADA)
    body["type"] = f'{start}HYPERLINK("https://evil.example")'  # a type Align may add is shown as sent
    body["last_name"] = f"{start}cmd|' /C calc'!A0"
    row = bulk_rows.customer_row(0, Customer.from_api(body, customer_id=uuid.UUID(ADA)), with_email=False)
    _, record = bulk_export.csv_records([row], with_email=False)
    assert record[1] == f'\'{start}HYPERLINK("https://evil.example")'
    assert record[2] == "Ada " + body["last_name"].strip()
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in record)


# --- Deadlines ------------------------------------------------------------------------------


def test_the_deadline_scales_with_the_batch_and_is_capped():
    assert bulk_runner.batch_deadline_seconds(100, pool_size=8, lookup_timeout=10) == 13 * 10 + 30
    assert bulk_runner.batch_deadline_seconds(1, pool_size=8, lookup_timeout=2) == 2 + 30
    assert bulk_runner.batch_deadline_seconds(500, pool_size=1, lookup_timeout=120) == 15 * 60


# --- Running a batch against a stand-in -----------------------------------------------------


class RecordingStandIn(StubServer):
    """The stand-in, noting when each request arrived; `handler` may change how it answers."""

    def __init__(self, *args, handler: type[StubHandler] = StubHandler, **kwargs):
        super().__init__(*args, **kwargs)
        self.RequestHandlerClass = handler
        self.arrivals: list[float] = []

    def count_call(self) -> None:
        super().count_call()
        self.arrivals.append(time.monotonic())


@contextmanager
def stand_in(settings, **options) -> Iterator[RecordingStandIn]:
    server = RecordingStandIn(("127.0.0.1", 0), api_key=STAND_IN_KEY, **options)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.ALIGN_API_BASE_URL = server.base_url
    settings.ALIGN_API_KEY = STAND_IN_KEY
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stub(settings):
    settings.ALIGN_API_TIMEOUT = 2
    with stand_in(settings, generate=200, slow_seconds=1) as server:
        yield server


@pytest.fixture
def actor(staff_user) -> audit.Actor:
    return audit.Actor(user=staff_user, client_ip="203.0.113.9", request_id="bulktest0001")


def start(actor, ids, *, with_email=False) -> uuid.UUID:
    return bulk_runner.start_batch(
        actor, bulk_paste.read_customer_list("\n".join(map(str, ids))), with_email=with_email
    )


def run(actor, ids, **options) -> tuple[bulk_state.BatchState, dict[str, bulk_rows.BatchRow]]:
    state = wait_for_batch(start(actor, ids, **options))
    return state, {row.customer_id: row for row in bulk_state.rows_after(state)}


batch_test = pytest.mark.django_db(transaction=True)


@batch_test
def test_concurrency_is_really_bounded_by_the_pool(actor, settings):
    settings.ALIGN_BULK_CONCURRENCY = 4
    with stand_in(settings, generate=200, delay=0.15) as server:
        started = time.monotonic()
        state, rows = run(actor, PLAIN[:40])
        elapsed = time.monotonic() - started
    assert len(rows) == 40
    assert server.peak_in_flight == 4
    # Ten rounds of 0.15 s, not forty.
    assert elapsed < 40 * 0.15 / 2
    assert state.done == 40


@batch_test
def test_a_batch_of_one_uses_one_thread(actor, settings, stub):
    _, rows = run(actor, [ADA])
    assert stub.peak_in_flight == 1
    assert rows[ADA].name == "Ada Lovelace"


@batch_test
def test_each_failure_shows_in_its_own_row_and_never_fails_the_batch(actor, settings):
    settings.ALIGN_API_TIMEOUT = 0.5
    with stand_in(settings, generate=200, slow_seconds=1.5):
        ids = [
            ADA,
            UNKNOWN,
            DrillId.KEY_REJECTED,
            DrillId.SLOW,
            DrillId.MALFORMED,
            DrillId.SERVER_ERROR,
            GRACE,
        ]
        state, rows = run(actor, ids)
    words = {
        customer_id: (row.failure.title if row.failure else row.name) for customer_id, row in rows.items()
    }
    assert words == {
        ADA: "Ada Lovelace",
        GRACE: "Grace Hopper",
        UNKNOWN: "No customer with this ID",
        DrillId.KEY_REJECTED: "The dashboard's API key was rejected",
        DrillId.SLOW: "Align did not answer in time",
        DrillId.MALFORMED: "Unexpected response from Align",
        DrillId.SERVER_ERROR: "Align is unavailable",
    }
    assert rows[UNKNOWN].failure == describe_failure(client.CustomerNotFound("x"))
    assert state.done == state.total == 7
    assert state.counts == {"approved": 1, "pending": 1, "not_found": 1, "failed": 4}
    assert BulkLookup.objects.get().finished_at is not None


@batch_test
def test_a_rate_limit_pauses_the_whole_batch_and_the_row_is_retried_and_found(actor, settings):
    settings.ALIGN_BULK_CONCURRENCY = 2
    with stand_in(settings, generate=200, delay=0.05) as server:
        state, rows = run(actor, [RATE_LIMITED_ONCE, *PLAIN[:30]])
        arrivals = sorted(server.arrivals)
    assert rows[RATE_LIMITED_ONCE].failure is None
    assert rows[RATE_LIMITED_ONCE].name
    assert server.calls == 32
    # The 429 came first; Retry-After was 1 s, and no request arrived in that second but those
    # already on their way.
    paused_from = arrivals[0] + 0.05
    assert not [moment for moment in arrivals if paused_from + 0.2 < moment < paused_from + 0.95]
    outcomes = AuditEvent.objects.filter(customer_id=RATE_LIMITED_ONCE).order_by("id")
    assert list(outcomes.values_list("outcome", flat=True)) == ["rate_limited", "found"]
    assert {event.batch_id for event in outcomes} == {uuid.UUID(state.batch_id)}


@batch_test
def test_a_rate_limit_past_the_deadline_shows_as_rate_limited_and_the_rest_as_not_fetched(
    actor, settings, stub, monkeypatch
):
    monkeypatch.setattr(bulk_runner, "DEADLINE_SLACK_SECONDS", 0)
    settings.ALIGN_BULK_CONCURRENCY = 1
    _, rows = run(actor, [DrillId.RATE_LIMITED, ADA, GRACE])
    assert rows[DrillId.RATE_LIMITED].failure.title == "Align is rate-limiting us"
    assert rows[DrillId.RATE_LIMITED].failure.sentence == "Align asked us to wait 30 seconds."
    assert rows[ADA].failure == bulk_rows.NOT_FETCHED_OUT_OF_TIME
    assert rows[GRACE].failure == bulk_rows.NOT_FETCHED_OUT_OF_TIME
    assert stub.calls == 1


@batch_test
def test_rows_not_started_by_the_deadline_are_not_fetched_and_not_audited(actor, settings, monkeypatch):
    monkeypatch.setattr(bulk_runner, "MAX_DEADLINE_SECONDS", 1)
    settings.ALIGN_BULK_CONCURRENCY = 1
    with stand_in(settings, generate=200, delay=0.3) as server:
        state, rows = run(actor, PLAIN[:10])
    fetched = [row for row in rows.values() if row.failure is None]
    not_fetched = [row for row in rows.values() if row.failure == bulk_rows.NOT_FETCHED_OUT_OF_TIME]
    assert 1 <= len(fetched) <= 4
    assert len(fetched) + len(not_fetched) == 10
    assert server.calls == len(fetched)
    assert AuditEvent.objects.count() == len(fetched)
    assert state.counts[Category.NOT_FETCHED] == len(not_fetched)
    assert BulkLookup.objects.get().not_fetched == len(not_fetched)


@batch_test
def test_a_batch_nobody_watches_stops_sending_customers_to_align(actor, settings, monkeypatch):
    monkeypatch.setattr(bulk_runner, "NOT_WATCHED_AFTER_SECONDS", 0.5)
    monkeypatch.setattr(bulk_runner, "WATCH_CHECK_SECONDS", 0.05)
    settings.ALIGN_BULK_CONCURRENCY = 1
    with stand_in(settings, generate=200, delay=0.15) as server:
        _, rows = run(actor, PLAIN[:20])
    not_fetched = [row for row in rows.values() if row.failure == bulk_rows.NOT_FETCHED_UNWATCHED]
    assert 10 <= len(not_fetched) < 20
    assert server.calls == 20 - len(not_fetched)
    assert bulk_rows.NOT_FETCHED_UNWATCHED.title == "Not fetched: nobody was watching the batch"


@batch_test
def test_a_watched_batch_keeps_going(actor, settings, monkeypatch):
    monkeypatch.setattr(bulk_runner, "NOT_WATCHED_AFTER_SECONDS", 0.5)
    monkeypatch.setattr(bulk_runner, "WATCH_CHECK_SECONDS", 0.05)
    settings.ALIGN_BULK_CONCURRENCY = 1
    with stand_in(settings, generate=200, delay=0.15):
        batch_id = start(actor, PLAIN[:12])
        while (state := bulk_state.read_batch(batch_id)) is not None and not state.finished:
            bulk_state.keep_watching(state)
            time.sleep(0.1)
        state = wait_for_batch(batch_id)
    assert state.counts.get(Category.NOT_FETCHED, 0) == 0
    assert state.done == 12


@batch_test
def test_every_lookup_is_audited_with_the_batch_id_one_per_customer(actor, settings, stub):
    state, _ = run(actor, PLAIN[:25])
    events = AuditEvent.objects.filter(batch_id=state.batch_id)
    assert events.count() == 25
    assert {str(event.customer_id) for event in events} == set(PLAIN[:25])
    assert {(e.user_id, e.client_ip, e.request_id, e.outcome, e.action) for e in events} == {
        (actor.user.pk, "203.0.113.9", "bulktest0001", "found", "lookup")
    }
    batch = BulkLookup.objects.get(pk=state.batch_id)
    assert batch.lookups.count() == 25
    assert (batch.user, batch.ids_valid, batch.not_fetched) == (actor.user, 25, 0)


@batch_test
def test_the_batch_records_what_was_read_from_the_paste(actor, stub):
    found = bulk_paste.read_customer_list(f"{ADA}\n{ADA.upper()}\nnope\n{GRACE}")
    state = wait_for_batch(bulk_runner.start_batch(actor, found, with_email=False))
    batch = BulkLookup.objects.get(pk=state.batch_id)
    assert (batch.ids_submitted, batch.ids_valid, batch.duplicates, batch.rejected) == (4, 2, 1, 1)
    assert (batch.client_ip, batch.request_id) == ("203.0.113.9", "bulktest0001")
    assert state.read_as == "2 customer IDs, 1 duplicate ignored, 1 not an ID"
    assert [entry.text for entry in state.rejected] == ["nope"]


@batch_test
def test_each_row_is_on_record_before_align_is_asked(actor, settings):
    on_record_when_asked = []

    class CheckingHandler(StubHandler):
        def _answer(self) -> None:
            customer_id = self.path.rstrip("/").rsplit("/", 1)[-1]
            lookups = AuditEvent.objects.filter(
                customer_id=customer_id, outcome="started", batch__isnull=False
            )
            on_record_when_asked.append(lookups.exists())
            connection.close()
            super()._answer()

    with stand_in(settings, generate=200, handler=CheckingHandler):
        run(actor, PLAIN[:10])
    assert on_record_when_asked == [True] * 10


@batch_test
def test_a_row_whose_audit_row_cannot_be_written_is_not_fetched(actor, stub, monkeypatch):
    real_start = audit.start_lookup_as

    def refuse_for_grace(actor, customer_id, **kwargs):
        if str(customer_id) == GRACE:
            raise audit.AuditUnavailable
        return real_start(actor, customer_id, **kwargs)

    monkeypatch.setattr(audit, "start_lookup_as", refuse_for_grace)
    _, rows = run(actor, [ADA, GRACE])
    assert rows[GRACE].failure == AUDIT_UNAVAILABLE
    assert rows[ADA].failure is None
    assert stub.calls == 1


@batch_test
def test_an_unexpected_error_in_one_row_leaves_the_rest_of_the_batch(actor, stub, monkeypatch):
    real_row = bulk_rows.customer_row

    def break_on_ada(position, customer, **kwargs):
        if str(customer.customer_id) == ADA:
            raise ValueError("a bug")
        return real_row(position, customer, **kwargs)

    monkeypatch.setattr(bulk_runner, "customer_row", break_on_ada)
    state, rows = run(actor, [ADA, GRACE])
    assert rows[ADA].failure == bulk_rows.UNEXPECTED_FAILURE
    assert rows[GRACE].name == "Grace Hopper"
    assert state.finished


@batch_test
def test_the_cache_holds_no_address_and_the_email_only_when_allowed(actor, stub):
    def cached_text(batch_id) -> str:
        keys = [
            bulk_state.cache_key(batch_id),
            bulk_state.cache_key(batch_id, "progress"),
            bulk_state.cache_key(batch_id, "rows"),
        ]
        return str(shared_cache.get_many(keys))

    without = wait_for_batch(start(actor, [ADA, DemoId.RESUBMISSION_REQUIRED]))
    with_email = wait_for_batch(start(actor, [ADA], with_email=True))
    assert "ada.lovelace@example.com" not in cached_text(without.batch_id)
    assert "ada.lovelace@example.com" in cached_text(with_email.batch_id)
    for text in (cached_text(without.batch_id), cached_text(with_email.batch_id)):
        assert "Ada Lovelace" in text or "Ada" in text
        assert "St James" not in text
        assert "Hafenstrasse" not in text


@batch_test
def test_a_finished_batch_keeps_its_rows_under_one_key_and_drops_the_rest(actor, stub):
    state = wait_for_batch(start(actor, PLAIN[:5]))
    assert shared_cache.get(bulk_state.cache_key(state.batch_id, "row", 0)) is None
    assert len(shared_cache.get(bulk_state.cache_key(state.batch_id, "rows"))) == 5
    assert [row.customer_id for row in bulk_state.rows_after(state, 3)] == [
        row.customer_id for row in bulk_state.rows_after(state)[3:]
    ]


@batch_test
def test_a_batch_is_kept_while_watched_and_expires_when_not(actor, stub, monkeypatch):
    # Two seconds, not one: the database cache (the shared cache without Redis) keeps an expiry
    # to the whole second, so a one-second entry may last only a moment.
    monkeypatch.setattr(bulk_state, "RESULTS_TTL_SECONDS", 2)
    watched = wait_for_batch(start(actor, [ADA]))
    left = wait_for_batch(start(actor, [GRACE]))
    deadline = time.monotonic() + 2.6
    while time.monotonic() < deadline:
        bulk_state.keep_watching(bulk_state.read_batch(watched.batch_id))
        time.sleep(0.2)
    assert bulk_state.read_batch(watched.batch_id) is not None
    assert bulk_state.rows_after(bulk_state.read_batch(watched.batch_id))
    assert bulk_state.read_batch(left.batch_id) is None


@pytest.mark.django_db
def test_a_poll_never_skips_a_row_that_is_not_written_yet():
    batch_id = str(uuid.uuid4())
    row = bulk_rows.failure_row(0, uuid.UUID(UNKNOWN), AUDIT_UNAVAILABLE, "timeout")
    shared_cache.set(bulk_state.cache_key(batch_id, "row", 0), row.to_cache())
    shared_cache.set(bulk_state.cache_key(batch_id, "row", 2), row.to_cache())
    state = bulk_state.BatchState(
        batch_id=batch_id,
        owner_id=1,
        total=3,
        pool_size=8,
        started_at=None,
        with_email=False,
        entries=3,
        duplicates=0,
        rejected=(),
        rejected_count=0,
        done=3,
    )
    assert len(bulk_state.rows_after(state)) == 1
    assert bulk_state.rows_after(state, 1) == []


# --- Which customers are at Align (issue #19, item 12) -----------------------------------------


def state_with(*in_flight: bulk_state.InFlight) -> bulk_state.BatchState:
    return bulk_state.BatchState(
        batch_id=str(uuid.uuid4()),
        owner_id=1,
        total=10,
        pool_size=8,
        started_at=None,
        with_email=False,
        entries=10,
        duplicates=0,
        rejected=(),
        rejected_count=0,
        in_flight=in_flight,
    )


def sent(position: int, customer_id: str, seconds_ago: float) -> bulk_state.InFlight:
    return bulk_state.InFlight(position, customer_id, sent_at=time.time() - seconds_ago)


def test_a_customer_at_align_past_a_few_seconds_is_named_with_its_seconds():
    waiting = state_with(sent(0, GRACE, 1), sent(1, ADA, 8.4)).waiting_on_align
    assert waiting == bulk_state.WaitingOnAlign(ADA, seconds=8, others=0)


def test_customers_answered_within_a_few_seconds_are_not_named():
    assert bulk_state.SLOW_AFTER_SECONDS == 3
    assert state_with(sent(0, ADA, 2.5), sent(1, GRACE, 0)).waiting_on_align is None
    assert state_with().waiting_on_align is None


def test_of_several_slow_customers_the_longest_waiting_is_named_and_the_rest_counted():
    waiting = state_with(sent(0, GRACE, 4), sent(1, ADA, 12), sent(2, UNKNOWN, 5), sent(3, PLAIN[0], 1))
    assert waiting.waiting_on_align == bulk_state.WaitingOnAlign(ADA, seconds=12, others=2)


def in_flight_when_asked(settings, actor, ids: list[str]) -> list[list[tuple[int, str, float]]]:
    """For each request of the batch, the customers its state had at Align as Align was asked."""
    seen: list[list[tuple[int, str, float]]] = []

    class CheckingHandler(StubHandler):
        def _answer(self) -> None:
            customer_id = self.path.rstrip("/").rsplit("/", 1)[-1]
            batch_id = AuditEvent.objects.filter(customer_id=customer_id).latest("id").batch_id
            in_flight = bulk_state.read_batch(batch_id).in_flight
            seen.append(
                [(entry.position, entry.customer_id, time.time() - entry.sent_at) for entry in in_flight]
            )
            connection.close()
            super()._answer()

    with stand_in(settings, generate=200, handler=CheckingHandler):
        state = wait_for_batch(start(actor, ids))
    assert state.in_flight == ()
    return seen


@batch_test
def test_a_customer_is_at_align_from_when_it_is_sent_until_its_row_is_recorded(actor, settings):
    settings.ALIGN_BULK_CONCURRENCY = 1
    seen = in_flight_when_asked(settings, actor, [ADA, GRACE])
    assert [[(position, customer_id) for position, customer_id, _ in asked] for asked in seen] == [
        [(0, ADA)],
        [(1, GRACE)],
    ]
    assert all(0 <= seconds < 1 for asked in seen for _, _, seconds in asked)


@batch_test
def test_a_rate_limited_customer_waiting_its_turn_again_is_not_at_align(actor, settings):
    settings.ALIGN_BULK_CONCURRENCY = 1
    seen = in_flight_when_asked(settings, actor, [RATE_LIMITED_ONCE, PLAIN[0]])
    assert [[customer_id for _, customer_id, _ in asked] for asked in seen] == [
        [RATE_LIMITED_ONCE],
        [PLAIN[0]],  # asked after the pause, while the rate-limited customer waits at the back
        [RATE_LIMITED_ONCE],
    ]


@batch_test
def test_a_process_runs_at_most_a_few_batches_at_once(actor, stub, monkeypatch):
    monkeypatch.setattr(bulk_runner, "_slots", threading.BoundedSemaphore(1))
    bulk_runner._slots.acquire()
    with pytest.raises(bulk_runner.TooManyBatches):
        start(actor, [ADA])
    assert not BulkLookup.objects.exists()
    bulk_runner._slots.release()
    wait_for_batch(start(actor, [ADA]))
    wait_for_batch(start(actor, [GRACE]))  # the first batch gave its place back when it ended


@batch_test
def test_a_batch_shows_as_finished_only_once_its_end_is_on_record_and_its_place_given_back(
    actor, stub, monkeypatch
):
    """Whoever waits on the batch's state (its page, these tests) finds it wholly done."""
    monkeypatch.setattr(bulk_runner, "_slots", threading.BoundedSemaphore(1))
    record_the_end = audit.finish_bulk_lookup

    def slowly(*args, **kwargs):
        time.sleep(0.3)
        record_the_end(*args, **kwargs)

    monkeypatch.setattr(audit, "finish_bulk_lookup", slowly)
    state = wait_for_batch(start(actor, [ADA]))
    assert BulkLookup.objects.get(pk=state.batch_id).finished_at is not None
    assert bulk_runner._slots.acquire(blocking=False)


@batch_test
def test_a_batch_that_cannot_be_put_on_record_fetches_nothing(actor, stub, monkeypatch):
    monkeypatch.setattr(bulk_runner, "_slots", threading.BoundedSemaphore(1))

    def refuse(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(BulkLookup.objects, "create", refuse)
    with pytest.raises(audit.AuditUnavailable):
        start(actor, [ADA])
    assert stub.calls == 0
    assert bulk_runner._slots.acquire(blocking=False)


@batch_test
def test_rerun_list_comes_from_the_audit_rows_in_order(actor, stub):
    state = wait_for_batch(start(actor, [GRACE, ADA, UNKNOWN]))
    assert sorted(bulk_state.rerun_list(uuid.UUID(state.batch_id))) == sorted([GRACE, ADA, UNKNOWN])
    assert bulk_state.rerun_list(uuid.uuid4()) == []


def test_a_paste_reads_past_what_chat_apps_add_as_the_single_lookup_does():
    found = bulk_paste.read_customer_list(f"\u201c{ADA}\u201d.\n<{GRACE}>\n\ufeff{ADA}")
    assert [str(customer_id) for customer_id in found.customer_ids] == [ADA, GRACE]
    assert found.duplicates == 1


def test_a_rejected_entry_names_the_character_that_cannot_be_read():
    found = bulk_paste.read_customer_list(ADA + "\n" + ADA[:-1] + "l")
    assert [entry.reason for entry in found.rejected] == ["not a customer ID: contains \u201cl\u201d"]
