"""Search by e-mail (issue #14): POST only, each outcome, the audit row and its keyed hash.

Align is mocked with `responses`; the stand-in's side is in tests/contract/test_stub.py.
"""

import json
import logging
import re
import uuid

import pytest
import requests
from django.contrib.auth.models import Permission
from django.db import DatabaseError
from django.test import Client
from responses import matchers

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.align.standin.server import serving
from customers.forms import parse_email
from customers.models import AuditEvent
from customers.services import email_search

pytestmark = pytest.mark.django_db

ADA = str(DemoId.INDIVIDUAL_APPROVED)
GRACE = str(DemoId.FORM_STARTED)
SEARCHED = "jane.doe+kyc@example.com"
TITLE = re.compile(r"<title>(.*?)</title>", re.DOTALL)


@pytest.fixture
def search_url(settings) -> str:
    return f"{settings.ALIGN_API_BASE_URL}/v0/customers"


@pytest.fixture
def answer(align, search_url):
    """Register Align's answer to a search for `email` (SEARCHED by default)."""

    def register(items=None, *, email=SEARCHED, **kwargs):
        if "json" not in kwargs and "body" not in kwargs and "status" not in kwargs:
            kwargs["json"] = {"items": items or []}
        align.get(search_url, match=[matchers.query_param_matcher({"email": email})], **kwargs)

    return register


def body(demo_id: str, **changes) -> dict:
    return json.loads(json.dumps(DEMO_CUSTOMERS[demo_id])) | changes


def search(staff_client, text=SEARCHED, *, htmx=True):
    headers = {"HX-Request": "true"} if htmx else {}
    return staff_client.post("/customers/", {"customer_id": text}, headers=headers)


def title(response) -> str:
    return TITLE.search(response.content.decode())[1].strip()


# --- One match, several, none ------------------------------------------------------------------


def test_one_match_shows_the_card_and_pushes_the_customer_address(staff_client, answer, align):
    answer([body(ADA, email=SEARCHED)])
    response = search(staff_client)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="customer-name"' in html
    assert "Ada Lovelace" in html
    assert response["HX-Push-Url"] == f"/customers/{ADA}/"
    assert title(response) == "Customer 3f2a9c1e…7e91 · KYC Desk"
    # The search result is the customer: Align is asked once, never again for the card.
    assert len(align.calls) == 1


def test_one_match_is_recorded_with_its_customer_and_shows_in_recent_lookups(staff_client, answer):
    answer([body(ADA)])
    response = search(staff_client)
    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.EMAIL_SEARCH
    assert event.outcome == AuditEvent.Outcome.FOUND
    assert event.match_count == 1
    assert event.matched_customer_ids == [ADA]
    assert event.customer_id == uuid.UUID(ADA)
    assert event.kyc_status == "approved"
    assert 'id="recent-lookups"' in response.content.decode()
    assert f'title="{ADA}"' in response.content.decode().split('id="recent-lookups"', 1)[1]


def test_a_link_copy_after_a_one_match_search_is_believed(staff_client, answer):
    answer([body(ADA)])
    search(staff_client)
    response = staff_client.post(f"/customers/{ADA}/link-copied/", headers={"HX-Request": "true"})
    assert response.status_code == 200


def test_several_matches_list_each_customer_with_a_link_and_push_the_search_page(staff_client, answer):
    answer([body(ADA), body(GRACE)])
    response = search(staff_client)
    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Push-Url"] == "/customers/"
    assert title(response) == "2 customers · KYC Desk"
    assert "2 customers have this e-mail" in html
    for customer_id, name in ((ADA, "Ada Lovelace"), (GRACE, "Grace Hopper")):
        assert f'href="/customers/{customer_id}/"' in html
        assert name in html
    assert "Approved" in html
    assert "Pending" in html
    assert "Individual" in html
    assert 'id="customer-name"' not in html


def test_several_matches_are_recorded_with_every_id_and_no_single_customer(staff_client, answer):
    answer([body(ADA), body(GRACE)])
    response = search(staff_client)
    event = AuditEvent.objects.get()
    assert (event.outcome, event.match_count, event.customer_id) == (AuditEvent.Outcome.FOUND, 2, None)
    assert event.matched_customer_ids == [ADA, GRACE]
    assert event.kyc_status == ""
    # No card was shown, so Recent lookups has nobody new.
    assert "Customers you look up appear here" in response.content.decode()


def test_no_match_names_the_environment_and_hints_at_the_other_one(staff_client, answer):
    answer([])
    response = search(staff_client)
    html = response.content.decode()
    assert response.status_code == 200
    assert "No customer with this e-mail in Custom: align.invalid" in html
    assert "other environment" in html
    assert title(response) == "Search result · KYC Desk"
    assert response["HX-Push-Url"] == "/customers/"
    event = AuditEvent.objects.get()
    assert (event.outcome, event.match_count, event.matched_customer_ids) == ("not_found", 0, [])


def test_no_match_names_the_sandbox_when_pointed_at_it(staff_client, align, settings):
    settings.ALIGN_API_BASE_URL = settings.ALIGN_SANDBOX_URL
    align.get(f"{settings.ALIGN_SANDBOX_URL}/v0/customers", json={"items": []})
    assert "No customer with this e-mail in Sandbox" in search(staff_client).content.decode()


def test_a_search_without_htmx_renders_the_whole_page_without_redirecting(staff_client, answer):
    answer([body(ADA)])
    response = search(staff_client, htmx=False)
    assert response.status_code == 200
    assert "<html" in response.content.decode()
    assert "Ada Lovelace" in response.content.decode()


# --- Failures: the existing failure cards ------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "words", "outcome"),
    [
        pytest.param(
            {"status": 401, "json": {"message": "bad key"}},
            502,
            "API key was rejected",
            "key_rejected",
            id="401",
        ),
        pytest.param(
            {"status": 404, "json": {}}, 502, "Unexpected response from Align", "invalid_response", id="404"
        ),
        pytest.param(
            {"status": 429, "json": {}, "headers": {"Retry-After": "30"}},
            503,
            "rate-limiting",
            "rate_limited",
            id="429",
        ),
        pytest.param({"status": 500, "json": {}}, 502, "Align is unavailable", "upstream_error", id="500"),
        pytest.param(
            {"body": requests.ReadTimeout()}, 504, "did not answer in time", "timeout", id="timeout"
        ),
        pytest.param(
            {"body": b"{not json", "content_type": "application/json"},
            502,
            "Unexpected response",
            "invalid_response",
            id="not-json",
        ),
        pytest.param(
            {"json": {"customers": []}}, 502, "Unexpected response", "invalid_response", id="no-items"
        ),
        pytest.param(
            {"json": {"items": [{"customer_id": ADA}]}},
            502,
            "Unexpected response",
            "invalid_response",
            id="bad-item",
        ),
    ],
)
def test_each_failure_shows_its_failure_card_and_is_recorded(
    staff_client, answer, kwargs, status, words, outcome
):
    answer(**kwargs)
    response = search(staff_client)
    assert response.status_code == status
    assert words in response.content.decode()
    assert response["HX-Push-Url"] == "/customers/"
    event = AuditEvent.objects.get()
    assert (event.action, event.outcome, event.match_count) == ("email_search", outcome, None)


def test_a_gateway_error_is_retried_like_a_lookup(staff_client, answer, align):
    answer(status=503, json={})
    answer([body(ADA)])
    assert search(staff_client).status_code == 200
    assert len(align.calls) == 2


def test_no_search_happens_when_it_cannot_be_recorded(staff_client, align, monkeypatch):
    def broken(*args, **kwargs):
        raise DatabaseError("audit table is read-only")

    monkeypatch.setattr(AuditEvent.objects, "create", broken)
    response = search(staff_client)
    assert response.status_code == 503
    assert "Lookups are paused" in response.content.decode()
    assert len(align.calls) == 0


# --- The e-mail stays out of URLs, titles, logs and the audit table ----------------------------


@pytest.mark.parametrize("matches", [0, 1, 2], ids=["none", "one", "several"])
def test_the_searched_e_mail_is_nowhere_but_in_the_request_to_align(staff_client, answer, caplog, matches):
    caplog.set_level(logging.DEBUG)
    answer([body(ADA), body(GRACE)][:matches])
    response = search(staff_client)
    forms = (SEARCHED, SEARCHED.lower(), "jane.doe", "jane.doe%2Bkyc", "jane.doe+kyc")
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    for text in forms:
        assert text not in headers, "in the response headers"
        assert text not in title(response), "in the tab title"
        assert text not in caplog.text, "in a log line"
    event = AuditEvent.objects.get()
    for field in AuditEvent._meta.concrete_fields:
        value = str(field.value_from_object(event))
        assert not any(text in value for text in forms), f"in the audit column {field.name}"
    assert event.email_hash == email_search.email_hash(parse_email(SEARCHED))


def test_a_get_with_an_e_mail_never_searches(staff_client, align):
    response = staff_client.get("/customers/", {"customer_id": SEARCHED})
    html = response.content.decode()
    assert response.status_code == 400
    assert "only from the search field" in html
    assert SEARCHED not in html
    assert len(align.calls) == 0
    assert not AuditEvent.objects.exists()


def test_an_e_mail_in_the_customer_address_never_searches(staff_client, align):
    response = staff_client.get(f"/customers/{SEARCHED}/")
    assert response.status_code == 400
    assert "only from the search field" in response.content.decode()
    assert len(align.calls) == 0


def test_a_get_with_an_e_mail_from_htmx_moves_the_address_bar_off_it(staff_client, align):
    response = staff_client.get(
        "/customers/",
        {"customer_id": SEARCHED},
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/"},
    )
    assert response.status_code == 400
    assert response["HX-Push-Url"] == "/customers/"


def test_the_domain_is_sent_lower_case_and_punycoded_and_the_local_part_as_typed(staff_client, answer):
    answer([body(ADA)], email="Jane.Doe@xn--bcher-kva.example")
    assert search(staff_client, "  Jane.Doe@BÜCHER.example ").status_code == 200


# --- The case typed does not matter (issue #19, item 3) ----------------------------------------

TYPED = "Ada.Lovelace@EXAMPLE.com"
AS_TYPED = "Ada.Lovelace@example.com"  # the domain lower-cased by the form, the local part as typed
LOWER_CASE = "ada.lovelace@example.com"


def asked_for(align) -> list[str]:
    return [call.request.params["email"] for call in align.calls]


def test_an_address_typed_in_another_case_finds_the_customer(staff_client, answer, align):
    answer([], email=AS_TYPED)
    answer([body(ADA)], email=LOWER_CASE)
    response = search(staff_client, TYPED)
    assert response.status_code == 200
    assert "Ada Lovelace" in response.content.decode()
    assert response["HX-Push-Url"] == f"/customers/{ADA}/"
    assert asked_for(align) == [AS_TYPED, LOWER_CASE]


def test_both_spellings_are_one_search_on_record_before_the_first_and_ended_after_the_last(
    staff_client, align, search_url
):
    rows_when_asked = []

    def answer(items):
        def respond(request):
            rows_when_asked.append(list(AuditEvent.objects.values_list("action", "outcome")))
            return 200, {"Content-Type": "application/json"}, json.dumps({"items": items})

        return respond

    for email, items in ((AS_TYPED, []), (LOWER_CASE, [body(ADA)])):
        align.add_callback(
            "GET", search_url, answer(items), match=[matchers.query_param_matcher({"email": email})]
        )
    search(staff_client, TYPED)
    assert rows_when_asked == [[("email_search", "started")]] * 2
    event = AuditEvent.objects.get()
    assert (event.outcome, event.match_count, event.customer_id) == ("found", 1, uuid.UUID(ADA))
    assert event.email_hash == email_search.email_hash(parse_email(LOWER_CASE))


def test_an_address_in_lower_case_is_asked_for_once(staff_client, answer, align):
    answer([], email=LOWER_CASE)
    assert "No customer with this e-mail" in search(staff_client, LOWER_CASE).content.decode()
    assert asked_for(align) == [LOWER_CASE]


def test_the_lower_case_is_asked_for_only_when_the_address_as_typed_finds_nobody(staff_client, answer, align):
    answer([body(ADA, email=AS_TYPED)], email=AS_TYPED)
    assert "Ada Lovelace" in search(staff_client, TYPED).content.decode()
    assert asked_for(align) == [AS_TYPED]


def test_nobody_in_either_case_is_one_search_that_found_nobody(staff_client, answer, align):
    answer([], email=AS_TYPED)
    answer([], email=LOWER_CASE)
    response = search(staff_client, TYPED)
    assert "No customer with this e-mail" in response.content.decode()
    assert asked_for(align) == [AS_TYPED, LOWER_CASE]
    event = AuditEvent.objects.get()
    assert (event.outcome, event.match_count) == ("not_found", 0)


def test_a_failure_of_the_lower_case_search_is_the_searchs_failure(staff_client, answer, align):
    answer([], email=AS_TYPED)
    answer(status=500, json={}, email=LOWER_CASE)
    response = search(staff_client, TYPED)
    assert response.status_code == 502
    assert "Align is unavailable" in response.content.decode()
    assert asked_for(align) == [AS_TYPED, LOWER_CASE]
    event = AuditEvent.objects.get()
    assert (event.outcome, event.match_count) == ("upstream_error", None)


def test_the_stand_in_matches_exactly_and_a_mixed_case_address_still_finds_ada(staff_client, settings):
    """The stand-in keeps the local part's case, as Align does (tests/contract/test_stub.py)."""
    with serving(api_key=settings.ALIGN_API_KEY) as stand_in:
        settings.ALIGN_API_BASE_URL = stand_in.base_url
        response = search(staff_client, TYPED)
    assert response.status_code == 200
    assert "Ada Lovelace" in response.content.decode()
    assert stand_in.calls == 2


# --- The keyed hash ----------------------------------------------------------------------------


def test_the_hash_is_hmac_sha256_of_the_lower_case_address_under_the_audit_key(settings):
    import hashlib
    import hmac

    expected = hmac.new(
        settings.DASHBOARD_AUDIT_HASH_KEY.encode(), SEARCHED.encode(), hashlib.sha256
    ).hexdigest()
    assert email_search.email_hash(parse_email("Jane.Doe+KYC@Example.COM")) == expected
    assert len(expected) == 64


def test_another_key_gives_another_hash(settings):
    before = email_search.email_hash(parse_email(SEARCHED))
    settings.DASHBOARD_AUDIT_HASH_KEY = "a rotated key"
    assert email_search.email_hash(parse_email(SEARCHED)) != before


@pytest.fixture
def auditor(django_user_model) -> Client:
    user = django_user_model.objects.create_user(
        username="audrey", password="irrelevant-password", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client = Client()
    client.force_login(user)
    return client


def test_the_audit_admin_finds_a_search_by_the_e_mail_in_another_case(staff_client, answer, auditor):
    answer([body(ADA), body(GRACE)])
    search(staff_client)
    other = AuditEvent.objects.create(
        user=AuditEvent.objects.get().user, action="lookup", customer_id=ADA, outcome="found"
    )
    response = auditor.get("/admin/customers/auditevent/", {"q": "  JANE.DOE+KYC@EXAMPLE.COM "}, follow=True)
    html = response.content.decode()
    final_url = response.redirect_chain[-1][0]
    assert "jane" not in final_url.lower()
    assert "example" not in final_url.lower()
    assert email_search.email_hash(parse_email(SEARCHED)) in final_url
    assert "Searched by e-mail" in html
    assert f"/admin/customers/auditevent/{other.pk}/change/" not in html
    assert f"/admin/customers/auditevent/{AuditEvent.objects.get(action='email_search').pk}/change/" in html


def test_the_audit_admin_says_it_takes_an_e_mail(auditor):
    html = auditor.get("/admin/customers/auditevent/").content.decode()
    assert "Or an e-mail address: it is hashed with the audit key" in html


def test_an_e_mail_nobody_searched_for_finds_nothing_in_the_audit_admin(staff_client, answer, auditor):
    answer([body(ADA)])
    search(staff_client)
    event = AuditEvent.objects.get()
    response = auditor.get("/admin/customers/auditevent/", {"q": "someone.else@example.com"}, follow=True)
    assert f"/admin/customers/auditevent/{event.pk}/change/" not in response.content.decode()
    assert (
        f"/admin/customers/auditevent/{event.pk}/change/"
        in auditor.get("/admin/customers/auditevent/").content.decode()
    )
