"""Align's webhooks: a delivery is believed only by its signature, and only its KYC state is kept.

Align POSTs an envelope (`event_type`, `entity_id`, `entity_type`, `created_at`; for
`customer.kycs.updated` also `entity_object`, the whole customer) and signs the raw body: the
header `x-hmac-signature` holds the lower-case hex HMAC-SHA256 of those bytes, keyed with the
company's API key. That signature is the only authentication there is, so the body is read (at
most MAX_BODY_BYTES of it) and checked before anything in it is parsed, and nothing from an
unsigned delivery is stored or logged.

Of a `customer.kycs.updated` delivery the desk keeps the customer ID, Align's time, the overall
status, the sub-status and the breakdown's codes: never the e-mail, name or address that come
with them. Align retries deliveries, so each is stored under a key made from the envelope and a
digest of the body, and a delivery that arrives twice is stored once.
"""

import enum
import hashlib
import hmac
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from redis import RedisError

from customers.align.records import CANONICAL_UUID, LONE_SURROGATE, Customer, InvalidCustomerData
from customers.models import KycWebhookEvent
from customers.services.decisions import stored_status_code

logger = logging.getLogger(__name__)

# A delivery is one customer record and its envelope, a few kilobytes; this leaves room to grow.
MAX_BODY_BYTES = 256 * 1024
READ_CHUNK_BYTES = 64 * 1024
SIGNATURE_HEADER = "x-hmac-signature"
KYC_UPDATED = "customer.kycs.updated"
# The other types Align documents: acknowledged, not stored (the desk keeps KYC history only).
# A type Align adds later is acknowledged too, so Align does not retry it for ever.
OTHER_DOCUMENTED_TYPES = frozenset(
    {
        "onramp_transfer.status.updated",
        "offramp_transfer.status.updated",
        "cross_chain_transfer.status.updated",
        "virtual_account.created",
    }
)
REQUIRED_ENVELOPE_FIELDS = ("event_type", "entity_id", "created_at")
# Envelope strings are codes, IDs and times; anything longer is not one of them.
MAX_ENVELOPE_STRING = 200
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


class BodyTooLarge(Exception):
    """The body holds more than MAX_BODY_BYTES; reading stopped there."""


class InvalidDelivery(ValueError):
    """The body is not an envelope the desk can read; the message names the field, never its value."""


@dataclass(frozen=True)
class Delivery:
    event_type: str
    entity_id: str
    created_at: datetime
    # As Align wrote it: part of the delivery key, so two spellings of one time stay two deliveries.
    created_at_text: str
    # Parsed (per the contract) for customer.kycs.updated only.
    customer: Customer | None = None


def read_body(stream, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """At most `limit` bytes of the request body; BodyTooLarge as soon as there is more.

    Django's request stream ends at the declared Content-Length, so a body longer than it says is
    cut there; this bound holds whatever the stream is.
    """
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(min(READ_CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise BodyTooLarge


def signing_keys() -> list[str]:
    """The API key, and during a rotation the previous one; never an empty key."""
    return [key for key in (settings.ALIGN_API_KEY, settings.ALIGN_WEBHOOK_PREVIOUS_API_KEY) if key]


def signature(body: bytes, key: str) -> str:
    """What Align puts in x-hmac-signature: lower-case hex HMAC-SHA256 of the raw body."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def signature_is_valid(body: bytes, presented: str | None) -> bool:
    """Compared in constant time, byte for byte: Align writes lower-case hex, so upper-case is refused.

    Without a configured key nothing is valid: an HMAC keyed with "" is one anybody can make.
    """
    if not presented:
        return False
    # Header values reach Django as latin-1 text, so this never fails, whatever was sent.
    presented_bytes = presented.encode("latin-1")
    return any(hmac.compare_digest(signature(body, key).encode(), presented_bytes) for key in signing_keys())


def parse_delivery(body: bytes) -> Delivery:
    """The envelope, and for customer.kycs.updated the customer through the contract's parser."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested beyond reason
        raise InvalidDelivery("The body is not JSON.") from None
    if not isinstance(envelope, dict):
        raise InvalidDelivery("The body is not a JSON object.")
    for field in REQUIRED_ENVELOPE_FIELDS:
        _envelope_string(envelope, field)
    created_at_text = envelope["created_at"]
    delivery = Delivery(
        event_type=envelope["event_type"],
        entity_id=envelope["entity_id"],
        created_at=_parse_time(created_at_text),
        created_at_text=created_at_text,
    )
    if delivery.event_type != KYC_UPDATED:
        return delivery
    if not CANONICAL_UUID.fullmatch(delivery.entity_id):
        raise InvalidDelivery("entity_id is not a customer ID.")
    try:
        customer = Customer.from_api(envelope.get("entity_object"), customer_id=uuid.UUID(delivery.entity_id))
    except InvalidCustomerData as error:
        raise InvalidDelivery(f"entity_object is not a customer: {error}.") from None
    return replace(delivery, customer=customer)


def _envelope_string(envelope: dict[str, Any], field: str) -> str:
    value = envelope.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidDelivery(f"{field} is missing or not a string.")
    if len(value) > MAX_ENVELOPE_STRING or LONE_SURROGATE.search(value):
        raise InvalidDelivery(f"{field} is not a valid value.")
    return value


def _parse_time(text: str) -> datetime:
    """ISO 8601, as Align writes it ("2026-11-25T14:02:11.123Z"); a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidDelivery("created_at is not an ISO 8601 time.") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
                kyc_sub_status=str(kyc.sub_status)[:60] if kyc and kyc.sub_status else "",
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
    """Count a delivery against its source address's minute, in the cache every instance shares.

    A fixed window per address: simple, and generous enough (ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE)
    that Align's bursts pass while a flood from one address is refused before its body is read.
    When the cache cannot be reached the delivery is let through: the signature still guards the
    door, and a Redis outage must not lose Align's deliveries.
    """
    now = time.time() if now is None else now
    window = int(now // RATE_WINDOW_SECONDS)
    key = f"{RATE_KEY_PREFIX}:{window}:{address or 'unknown'}"
    try:
        cache.add(key, 0, timeout=RATE_WINDOW_SECONDS * 2)
        try:
            count = cache.incr(key)
        except ValueError:  # the key expired between add and incr: this delivery opens the count
            cache.set(key, 1, timeout=RATE_WINDOW_SECONDS * 2)
            count = 1
    except (RedisError, OSError):
        logger.exception("Align webhook: the rate limit could not be counted; the delivery is let through")
        return RateDecision(allowed=True)
    limit = settings.ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE
    if count <= limit:
        return RateDecision(allowed=True)
    retry_after = max(1, math.ceil((window + 1) * RATE_WINDOW_SECONDS - now))
    return RateDecision(allowed=False, retry_after=retry_after, first_refusal=count == limit + 1)
