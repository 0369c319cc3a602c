"""A local stand-in for the Align Customers API, for `make run`, demos and tests.

It serves `GET /v0/customers/{customer_id}` per the contract with eleven demo customers: every
KYC state staff meet, and the odd answers the card must survive (no overall status, values added
after this contract, no KYC link, a link that is not a web link). "Failure drill" IDs make it
misbehave the way the real API can, so the dashboard's error screens can be seen without breaking
anything. `generate` adds that many more customers with deterministic IDs, for bulk lookups.
Standard library only: it must start on any machine the dashboard starts on.
"""

import contextlib
import copy
import enum
import json
import logging
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from customers.align.standin import webhooks as stub_webhooks

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


def _email_key(address: str) -> str:
    """How the stand-in matches e-mails: the local part exactly, the domain in any case."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


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
        # Shared with Falcon Trading on purpose: a search by this e-mail finds several customers.
        "email": "treasury@falcon-trading.example",
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

# --- Generated customers, for bulk lookups ------------------------------------------------------
# Deterministic: the same index always gives the same ID and the same customer, on every machine,
# so docs/stand-in.md can print a list to paste.
GENERATED_NAMESPACE = uuid.UUID("6f0c8f55-2b1e-4d3a-9c77-5a1d2e3f4b60")
GENERATED_LIMIT = 10_000
FIRST_NAMES = ("Alan", "Barbara", "Claude", "Edsger", "Frances", "Hedy", "Ivan", "Joan", "Ken", "Lynn")
LAST_NAMES = (
    "Turing",
    "Liskov",
    "Shannon",
    "Dijkstra",
    "Allen",
    "Lamarr",
    "Sutherland",
    "Clarke",
    "Thompson",
)
COMPANIES = ("Harbour", "Meridian", "Cobalt", "Juniper", "Atlas", "Sable", "Orchid", "Granite")
COMPANY_KINDS = ("Trading Ltd", "Logistics GmbH", "Metals DMCC", "Analytics LLC", "Foods SARL")


class GeneratedDrill(enum.StrEnum):
    """What some generated customers do instead of answering, every GENERATED_DRILL_EVERY indices."""

    NOT_FOUND = "not_found"  # 404
    RATE_LIMITED_ONCE = "rate_limited_once"  # 429 with Retry-After: 1 the first time, then the customer
    SERVER_ERROR = "server_error"  # 500


GENERATED_DRILL_EVERY = 50
GENERATED_DRILLS = {
    7: GeneratedDrill.NOT_FOUND,
    8: GeneratedDrill.RATE_LIMITED_ONCE,
    9: GeneratedDrill.SERVER_ERROR,
}


def generated_customer_id(index: int) -> str:
    return str(uuid.uuid5(GENERATED_NAMESPACE, f"generated-customer-{index}"))


def generated_drill(index: int) -> GeneratedDrill | None:
    return GENERATED_DRILLS.get(index % GENERATED_DRILL_EVERY)


def _rails(*rows: tuple[str, str, str]) -> list[dict]:
    return [
        {"currency": currency, "payment_rails": rail, "status": status} for currency, rail, status in rows
    ]


# Every KYC state the single view knows, in turn: the generated customers cycle through these.
GENERATED_KYC_STATES: tuple[dict | None, ...] = (
    {
        "status": "approved",
        "status_breakdown": _rails(("usd", "ach", "approved"), ("eur", "sepa", "approved")),
    },
    {
        "status": "pending",
        "sub_status": "kyc_form_submission_started",
        "status_breakdown": _rails(("usd", "ach", "pending")),
    },
    {
        "status": "pending",
        "sub_status": "kyc_form_resubmission_required",
        "status_breakdown": _rails(("eur", "sepa", "pending")),
    },
    {
        "status": "pending",
        "sub_status": "kyc_form_submission_accepted",
        "status_breakdown": _rails(("usd", "wire", "pending")),
    },
    {"status": "rejected", "status_breakdown": _rails(("eur", "sepa", "pending"))},
    None,  # no KYC yet
    {"status": None, "status_breakdown": []},
    {
        "status": "approved",
        "status_breakdown": _rails(("aed", "uaefts", "approved"), ("usd", "wire", "pending")),
    },
    {"status": "pending", "status_breakdown": []},  # pending without a sub-status
    {
        "status": "on_hold",
        "status_breakdown": _rails(("aed", "uaefts", "approved")),
    },  # a status Align may add
    {
        "status": "pending",
        "sub_status": "kyc_form_submission_started",
        "status_breakdown": _rails(("usd", "swift", "pending")),
    },
    {"status": "pending", "sub_status": "kyc_form_resubmission_required", "status_breakdown": [], "link": ""},
    {
        "status": "pending",
        "sub_status": "kyc_form_submission_started",
        "status_breakdown": [],
        "link": "javascript:alert(1)",
    },
)


def generated_customer(index: int) -> dict:
    """The index-th generated customer's body, per the contract (with an address whatever its KYC)."""
    customer_id = generated_customer_id(index)
    corporate = index % 3 == 2
    body: dict = {
        "customer_id": customer_id,
        "email": f"customer{index:04d}@generated.example",
        "type": "corporate" if corporate else "individual",
        "address": {
            "street_line_1": f"{index + 1} Example Street",
            "city": "London",
            "postal_code": "EC1A 1BB",
            "country": "GB",
        },
    }
    if corporate:
        body["company_name"] = (
            f"{COMPANIES[index % len(COMPANIES)]} {COMPANY_KINDS[index % len(COMPANY_KINDS)]}"
        )
    else:
        body["first_name"] = FIRST_NAMES[index % len(FIRST_NAMES)]
        body["last_name"] = LAST_NAMES[index % len(LAST_NAMES)]
    state = GENERATED_KYC_STATES[index % len(GENERATED_KYC_STATES)]
    if state is None:
        body["kycs"] = None
    else:
        kyc = {key: value for key, value in state.items() if key != "link"}
        body["kycs"] = kyc | {"kyc_flow_link": state.get("link", _flow_link(customer_id))}
    return body


def generated_customers(count: int) -> dict[str, dict]:
    """The first `count` generated customers by ID, drills included (they answer otherwise)."""
    return {generated_customer_id(index): generated_customer(index) for index in range(count)}


CUSTOMER_PATH = re.compile(r"^/v0/customers/(?P<customer_id>[^/?#]+)/?$")
SEARCH_PATH = "/v0/customers"
KYCS_PATH = re.compile(r"^/v0/customers/(?P<customer_id>[^/?#]+)/kycs/?$")
MAX_SESSION_BODY_BYTES = 1024


class StubHandler(BaseHTTPRequestHandler):
    server: "StubServer"
    server_version = "AlignStandIn/1"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle's algorithm meets the client's
    # delayed ACK and every keep-alive answer waits about 40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.server.count_call()
        try:
            if self.path.split("?", 1)[0].rstrip("/") == SEARCH_PATH:
                self._search()
            else:
                self._answer()
        finally:
            self.server.count_answered()

    def do_POST(self) -> None:
        """Start a KYC session; or Align's sandbox simulation (customers/align/standin/webhooks.py)."""
        self.server.count_call()
        try:
            match = KYCS_PATH.match(self.path.split("?", 1)[0])
            if match:
                self._start_session(match["customer_id"].lower())
            else:
                self._simulate()
        finally:
            self.server.count_answered()

    def _search(self) -> None:
        """`GET /v0/customers?email=`: every customer with that exact e-mail (domain case-blind)."""
        if self.server.delay:
            time.sleep(self.server.delay)
        if self.headers.get("Api-Key") != self.server.api_key:
            self._send_json(401, {"message": "Missing or invalid Api-Key"})
            return
        emails = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("email", [])
        if len(emails) != 1 or "@" not in emails[0]:
            self._send_json(400, {"message": "Give exactly one email query parameter"})
            return
        wanted = _email_key(emails[0])
        items = [body for body in list(self.server.customers.values()) if _email_key(body["email"]) == wanted]
        self._send_json(200, {"items": items})

    def _start_session(self, customer_id: str) -> None:
        """`POST /v0/customers/{id}/kycs`: a fresh link; a pending KYC where there was none."""
        if self.headers.get("Api-Key") != self.server.api_key:
            self._send_json(401, {"message": "Missing or invalid Api-Key"})
            return
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_SESSION_BODY_BYTES:
            self.close_connection = True
            self._send_json(413, {"message": "Send {} with a Content-Length."})
            return
        try:
            body = json.loads(self.rfile.read(int(length)) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send_json(400, {"message": "The body must be a JSON object"})
            return
        if customer_id in DRILL_DESCRIPTIONS:
            self._run_drill(customer_id)
            return
        kycs = self.server.start_session(customer_id)
        if kycs is None:
            self._send_json(404, {"message": "Customer not found"})
            return
        self._send_json(201, {"kycs": {"status": kycs["status"], "kyc_flow_link": kycs["kyc_flow_link"]}})

    def _simulate(self) -> None:
        if self.path.split("?", 1)[0] != stub_webhooks.SIMULATE_PATH:
            self._send_json(404, {"message": "Not found"})
            return
        if self.headers.get("Api-Key") != self.server.api_key:
            self._send_json(401, {"message": "Missing or invalid Api-Key"})
            return
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > stub_webhooks.MAX_SIMULATE_BYTES:
            self.close_connection = True  # the unread body must not be taken for the next request
            self._send_json(413, {"message": "Send a small JSON object with a Content-Length."})
            return
        try:
            customer_id = stub_webhooks.read_simulation(self.rfile.read(int(length)))
        except stub_webhooks.SimulationRefused as refusal:
            self._send_json(refusal.status, {"message": str(refusal)})
            return
        if not self.server.approve(customer_id):
            self._send_json(404, {"message": "Customer not found"})
            return
        self._send_json(200, {"message": "KYC approved", "customer_id": customer_id})

    def _answer(self) -> None:
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
        elif customer_id in self.server.generated_drills:
            self._run_generated_drill(customer_id)
        elif customer_id in self.server.customers:
            self._send_json(200, self.server.customers[customer_id])
        else:
            self._send_json(404, {"message": "Customer not found"})

    def _run_generated_drill(self, customer_id: str) -> None:
        drill = self.server.generated_drills[customer_id]
        if drill == GeneratedDrill.NOT_FOUND:
            self._send_json(404, {"message": "Customer not found"})
        elif drill == GeneratedDrill.SERVER_ERROR:
            self._send_json(500, {"message": "Internal server error"})
        elif self.server.first_rate_limit(customer_id):
            self._send_json(429, {"message": "Too many requests"}, extra_headers={"Retry-After": "1"})
        else:
            self._send_json(200, self.server.customers[customer_id])

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
        self,
        address: tuple[str, int],
        *,
        api_key: str,
        delay: float = 0.0,
        slow_seconds: float = 30.0,
        generate: int = 0,
        webhook_url: str = "",
    ) -> None:
        super().__init__(address, StubHandler)
        self.api_key = api_key
        self.delay = delay
        self.slow_seconds = slow_seconds
        # This process's own copy: a simulation changes it, never the module's demo customers.
        self.customers: dict[str, dict] = {**copy.deepcopy(DEMO_CUSTOMERS), **generated_customers(generate)}
        # Where every change of a customer's KYC is delivered, signed with the API key; none when "".
        self.webhooks = stub_webhooks.WebhookSender(webhook_url, api_key) if webhook_url else None
        self.generated_drills = {
            generated_customer_id(index): generated_drill(index)
            for index in range(generate)
            if generated_drill(index) is not None
        }
        self._rate_limited_once: set[str] = set()
        # Numbers each new KYC session's link, so every start gives a link not seen before.
        self._sessions_started = 0
        # How many requests arrived, so tests can tell whether (and how often) the dashboard called.
        self.calls = 0
        # How many are being answered right now, and the most at once: a bulk lookup's bound.
        self.in_flight = 0
        self.peak_in_flight = 0
        # How many connections it accepted, so a benchmark can tell whether callers reuse them.
        self.connections = 0
        self._calls_lock = threading.Lock()

    def count_call(self) -> None:
        with self._calls_lock:
            self.calls += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def count_answered(self) -> None:
        with self._calls_lock:
            self.in_flight -= 1

    def first_rate_limit(self, customer_id: str) -> bool:
        """True the first time this customer is asked for: the rate-limited-once drill."""
        with self._calls_lock:
            first = customer_id not in self._rate_limited_once
            self._rate_limited_once.add(customer_id)
            return first

    def approve(self, customer_id: str) -> bool:
        """Approve a customer's KYC and deliver the change as a webhook; False for an unknown customer."""
        with self._calls_lock:
            before = self.customers.get(customer_id)
            if before is None:
                return False
            after = stub_webhooks.approved(before)
            # Replaced whole, so an answer being written meanwhile sends the old body or the new one.
            self.customers[customer_id] = after
        if after != before and self.webhooks is not None:
            self.webhooks.send(after)
        return True

    def start_session(self, customer_id: str) -> dict | None:
        """Give the customer a fresh KYC link, as Align does; None for an unknown customer.

        No KYC yet: a pending one. Rejected: restarted as pending. Otherwise the status stays and
        only the link changes. The change is kept for this process and sent as a webhook.
        """
        with self._calls_lock:
            before = self.customers.get(customer_id)
            if before is None:
                return None
            self._sessions_started += 1
            link = f"{_flow_link(customer_id)}?session={self._sessions_started}"
            after = copy.deepcopy(before)
            kycs = after.get("kycs")
            if kycs is None or kycs.get("status") == "rejected":
                kycs = {"status": "pending", "kyc_flow_link": link, "status_breakdown": []}
            else:
                kycs["kyc_flow_link"] = link
            after["kycs"] = kycs
            self.customers[customer_id] = after
        if self.webhooks is not None:
            self.webhooks.send(after)
        return kycs

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
