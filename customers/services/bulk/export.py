"""The CSV of a bulk lookup: one record per row, in list order, every cell safe from formulas.

It hands out a KYC link only where the bulk table does, and says what the table says in its place.
"""

from collections.abc import Iterable, Iterator

from customers.services.bulk.rows import BatchRow
from customers.services.spreadsheets import spreadsheet_safe

CSV_COLUMNS = [
    "Customer ID",
    "Type",
    "Name or company",
    "KYC status",
    "Sub-status",
    "Breakdown",
    "KYC link",
    # What the table says in the link's place (decisions.link_decision), then decisions.kyc_warnings.
    "KYC link note",
    "Warnings",
    "Outcome",
]
EMAIL_COLUMN = "E-mail"


def csv_records(rows: Iterable[BatchRow], *, with_email: bool) -> Iterator[list[str]]:
    """The header and one record per row, in list order, every cell safe from formulas."""
    yield CSV_COLUMNS + ([EMAIL_COLUMN] if with_email else [])
    for row in sorted(rows, key=lambda row: row.position):
        record = [
            row.customer_id,
            row.customer_type.label if row.customer_type else "",
            row.name,
            row.status.label if row.status else "",
            row.sub_status.label if row.sub_status else "",
            "; ".join(f"{rail.label}: {rail.status}" for rail in row.breakdown),
            row.offered_link,
            row.link_reason,
            " ".join(row.warnings),
            row.outcome_words,
        ]
        if with_email:
            record.append(row.email)
        yield [spreadsheet_safe(cell) for cell in record]
