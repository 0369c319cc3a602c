"""Align's webhooks on the desk's side: what is kept of a delivery, once, and how often one is taken.

A delivery reaches this module only once customers/align/webhooks.py has checked its signature
and parsed it: nothing from an unsigned delivery is stored or logged. Of a
`customer.kycs.updated` delivery the desk keeps the customer ID, Align's time, the overall
status, the sub-status and the breakdown's codes: never the e-mail, name or address that come
with them. Align retries deliveries, so each is stored under a key made from the envelope and a
digest of the body, and a delivery that arrives twice is stored once.
"""

import enum
import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from customers.align.webhooks import Delivery
from customers.models import KycWebhookEvent
from customers.services.decisions import stored_status_code, stored_sub_status_code
from dashboard.ops.shared_cache import UNAVAILABLE_ERRORS, shared_cache

logger = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60
RATE_KEY_PREFIX = "kycdesk:webhook-rate"


class DeliveryResult(enum.StrEnum):
    """What became of a delivery: the answer's `status` and the metric's `result` label."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    BAD_SIGNATURE = "bad_signature"
    TOO_LARGE = "too_large"
    BAD_REQUEST = "bad_request"
    RATE_LIMITED = "rate_limited"
    # The database could not store it: Align is told to try again later (503).
    UNAVAILABLE = "unavailable"


def delivery_key(delivery: Delivery, body: bytes) -> str:
    """The same delivery sent again gets the same key; another change of the customer never does."""
    parts = (
        delivery.event_type,
        delivery.entity_id,
        delivery.created_at_text,
        hashlib.sha256(body).hexdigest(),
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def store(delivery: Delivery, body: bytes) -> DeliveryResult:
    """Keep a customer.kycs.updated delivery's KYC state once: ACCEPTED, or DUPLICATE if kept before.

    Raises DatabaseError when it cannot be written; Align then delivers it again later.
    """
    customer = delivery.customer
    kyc = customer.kycs
    try:
        with transaction.atomic():
            KycWebhookEvent.objects.create(
                delivery_key=delivery_key(delivery, body),
                customer_id=customer.customer_id,
                event_created_at=delivery.created_at,
                kyc_status=stored_status_code(kyc),
                kyc_sub_status=stored_sub_status_code(kyc),
                breakdown=[
                    [str(row.currency)[:40], str(row.payment_rails)[:40], str(row.status)[:40]]
                    for row in (kyc.status_breakdown if kyc else ())
                ],
            )
    except IntegrityError:
        return DeliveryResult.DUPLICATE
    return DeliveryResult.ACCEPTED


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int = 0
    # The first delivery refused in its window: the one worth a log line.
    first_refusal: bool = False


def take_rate(address: str, *, now: float | None = None) -> RateDecision:
    """Count a delivery against its source address's minute, in the cache every process shares.

    A fixed window per address: simple, and generous enough (ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE)
    that Align's bursts pass while a flood from one address is refused before its body is read.
    The count is atomic in either store of that cache (Redis, or the database without it:
    dashboard/ops/shared_cache.py), so deliveries spread over workers and instances are counted
    once each. When the cache cannot be reached the delivery is let through: the signature still
    guards the door, and a Redis outage must not lose Align's deliveries.
    """
    now = time.time() if now is None else now
    window = int(now // RATE_WINDOW_SECONDS)
    key = f"{RATE_KEY_PREFIX}:{window}:{address or 'unknown'}"
    try:
        shared_cache.add(key, 0, timeout=RATE_WINDOW_SECONDS * 2)
        try:
            count = shared_cache.incr(key)
        except ValueError:  # the key expired between add and incr: this delivery opens the count
            shared_cache.set(key, 1, timeout=RATE_WINDOW_SECONDS * 2)
            count = 1
    except UNAVAILABLE_ERRORS:
        logger.exception("Align webhook: the rate limit could not be counted; the delivery is let through")
        return RateDecision(allowed=True)
    limit = settings.ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE
    if count <= limit:
        return RateDecision(allowed=True)
    retry_after = max(1, math.ceil((window + 1) * RATE_WINDOW_SECONDS - now))
    return RateDecision(allowed=False, retry_after=retry_after, first_refusal=count == limit + 1)
