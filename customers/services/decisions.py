"""The words and badges staff read, decided in one place from what Align sent.

Everything here is a pure function of the parsed records, so the template stays a layout and
every sentence a compliance officer reads can be tested without rendering a page.
"""

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.utils import timezone

from customers.align import client
from customers.align.records import (
    Currency,
    CustomerType,
    Kyc,
    KycStatus,
    KycSubStatus,
    PaymentRail,
    RailStatus,
    StatusBreakdownRow,
)
from customers.models import AuditEvent

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
    # Set when the breakdown rows could be read as saying something the overall status does not.
    rails_note: str | None = None


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
            explanation="There is no KYC link to send the customer yet.",
            next_step=(
                "Align has no KYC for this customer yet. A compliance lead can start one with "
                "Start new KYC session on this card; then send the customer its link."
            ),
        )
    return replace(_status_summary(kyc), rails_note=rails_note(kyc))


def _status_summary(kyc: Kyc) -> KycSummary:
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
        summary = _pending_summary(kyc.sub_status)
        if kyc.sub_status in LINK_SENDING_SUB_STATUSES and web_link(kyc.kyc_flow_link) is None:
            return replace(summary, next_step=NO_LINK_TO_SEND)
        return summary
    return KycSummary(_unrecognised(kyc.status), None, UNRECOGNISED_NOTE, None)


# Sub-statuses whose next step is sending the customer the KYC link.
LINK_SENDING_SUB_STATUSES = frozenset({KycSubStatus.FORM_STARTED, KycSubStatus.RESUBMISSION_REQUIRED})
# When that link is missing or can't be sent, the usual next step would tell staff to send it.
NO_LINK_TO_SEND = (
    "Align sent no KYC link that can be sent, so there is nothing to send the customer yet. "
    "A compliance lead can start a new KYC session on this card, which gives a new link."
)


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


def rails_note(kyc: Kyc) -> str | None:
    """A sentence when the breakdown rows could be read against the overall status, naming the rails.

    Staff may use a rail only when KYC is approved overall and that rail's row is approved, so a
    Pending row under an approved customer, or any hopeful row under a rejected or undecided one,
    is spelled out; when the rows agree with the overall status there is nothing to say.
    """
    rows = kyc.status_breakdown
    if kyc.status == KycStatus.APPROVED:
        return _approved_rails_note(rows)
    if kyc.status == KycStatus.REJECTED:
        return _rejected_rails_note(rows) if rows else None
    approved = _labels(row for row in rows if row.status == RailStatus.APPROVED)
    if not approved:
        return None
    rails, shows = _join(approved), _number(approved, "shows", "show")
    if kyc.status == KycStatus.PENDING:
        return (
            f"Pending overall; {rails} already {shows} Approved, "
            "but don't treat any rail as usable until KYC is approved overall."
        )
    return (
        f"Without an overall status the dashboard can read, don't treat {rails} as usable, "
        f"even though {_number(approved, 'it shows', 'they show')} Approved."
    )


def _approved_rails_note(rows: tuple[StatusBreakdownRow, ...]) -> str | None:
    pending = _labels(row for row in rows if row.status == RailStatus.PENDING)
    unrecognised = _labels(row for row in rows if row.status not in RAIL_STATUS_BADGES)
    sentences = []
    if pending:
        sentences.append(
            f"{_join(pending)} {_number(pending, 'is', 'are')} still pending, "
            f"so {_number(pending, 'that rail', 'those rails')} can't be used yet."
        )
    if unrecognised:
        sentences.append(
            f"{_join(unrecognised)} {_number(unrecognised, 'shows', 'show')} a status the dashboard "
            f"doesn't recognise, so check with Align before using {_number(unrecognised, 'it', 'them')}."
        )
    return f"Approved overall; {' '.join(sentences)}" if sentences else None


def _rejected_rails_note(rows: tuple[StatusBreakdownRow, ...]) -> str:
    """Every row under a rejected customer is named, so no Pending or Approved row reads as hope."""
    by_status: dict[str, list[str]] = {}
    for row in rows:
        by_status.setdefault(row.status, []).append(breakdown_label(row))
    shown = []
    for status, labels in by_status.items():
        rails = list(dict.fromkeys(labels))
        badge = breakdown_status_badge(status)
        shows = _number(rails, "shows", "show")
        if status == RailStatus.PENDING:
            shown.append(f"{_join(rails)} still {shows} {badge.label}")
        elif badge.recognised:
            shown.append(f"{_join(rails)} {shows} {badge.label}")
        else:
            shown.append(f"{_join(rails)} {shows} “{badge.label}”")
    return f"Rejected overall: do not use any rail, even though {_join(shown)}."


def _labels(rows) -> list[str]:
    """The rows' labels in the order Align sent them, each once."""
    return list(dict.fromkeys(breakdown_label(row) for row in rows))


def _join(words: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _number(items: list[str], one: str, several: str) -> str:
    return one if len(items) == 1 else several


def short_customer_id(customer_id) -> str:
    """An ID short enough for a list and still told apart: "3f2a9c1e…7e91", "00000000…0429".

    The last four matter as much as the first eight: the failure drills share their first eight.
    """
    text = str(customer_id)
    return f"{text[:8]}…{text[-4:]}"


# What a link staff send may hold: printable ASCII without the space. Anything else (bidi
# controls such as U+202E, which make ".../\u202efdp.exe" read as ".../exe.pdf", invisible
# characters such as U+200B, an IDN host) can make the link read differently from where it goes,
# so it is not a link here. A proper link percent-encodes what lies outside this range.
LINK_CHARACTERS = frozenset(chr(code) for code in range(0x21, 0x7F))


def web_link(link: str | None) -> str | None:
    """The link if it is safe to render as one (printable ASCII, http or https, a host); else None."""
    if not link or not LINK_CHARACTERS.issuperset(link):
        return None
    try:
        parts = urlsplit(link)
    except ValueError:  # e.g. an unclosed "[" in the host: not a link a browser should get
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    if "@" in parts.netloc:  # "https://kyc.example@evil.example/" goes to evil.example
        return None
    return link


def inert_link_text(link: str) -> str:
    """A link that is not a web link, as text that reads as what it holds.

    Every character outside printable ASCII is written as its escape ("\\u202e"), so a bidi
    control cannot reorder the text around it and an invisible character is seen.
    """
    return "".join(char if " " <= char <= "~" else _escaped(char) for char in link)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


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


# Why the input was refused is said once, under the field; the card only says nothing happened.
INVALID_INPUT = LookupFailure("Nothing was looked up", "", 400, "check")

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
    client.RequestRefused: LookupFailure(
        "Align refused to start a new KYC session",
        "Nothing was changed; the reason was logged. If it keeps happening, tell an administrator.",
        502,
    ),
}


# The outcomes after which Align had told the dashboard a KYC status: a lookup that found the
# customer, and a new KYC session (the status Align gave it).
STATUS_SEEN_OUTCOMES = frozenset({AuditEvent.Outcome.FOUND, AuditEvent.Outcome.SESSION_STARTED})


def seen_status_badge(outcome: str, kyc_status: str) -> Badge:
    """What a user saw at a past lookup, or the status Align gave a new KYC session, in the card's words."""
    if outcome in STATUS_SEEN_OUTCOMES:
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
        return "Wait a minute before trying again."
    if seconds <= 0:
        return "You can try again now."
    if seconds >= 120:
        return f"Align asked us to wait about {round(seconds / 60)} minutes."
    return f"Align asked us to wait {seconds} second{'' if seconds == 1 else 's'}."


def describe_failure(error: client.AlignError) -> LookupFailure:
    """The card for a failed lookup; a rate limit's wait stays true however long the card is open."""
    if isinstance(error, client.RateLimited):
        sentence = _wait_words(error.retry_after)
        return LookupFailure("Align is rate-limiting us", sentence, 503, "transient", error.retry_after)
    return client.for_error(_FAILURES, error, _FAILURES[client.InvalidResponse])


# --- The KYC link: how prominently it is offered, and who already copied it -----------------


class LinkProminence(enum.StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    BEHIND_DISCLOSURE = "hidden_behind_disclosure"


@dataclass(frozen=True)
class LinkOffer:
    """How the card offers the KYC link in this KYC state, and the line that says why."""

    prominence: LinkProminence
    note: str | None = None


def link_offer(kyc: Kyc | None) -> LinkOffer:
    """The link is the main action only while KYC is pending; a rejected customer's is hidden.

    When the overall status is missing or new to the dashboard, the link stays at hand but is not
    pushed: staff cannot tell from the card whether sending it is right.
    """
    if kyc is None or kyc.status == KycStatus.PENDING:
        return LinkOffer(LinkProminence.PRIMARY)
    if kyc.status == KycStatus.APPROVED:
        return LinkOffer(LinkProminence.SECONDARY, "KYC is approved; there is normally nothing to send.")
    if kyc.status == KycStatus.REJECTED:
        return LinkOffer(
            LinkProminence.BEHIND_DISCLOSURE,
            "KYC was rejected: do not onboard. Send this link only if compliance policy says so.",
        )
    if kyc.status is None:
        return LinkOffer(
            LinkProminence.SECONDARY, "Align sent no overall KYC status: check it before sending the link."
        )
    return LinkOffer(
        LinkProminence.SECONDARY, "This KYC status is new to the dashboard: check it before sending the link."
    )


def offers_new_kyc_session(kyc: Kyc | None) -> bool:
    """Whether the card offers Start new KYC session (to those allowed; docs/staff-guide.md).

    Offered when there is nothing to send: no KYC yet, or no link that is a web link; and after a
    rejection, which Align's flow lets a lead restart. Not while pending with a working link (send
    that link instead) nor once approved (there is nothing to redo).
    """
    if kyc is None or web_link(kyc.kyc_flow_link) is None:
        return True
    return kyc.status == KycStatus.REJECTED


# A copy this recent may mean the customer already has the link in their inbox.
RECENT_COPY_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class LinkCopy:
    by: str  # the username, or "you" for the person reading the card
    at: datetime
    when: str  # "at 09:14 today", "on 24 Nov at 09:14"


@dataclass(frozen=True)
class LinkCopies:
    """Who copied a customer's KYC link, newest first, worded for the person reading the card."""

    copies: tuple[LinkCopy, ...]
    recent_warning: str | None  # set when the last copy is under an hour old

    @property
    def last(self) -> LinkCopy | None:
        return self.copies[0] if self.copies else None


def describe_link_copies(
    events: Sequence[AuditEvent] | None, *, viewer_id: int, now: datetime
) -> LinkCopies | None:
    """Usernames and times only: never anything about the customer. None when unreadable."""
    if events is None:
        return None
    copies = tuple(
        LinkCopy(
            by="you" if event.user_id == viewer_id else event.user.get_username(),
            at=event.occurred_at,
            when=_copied_when(event.occurred_at, now),
        )
        for event in events
    )
    recent_warning = _recent_copy_warning(copies[0].at, now) if copies else None
    return LinkCopies(copies, recent_warning)


def _copied_when(moment: datetime, now: datetime) -> str:
    """In the dashboard's time zone: "at 09:14 today", "on 24 Nov at 09:14", "on 3 Dec 2024 at 09:14"."""
    local, today = timezone.localtime(moment), timezone.localtime(now).date()
    if local.date() == today:
        return f"at {local:%H:%M} today"
    year = "" if local.year == today.year else f" {local.year}"
    return f"on {local.day} {local:%b}{year} at {local:%H:%M}"


def _recent_copy_warning(moment: datetime, now: datetime) -> str | None:
    elapsed = now - moment
    if elapsed >= RECENT_COPY_WINDOW:
        return None
    minutes = max(int(elapsed.total_seconds() // 60), 0)
    ago = f"{minutes} minute{'' if minutes == 1 else 's'} ago" if minutes else "less than a minute ago"
    return f"Copied {ago} — check before sending it again."
