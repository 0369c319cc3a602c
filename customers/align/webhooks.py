"""Align's webhook deliveries: how Align signs them and what an envelope holds, per its documentation.

Align POSTs an envelope (`event_type`, `entity_id`, `entity_type`, `created_at`; for
`customer.kycs.updated` also `entity_object`, the whole customer) and signs the raw body: the
header `x-hmac-signature` holds the lower-case hex HMAC-SHA256 of those bytes, keyed with the
company's API key. That signature is the only authentication there is, so the body is read (at
most MAX_BODY_BYTES of it) and checked before anything in it is parsed. What the desk keeps of a
delivery, and how often it takes one, is customers/services/webhooks.py's business: this module
knows Align's format, not the desk's models.
"""

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from customers.align.records import CANONICAL_UUID, LONE_SURROGATE, Customer, InvalidCustomerData

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
