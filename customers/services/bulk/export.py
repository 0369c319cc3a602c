"""The CSV of a bulk lookup: one record per row, in list order, every cell safe from formulas."""

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
            row.kyc_link,
            row.outcome_words,
        ]
        if with_email:
            record.append(row.email)
        yield [spreadsheet_safe(cell) for cell in record]
