"""The stand-in's demo data: the customers it serves, its failure drills, and generated customers.

Eleven demo customers cover every KYC state staff meet, and the odd answers the card must
survive (no overall status, values added after this contract, no KYC link, a link that is not a
web link); a few e-mails show each outcome of a search by e-mail. "Failure drill" IDs make the
stand-in misbehave the way the real API can. Generated customers (deterministic IDs) fill bulk
lookups. Kept apart from the HTTP server so tests and benchmarks can use the data without a
server, and the server describes it at its own address. Standard library only, like the server.
"""

import enum
import uuid

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


def flow_link(customer_id: str) -> str:
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
            "kyc_flow_link": flow_link(DemoId.INDIVIDUAL_APPROVED),
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
            "kyc_flow_link": flow_link(DemoId.CORPORATE_APPROVED),
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
            "kyc_flow_link": flow_link(DemoId.FORM_STARTED),
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
            "kyc_flow_link": flow_link(DemoId.UNDER_REVIEW),
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
            "kyc_flow_link": flow_link(DemoId.RESUBMISSION_REQUIRED),
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
            "kyc_flow_link": flow_link(DemoId.REJECTED),
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
            "kyc_flow_link": flow_link(DemoId.STATUS_NOT_SENT),
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
            "kyc_flow_link": flow_link(DemoId.UNRECOGNISED_VALUES),
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

# E-mails to try on the search page, each with what a search for it shows.
DEMO_EMAILS: dict[str, str] = {
    DEMO_CUSTOMERS[DemoId.INDIVIDUAL_APPROVED]["email"]: "One match",
    "Ada.Lovelace@EXAMPLE.com": "One match, typed in another case",
    DEMO_CUSTOMERS[DemoId.CORPORATE_APPROVED]["email"]: "Two customers share it",
    "nobody@example.com": "No match",
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
        body["kycs"] = kyc | {"kyc_flow_link": state.get("link", flow_link(customer_id))}
    return body


def generated_customers(count: int) -> dict[str, dict]:
    """The first `count` generated customers by ID, drills included (they answer otherwise)."""
    return {generated_customer_id(index): generated_customer(index) for index in range(count)}
