"""The CSV files the dashboard sends (the audit log's and bulk lookups' exports), made to open in Excel.

Every cell opens as data, never as a formula; the file starts with a UTF-8 byte-order mark, without
which Excel reads it in the machine's legacy code page and garbles accented names and "·"; and its
name says what it holds and when it was made, so two downloads are told apart in a folder.
"""

import re
from datetime import datetime

from django.utils import timezone

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The first character of every CSV the dashboard sends.
BYTE_ORDER_MARK = "\ufeff"
# What a part of a file name keeps: letters, digits and dots; anything else becomes one hyphen.
_NOT_IN_FILE_NAME = re.compile(r"[^a-z0-9.]+")
LONGEST_NAME_PART = 40


def spreadsheet_safe(value: object) -> str:
    """The value as text, with a leading apostrophe when a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_file_name(subject: str, *details: str, made_at: datetime) -> str:
    """`kyc-<subject>-<date>-<hour and minute>-<details>.csv`, in the dashboard's time zone.

    E.g. kyc-bulk-2026-12-07-1405-3f2a9c1e-needs-resubmission.csv. Details name a batch, a
    filter or a search; empty ones are left out. Each part is lower-case letters, digits, dots
    and hyphens only, so the name needs no quoting in Content-Disposition and is valid on any disk.
    """
    parts = [subject, f"{timezone.localtime(made_at):%Y-%m-%d-%H%M}", *map(_name_part, details)]
    return "-".join(["kyc", *filter(None, parts)]) + ".csv"


def _name_part(text: str) -> str:
    return _NOT_IN_FILE_NAME.sub("-", text.lower())[:LONGEST_NAME_PART].strip("-.")
