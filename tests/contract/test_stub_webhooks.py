"""The stand-in as Align's sandbox: the KYC simulation, and the signed webhooks it then delivers
(customers/align/standin/webhooks.py), checked against the envelope's schema in tests/contract/."""

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
import requests
from django.core.management import CommandError, call_command

from customers.align import webhooks
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.align.standin.server import serving
from customers.align.standin.webhooks import SIGNATURE_HEADER, approved, kyc_updated_envelope, sign
from tests.contract.test_contract_data import RESPONSE_SCHEMA

STUB_KEY = "stand-in-test-key"
GRACE = str(DemoId.FORM_STARTED)
ADA = str(DemoId.INDIVIDUAL_APPROVED)
ENVELOPE_SCHEMA = json.loads(
    (Path(__file__).resolve().parent / "align-webhook-envelope.schema.json").read_text()
)


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on loopback that keeps what it was sent and answers `status`."""

    daemon_threads = True

    def __init__(self, status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.status = status
        self.received: list[tuple[Message, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhooks/align/"


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers, body))  # names read case-insensitively
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        pass


@contextmanager
def receiving(status: int = 200) -> Iterator[Receiver]:
    server = Receiver(status)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def wait_for(condition, *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def simulate(stub, body, *, key: str | None = STUB_KEY) -> requests.Response:
    headers = {"Api-Key": key} if key is not None else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{stub.base_url}/v0/customers/simulate", data=data, headers=headers, timeout=5)


def approve(customer_id: str) -> dict:
    return {"action": "kyc.status.approve", "customer_id": customer_id}


@pytest.fixture
def stub():
    with serving(api_key=STUB_KEY) as server:
        yield server


def get_customer(stub, customer_id: str) -> dict:
    answer = requests.get(
        f"{stub.base_url}/v0/customers/{customer_id}", headers={"Api-Key": STUB_KEY}, timeout=5
    )
    return answer.json()


# --- The simulation ------------------------------------------------------------------------------


def test_approving_a_pending_customer_changes_what_the_stand_in_answers(stub):
    response = simulate(stub, approve(GRACE))
    assert response.status_code == 200
    kycs = get_customer(stub, GRACE)["kycs"]
    assert kycs["status"] == "approved"
    assert "sub_status" not in kycs
    assert [row["status"] for row in kycs["status_breakdown"]] == ["approved"]


def test_a_simulation_changes_only_this_stand_in_not_the_demo_customers(stub):
    simulate(stub, approve(GRACE))
    assert DEMO_CUSTOMERS[GRACE]["kycs"]["status"] == "pending"
    with serving(api_key=STUB_KEY) as other:
        assert get_customer(other, GRACE)["kycs"]["status"] == "pending"


def test_the_customer_id_may_be_written_in_upper_case(stub):
    assert simulate(stub, approve(GRACE.upper())).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"action": "kyc.status.reject", "customer_id": GRACE}, 400),
        ({"customer_id": GRACE}, 400),
        ({"action": "kyc.status.approve"}, 400),
        (["kyc.status.approve"], 400),
        (b"not json", 400),
        (approve("6b1d7c1e-0000-4000-8000-000000000000"), 404),
    ],
)
def test_a_simulation_the_stand_in_cannot_act_on_says_why(stub, body, status):
    response = simulate(stub, body)
    assert response.status_code == status
    assert response.json()["message"]


def test_a_simulation_needs_the_api_key(stub):
    assert simulate(stub, approve(GRACE), key=None).status_code == 401
    assert simulate(stub, approve(GRACE), key="wrong").status_code == 401
    assert get_customer(stub, GRACE)["kycs"]["status"] == "pending"


def test_a_large_simulation_body_is_refused(stub):
    assert simulate(stub, b" " * 20_000).status_code == 413


def test_a_customer_without_kyc_gets_an_approved_record():
    body = approved(DEMO_CUSTOMERS[str(DemoId.KYC_NOT_STARTED)])
    assert body["kycs"] == {"kyc_flow_link": "", "status_breakdown": [], "status": "approved"}


# --- The webhooks it then sends --------------------------------------------------------------


def test_a_change_is_delivered_signed_with_the_api_key_and_fits_the_envelope_schema(settings):
    settings.ALIGN_API_KEY = STUB_KEY
    with receiving() as receiver, serving(api_key=STUB_KEY, webhook_url=receiver.url) as stub:
        simulate(stub, approve(GRACE))
        wait_for(lambda: stub.webhooks.sent)
        assert stub.webhooks.sent[0].status == 200
    ((headers, body),) = receiver.received
    assert headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{64}", headers[SIGNATURE_HEADER])
    assert webhooks.signature_is_valid(body, headers[SIGNATURE_HEADER])
    envelope = json.loads(body)
    jsonschema.Draft202012Validator(
        ENVELOPE_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(envelope)
    jsonschema.validate(envelope["entity_object"], RESPONSE_SCHEMA)
    assert envelope["entity_id"] == GRACE
    assert envelope["entity_object"]["kycs"]["status"] == "approved"
    assert datetime.fromisoformat(envelope["created_at"]).utcoffset().total_seconds() == 0
    assert webhooks.parse_delivery(body).customer.is_kyc_approved


def test_the_envelope_schema_refuses_what_align_would_not_send():
    validator = jsonschema.Draft202012Validator(
        ENVELOPE_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    good = kyc_updated_envelope(DEMO_CUSTOMERS[GRACE])
    assert validator.is_valid(good)
    assert not validator.is_valid({key: value for key, value in good.items() if key != "entity_object"})
    assert not validator.is_valid(good | {"created_at": "yesterday"})
    assert not validator.is_valid(good | {"entity_id": "cus_123"})
    other = {"event_type": "virtual_account.created", "entity_id": "va_1", "entity_type": "virtual_account"}
    assert validator.is_valid(other | {"created_at": "2026-11-25T14:02:11.123Z"})


def test_approving_an_approved_customer_changes_nothing_and_sends_nothing():
    with receiving() as receiver, serving(api_key=STUB_KEY, webhook_url=receiver.url) as stub:
        assert simulate(stub, approve(ADA)).status_code == 200
        assert stub.webhooks.queued == 0  # handed to a thread before the simulation answers
        simulate(stub, approve(GRACE))
        assert stub.webhooks.queued == 1
        wait_for(lambda: stub.webhooks.sent)
    assert [json.loads(body)["entity_id"] for _, body in receiver.received] == [GRACE]


def test_without_a_webhook_url_nothing_is_sent(stub):
    assert stub.webhooks is None
    assert simulate(stub, approve(GRACE)).status_code == 200


def test_a_receiver_that_cannot_be_reached_gets_one_log_line(caplog):
    with receiving() as receiver:
        closed_url = receiver.url
    caplog.set_level(logging.WARNING, logger="customers.align.standin.webhooks")
    with serving(api_key=STUB_KEY, webhook_url=closed_url) as stub:
        assert simulate(stub, approve(GRACE)).status_code == 200
        wait_for(lambda: stub.webhooks.sent)
    assert stub.webhooks.sent[0].status is None
    lines = [record for record in caplog.records if record.name == "customers.align.standin.webhooks"]
    assert len(lines) == 1
    assert GRACE in lines[0].getMessage()


def test_a_receiver_that_refuses_the_delivery_is_logged_with_its_status(caplog):
    caplog.set_level(logging.WARNING, logger="customers.align.standin.webhooks")
    with receiving(status=401) as receiver, serving(api_key=STUB_KEY, webhook_url=receiver.url) as stub:
        simulate(stub, approve(GRACE))
        wait_for(lambda: stub.webhooks.sent)
    assert stub.webhooks.sent[0].status == 401
    assert "401" in caplog.records[-1].getMessage()


def test_the_signature_is_lower_case_hex_hmac_sha256_of_the_raw_body():
    # RFC 4231, test case 2: a known answer, so neither implementation only agrees with the other.
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign(b"what do ya want for nothing?", "Jefe") == expected
    assert webhooks.signature(b"what do ya want for nothing?", "Jefe") == expected


def test_the_command_refuses_a_webhook_url_that_is_not_http():
    with pytest.raises(CommandError, match="webhook"):
        call_command("align_stub", "--webhook-url", "ftp://example.test/hook", "--api-key", STUB_KEY)
