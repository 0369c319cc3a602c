"""The local stand-in of the Align API answers per the contract, over real HTTP."""

import json
import threading
import time
import uuid
from pathlib import Path

import jsonschema
import pytest
import requests
from django.core.management import CommandError, call_command

from customers.align import client, stand_in_demo
from customers.align.records import CustomerType, KycStatus, KycSubStatus, PaymentRail, RailStatus
from customers.align.standin.demo import (
    DEMO_CUSTOMERS,
    DEMO_DESCRIPTIONS,
    DEMO_EMAILS,
    DRILL_DESCRIPTIONS,
    GENERATED_KYC_STATES,
    DemoId,
    DrillId,
    GeneratedDrill,
    generated_customer,
    generated_customer_id,
    generated_customers,
    generated_drill,
)
from customers.align.standin.server import DEMO_LIST_PATH, serving
from customers.services.decisions import kyc_summary, short_customer_id, web_link
from tests.contract.test_contract_data import RESPONSE_SCHEMA, openapi_to_json_schema

STUB_KEY = "stand-in-test-key"


@pytest.fixture
def stub():
    with serving(api_key=STUB_KEY, slow_seconds=1.5) as server:
        yield server


@pytest.fixture
def dashboard_on_stub(stub, settings):
    settings.ALIGN_API_BASE_URL = stub.base_url
    settings.ALIGN_API_KEY = STUB_KEY
    return stub


def get(stub, customer_id, key=STUB_KEY, timeout: float = 5) -> requests.Response:
    headers = {"Api-Key": key} if key is not None else {}
    return requests.get(f"{stub.base_url}/v0/customers/{customer_id}", headers=headers, timeout=timeout)


@pytest.mark.parametrize("demo_id", list(DemoId))
def test_every_demo_customer_parses_through_the_real_client(dashboard_on_stub, demo_id):
    customer = client.customer_get(customer_id=uuid.UUID(demo_id))
    assert str(customer.customer_id) == demo_id


def test_demo_customers_cover_the_states_staff_meet(dashboard_on_stub):
    def fetch(demo_id):
        return client.customer_get(customer_id=uuid.UUID(demo_id))

    ada = fetch(DemoId.INDIVIDUAL_APPROVED)
    assert ada.type == CustomerType.INDIVIDUAL
    assert ada.is_kyc_approved
    assert ada.visible_address
    corporate = fetch(DemoId.CORPORATE_APPROVED)
    assert corporate.type == CustomerType.CORPORATE
    assert corporate.is_kyc_approved
    assert fetch(DemoId.FORM_STARTED).kycs.sub_status == KycSubStatus.FORM_STARTED
    assert fetch(DemoId.UNDER_REVIEW).kycs.sub_status == KycSubStatus.FORM_ACCEPTED
    resubmit = fetch(DemoId.RESUBMISSION_REQUIRED)
    assert resubmit.kycs.sub_status == KycSubStatus.RESUBMISSION_REQUIRED
    assert resubmit.address is not None
    assert resubmit.visible_address is None
    assert fetch(DemoId.REJECTED).kycs.status == KycStatus.REJECTED
    assert fetch(DemoId.KYC_NOT_STARTED).kycs is None


def fetch(demo_id):
    return client.customer_get(customer_id=uuid.UUID(demo_id))


def test_status_not_sent_demo_has_a_kyc_record_without_an_overall_status(dashboard_on_stub):
    kyc = fetch(DemoId.STATUS_NOT_SENT).kycs
    assert kyc is not None
    assert kyc.status is None
    assert kyc_summary(kyc).badge.label == "Unknown"


def test_unrecognised_values_demo_keeps_the_new_status_and_rail_as_sent(dashboard_on_stub):
    kyc = fetch(DemoId.UNRECOGNISED_VALUES).kycs
    assert kyc.status == "on_hold"
    assert not isinstance(kyc.status, KycStatus)
    assert [row.payment_rails for row in kyc.status_breakdown] == [PaymentRail.UAEFTS, "swift"]
    assert not kyc_summary(kyc).badge.recognised


def test_no_kyc_link_demo_is_pending_with_an_empty_link(dashboard_on_stub):
    kyc = fetch(DemoId.NO_KYC_LINK).kycs
    assert kyc.status == KycStatus.PENDING
    assert kyc.kyc_flow_link == ""


def test_non_web_link_demo_sends_a_link_that_is_never_rendered_as_one(dashboard_on_stub):
    kyc = fetch(DemoId.NON_WEB_LINK).kycs
    assert kyc.status == KycStatus.PENDING
    assert kyc.kyc_flow_link.startswith("javascript:")
    assert web_link(kyc.kyc_flow_link) is None


@pytest.mark.parametrize("demo_id", [DemoId.CORPORATE_APPROVED, DemoId.REJECTED])
def test_mixed_rails_demos_have_a_pending_rail_under_a_decided_status(dashboard_on_stub, demo_id):
    kyc = fetch(demo_id).kycs
    assert kyc.status in {KycStatus.APPROVED, KycStatus.REJECTED}
    assert RailStatus.PENDING in {row.status for row in kyc.status_breakdown}
    assert "still pending" in DEMO_DESCRIPTIONS[demo_id]


@pytest.mark.parametrize("demo_id", [demo_id for demo_id in DemoId if demo_id != DemoId.UNRECOGNISED_VALUES])
def test_demo_bodies_fit_the_contract(demo_id):
    validator = jsonschema.Draft7Validator(RESPONSE_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert [error.message for error in validator.iter_errors(DEMO_CUSTOMERS[demo_id])] == []


def test_every_demo_has_a_description():
    assert set(DEMO_DESCRIPTIONS) == set(DemoId)


def test_the_stand_in_describes_its_demo_customers_and_drills_at_its_own_address(stub):
    """In order, and without the API key: the list is the stand-in's, not Align's."""
    response = requests.get(f"{stub.base_url}{DEMO_LIST_PATH}", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert [(entry["customer_id"], entry["description"]) for entry in body["customers"]] == list(
        DEMO_DESCRIPTIONS.items()
    )
    assert [(entry["customer_id"], entry["description"]) for entry in body["drills"]] == list(
        DRILL_DESCRIPTIONS.items()
    )
    assert [(entry["email"], entry["description"]) for entry in body["emails"]] == list(DEMO_EMAILS.items())


def test_the_dashboard_reads_the_demo_list_where_the_stand_in_serves_it(stub):
    listed = stand_in_demo.demo_list(stub.base_url)
    assert listed is not None
    assert [(entry.customer_id, entry.description) for entry in listed.customers] == list(
        DEMO_DESCRIPTIONS.items()
    )
    assert [(entry.customer_id, entry.description) for entry in listed.drills] == list(
        DRILL_DESCRIPTIONS.items()
    )
    assert [(entry.email, entry.description) for entry in listed.emails] == list(DEMO_EMAILS.items())


def test_demo_and_drill_ids_are_version_4_uuids():
    assert {uuid.UUID(customer_id).version for customer_id in [*DemoId, *DrillId]} == {4}


def test_demo_and_drill_ids_are_told_apart_by_their_short_form():
    ids = [*DemoId, *DrillId]
    assert len({short_customer_id(customer_id) for customer_id in ids}) == len(ids)


def test_demo_bodies_are_served_exactly(stub):
    response = get(stub, DemoId.CORPORATE_APPROVED)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == DEMO_CUSTOMERS[DemoId.CORPORATE_APPROVED]


def test_upper_case_id_finds_the_same_customer(stub):
    assert get(stub, str(DemoId.REJECTED).upper()).json()["customer_id"] == DemoId.REJECTED


def test_unknown_id_is_404(stub):
    assert get(stub, uuid.uuid4()).status_code == 404


@pytest.mark.parametrize("key", [None, "", "wrong-key"])
def test_missing_or_wrong_api_key_is_401(stub, key):
    assert get(stub, DemoId.INDIVIDUAL_APPROVED, key=key).status_code == 401


def test_other_paths_are_404(stub):
    assert (
        requests.get(f"{stub.base_url}/v0/other", headers={"Api-Key": STUB_KEY}, timeout=5).status_code == 404
    )


@pytest.mark.parametrize(
    ("drill", "error"),
    [
        (DrillId.KEY_REJECTED, client.ApiKeyRejected),
        (DrillId.RATE_LIMITED, client.RateLimited),
        (DrillId.SERVER_ERROR, client.UpstreamError),
        (DrillId.MALFORMED, client.InvalidResponse),
    ],
)
def test_failure_drills_raise_the_matching_error(dashboard_on_stub, drill, error):
    with pytest.raises(error):
        client.customer_get(customer_id=uuid.UUID(drill))


def test_rate_limit_drill_says_when_to_retry(dashboard_on_stub):
    with pytest.raises(client.RateLimited) as raised:
        client.customer_get(customer_id=uuid.UUID(DrillId.RATE_LIMITED))
    assert raised.value.retry_after == 30


def test_slow_drill_outlasts_the_dashboard_timeout(dashboard_on_stub, settings):
    settings.ALIGN_API_TIMEOUT = 0.5
    with pytest.raises(client.UpstreamTimeout):
        client.customer_get(customer_id=uuid.UUID(DrillId.SLOW))


def test_delay_option_slows_every_answer():
    with serving(api_key=STUB_KEY, delay=0.3) as server:
        response = get(server, DemoId.REJECTED)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.3


def test_closing_the_stand_in_ends_every_handler_thread_at_once():
    """No handler outlives its stand-in, so none answers or logs after its test has ended: a slow
    drill still sleeping is woken, and a kept-alive connection is shut."""
    before = set(threading.enumerate())
    with requests.Session() as kept_alive:
        with serving(api_key=STUB_KEY, slow_seconds=30) as server:
            assert kept_alive.get(
                f"{server.base_url}/v0/customers/{DemoId.REJECTED}", headers={"Api-Key": STUB_KEY}, timeout=5
            ).ok
            with pytest.raises(requests.Timeout):
                get(server, DrillId.SLOW, timeout=0.3)
            closing = time.monotonic()
        assert time.monotonic() - closing < 5
        handlers = [t for t in set(threading.enumerate()) - before if "process_request_thread" in t.name]
        assert handlers == []


def test_dashboard_pointed_at_a_closed_port_says_align_is_unreachable(settings):
    with serving(api_key=STUB_KEY) as server:
        settings.ALIGN_API_BASE_URL = server.base_url
    with pytest.raises(client.UpstreamUnreachable):
        client.customer_get(customer_id=uuid.UUID(DemoId.REJECTED))


def test_command_refuses_to_start_without_a_key(settings):
    settings.ALIGN_API_KEY = ""
    with pytest.raises(CommandError, match="No API key"):
        call_command("align_stub", "--port", "0")


def test_command_reports_a_port_in_use(stub):
    with pytest.raises(CommandError, match="Cannot listen"):
        call_command("align_stub", "--port", str(stub.server_address[1]), "--api-key", STUB_KEY)


def test_stand_in_counts_connections_apart_from_calls(stub):
    with requests.Session() as session:
        for _ in range(3):
            session.get(
                f"{stub.base_url}/v0/customers/{DemoId.REJECTED}", headers={"Api-Key": STUB_KEY}, timeout=5
            )
    get(stub, DemoId.REJECTED)
    assert (stub.calls, stub.connections) == (4, 2)


# --- Generated customers, for bulk lookups ---------------------------------------------------


@pytest.fixture
def generating_stub():
    with serving(api_key=STUB_KEY, generate=60) as server:
        yield server


def test_generated_ids_are_the_same_on_every_run():
    assert generated_customer_id(0) == "59e9ec0f-a11b-5ce0-84dd-17ae1689a890"
    assert len({generated_customer_id(index) for index in range(500)}) == 500
    assert generated_customers(3) == generated_customers(3)


def test_generated_customers_fit_the_contract_but_for_the_values_align_may_add():
    outside = []
    for body in generated_customers(len(GENERATED_KYC_STATES) * 2).values():
        try:
            jsonschema.validate(body, RESPONSE_SCHEMA)
        except jsonschema.ValidationError as error:
            outside.append(error.instance)
    assert sorted(outside) == ["on_hold", "on_hold", "swift", "swift"]


def test_generated_customers_cover_every_kyc_state():
    kycs = [generated_customer(index)["kycs"] for index in range(len(GENERATED_KYC_STATES))]
    statuses = {kyc["status"] if kyc else "no kyc" for kyc in kycs}
    assert statuses == {"approved", "pending", "rejected", None, "on_hold", "no kyc"}
    assert {kyc.get("sub_status") for kyc in kycs if kyc} >= {None, *KycSubStatus}
    rails = {row["payment_rails"] for kyc in kycs if kyc for row in kyc["status_breakdown"]}
    assert "swift" in rails
    assert {kyc["kyc_flow_link"][:11] for kyc in kycs if kyc} >= {"", "javascript:", "https://kyc"}


def test_generated_customers_are_served_with_their_drills(generating_stub):
    answers = {}
    for index in range(10):
        drill = generated_drill(index)
        answers.setdefault(drill, []).append(get(generating_stub, generated_customer_id(index)).status_code)
    assert answers[None] == [200] * 7
    assert answers[GeneratedDrill.NOT_FOUND] == [404]
    assert answers[GeneratedDrill.SERVER_ERROR] == [500]
    assert answers[GeneratedDrill.RATE_LIMITED_ONCE] == [429]


def test_a_rate_limited_once_customer_answers_the_second_time(generating_stub):
    customer_id = generated_customer_id(8)
    first = get(generating_stub, customer_id)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert get(generating_stub, customer_id).json()["customer_id"] == customer_id


def test_without_generate_only_the_demo_customers_are_served(stub):
    assert get(stub, generated_customer_id(0)).status_code == 404


def test_the_stand_in_counts_requests_in_flight_and_the_most_at_once(stub):
    stub.delay = 0.3
    threads = [threading.Thread(target=get, args=(stub, DemoId.INDIVIDUAL_APPROVED)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stub.peak_in_flight == 3
    # A handler counts its answer done after the client has read it: give the last one a moment.
    deadline = time.monotonic() + 5
    while stub.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stub.in_flight == 0


def test_print_generated_lists_the_ids_to_paste(capsys):
    call_command("align_stub", "--print-generated", "5")
    assert capsys.readouterr().out.split() == [generated_customer_id(index) for index in range(5)]


@pytest.mark.parametrize("count", ["-1", "10001", "many"])
def test_generate_refuses_a_count_out_of_range(count):
    with pytest.raises(CommandError):
        call_command("align_stub", "--generate", count)


# --- Search by e-mail and KYC sessions (issue #14), checked against their contract files --------

CONTRACT_DIR = Path(__file__).resolve().parent


def contract_answer_schema(name: str, path: str, method: str, status: str) -> dict:
    """The answer's schema from a contract file, its `$ref`s to the customer model resolved."""
    document = json.loads((CONTRACT_DIR / name).read_text())
    schema = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    text = json.dumps(schema).replace(
        '{"$ref": "align-customers-openapi.json#/components/schemas/GetCustomerResponseSuccessModel"}',
        json.dumps(RESPONSE_SCHEMA),
    )
    return openapi_to_json_schema(json.loads(text))


SEARCH_SCHEMA = contract_answer_schema("align-customers-search.json", "/v0/customers", "get", "200")
SESSION_SCHEMA = contract_answer_schema(
    "align-kyc-sessions.json", "/v0/customers/{customer_id}/kycs", "post", "201"
)


def search(stub, email, key=STUB_KEY) -> requests.Response:
    return requests.get(
        f"{stub.base_url}/v0/customers", params={"email": email}, headers={"Api-Key": key}, timeout=5
    )


def start_session(stub, customer_id, key=STUB_KEY) -> requests.Response:
    return requests.post(
        f"{stub.base_url}/v0/customers/{customer_id}/kycs", json={}, headers={"Api-Key": key}, timeout=5
    )


def test_the_contract_files_name_their_source():
    for name in ("align-customers-search.json", "align-kyc-sessions.json"):
        document = json.loads((CONTRACT_DIR / name).read_text())
        assert "issue #14" in document["info"]["description"]
        assert "issue #14" in document["x-source"]


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("ada.lovelace@example.com", [DemoId.INDIVIDUAL_APPROVED]),
        ("ada.lovelace@EXAMPLE.com", [DemoId.INDIVIDUAL_APPROVED]),
        ("treasury@falcon-trading.example", [DemoId.CORPORATE_APPROVED, DemoId.NON_WEB_LINK]),
        ("Ada.Lovelace@example.com", []),  # the local part matches exactly
        ("nobody@example.com", []),
    ],
)
def test_search_by_email_finds_exact_matches_and_fits_the_contract(stub, email, expected):
    response = search(stub, email)
    assert response.status_code == 200
    jsonschema.Draft7Validator(SEARCH_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        response.json()
    )
    assert [item["customer_id"] for item in response.json()["items"]] == [
        str(demo_id) for demo_id in expected
    ]


def test_search_by_email_needs_the_key_and_an_email(stub):
    assert search(stub, "ada.lovelace@example.com", key="wrong").status_code == 401
    response = requests.get(f"{stub.base_url}/v0/customers", headers={"Api-Key": STUB_KEY}, timeout=5)
    assert response.status_code == 400


def test_starting_a_session_without_kyc_makes_a_pending_kyc_with_a_fresh_link(stub):
    response = start_session(stub, DemoId.KYC_NOT_STARTED)
    assert response.status_code == 201
    jsonschema.validate(response.json(), SESSION_SCHEMA)
    kycs = response.json()["kycs"]
    assert kycs["status"] == "pending"
    assert web_link(kycs["kyc_flow_link"])
    after = get(stub, DemoId.KYC_NOT_STARTED).json()
    jsonschema.validate(after, RESPONSE_SCHEMA)
    assert after["kycs"]["kyc_flow_link"] == kycs["kyc_flow_link"]
    assert DEMO_CUSTOMERS[DemoId.KYC_NOT_STARTED]["kycs"] is None  # the module's demo data is untouched


def test_every_start_gives_a_link_not_seen_before_and_restarts_a_rejection(stub):
    first = start_session(stub, DemoId.REJECTED).json()["kycs"]
    second = start_session(stub, DemoId.REJECTED).json()["kycs"]
    assert first["kyc_flow_link"] != second["kyc_flow_link"]
    assert second["status"] == "pending"
    assert get(stub, DemoId.REJECTED).json()["kycs"]["status"] == "pending"


def test_starting_a_session_for_an_unknown_customer_or_with_a_wrong_key_is_refused(stub):
    assert start_session(stub, "6b1d7c1e-0000-4000-8000-000000000000").status_code == 404
    assert start_session(stub, DemoId.KYC_NOT_STARTED, key="wrong").status_code == 401


def test_the_real_client_starts_a_session_and_searches_on_the_stand_in(dashboard_on_stub):
    session = client.kyc_session_start(customer_id=uuid.UUID(DemoId.NO_KYC_LINK))
    assert web_link(session.kyc_flow_link)
    found = client.customers_search_by_email(email="treasury@falcon-trading.example")
    assert len(found) == 2
