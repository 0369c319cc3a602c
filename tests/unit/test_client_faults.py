"""The client and the lookup page against a real, misbehaving HTTP server (no mocks).

For each fault: the message staff see, the page's status, how many requests were made, and
that the lookup ended within its deadline, leaving no thread or socket behind.
"""

import os
import socket
import threading
import time
import uuid

import pytest

from customers.align import client
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from tests.support import fault_server as faults

pytestmark = pytest.mark.django_db

ADA = str(DemoId.INDIVIDUAL_APPROVED)
ADA_BODY = DEMO_CUSTOMERS[ADA]
DEADLINE = 1.0
# What a lookup may take beyond its deadline: the watchdog's wake-up and the page render.
MARGIN = 0.5


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def align_faults(settings):
    """Start a fault server with a script; settings point the dashboard at it."""
    servers = []
    threads_before = set(threading.enumerate())

    def start(*script: faults.Behaviour) -> faults.FaultServer:
        server = faults.FaultServer(list(script)).start()
        servers.append(server)
        settings.ALIGN_API_BASE_URL = server.base_url
        settings.ALIGN_API_TIMEOUT = DEADLINE
        return server

    descriptors_before = open_descriptors()
    yield start
    for server in servers:
        server.stop()
    client.get_client().session.close()
    deadline = time.monotonic() + 2
    while {t.name for t in set(threading.enumerate()) - threads_before} - {"align-read-watchdog"} and (
        time.monotonic() < deadline
    ):
        time.sleep(0.02)
    # The read watchdog is one thread for the whole process, started by the first lookup.
    leftover = [thread.name for thread in set(threading.enumerate()) - threads_before]
    assert [name for name in leftover if name != "align-read-watchdog"] == [], (
        f"threads left behind: {leftover}"
    )
    assert client._WATCHDOG.pending() == 0, "a body read is still watched after its lookup ended"
    assert open_descriptors() <= descriptors_before, "a socket or file was left open"


def timed_get(staff_client, path=f"/customers/{ADA}/"):
    started = time.monotonic()
    response = staff_client.get(path)
    return response, time.monotonic() - started


# --- Slow and broken connections: bounded by the deadline ------------------------------------


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(faults.respond(200, ADA_BODY, after=5), id="slow-headers"),
        pytest.param(faults.headers_then_hang(30), id="hang-after-headers"),
        pytest.param(
            faults.trickle(b'{"customer_id": "' + b"x" * 400 + b'"}', every=0.05), id="trickled-body"
        ),
    ],
)
def test_slow_upstream_ends_within_the_deadline_as_a_timeout(staff_client, align_faults, behaviour):
    server = align_faults(behaviour)
    response, elapsed = timed_get(staff_client)
    assert response.status_code == 504
    assert b"Align did not answer in time" in response.content
    assert elapsed < DEADLINE + MARGIN
    assert len(server.requests) == 1


def test_answer_just_inside_the_deadline_is_shown(staff_client, align_faults):
    align_faults(faults.respond(200, ADA_BODY, after=0.5))
    response, _elapsed = timed_get(staff_client)
    assert response.status_code == 200
    assert b"Ada Lovelace" in response.content


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(faults.close_mid_body(), id="closed-mid-body"),
        pytest.param(faults.reset_connection(), id="reset"),
    ],
)
def test_dropped_connection_is_retried_then_reported_unavailable(staff_client, align_faults, behaviour):
    server = align_faults(behaviour)
    response, elapsed = timed_get(staff_client)
    assert response.status_code == 503
    assert b"Align is unavailable" in response.content
    assert len(server.requests) == 1 + client.MAX_RETRIES
    assert elapsed < DEADLINE + MARGIN


def test_dropped_connection_then_a_good_answer_shows_the_customer(staff_client, align_faults):
    server = align_faults(faults.reset_connection(), faults.respond(200, ADA_BODY))
    response, _ = timed_get(staff_client)
    assert response.status_code == 200
    assert len(server.requests) == 2


# --- Status codes ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_then_200_show_the_customer(staff_client, align_faults, status):
    server = align_faults(faults.respond(status, {}), faults.respond(200, ADA_BODY))
    response, _ = timed_get(staff_client)
    assert response.status_code == 200
    assert b"Ada Lovelace" in response.content
    assert len(server.requests) == 2


def test_two_gateway_errors_then_200_still_show_the_customer(staff_client, align_faults):
    server = align_faults(faults.respond(502, {}), faults.respond(503, {}), faults.respond(200, ADA_BODY))
    response, _ = timed_get(staff_client)
    assert response.status_code == 200
    assert len(server.requests) == 3


def test_500_is_not_retried(staff_client, align_faults):
    server = align_faults(faults.respond(500, {}), faults.respond(200, ADA_BODY))
    response, _ = timed_get(staff_client)
    assert response.status_code == 502
    assert b"Align is unavailable" in response.content
    assert len(server.requests) == 1


def test_gateway_errors_every_time_give_up_after_two_retries(staff_client, align_faults):
    server = align_faults(faults.respond(503, {}))
    response, elapsed = timed_get(staff_client)
    assert response.status_code == 502
    assert len(server.requests) == 3
    assert elapsed < DEADLINE + MARGIN


@pytest.mark.parametrize(
    "retry_after",
    [pytest.param("0", id="seconds"), pytest.param(faults.http_date_in(-5), id="http-date-past")],
)
def test_429_that_fits_the_deadline_is_retried_once(staff_client, align_faults, retry_after):
    server = align_faults(
        faults.respond(429, {}, headers={"Retry-After": retry_after}), faults.respond(200, ADA_BODY)
    )
    response, _ = timed_get(staff_client)
    assert response.status_code == 200
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("retry_after", "words"),
    [
        pytest.param(lambda: "30", b"Align asked us to wait 30 seconds.", id="seconds"),
        # A date ten minutes from when the test runs, not from when the suite was collected.
        pytest.param(
            lambda: faults.http_date_in(600), b"Align asked us to wait about 10 minutes.", id="http-date"
        ),
        pytest.param(lambda: "soon", b"Wait a minute before trying again.", id="unreadable"),
    ],
)
def test_429_beyond_the_deadline_tells_staff_when_to_try_again(
    staff_client, align_faults, retry_after, words
):
    server = align_faults(faults.respond(429, {}, headers={"Retry-After": retry_after()}))
    response, elapsed = timed_get(staff_client)
    assert response.status_code == 503
    assert b"Align is rate-limiting us" in response.content
    assert words in response.content
    assert len(server.requests) == 1
    assert elapsed < DEADLINE


# --- Bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(faults.respond(200, b'{"customer_id": '), id="invalid-json"),
        pytest.param(faults.respond(200, []), id="json-array"),
        pytest.param(faults.respond(200, "a string"), id="json-string"),
        pytest.param(faults.respond(200, b"null"), id="json-null"),
        pytest.param(faults.respond(200, ADA_BODY, content_type="text/html"), id="text-html"),
        pytest.param(faults.respond(200, ADA_BODY, content_type=None), id="no-content-type"),
        pytest.param(faults.endless_body(5 * 1024 * 1024, declare_length=True), id="5-mib-declared"),
        pytest.param(faults.endless_body(5 * 1024 * 1024, declare_length=False), id="5-mib-undeclared"),
    ],
)
def test_unusable_bodies_are_an_unexpected_response(staff_client, align_faults, behaviour):
    server = align_faults(behaviour)
    response, elapsed = timed_get(staff_client)
    assert response.status_code == 502
    assert b"Unexpected response from Align" in response.content
    assert len(server.requests) == 1
    assert elapsed < DEADLINE + MARGIN


def test_big_body_is_not_read_to_the_end(align_faults, settings):
    """The client stops at the cap instead of loading all five mebibytes."""
    align_faults(faults.endless_body(5 * 1024 * 1024, declare_length=False))
    with pytest.raises(client.InvalidResponse, match="larger than"):
        client.customer_get(customer_id=uuid.UUID(ADA))


def test_valid_body_with_extra_fields_is_shown(staff_client, align_faults):
    body = {**ADA_BODY, "risk_score": 12, "kycs": {**ADA_BODY["kycs"], "provider": {"name": "x"}}}
    align_faults(faults.respond(200, body))
    response, _ = timed_get(staff_client)
    assert response.status_code == 200
    assert b"Ada Lovelace" in response.content


def test_the_auth_header_reaches_the_server_and_the_key_nowhere_else(
    staff_client, align_faults, settings, caplog
):
    server = align_faults(faults.respond(503, {}))
    caplog.set_level("DEBUG")
    response, _ = timed_get(staff_client)
    assert f"Api-Key: {settings.ALIGN_API_KEY}".encode() in server.requests[0]
    assert settings.ALIGN_API_KEY not in caplog.text
    assert settings.ALIGN_API_KEY.encode() not in response.content


# --- Starting a KYC session (issue #14): a POST is repeated only if it was never sent ------------

SESSION_BODY = {"kycs": {"status": "pending", "kyc_flow_link": "https://kyc.example/flow/new"}}


def start_session() -> client.KycSession:
    return client.kyc_session_start(customer_id=uuid.UUID(ADA))


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(faults.reset_connection(), id="reset-after-reading-the-request"),
        pytest.param(faults.close_mid_body(), id="closed-mid-answer"),
        pytest.param(faults.respond(503, {}), id="503"),
    ],
)
def test_a_start_that_reached_align_is_never_sent_again(align_faults, behaviour):
    server = align_faults(behaviour, faults.respond(201, SESSION_BODY))
    with pytest.raises(client.AlignError) as raised:
        start_session()
    assert len(server.requests) == 1
    assert raised.value.attempts == 1
    assert server.requests[0].startswith(b"POST /v0/customers/" + ADA.encode() + b"/kycs ")


def test_a_start_that_times_out_waiting_for_the_answer_is_not_sent_again(align_faults):
    server = align_faults(faults.respond(201, SESSION_BODY, after=5))
    started = time.monotonic()
    with pytest.raises(client.UpstreamTimeout):
        start_session()
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert len(server.requests) == 1


def test_a_start_whose_connection_was_refused_is_tried_again_within_the_deadline(settings):
    with socket.socket() as probe:  # a port nobody listens on: every connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.ALIGN_API_BASE_URL = f"http://127.0.0.1:{port}"
    settings.ALIGN_API_TIMEOUT = DEADLINE
    started = time.monotonic()
    with pytest.raises(client.UpstreamUnreachable) as raised:
        start_session()
    assert raised.value.attempts == 1 + client.MAX_RETRIES
    assert raised.value.never_sent
    assert time.monotonic() - started < DEADLINE + MARGIN


def test_a_start_answered_201_gives_the_new_session(align_faults):
    align_faults(faults.respond(201, SESSION_BODY))
    session = start_session()
    assert session.kyc_flow_link == "https://kyc.example/flow/new"
    assert "flow/new" not in repr(session)


def test_a_search_whose_connection_dropped_is_retried_as_a_get(align_faults):
    server = align_faults(faults.reset_connection(), faults.respond(200, {"items": [ADA_BODY]}))
    (customer,) = client.customers_search_by_email(email="ada.lovelace@example.com")
    assert str(customer.customer_id) == ADA
    assert len(server.requests) == 2
    assert all(b"email=ada.lovelace%40example.com" in request for request in server.requests)
