"""The search page's demo list: read from the stand-in's own address, in debug runs only, never fatal.

The stand-in's side of it (what it answers at DEMO_LIST_PATH) is in tests/contract/test_stub.py.
Its e-mails to try search by POST, as the field does, so an address never enters a URL.
"""

import re
import time
from collections.abc import Iterator

import pytest

from customers.align import stand_in_demo
from customers.align.standin.demo import (
    DEMO_DESCRIPTIONS,
    DEMO_EMAILS,
    DRILL_DESCRIPTIONS,
    DemoId,
    DrillId,
)
from customers.align.standin.server import StubServer, serving
from tests.support import fault_server as faults

pytestmark = pytest.mark.django_db

ADA = str(DemoId.INDIVIDUAL_APPROVED)
DEMO_HEADING = b"Demo customers"


@pytest.fixture(autouse=True)
def _nothing_read_before():
    """Each test reads the list afresh: it is kept for the life of the process once read."""
    stand_in_demo._read.cache_clear()
    yield
    stand_in_demo._read.cache_clear()


@pytest.fixture
def stand_in(settings) -> Iterator[StubServer]:
    """A debug run of the dashboard pointed at a stand-in."""
    settings.DEBUG = True
    with serving(api_key=settings.ALIGN_API_KEY) as server:
        settings.ALIGN_API_BASE_URL = server.base_url
        yield server


def test_a_debug_run_lists_every_demo_customer_and_drill_with_its_words(staff_client, stand_in):
    html = staff_client.get("/customers/").content.decode()
    assert DEMO_HEADING.decode() in html
    for customer_id, description in {**DEMO_DESCRIPTIONS, **DRILL_DESCRIPTIONS}.items():
        assert f'href="/customers/{customer_id}/"' in html
        assert f"<span>{description}</span>" in html


def test_without_debug_the_stand_in_is_never_asked(staff_client, stand_in, settings):
    settings.DEBUG = False
    response = staff_client.get("/customers/")
    assert DEMO_HEADING not in response.content
    assert ADA.encode() not in response.content
    assert stand_in.calls == 0


def test_a_debug_run_pointed_at_align_never_asks_it_for_a_demo_list(staff_client, settings, align):
    settings.DEBUG = True
    settings.ALIGN_API_BASE_URL = settings.ALIGN_SANDBOX_URL
    assert DEMO_HEADING not in staff_client.get("/customers/").content
    assert len(align.calls) == 0


def test_the_list_is_read_once_and_kept(staff_client, stand_in):
    for _ in range(3):
        assert ADA.encode() in staff_client.get("/customers/").content
    assert stand_in.calls == 1


def test_an_htmx_swap_never_asks_for_the_list(staff_client, stand_in, htmx_headers):
    staff_client.post("/customers/", {"customer_id": "not an id"}, headers=htmx_headers)
    assert stand_in.calls == 0


def test_a_stand_in_that_is_down_means_no_list_and_is_asked_again_later(staff_client, settings):
    settings.DEBUG = True
    with serving(api_key=settings.ALIGN_API_KEY) as server:
        port = server.server_address[1]
    settings.ALIGN_API_BASE_URL = f"http://127.0.0.1:{port}"
    response = staff_client.get("/customers/")
    assert response.status_code == 200
    assert DEMO_HEADING not in response.content
    with serving(api_key=settings.ALIGN_API_KEY, port=port) as server:
        assert ADA.encode() in staff_client.get("/customers/").content


def test_the_list_is_never_asked_with_the_api_key(settings):
    server = faults.FaultServer([faults.respond(200, {"customers": [], "drills": [], "emails": []})]).start()
    try:
        assert stand_in_demo.demo_list(server.base_url) == stand_in_demo.DemoList(
            customers=(), drills=(), emails=()
        )
    finally:
        server.stop()
    (request,) = server.requests
    assert request.startswith(f"GET {stand_in_demo.DEMO_LIST_PATH} ".encode())
    assert settings.ALIGN_API_KEY.encode() not in request


def test_a_stand_in_that_hangs_is_given_up_within_the_timeout(settings):
    server = faults.FaultServer(
        [faults.respond(body={"customers": [], "drills": [], "emails": []}, after=5)]
    ).start()
    try:
        started = time.monotonic()
        assert stand_in_demo.demo_list(server.base_url) is None
        assert time.monotonic() - started < stand_in_demo.TIMEOUT_SECONDS + 1
    finally:
        server.stop()


GOOD_ENTRY = {"customer_id": ADA, "description": "Individual, approved"}
GOOD_EMAIL = {"email": "ada.lovelace@example.com", "description": "One match"}


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(faults.respond(500, {"customers": [GOOD_ENTRY], "drills": [], "emails": []}), id="500"),
        pytest.param(faults.respond(200, "not json"), id="not-json"),
        pytest.param(faults.respond(200, {"customers": [GOOD_ENTRY], "emails": []}), id="no-drills"),
        pytest.param(faults.respond(200, {"customers": [GOOD_ENTRY], "drills": []}), id="no-emails"),
        pytest.param(
            faults.respond(
                200,
                {"customers": [], "drills": [], "emails": [{"email": "a@b.example c@d", "description": "x"}]},
            ),
            id="not-one-address",
        ),
        pytest.param(
            faults.respond(200, {"customers": [], "drills": [], "emails": [{"email": "a@b.example"}]}),
            id="email-without-words",
        ),
        pytest.param(faults.respond(200, [GOOD_ENTRY]), id="not-an-object"),
        pytest.param(
            faults.respond(
                200, {"customers": [{"customer_id": "../admin/", "description": "x"}], "drills": []}
            ),
            id="not-an-id",
        ),
        pytest.param(
            faults.respond(200, {"customers": [{"customer_id": ADA, "description": 7}], "drills": []}),
            id="no-words",
        ),
        pytest.param(faults.respond(200, {"customers": ["x"], "drills": []}), id="not-an-entry"),
    ],
)
def test_an_answer_that_is_not_a_demo_list_is_no_list(behaviour):
    server = faults.FaultServer([behaviour]).start()
    try:
        assert stand_in_demo.demo_list(server.base_url) is None
    finally:
        server.stop()


def test_the_page_shows_what_the_stand_in_describes(staff_client, settings):
    settings.DEBUG = True
    answer = {
        "customers": [GOOD_ENTRY],
        "drills": [{"customer_id": DrillId.SLOW, "description": "Slow"}],
        "emails": [GOOD_EMAIL],
    }
    server = faults.FaultServer([faults.respond(200, answer)]).start()
    settings.ALIGN_API_BASE_URL = server.base_url
    try:
        html = staff_client.get("/customers/").content.decode()
    finally:
        server.stop()
    assert "<span>Individual, approved</span>" in html
    assert f'href="/customers/{DrillId.SLOW}/"' in html
    assert str(DemoId.FORM_STARTED) not in html
    assert "<span>One match</span><code>ada.lovelace@example.com</code>" in html


# --- E-mails to try (issue #19, item 11) --------------------------------------------------------

EMAIL_FORM = re.compile(
    r'<form action="/customers/" method="post" hx-post="/customers/" data-demo-email>'
    r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">'
    r'<input type="hidden" name="customer_id" value="(?P<email>[^"]+)">'
    r'<button type="submit"><span>(?P<description>[^<]+)</span><code>(?P=email)</code></button></form>'
)


def test_a_debug_run_lists_the_e_mails_to_try_each_a_search_by_post(staff_client, stand_in):
    html = staff_client.get("/customers/").content.decode()
    assert "E-mails to try" in html
    assert [(found["email"], found["description"]) for found in EMAIL_FORM.finditer(html)] == list(
        DEMO_EMAILS.items()
    )
    # Never in a link: no address the page may send the browser to holds an e-mail.
    assert not re.search(r'(?:href|hx-get|action)="[^"]*@', html)


def test_the_e_mails_to_try_cover_one_match_two_customers_and_none():
    assert list(DEMO_EMAILS.values()) == [
        "One match",
        "One match, typed in another case",
        "Two customers share it",
        "No match",
    ]


SHOWN = {
    "One match": "Ada Lovelace",
    "One match, typed in another case": "Ada Lovelace",
    "Two customers share it": "2 customers have this e-mail",
    "No match": "No customer with this e-mail in Local stand-in",
}


@pytest.mark.parametrize(("email", "description"), list(DEMO_EMAILS.items()))
def test_each_e_mail_to_try_finds_what_the_list_says(
    staff_client, stand_in, htmx_headers, email, description
):
    response = staff_client.post("/customers/", {"customer_id": email}, headers=htmx_headers)
    assert SHOWN[description] in response.content.decode()
