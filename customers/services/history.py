"""How a customer's KYC got where it is, and how an open page of a pending customer keeps up.

The History section merges two records the desk keeps: the states Align pushed
(KycWebhookEvent, one per `customer.kycs.updated` delivery) and the overall statuses staff saw
at their lookups (AuditEvent rows with outcome "found"). It shows only changes: consecutive
observations of one state fold into one entry, which keeps the time of the first ("since").
So a lookup that saw exactly what the lookup before it saw, with nothing between them, can never
be an entry nor change one: the audit trail marks it as it is written, and History reads only the
others, which keeps a card's cost flat however often the customer is looked up.

A lookup records the overall status and the sub-status (rows from before the sub-status was kept
have none), so two observations are the same state when their overall statuses match and, where
both know one, their sub-statuses do. Nothing here claims a sub-status that was not observed.

A fresh lookup is the truth: when the newest webhook says otherwise (one that never arrived,
or arrived late), the card says so, and the lookup wins.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from customers.align.records import Customer, KycStatus, KycSubStatus
from customers.models import AuditEvent, KycWebhookEvent
from customers.services import audit
from customers.services import decisions as presentation
from customers.services.decisions import Badge, stored_status_code, stored_sub_status_code

logger = logging.getLogger(__name__)

# Webhook events are read newest first through their index, this many: the cost of a card stays
# the same however long the customer's history grows. The lookups come with the card's other audit
# rows (customers/services/audit.py, card_trail), as many and bounded the same way.
WEBHOOK_EVENTS_READ = 50
ALIGN_SOURCE = "Align"


@dataclass(frozen=True)
class KycState:
    """An overall status, coded as the audit log codes it, and a sub-status where one is known."""

    status: str
    # Align's sub-status, kept only while pending (the only status it qualifies); "" when unknown.
    sub_status: str = ""

    @classmethod
    def of(cls, status: str, sub_status: str = "") -> "KycState":
        return cls(status, sub_status if status == KycStatus.PENDING else "")

    @classmethod
    def of_customer(cls, customer: Customer) -> "KycState":
        kyc = customer.kycs
        return cls.of(stored_status_code(kyc), stored_sub_status_code(kyc))

    def same_as(self, other: "KycState") -> bool:
        """One state, as far as both observations know: a missing sub-status matches any."""
        if self.status != other.status:
            return False
        return not (self.sub_status and other.sub_status) or self.sub_status == other.sub_status

    @property
    def badge(self) -> Badge:
        return presentation.seen_status_badge(AuditEvent.Outcome.FOUND, self.status)

    @property
    def sub_status_badge(self) -> Badge | None:
        return presentation.sub_status_badge(self.sub_status) if self.sub_status else None

    @property
    def words(self) -> str:
        """ "Approved", "Pending · Resubmission required": the badges' words in a sentence."""
        sub_status = self.sub_status_badge
        return f"{self.badge.label} · {sub_status.label}" if sub_status else self.badge.label


@dataclass(frozen=True)
class Observation:
    """One sighting of a state: a webhook event or a lookup."""

    at: datetime
    state: KycState
    source: str  # "Align", "seen by you", "seen by j.smith"
    from_align: bool
    # Breaks ties between sightings at the same moment, in the order they were recorded.
    order: int = 0
    # A new KYC session a lead started: always an entry of its own, even when the state it gave
    # (pending) is the one the customer was already in, since the link changed.
    restart: bool = False


@dataclass(frozen=True)
class HistoryEntry:
    state: KycState
    since: datetime
    source: str
    from_align: bool


@dataclass(frozen=True)
class Disagreement:
    """Align's newest webhook says one thing, the fresh lookup another."""

    webhook_at: datetime
    webhook_says: str
    lookup_shows: str


@dataclass(frozen=True)
class KycHistory:
    entries: tuple[HistoryEntry, ...]  # newest first
    # The newest webhook event's ID: an open page asks for anything newer (0: none yet).
    newest_webhook_id: int
    disagreement: Disagreement | None
    # "New KYC session started by lead1 at 11:16 today; links copied before then no longer work."
    session_restart: str | None = None


def kyc_history(
    *, customer: Customer, trail: audit.CardTrail | None, viewer_id: int, seen_at: datetime
) -> KycHistory | None:
    """The customer's History section for `viewer_id`'s card, just fetched at `seen_at`; None when
    it can't be read.

    The audit rows are the card's (`trail`): only the lookups that saw a state other than the
    lookup before them, since the others would fold into it (audit.finish_lookup marks them), and
    the KYC sessions leads started. The webhook events are one indexed read of their own
    (webhook_customer_recent).
    """
    if trail is None:
        return None
    customer_id = customer.customer_id
    try:
        # Only the columns a history entry shows.
        events = list(
            KycWebhookEvent.objects.filter(customer_id=customer_id)
            .only("event_created_at", "kyc_status", "kyc_sub_status")
            .order_by("-id")[:WEBHOOK_EVENTS_READ]
        )
    except DatabaseError:
        logger.exception("The KYC history of customer %s could not be read", customer_id)
        return None
    return build_history(
        events,
        trail.kyc_changes,
        trail.session_starts,
        viewer_id=viewer_id,
        current=KycState.of_customer(customer),
        current_at=seen_at,
    )


def build_history(
    events: Iterable[KycWebhookEvent],
    lookups: Iterable[AuditEvent],
    session_starts: Iterable[AuditEvent] = (),
    *,
    viewer_id: int,
    current: KycState,
    current_at: datetime | None = None,
) -> KycHistory:
    """`current` is what the lookup behind this card saw, at `current_at`."""
    events, lookups, session_starts = list(events), list(lookups), list(session_starts)
    fresh = [Observation(current_at, current, "seen by you", False)] if current_at is not None else []
    observations = (
        fresh
        + [
            Observation(
                event.event_created_at,
                KycState.of(event.kyc_status, event.kyc_sub_status),
                ALIGN_SOURCE,
                True,
                event.pk,
            )
            for event in events
        ]
        + [
            Observation(
                lookup.occurred_at,
                KycState.of(lookup.kyc_status, lookup.kyc_sub_status),
                f"seen by {_who(lookup, viewer_id)}",
                False,
                lookup.pk,
            )
            for lookup in lookups
        ]
        + [
            Observation(
                start.occurred_at,
                KycState.of(start.kyc_status),
                f"new KYC session, by {_who(start, viewer_id)}",
                False,
                start.pk,
                restart=True,
            )
            for start in session_starts
        ]
    )
    newest_webhook = max(events, key=lambda event: (event.event_created_at, event.pk), default=None)
    disagreement = None
    if newest_webhook is not None:
        said = KycState.of(newest_webhook.kyc_status, newest_webhook.kyc_sub_status)
        if not said.same_as(current):
            disagreement = Disagreement(newest_webhook.event_created_at, said.words, current.words)
    newest_start = max(session_starts, key=lambda start: start.pk, default=None)
    session_restart = None
    if newest_start is not None:
        session_restart = presentation.session_restart_note(
            by=_who(newest_start, viewer_id),
            at=newest_start.occurred_at,
            now=current_at or timezone.now(),
        )
    return KycHistory(
        entries=fold(observations),
        newest_webhook_id=max((event.pk for event in events), default=0),
        disagreement=disagreement,
        session_restart=session_restart,
    )


def _who(event: AuditEvent, viewer_id: int) -> str:
    """Who did it, as the person reading the card says it: "you", or the username."""
    return "you" if event.user_id == viewer_id else event.user.get_username()


def fold(observations: Iterable[Observation]) -> tuple[HistoryEntry, ...]:
    """Only the changes, newest first: a run of one state is one entry, with the run's first time.

    A run learns its sub-status from whichever sighting knows it, so a later sighting with
    another sub-status starts a new entry even when the run began with a lookup, which knew none.
    """
    entries: list[HistoryEntry] = []
    run: KycState | None = None
    for seen in sorted(observations, key=lambda seen: (seen.at, not seen.from_align, seen.order)):
        if run is not None and seen.state.same_as(run) and not seen.restart:
            if not run.sub_status and seen.state.sub_status:
                run = seen.state
            continue
        entries.append(HistoryEntry(seen.state, seen.at, seen.source, seen.from_align))
        run = seen.state
    return tuple(reversed(entries))


# --- An open page of a pending customer watches for changes (static/js/watch.js) -------------

WEBHOOK_MODE = "webhook"
FALLBACK_MODE = "fallback"
AUTOMATIC_REFRESH = "auto"
# On an automatic refresh's answer: when the check ran, as the card shows times ("14:02").
CHECKED_AT_HEADER = "X-Checked-At"


@dataclass(frozen=True)
class KycWatch:
    """What the customer card tells watch.js: how to learn of a change, and how often to ask.

    With webhooks, the page asks our own server (`changes_url`, one indexed query) and looks the
    customer up again only when a newer webhook arrived. Without them, it looks the customer up
    again itself, less often, and stops after a while.
    """

    mode: str
    refresh_url: str
    poll_seconds: int
    changes_url: str = ""
    after: int = 0
    stop_after_seconds: int = 0  # 0: keeps watching as long as the page is open and pending


def watch_for(customer: Customer, history: KycHistory | None) -> KycWatch | None:
    """Only a pending customer is watched: the other statuses are where KYC ends."""
    kyc = customer.kycs
    if kyc is None or kyc.status != KycStatus.PENDING:
        return None
    was = {"refresh": AUTOMATIC_REFRESH, "was": str(kyc.status)}
    if isinstance(kyc.sub_status, KycSubStatus):
        was["was_sub"] = str(kyc.sub_status)
    refresh_url = f"{reverse('customers:detail', args=[customer.customer_id])}?{urlencode(was)}"
    if not settings.ALIGN_WEBHOOKS_ENABLED:
        return KycWatch(
            FALLBACK_MODE,
            refresh_url,
            settings.DASHBOARD_FALLBACK_POLL_SECONDS,
            stop_after_seconds=settings.DASHBOARD_FALLBACK_POLL_MINUTES * 60,
        )
    if history is None:  # without the newest event's ID, every poll would look like news
        return None
    return KycWatch(
        WEBHOOK_MODE,
        refresh_url,
        settings.DASHBOARD_WATCH_POLL_SECONDS,
        changes_url=reverse("customers:kyc_changes", args=[customer.customer_id]),
        after=history.newest_webhook_id,
    )


def state_before_refresh(query: Mapping[str, str]) -> KycState | None:
    """What the page showed before it refreshed itself (`was`, `was_sub`), known codes only.

    These come from the address, so they are checked against the contract's values and never
    shown as sent; anything else reads as "not known".
    """
    try:
        status = KycStatus(query.get("was", ""))
    except ValueError:
        return None
    try:
        sub_status = KycSubStatus(query.get("was_sub", "")) if query.get("was_sub") else ""
    except ValueError:
        sub_status = ""
    return KycState.of(str(status), str(sub_status))


@dataclass(frozen=True)
class StatusChange:
    """ "Status changed: Pending → Approved, 14:02": highlighted once, on the card that shows it."""

    before: str
    after: str
    at: datetime


def status_change(before: KycState | None, customer: Customer, *, at: datetime) -> StatusChange | None:
    now = KycState.of_customer(customer)
    if before is None or before.same_as(now):
        return None
    return StatusChange(before.words, now.words, at)
