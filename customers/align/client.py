"""The one place the dashboard talks to the Align Customers API.

One `requests.Session` per process (connection reuse) and a small exception hierarchy with one
class per failure that staff must tell apart. A lookup has one deadline, `ALIGN_API_TIMEOUT`,
that bounds everything it does: connecting, waiting for headers, reading the body, retries and
the waits between them. The API key travels only in the request header: it is never part of a
message, a repr or a log line.
"""

import email.utils
import functools
import heapq
import itertools
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import requests
import urllib3
from django.conf import settings

from customers.align.records import Customer, InvalidCustomerData, KycStatus
from dashboard.ops import metrics
from dashboard.ops.request_id import current_request_id

logger = logging.getLogger(__name__)

# A customer record is a few kilobytes; anything near this is not a customer record.
MAX_RESPONSE_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 16 * 1024
# Connecting should be quick; the rest of the deadline is left for Align to answer.
MAX_CONNECT_SECONDS = 3.05
# Retries: only what is safe (GET) and likely to pass on a second try, and only while the
# deadline leaves room for a real attempt after the wait.
RETRYABLE_STATUSES = frozenset({502, 503, 504})
MAX_RETRIES = 2
BACKOFF_BASE_SECONDS = 0.2
MIN_ATTEMPT_SECONDS = 0.25
JSON_CONTENT_TYPES = ("application/json",)
# Kept-alive connections per host: above the threads a production worker runs, so concurrent
# lookups reuse connections instead of opening and discarding extra ones.
CONNECTIONS_PER_HOST = 32


class AlignError(Exception):
    """A lookup that did not produce a customer; subclasses say why.

    `upstream_status` is Align's HTTP status when it answered; `attempts` how many requests the
    lookup made. Both are for the log line, never for staff.
    """

    upstream_status: int | None = None
    attempts: int = 0
    # True only when the connection failed before the request was written: safe to send again.
    never_sent: bool = False


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


class RequestRefused(AlignError):
    """Align answered 400, 409 or 422: it would not do what was asked (e.g. start a KYC session).

    `align_message` is Align's own `message`, shortened, for the log only: it is never shown to staff.
    """

    def __init__(self, message: str, *, align_message: str = "") -> None:
        super().__init__(message)
        self.align_message = align_message


Entry = TypeVar("Entry")


def for_error(table: Mapping[type[AlignError], Entry], error: AlignError, default: Entry) -> Entry:
    """The entry for the most specific class of `error` that `table` knows, else `default`.

    Tables keyed by error class (the words staff read, the audit outcome) match subclasses too.
    """
    for error_class in type(error).__mro__:
        if error_class in table:
            return table[error_class]
    return default


@dataclass(frozen=True)
class AlignConfig:
    base_url: str
    api_key: str
    timeout: float
    user_agent: str
    key_header: str = "Api-Key"

    def __repr__(self) -> str:
        return (
            f"AlignConfig(base_url={self.base_url!r}, timeout={self.timeout!r}, "
            f"key_header={self.key_header!r}, api_key=<hidden>)"
        )

    @classmethod
    def from_settings(cls) -> "AlignConfig":
        return cls(
            base_url=settings.ALIGN_API_BASE_URL,
            api_key=settings.ALIGN_API_KEY,
            timeout=settings.ALIGN_API_TIMEOUT,
            user_agent=settings.DASHBOARD_USER_AGENT,
            key_header=settings.ALIGN_API_KEY_HEADER,
        )

    @property
    def auth_headers(self) -> dict[str, str]:
        """`Api-Key: <key>` per the contract; `Authorization` carries it as a bearer token."""
        if self.key_header.lower() == "authorization":
            return {self.key_header: f"Bearer {self.api_key}"}
        return {self.key_header: self.api_key}


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.at = self.started + seconds
        self.seconds = seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def elapsed_ms(self) -> int:
        return int(self.elapsed() * 1000)

    def expired_error(self) -> "UpstreamTimeout":
        return UpstreamTimeout(f"no complete answer within {self.seconds:g} s")


class AlignClient:
    def __init__(self, config: AlignConfig) -> None:
        self.config = config
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=CONNECTIONS_PER_HOST, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": config.user_agent})
        # requests reads the proxy and CA variables (and ~/.netrc) from the environment on every
        # call; the base URL is fixed, so they are read once here, which takes a tenth off the
        # call's own cost. No credentials from ~/.netrc: the API key is the only one sent.
        self.session.proxies.update(requests.utils.get_environ_proxies(config.base_url))
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False

    def __repr__(self) -> str:
        return f"AlignClient({self.config!r})"

    def get_customer(self, customer_id: uuid.UUID, *, wait_on_rate_limit: bool = True) -> Customer:
        """Fetch one customer; raise an `AlignError` subclass for every way that can fail.

        `wait_on_rate_limit=False` raises RateLimited at once instead of waiting out Retry-After:
        a bulk lookup pauses all its threads itself, and retries the row later.
        """
        if not self.config.api_key:
            raise AlignNotConfigured("ALIGN_API_KEY is not set")
        deadline = _Deadline(self.config.timeout)
        try:
            customer, attempts = self._with_retries(
                lambda: self._attempt(customer_id, deadline), deadline, wait_on_rate_limit=wait_on_rate_limit
            )
        except AlignError as error:
            self._log_failure("Align lookup failed", customer_id, error, deadline)
            raise
        metrics.ALIGN_CALL_SECONDS.labels(result=metrics.align_result(None)).observe(deadline.elapsed())
        logger.info(
            "Align lookup ok request_id=%s customer_id=%s attempts=%d elapsed_ms=%d",
            current_request_id.get(),
            customer_id,
            attempts,
            deadline.elapsed_ms(),
        )
        return customer

    @staticmethod
    def _wait_before_retry(error: AlignError, attempts: int, waited_for_rate_limit: bool) -> float | None:
        """Seconds to wait before trying again, or None when this failure is not retried."""
        if isinstance(error, RateLimited):
            if waited_for_rate_limit or error.retry_after is None:
                return None
            return float(error.retry_after)
        transient = isinstance(error, UpstreamUnreachable) or (
            isinstance(error, UpstreamError) and error.upstream_status in RETRYABLE_STATUSES
        )
        if not transient or attempts > MAX_RETRIES:
            return None
        # Exponential backoff with full jitter, so many dashboards do not retry in step.
        return random.uniform(0, BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))  # noqa: S311  (not crypto)

    def _attempt(self, customer_id: uuid.UUID, deadline: _Deadline) -> Customer:
        return _parse_customer(self._get_body(f"/v0/customers/{customer_id}", deadline), customer_id)

    def search_customers_by_email(self, email: str, fallbacks: tuple[str, ...] = ()) -> tuple[Customer, ...]:
        """The customers Align holds under this exact e-mail; raise an `AlignError` subclass on failure.

        When Align has nobody under `email`, each of `fallbacks` (other spellings of the address)
        is asked in turn until one finds somebody. Each is a GET, retried like a lookup, and all of
        them share one deadline: a second spelling never makes a search outlast ALIGN_API_TIMEOUT.
        The e-mail travels only as a query parameter to Align: it is never part of a log line or
        an exception message.
        """
        if not self.config.api_key:
            raise AlignNotConfigured("ALIGN_API_KEY is not set")
        deadline = _Deadline(self.config.timeout)
        customers: tuple[Customer, ...] = ()
        attempts = 0
        try:
            for address in (email, *fallbacks):
                customers, made = self._with_retries(
                    functools.partial(self._search_attempt, address, deadline), deadline
                )
                attempts += made
                if customers:
                    break
        except AlignError as error:
            error.attempts += attempts  # the requests of the spellings asked before this one
            self._log_failure("Align e-mail search failed", None, error, deadline)
            raise
        metrics.ALIGN_CALL_SECONDS.labels(result=metrics.align_result(None)).observe(deadline.elapsed())
        logger.info(
            "Align e-mail search ok request_id=%s matches=%d attempts=%d elapsed_ms=%d",
            current_request_id.get(),
            len(customers),
            attempts,
            deadline.elapsed_ms(),
        )
        return customers

    def start_kyc_session(self, customer_id: uuid.UUID) -> "KycSession":
        """Ask Align to start (or restart) the customer's KYC session; its new status and link.

        A POST is not safe to repeat: it is tried again only when the connection failed before
        the request was written (refused, or no connection within the connect timeout). A read
        timeout, a reset after sending or a 5xx may have started a session, so they are raised.
        """
        if not self.config.api_key:
            raise AlignNotConfigured("ALIGN_API_KEY is not set")
        deadline = _Deadline(self.config.timeout)
        try:
            session, attempts = self._with_retries(
                lambda: self._start_session_attempt(customer_id, deadline),
                deadline,
                may_retry=lambda error: error.never_sent,
            )
        except AlignError as error:
            self._log_failure("Align KYC session start failed", customer_id, error, deadline)
            raise
        metrics.ALIGN_CALL_SECONDS.labels(result=metrics.align_result(None)).observe(deadline.elapsed())
        # Never the link: it is the customer's way into their KYC, and a log is read by many.
        logger.info(
            "Align KYC session started request_id=%s customer_id=%s status=%s attempts=%d elapsed_ms=%d",
            current_request_id.get(),
            customer_id,
            session.status or "-",
            attempts,
            deadline.elapsed_ms(),
        )
        return session

    def _log_failure(
        self, what: str, customer_id: uuid.UUID | None, error: AlignError, deadline: _Deadline
    ) -> None:
        metrics.ALIGN_CALL_SECONDS.labels(result=metrics.align_result(error)).observe(deadline.elapsed())
        logger.warning(
            "%s request_id=%s customer_id=%s failure=%s upstream_status=%s attempts=%d elapsed_ms=%d "
            "detail=%s align_message=%s",
            what,
            current_request_id.get(),
            customer_id or "-",
            type(error).__name__,
            error.upstream_status or "-",
            error.attempts,
            deadline.elapsed_ms(),
            error,
            getattr(error, "align_message", "") or "-",
        )

    def _with_retries(self, attempt, deadline: _Deadline, *, may_retry=None, wait_on_rate_limit: bool = True):
        """Run `attempt` until it succeeds or `_wait_before_retry` says stop; (result, attempts).

        `may_retry(error)` narrows what is tried again, for calls that are not safe to repeat. A
        rate limit is waited out once per call; a caller that will not wait has no wait left.
        """
        attempts = 0
        waited_for_rate_limit = not wait_on_rate_limit
        while True:
            attempts += 1
            try:
                result = attempt()
            except AlignError as error:
                error.attempts = attempts
                metrics.ALIGN_ATTEMPTS.labels(result=metrics.align_result(error)).inc()
                wait = self._wait_before_retry(error, attempts, waited_for_rate_limit)
                if may_retry is not None and not may_retry(error):
                    wait = None
                if wait is None or deadline.remaining() - wait < MIN_ATTEMPT_SECONDS:
                    raise
                metrics.ALIGN_RETRIES.labels(result=metrics.align_result(error)).inc()
                waited_for_rate_limit = waited_for_rate_limit or isinstance(error, RateLimited)
            else:
                metrics.ALIGN_ATTEMPTS.labels(result=metrics.align_result(None)).inc()
                return result, attempts
            time.sleep(wait)

    @staticmethod
    def _timeout(deadline: _Deadline) -> urllib3.Timeout:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise deadline.expired_error()
        return urllib3.Timeout(connect=min(MAX_CONNECT_SECONDS, remaining), read=remaining, total=remaining)

    def _search_attempt(self, email: str, deadline: _Deadline) -> tuple[Customer, ...]:
        # Align answers an unknown e-mail with an empty list; a 404 means the search itself is
        # missing (wrong base URL or API version), not "no such customer".
        missing = InvalidResponse("the e-mail search answered 404")
        return _parse_search(
            self._get_body("/v0/customers", deadline, params={"email": email}, on_404=missing)
        )

    def _get_body(
        self, path: str, deadline: _Deadline, *, params: dict | None = None, on_404: AlignError | None = None
    ) -> bytes:
        """GET `path` within the deadline: the body of a JSON answer, or the AlignError it means.

        A GET is safe to repeat, so every failure here is one `_with_retries` may try again.
        """
        timeout = self._timeout(deadline)
        try:
            response = self.session.get(
                f"{self.config.base_url}{path}",
                params=params,
                headers=self.config.auth_headers,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
        except requests.Timeout as error:
            raise deadline.expired_error() from error
        except requests.RequestException as error:
            raise UpstreamUnreachable(f"could not connect: {type(error).__name__}") from error
        with response:
            try:
                if response.status_code == 404 and on_404 is not None:
                    raise on_404
                _raise_for_status(response)
                _require_json_content_type(response)
                return _read_body(response, deadline)
            except AlignError as error:
                error.upstream_status = response.status_code
                raise

    def _start_session_attempt(self, customer_id: uuid.UUID, deadline: _Deadline) -> "KycSession":
        timeout = self._timeout(deadline)
        try:
            response = self.session.post(
                f"{self.config.base_url}/v0/customers/{customer_id}/kycs",
                json={},
                headers=self.config.auth_headers,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            if _never_sent(error):
                unsent = UpstreamUnreachable(f"could not connect: {type(error).__name__}")
                unsent.never_sent = True
                raise unsent from error
            if isinstance(error, requests.Timeout):
                raise deadline.expired_error() from error
            raise UpstreamUnreachable(f"connection failed after sending: {type(error).__name__}") from error
        with response:
            try:
                if response.status_code != 201:
                    _raise_for_session_status(response, deadline)
                _require_json_content_type(response)
                body = _read_body(response, deadline)
            except AlignError as error:
                error.upstream_status = response.status_code
                raise
        return _parse_session(body)


def _raise_for_status(response: requests.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    if status == 404:
        raise CustomerNotFound("Align has no customer with this ID")
    if status in (401, 403):
        raise ApiKeyRejected(f"Align answered {status} to the dashboard's API key")
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimited(f"Align answered 429 (Retry-After {retry_after})", retry_after=retry_after)
    if status >= 500:
        raise UpstreamError(f"Align answered {status}")
    raise InvalidResponse(f"unexpected status {status}")


def _require_json_content_type(response: requests.Response) -> None:
    media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_CONTENT_TYPES and not media_type.endswith("+json"):
        raise InvalidResponse(f"content type {media_type[:60] or 'missing'} is not JSON")


def _read_body(response: requests.Response, deadline: _Deadline) -> bytes:
    """Read at most MAX_RESPONSE_BYTES, and never past the lookup's deadline.

    A watchdog shuts the socket for reading when the deadline passes, which wakes a read that is
    blocked on a body that trickles or hangs; without it a slow body could outlive the deadline.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise InvalidResponse(f"declared body of {declared} bytes is over {MAX_RESPONSE_BYTES}")
    if deadline.remaining() <= 0:
        raise deadline.expired_error()
    alarm = _WATCHDOG.set(deadline.at, response)
    chunks: list[bytes] = []
    received = 0
    try:
        for chunk in response.iter_content(READ_CHUNK_BYTES):
            received += len(chunk)
            if received > MAX_RESPONSE_BYTES:
                raise InvalidResponse(f"body larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        if deadline.remaining() <= 0:
            raise deadline.expired_error() from error
        raise UpstreamUnreachable(f"connection dropped mid-answer: {type(error).__name__}") from error
    finally:
        _WATCHDOG.cancel(alarm)
    if deadline.remaining() <= 0:
        raise deadline.expired_error()
    return b"".join(chunks)


def _stop_reading(response: requests.Response) -> None:
    try:
        response.raw.shutdown()
    except (OSError, ValueError, RuntimeError):
        logger.debug("Align body read already finished when the deadline passed")


class _Watchdog:
    """One thread per process that stops the body reads whose deadline has passed.

    A thread per lookup (threading.Timer) cost more to start than the rest of reading a body.
    Alarms wait in a heap by time; the thread sleeps until the earliest, or until a new one is
    set. A cancelled alarm is only forgotten, and skipped when its time comes.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._alarms: list[tuple[float, int]] = []
        self._responses: dict[int, requests.Response] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def set(self, at: float, response: requests.Response) -> int:
        """Shut `response` for reading at `at` (time.monotonic()), unless cancelled first."""
        with self._condition:
            alarm = next(self._ids)
            self._responses[alarm] = response
            heapq.heappush(self._alarms, (at, alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="align-read-watchdog", daemon=True)
                self._thread.start()
            elif self._alarms[0][1] == alarm:
                self._condition.notify()
        return alarm

    def cancel(self, alarm: int) -> None:
        with self._condition:
            self._responses.pop(alarm, None)

    def pending(self) -> int:
        """Alarms set and neither cancelled nor gone off: body reads still being watched."""
        with self._condition:
            return len(self._responses)

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._alarms and self._alarms[0][1] not in self._responses:
                    heapq.heappop(self._alarms)  # cancelled
                if not self._alarms:
                    self._condition.wait()
                    continue
                at, alarm = self._alarms[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._alarms)
                response = self._responses.pop(alarm)
            _stop_reading(response)


_WATCHDOG = _Watchdog()


def _parse_customer(body: bytes, customer_id: uuid.UUID) -> Customer:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise InvalidResponse("body is not JSON") from None
    try:
        return Customer.from_api(data, customer_id=customer_id)
    except InvalidCustomerData as error:
        raise InvalidResponse(f"body does not fit the contract: {error}") from None


@dataclass(frozen=True)
class KycSession:
    """Align's answer to starting a KYC session: the new overall status and the customer's link."""

    status: KycStatus | str | None
    kyc_flow_link: str

    def __repr__(self) -> str:
        return f"KycSession(status={self.status!r}, kyc_flow_link=<hidden>)"


# Align's own error message is kept for the log, this long at most, with e-mail addresses masked.
MAX_ALIGN_MESSAGE_CHARS = 200
MAX_ERROR_BODY_BYTES = 8 * 1024
_EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+")


def _never_sent(error: requests.RequestException) -> bool:
    """Whether urllib3 failed before writing the request: refused, or no connection in time."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if not isinstance(error, requests.ConnectionError) or not error.args:
        return False
    reason = getattr(error.args[0], "reason", error.args[0])
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _align_message(response: requests.Response, deadline: _Deadline) -> str:
    """`message` from a small JSON error body, shortened and with e-mails masked; "" otherwise."""
    if deadline.remaining() <= 0:
        return ""
    try:
        raw = response.raw.read(MAX_ERROR_BODY_BYTES, decode_content=True)
        message = json.loads(raw).get("message")
    except (ValueError, AttributeError, OSError, RecursionError, urllib3.exceptions.HTTPError):
        return ""
    if not isinstance(message, str):
        return ""
    return _EMAIL_LIKE.sub("<e-mail>", message)[:MAX_ALIGN_MESSAGE_CHARS]


def _raise_for_session_status(response: requests.Response, deadline: _Deadline) -> None:
    """Map a non-201 answer to starting a session as the lookup does, keeping Align's message."""
    status = response.status_code
    if status in (400, 409, 422):
        message = _align_message(response, deadline)
        raise RequestRefused(f"Align answered {status} to starting a KYC session", align_message=message)
    if status == 200:
        raise InvalidResponse("Align answered 200 where 201 Created was expected")
    _raise_for_status(response)


def _parse_json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidResponse("body is not JSON") from None


def _parse_search(body: bytes) -> tuple[Customer, ...]:
    data = _parse_json(body)
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise InvalidResponse("body has no items array")
    customers = []
    for index, item in enumerate(items):
        try:
            customers.append(Customer.from_api(item, customer_id=None))
        except InvalidCustomerData as error:
            raise InvalidResponse(f"item {index} does not fit the contract: {error}") from None
    return tuple(customers)


def _parse_session(body: bytes) -> KycSession:
    data = _parse_json(body)
    kycs = data.get("kycs") if isinstance(data, dict) else None
    if not isinstance(kycs, dict):
        raise InvalidResponse("body has no kycs object")
    status, link = kycs.get("status"), kycs.get("kyc_flow_link")
    if not (status is None or isinstance(status, str)) or not isinstance(link, str):
        raise InvalidResponse("kycs.status or kycs.kyc_flow_link is not a string")
    if status in KycStatus._value2member_map_:  # a status new to the dashboard stays as sent
        status = KycStatus(status)
    return KycSession(status=status, kyc_flow_link=link)


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


def customer_get(*, customer_id: uuid.UUID, wait_on_rate_limit: bool = True) -> Customer:
    """Selector: the customer from the configured Align environment."""
    return get_client().get_customer(customer_id, wait_on_rate_limit=wait_on_rate_limit)


def customers_search_by_email(*, email: str, fallbacks: tuple[str, ...] = ()) -> tuple[Customer, ...]:
    """Selector: the customers with this exact e-mail in the configured Align environment, or, when
    there are none, with the first of `fallbacks` that has any."""
    return get_client().search_customers_by_email(email, fallbacks)


def kyc_session_start(*, customer_id: uuid.UUID) -> KycSession:
    """Service: start a new KYC session for the customer in the configured Align environment."""
    return get_client().start_kyc_session(customer_id)
