"""Reading a pasted list of customer IDs for a bulk lookup: what was read, and what was left out."""

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace

from customers.forms import UnreadableCharacter, parse_customer_reference
from customers.services import decisions as presentation

MAX_CUSTOMERS = 500
# 500 IDs pasted as links are about 50 KB; four times that is not a list of customer IDs.
MAX_PASTE_CHARS = 200_000
SEPARATORS = re.compile(r"[\s,;]+")
REJECTED_SHOWN_CHARS = 60
REJECTED_LISTED = 100

EMPTY_LIST = "Paste at least one customer ID."
PASTE_TOO_LONG = (
    f"The list is too long to read (over {MAX_PASTE_CHARS // 1000} KB). "
    f"Paste at most {MAX_CUSTOMERS} customer IDs."
)
NO_CUSTOMER_IDS = "None of these is a customer ID, so there is nothing to look up."


@dataclass(frozen=True)
class RejectedEntry:
    """An entry that is not a customer ID, as typed (cut short, invisible characters escaped)."""

    text: str
    reason: str


@dataclass(frozen=True)
class CustomerList:
    """What was read from a paste: the distinct customer IDs in order, and what was left out."""

    customer_ids: tuple[uuid.UUID, ...] = ()
    entries: int = 0
    duplicates: int = 0
    rejected: tuple[RejectedEntry, ...] = ()
    rejected_count: int = 0
    problem: str | None = None  # set when nothing may be fetched

    @property
    def can_start(self) -> bool:
        return self.problem is None

    @property
    def read_as(self) -> str:
        return reported_counts(
            customers=len(self.customer_ids), duplicates=self.duplicates, rejected=self.rejected_count
        )

    @property
    def rejected_not_listed(self) -> int:
        return self.rejected_count - len(self.rejected)


def read_customer_list(text: str) -> CustomerList:
    """Read customer IDs separated by newlines, commas, semicolons, tabs or spaces.

    Each entry is read exactly as the single lookup reads its field (parse_customer_reference);
    duplicates after that count once. Nothing is fetched when there is no ID, more than
    MAX_CUSTOMERS, or a paste too long to be a list of IDs.
    """
    if len(text) > MAX_PASTE_CHARS:
        return CustomerList(problem=PASTE_TOO_LONG)
    entries = [entry for entry in SEPARATORS.split(text) if entry]
    if not entries:
        return CustomerList(problem=EMPTY_LIST)
    seen: dict[uuid.UUID, None] = {}
    rejected: list[RejectedEntry] = []
    rejected_count = duplicates = 0
    for entry in entries:
        try:
            customer_id = parse_customer_reference(entry)
        except ValueError as error:
            rejected_count += 1
            if len(rejected) < REJECTED_LISTED:
                rejected.append(RejectedEntry(_shown_as_typed(entry), _rejection_reason(entry, error)))
            continue
        if customer_id in seen:
            duplicates += 1
        seen[customer_id] = None
    found = CustomerList(tuple(seen), len(entries), duplicates, tuple(rejected), rejected_count)
    if not seen:
        return replace(found, problem=NO_CUSTOMER_IDS)
    if len(seen) > MAX_CUSTOMERS:
        return replace(
            found,
            problem=(
                f"That is {len(seen)} customer IDs; one bulk lookup takes at most {MAX_CUSTOMERS}. "
                "Split the list and look each part up on its own."
            ),
        )
    return found


def list_digest(customer_ids: Iterable[uuid.UUID]) -> str:
    """A short digest of the IDs a check read, so the start can tell it got the same list."""
    return hashlib.sha256("\n".join(map(str, customer_ids)).encode()).hexdigest()[:32]


def _shown_as_typed(entry: str) -> str:
    shown = presentation.inert_link_text(entry)
    if len(shown) <= REJECTED_SHOWN_CHARS:
        return shown
    return shown[: REJECTED_SHOWN_CHARS - 1] + "…"


def _rejection_reason(entry: str, error: ValueError) -> str:
    if "@" in entry:
        return "an e-mail address, not a customer ID"
    if "too long" in str(error):
        return "too long to be a customer ID"
    if isinstance(error, UnreadableCharacter):
        return f"not a customer ID: contains {error.shown}"
    return "not a customer ID"


def reported_counts(*, customers: int, duplicates: int, rejected: int) -> str:
    """ "312 customer IDs, 4 duplicates ignored, 2 not IDs"."""
    parts = [_count(customers, "customer ID", "customer IDs")]
    if duplicates:
        parts.append(_count(duplicates, "duplicate ignored", "duplicates ignored"))
    if rejected:
        parts.append(_count(rejected, "not an ID", "not IDs"))
    return ", ".join(parts)


def _count(number: int, one: str, several: str) -> str:
    return f"{number:,} {one if number == 1 else several}"
