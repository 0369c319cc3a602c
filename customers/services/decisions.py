"""The words and badges staff read, and what they may do, decided in one place from what Align sent.

Everything here is a pure function of the parsed records, so the template stays a layout and
every sentence a compliance officer reads can be tested without rendering a page. Each decision
is made once, by one function, and every place that shows it (the card, a bulk row and its CSV,
the e-mail results, History, the admin) asks that function:

- link_decision: offer the KYC link, offer it with a warning, or withhold it, and why;
- kyc_warnings: values new to the dashboard, and rails that read against the overall status;
- next_step: what staff do next;
- stored_status_code: the overall status as the audit trail and the webhook events store it.
"""

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.text import get_text_list

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


class LinkAction(enum.StrEnum):
    """What staff may do with a customer's KYC link."""

    OFFER = "offer"
    OFFER_WITH_WARNING = "offer_with_warning"
    WITHHOLD = "withhold"


@dataclass(frozen=True)
class LinkDecision:
    """What staff may do with the KYC link, and why: one answer for every place that shows the link.

    `reason` is what a list or a CSV cell says where the link would be: why it is withheld, or what
    to check before sending it. `note` is the card's sentence beside the link. `link` is the web
    link Align sent, kept even when withheld: only the card reveals a withheld link, behind its
    deliberate "Show link anyway", where a copy is audited like any other.
    """

    action: LinkAction
    reason: str = ""
    note: str = ""
    link: str | None = None
    primary: bool = False  # the card's main action: a pending customer needs the link

    @property
    def handed_out(self) -> str:
        """The link a list or a CSV may show and copy: none when it is withheld."""
        return "" if self.action == LinkAction.WITHHOLD or self.link is None else self.link


@dataclass(frozen=True)
class KycSummary:
    """Everything the card and a bulk row say about a KYC state, each part from its one decision."""

    badge: Badge
    sub_status: Badge | None
    explanation: str
    next_step: str | None
    warnings: tuple[str, ...]
    link: LinkDecision


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
    badge, sub_status, explanation = _status_words(kyc)
    return KycSummary(
        badge=badge,
        sub_status=sub_status,
        explanation=explanation,
        next_step=next_step(kyc),
        warnings=kyc_warnings(kyc),
        link=link_decision(kyc),
    )


def _status_words(kyc: Kyc | None) -> tuple[Badge, Badge | None, str]:
    """The status badge, the sub-status badge (only while pending) and the sentence that explains them."""
    if kyc is None:
        return NOT_STARTED_BADGE, None, "There is no KYC link to send the customer yet."
    if kyc.status is None:
        return UNKNOWN_STATUS_BADGE, None, "Align returned no overall status."
    if kyc.status == KycStatus.APPROVED:
        return STATUS_BADGES[KycStatus.APPROVED], None, "KYC approved."
    if kyc.status == KycStatus.REJECTED:
        return STATUS_BADGES[KycStatus.REJECTED], None, "KYC rejected."
    if kyc.status != KycStatus.PENDING:
        return _unrecognised(kyc.status), None, UNRECOGNISED_NOTE
    pending = STATUS_BADGES[KycStatus.PENDING]
    if kyc.sub_status is None:
        return pending, None, "KYC is in progress; Align gave no detail."
    if isinstance(kyc.sub_status, KycSubStatus):
        return pending, sub_status_badge(kyc.sub_status), SUB_STATUS_WORDS[kyc.sub_status][1]
    return pending, sub_status_badge(kyc.sub_status), UNRECOGNISED_NOTE


def sub_status_badge(sub_status: KycSubStatus | str) -> Badge:
    """A pending customer's sub-status in the card's words; one the dashboard doesn't know, as sent."""
    try:
        label = SUB_STATUS_WORDS[KycSubStatus(sub_status)][0]
    except ValueError:
        return _unrecognised(sub_status)
    return Badge(label, "pending")


# --- What staff do next ---------------------------------------------------------------------

NOT_STARTED_NEXT_STEP = (
    "Align has no KYC for this customer yet. A compliance lead can start one with "
    "Start new KYC session on this card; then send the customer its link."
)
# Sub-statuses whose next step is sending the customer the KYC link.
LINK_SENDING_SUB_STATUSES = frozenset({KycSubStatus.FORM_STARTED, KycSubStatus.RESUBMISSION_REQUIRED})
# When that link is withheld (missing, or not a web link), the usual next step would tell staff to send it.
NO_LINK_TO_SEND = (
    "Align sent no KYC link that can be sent, so there is nothing to send the customer yet. "
    "A compliance lead can start a new KYC session on this card, which gives a new link."
)


def next_step(kyc: Kyc | None) -> str | None:
    """What staff do next in this KYC state; None when there is nothing for them to do.

    It never tells staff to send a link that link_decision withholds.
    """
    if kyc is None:
        return NOT_STARTED_NEXT_STEP
    if kyc.status is None:
        return "Check again later; if it persists, raise it with Align."
    if kyc.status == KycStatus.REJECTED:
        return "Do not onboard; escalate per policy."
    if kyc.status != KycStatus.PENDING or not isinstance(kyc.sub_status, KycSubStatus):
        return None
    if kyc.sub_status in LINK_SENDING_SUB_STATUSES and link_decision(kyc).action == LinkAction.WITHHOLD:
        return NO_LINK_TO_SEND
    return SUB_STATUS_WORDS[kyc.sub_status][2]


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


def kyc_warnings(kyc: Kyc | None) -> tuple[str, ...]:
    """What staff must read before acting on this KYC state: the values new to the dashboard, then
    the sentence for breakdown rows that could be read against the overall status (rails_note).

    Empty when everything is known and agrees, so a list shows a warning only where one is due.
    """
    if kyc is None:
        return ()
    warnings = []
    new_values = _unrecognised_values(kyc)
    if new_values:
        warnings.append(
            f"New to the dashboard, shown as sent: {_join(new_values)}. "
            f"Check with Align before relying on {_number(new_values, 'it', 'them')}."
        )
    note = rails_note(kyc)
    if note:
        warnings.append(note)
    return tuple(warnings)


def _unrecognised_values(kyc: Kyc) -> list[str]:
    """Each value Align sent that the contract does not list, named once, in the order it was sent.

    A sub-status is named only while pending: under any other status the card does not show it.
    """
    values = []
    if kyc.status is not None and not isinstance(kyc.status, KycStatus):
        values.append(f"the KYC status “{kyc.status}”")
    sub_status = kyc.sub_status if kyc.status == KycStatus.PENDING else None
    if sub_status is not None and not isinstance(sub_status, KycSubStatus):
        values.append(f"the sub-status “{sub_status}”")
    for row in kyc.status_breakdown:
        if not isinstance(row.currency, Currency):
            values.append(f"the currency “{row.currency}”")
        if not isinstance(row.payment_rails, PaymentRail):
            values.append(f"the rail “{row.payment_rails}”")
        if not isinstance(row.status, RailStatus):
            values.append(f"the status “{row.status}” of {breakdown_label(row)}")
    return list(dict.fromkeys(values))


def rails_note(kyc: Kyc) -> str | None:
    """A sentence when the breakdown rows could be read against the overall status, naming the rails.

    Staff may use a rail only when KYC is approved overall and that rail's row is approved, so a
    Pending row under an approved customer, or any hopeful row under a rejected or undecided one,
    is spelled out; when the rows agree with the overall status there is nothing to say. A row
    status new to the dashboard is named by kyc_warnings, with every other value it doesn't know.
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
    if not pending:
        return None
    return (
        f"Approved overall; {_join(pending)} {_number(pending, 'is', 'are')} still pending, "
        f"so {_number(pending, 'that rail', 'those rails')} can't be used yet."
    )


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
    return get_text_list(words, "and")


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


def stored_status_code(kyc: Kyc | client.KycSession | None) -> str:
    """The overall KYC status as the desk stores it: "" without a KYC record, AuditEvent.KYC_STATUS_NOT_SENT
    when Align sent none, else Align's code as sent, cut to the column's 40 characters.

    A lookup's audit row, a webhook event and a new KYC session all store it so, which is what lets
    History compare them and seen_status_badge read any of them back in the card's words.
    """
    if kyc is None:
        return ""
    if kyc.status is None:
        return AuditEvent.KYC_STATUS_NOT_SENT
    return str(kyc.status)[:40]


def stored_sub_status_code(kyc: Kyc | None) -> str:
    """The sub-status as the desk stores it beside stored_status_code: Align's code, or "" when none."""
    return str(kyc.sub_status)[:60] if kyc is not None and kyc.sub_status else ""


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


# --- The KYC link: whether staff may hand it out, and who already copied it ------------------

NOT_A_WEB_LINK_NOTE = (
    "This is not a plain web link (http or https, printable characters only, no user name before the "
    "host), so it is not clickable and must not be sent to the customer. Report it to an administrator."
)
NO_STATUS_WARNING = "Align sent no overall KYC status: check it before sending the link."
NEW_STATUS_WARNING = "This KYC status is new to the dashboard: check it before sending the link."


def link_decision(kyc: Kyc | None) -> LinkDecision:
    """Whether staff may hand the KYC link out, for the card, a bulk row and the bulk CSV alike.

    Offered as the main action while KYC is pending, and quietly once approved. Withheld when
    there is no KYC, no link, or none that is a web link, and after a rejection. When the overall
    status is missing or new to the dashboard, staff cannot tell whether sending it is right, so it
    is offered with a warning to check first.
    """
    if kyc is None:
        return LinkDecision(LinkAction.WITHHOLD, reason="No KYC link yet")
    link = web_link(kyc.kyc_flow_link)
    if link is None and kyc.kyc_flow_link:
        return LinkDecision(
            LinkAction.WITHHOLD, reason="Not a web link: open the customer", note=NOT_A_WEB_LINK_NOTE
        )
    if link is None:
        return LinkDecision(
            LinkAction.WITHHOLD, reason="Align sent no KYC link", note="Align sent no KYC link."
        )
    if kyc.status == KycStatus.PENDING:
        return LinkDecision(LinkAction.OFFER, link=link, primary=True)
    if kyc.status == KycStatus.APPROVED:
        return LinkDecision(
            LinkAction.OFFER, note="KYC is approved; there is normally nothing to send.", link=link
        )
    if kyc.status == KycStatus.REJECTED:
        return LinkDecision(
            LinkAction.WITHHOLD,
            reason="Hidden: KYC rejected. Open the customer.",
            note="KYC was rejected: do not onboard. Send this link only if compliance policy says so.",
            link=link,
        )
    warning = NO_STATUS_WARNING if kyc.status is None else NEW_STATUS_WARNING
    return LinkDecision(LinkAction.OFFER_WITH_WARNING, reason=warning, note=warning, link=link)


def offers_new_kyc_session(kyc: Kyc | None) -> bool:
    """Whether the card offers Start new KYC session (to those allowed; docs/staff-guide.md).

    Offered when there is nothing to send: no KYC yet, or no link that is a web link; and after a
    rejection, which Align's flow lets a lead restart. Not while pending with a working link (send
    that link instead) nor once approved (there is nothing to redo).
    """
    if kyc is None or link_decision(kyc).link is None:
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
    events: Sequence[AuditEvent] | None, *, viewer_id: int, now: datetime, kyc: Kyc | None = None
) -> LinkCopies | None:
    """Usernames and times only: never anything about the customer. None when unreadable.

    `kyc` is the customer's KYC as the card shows it now, so a recent copy is worded for today's
    state; without it (the Copy link beacon's answer) the copy is worded as for a pending customer.
    """
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
    recent_warning = _recent_copy_warning(copies[0].at, now, kyc) if copies else None
    return LinkCopies(copies, recent_warning)


def session_restart_note(*, by: str, at: datetime, now: datetime) -> str:
    """Said beside the link once a lead started a new KYC session: the link copied before it is dead."""
    return (
        f"New KYC session started by {by} {_copied_when(at, now)}; links copied before then no longer work."
    )


def _copied_when(moment: datetime, now: datetime) -> str:
    """In the dashboard's time zone: "at 09:14 today", "on 24 Nov at 09:14", "on 3 Dec 2024 at 09:14"."""
    local, today = timezone.localtime(moment), timezone.localtime(now).date()
    if local.date() == today:
        return f"at {local:%H:%M} today"
    year = "" if local.year == today.year else f" {local.year}"
    return f"on {local.day} {local:%b}{year} at {local:%H:%M}"


def _recent_copy_warning(moment: datetime, now: datetime, kyc: Kyc | None) -> str | None:
    elapsed = now - moment
    if elapsed >= RECENT_COPY_WINDOW:
        return None
    minutes = max(int(elapsed.total_seconds() // 60), 0)
    ago = f"{minutes} minute{'' if minutes == 1 else 's'} ago" if minutes else "less than a minute ago"
    status = kyc.status if kyc is not None else None
    if status == KycStatus.APPROVED:
        return f"Copied {ago}; KYC is approved now, so there is nothing more to send."
    if status == KycStatus.REJECTED:
        return f"Copied {ago}; KYC is rejected now: don't send it again."
    return f"Copied {ago} — check before sending it again."
