"""Customer.from_api: parsing Align's body per the contract, and the rules read off the result."""

import json
import logging
import uuid

import pytest

from customers.align.records import (
    Address,
    Currency,
    Customer,
    CustomerType,
    InvalidCustomerData,
    KycStatus,
    KycSubStatus,
    PaymentRail,
    RailStatus,
)
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId

ADA = DemoId.INDIVIDUAL_APPROVED
FALCON = DemoId.CORPORATE_APPROVED
ADA_EMAIL = DEMO_CUSTOMERS[ADA]["email"]


def parse(body, customer_id=ADA) -> Customer:
    return Customer.from_api(body, customer_id=uuid.UUID(str(customer_id)))


def is_raw_string(value) -> bool:
    """True for a plain str, False for an enum member (which is also a str)."""
    return type(value) is str


def _delete(path):
    """A change to a body: remove the field at `path` (keys and list indexes)."""

    def change(body):
        *parents, key = path
        target = body
        for parent in parents:
            target = target[parent]
        del target[key]

    return change


def _set(path, value):
    """A change to a body: set the field at `path` (keys and list indexes) to `value`."""

    def change(body):
        *parents, key = path
        target = body
        for parent in parents:
            target = target[parent]
        target[key] = value

    return change


# --- Every demo body, every contract enum value -----------------------------------------------


@pytest.mark.parametrize("demo_id", list(DemoId))
def test_every_demo_body_parses(demo_body, demo_id):
    body = demo_body(demo_id)
    customer = parse(body, demo_id)
    assert customer.customer_id == uuid.UUID(demo_id)
    assert customer.email == body["email"]


def test_demo_body_parses_into_enum_members_and_rows(demo_body):
    customer = parse(demo_body(ADA))
    assert customer.type is CustomerType.INDIVIDUAL
    assert customer.kycs.status is KycStatus.APPROVED
    assert customer.kycs.kyc_flow_link == f"https://kyc.stand-in.example/flow/{ADA}"
    assert [(row.currency, row.payment_rails, row.status) for row in customer.kycs.status_breakdown] == [
        (Currency.USD, PaymentRail.ACH, RailStatus.APPROVED),
        (Currency.USD, PaymentRail.WIRE, RailStatus.APPROVED),
        (Currency.EUR, PaymentRail.SEPA, RailStatus.APPROVED),
    ]
    assert customer.address == Address(
        street_line_1="12 St James's Square",
        city="London",
        state="Greater London",
        postal_code="SW1Y 4JH",
        country="GB",
    )


@pytest.mark.parametrize(
    ("value", "member"), [("individual", CustomerType.INDIVIDUAL), ("corporate", CustomerType.CORPORATE)]
)
def test_every_contract_customer_type_parses_to_its_member(demo_body, value, member):
    body = demo_body()
    body["type"] = value
    assert parse(body).type is member


@pytest.mark.parametrize(
    ("value", "member"),
    [("pending", KycStatus.PENDING), ("approved", KycStatus.APPROVED), ("rejected", KycStatus.REJECTED)],
)
def test_every_contract_kyc_status_parses_to_its_member(demo_body, value, member):
    body = demo_body()
    body["kycs"]["status"] = value
    assert parse(body).kycs.status is member


@pytest.mark.parametrize(
    ("value", "member"),
    [
        ("kyc_form_submission_started", KycSubStatus.FORM_STARTED),
        ("kyc_form_submission_accepted", KycSubStatus.FORM_ACCEPTED),
        ("kyc_form_resubmission_required", KycSubStatus.RESUBMISSION_REQUIRED),
    ],
)
def test_every_contract_sub_status_parses_to_its_member(demo_body, value, member):
    body = demo_body(DemoId.FORM_STARTED)
    body["kycs"]["sub_status"] = value
    assert parse(body, DemoId.FORM_STARTED).kycs.sub_status is member


@pytest.mark.parametrize(
    ("field", "value", "member"),
    [
        ("currency", "aed", Currency.AED),
        ("currency", "eur", Currency.EUR),
        ("currency", "usd", Currency.USD),
        ("payment_rails", "uaefts", PaymentRail.UAEFTS),
        ("payment_rails", "sepa", PaymentRail.SEPA),
        ("payment_rails", "ach", PaymentRail.ACH),
        ("payment_rails", "wire", PaymentRail.WIRE),
        ("status", "pending", RailStatus.PENDING),
        ("status", "approved", RailStatus.APPROVED),
    ],
)
def test_every_contract_breakdown_value_parses_to_its_member(demo_body, field, value, member):
    body = demo_body()
    body["kycs"]["status_breakdown"][0][field] = value
    row = parse(body).kycs.status_breakdown[0]
    assert getattr(row, field) is member


def test_empty_status_breakdown_parses_to_no_rows(demo_body):
    body = demo_body()
    body["kycs"]["status_breakdown"] = []
    assert parse(body).kycs.status_breakdown == ()


# --- Nullable and optional fields ---------------------------------------------------------------


def test_null_kyc_status_means_status_unknown(demo_body):
    body = demo_body()
    body["kycs"]["status"] = None
    customer = parse(body)
    assert customer.kycs is not None
    assert customer.kycs.status is None


def test_null_kycs_means_kyc_not_started(demo_body):
    body = demo_body()
    body["kycs"] = None
    assert parse(body).kycs is None


def test_absent_kycs_means_kyc_not_started(demo_body):
    body = demo_body()
    del body["kycs"]
    assert parse(body).kycs is None


def test_null_address_means_no_address(demo_body):
    body = demo_body()
    body["address"] = None
    assert parse(body).address is None


def test_absent_sub_status_is_none(demo_body):
    body = demo_body(DemoId.FORM_STARTED)
    del body["kycs"]["sub_status"]
    assert parse(body, DemoId.FORM_STARTED).kycs.sub_status is None


@pytest.mark.parametrize(
    ("path", "attribute"),
    [
        (("first_name",), lambda customer: customer.first_name),
        (("last_name",), lambda customer: customer.last_name),
        (("company_name",), lambda customer: customer.company_name),
        (("kycs", "sub_status"), lambda customer: customer.kycs.sub_status),
        (("address", "city"), lambda customer: customer.address.city),
        (("address", "state"), lambda customer: customer.address.state),
    ],
    ids=["first_name", "last_name", "company_name", "kycs.sub_status", "address.city", "address.state"],
)
def test_optional_string_sent_as_null_is_read_as_absent(demo_body, path, attribute):
    body = demo_body()
    _set(path, None)(body)
    assert attribute(parse(body)) is None


def test_absent_optional_strings_are_none(demo_body):
    body = demo_body()
    for key in ("first_name", "last_name", "company_name", "address"):
        body.pop(key, None)
    customer = parse(body)
    assert customer.first_name is None
    assert customer.last_name is None
    assert customer.company_name is None
    assert customer.address is None


# --- Unknown fields and unlisted enum values ----------------------------------------------------


def test_unknown_extra_fields_are_ignored_everywhere(demo_body):
    body = demo_body()
    body["risk_score"] = 7
    body["tags"] = ["vip"]
    body["kycs"]["provider"] = {"name": "acme"}
    body["kycs"]["status_breakdown"][0]["limit"] = 1000
    body["address"]["street_line_2"] = "Flat 3"
    assert parse(body) == parse(demo_body())


@pytest.mark.parametrize(
    ("path", "value", "read"),
    [
        (("type",), "trust", lambda customer: customer.type),
        (("kycs", "status"), "frozen", lambda customer: customer.kycs.status),
        (("kycs", "sub_status"), "kyc_form_expired", lambda customer: customer.kycs.sub_status),
        (
            ("kycs", "status_breakdown", 0, "currency"),
            "gbp",
            lambda customer: customer.kycs.status_breakdown[0].currency,
        ),
        (
            ("kycs", "status_breakdown", 0, "payment_rails"),
            "swift",
            lambda customer: customer.kycs.status_breakdown[0].payment_rails,
        ),
        (
            ("kycs", "status_breakdown", 0, "status"),
            "rejected",
            lambda customer: customer.kycs.status_breakdown[0].status,
        ),
        (("type",), "Individual", lambda customer: customer.type),
    ],
    ids=[
        "type",
        "kycs.status",
        "kycs.sub_status",
        "row.currency",
        "row.payment_rails",
        "row.status-rejected-is-not-a-rail-status",
        "type-in-another-case",
    ],
)
def test_unlisted_enum_value_is_kept_raw_and_logged_without_email(demo_body, caplog, path, value, read):
    body = demo_body()
    _set(path, value)(body)
    caplog.set_level(logging.DEBUG, logger="customers.align.records")

    parsed = read(parse(body))

    assert parsed == value
    assert is_raw_string(parsed)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(ADA) in message
    assert ADA_EMAIL not in caplog.text
    assert ADA_EMAIL not in message


def test_unlisted_enum_value_keeps_the_rest_of_the_customer(demo_body):
    body = demo_body()
    body["kycs"]["status_breakdown"][1]["payment_rails"] = "swift"
    rows = parse(body).kycs.status_breakdown
    assert rows[0].payment_rails is PaymentRail.ACH
    assert rows[1].payment_rails == "swift"
    assert rows[2].payment_rails is PaymentRail.SEPA


def test_recognised_values_log_nothing(demo_body, caplog):
    caplog.set_level(logging.DEBUG, logger="customers.align.records")
    for demo_id in DemoId:
        if demo_id != DemoId.UNRECOGNISED_VALUES:  # outside the contract on purpose
            parse(demo_body(demo_id), demo_id)
    assert caplog.records == []


# --- Bodies that do not fit the contract --------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        _delete(("customer_id",)),
        _delete(("email",)),
        _delete(("type",)),
        _delete(("kycs", "status")),
        _delete(("kycs", "kyc_flow_link")),
        _delete(("kycs", "status_breakdown")),
        _delete(("kycs", "status_breakdown", 0, "currency")),
        _delete(("kycs", "status_breakdown", 0, "payment_rails")),
        _delete(("kycs", "status_breakdown", 0, "status")),
        _set(("customer_id",), None),
        _set(("email",), None),
        _set(("type",), None),
        _set(("kycs", "kyc_flow_link"), None),
        _set(("kycs", "status_breakdown"), None),
        _set(("kycs", "status_breakdown", 0, "currency"), None),
    ],
    ids=[
        "customer_id-missing",
        "email-missing",
        "type-missing",
        "kycs.status-missing",
        "kycs.kyc_flow_link-missing",
        "kycs.status_breakdown-missing",
        "row.currency-missing",
        "row.payment_rails-missing",
        "row.status-missing",
        "customer_id-null",
        "email-null",
        "type-null",
        "kycs.kyc_flow_link-null",
        "kycs.status_breakdown-null",
        "row.currency-null",
    ],
)
def test_missing_or_null_required_field_is_invalid(demo_body, change):
    body = demo_body()
    change(body)
    with pytest.raises(InvalidCustomerData):
        parse(body)


@pytest.mark.parametrize(
    "change",
    [
        _set(("email",), 42),
        _set(("customer_id",), 12345),
        _set(("type",), ["individual"]),
        _set(("first_name",), {"given": "Ada"}),
        _set(("kycs", "status_breakdown"), {"currency": "usd", "payment_rails": "ach", "status": "pending"}),
        _set(("kycs", "status_breakdown", 0), "usd ach approved"),
        _set(("kycs", "status"), True),
        _set(("kycs", "sub_status"), 1),
        _set(("kycs", "kyc_flow_link"), 404),
        _set(("kycs", "status_breakdown", 0, "currency"), 840),
        _set(("address",), ["12 St James's Square", "London"]),
        _set(("address", "postal_code"), 12345),
        _set(("kycs",), [{"status": "approved"}]),
        _set(("kycs",), "approved"),
    ],
    ids=[
        "email-number",
        "customer_id-number",
        "type-list",
        "first_name-object",
        "status_breakdown-object",
        "row-string",
        "kycs.status-boolean",
        "kycs.sub_status-number",
        "kycs.kyc_flow_link-number",
        "row.currency-number",
        "address-list",
        "address.postal_code-number",
        "kycs-list",
        "kycs-string",
    ],
)
def test_wrong_json_type_is_invalid(demo_body, change):
    body = demo_body()
    change(body)
    with pytest.raises(InvalidCustomerData):
        parse(body)


@pytest.mark.parametrize("body", [[], [DEMO_CUSTOMERS[ADA]], "customer", None, 42, True])
def test_body_that_is_not_an_object_is_invalid(body):
    with pytest.raises(InvalidCustomerData):
        parse(body)


def test_customer_id_differing_from_the_requested_one_is_invalid(demo_body):
    with pytest.raises(InvalidCustomerData, match="differs"):
        parse(demo_body(ADA), customer_id=FALCON)


def test_customer_id_that_is_not_a_uuid_is_invalid(demo_body):
    body = demo_body()
    body["customer_id"] = "customer-42"
    with pytest.raises(InvalidCustomerData, match="not a UUID"):
        parse(body)


def test_customer_id_in_upper_case_is_the_same_customer(demo_body):
    body = demo_body()
    body["customer_id"] = str(ADA).upper()
    assert parse(body).customer_id == uuid.UUID(ADA)


def test_invalid_data_message_names_the_field_not_its_value(demo_body):
    body = demo_body()
    body["email"] = 4815162342
    with pytest.raises(InvalidCustomerData) as raised:
        parse(body)
    assert "email" in str(raised.value)
    assert "4815162342" not in str(raised.value)


# --- visible_address: shown only when KYC is approved -------------------------------------------


ADDRESS = {"street_line_1": "1 Main St", "city": "Springfield", "country": "US"}


@pytest.mark.parametrize(
    ("kycs_status", "address", "shown"),
    [
        ("approved", ADDRESS, True),
        ("approved", None, False),
        ("approved", {}, False),
        ("approved", {"city": None, "country": None}, False),
        ("approved", {"city": "", "country": ""}, False),
        ("pending", ADDRESS, False),
        ("rejected", ADDRESS, False),
        ("frozen", ADDRESS, False),
        (None, ADDRESS, False),
        ("kycs null", ADDRESS, False),
    ],
    ids=[
        "approved-with-address",
        "approved-null-address",
        "approved-empty-address",
        "approved-address-of-nulls",
        "approved-address-of-empty-strings",
        "pending-with-address-sent",
        "rejected-with-address-sent",
        "unrecognised-status-with-address-sent",
        "status-null-with-address-sent",
        "kycs-null-with-address-sent",
    ],
)
def test_visible_address_only_when_kyc_is_approved_and_address_has_content(
    demo_body, kycs_status, address, shown
):
    body = demo_body()
    body["address"] = address
    if kycs_status == "kycs null":
        body["kycs"] = None
    else:
        body["kycs"]["status"] = kycs_status
    customer = parse(body)
    if shown:
        assert customer.visible_address is customer.address
        assert customer.visible_address.lines == ["1 Main St", "Springfield", "United States (US)"]
    else:
        assert customer.visible_address is None


def test_pending_demo_customer_never_shows_the_address_align_sent(demo_body):
    demo_id = DemoId.RESUBMISSION_REQUIRED
    customer = parse(demo_body(demo_id), demo_id)
    assert customer.address is not None
    assert customer.visible_address is None


# --- display_name -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer_type", "names", "expected"),
    [
        ("individual", {"first_name": "Ada", "last_name": "Lovelace"}, "Ada Lovelace"),
        ("individual", {"first_name": "Ada"}, "Ada"),
        ("individual", {"last_name": "Lovelace"}, "Lovelace"),
        ("individual", {"first_name": "", "last_name": "Lovelace"}, "Lovelace"),
        ("individual", {"company_name": "Lovelace Analytics"}, "Lovelace Analytics"),
        ("corporate", {"company_name": "Falcon Trading FZ-LLC"}, "Falcon Trading FZ-LLC"),
        (
            "corporate",
            {"company_name": "Falcon Trading FZ-LLC", "first_name": "Omar", "last_name": "Haddad"},
            "Falcon Trading FZ-LLC",
        ),
        ("corporate", {"first_name": "Omar", "last_name": "Haddad"}, "Omar Haddad"),
        ("individual", {}, None),
        ("corporate", {}, None),
        ("individual", {"first_name": None, "last_name": None, "company_name": None}, None),
        ("individual", {"first_name": "", "last_name": ""}, None),
    ],
    ids=[
        "individual-first-and-last",
        "individual-first-only",
        "individual-last-only",
        "individual-empty-first",
        "individual-company-only",
        "corporate-company",
        "corporate-company-beats-person",
        "corporate-person-only",
        "individual-no-names",
        "corporate-no-names",
        "all-names-null",
        "all-names-empty",
    ],
)
def test_display_name(demo_body, customer_type, names, expected):
    body = demo_body()
    for key in ("first_name", "last_name", "company_name"):
        body.pop(key, None)
    body["type"] = customer_type
    body.update(names)
    assert parse(body).display_name == expected


# --- Address.lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "lines"),
    [
        (
            Address(
                street_line_1="12 St James's Square",
                city="London",
                state="Greater London",
                postal_code="SW1Y 4JH",
                country="GB",
            ),
            ["12 St James's Square", "London", "Greater London", "SW1Y 4JH", "United Kingdom (GB)"],
        ),
        (Address(city="Dubai", country="AE"), ["Dubai", "United Arab Emirates (AE)"]),
        (Address(postal_code="20457", country="DE"), ["20457", "Germany (DE)"]),
        (Address(street_line_1="Hafenstrasse 7", city="Hamburg"), ["Hafenstrasse 7", "Hamburg"]),
        (Address(state="Texas"), ["Texas"]),
        (Address(street_line_1="", city="", postal_code="", country="FR"), ["France (FR)"]),
        (Address(), []),
    ],
    ids=[
        "complete",
        "city-and-country",
        "postal-code-only",
        "no-country",
        "state-only",
        "empty-parts",
        "empty",
    ],
)
def test_address_lines_skip_missing_parts(address, lines):
    assert address.lines == lines


@pytest.mark.parametrize(
    "returned_id",
    [
        "+3f2a9c1e7b4d4e2a9f612c8d5e0b7e91",
        "3f2a9c1e7b4d4e2a9f612c8d5e0b7e91",
        "{3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91}",
        "urn:uuid:3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91",
        "3f2a9c1e_7b4d_4e2a_9f61_2c8d5e0b7e91",
    ],
)
def test_customer_id_that_is_not_a_hyphenated_uuid_is_invalid_even_if_it_decodes(demo_body, returned_id):
    body = demo_body()
    body["customer_id"] = returned_id
    with pytest.raises(InvalidCustomerData, match="customer_id is not a UUID"):
        parse(body)


def test_upper_case_customer_id_in_the_body_is_accepted(demo_body):
    body = demo_body()
    body["customer_id"] = body["customer_id"].upper()
    assert parse(body).customer_id == uuid.UUID(ADA)


def test_blank_address_parts_and_names_count_as_missing(demo_body):
    body = demo_body()
    body["address"] = {"street_line_1": "   ", "city": "\t", "country": " GB "}
    body["first_name"] = "  "
    customer = parse(body)
    assert customer.visible_address.lines == ["United Kingdom (GB)"]
    assert customer.display_name == "Lovelace"


def test_address_of_only_blank_parts_is_not_shown(demo_body):
    body = demo_body()
    body["address"] = {"street_line_1": " ", "postal_code": ""}
    assert parse(body).visible_address is None


# --- Lone surrogates: valid JSON, but not text (issue #10, finding 4) ---------------------------

# Every string the parser reads, as a path into Ada's body (which has each of them).
STRING_PATHS = [
    ("customer_id",),
    ("email",),
    ("type",),
    ("first_name",),
    ("last_name",),
    ("company_name",),
    *(("address", part) for part in ("street_line_1", "city", "state", "postal_code", "country")),
    ("kycs", "status"),
    ("kycs", "sub_status"),
    ("kycs", "kyc_flow_link"),
    *(("kycs", "status_breakdown", 0, key) for key in ("currency", "payment_rails", "status")),
]


# The first and last high and low surrogates (a list of literals reads to ruff as duplicates).
LONE_SURROGATES = [chr(code) for code in (0xD800, 0xDBFF, 0xDC00, 0xDFFF)]


@pytest.mark.parametrize("surrogate", LONE_SURROGATES, ids=lambda char: f"U+{ord(char):04X}")
@pytest.mark.parametrize("path", STRING_PATHS, ids=lambda path: ".".join(map(str, path)))
def test_lone_surrogate_in_any_string_read_is_invalid(demo_body, path, surrogate):
    body = demo_body()
    _set(path, f"x{surrogate}y")(body)
    with pytest.raises(InvalidCustomerData):
        parse(body)


def test_lone_surrogate_escaped_in_the_json_text_is_invalid(demo_body):
    """As Align would send it: the escape "\\ud800" on its own is valid JSON."""
    text = json.dumps(demo_body()).replace('"first_name": "Ada"', '"first_name": "x\\ud800y"')
    assert "\\ud800" in text
    with pytest.raises(InvalidCustomerData, match="first_name holds a lone surrogate"):
        parse(json.loads(text))


def test_surrogate_pair_escaped_in_the_json_text_is_one_character_and_valid(demo_body):
    text = json.dumps(demo_body()).replace('"first_name": "Ada"', '"first_name": "Ada \\ud83d\\ude00"')
    assert parse(json.loads(text)).first_name == "Ada \N{GRINNING FACE}"


def test_lone_surrogate_message_names_the_field_not_its_value(demo_body):
    body = demo_body()
    body["kycs"]["status"] = "appro\ud800ved"
    with pytest.raises(InvalidCustomerData) as raised:
        parse(body)
    assert str(raised.value) == "kycs.status holds a lone surrogate, which is not text"


def test_lone_surrogate_in_a_field_the_dashboard_never_reads_is_ignored(demo_body):
    body = demo_body()
    body["nickname"] = "x\ud800"
    body["kycs"]["provider\udfff"] = "acme"
    assert parse(body) == parse(demo_body())
