"""The audit trail: every lookup, copied KYC link, bulk lookup and export, against the signed-in user.

A lookup is recorded in two steps. The row is written *before* Align is asked, so no customer
is ever fetched without a record of who asked; if that write fails, the lookup does not
happen. The outcome is written afterwards; if that write fails, the page is still shown
(its access is already on record, as "started") and the failure is logged.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.utils import timezone

from customers.align import client
from customers.align.records import Customer
from customers.models import AuditEvent, AuditExport, BulkLookup, BulkLookupExport
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
    """start_lookup without a request: for a bulk lookup's rows, which carry their batch's ID."""
    return _write(
        actor,
        AuditEvent.Action.LOOKUP,
        customer_id=customer_id,
        is_refresh=is_refresh,
        batch_id=batch_id,
        automatic=automatic,
    )


def finish_lookup(event: AuditEvent, *, customer: Customer | None = None, error=None) -> None:
    """Record how the lookup ended. Never raises: the result must reach the user regardless."""
    # The one broad except of the audit trail, because "never raises" is this function's
    # contract: whatever fails here (the database, or a value it cannot store, such as text that
    # cannot be encoded), the lookup's access is already on record as "started", and the page
    # must still be shown. The failure is logged with its traceback, so it is not lost.
    try:
        if customer is not None:
            event.outcome = Outcome.FOUND
            event.kyc_status = stored_status_code(customer.kycs)
            event.kyc_sub_status = stored_sub_status_code(customer.kycs)
        else:
            event.outcome = outcome_of_failure(error)
        metrics.LOOKUPS.labels(outcome=event.outcome).inc()
        event.save(update_fields=["outcome", "kyc_status", "kyc_sub_status"])
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

    The audit trail only grows, so this never groups over all of the user's lookups: it walks
    their newest lookups through audit_user_action_recent and keeps the first (newest) of each
    customer until it has RECENT_LOOKUPS_SHOWN. The first read of RECENT_LOOKUPS_FIRST_CHUNK rows
    nearly always suffices; a user who looked the same few customers up over and over needs
    more, each read twice the last, and after RECENT_LOOKUPS_SCANNED lookups (six reads) it stops
    and shows the customers found so far. Every read is an index walk of a bounded length, so the
    cost is the same at ten rows or a million.
    """
    # A search by e-mail with one match showed that customer's card, so it counts as its lookup;
    # a bulk lookup's rows are left out (its own page lists them). These conditions are exactly
    # those of the audit_user_shown_recent index, which it walks.
    lookups = (
        AuditEvent.objects.filter(
            user=user, action__in=SHOWN_CUSTOMER_ACTIONS, customer_id__isnull=False, batch__isnull=True
        )
        # What a row of the list shows, and no more: whole rows (a JSON column among them) cost a
        # lookup more than the read itself.
        .only("customer_id", "occurred_at", "outcome", "kyc_status")
        .order_by("-id")
    )
    newest_by_customer: dict[uuid.UUID, AuditEvent] = {}
    chunk_size, scanned = RECENT_LOOKUPS_FIRST_CHUNK, 0
    try:
        while scanned < RECENT_LOOKUPS_SCANNED:
            chunk = list(lookups[: min(chunk_size, RECENT_LOOKUPS_SCANNED - scanned)])
            for event in chunk:
                newest_by_customer.setdefault(event.customer_id, event)
            if len(newest_by_customer) >= RECENT_LOOKUPS_SHOWN or len(chunk) < chunk_size:
                break
            lookups = lookups.filter(id__lt=chunk[-1].id)
            scanned += len(chunk)
            chunk_size *= 2
    except DatabaseError:
        logger.exception("Audit: recent lookups could not be read")
        return None
    return list(newest_by_customer.values())[:RECENT_LOOKUPS_SHOWN]


def link_copies(*, customer_id: uuid.UUID, limit: int = LINK_COPIES_SHOWN) -> list[AuditEvent] | None:
    """Who copied this customer's KYC link lately, newest first, with their users; None if unreadable.

    One query on the audit_customer_action_recent index. Reading it is not itself audited: it
    shows what staff did with the link, not the customer, and the lookup that shows it is on record.
    """
    copies = AuditEvent.objects.filter(customer_id=customer_id, action=AuditEvent.Action.LINK_COPIED)
    try:
        username = "user__" + get_user_model().USERNAME_FIELD
        return list(copies.select_related("user").only("occurred_at", username).order_by("-id")[:limit])
    except DatabaseError:
        logger.exception("Audit: the link copies of customer %s could not be read", customer_id)
        return None


def kyc_session_starts(*, customer_id: uuid.UUID, limit: int = KYC_SESSION_STARTS_READ) -> list[AuditEvent]:
    """The customer's newest KYC sessions started through the desk, with their users, newest first.

    One query on the audit_customer_action_recent index. Raises DatabaseError: History, which
    reads it with its other rows, says as a whole that it can't be shown.
    """
    starts = AuditEvent.objects.filter(
        customer_id=customer_id,
        action=AuditEvent.Action.KYC_SESSION_STARTED,
        outcome=AuditEvent.Outcome.SESSION_STARTED,
    )
    username = "user__" + get_user_model().USERNAME_FIELD
    return list(
        starts.select_related("user").only("occurred_at", "kyc_status", username).order_by("-id")[:limit]
    )


def _write(actor: Actor, action: str, *, outcome: str = Outcome.STARTED, **fields) -> AuditEvent:
    """An audit event by `actor`; "started" unless said otherwise, as an action is recorded before it runs."""
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
        event.save(
            update_fields=[
                "outcome",
                "match_count",
                "matched_customer_ids",
                "customer_id",
                "kyc_status",
                "kyc_sub_status",
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
