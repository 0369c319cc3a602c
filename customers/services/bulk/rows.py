"""The rows of a bulk lookup: what the table and the CSV show of one customer, in the card's words."""

import uuid
from dataclasses import asdict, dataclass, fields

from customers.align.records import Customer, KycStatus, KycSubStatus, RailStatus
from customers.models import AuditEvent
from customers.services import decisions as presentation
from customers.services.decisions import Badge, LookupFailure


class Category:
    """Which chip a row counts under; needs_resubmission is a part of pending."""

    APPROVED = "approved"
    PENDING = "pending"
    NEEDS_RESUBMISSION = "needs_resubmission"
    REJECTED = "rejected"
    NOT_STARTED = "not_started"
    UNKNOWN = "unknown"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    NOT_FETCHED = "not_fetched"


# The chips in the order they are offered, with the words of the summary line.
CATEGORY_WORDS: dict[str, tuple[str, str]] = {
    Category.APPROVED: ("Approved", "approved"),
    Category.PENDING: ("Pending", "pending"),
    Category.NEEDS_RESUBMISSION: ("Needs resubmission", "need resubmission"),
    Category.REJECTED: ("Rejected", "rejected"),
    Category.NOT_STARTED: ("No KYC yet", "no KYC yet"),
    Category.UNKNOWN: ("Unknown status", "unknown status"),
    Category.NOT_FOUND: ("Not found", "not found"),
    Category.FAILED: ("Failed", "failed"),
    Category.NOT_FETCHED: ("Not fetched", "not fetched"),
}
# Sorting by status puts what needs someone's attention first, approved customers last.
STATUS_SORT_ORDER = (
    Category.FAILED,
    Category.NOT_FETCHED,
    Category.NOT_FOUND,
    Category.REJECTED,
    Category.NEEDS_RESUBMISSION,
    Category.PENDING,
    Category.UNKNOWN,
    Category.NOT_STARTED,
    Category.APPROVED,
)
RAIL_MARKS = {RailStatus.APPROVED: "✓", RailStatus.PENDING: "…"}

NOT_FETCHED_OUT_OF_TIME = LookupFailure(
    "Not fetched: the batch ran out of time",
    "This customer was never sent to Align. Open the customer to look them up on their own.",
    504,
    "transient",
)
NOT_FETCHED_UNWATCHED = LookupFailure(
    "Not fetched: nobody was watching the batch",
    "The page was left for over a minute, so the rest of the list was not sent to Align.",
    504,
    "transient",
)
UNEXPECTED_FAILURE = LookupFailure(
    "Something went wrong on our side",
    "The error was logged. Open the customer to look them up on their own.",
    500,
)


@dataclass(frozen=True)
class RailMark:
    """One breakdown row, compact: "USD·ACH ✓"."""

    label: str
    mark: str
    status: str


@dataclass(frozen=True)
class BatchRow:
    """One customer of a batch, with only what the table and the CSV show: never an address."""

    position: int  # in the pasted list, from 0
    customer_id: str
    category: str
    needs_resubmission: bool = False
    customer_type: Badge | None = None
    name: str = ""
    status: Badge | None = None
    sub_status: Badge | None = None
    breakdown: tuple[RailMark, ...] = ()
    warnings: tuple[str, ...] = ()  # decisions.kyc_warnings
    # decisions.link_decision: its action, the link only when staff may hand it out, and the words
    # said in its place (why it is withheld, or what to check before sending it).
    link_action: str = ""
    offered_link: str = ""
    link_reason: str = ""
    outcome: str = ""  # AuditEvent.Outcome, or "not_fetched"
    failure: LookupFailure | None = None
    email: str = ""  # only when the user may export e-mail addresses

    @property
    def status_rank(self) -> int:
        category = Category.NEEDS_RESUBMISSION if self.needs_resubmission else self.category
        return STATUS_SORT_ORDER.index(category)

    @property
    def short_id(self) -> str:
        return presentation.short_customer_id(self.customer_id)

    @property
    def breakdown_text(self) -> str:
        return " ".join(f"{rail.label} {rail.mark}" for rail in self.breakdown)

    @property
    def outcome_words(self) -> str:
        return self.failure.title if self.failure else "Found"

    def to_cache(self) -> dict:
        """Plain values only, so a batch written by one version of the code is read by the next."""
        return asdict(self)

    @classmethod
    def from_cache(cls, data: dict) -> "BatchRow":
        """A cached row; a field an earlier version kept and this one dropped is left out, and a field
        it did not have yet takes its default (a row without a link_action offers no link)."""

        def badge(value: dict | None) -> Badge | None:
            return Badge(**value) if value else None

        known = {field.name for field in fields(cls)}
        return cls(
            **{name: value for name, value in data.items() if name in known}
            | {
                "customer_type": badge(data["customer_type"]),
                "status": badge(data["status"]),
                "sub_status": badge(data["sub_status"]),
                "breakdown": tuple(RailMark(**rail) for rail in data["breakdown"]),
                "warnings": tuple(data.get("warnings", ())),
                "failure": LookupFailure(**data["failure"]) if data["failure"] else None,
            }
        )


def customer_row(position: int, customer: Customer, *, with_email: bool) -> BatchRow:
    """The row of a customer Align answered for, in the single view's words."""
    kyc = customer.kycs
    summary = presentation.kyc_summary(kyc)
    return BatchRow(
        position=position,
        customer_id=str(customer.customer_id),
        category=_category(customer),
        needs_resubmission=kyc is not None
        and kyc.status == KycStatus.PENDING
        and kyc.sub_status == KycSubStatus.RESUBMISSION_REQUIRED,
        customer_type=presentation.customer_type_badge(customer.type),
        name=customer.display_name or "",
        status=summary.badge,
        sub_status=summary.sub_status,
        breakdown=tuple(
            RailMark(
                label=presentation.breakdown_label(row).replace(" · ", "·"),
                mark=RAIL_MARKS.get(row.status, "?"),
                status=presentation.breakdown_status_badge(row.status).label,
            )
            for row in (kyc.status_breakdown if kyc else ())
        ),
        warnings=summary.warnings,
        link_action=str(summary.link.action),
        offered_link=summary.link.handed_out,
        link_reason=summary.link.reason,
        outcome=AuditEvent.Outcome.FOUND,
        email=customer.email if with_email else "",
    )


def _category(customer: Customer) -> str:
    kyc = customer.kycs
    if kyc is None:
        return Category.NOT_STARTED
    return {
        KycStatus.APPROVED: Category.APPROVED,
        KycStatus.PENDING: Category.PENDING,
        KycStatus.REJECTED: Category.REJECTED,
    }.get(kyc.status, Category.UNKNOWN)


def failure_row(position: int, customer_id: uuid.UUID, failure: LookupFailure, outcome: str) -> BatchRow:
    """A customer that could not be shown, with the words of the single view's failure card."""
    if outcome == AuditEvent.Outcome.NOT_FOUND:
        category = Category.NOT_FOUND
    elif outcome == "not_fetched":
        category = Category.NOT_FETCHED
    else:
        category = Category.FAILED
    return BatchRow(
        position=position, customer_id=str(customer_id), category=category, outcome=outcome, failure=failure
    )


def summary_line(counts: dict[str, int]) -> str:
    """ "42 approved · 31 pending (12 need resubmission) · 3 rejected · 2 not found · 1 failed"."""
    parts = []
    for category, (_, words) in CATEGORY_WORDS.items():
        number = counts.get(category, 0)
        if category == Category.NEEDS_RESUBMISSION or not number:
            continue
        part = f"{number:,} {words}"
        if category == Category.PENDING and counts.get(Category.NEEDS_RESUBMISSION):
            part += (
                f" ({counts[Category.NEEDS_RESUBMISSION]:,} {CATEGORY_WORDS[Category.NEEDS_RESUBMISSION][1]})"
            )
        parts.append(part)
    return " · ".join(parts)


def matches(row: BatchRow, category: str) -> bool:
    """Whether a row belongs under a chip: the table's filter and the CSV's ?status=."""
    if category == Category.NEEDS_RESUBMISSION:
        return row.needs_resubmission
    return row.category == category
