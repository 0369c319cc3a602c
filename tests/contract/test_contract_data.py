"""Bodies generated from the contract: every valid one is parsed and shown, every broken one refused.

The bodies come from `GetCustomerResponseSuccessModel` in tests/contract/align-customers-openapi.json
(a copy of the shared contract, so the suite needs nothing outside the repository) through
hypothesis-jsonschema. Broken bodies are valid ones with one field removed or given a value of
the wrong JSON type.
"""

import copy
import json
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import responses
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils.html import escape
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains, urls
from hypothesis_jsonschema import from_schema

from customers.align.records import Customer, InvalidCustomerData
from customers.models import AuditEvent
from customers.services.decisions import web_link

CONTRACT_NAME = "align-customers-openapi.json"
CONTRACT = Path(__file__).resolve().parent / CONTRACT_NAME
CUSTOMER_OPERATION = ("paths", "/v0/customers/{customer_id}", "get")
RESPONSE_MODEL_REF = "#/components/schemas/GetCustomerResponseSuccessModel"
UNEXPECTED_RESPONSE = "Unexpected response from Align"

# No explain phase: with bodies this slow to generate it doubles the time a failure takes to report.
PROPERTY = settings(
    deadline=None,
    phases=[phase for phase in Phase if phase is not Phase.explain],
    suppress_health_check=[HealthCheck.too_slow],
)
PAGE_PROPERTY = settings(
    PROPERTY, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

pytestmark = pytest.mark.django_db


# --- The contract, as JSON Schema -----------------------------------------------------------


def resolve_refs(node: Any, document: dict) -> Any:
    """Replace every local `$ref` ("#/components/...") with a copy of the schema it points at."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = document
            for key in node["$ref"].removeprefix("#/").split("/"):
                target = target[key.replace("~1", "/").replace("~0", "~")]
            return resolve_refs(target, document)
        return {key: resolve_refs(value, document) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_refs(item, document) for item in node]
    return node


def openapi_to_json_schema(schema: dict) -> dict:
    """Translate OpenAPI 3.0's `nullable: true` into JSON Schema, in this schema and every nested one.

    `{"type": T, "nullable": true}` becomes `{"type": [T, "null"]}`, and an `enum` also gains None:
    JSON Schema checks `enum` on its own, so without it a nullable enum would still refuse null.
    """
    schema = dict(schema)
    if schema.pop("nullable", False):
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    if "properties" in schema:
        schema["properties"] = {
            name: openapi_to_json_schema(sub) for name, sub in schema["properties"].items()
        }
    for keyword in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(keyword), dict):
            schema[keyword] = openapi_to_json_schema(schema[keyword])
    for keyword in ("allOf", "anyOf", "oneOf"):
        if keyword in schema:
            schema[keyword] = [openapi_to_json_schema(sub) for sub in schema[keyword]]
    return schema


def fully_populated(schema: dict) -> dict:
    """The OpenAPI schema narrowed to objects with every listed property, none null, and no others.

    Every body it allows is valid; it only leaves out choices, so the result is plain JSON Schema.
    """
    schema = {key: value for key, value in schema.items() if key != "nullable"}
    if "properties" in schema:
        schema["properties"] = {name: fully_populated(sub) for name, sub in schema["properties"].items()}
        schema["required"] = list(schema["properties"])
        schema["additionalProperties"] = False
    if isinstance(schema.get("items"), dict):
        schema["items"] = fully_populated(schema["items"])
    return schema


def lookup_answer_schema(document: dict) -> dict:
    """The schema of a 200 answer to the customer lookup, as the contract writes it."""
    operation = document
    for key in CUSTOMER_OPERATION:
        operation = operation[key]
    return operation["responses"]["200"]["content"]["application/json"]["schema"]


CONTRACT_DOCUMENT = json.loads(CONTRACT.read_text())
RESPONSE_MODEL = resolve_refs(lookup_answer_schema(CONTRACT_DOCUMENT), CONTRACT_DOCUMENT)
RESPONSE_SCHEMA = openapi_to_json_schema(RESPONSE_MODEL)
# Valid bodies that always carry kycs, an address and every optional string, so the KYC and
# address rules are reached often: the contract as written mostly leaves them out or null. No
# unknown fields here (generating them next to every known one is slow); RESPONSE_SCHEMA has them.
POPULATED_SCHEMA = fully_populated(RESPONSE_MODEL)
ADDRESS_PARTS = tuple(RESPONSE_MODEL["properties"]["address"]["properties"])
BREAKDOWN_ROW_FIELDS = tuple(
    RESPONSE_MODEL["properties"]["kycs"]["properties"]["status_breakdown"]["items"]["required"]
)


# --- Strategies -----------------------------------------------------------------------------

# hypothesis-jsonschema has no generator for `format: uuid`; it checks what this one draws against
# jsonschema's format checker. Hex digits may come in either case (RFC 9562).
CUSTOM_FORMATS = {
    "uuid": st.uuids().map(str) | st.uuids().map(lambda value: str(value).upper()),
}

# Any string fits kyc_flow_link; these make web links and near-misses common, not one in a million.
FLOW_LINKS = st.one_of(
    st.builds(
        "{}{}{}".format,
        st.sampled_from(
            ["https://", "http://", "HtTpS://", "http:/", "http:", "//", "javascript:", "ftp://", " https://"]
        ),
        domains() | st.text(max_size=12),
        st.text(max_size=12),
    ),
    urls(),
    st.text(),
)


def with_flow_link(body: dict, link: str) -> dict:
    """The body with `link` as its KYC flow link, when it has a KYC at all."""
    if isinstance(body.get("kycs"), dict):
        return {**body, "kycs": {**body["kycs"], "kyc_flow_link": link}}
    return body


VALID_BODIES = st.builds(
    with_flow_link,
    from_schema(POPULATED_SCHEMA, custom_formats=CUSTOM_FORMATS)
    | from_schema(RESPONSE_SCHEMA, custom_formats=CUSTOM_FORMATS),
    FLOW_LINKS,
)


class Field(NamedTuple):
    """A field the dashboard reads, and what the contract and the parser allow for it."""

    path: tuple[str, ...]  # ROW stands for the index of one breakdown row
    json_type: str
    required: bool
    null_allowed: bool  # contract says nullable, or the parser reads null as absent


ROW = "<row>"
# Parts of a populated body, for a field whose KYC, address or breakdown row the body lacks.
ROOM = {
    "kycs": from_schema(POPULATED_SCHEMA["properties"]["kycs"], custom_formats=CUSTOM_FORMATS),
    "address": from_schema(POPULATED_SCHEMA["properties"]["address"], custom_formats=CUSTOM_FORMATS),
    ROW: from_schema(POPULATED_SCHEMA["properties"]["kycs"]["properties"]["status_breakdown"]["items"]),
}
FIELDS = (
    Field(("customer_id",), "string", required=True, null_allowed=False),
    Field(("email",), "string", required=True, null_allowed=False),
    Field(("type",), "string", required=True, null_allowed=False),
    Field(("first_name",), "string", required=False, null_allowed=True),
    Field(("last_name",), "string", required=False, null_allowed=True),
    Field(("company_name",), "string", required=False, null_allowed=True),
    Field(("address",), "object", required=False, null_allowed=True),
    *(Field(("address", part), "string", required=False, null_allowed=True) for part in ADDRESS_PARTS),
    Field(("kycs",), "object", required=False, null_allowed=True),
    Field(("kycs", "status"), "string", required=True, null_allowed=True),
    Field(("kycs", "sub_status"), "string", required=False, null_allowed=True),
    Field(("kycs", "kyc_flow_link"), "string", required=True, null_allowed=False),
    Field(("kycs", "status_breakdown"), "array", required=True, null_allowed=False),
    Field(("kycs", "status_breakdown", ROW), "object", required=False, null_allowed=False),
    *(
        Field(("kycs", "status_breakdown", ROW, key), "string", required=True, null_allowed=False)
        for key in BREAKDOWN_ROW_FIELDS
    ),
)
OPTIONAL_STRINGS = tuple(field for field in FIELDS if field.json_type == "string" and not field.required)

VALUES_OF_TYPE = {
    "string": st.text(max_size=8),
    "number": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "array": st.lists(st.text(max_size=8), max_size=3),
    "object": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    "null": st.none(),
}


def holder(body: dict, parents) -> Any:
    """The object or array that holds a field, reached from the body through `parents`."""
    for part in parents:
        body = body[part]
    return body


def wrong_types(field: Field) -> list[str]:
    return [
        json_type
        for json_type in VALUES_OF_TYPE
        if json_type != field.json_type and not (json_type == "null" and field.null_allowed)
    ]


class Mutated(NamedTuple):
    customer_id: uuid.UUID  # the customer asked for: the one in the body before it was broken
    body: dict
    mutation: str


def make_room(draw, body: dict, field: Field) -> tuple[list, Any]:
    """The parents and key of `field` in `body`, adding a KYC, an address or a row it lacks."""
    *parents, key = field.path
    if parents and not isinstance(body.get(parents[0]), dict):
        body[parents[0]] = draw(ROOM[parents[0]])
    if ROW in field.path:
        rows = body["kycs"]["status_breakdown"]
        if not rows:
            rows.append(draw(ROOM[ROW]))
        index = draw(st.integers(0, len(rows) - 1))
        parents = [index if part == ROW else part for part in parents]
        key = index if key == ROW else key
    return parents, key


@st.composite
def mutated_bodies(draw, field: Field) -> Mutated:
    """A valid body with `field` removed (if required) or given a value of the wrong JSON type."""
    body = copy.deepcopy(draw(VALID_BODIES))
    customer_id = uuid.UUID(body["customer_id"])
    parents, key = make_room(draw, body, field)
    target = holder(body, parents)
    change = draw(st.sampled_from((["removed"] if field.required else []) + wrong_types(field)))
    if change == "removed":
        del target[key]
    else:
        target[key] = draw(VALUES_OF_TYPE[change])
    where = ".".join(str(part) for part in [*parents, key])
    return Mutated(customer_id, body, f"{where}: {change}")


# --- What a body should show, read off the raw JSON -----------------------------------------


def address_is_shown(body: dict) -> bool:
    kycs, address = body.get("kycs"), body.get("address")
    approved = isinstance(kycs, dict) and kycs.get("status") == "approved"
    return approved and isinstance(address, dict) and any(address.get(part) for part in ADDRESS_PARTS)


def flow_link(body: dict) -> str | None:
    kycs = body.get("kycs")
    return kycs["kyc_flow_link"] if isinstance(kycs, dict) else None


def is_http_or_https(link: str) -> bool:
    return link.lower().startswith(("http://", "https://"))


def detail_url(customer_id: uuid.UUID) -> str:
    return reverse("customers:detail", kwargs={"customer_ref": str(customer_id)})


def look_up(client, customer_url, customer_id: uuid.UUID, body, headers: dict[str, str]) -> tuple[int, str]:
    """Status and HTML of the customer's page while Align answers the lookup with `body`."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as align:
        align.get(customer_url(customer_id), json=body)
        response = client.get(detail_url(customer_id), headers=headers)
    html = response.content.decode()
    if headers:
        assert "<html" not in html, "an htmx request got more than the fragment"
    else:
        assert html.startswith("<!doctype html>"), "a plain request did not get the full page"
    return response.status_code, html


# --- The contract copy and its translation --------------------------------------------------


def test_contract_copy_matches_the_shared_contract():
    shared = django_settings.BASE_DIR.parent / "shared" / CONTRACT_NAME
    if not shared.exists():
        pytest.skip(f"no shared contract at {shared}")
    assert CONTRACT.read_bytes() == shared.read_bytes(), f"copy {shared} over {CONTRACT}"


def test_response_schema_is_the_customer_model_with_nothing_left_to_resolve():
    assert lookup_answer_schema(CONTRACT_DOCUMENT) == {"$ref": RESPONSE_MODEL_REF}
    assert "$ref" not in json.dumps(RESPONSE_SCHEMA)
    assert "nullable" not in json.dumps(RESPONSE_SCHEMA)
    assert RESPONSE_SCHEMA["required"] == ["customer_id", "email", "type"]
    assert RESPONSE_SCHEMA["properties"]["kycs"]["type"] == ["object", "null"]


def test_nullable_becomes_a_null_type_and_a_null_enum_value_at_every_depth():
    schema = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "nullable": True, "enum": ["on", "off"]},
            "rows": {"type": "array", "items": {"type": "object", "nullable": True}},
            "name": {"type": "string", "nullable": False},
        },
    }
    assert openapi_to_json_schema(schema) == {
        "type": "object",
        "properties": {
            "status": {"type": ["string", "null"], "enum": ["on", "off", None]},
            "rows": {"type": "array", "items": {"type": ["object", "null"]}},
            "name": {"type": "string"},
        },
    }


# --- Valid bodies ---------------------------------------------------------------------------


@settings(PROPERTY, max_examples=100)
@given(body=VALID_BODIES)
def test_every_valid_body_parses(body):
    customer = Customer.from_api(body, customer_id=uuid.UUID(body["customer_id"]))
    assert customer.customer_id == uuid.UUID(body["customer_id"])
    assert customer.email == body["email"]
    assert (customer.visible_address is not None) == address_is_shown(body)


@settings(PROPERTY, max_examples=30)
@given(
    body=from_schema(POPULATED_SCHEMA, custom_formats=CUSTOM_FORMATS),
    nulls=st.lists(st.booleans(), min_size=len(OPTIONAL_STRINGS), max_size=len(OPTIONAL_STRINGS)),
)
def test_null_for_an_optional_string_is_read_as_absent(body, nulls):
    nulled = [field for field, null in zip(OPTIONAL_STRINGS, nulls, strict=True) if null]
    for field in nulled:
        *parents, key = field.path
        holder(body, parents)[key] = None
    customer = Customer.from_api(body, customer_id=uuid.UUID(body["customer_id"]))
    for field in nulled:
        value = customer
        for part in field.path:
            value = getattr(value, part)
        assert value is None, field.path


@settings(PROPERTY, max_examples=100)
@given(link=FLOW_LINKS)
def test_only_http_and_https_flow_links_pass_as_web_links(link):
    if web_link(link) is not None:
        assert is_http_or_https(link)


@settings(PAGE_PROPERTY, max_examples=50)
@given(body=VALID_BODIES, htmx=st.booleans())
def test_page_shows_every_valid_body_with_the_address_and_link_rules(
    staff_client, customer_url, htmx_headers, body, htmx
):
    customer_id = uuid.UUID(body["customer_id"])
    status, html = look_up(staff_client, customer_url, customer_id, body, htmx_headers if htmx else {})
    assert status == 200
    assert escape(body["email"]) in html
    shown = address_is_shown(body)
    event(f"address shown: {shown}")  # see them with --hypothesis-show-statistics
    assert ("<address" in html) == shown
    link = flow_link(body)
    event(f"flow link: {'none' if link is None else 'web link' if web_link(link) else 'inert'}")
    if link is not None and web_link(link) is not None:
        assert is_http_or_https(link)
        assert f'<a id="kyc-flow-link" class="kyc-link-url" href="{escape(link)}"' in html
    else:
        assert 'id="kyc-flow-link"' not in html


# --- Broken bodies --------------------------------------------------------------------------


# One case per field, so each is broken every run: drawn from one list, the first few dominate.
each_field = pytest.mark.parametrize("field", FIELDS, ids=lambda field: ".".join(field.path))


@each_field
@settings(PROPERTY, max_examples=6)
@given(data=st.data())
def test_every_mutated_body_is_refused_as_invalid_customer_data(field, data):
    mutated = data.draw(mutated_bodies(field))
    with pytest.raises(InvalidCustomerData):
        Customer.from_api(mutated.body, customer_id=mutated.customer_id)


@each_field
@settings(PAGE_PROPERTY, max_examples=3)
@given(data=st.data(), htmx=st.booleans())
def test_page_answers_502_unexpected_response_for_every_mutated_body(
    staff_client, customer_url, htmx_headers, field, data, htmx
):
    mutated = data.draw(mutated_bodies(field))
    status, html = look_up(
        staff_client, customer_url, mutated.customer_id, mutated.body, htmx_headers if htmx else {}
    )
    assert status == 502
    assert UNEXPECTED_RESPONSE in html


# --- Lone surrogates (issue #10, finding 4) -------------------------------------------------

STRING_FIELDS = tuple(field for field in FIELDS if field.json_type == "string")
# Half of a surrogate pair on its own: JSON escapes it as "\ud800" (valid JSON), but it is not
# text. st.text() never draws one, so valid bodies stay valid.
LONE_SURROGATE_STRINGS = st.builds(
    "{}{}{}".format, st.text(max_size=8), st.integers(0xD800, 0xDFFF).map(chr), st.text(max_size=8)
)


@st.composite
def bodies_with_a_lone_surrogate(draw, field: Field) -> Mutated:
    """A valid body whose string `field` holds a lone surrogate somewhere."""
    body = copy.deepcopy(draw(VALID_BODIES))
    customer_id = uuid.UUID(body["customer_id"])
    parents, key = make_room(draw, body, field)
    holder(body, parents)[key] = draw(LONE_SURROGATE_STRINGS)
    return Mutated(customer_id, body, ".".join(str(part) for part in [*parents, key]) + ": lone surrogate")


each_string_field = pytest.mark.parametrize("field", STRING_FIELDS, ids=lambda field: ".".join(field.path))


@each_string_field
@settings(PROPERTY, max_examples=6)
@given(data=st.data())
def test_every_body_with_a_lone_surrogate_is_refused_as_invalid_customer_data(field, data):
    mutated = data.draw(bodies_with_a_lone_surrogate(field))
    with pytest.raises(InvalidCustomerData):
        Customer.from_api(mutated.body, customer_id=mutated.customer_id)


@each_string_field
@settings(PAGE_PROPERTY, max_examples=3)
@given(data=st.data(), htmx=st.booleans())
def test_page_answers_502_for_every_body_with_a_lone_surrogate_and_records_it(
    staff_client, customer_url, htmx_headers, field, data, htmx
):
    mutated = data.draw(bodies_with_a_lone_surrogate(field))
    status, html = look_up(
        staff_client, customer_url, mutated.customer_id, mutated.body, htmx_headers if htmx else {}
    )
    assert status == 502
    assert UNEXPECTED_RESPONSE in html
    assert AuditEvent.objects.latest("id").outcome == AuditEvent.Outcome.INVALID_RESPONSE


# --- KYC links: printable ASCII only (issue #10, finding 7) ---------------------------------

# Bidi embeddings, overrides and isolates; then zero-width and invisible marks and spaces.
BIDI_AND_INVISIBLE = st.sampled_from(
    [
        *("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"),
        *("\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u061c", "\u2060", "\ufeff", "\u00a0", "\u00ad"),
    ]
)


@settings(PROPERTY, max_examples=100)
@given(link=FLOW_LINKS)
def test_every_web_link_is_printable_ascii(link):
    if web_link(link) is not None:
        assert all(0x21 <= ord(char) <= 0x7E for char in link)


@settings(PROPERTY, max_examples=100)
@given(link=urls(), char=BIDI_AND_INVISIBLE, data=st.data())
def test_a_bidi_or_invisible_character_anywhere_in_a_web_link_makes_it_no_link(link, char, data):
    position = data.draw(st.integers(0, len(link)))
    assert web_link(link[:position] + char + link[position:]) is None
