"""A local stand-in for the Align Customers API, for `make run`, demos and tests.

It serves `GET /v0/customers/{customer_id}` per the contract with eleven demo customers: every
KYC state staff meet, and the odd answers the card must survive (no overall status, values added
after this contract, no KYC link, a link that is not a web link). "Failure drill" IDs make it
misbehave the way the real API can, so the dashboard's error screens can be seen without breaking
anything.
Standard library only: it must start on any machine the dashboard starts on.
"""

import contextlib
import enum
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)

STUB_FLOW_BASE = "https://kyc.stand-in.example/flow/"


class DemoId(enum.StrEnum):
    INDIVIDUAL_APPROVED = "3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91"
    CORPORATE_APPROVED = "8c4b1d2e-5f6a-4b7c-8d9e-0a1b2c3d4e5f"
    FORM_STARTED = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
    UNDER_REVIEW = "b1c2d3e4-f5a6-4b7c-9d8e-f0a1b2c3d4e5"
    RESUBMISSION_REQUIRED = "d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f7a"
    REJECTED = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    KYC_NOT_STARTED = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    STATUS_NOT_SENT = "5f2d6690-f7f0-4fc0-b727-8a5324a08f84"
    UNRECOGNISED_VALUES = "36a34aae-a27b-4dc1-b396-f4b58a744000"
    NO_KYC_LINK = "40e827e8-d394-4c32-8064-22c26c4c6aa1"
    NON_WEB_LINK = "6cbdb85e-9045-404d-a83d-79f1e8502af3"


class DrillId(enum.StrEnum):
    KEY_REJECTED = "00000000-0000-4000-8000-000000000401"
    RATE_LIMITED = "00000000-0000-4000-8000-000000000429"
    SERVER_ERROR = "00000000-0000-4000-8000-000000000500"
    SLOW = "00000000-0000-4000-8000-000000000504"
    MALFORMED = "00000000-0000-4000-8000-000000000200"


def _flow_link(customer_id: str) -> str:
    return f"{STUB_FLOW_BASE}{customer_id}"


DEMO_CUSTOMERS: dict[str, dict] = {
    DemoId.INDIVIDUAL_APPROVED: {
        "customer_id": DemoId.INDIVIDUAL_APPROVED,
        "email": "ada.lovelace@example.com",
        "type": "individual",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "address": {
            "street_line_1": "12 St James's Square",
            "city": "London",
            "state": "Greater London",
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
        "kycs": {
            "status": "approved",
            "kyc_flow_link": _flow_link(DemoId.INDIVIDUAL_APPROVED),
            "status_breakdown": [
                {"currency": "usd", "payment_rails": "ach", "status": "approved"},
                {"currency": "usd", "payment_rails": "wire", "status": "approved"},
                {"currency": "eur", "payment_rails": "sepa", "status": "approved"},
            ],
        },
    },
    DemoId.CORPORATE_APPROVED: {
        "customer_id": DemoId.CORPORATE_APPROVED,
        "email": "treasury@falcon-trading.example",
        "type": "corporate",
        "company_name": "Falcon Trading FZ-LLC",
        "address": {
            "street_line_1": "Office 1204, Sheikh Zayed Road",
            "city": "Dubai",
            "postal_code": "00000",
            "country": "AE",
        },
        "kycs": {
            "status": "approved",
            "kyc_flow_link": _flow_link(DemoId.CORPORATE_APPROVED),
            "status_breakdown": [
                {"currency": "aed", "payment_rails": "uaefts", "status": "approved"},
                {"currency": "usd", "payment_rails": "wire", "status": "pending"},
            ],
        },
    },
    DemoId.FORM_STARTED: {
        "customer_id": DemoId.FORM_STARTED,
        "email": "grace.hopper@example.com",
        "type": "individual",
        "first_name": "Grace",
        "last_name": "Hopper",
        "address": None,
        "kycs": {
            "status": "pending",
            "sub_status": "kyc_form_submission_started",
            "kyc_flow_link": _flow_link(DemoId.FORM_STARTED),
            "status_breakdown": [
                {"currency": "usd", "payment_rails": "ach", "status": "pending"},
            ],
        },
    },
    DemoId.UNDER_REVIEW: {
        "customer_id": DemoId.UNDER_REVIEW,
        "email": "katherine.johnson@example.com",
        "type": "individual",
        "first_name": "Katherine",
        "last_name": "Johnson",
        "address": None,
        "kycs": {
            "status": "pending",
            "sub_status": "kyc_form_submission_accepted",
            "kyc_flow_link": _flow_link(DemoId.UNDER_REVIEW),
            "status_breakdown": [
                {"currency": "usd", "payment_rails": "ach", "status": "pending"},
                {"currency": "usd", "payment_rails": "wire", "status": "pending"},
            ],
        },
    },
    DemoId.RESUBMISSION_REQUIRED: {
        "customer_id": DemoId.RESUBMISSION_REQUIRED,
        "email": "accounts@blue-harbour.example",
        "type": "corporate",
        "company_name": "Blue Harbour Logistics GmbH",
        # Sent although KYC is not approved: the dashboard must never show it.
        "address": {
            "street_line_1": "Hafenstrasse 7",
            "city": "Hamburg",
            "postal_code": "20457",
            "country": "DE",
        },
        "kycs": {
            "status": "pending",
            "sub_status": "kyc_form_resubmission_required",
            "kyc_flow_link": _flow_link(DemoId.RESUBMISSION_REQUIRED),
            "status_breakdown": [
                {"currency": "eur", "payment_rails": "sepa", "status": "pending"},
            ],
        },
    },
    DemoId.REJECTED: {
        "customer_id": DemoId.REJECTED,
        "email": "m.ferrante@example.com",
        "type": "individual",
        "first_name": "Marco",
        "last_name": "Ferrante",
        "address": None,
        "kycs": {
            "status": "rejected",
            "kyc_flow_link": _flow_link(DemoId.REJECTED),
            "status_breakdown": [
                {"currency": "eur", "payment_rails": "sepa", "status": "pending"},
            ],
        },
    },
    DemoId.KYC_NOT_STARTED: {
        "customer_id": DemoId.KYC_NOT_STARTED,
        "email": "hello@quiet-cactus.example",
        "type": "corporate",
        "company_name": "Quiet Cactus Studio Ltd",
        "address": None,
        "kycs": None,
    },
    DemoId.STATUS_NOT_SENT: {
        "customer_id": DemoId.STATUS_NOT_SENT,
        "email": "mary.jackson@example.com",
        "type": "individual",
        "first_name": "Mary",
        "last_name": "Jackson",
        "address": None,
        "kycs": {
            "status": None,
            "kyc_flow_link": _flow_link(DemoId.STATUS_NOT_SENT),
            "status_breakdown": [],
        },
    },
    # Outside the contract on purpose: a status and a rail Align may add after this version.
    DemoId.UNRECOGNISED_VALUES: {
        "customer_id": DemoId.UNRECOGNISED_VALUES,
        "email": "ops@northwind-metals.example",
        "type": "corporate",
        "company_name": "Northwind Metals DMCC",
        "address": None,
        "kycs": {
            "status": "on_hold",
            "kyc_flow_link": _flow_link(DemoId.UNRECOGNISED_VALUES),
            "status_breakdown": [
                {"currency": "aed", "payment_rails": "uaefts", "status": "approved"},
                {"currency": "usd", "payment_rails": "swift", "status": "pending"},
            ],
        },
    },
    # The contract requires kyc_flow_link but allows it to be empty.
    DemoId.NO_KYC_LINK: {
        "customer_id": DemoId.NO_KYC_LINK,
        "email": "dorothy.vaughan@example.com",
        "type": "individual",
        "first_name": "Dorothy",
        "last_name": "Vaughan",
        "address": None,
        "kycs": {
            "status": "pending",
            "sub_status": "kyc_form_submission_started",
            "kyc_flow_link": "",
            "status_breakdown": [
                {"currency": "usd", "payment_rails": "ach", "status": "pending"},
            ],
        },
    },
    # A link staff must never click or send: the card shows it as inert text with a warning.
    DemoId.NON_WEB_LINK: {
        "customer_id": DemoId.NON_WEB_LINK,
        "email": "compliance@ridgeway-analytics.example",
        "type": "corporate",
        "company_name": "Ridgeway Analytics Ltd",
        "address": None,
        "kycs": {
            "status": "pending",
            "sub_status": "kyc_form_resubmission_required",
            "kyc_flow_link": "javascript:alert(document.domain)",
            "status_breakdown": [
                {"currency": "eur", "payment_rails": "sepa", "status": "pending"},
            ],
        },
    },
}

DEMO_DESCRIPTIONS: dict[str, str] = {
    DemoId.INDIVIDUAL_APPROVED: "Individual, approved, with address",
    DemoId.CORPORATE_APPROVED: "Corporate, approved; USD Wire still pending",
    DemoId.FORM_STARTED: "Pending: form started",
    DemoId.UNDER_REVIEW: "Pending: under review",
    DemoId.RESUBMISSION_REQUIRED: "Pending: resubmission required",
    DemoId.REJECTED: "Rejected; EUR SEPA still pending",
    DemoId.KYC_NOT_STARTED: "No KYC yet",
    DemoId.STATUS_NOT_SENT: "Unknown: Align sent no status",
    DemoId.UNRECOGNISED_VALUES: "Unrecognised status and rail",
    DemoId.NO_KYC_LINK: "Pending: no KYC link",
    DemoId.NON_WEB_LINK: "Pending: link is not a web link",
}

DRILL_DESCRIPTIONS: dict[str, str] = {
    DrillId.KEY_REJECTED: "Key rejected (401)",
    DrillId.RATE_LIMITED: "Rate limited (429)",
    DrillId.SERVER_ERROR: "Align error (500)",
    DrillId.SLOW: "Slower than the timeout",
    DrillId.MALFORMED: "Malformed response",
}

CUSTOMER_PATH = re.compile(r"^/v0/customers/(?P<customer_id>[^/?#]+)/?$")


class StubHandler(BaseHTTPRequestHandler):
    server: "StubServer"
    server_version = "AlignStandIn/1"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle's algorithm meets the client's
    # delayed ACK and every keep-alive answer waits about 40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.server.count_call()
        if self.server.delay:
            time.sleep(self.server.delay)
        match = CUSTOMER_PATH.match(self.path.split("?", 1)[0])
        if not match:
            self._send_json(404, {"message": "Not found"})
            return
        if self.headers.get("Api-Key") != self.server.api_key:
            self._send_json(401, {"message": "Missing or invalid Api-Key"})
            return
        customer_id = match["customer_id"].lower()
        if customer_id in DRILL_DESCRIPTIONS:
            self._run_drill(customer_id)
        elif customer_id in DEMO_CUSTOMERS:
            self._send_json(200, DEMO_CUSTOMERS[customer_id])
        else:
            self._send_json(404, {"message": "Customer not found"})

    def _run_drill(self, drill: str) -> None:
        if drill == DrillId.KEY_REJECTED:
            self._send_json(401, {"message": "Invalid Api-Key"})
        elif drill == DrillId.RATE_LIMITED:
            self._send_json(429, {"message": "Too many requests"}, extra_headers={"Retry-After": "30"})
        elif drill == DrillId.SERVER_ERROR:
            self._send_json(500, {"message": "Internal server error"})
        elif drill == DrillId.SLOW:
            time.sleep(self.server.slow_seconds)
            self._send_json(404, {"message": "Customer not found"})
        else:
            self._send_bytes(200, b'{"customer_id": "00000000-0000-4000-8000-0000', "application/json")

    def _send_json(self, status: int, body: dict, extra_headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), "application/json", extra_headers)

    def _send_bytes(
        self, status: int, payload: bytes, content_type: str, extra_headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            logger.info("Stand-in: the client went away before the answer was sent")

    def log_message(self, format: str, *args) -> None:
        logger.info("Stand-in: %s", format % args)


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], *, api_key: str, delay: float = 0.0, slow_seconds: float = 30.0
    ) -> None:
        super().__init__(address, StubHandler)
        self.api_key = api_key
        self.delay = delay
        self.slow_seconds = slow_seconds
        # How many requests arrived, so tests can tell whether (and how often) the dashboard called.
        self.calls = 0
        # How many connections it accepted, so a benchmark can tell whether callers reuse them.
        self.connections = 0
        self._calls_lock = threading.Lock()

    def count_call(self) -> None:
        with self._calls_lock:
            self.calls += 1

    def get_request(self):
        accepted = super().get_request()
        with self._calls_lock:
            self.connections += 1
        return accepted

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


@contextlib.contextmanager
def serving(*, api_key: str, host: str = "127.0.0.1", port: int = 0, **options) -> Iterator[StubServer]:
    """Run a stand-in on a free port in a background thread for the length of a `with` block."""
    server = StubServer((host, port), api_key=api_key, **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), name="align-stand-in", daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
