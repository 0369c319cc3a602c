"""The audit trail: every lookup, copied KYC link, bulk lookup and export, against the signed-in user.

A lookup is recorded in two steps. The row is written *before* Align is asked, so no customer
is ever fetched without a record of who asked; if that write fails, the lookup does not
happen. The outcome is written afterwards; if that write fails, the page is still shown
(its access is already on record, as "started") and the failure is logged.

A customer's card reads what the trail adds to it (its History's lookups and KYC sessions, the
link's last copies, the user's recent lookups) in one query, card_trail(), whose every part is a
walk of a bounded length: the outcome's write marks the lookups History and Your recent lookups
can skip, so the card costs the same however often the customer was looked up.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.db.models import F, QuerySet
from django.utils import timezone

from customers.align import client
from customers.align.records import Customer
from customers.models import (
    NEWEST_FIRST,
    AuditEvent,
    AuditExport,
    BulkLookup,
    BulkLookupExport,
)
from customers.services import card_walks
from customers.services.decisions import stored_status_code, stored_sub_status_code
from dashboard.accounts.sessions import SESSION_STARTED_KEY
from dashboard.ops import metrics
from dashboard.ops.client_ip import client_ip

logger = logging.getLogger(__name__)

Outcome = AuditEvent.Outcome

RECENT_LOOKUPS_SHOWN = 10
# Recent lookups are read newest first, this many rows and then twice as many each time, and
# never more rows than RECENT_LOOKUPS_SCANNED, whatever the size of the audit trail.
RECENT_LOOKUPS_FIRST_CHUNK = 25
RECENT_LOOKUPS_SCANNED = 1000
LINK_COPIES_SHOWN = 5
# The customer's newest lookups that saw a KYC state other than the lookup before them: History's.
KYC_CHANGES_READ = 50
# A customer's KYC sessions started through the desk that History reads: the newest decides the
# card's "links copied before then no longer work", and a few more show in its list.
KYC_SESSION_STARTS_READ = 5
# What shows staff a customer's card: a lookup, or a search by e-mail that found exactly that one.
SHOWN_CUSTOMER_ACTIONS = [AuditEvent.Action.LOOKUP, AuditEvent.Action.EMAIL_SEARCH]
# A KYC link copy is believed from a user who looked the customer up since signing in, or this
# recently: sessions that began before the sign-in time was kept still have their lookups count.
COPY_NEEDS_LOOKUP_WITHIN = timedelta(hours=1)

_OUTCOMES_BY_ERROR: dict[type[client.AlignError], str] = {
    client.CustomerNotFound: Outcome.NOT_FOUND,
    client.InvalidResponse: Outcome.INVALID_RESPONSE,
    client.ApiKeyRejected: Outcome.KEY_REJECTED,
    client.RateLimited: Outcome.RATE_LIMITED,
    client.UpstreamTimeout: Outcome.TIMEOUT,
    client.UpstreamUnreachable: Outcome.UNREACHABLE,
    client.UpstreamError: Outcome.UPSTREAM_ERROR,
    client.AlignNotConfigured: Outcome.NOT_CONFIGURED,
    client.RequestRefused: Outcome.REFUSED,
}


class AuditUnavailable(Exception):
    """The audit trail cannot be written, so the action it would record must not happen."""


class NoLookupOnRecord(Exception):
    """This user has not looked the customer up lately, so they cannot have copied its KYC link."""


@dataclass(frozen=True)
class Actor:
    """Who acts, from where, in which request: taken from the request once, so that work which
    outlives it (a bulk lookup's threads) is recorded exactly like the request's own."""

    user: object
    client_ip: str | None
    request_id: str

    @classmethod
    def of(cls, request) -> "Actor":
        return cls(
            user=request.user,
            client_ip=client_ip(request) or None,
            request_id=getattr(request, "request_id", ""),
        )


def outcome_of_failure(error: client.AlignError) -> str:
    return client.for_error(_OUTCOMES_BY_ERROR, error, Outcome.UPSTREAM_ERROR)


def start_lookup(request, customer_id: uuid.UUID, *, is_refresh: bool, automatic: bool = False) -> AuditEvent:
    """Record that this user is about to look this customer up; raise AuditUnavailable if we can't.

    `automatic`: the customer's open page refreshed itself (customers/services/history.py), not staff.
    """
    return start_lookup_as(Actor.of(request), customer_id, is_refresh=is_refresh, automatic=automatic)


def start_lookup_as(
    actor: Actor,
    customer_id: uuid.UUID,
    *,
    is_refresh: bool = False,
    batch_id: uuid.UUID | None = None,
    automatic: bool = False,
) -> AuditEvent:
    """start_lookup without a request: for a bulk lookup's rows, which carry their batch's ID.

    A lookup of one customer shows a card, the first of a run until its outcome says otherwise.
    """
    return _write(
        actor,
        AuditEvent.Action.LOOKUP,
        customer_id=customer_id,
        is_refresh=is_refresh,
        batch_id=batch_id,
        automatic=automatic,
        repeats_last_card=False if batch_id is None else None,
    )


def finish_lookup(event: AuditEvent, *, customer: Customer | None = None, error=None) -> None:
    """Record how the lookup ended. Never raises: the result must reach the user regardless.

    The same UPDATE lets the database mark what later cards may skip, as it knows the rows before
    this one and this write is made anyway (card_walks):

    - kyc_unchanged, for a found lookup whose state is exactly that of the customer's lookup before
      it (by ID, whatever its outcome), with no KYC session started and no webhook of Align's time
      since that one. In History's order it then follows a sighting of the same state and folds into
      it without changing anything (customers/services/history.py, fold), so History is the same
      without it. A failure before it, a session, a webhook, a row still "started": not marked. A
      webhook arriving after this write with an earlier time of Align's can still fall between
      them; missing it moves History's "since" to a later sighting of the same state, no more.
    - repeats_last_card, for a lookup of one customer whose user's card before it was of the same
      customer: the newest first card of a run below it (audit_user_shown_recent) is the run's.
    """
    # The one broad except of the audit trail, because "never raises" is this function's
    # contract: whatever fails here (the database, or a value it cannot store, such as text that
    # cannot be encoded), the lookup's access is already on record as "started", and the page
    # must still be shown. The failure is logged with its traceback, so it is not lost.
    try:
        marks = []
        if customer is not None:
            event.outcome = Outcome.FOUND
            event.kyc_status = stored_status_code(customer.kycs)
            event.kyc_sub_status = stored_sub_status_code(customer.kycs)
            event.kyc_unchanged = card_walks.kyc_unchanged(event)
            marks.append("kyc_unchanged")
        else:
            event.outcome = outcome_of_failure(error)
        if event.batch_id is None:
            event.repeats_last_card = card_walks.repeats_last_card(event)
            marks.append("repeats_last_card")
        metrics.LOOKUPS.labels(outcome=event.outcome).inc()
        event.save(update_fields=["outcome", "kyc_status", "kyc_sub_status", *marks])
        for mark in marks:
            # The database decided it; this instance holds the question, so it forgets it (a read
            # would load the answer).
            del event.__dict__[mark]
    except Exception:
        metrics.AUDIT_WRITE_FAILURES.labels(action=AuditEvent.Action.LOOKUP).inc()
        logger.exception("Audit: the outcome of lookup %s could not be written; it stays 'started'", event.pk)


def record_link_copied(request, customer_id: uuid.UUID) -> AuditEvent:
    """Record that this user copied the customer's KYC link, if they can have been shown it.

    The link is only ever on the card a lookup shows, so a copy from someone with no lookup of
    the customer on record did not come from the dashboard: it is refused (NoLookupOnRecord) and
    the attempt logged, rather than put on record as a copy that never happened. Raises
    AuditUnavailable when the audit log can be neither read nor written.
    """
    if not _shown_lately(request, customer_id):
        logger.warning(
            "Audit: a link copy for customer %s was refused: this user has not looked it up lately",
            customer_id,
        )
        raise NoLookupOnRecord
    return _write(
        Actor.of(request), AuditEvent.Action.LINK_COPIED, customer_id=customer_id, outcome=Outcome.COPIED
    )


def _shown_lately(request, customer_id: uuid.UUID) -> bool:
    """Whether this user looked the customer up, since signing in or within the last hour.

    "Started" counts: it is what a lookup that showed the customer stays at when its outcome
    could not be written.
    """
    since = timezone.now() - COPY_NEEDS_LOOKUP_WITHIN
    signed_in_at = request.session.get(SESSION_STARTED_KEY)
    if signed_in_at is not None:
        since = min(since, datetime.fromtimestamp(signed_in_at, tz=UTC))
    lookups = AuditEvent.objects.filter(
        customer_id=customer_id,
        action__in=SHOWN_CUSTOMER_ACTIONS,
        user=request.user,
        outcome__in=[Outcome.FOUND, Outcome.STARTED],
        occurred_at__gte=since,
    )
    try:
        # audit_user_customer_recent starts at this user's lookups of this customer in the
        # window and reads only those: the cost does not grow with the audit trail.
        return lookups.exists()
    except DatabaseError as error:
        logger.exception("Audit: lookups behind a link copy of customer %s could not be read", customer_id)
        raise AuditUnavailable from error


def record_export(request, *, rows: int, filters: str, all_matching: bool) -> AuditExport:
    """Record an export of the audit log before it is made; raise AuditUnavailable if we can't."""
    return _create(
        AuditExport,
        Actor.of(request),
        metric_action="export",
        failure="an export of the audit log could not be recorded",
        rows=rows,
        filters=filters,
        all_matching=all_matching,
    )


def recent_lookups(user) -> list[AuditEvent] | None:
    """The user's last distinct customers with what was seen the last time; None if unreadable.

    The audit trail only grows, so this never groups over all of the user's lookups. A user's cards
    come in runs of one customer (an open pending page refreshing itself makes long ones), and
    finish_lookup marks every card of a run but the first (repeats_last_card). So it walks the
    user's newest runs by their first cards through audit_user_shown_recent and reads, in the same
    query, the newest card of each of their customers through audit_user_customer_cards. The first
    read of RECENT_LOOKUPS_FIRST_CHUNK runs nearly always suffices; a user who went back and forth
    between the same few customers needs more, each read twice the last, and after
    RECENT_LOOKUPS_SCANNED runs (six reads) it stops and shows the customers found so far. Every
    read is a few index walks of a bounded length, so the cost is the same at ten rows or a million,
    and however often one customer was looked up.
    """
    try:
        return _recent_lookups(user, first_read=None)
    except DatabaseError:
        logger.exception("Audit: recent lookups could not be read")
        return None


def _recent_lookups(user, *, first_read: list[AuditEvent] | None) -> list[AuditEvent]:
    """recent_lookups(), raising DatabaseError; `first_read` holds the rows of its first read if
    they were read already, with others (card_trail's)."""
    newest_by_customer: dict[uuid.UUID, AuditEvent] = {}
    chunk_size, scanned, before = RECENT_LOOKUPS_FIRST_CHUNK, 0, None
    rows = first_read
    while scanned < RECENT_LOOKUPS_SCANNED:
        size = min(chunk_size, RECENT_LOOKUPS_SCANNED - scanned)
        if rows is None:
            if before is None:
                walks = card_walks.runs_and_their_newest_cards(user_id=user.pk, size=size)
            else:
                walks = card_walks.runs_below_and_their_newest_cards(user_id=user.pk, below=before, size=size)
            rows = list(AuditEvent.objects.filter(pk__in=walks).order_by().only(*_RECENT_LOOKUP_FIELDS))
        cards = sorted((event for event in rows if _is_card_of(event, user)), key=_newest_first)
        newest_card_read: dict[uuid.UUID, AuditEvent] = {}
        for event in cards:
            newest_card_read.setdefault(event.customer_id, event)
        # The runs of this read are its newest first cards below `before`: any other row read is
        # either a newer card of the same customers or older than all of them.
        runs = [
            event for event in cards if not event.repeats_last_card and (before is None or event.pk < before)
        ]
        for run in runs[:size]:
            newest_by_customer.setdefault(run.customer_id, newest_card_read[run.customer_id])
        if len(newest_by_customer) >= RECENT_LOOKUPS_SHOWN or len(runs) < size:
            break
        before = runs[size - 1].pk
        scanned += size
        chunk_size *= 2
        rows = None
    return sorted(newest_by_customer.values(), key=_newest_first)[:RECENT_LOOKUPS_SHOWN]


# What a row of Your recent lookups shows, and what tells a card and the first of a run: no more, as
# whole rows (a JSON column among them) cost a lookup more than the read itself.
_RECENT_LOOKUP_FIELDS = (
    "customer_id",
    "occurred_at",
    "outcome",
    "kyc_status",
    "action",
    "batch",
    "user",
    "repeats_last_card",
)


def _is_card_of(event: AuditEvent, user) -> bool:
    """Whether the row showed `user` a customer's card (SHOWN_CARD, in Python)."""
    return (
        event.user_id == user.pk
        and event.action in SHOWN_CUSTOMER_ACTIONS
        and event.customer_id is not None
        and event.batch_id is None
    )


def _newest_first(event: AuditEvent) -> int:
    return -event.pk


def link_copies(*, customer_id: uuid.UUID, limit: int = LINK_COPIES_SHOWN) -> list[AuditEvent] | None:
    """Who copied this customer's KYC link lately, newest first, with their users; None if unreadable.

    One query on the audit_customer_action_recent index. Reading it is not itself audited: it
    shows what staff did with the link, not the customer, and the lookup that shows it is on record.
    """
    try:
        username = "user__" + get_user_model().USERNAME_FIELD
        return list(_link_copies(customer_id).select_related("user").only("occurred_at", username)[:limit])
    except DatabaseError:
        logger.exception("Audit: the link copies of customer %s could not be read", customer_id)
        return None


@dataclass(frozen=True)
class CardTrail:
    """What the audit trail adds to one customer's card, as card_trail() reads it in one query.

    Each part holds what its own read would: `kyc_changes`, the customer's newest found lookups
    that History has not seen yet (kyc_unchanged False); `session_starts`, the KYC sessions leads
    started (as kyc_session_starts); `link_copies`, as link_copies(); `recent_lookups`, as
    recent_lookups() for the user. All newest first, with their users.
    """

    kyc_changes: tuple[AuditEvent, ...]
    session_starts: tuple[AuditEvent, ...]
    link_copies: list[AuditEvent]
    recent_lookups: list[AuditEvent] | None


def card_trail(*, customer_id: uuid.UUID, user) -> CardTrail | None:
    """The audit rows of a customer's card for `user`, in one query; None if unreadable.

    One SELECT of the rows whose IDs five bounded index walks name (a UNION ALL, card_walks.card),
    so the database plans each walk on its own index and the rows come back once:

    - History's lookups: the customer's newest KYC_CHANGES_READ of audit_customer_kyc_changes;
    - KYC sessions started and link copies: the newest few of audit_customer_action_recent;
    - Your recent lookups: recent_lookups()'s first read, the user's newest runs of cards of one
      customer by their first cards (audit_user_shown_recent) and the newest card of each of their
      customers (audit_user_customer_cards, one seek each).

    Python then sorts each row to the parts it belongs to. When the runs read hold fewer than
    RECENT_LOOKUPS_SHOWN customers and more runs may follow (a user going back and forth between a
    few customers), recent lookups read on, as recent_lookups() does.
    """
    walks = card_walks.card(
        customer_id=customer_id,
        user_id=user.pk,
        kyc_changes=KYC_CHANGES_READ,
        session_starts=KYC_SESSION_STARTS_READ,
        link_copies=LINK_COPIES_SHOWN,
        runs=RECENT_LOOKUPS_FIRST_CHUNK,
    )
    # Sorted here, not by the database: the rows are few, and its sort would be a temporary B-tree.
    username = get_user_model().USERNAME_FIELD
    rows = (
        AuditEvent.objects.filter(pk__in=walks)
        .order_by()
        .only(*_CARD_TRAIL_FIELDS)
        .annotate(username=F(f"user__{username}"))
    )
    try:
        rows = sorted(rows, key=_newest_first)
    except DatabaseError:
        logger.exception("Audit: the card's audit rows of customer %s could not be read", customer_id)
        return None
    _with_their_users(rows)
    of_this_customer = [event for event in rows if event.customer_id == customer_id]
    try:
        recent = _recent_lookups(user, first_read=rows)
    except DatabaseError:
        logger.exception("Audit: recent lookups could not be read")
        recent = None
    return CardTrail(
        kyc_changes=tuple(
            event
            for event in of_this_customer
            if event.action == AuditEvent.Action.LOOKUP
            and event.outcome == Outcome.FOUND
            and not event.kyc_unchanged
        )[:KYC_CHANGES_READ],
        session_starts=tuple(
            event
            for event in of_this_customer
            if event.action == AuditEvent.Action.KYC_SESSION_STARTED
            and event.outcome == Outcome.SESSION_STARTED
        )[:KYC_SESSION_STARTS_READ],
        link_copies=[event for event in of_this_customer if event.action == AuditEvent.Action.LINK_COPIED][
            :LINK_COPIES_SHOWN
        ],
        recent_lookups=recent,
    )


# What the card shows of an audit row, and what card_trail() sorts the rows to their parts by.
_CARD_TRAIL_FIELDS = (
    "occurred_at",
    "user",
    "action",
    "customer_id",
    "outcome",
    "kyc_status",
    "kyc_sub_status",
    "kyc_unchanged",
    "repeats_last_card",
    "batch",
)


def _with_their_users(events: list[AuditEvent]) -> None:
    """Give each row its user, one instance per user with their username only: what the card says of
    them ("by j.smith"). A user per row, as select_related makes them, cost more than the query."""
    user_model = get_user_model()
    users: dict[int, object] = {}
    for event in events:
        if event.user_id not in users:
            users[event.user_id] = user_model(pk=event.user_id, **{user_model.USERNAME_FIELD: event.username})
        event.user = users[event.user_id]


def _session_starts(customer_id: uuid.UUID) -> QuerySet[AuditEvent]:
    """Newest first through audit_customer_action_recent."""
    return AuditEvent.objects.filter(
        customer_id=customer_id,
        action=AuditEvent.Action.KYC_SESSION_STARTED,
        outcome=AuditEvent.Outcome.SESSION_STARTED,
    ).order_by(NEWEST_FIRST)


def _link_copies(customer_id: uuid.UUID) -> QuerySet[AuditEvent]:
    """Newest first through audit_customer_action_recent."""
    return AuditEvent.objects.filter(customer_id=customer_id, action=AuditEvent.Action.LINK_COPIED).order_by(
        NEWEST_FIRST
    )


def kyc_session_starts(*, customer_id: uuid.UUID, limit: int = KYC_SESSION_STARTS_READ) -> list[AuditEvent]:
    """The customer's newest KYC sessions started through the desk, with their users, newest first.

    One query on the audit_customer_action_recent index. Raises DatabaseError: the new session's
    guard, which asks, decides what an unreadable trail means (a card reads them in card_trail).
    """
    username = "user__" + get_user_model().USERNAME_FIELD
    return list(
        _session_starts(customer_id)
        .select_related("user")
        .only("occurred_at", "kyc_status", username)[:limit]
    )


def _write(actor: Actor, action: str, *, outcome: str = Outcome.STARTED, **fields) -> AuditEvent:
    """An audit event by `actor`; "started" unless said otherwise, as an action is recorded before it runs.

    No card unless said otherwise (repeats_last_card empty): only a lookup of one customer shows one
    as it starts.
    """
    fields.setdefault("repeats_last_card", None)
    return _create(
        AuditEvent,
        actor,
        metric_action=action,
        failure=f"a {action} event could not be written",
        action=action,
        outcome=outcome,
        **fields,
    )


def _create(model, actor: Actor, *, metric_action: str, failure: str, **fields):
    """One audit record, by `actor`; raise AuditUnavailable (counted and logged) if it can't be written.

    Every record of the trail is written so: an action whose record fails must not happen.
    """
    try:
        return model.objects.create(
            user=actor.user, client_ip=actor.client_ip, request_id=actor.request_id, **fields
        )
    except DatabaseError as error:
        metrics.AUDIT_WRITE_FAILURES.labels(action=metric_action).inc()
        logger.exception("Audit: %s", failure)
        raise AuditUnavailable from error


def record_bulk_lookup(
    actor: Actor, *, ids_submitted: int, ids_valid: int, duplicates: int, rejected: int
) -> BulkLookup:
    """Record a bulk lookup before any of its customers is fetched; raise AuditUnavailable if we can't."""
    return _create(
        BulkLookup,
        actor,
        metric_action="bulk_lookup",
        failure="a bulk lookup could not be recorded",
        ids_submitted=ids_submitted,
        ids_valid=ids_valid,
        duplicates=duplicates,
        rejected=rejected,
    )


def finish_bulk_lookup(batch_id: uuid.UUID, *, not_fetched: int) -> None:
    """Record when a bulk lookup ended and how many customers it never sent to Align; never raises.

    Its lookups are each on record already; a batch left without an end time only lacks these two.
    """
    try:
        BulkLookup.objects.filter(pk=batch_id).update(finished_at=timezone.now(), not_fetched=not_fetched)
    except DatabaseError:
        metrics.AUDIT_WRITE_FAILURES.labels(action="bulk_lookup").inc()
        logger.exception("Audit: the end of bulk lookup %s could not be written", batch_id)


def record_bulk_export(
    request, *, batch_id: uuid.UUID, rows: int, with_email: bool, status_filter: str
) -> BulkLookupExport:
    """Record a bulk lookup's CSV download before it is made; raise AuditUnavailable if we can't."""
    return _create(
        BulkLookupExport,
        Actor.of(request),
        metric_action="bulk_export",
        failure=f"a CSV export of bulk lookup {batch_id} could not be recorded",
        batch_id=batch_id,
        rows=rows,
        with_email=with_email,
        status_filter=status_filter,
    )


def start_email_search(actor: Actor, *, email_hash: str) -> AuditEvent:
    """Record that this user is about to search by e-mail; raise AuditUnavailable if we can't.

    The e-mail itself is never stored: only its keyed hash (customers/services/email_search.py).
    """
    return _write(actor, AuditEvent.Action.EMAIL_SEARCH, customer_id=None, email_hash=email_hash)


def finish_email_search(
    event: AuditEvent, *, customers: tuple[Customer, ...] | None = None, error=None
) -> None:
    """Record what the search found: the count, the IDs, and the customer shown when one matched.

    Never raises, for the same reason as finish_lookup.
    """
    try:
        if customers is None:
            event.outcome = outcome_of_failure(error)
        else:
            event.outcome = Outcome.FOUND if customers else Outcome.NOT_FOUND
            event.match_count = len(customers)
            event.matched_customer_ids = [str(customer.customer_id) for customer in customers]
            if len(customers) == 1:
                event.customer_id = customers[0].customer_id
                event.kyc_status = stored_status_code(customers[0].kycs)
                event.kyc_sub_status = stored_sub_status_code(customers[0].kycs)
                event.repeats_last_card = False  # it showed a card: a run of its own, for Your recent lookups
        event.save(
            update_fields=[
                "outcome",
                "match_count",
                "matched_customer_ids",
                "customer_id",
                "kyc_status",
                "kyc_sub_status",
                "repeats_last_card",
            ]
        )
    except Exception:
        metrics.AUDIT_WRITE_FAILURES.labels(action=AuditEvent.Action.EMAIL_SEARCH).inc()
        logger.exception(
            "Audit: the outcome of e-mail search %s could not be written; it stays 'started'", event.pk
        )


def start_kyc_session(actor: Actor, customer_id: uuid.UUID) -> AuditEvent:
    """Record that this user is about to start a new KYC session; raise AuditUnavailable if we can't."""
    return _write(actor, AuditEvent.Action.KYC_SESSION_STARTED, customer_id=customer_id)


def finish_kyc_session(event: AuditEvent, *, session: client.KycSession | None = None, error=None) -> None:
    """Record how the start ended and the new KYC status, never the link; never raises."""
    try:
        if session is not None:
            event.outcome = Outcome.SESSION_STARTED
            event.kyc_status = stored_status_code(session)
        else:
            event.outcome = outcome_of_failure(error)
        event.save(update_fields=["outcome", "kyc_status"])
    except Exception:
        metrics.AUDIT_WRITE_FAILURES.labels(action=AuditEvent.Action.KYC_SESSION_STARTED).inc()
        logger.exception("Audit: the outcome of KYC session start %s could not be written", event.pk)
