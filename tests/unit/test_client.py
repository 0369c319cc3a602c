"""The Align client: one request per lookup, every answer turned into a customer or one of our errors."""

import email.utils
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
import urllib3
from responses import matchers

from customers.align import client
from customers.align.client import (
    AlignClient,
    AlignConfig,
    AlignNotConfigured,
    ApiKeyRejected,
    CustomerNotFound,
    InvalidResponse,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
    customer_get,
    get_client,
    parse_retry_after,
)
from customers.align.records import Customer, KycStatus
from customers.align.standin.demo import DemoId

TEST_API_KEY = "test-api-key-5f1c9e0d7a"
ADA = DemoId.INDIVIDUAL_APPROVED
ADA_ID = uuid.UUID(ADA)
ONE_MIB = 1024 * 1024


def lookup() -> Customer:
    return customer_get(customer_id=ADA_ID)


def exception_chain(error: BaseException):
    """The error and every exception it was raised from or while handling."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


# --- Success --------------------------------------------------------------------------------------


def test_200_returns_the_parsed_customer(align, customer_url, demo_body):
    align.get(customer_url(ADA), json=demo_body(ADA))
    customer = lookup()
    assert isinstance(customer, Customer)
    assert customer.customer_id == ADA_ID
    assert customer.kycs.status is KycStatus.APPROVED


def test_request_carries_api_key_accept_and_user_agent(align, customer_url, demo_body):
    align.get(
        customer_url(ADA),
        json=demo_body(ADA),
        match=[
            matchers.header_matcher(
                {
                    "Api-Key": TEST_API_KEY,
                    "Accept": "application/json",
                    "User-Agent": re.compile(r"KYC-Desk/\S+"),
                }
            )
        ],
    )
    lookup()
    assert len(align.calls) == 1


def test_request_has_an_explicit_timeout_and_asks_the_configured_url(align, customer_url, demo_body):
    align.get(customer_url(ADA), json=demo_body(ADA))
    lookup()
    request = align.calls[0].request
    assert request.url == f"https://align.invalid/v0/customers/{ADA}"
    assert request.method == "GET"
    timeout = request.req_kwargs["timeout"]
    assert isinstance(timeout, urllib3.Timeout)
    assert 1.9 < timeout.total <= 2
    assert timeout.connect_timeout <= client.MAX_CONNECT_SECONDS


# --- Status codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (404, CustomerNotFound),
        (401, ApiKeyRejected),
        (403, ApiKeyRejected),
        (429, RateLimited),
        (500, UpstreamError),
        (502, UpstreamError),
        (503, UpstreamError),
        (504, UpstreamError),
        (418, InvalidResponse),
        (201, InvalidResponse),
        (204, InvalidResponse),
        (400, InvalidResponse),
    ],
)
def test_status_code_maps_to_its_error(align, customer_url, status, error_class):
    align.get(customer_url(ADA), status=status)
    with pytest.raises(error_class):
        lookup()


def test_redirect_is_not_followed_so_the_key_goes_nowhere_else(align, customer_url):
    align.get(customer_url(ADA), status=302, headers={"Location": "https://elsewhere.invalid/customer"})
    with pytest.raises(InvalidResponse):
        lookup()
    assert len(align.calls) == 1


def test_429_with_retry_after_seconds(align, customer_url):
    align.get(customer_url(ADA), status=429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimited) as raised:
        lookup()
    assert raised.value.retry_after == 30


def test_429_with_retry_after_http_date(align, customer_url):
    in_two_minutes = datetime.now(UTC) + timedelta(seconds=120)
    align.get(
        customer_url(ADA),
        status=429,
        headers={"Retry-After": email.utils.format_datetime(in_two_minutes, usegmt=True)},
    )
    with pytest.raises(RateLimited) as raised:
        lookup()
    assert 110 <= raised.value.retry_after <= 120


@pytest.mark.parametrize(
    "header",
    [{}, {"Retry-After": "soon"}, {"Retry-After": "\u00b2"}],
    ids=["absent", "garbage", "superscript-digit"],
)
def test_429_without_usable_retry_after_has_none(align, customer_url, header):
    align.get(customer_url(ADA), status=429, headers=header)
    with pytest.raises(RateLimited) as raised:
        lookup()
    assert raised.value.retry_after is None


# --- Retries within the deadline ----------------------------------------------------------------


@pytest.mark.parametrize("first_status", [502, 503, 504])
def test_transient_gateway_status_is_retried(align, customer_url, demo_body, first_status):
    align.get(customer_url(ADA), status=first_status)
    align.get(customer_url(ADA), json=demo_body(ADA))
    assert lookup().customer_id == ADA_ID
    assert len(align.calls) == 2


def test_at_most_two_retries_then_the_failure_with_its_attempt_count(align, customer_url, caplog):
    align.get(customer_url(ADA), status=503)
    with pytest.raises(UpstreamError) as raised:
        lookup()
    assert len(align.calls) == 3
    assert raised.value.attempts == 3
    assert raised.value.upstream_status == 503
    failures = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(failures) == 1, "a failure is logged once, not once per attempt"
    assert "attempts=3" in failures[0].getMessage()
    assert "upstream_status=503" in failures[0].getMessage()


def test_connection_error_is_retried(align, customer_url, demo_body):
    align.get(customer_url(ADA), body=requests.ConnectionError("refused"))
    align.get(customer_url(ADA), json=demo_body(ADA))
    assert lookup().customer_id == ADA_ID
    assert len(align.calls) == 2


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500},
        {"status": 501},
        {"status": 404},
        {"status": 401},
        {"status": 403},
        {"status": 400},
        {"body": requests.ReadTimeout()},
        {"body": "<html>", "status": 200, "content_type": "text/html"},
    ],
)
def test_failures_that_a_retry_would_not_fix_are_not_retried(align, customer_url, answer):
    align.get(customer_url(ADA), **answer)
    with pytest.raises(client.AlignError):
        lookup()
    assert len(align.calls) == 1


def test_no_retry_when_the_wait_would_not_leave_time_for_an_attempt(
    align, customer_url, settings, monkeypatch
):
    settings.ALIGN_API_TIMEOUT = 0.5
    monkeypatch.setattr(client, "BACKOFF_BASE_SECONDS", 60)
    monkeypatch.setattr(client.random, "uniform", lambda low, high: high)
    align.get(customer_url(ADA), status=503)
    started = time.monotonic()
    with pytest.raises(UpstreamError):
        lookup()
    assert len(align.calls) == 1
    assert time.monotonic() - started < 0.5


def test_backoff_grows_exponentially_with_full_jitter(align, customer_url, monkeypatch):
    bounds = []
    monkeypatch.setattr(client.random, "uniform", lambda low, high: bounds.append((low, high)) or 0.0)
    align.get(customer_url(ADA), status=502)
    with pytest.raises(UpstreamError):
        lookup()
    base = client.BACKOFF_BASE_SECONDS
    assert bounds == [(0, base), (0, base * 2)]


def test_429_that_fits_the_deadline_is_retried_once(align, customer_url, demo_body):
    align.get(customer_url(ADA), status=429, headers={"Retry-After": "0"})
    align.get(customer_url(ADA), json=demo_body(ADA))
    assert lookup().customer_id == ADA_ID
    assert len(align.calls) == 2


def test_429_twice_tells_staff_when_to_try_again(align, customer_url):
    align.get(customer_url(ADA), status=429, headers={"Retry-After": "1"})
    align.get(customer_url(ADA), status=429, headers={"Retry-After": "20"})
    started = time.monotonic()
    with pytest.raises(RateLimited) as raised:
        lookup()
    assert raised.value.retry_after == 20
    assert len(align.calls) == 2
    assert 1 <= time.monotonic() - started < 2


def test_429_longer_than_the_deadline_is_not_waited_for(align, customer_url):
    align.get(customer_url(ADA), status=429, headers={"Retry-After": "5"})
    with pytest.raises(RateLimited):
        lookup()
    assert len(align.calls) == 1


def test_a_caller_that_will_not_wait_gets_the_rate_limit_at_once(align, customer_url):
    """A bulk lookup pauses all its threads itself, so the client must not wait for it."""
    align.get(customer_url(ADA), status=429, headers={"Retry-After": "0"})
    with pytest.raises(RateLimited) as raised:
        customer_get(customer_id=ADA_ID, wait_on_rate_limit=False)
    assert raised.value.retry_after == 0
    assert len(align.calls) == 1


def test_a_caller_that_will_not_wait_still_gets_transient_errors_retried(align, customer_url, demo_body):
    align.get(customer_url(ADA), status=503)
    align.get(customer_url(ADA), json=demo_body(ADA))
    assert customer_get(customer_id=ADA_ID, wait_on_rate_limit=False).customer_id == ADA_ID


# --- Content type and auth header -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/vnd.align+json"]
)
def test_json_content_types_are_read(align, customer_url, demo_body, content_type):
    align.get(customer_url(ADA), body=json.dumps(demo_body(ADA)), content_type=content_type)
    assert lookup().customer_id == ADA_ID


@pytest.mark.parametrize("content_type", ["text/html", "text/plain", "application/xml", ""])
def test_a_customer_body_with_a_non_json_content_type_is_an_invalid_response(
    align, customer_url, demo_body, content_type
):
    align.get(customer_url(ADA), body=json.dumps(demo_body(ADA)), content_type=content_type)
    with pytest.raises(InvalidResponse, match="is not JSON"):
        lookup()


def test_declared_body_over_the_cap_is_refused_before_reading(align, customer_url):
    align.get(
        customer_url(ADA), body="{}", content_type="application/json", headers={"Content-Length": "5000000"}
    )
    with pytest.raises(InvalidResponse, match="declared body"):
        lookup()


def test_auth_header_name_is_a_setting(align, customer_url, demo_body, settings):
    settings.ALIGN_API_KEY_HEADER = "X-Align-Key"
    align.get(
        customer_url(ADA),
        json=demo_body(ADA),
        match=[matchers.header_matcher({"X-Align-Key": TEST_API_KEY})],
    )
    lookup()
    assert "Api-Key" not in align.calls[0].request.headers


def test_authorization_header_carries_the_key_as_a_bearer_token(
    align, customer_url, demo_body, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    settings.ALIGN_API_KEY_HEADER = "Authorization"
    align.get(
        customer_url(ADA),
        json=demo_body(ADA),
        match=[matchers.header_matcher({"Authorization": f"Bearer {TEST_API_KEY}"})],
    )
    lookup()
    assert TEST_API_KEY not in caplog.text


# --- Transport failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport_error", "error_class"),
    [
        (requests.ConnectTimeout, UpstreamTimeout),
        (requests.ReadTimeout, UpstreamTimeout),
        (requests.ConnectionError, UpstreamUnreachable),
    ],
)
def test_transport_failure_maps_to_its_error(align, customer_url, transport_error, error_class):
    align.get(customer_url(ADA), body=transport_error())
    with pytest.raises(error_class) as raised:
        lookup()
    assert isinstance(raised.value.__cause__, transport_error)


# --- Bodies that are not a customer ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Bad gateway</body></html>",
        b"",
        b'{"customer_id": "3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91"',
        b"\xff\xfe\xfa not utf-8",
        b"[]",
        b'"customer"',
        b"null",
        b"42",
        b"[" * 100_000,
    ],
    ids=["html", "empty", "truncated", "not-utf-8", "array", "string", "null", "number", "deeply-nested"],
)
def test_body_that_is_not_a_json_object_is_an_invalid_response(align, customer_url, body):
    align.get(customer_url(ADA), body=body, content_type="application/json")
    with pytest.raises(InvalidResponse):
        lookup()


def test_body_that_does_not_fit_the_contract_is_an_invalid_response(align, customer_url, demo_body):
    body = demo_body(ADA)
    del body["kycs"]["kyc_flow_link"]
    align.get(customer_url(ADA), json=body)
    with pytest.raises(InvalidResponse, match=r"kycs\.kyc_flow_link"):
        lookup()


def test_body_for_another_customer_is_an_invalid_response(align, customer_url, demo_body):
    align.get(customer_url(ADA), json=demo_body(DemoId.CORPORATE_APPROVED))
    with pytest.raises(InvalidResponse):
        lookup()


def test_body_over_one_mib_is_an_invalid_response_even_if_it_is_a_customer(align, customer_url, demo_body):
    customer_json = json.dumps(demo_body(ADA)).encode()
    padded = customer_json + b" " * (ONE_MIB + 1 - len(customer_json))
    align.get(customer_url(ADA), body=padded, content_type="application/json")
    with pytest.raises(InvalidResponse, match="larger than"):
        lookup()


def test_body_of_exactly_one_mib_is_read(align, customer_url, demo_body):
    customer_json = json.dumps(demo_body(ADA)).encode()
    padded = customer_json + b" " * (ONE_MIB - len(customer_json))
    align.get(customer_url(ADA), body=padded, content_type="application/json")
    assert lookup().customer_id == ADA_ID


# --- Configuration --------------------------------------------------------------------------------


def test_empty_api_key_is_not_configured_and_makes_no_request(align, settings):
    settings.ALIGN_API_KEY = ""
    with pytest.raises(AlignNotConfigured):
        lookup()
    assert len(align.calls) == 0


def test_shared_client_is_reused_and_rebuilt_when_settings_change(settings):
    first = get_client()
    assert get_client() is first
    settings.ALIGN_API_TIMEOUT = 5
    rebuilt = get_client()
    assert rebuilt is not first
    assert rebuilt.config.timeout == 5
    assert get_client() is rebuilt


def test_lookups_share_one_session(align, customer_url, demo_body):
    align.get(customer_url(ADA), json=demo_body(ADA))
    align.get(customer_url(DemoId.REJECTED), json=demo_body(DemoId.REJECTED))
    session = get_client().session
    lookup()
    customer_get(customer_id=uuid.UUID(DemoId.REJECTED))
    assert get_client().session is session
    assert len(align.calls) == 2


# --- The API key never leaks ----------------------------------------------------------------------


def test_api_key_is_not_in_the_repr_of_client_or_config():
    config = AlignConfig.from_settings()
    assert config.api_key == TEST_API_KEY
    assert TEST_API_KEY not in repr(config)
    assert TEST_API_KEY not in str(config)
    assert TEST_API_KEY not in repr(AlignClient(config))
    assert TEST_API_KEY not in repr(get_client())


def test_api_key_is_not_logged_on_success(align, customer_url, demo_body, caplog):
    caplog.set_level(logging.DEBUG)
    align.get(customer_url(ADA), json=demo_body(ADA))
    lookup()
    assert caplog.records, "a successful lookup is logged"
    for record in caplog.records:
        assert TEST_API_KEY not in record.getMessage()
    assert TEST_API_KEY not in caplog.text


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 404},
        {"status": 401},
        {"status": 403},
        {"status": 429, "headers": {"Retry-After": "30"}},
        {"status": 500},
        {"status": 503},
        {"status": 418},
        {"status": 302, "headers": {"Location": "https://elsewhere.invalid/"}},
        {"body": b"not json"},
        {"json": {"customer_id": str(ADA)}},
        {"body": b" " * (ONE_MIB + 1)},
    ],
    ids=[
        "404",
        "401",
        "403",
        "429",
        "500",
        "503",
        "418",
        "302",
        "non-json",
        "schema-mismatch",
        "oversize",
    ],
)
def test_api_key_is_not_in_any_failure_or_its_log(align, customer_url, caplog, answer):
    caplog.set_level(logging.DEBUG)
    align.get(customer_url(ADA), **answer)
    with pytest.raises(client.AlignError) as raised:
        lookup()
    assert_key_not_leaked(raised.value, caplog)


@pytest.mark.parametrize(
    "transport_error", [requests.ConnectTimeout, requests.ReadTimeout, requests.ConnectionError]
)
def test_api_key_is_not_in_any_transport_failure_or_its_log(align, customer_url, caplog, transport_error):
    caplog.set_level(logging.DEBUG)
    align.get(customer_url(ADA), body=transport_error())
    with pytest.raises(client.AlignError) as raised:
        lookup()
    assert_key_not_leaked(raised.value, caplog)


def assert_key_not_leaked(error: BaseException, caplog) -> None:
    for link in exception_chain(error):
        assert TEST_API_KEY not in str(link)
        assert TEST_API_KEY not in repr(link)
    assert caplog.records, "a failed lookup is logged"
    for record in caplog.records:
        assert TEST_API_KEY not in record.getMessage()
    assert TEST_API_KEY not in caplog.text


def test_failure_log_names_the_customer_and_the_failure(align, customer_url, caplog):
    caplog.set_level(logging.INFO, logger="customers.align.client")
    align.get(customer_url(ADA), status=404)
    with pytest.raises(CustomerNotFound):
        lookup()
    (record,) = [record for record in caplog.records if record.name == "customers.align.client"]
    assert record.levelno == logging.WARNING
    assert f"customer_id={ADA}" in record.getMessage()
    assert "failure=CustomerNotFound" in record.getMessage()


# --- parse_retry_after ----------------------------------------------------------------------------

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30", 30), ("0", 0), (" 30 ", 30), ("120", 120)],
)
def test_parse_retry_after_reads_delta_seconds(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("Wed, 01 Jan 2025 12:02:00 GMT", 120),
        ("Wed, 01 Jan 2025 12:00:01 GMT", 1),
        ("Wed, 01 Jan 2025 14:00:00 +0200", 0),
        ("Wed, 01 Jan 2025 13:00:00 +0000", 3600),
    ],
)
def test_parse_retry_after_reads_an_http_date(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_parse_retry_after_rounds_a_part_second_up():
    just_before = NOW - timedelta(microseconds=500_000)
    assert parse_retry_after("Wed, 01 Jan 2025 12:02:00 GMT", now=just_before) == 121


@pytest.mark.parametrize("value", ["Wed, 01 Jan 2025 11:59:00 GMT", "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_parse_retry_after_date_in_the_past_is_zero(value):
    assert parse_retry_after(value, now=NOW) == 0


@pytest.mark.parametrize(
    "value",
    [
        "soon",
        "-1",
        "1.5",
        "+5",
        "0x10",
        "30s",
        "Wed, 32 Jan 2025 12:00:00 GMT",
        "\u00b2",
        "9" * 5000,
        "",
        "  ",
    ],
    ids=[
        "word",
        "negative",
        "fraction",
        "plus-sign",
        "hex",
        "unit",
        "impossible-date",
        "superscript-digit",
        "too-many-digits",
        "empty",
        "blank",
    ],
)
def test_parse_retry_after_garbage_is_none(value):
    assert parse_retry_after(value, now=NOW) is None


def test_parse_retry_after_none_is_none():
    assert parse_retry_after(None) is None


def test_session_keeps_enough_connections_for_a_threaded_worker():
    adapter = get_client().session.get_adapter("https://align.invalid/")
    assert adapter._pool_maxsize >= 16
    assert adapter.max_retries.total == 0, "retries are the client's own, within the deadline"


# --- The read watchdog: one thread for every lookup of the process ------------------------------


class ShutdownRecorder:
    """Stands in for a response: records when the watchdog shuts it for reading."""

    def __init__(self) -> None:
        self.shut_at: float | None = None
        self.raw = self

    def shutdown(self) -> None:
        self.shut_at = time.monotonic()


def test_the_watchdog_shuts_a_read_whose_deadline_passed_first_even_when_set_after_a_later_one():
    watchdog = client._Watchdog()
    later, sooner = ShutdownRecorder(), ShutdownRecorder()
    started = time.monotonic()
    later_alarm = watchdog.set(started + 30, later)
    time.sleep(0.1)  # the watchdog is asleep until the later alarm when the sooner one is set
    watchdog.set(started + 0.2, sooner)

    deadline = time.monotonic() + 5
    while sooner.shut_at is None and time.monotonic() < deadline:
        time.sleep(0.01)

    assert sooner.shut_at is not None
    assert sooner.shut_at - started < 1
    assert later.shut_at is None
    watchdog.cancel(later_alarm)
    assert watchdog.pending() == 0


def test_a_cancelled_alarm_never_shuts_its_read():
    watchdog = client._Watchdog()
    finished = ShutdownRecorder()
    watchdog.cancel(watchdog.set(time.monotonic() + 0.05, finished))
    time.sleep(0.2)
    assert finished.shut_at is None
    assert watchdog.pending() == 0


# --- Proxy and CA settings: from the environment, read once per client --------------------------


def build_client(base_url: str = "https://api.example-align.test") -> client.AlignClient:
    config = client.AlignConfig(base_url=base_url, api_key="k", timeout=5, user_agent="test")
    return client.AlignClient(config)


@pytest.fixture
def clean_proxy_environment(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_proxy_and_a_ca_bundle_from_the_environment_are_used(clean_proxy_environment):
    clean_proxy_environment.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    clean_proxy_environment.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company-ca.pem")

    session = build_client().session

    assert session.proxies["https"] == "http://proxy.internal:3128"
    assert session.verify == "/etc/ssl/company-ca.pem"


def test_no_proxy_naming_the_align_host_is_honoured(clean_proxy_environment):
    clean_proxy_environment.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    clean_proxy_environment.setenv("NO_PROXY", "api.example-align.test")

    assert "https" not in build_client().session.proxies


def test_without_a_ca_bundle_certificates_are_verified_against_the_default_store(clean_proxy_environment):
    assert build_client().session.verify is True


def test_credentials_in_netrc_are_never_sent_beside_the_api_key(
    clean_proxy_environment, tmp_path, align, demo_body
):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.example-align.test login someone password their-password\n")
    netrc.chmod(0o600)
    clean_proxy_environment.setenv("NETRC", str(netrc))
    built = build_client()
    align.get(f"{built.config.base_url}/v0/customers/{ADA}", json=demo_body(ADA))

    built.get_customer(ADA_ID)

    assert "Authorization" not in align.calls[0].request.headers
    assert align.calls[0].request.headers["Api-Key"] == "k"


# --- Search by e-mail and KYC sessions (issue #14) ------------------------------------------------

SEARCHED_EMAIL = "jane.doe+kyc@example.com"


def test_search_sends_the_email_as_a_query_parameter_with_the_key(align, settings, demo_body):
    align.get(
        f"{settings.ALIGN_API_BASE_URL}/v0/customers",
        match=[
            matchers.query_param_matcher({"email": SEARCHED_EMAIL}),
            matchers.header_matcher({"Api-Key": TEST_API_KEY}),
        ],
        json={"items": [demo_body(ADA), demo_body(DemoId.FORM_STARTED)]},
    )
    found = client.customers_search_by_email(email=SEARCHED_EMAIL)
    assert [str(customer.customer_id) for customer in found] == [ADA, DemoId.FORM_STARTED]


def test_search_logs_the_count_and_never_the_email(align, settings, demo_body, caplog):
    caplog.set_level(logging.INFO, logger="customers.align.client")
    align.get(f"{settings.ALIGN_API_BASE_URL}/v0/customers", json={"items": [demo_body(ADA)]})
    client.customers_search_by_email(email=SEARCHED_EMAIL)
    assert "matches=1" in caplog.text
    assert "jane" not in caplog.text


@pytest.mark.parametrize(
    "items",
    [[{"customer_id": ADA}], [None], "not a list"],
    ids=["item-missing-fields", "null-item", "items-not-a-list"],
)
def test_search_refuses_a_malformed_answer_without_naming_the_email(align, settings, items, caplog):
    align.get(f"{settings.ALIGN_API_BASE_URL}/v0/customers", json={"items": items})
    with pytest.raises(InvalidResponse) as raised:
        client.customers_search_by_email(email=SEARCHED_EMAIL)
    assert "jane" not in str(raised.value)
    assert "jane" not in caplog.text


def search_answer(align, settings, email: str, items: list | None = None, *, after: float = 0, **kwargs):
    """Register Align's answer to a search for `email`: `items`, sent `after` seconds."""

    def answer(request):
        time.sleep(after)
        return 200, {"Content-Type": "application/json"}, json.dumps({"items": items or []})

    url = f"{settings.ALIGN_API_BASE_URL}/v0/customers"
    align.add_callback("GET", url, answer, match=[matchers.query_param_matcher({"email": email})])


def test_search_asks_for_the_fallbacks_in_turn_until_one_finds_somebody(align, settings, demo_body):
    search_answer(align, settings, "Jane.Doe@example.com")
    search_answer(align, settings, "jane.doe@example.com", [demo_body(ADA)])
    found = client.customers_search_by_email(
        email="Jane.Doe@example.com", fallbacks=("jane.doe@example.com", "JANE.DOE@example.com")
    )
    assert [str(customer.customer_id) for customer in found] == [ADA]
    assert [call.request.params["email"] for call in align.calls] == [
        "Jane.Doe@example.com",
        "jane.doe@example.com",
    ]


def test_search_asks_no_fallback_once_the_address_finds_somebody(align, settings, demo_body):
    search_answer(align, settings, "Jane.Doe@example.com", [demo_body(ADA)])
    client.customers_search_by_email(email="Jane.Doe@example.com", fallbacks=("jane.doe@example.com",))
    assert len(align.calls) == 1


def test_a_search_and_its_fallbacks_share_one_deadline(align, settings, caplog):
    """Each answer alone is within ALIGN_API_TIMEOUT; the two together are not."""
    settings.ALIGN_API_TIMEOUT = 0.5
    search_answer(align, settings, "Jane.Doe@example.com", after=0.3)
    search_answer(align, settings, "jane.doe@example.com", after=0.3)
    with pytest.raises(UpstreamTimeout):
        client.customers_search_by_email(email="Jane.Doe@example.com", fallbacks=("jane.doe@example.com",))
    assert len(align.calls) == 2
    assert "attempts=2" in caplog.text
    assert "jane" not in caplog.text.lower()


def test_start_kyc_session_posts_an_empty_object_and_reads_the_new_session(align, settings):
    align.post(
        f"{settings.ALIGN_API_BASE_URL}/v0/customers/{ADA}/kycs",
        match=[matchers.json_params_matcher({}), matchers.header_matcher({"Api-Key": TEST_API_KEY})],
        status=201,
        json={"kycs": {"status": "pending", "kyc_flow_link": "https://kyc.example/flow/x"}},
    )
    session = client.kyc_session_start(customer_id=ADA_ID)
    assert session.status is KycStatus.PENDING
    assert session.kyc_flow_link == "https://kyc.example/flow/x"


def test_start_kyc_session_keeps_aligns_message_for_the_log_masked_and_short(align, settings, caplog):
    message = "Customer jane@example.com cannot restart: " + "x" * 500
    align.post(
        f"{settings.ALIGN_API_BASE_URL}/v0/customers/{ADA}/kycs", status=422, json={"message": message}
    )
    with pytest.raises(client.RequestRefused) as raised:
        client.kyc_session_start(customer_id=ADA_ID)
    assert raised.value.align_message.startswith("Customer <e-mail> cannot restart: xxx")
    assert len(raised.value.align_message) == client.MAX_ALIGN_MESSAGE_CHARS
    assert "jane@example.com" not in str(raised.value)
    assert "jane@example.com" not in caplog.text
    assert "align_message=Customer <e-mail> cannot restart" in caplog.text


@pytest.mark.parametrize(
    "body",
    [{"kycs": None}, {"kycs": {"status": "pending"}}, {"kycs": {"status": 3, "kyc_flow_link": "x"}}, []],
    ids=["kycs-null", "no-link", "status-not-a-string", "array"],
)
def test_start_kyc_session_refuses_a_malformed_answer(align, settings, body):
    align.post(f"{settings.ALIGN_API_BASE_URL}/v0/customers/{ADA}/kycs", status=201, json=body)
    with pytest.raises(InvalidResponse):
        client.kyc_session_start(customer_id=ADA_ID)


def test_start_kyc_session_never_logs_the_link(align, settings, caplog):
    caplog.set_level(logging.DEBUG)
    align.post(
        f"{settings.ALIGN_API_BASE_URL}/v0/customers/{ADA}/kycs",
        status=201,
        json={"kycs": {"status": "pending", "kyc_flow_link": "https://kyc.example/flow/secret-token"}},
    )
    client.kyc_session_start(customer_id=ADA_ID)
    assert "secret-token" not in caplog.text
    assert "Align KYC session started" in caplog.text
