"""The audit trail: every lookup and every copied KYC link, recorded against the signed-in user.

A lookup is recorded in two steps. The row is written *before* Align is asked, so no customer
is ever fetched without a record of who asked; if that write fails, the lookup does not
happen. The outcome is written afterwards; if that write fails, the page is still shown
(its access is already on record, as "started") and the failure is logged.
"""

import logging
import uuid

from django.db import DatabaseError
from django.db.models import Max

from customers import client
from customers.models import AuditEvent
from customers.records import Customer
from dashboard.security import client_ip

logger = logging.getLogger(__name__)

Outcome = AuditEvent.Outcome

RECENT_LOOKUPS_SHOWN = 10
LINK_COPIES_SHOWN = 5

_OUTCOMES_BY_ERROR: dict[type[client.AlignError], str] = {
    client.CustomerNotFound: Outcome.NOT_FOUND,
    client.InvalidResponse: Outcome.INVALID_RESPONSE,
    client.ApiKeyRejected: Outcome.KEY_REJECTED,
    client.RateLimited: Outcome.RATE_LIMITED,
    client.UpstreamTimeout: Outcome.TIMEOUT,
    client.UpstreamUnreachable: Outcome.UNREACHABLE,
    client.UpstreamError: Outcome.UPSTREAM_ERROR,
    client.AlignNotConfigured: Outcome.NOT_CONFIGURED,
}


class AuditUnavailable(Exception):
    """The audit trail cannot be written, so the action it would record must not happen."""


def outcome_of_failure(error: client.AlignError) -> str:
    return client.for_error(_OUTCOMES_BY_ERROR, error, Outcome.UPSTREAM_ERROR)


def start_lookup(request, customer_id: uuid.UUID, *, is_refresh: bool) -> AuditEvent:
    """Record that this user is about to look this customer up; raise AuditUnavailable if we can't."""
    return _write(
        request,
        action=AuditEvent.Action.LOOKUP,
        customer_id=customer_id,
        outcome=Outcome.STARTED,
        is_refresh=is_refresh,
    )


def finish_lookup(event: AuditEvent, *, customer: Customer | None = None, error=None) -> None:
    """Record how the lookup ended. Never raises: the result must reach the user regardless."""
    if customer is not None:
        event.outcome = Outcome.FOUND
        if customer.kycs is None:
            event.kyc_status = ""
        elif customer.kycs.status is None:
            event.kyc_status = AuditEvent.KYC_STATUS_NOT_SENT
        else:
            event.kyc_status = str(customer.kycs.status)[:40]
    else:
        event.outcome = outcome_of_failure(error)
    try:
        event.save(update_fields=["outcome", "kyc_status"])
    except DatabaseError:
        logger.exception("Audit: the outcome of lookup %s could not be written; it stays 'started'", event.pk)


def record_link_copied(request, customer_id: uuid.UUID) -> AuditEvent:
    return _write(
        request, action=AuditEvent.Action.LINK_COPIED, customer_id=customer_id, outcome=Outcome.COPIED
    )


def recent_lookups(user) -> list[AuditEvent] | None:
    """The user's last distinct customers with what was seen the last time; None if unreadable."""
    lookups = AuditEvent.objects.filter(user=user, action=AuditEvent.Action.LOOKUP)
    latest_ids = lookups.values("customer_id").annotate(latest=Max("id")).order_by("-latest").values("latest")
    try:
        return list(lookups.filter(id__in=latest_ids[:RECENT_LOOKUPS_SHOWN]).order_by("-id"))
    except DatabaseError:
        logger.exception("Audit: recent lookups could not be read")
        return None


def link_copies(*, customer_id: uuid.UUID, limit: int = LINK_COPIES_SHOWN) -> list[AuditEvent] | None:
    """Who copied this customer's KYC link lately, newest first, with their users; None if unreadable.

    One query on the audit_customer_action_recent index. Reading it is not itself audited: it
    shows what staff did with the link, not the customer, and the lookup that shows it is on record.
    """
    copies = AuditEvent.objects.filter(customer_id=customer_id, action=AuditEvent.Action.LINK_COPIED)
    try:
        return list(copies.select_related("user").order_by("-id")[:limit])
    except DatabaseError:
        logger.exception("Audit: the link copies of customer %s could not be read", customer_id)
        return None


def _write(request, **fields) -> AuditEvent:
    try:
        return AuditEvent.objects.create(
            user=request.user,
            client_ip=client_ip(request) or None,
            request_id=getattr(request, "request_id", ""),
            **fields,
        )
    except DatabaseError as error:
        logger.exception("Audit: a %s event could not be written", fields["action"])
        raise AuditUnavailable from error
