"""The local stand-in playing Align's sandbox beyond lookups: KYC that moves, and webhooks that say so.

`POST /v0/customers/simulate` with `{"action": "kyc.status.approve", "customer_id": ...}`
approves a customer, as Align's sandbox does. Every change of a customer's KYC is then POSTed to
the stand-in's webhook URL, when it has one, as a signed `customer.kycs.updated` delivery, from a
thread of its own so the simulation answers at once.

Standard library only, like customers/align/standin/server.py. The signature is computed here apart from the
dashboard's customers/align/webhooks.py (the same rule, from Align's documentation), so a delivery from
the stand-in checks the receiver against a second implementation rather than against itself.
"""

import copy
import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

logger = logging.getLogger(__name__)

SIMULATE_PATH = "/v0/customers/simulate"
APPROVE_ACTION = "kyc.status.approve"
KYC_UPDATED = "customer.kycs.updated"
SIGNATURE_HEADER = "x-hmac-signature"
# A simulation request is one small JSON object.
MAX_SIMULATE_BYTES = 16 * 1024
# A receiver that takes longer than this is reported as failing; the simulation has long answered.
DELIVERY_TIMEOUT_SECONDS = 5


class SimulationRefused(ValueError):
    """A simulation request the stand-in cannot act on; `status` is its answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_simulation(body: bytes) -> str:
    """The customer ID a simulation request approves; SimulationRefused (400) for anything else."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        raise SimulationRefused(400, "The body is not JSON.") from None
    if not isinstance(request, dict):
        raise SimulationRefused(400, "The body is not a JSON object.")
    if request.get("action") != APPROVE_ACTION:
        raise SimulationRefused(400, f"Unknown action: the stand-in simulates {APPROVE_ACTION} only.")
    customer_id = request.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id:
        raise SimulationRefused(400, "customer_id is missing or not a string.")
    return customer_id.lower()


def approved(customer: dict) -> dict:
    """The customer with KYC approved overall and on every rail.

    A customer without KYC gets a record, with no link (the contract allows an empty one).
    """
    result = copy.deepcopy(customer)
    kyc = result.get("kycs") or {"kyc_flow_link": "", "status_breakdown": []}
    kyc.pop("sub_status", None)
    kyc["status"] = "approved"
    kyc["status_breakdown"] = [row | {"status": "approved"} for row in kyc.get("status_breakdown") or []]
    result["kycs"] = kyc
    return result


def kyc_updated_envelope(customer: dict, *, now: datetime | None = None) -> dict:
    """A `customer.kycs.updated` delivery as Align's documentation describes it."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "event_type": KYC_UPDATED,
        "entity_id": str(customer["customer_id"]),
        "entity_type": "customer",
        "created_at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "entity_object": customer,
    }


def sign(body: bytes, key: str) -> str:
    """Lower-case hex HMAC-SHA256 of the raw body, keyed with the API key: Align's x-hmac-signature."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SentDelivery:
    customer_id: str
    body: bytes
    # The receiver's HTTP status; None when it could not be reached or did not answer in time.
    status: int | None


class WebhookSender:
    """Signs and POSTs deliveries to one URL, each from a thread of its own; remembers each outcome."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        # Deliveries handed to a thread, and those done (whatever their outcome): tests wait on these.
        self.queued = 0
        self.sent: list[SentDelivery] = []
        self._lock = threading.Lock()
        # No proxy from the environment: the receiver is usually on this machine.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def send(self, customer: dict) -> None:
        body = json.dumps(kyc_updated_envelope(customer)).encode()
        customer_id = str(customer["customer_id"])
        with self._lock:
            self.queued += 1
        threading.Thread(
            target=self._deliver, args=(customer_id, body), name="align-stand-in-webhook", daemon=True
        ).start()

    def _deliver(self, customer_id: str, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310  (an http(s) URL the operator gave)
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self.key)},
        )
        status = None
        try:
            with self._opener.open(request, timeout=DELIVERY_TIMEOUT_SECONDS) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            logger.warning(
                "Stand-in: the webhook for customer %s could not be delivered: %s", customer_id, reason
            )
        if status is not None and status != 200:
            logger.warning("Stand-in: the webhook for customer %s was answered with %s", customer_id, status)
        with self._lock:
            self.sent.append(SentDelivery(customer_id, body, status))
