"""The one place the dashboard talks to the Align Customers API.

One `requests.Session` per process (connection reuse), explicit timeouts on every call, and a
small exception hierarchy with one class per failure that staff must tell apart. The API key
travels only in the request header: it is never part of a message, a repr or a log line.
"""

import email.utils
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from django.conf import settings

from customers.records import Customer, InvalidCustomerData

logger = logging.getLogger(__name__)

# A customer record is a few kilobytes; anything near this is not a customer record.
MAX_RESPONSE_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 16 * 1024
# Connecting should be quick; the rest of the deadline is left for Align to answer.
MAX_CONNECT_SECONDS = 3.05


class AlignError(Exception):
    """A lookup that did not produce a customer; subclasses say why."""


class AlignNotConfigured(AlignError):
    """The dashboard has no API key, so there is nothing to ask Align with."""


class CustomerNotFound(AlignError):
    """Align answered 404: no customer with this ID in the configured environment."""


class ApiKeyRejected(AlignError):
    """Align answered 401 or 403: the dashboard's key is wrong, revoked or lacks access."""


class RateLimited(AlignError):
    """Align answered 429; `retry_after` is in whole seconds when Align said so."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(AlignError):
    """Align answered with a 5xx status."""


class UpstreamTimeout(AlignError):
    """Align did not answer within the lookup's deadline."""


class UpstreamUnreachable(AlignError):
    """No connection to Align could be made, or it dropped before the answer was complete."""


class InvalidResponse(AlignError):
    """Align answered, but not with a customer record the dashboard can show safely."""


@dataclass(frozen=True)
class AlignConfig:
    base_url: str
    api_key: str
    timeout: float
    user_agent: str

    def __repr__(self) -> str:
        return f"AlignConfig(base_url={self.base_url!r}, timeout={self.timeout!r}, api_key=<hidden>)"

    @classmethod
    def from_settings(cls) -> "AlignConfig":
        return cls(
            base_url=settings.ALIGN_API_BASE_URL,
            api_key=settings.ALIGN_API_KEY,
            timeout=settings.ALIGN_API_TIMEOUT,
            user_agent=settings.DASHBOARD_USER_AGENT,
        )


class AlignClient:
    def __init__(self, config: AlignConfig) -> None:
        self.config = config
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": config.user_agent})

    def __repr__(self) -> str:
        return f"AlignClient({self.config!r})"

    def get_customer(self, customer_id: uuid.UUID) -> Customer:
        """Fetch one customer; raise an `AlignError` subclass for every way that can fail."""
        if not self.config.api_key:
            raise AlignNotConfigured("ALIGN_API_KEY is not set")
        started = time.monotonic()
        deadline = started + self.config.timeout
        try:
            response, body = self._fetch(customer_id, deadline)
            customer = _parse_customer(response, body, customer_id)
        except AlignError as error:
            logger.warning(
                "Align lookup failed customer_id=%s failure=%s elapsed_ms=%d detail=%s",
                customer_id,
                type(error).__name__,
                (time.monotonic() - started) * 1000,
                error,
            )
            raise
        logger.info(
            "Align lookup ok customer_id=%s elapsed_ms=%d", customer_id, (time.monotonic() - started) * 1000
        )
        return customer

    def _fetch(self, customer_id: uuid.UUID, deadline: float) -> tuple[requests.Response, bytes]:
        url = f"{self.config.base_url}/v0/customers/{customer_id}"
        connect_timeout = min(MAX_CONNECT_SECONDS, self.config.timeout)
        try:
            response = self.session.get(
                url,
                headers={"Api-Key": self.config.api_key},
                timeout=(connect_timeout, self.config.timeout),
                stream=True,
                allow_redirects=False,
            )
        except requests.Timeout as error:
            raise UpstreamTimeout(f"no answer within {self.config.timeout:g} s") from error
        except requests.RequestException as error:
            raise UpstreamUnreachable(f"could not connect: {type(error).__name__}") from error
        with response:
            body = _read_body(response, deadline, self.config.timeout)
        return response, body


def _read_body(response: requests.Response, deadline: float, timeout: float) -> bytes:
    """Read at most MAX_RESPONSE_BYTES, giving up when the lookup's deadline has passed."""
    chunks: list[bytes] = []
    received = 0
    try:
        for chunk in response.iter_content(READ_CHUNK_BYTES):
            received += len(chunk)
            if received > MAX_RESPONSE_BYTES:
                raise InvalidResponse(f"body larger than {MAX_RESPONSE_BYTES} bytes")
            if time.monotonic() > deadline:
                raise UpstreamTimeout(f"answer not complete within {timeout:g} s")
            chunks.append(chunk)
    except requests.Timeout as error:
        raise UpstreamTimeout(f"answer not complete within {timeout:g} s") from error
    except requests.RequestException as error:
        raise UpstreamUnreachable(f"connection dropped mid-answer: {type(error).__name__}") from error
    return b"".join(chunks)


def _parse_customer(response: requests.Response, body: bytes, customer_id: uuid.UUID) -> Customer:
    status = response.status_code
    if status == 404:
        raise CustomerNotFound("Align has no customer with this ID")
    if status in (401, 403):
        raise ApiKeyRejected(f"Align answered {status} to the dashboard's API key")
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimited(f"Align answered 429 (Retry-After {retry_after})", retry_after=retry_after)
    if status >= 500:
        raise UpstreamError(f"Align answered {status}")
    if status != 200:
        raise InvalidResponse(f"unexpected status {status}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise InvalidResponse("body is not JSON") from None
    try:
        return Customer.from_api(data, customer_id=customer_id)
    except InvalidCustomerData as error:
        raise InvalidResponse(f"body does not fit the contract: {error}") from None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> int | None:
    """Whole seconds to wait, from Retry-After as delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        try:
            return int(value)
        except ValueError:  # over Python's 4300-digit limit for int(): garbage, not a wait
            return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    remaining = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0, int(remaining + 0.999))


_client: AlignClient | None = None
_client_lock = threading.Lock()


def get_client() -> AlignClient:
    """The process's shared client, rebuilt only when the settings it was built from change."""
    global _client
    config = AlignConfig.from_settings()
    with _client_lock:
        if _client is None or _client.config != config:
            _client = AlignClient(config)
        return _client


def customer_get(*, customer_id: uuid.UUID) -> Customer:
    """Selector: the customer from the configured Align environment."""
    return get_client().get_customer(customer_id)
