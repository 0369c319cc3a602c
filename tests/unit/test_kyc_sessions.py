"""Start new KYC session (issue #14): who sees the button, who may POST, the guard, the audit, the swap.

Align is mocked with `responses`; the client's no-retry rule is tested against a real misbehaving
server in tests/unit/test_client_faults.py.
"""

import json
import re
import threading
import uuid

import pytest
import responses
from django.contrib.auth.models import Group, Permission
from django.db import DatabaseError
from django.test import Client

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.models import AuditEvent
from customers.permissions import START_PERMISSION
from customers.services.kyc_sessions import guard_key
from dashboard.ops.shared_cache import shared_cache

pytestmark = pytest.mark.django_db

NOT_STARTED = str(DemoId.KYC_NOT_STARTED)
NO_LINK = str(DemoId.NO_KYC_LINK)
NON_WEB_LINK = str(DemoId.NON_WEB_LINK)
REJECTED = str(DemoId.REJECTED)
APPROVED = str(DemoId.INDIVIDUAL_APPROVED)
FORM_STARTED = str(DemoId.FORM_STARTED)
NEW_LINK = "https://kyc.example/flow/new-session-7f3a"
# The button itself: the card's next step may name it in words.
BUTTON = 'data-dialog-open="kyc-session-dialog"'


@pytest.fixture(autouse=True)
def _clear_guards():
    shared_cache.clear()
    yield
    shared_cache.clear()


@pytest.fixture
def lead(django_user_model):
    """A Compliance lead: the group's two permissions, given directly, so transactional tests
    (which flush the groups that migrations made) hold them too."""
    user = django_user_model.objects.create_user(username="lena", password="irrelevant-password")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["lookup_customer", "start_kyc_session"])
    )
    return user


@pytest.fixture
def lead_client(lead) -> Client:
    client = Client()
    client.force_login(lead)
    return client


@pytest.fixture
def sessions_url(settings):
    def build(customer_id: str) -> str:
        return f"{settings.ALIGN_API_BASE_URL}/v0/customers/{customer_id}/kycs"

    return build


def demo(demo_id: str, **changes) -> dict:
    return json.loads(json.dumps(DEMO_CUSTOMERS[demo_id])) | changes


def start(client: Client, customer_id: str = NOT_STARTED, **kwargs):
    return client.post(f"/customers/{customer_id}/kyc-session/", headers={"HX-Request": "true"}, **kwargs)


def answer_start(align, sessions_url, customer_id=NOT_STARTED, *, status=201, json_body=None, **kwargs):
    if json_body is None and status == 201:
        json_body = {"kycs": {"status": "pending", "kyc_flow_link": NEW_LINK}}
    align.post(sessions_url(customer_id), status=status, json=json_body, **kwargs)


# --- Who sees the button --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("demo_id", "offered"),
    [
        pytest.param(NOT_STARTED, True, id="no-kyc"),
        pytest.param(NO_LINK, True, id="no-link"),
        pytest.param(NON_WEB_LINK, True, id="not-a-web-link"),
        pytest.param(REJECTED, True, id="rejected"),
        pytest.param(APPROVED, False, id="approved"),
        pytest.param(FORM_STARTED, False, id="pending-with-a-link"),
    ],
)
def test_the_button_shows_to_a_lead_only_in_the_states_that_need_a_new_session(
    lead_client, serve, demo_id, offered
):
    serve(demo_id)
    html = lead_client.get(f"/customers/{demo_id}/").content.decode()
    assert (BUTTON in html) is offered
    if offered:
        assert '<dialog id="kyc-session-dialog"' in html
        assert f'For customer <code class="dialog-id">{demo_id}</code>' in html
        assert "the new link replaces the old one" in html
        assert 'name="csrfmiddlewaretoken"' in html.split('<dialog id="kyc-session-dialog"', 1)[1]


def test_the_button_is_hidden_from_staff_without_the_permission(staff_client, serve):
    serve(NOT_STARTED)
    html = staff_client.get(f"/customers/{NOT_STARTED}/").content.decode()
    assert BUTTON not in html
    assert "kyc-session-dialog" not in html


def test_a_forged_post_without_the_permission_is_403_and_never_reaches_align(staff_client, align):
    response = start(staff_client)
    assert response.status_code == 403
    assert len(align.calls) == 0
    assert not AuditEvent.objects.exists()


def test_an_anonymous_post_is_sent_to_sign_in(client, align):
    response = client.post(f"/customers/{NOT_STARTED}/kyc-session/")
    assert response.status_code == 302
    assert len(align.calls) == 0


def test_a_get_is_refused(lead_client, align):
    assert lead_client.get(f"/customers/{NOT_STARTED}/kyc-session/").status_code == 405


def test_a_post_without_the_csrf_token_is_refused(lead, align):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    response = client.post(f"/customers/{NOT_STARTED}/kyc-session/")
    assert response.status_code == 403
    assert len(align.calls) == 0
    assert not AuditEvent.objects.exists()


def test_a_post_with_the_csrf_token_from_the_card_goes_through(lead, serve, align, sessions_url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    serve(NOT_STARTED)
    card = client.get(f"/customers/{NOT_STARTED}/").content.decode()
    token = card.split('<dialog id="kyc-session-dialog"', 1)[1].split(
        'name="csrfmiddlewaretoken" value="', 1
    )[1][:64]
    answer_start(align, sessions_url)
    serve(
        NOT_STARTED,
        change=lambda body: body.update(
            kycs={"status": "pending", "kyc_flow_link": NEW_LINK, "status_breakdown": []}
        ),
    )
    response = client.post(
        f"/customers/{NOT_STARTED}/kyc-session/",
        {"csrfmiddlewaretoken": token},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200


# --- The start, the swap and the audit ---------------------------------------------------------


def test_success_swaps_the_card_for_one_with_the_new_link_and_a_note(lead_client, align, sessions_url, serve):
    answer_start(align, sessions_url)
    serve(
        NOT_STARTED,
        change=lambda body: body.update(
            kycs={"status": "pending", "kyc_flow_link": NEW_LINK, "status_breakdown": []}
        ),
    )
    response = start(lead_client)
    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#result"
    assert response["HX-Reswap"] == "innerHTML"
    assert 'class="card customer-card"' in html
    assert f'href="{NEW_LINK}"' in html
    assert "Copy link" in html
    assert re.search(r"New KYC session started \d\d:\d\d by you", html)
    assert BUTTON not in html  # pending with a working link: send it instead
    assert json.loads(align.calls[0].request.body) == {}


def test_the_new_link_from_align_is_shown_even_before_its_lookup_catches_up(
    lead_client, align, sessions_url, serve
):
    answer_start(align, sessions_url)
    serve(NOT_STARTED)  # Align's lookup still says no KYC
    html = start(lead_client).content.decode()
    assert f'href="{NEW_LINK}"' in html
    assert "Pending" in html


def test_success_is_recorded_with_the_new_status_and_never_the_link(
    lead_client, align, sessions_url, serve, caplog
):
    answer_start(align, sessions_url)
    serve(NOT_STARTED)
    start(lead_client)
    event = AuditEvent.objects.get(action=AuditEvent.Action.KYC_SESSION_STARTED)
    assert event.user.username == "lena"
    assert event.customer_id == uuid.UUID(NOT_STARTED)
    assert (event.outcome, event.kyc_status) == ("session_started", "pending")
    for field in AuditEvent._meta.concrete_fields:
        assert "new-session-7f3a" not in str(field.value_from_object(event))
    assert "new-session-7f3a" not in caplog.text
    # The card shown afterwards is a recorded lookup, as every card is.
    assert AuditEvent.objects.filter(action="lookup", customer_id=NOT_STARTED, outcome="found").exists()


def test_the_row_is_written_before_align_is_asked(lead_client, align, monkeypatch):
    def broken(*args, **kwargs):
        raise DatabaseError("audit table is read-only")

    monkeypatch.setattr(AuditEvent.objects, "create", broken)
    response = start(lead_client)
    assert response.status_code == 503
    assert "audit log can" in response.content.decode()
    assert len(align.calls) == 0
    assert shared_cache.get(guard_key(uuid.UUID(NOT_STARTED))) is None


@pytest.mark.parametrize(
    ("status", "body", "words", "outcome"),
    [
        pytest.param(
            422,
            {"message": "KYC already approved for jane@example.com"},
            "Align refused to start a new KYC session",
            "refused",
            id="422",
        ),
        pytest.param(
            409,
            {"message": "session in progress"},
            "Align refused to start a new KYC session",
            "refused",
            id="409",
        ),
        pytest.param(400, None, "Align refused to start a new KYC session", "refused", id="400-no-body"),
        pytest.param(404, {"message": "no such customer"}, "No customer with this ID", "not_found", id="404"),
        pytest.param(401, {}, "API key was rejected", "key_rejected", id="401"),
        pytest.param(429, {}, "rate-limiting", "rate_limited", id="429"),
        pytest.param(500, {}, "Align is unavailable", "upstream_error", id="500"),
        pytest.param(
            200,
            {"kycs": {"status": "pending", "kyc_flow_link": NEW_LINK}},
            "Unexpected response",
            "invalid_response",
            id="200-not-201",
        ),
    ],
)
def test_a_refused_start_shows_the_failure_words_in_the_card_and_is_recorded(
    lead_client, align, sessions_url, caplog, status, body, words, outcome
):
    answer_start(align, sessions_url, status=status, json_body=body)
    response = start(lead_client)
    html = response.content.decode()
    assert words in html
    assert "kyc-session-failure" in html
    assert "HX-Retarget" not in response
    assert len(align.calls) == 1  # a POST is never repeated after Align answered
    event = AuditEvent.objects.get(action=AuditEvent.Action.KYC_SESSION_STARTED)
    assert event.outcome == outcome
    # Align's own message goes to the log, shortened and masked, never to staff.
    if body and body.get("message") and status in (400, 409, 422):
        assert body["message"] not in html
        assert "align_message=" in caplog.text
    assert "jane@example.com" not in caplog.text
    # Released: staff may try again at once.
    assert shared_cache.get(guard_key(uuid.UUID(NOT_STARTED))) is None


def test_a_start_that_timed_out_is_not_repeated(lead_client, align, sessions_url):
    import requests

    align.post(sessions_url(NOT_STARTED), body=requests.ReadTimeout())
    response = start(lead_client)
    assert response.status_code == 504
    assert len(align.calls) == 1
    assert AuditEvent.objects.get(action="kyc_session").outcome == "timeout"


# --- Double submits ----------------------------------------------------------------------------


def test_a_second_start_within_a_minute_names_who_started_it_and_skips_align(
    lead_client, align, sessions_url, serve
):
    answer_start(align, sessions_url)
    serve(NOT_STARTED)
    start(lead_client)
    response = start(lead_client)
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"A new session was started for this customer by lena at \d\d:\d\d", html)
    assert len([call for call in align.calls if call.request.method == "POST"]) == 1
    assert AuditEvent.objects.filter(action="kyc_session").count() == 1


def test_the_guard_is_per_customer(lead_client, align, sessions_url, serve):
    answer_start(align, sessions_url, NOT_STARTED)
    answer_start(align, sessions_url, NO_LINK)
    serve(NOT_STARTED)
    serve(NO_LINK)
    start(lead_client, NOT_STARTED)
    assert "Copy link" in start(lead_client, NO_LINK).content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_starts_call_align_once(lead, align, sessions_url, serve):
    entered = threading.Event()
    release = threading.Event()
    calls = []

    def slow_start(request):
        calls.append(request)
        entered.set()
        release.wait(5)
        return (201, {}, json.dumps({"kycs": {"status": "pending", "kyc_flow_link": NEW_LINK}}))

    align.add_callback(
        "POST", sessions_url(NOT_STARTED), callback=slow_start, content_type="application/json"
    )
    serve(NOT_STARTED)
    results = {}

    def post(name):
        client = Client()
        client.force_login(lead)
        results[name] = start(client)

    first = threading.Thread(target=post, args=("first",))
    first.start()
    assert entered.wait(5), "the first start never reached Align"
    second = threading.Thread(target=post, args=("second",))
    second.start()
    second.join(5)
    release.set()
    first.join(5)
    assert len(calls) == 1
    assert "A new session was started for this customer by lena" in results["second"].content.decode()
    assert "New KYC session started" in results["first"].content.decode()


# --- The group ---------------------------------------------------------------------------------


def test_compliance_leads_hold_the_lookup_and_the_start_permission():
    group = Group.objects.get(name="Compliance leads")
    assert {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()} == {
        "customers.lookup_customer",
        "customers.start_kyc_session",
    }


def test_the_permission_the_view_checks_exists():
    app_label, codename = START_PERMISSION.split(".")
    assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists()


# --- A colleague started one first (issue #19, items 1 and 2) ----------------------------------


@pytest.fixture
def second_lead(django_user_model) -> Client:
    user = django_user_model.objects.create_user(username="olga", password="irrelevant-password")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["lookup_customer", "start_kyc_session"])
    )
    client = Client()
    client.force_login(user)
    return client


def card_fetched_at(card_html: str) -> str:
    return re.search(r'name="card_fetched_at" value="([^"]+)"', card_html).group(1)


def test_a_start_refused_within_the_minute_shows_the_customer_as_they_are_now(
    lead_client, second_lead, align, sessions_url, serve, customer_url
):
    serve(REJECTED)
    stale_card = second_lead.get(f"/customers/{REJECTED}/").content.decode()
    assert "Rejected" in stale_card
    answer_start(align, sessions_url, REJECTED)
    start(lead_client, REJECTED)
    now_pending = {"status": "pending", "kyc_flow_link": NEW_LINK, "status_breakdown": []}
    align.replace(responses.GET, customer_url(REJECTED), json=demo(REJECTED, kycs=now_pending))

    response = start(second_lead, REJECTED, data={"card_fetched_at": card_fetched_at(stale_card)})

    html = response.content.decode()
    assert response["HX-Retarget"] == "#result"
    assert re.search(r"by lena at \d\d:\d\d\. This card now shows the customer as they are\.", html)
    assert 'class="kyc-session-note kyc-session-note-refused"' in html
    assert NEW_LINK in html
    assert BUTTON not in html  # pending with a working link: nothing to start again
    assert len([call for call in align.calls if call.request.method == "POST"]) == 1
    refresh = AuditEvent.objects.filter(action="lookup", user__username="olga").latest("id")
    assert refresh.is_refresh


def test_past_the_minute_a_card_fetched_before_a_colleagues_start_cannot_start_another(
    lead_client, second_lead, align, sessions_url, serve
):
    """The guard is gone after a minute; the stale card must not replace the link lena just sent."""
    serve(REJECTED)
    stale_card = second_lead.get(f"/customers/{REJECTED}/").content.decode()
    answer_start(align, sessions_url, REJECTED)
    start(lead_client, REJECTED)
    shared_cache.delete(guard_key(REJECTED))

    response = start(second_lead, REJECTED, data={"card_fetched_at": card_fetched_at(stale_card)})

    assert re.search(r"started for this customer by lena at \d\d:\d\d", response.content.decode())
    assert len([call for call in align.calls if call.request.method == "POST"]) == 1
    assert AuditEvent.objects.filter(action="kyc_session").count() == 1


def test_a_card_fetched_after_the_last_start_may_start_again_past_the_minute(
    lead_client, align, sessions_url, serve
):
    answer_start(align, sessions_url, REJECTED)
    answer_start(align, sessions_url, REJECTED)
    serve(REJECTED)
    start(lead_client, REJECTED)
    shared_cache.delete(guard_key(REJECTED))
    fresh_card = lead_client.get(f"/customers/{REJECTED}/").content.decode()

    start(lead_client, REJECTED, data={"card_fetched_at": card_fetched_at(fresh_card)})

    assert AuditEvent.objects.filter(action="kyc_session", outcome="session_started").count() == 2


def test_colleagues_see_that_a_lead_started_a_new_session_and_that_older_links_are_dead(
    lead_client, staff_client, align, sessions_url, serve
):
    answer_start(align, sessions_url, REJECTED)
    serve(REJECTED)
    start(lead_client, REJECTED)

    html = staff_client.get(f"/customers/{REJECTED}/").content.decode()

    assert re.search(
        r"New KYC session started by lena at \d\d:\d\d today; links copied before then no longer work\.", html
    )
    history = html.split('id="history-heading"', 1)[1].split("</section>", 1)[0]
    assert "new KYC session, by lena" in history


@pytest.mark.parametrize(
    "forged", ["2026-13-45T10:00:00+00:00", "2026-12-07T10:00:00", "yesterday", ""], ids=str
)
def test_a_forged_card_time_is_ignored_not_a_server_error(lead_client, align, sessions_url, serve, forged):
    """An impossible date, one without a zone, words or nothing: the start goes on as without one."""
    answer_start(align, sessions_url)
    serve(NOT_STARTED)
    response = start(lead_client, data={"card_fetched_at": forged})
    assert response.status_code == 200
    assert NEW_LINK in response.content.decode()
