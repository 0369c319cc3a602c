"""The names of the CSV files the dashboard sends (customers/services/spreadsheets.py)."""

from datetime import UTC, datetime

import pytest

from customers.services.spreadsheets import LONGEST_NAME_PART, csv_file_name

MADE_AT = datetime(2026, 12, 7, 13, 5, 59, tzinfo=UTC)


def test_a_name_says_what_the_file_holds_and_when_it_was_made():
    name = csv_file_name("bulk", "3f2a9c1e", "needs_resubmission", made_at=MADE_AT)
    assert name == "kyc-bulk-2026-12-07-1305-3f2a9c1e-needs-resubmission.csv"


def test_the_time_is_the_dashboards(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    assert csv_file_name("audit-log", made_at=MADE_AT) == "kyc-audit-log-2026-12-07-1405.csv"


def test_an_empty_detail_is_left_out():
    assert csv_file_name("bulk", "3f2a9c1e", "", made_at=MADE_AT) == "kyc-bulk-2026-12-07-1305-3f2a9c1e.csv"


@pytest.mark.parametrize(
    ("detail", "part"),
    [
        pytest.param('a"b', "a-b", id="a-quote-that-would-end-the-header"),
        pytest.param("../../etc/passwd", "etc-passwd", id="a-path"),
        pytest.param("Zoë Müller", "zo-m-ller", id="letters-beyond-ascii"),
        pytest.param("j.smith", "j.smith", id="a-username-with-a-dot"),
        pytest.param("--", "", id="nothing-left"),
    ],
)
def test_a_detail_keeps_only_what_any_disk_and_header_take(detail, part):
    name = csv_file_name("audit-log", detail, made_at=MADE_AT)
    assert name == "-".join(filter(None, ["kyc-audit-log-2026-12-07-1305", part])) + ".csv"


def test_a_long_detail_is_cut():
    name = csv_file_name("audit-log", "x" * 500, made_at=MADE_AT)
    assert name == f"kyc-audit-log-2026-12-07-1305-{'x' * LONGEST_NAME_PART}.csv"
