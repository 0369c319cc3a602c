"""Every call to Align made for staff, put on record first: a lookup, a search by e-mail, a new KYC session.

Each goes the same way, in _audited: the audit row is written before Align is asked, so nobody
sees a customer without a record of who asked, and if that write fails nothing is asked
(AUDIT_UNAVAILABLE). Then Align is asked, how it ended is recorded on that row, and an AlignError
becomes the failure staff see. The views, a bulk lookup's rows and the KYC session start all
call Align through here, so the rule lives in one place.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from customers.align import client
from customers.align.records import Customer
from customers.forms import EmailQuery
from customers.models import AuditEvent
from customers.services import audit, email_search
from customers.services.decisions import AUDIT_UNAVAILABLE, LookupFailure, describe_failure

Answer = TypeVar("Answer")


@dataclass(frozen=True)
class Audited(Generic[Answer]):
    """What an audited call came to: Align's answer, or the failure to show staff.

    `error` is the AlignError behind a failure, for a caller that acts on its kind (a bulk
    lookup pauses on a rate limit); `recorded` is False only when the audit row could not be
    written, and then Align was not asked.
    """

    answer: Answer | None = None
    failure: LookupFailure | None = None
    error: client.AlignError | None = None
    recorded: bool = True


def look_up(
    actor: audit.Actor,
    customer_id: uuid.UUID,
    *,
    is_refresh: bool = False,
    automatic: bool = False,
    batch_id: uuid.UUID | None = None,
    wait_on_rate_limit: bool = True,
) -> Audited[Customer]:
    """One customer from Align, on record as a lookup (of a bulk lookup when `batch_id` is given).

    `wait_on_rate_limit=False` returns a rate limit at once, for a bulk lookup to pause on.
    """
    return _audited(
        lambda: audit.start_lookup_as(
            actor, customer_id, is_refresh=is_refresh, batch_id=batch_id, automatic=automatic
        ),
        lambda: client.customer_get(customer_id=customer_id, wait_on_rate_limit=wait_on_rate_limit),
        lambda event, customer, error: audit.finish_lookup(event, customer=customer, error=error),
    )


def search_by_email(actor: audit.Actor, query: EmailQuery) -> Audited[tuple[Customer, ...]]:
    """The customers Align holds under this e-mail, on record by the e-mail's keyed hash only.

    As typed, then in lower case when that finds nobody (email_search.other_spellings): one search
    to staff and to the auditor, so one row, however many spellings Align was asked for.
    """
    return _audited(
        lambda: audit.start_email_search(actor, email_hash=email_search.email_hash(query)),
        lambda: client.customers_search_by_email(
            email=query.address, fallbacks=email_search.other_spellings(query)
        ),
        lambda event, customers, error: audit.finish_email_search(event, customers=customers, error=error),
    )


def start_kyc_session(actor: audit.Actor, customer_id: uuid.UUID) -> Audited[client.KycSession]:
    """A new KYC session from Align for the customer, on record with its new status (never its link)."""
    return _audited(
        lambda: audit.start_kyc_session(actor, customer_id),
        lambda: client.kyc_session_start(customer_id=customer_id),
        lambda event, session, error: audit.finish_kyc_session(event, session=session, error=error),
    )


def _audited(
    start: Callable[[], AuditEvent],
    ask: Callable[[], Answer],
    finish: Callable[[AuditEvent, Answer | None, client.AlignError | None], None],
) -> Audited[Answer]:
    """Record, ask, record how it ended: `start` writes the row (or raises AuditUnavailable),
    `ask` calls Align, `finish` records the answer or the error on the row and never raises."""
    try:
        event = start()
    except audit.AuditUnavailable:
        return Audited(failure=AUDIT_UNAVAILABLE, recorded=False)
    try:
        answer = ask()
    except client.AlignError as error:
        finish(event, None, error)
        return Audited(failure=describe_failure(error), error=error)
    finish(event, answer, None)
    return Audited(answer=answer)
