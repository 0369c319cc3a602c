"""The words and badges staff read, decided in one place from what Align sent.

Everything here is a pure function of the parsed records, so the template stays a layout and
every sentence a compliance officer reads can be tested without rendering a page.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from customers import client
from customers.models import AuditEvent
from customers.records import (
    Currency,
    CustomerType,
    Kyc,
    KycStatus,
    KycSubStatus,
    PaymentRail,
    RailStatus,
    StatusBreakdownRow,
)

UNRECOGNISED_NOTE = "Shown as sent; the dashboard may need an update."


@dataclass(frozen=True)
class Badge:
    label: str
    tone: str  # one of: approved, pending, rejected, neutral
    recognised: bool = True


@dataclass(frozen=True)
class KycSummary:
    badge: Badge
    sub_status: Badge | None
    explanation: str
    next_step: str | None


def _unrecognised(value: str) -> Badge:
    return Badge(label=value, tone="neutral", recognised=False)


STATUS_BADGES = {
    KycStatus.PENDING: Badge("Pending", "pending"),
    KycStatus.APPROVED: Badge("Approved", "approved"),
    KycStatus.REJECTED: Badge("Rejected", "rejected"),
}

NOT_STARTED_BADGE = Badge("Not started", "neutral")
UNKNOWN_STATUS_BADGE = Badge("Unknown", "neutral")

SUB_STATUS_WORDS = {
    KycSubStatus.FORM_STARTED: (
        "Form started",
        "The customer has begun the KYC form but not finished it.",
        "Remind them to complete it with the KYC link.",
    ),
    KycSubStatus.FORM_ACCEPTED: (
        "Under review",
        "The customer completed the flow and their documents were accepted; Align is reviewing.",
        "None; wait for Align's decision.",
    ),
    KycSubStatus.RESUBMISSION_REQUIRED: (
        "Resubmission required",
        "Align needs more information or documents.",
        "Send the customer the same KYC link to resubmit.",
    ),
}


def kyc_summary(kyc: Kyc | None) -> KycSummary:
    if kyc is None:
        return KycSummary(
            badge=NOT_STARTED_BADGE,
            sub_status=None,
            explanation="No KYC on file yet.",
            next_step=None,
        )
    if kyc.status is None:
        return KycSummary(
            badge=UNKNOWN_STATUS_BADGE,
            sub_status=None,
            explanation="Align returned no overall status.",
            next_step="Check again later; if it persists, raise it with Align.",
        )
    if kyc.status == KycStatus.APPROVED:
        return KycSummary(STATUS_BADGES[KycStatus.APPROVED], None, "KYC approved.", None)
    if kyc.status == KycStatus.REJECTED:
        return KycSummary(
            STATUS_BADGES[KycStatus.REJECTED], None, "KYC rejected.", "Do not onboard; escalate per policy."
        )
    if kyc.status == KycStatus.PENDING:
        return _pending_summary(kyc.sub_status)
    return KycSummary(_unrecognised(kyc.status), None, UNRECOGNISED_NOTE, None)


def _pending_summary(sub_status: KycSubStatus | str | None) -> KycSummary:
    badge = STATUS_BADGES[KycStatus.PENDING]
    if sub_status is None:
        return KycSummary(badge, None, "KYC is in progress; Align gave no detail.", None)
    if isinstance(sub_status, KycSubStatus):
        label, explanation, next_step = SUB_STATUS_WORDS[sub_status]
        return KycSummary(badge, Badge(label, "pending"), explanation, next_step)
    return KycSummary(badge, _unrecognised(sub_status), UNRECOGNISED_NOTE, None)


CUSTOMER_TYPE_BADGES = {
    CustomerType.INDIVIDUAL: Badge("Individual", "neutral"),
    CustomerType.CORPORATE: Badge("Corporate", "neutral"),
}


def customer_type_badge(customer_type: CustomerType | str) -> Badge:
    return CUSTOMER_TYPE_BADGES.get(customer_type) or _unrecognised(customer_type)


RAIL_NAMES = {
    PaymentRail.ACH: "ACH",
    PaymentRail.WIRE: "Wire",
    PaymentRail.SEPA: "SEPA",
    PaymentRail.UAEFTS: "UAEFTS",
}


def breakdown_label(row: StatusBreakdownRow) -> str:
    """E.g. "USD · ACH"; unrecognised codes are shown as sent."""
    currency = row.currency.upper() if isinstance(row.currency, Currency) else row.currency
    rail = RAIL_NAMES.get(row.payment_rails, row.payment_rails)
    return f"{currency} · {rail}"


def breakdown_is_recognised(row: StatusBreakdownRow) -> bool:
    return isinstance(row.currency, Currency) and isinstance(row.payment_rails, PaymentRail)


RAIL_STATUS_BADGES = {
    RailStatus.PENDING: Badge("Pending", "pending"),
    RailStatus.APPROVED: Badge("Approved", "approved"),
}


def breakdown_status_badge(status: RailStatus | str) -> Badge:
    return RAIL_STATUS_BADGES.get(status) or _unrecognised(status)


def web_link(link: str | None) -> str | None:
    """The link if it is safe to render as one (http or https with a host); otherwise None."""
    if not link or any(char.isspace() or ord(char) < 0x20 for char in link):
        return None
    try:
        parts = urlsplit(link)
    except ValueError:  # e.g. an unclosed "[" in the host: not a link a browser should get
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    return link


@dataclass(frozen=True)
class LookupFailure:
    """What staff see when a lookup did not produce a customer, and the page's HTTP status."""

    title: str
    sentence: str
    status: int
    # "check" (the ID), "transient" (try again) or "broken" (tell an administrator): the card's
    # colour, so staff can tell at a glance whether retrying can help.
    kind: str = "broken"
    retry_after: int | None = None  # seconds, passed on to the browser as Retry-After


INVALID_INPUT = LookupFailure(
    "Not a customer ID", "Paste the customer's UUID, e.g. 3f2a9c1e-…; nothing was looked up.", 400, "check"
)

AUDIT_UNAVAILABLE = LookupFailure(
    "Lookups are paused: the audit log can't be written",
    "Nothing was fetched from Align, because every lookup is recorded before it happens. "
    "Try again in a minute; if it keeps happening, tell an administrator.",
    503,
    "transient",
)

_FAILURES: dict[type[client.AlignError], LookupFailure] = {
    client.CustomerNotFound: LookupFailure(
        "No customer with this ID",
        "Check the ID; it may belong to the other environment (sandbox vs production).",
        404,
        "check",
    ),
    client.ApiKeyRejected: LookupFailure(
        "The dashboard's API key was rejected",
        "This is a configuration problem: contact an administrator.",
        502,
    ),
    client.AlignNotConfigured: LookupFailure(
        "The dashboard has no API key",
        "This is a configuration problem: contact an administrator.",
        503,
    ),
    client.UpstreamTimeout: LookupFailure(
        "Align did not answer in time", "Try again; if it persists, Align may be degraded.", 504, "transient"
    ),
    client.UpstreamError: LookupFailure("Align is unavailable", "Try again shortly.", 502, "transient"),
    client.UpstreamUnreachable: LookupFailure("Align is unavailable", "Try again shortly.", 503, "transient"),
    client.InvalidResponse: LookupFailure(
        "Unexpected response from Align",
        "The customer could not be shown safely; the event was logged.",
        502,
    ),
}


def seen_status_badge(outcome: str, kyc_status: str) -> Badge:
    """What a user saw at a past lookup, in the same badge words as the customer card."""
    if outcome == AuditEvent.Outcome.FOUND:
        if not kyc_status:
            return NOT_STARTED_BADGE
        if kyc_status == AuditEvent.KYC_STATUS_NOT_SENT:
            return UNKNOWN_STATUS_BADGE
        try:
            return STATUS_BADGES[KycStatus(kyc_status)]
        except ValueError:
            return _unrecognised(kyc_status)
    if outcome == AuditEvent.Outcome.NOT_FOUND:
        return Badge("Not found", "neutral")
    if outcome == AuditEvent.Outcome.STARTED:
        return Badge("Not recorded", "neutral")
    return Badge("Lookup failed", "neutral")


def _wait_words(seconds: int | None) -> str:
    if seconds is None:
        return "in a minute"
    if seconds <= 0:
        return "now"
    if seconds >= 120:
        return f"in about {round(seconds / 60)} minutes"
    return f"in {seconds} second{'' if seconds == 1 else 's'}"


def describe_failure(error: client.AlignError) -> LookupFailure:
    if isinstance(error, client.RateLimited):
        sentence = f"Try again {_wait_words(error.retry_after)}."
        return LookupFailure("Align is rate-limiting us", sentence, 503, "transient", error.retry_after)
    return client.for_error(_FAILURES, error, _FAILURES[client.InvalidResponse])
