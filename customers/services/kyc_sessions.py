"""Starting a new KYC session: once per customer per minute, on record before Align is asked.

A new session replaces the customer's link, so a second click, a second tab or a colleague a
moment later must not start another: a guard in the shared cache lets one start through per
customer per GUARD_SECONDS, and the others are told who started it. A start that failed
releases the guard, so staff can try again at once. Past the minute, a start from a card fetched
before a colleague's start is refused the same way: the card was out of date.
"""

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import DatabaseError
from django.utils import timezone

from customers.align.client import KycSession
from customers.align.records import Customer, Kyc
from customers.services import audit, audited_calls
from dashboard.ops.shared_cache import shared_cache

logger = logging.getLogger(__name__)

# Long enough to absorb a double click, a second tab and a colleague on the same call.
GUARD_SECONDS = 60


def guard_key(customer_id: uuid.UUID) -> str:
    return f"kycdesk:kyc-session:{customer_id}"


@dataclass(frozen=True)
class StartedLately:
    """A session was started for the customer within GUARD_SECONDS, or since the card was fetched,
    so Align was not asked again.

    `username` and `at` say who started it and when; both None when the guard expired in between.
    """

    username: str | None = None
    at: datetime | None = None

    @property
    def notice(self) -> str:
        if self.at is None:  # expired between add and get: the minute is over, say so plainly
            return "A new session was started for this customer a minute ago. Refresh to see its link."
        return (
            f"A new session was started for this customer by {self.username} "
            f"at {timezone.localtime(self.at):%H:%M}"
        )


def start(
    actor: audit.Actor, customer_id: uuid.UUID, *, now: datetime, card_fetched_at: datetime | None = None
) -> audited_calls.Audited[KycSession] | StartedLately:
    """Start a session unless one was started lately; the guard is kept only when it started.

    `card_fetched_at` is when the card the lead pressed Start on was fetched: a session started
    since then (by a colleague, past the minute's guard) means that card is out of date, and
    starting another would throw away the link the colleague may already have sent.
    """
    started_since = _started_since(customer_id, card_fetched_at)
    if started_since is not None:
        return started_since
    key = guard_key(customer_id)
    # add is atomic in either store of the shared cache, Redis or the database (dashboard.ops.shared_cache):
    # of two concurrent starts, on any workers, exactly one gets the key.
    if not shared_cache.add(key, {"user": actor.user.get_username(), "at": now.isoformat()}, GUARD_SECONDS):
        guard = shared_cache.get(key)
        if guard is None:
            return StartedLately()
        return StartedLately(username=guard["user"], at=datetime.fromisoformat(guard["at"]))
    started = audited_calls.start_kyc_session(actor, customer_id)
    if started.failure is not None:
        shared_cache.delete(key)
    return started


def _started_since(customer_id: uuid.UUID, card_fetched_at: datetime | None) -> StartedLately | None:
    if card_fetched_at is None:
        return None
    try:
        newest = audit.kyc_session_starts(customer_id=customer_id, limit=1)
    except DatabaseError:
        # The start's own audit row then can't be written either, and says so.
        logger.exception("The KYC sessions of customer %s could not be read", customer_id)
        return None
    if not newest or newest[0].occurred_at <= card_fetched_at:
        return None
    return StartedLately(username=newest[0].user.get_username(), at=newest[0].occurred_at)


def with_session(customer: Customer, session: KycSession) -> Customer:
    """The customer with the session Align just started, when its lookup does not show it yet."""
    kyc = customer.kycs
    if kyc is not None and kyc.kyc_flow_link == session.kyc_flow_link:
        return customer
    if kyc is None:
        kyc = Kyc(
            status=session.status, sub_status=None, kyc_flow_link=session.kyc_flow_link, status_breakdown=()
        )
    else:
        kyc = replace(kyc, status=session.status, sub_status=None, kyc_flow_link=session.kyc_flow_link)
    return replace(customer, kycs=kyc)
