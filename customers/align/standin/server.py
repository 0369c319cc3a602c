"""A local stand-in for the Align Customers API, for `make run`, demos and tests.

It serves `GET /v0/customers/{customer_id}` per the contract with the demo customers of
customers/align/standin/demo.py, whose "failure drill" IDs make it misbehave the way the real API
can, so the dashboard's error screens can be seen without breaking anything. `generate` adds that
many more customers with deterministic IDs, for bulk lookups. At an address of its own,
DEMO_LIST_PATH, it describes its demo customers, drills and e-mails to try, so a dashboard pointed
at it can list them without importing this package. Standard library only: it must start on any
machine the dashboard starts on.
"""

import contextlib
import copy
import json
import logging
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from customers.align.standin import webhooks as stub_webhooks
from customers.align.standin.demo import (
    DEMO_CUSTOMERS,
    DEMO_DESCRIPTIONS,
    DEMO_EMAILS,
    DRILL_DESCRIPTIONS,
    DrillId,
    GeneratedDrill,
    flow_link,
    generated_customer_id,
    generated_customers,
    generated_drill,
)

logger = logging.getLogger(__name__)


def _email_key(address: str) -> str:
    """How the stand-in matches e-mails: the local part exactly, the domain in any case."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


CUSTOMER_PATH = re.compile(r"^/v0/customers/(?P<customer_id>[^/?#]+)/?$")
SEARCH_PATH = "/v0/customers"
# Not Align's: the stand-in's own description of its demo customers, drills and e-mails (no key needed).
DEMO_LIST_PATH = "/stand-in/demo-list"
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
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == SEARCH_PATH:
                self._search()
            elif path == DEMO_LIST_PATH:
                self._describe_demo()
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

    def _describe_demo(self) -> None:
        """`GET /stand-in/demo-list`: the demo customers, failure drills and e-mails to try, each with
        what it shows."""
        self._send_json(
            200,
            {
                "customers": [
                    {"customer_id": customer_id, "description": description}
                    for customer_id, description in DEMO_DESCRIPTIONS.items()
                ],
                "drills": [
                    {"customer_id": drill_id, "description": description}
                    for drill_id, description in DRILL_DESCRIPTIONS.items()
                ],
                "emails": [
                    {"email": email, "description": description} for email, description in DEMO_EMAILS.items()
                ],
            },
        )

    def _search(self) -> None:
        """`GET /v0/customers?email=`: every customer with that exact e-mail (domain case-blind)."""
        self.server.pause(self.server.delay)
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
        self.server.pause(self.server.delay)
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
            self.server.pause(self.server.slow_seconds)
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
    """The stand-in's server: a thread per connection, every one of them ended by server_close.

    A handler thread that outlived its server (a slow drill still sleeping, a kept-alive
    connection) would answer and log after its test, or its process, had moved on: server_close
    wakes the sleepers, shuts the open connections and waits for every handler thread.
    """

    # ThreadingHTTPServer's handler threads are daemons, which server_close does not wait for.
    daemon_threads = False

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
        # Before binding: a port in use makes the base class call server_close at once.
        self._closing = threading.Event()
        self._open_connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
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

    def pause(self, seconds: float) -> None:
        """Wait `seconds` before answering, or less if the server is closing meanwhile."""
        if seconds:
            self._closing.wait(seconds)

    def process_request(self, request: socket.socket, client_address) -> None:
        with self._connections_lock:
            self._open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._open_connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Stop listening, end every connection still open, and wait for their handler threads."""
        self._closing.set()
        with self._connections_lock:
            open_connections = list(self._open_connections)
        for connection in open_connections:
            # Wakes a handler waiting for a kept-alive connection's next request.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        super().server_close()

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
            link = f"{flow_link(customer_id)}?session={self._sessions_started}"
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
