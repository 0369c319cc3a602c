"""What the Align Customers API says about a customer, parsed once, per the contract.

The contract (shared align-customers-openapi.json, `GetCustomerResponseSuccessModel`) is the
truth about names, enums and nullability. Parsing is strict about what the dashboard relies on
(required fields, JSON types) and forgiving about what Align grows over time: unknown fields are
ignored, and an enum value the contract does not list is kept as the raw string (so staff still
see the rest of the customer) and logged as a warning.
"""

import enum
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from customers.align import addresses

logger = logging.getLogger(__name__)

EnumT = TypeVar("EnumT", bound=enum.StrEnum)
# The contract's `format: uuid`: hyphenated hex. uuid.UUID alone would also take braces, a URN
# prefix, missing hyphens or a leading "+".
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# JSON may escape half of a surrogate pair on its own ("\ud800"): valid JSON, but not text. json
# joins every proper pair into one code point, so any surrogate left in a string is a lone one,
# which cannot be encoded to UTF-8: the page or the audit row holding it would fail to be written.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidCustomerData(ValueError):
    """The body does not fit the contract; the message names the field, never its value."""


class CustomerType(enum.StrEnum):
    INDIVIDUAL = "individual"
    CORPORATE = "corporate"


class KycStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class KycSubStatus(enum.StrEnum):
    FORM_STARTED = "kyc_form_submission_started"
    FORM_ACCEPTED = "kyc_form_submission_accepted"
    RESUBMISSION_REQUIRED = "kyc_form_resubmission_required"


class Currency(enum.StrEnum):
    AED = "aed"
    EUR = "eur"
    USD = "usd"


class PaymentRail(enum.StrEnum):
    UAEFTS = "uaefts"
    SEPA = "sepa"
    ACH = "ach"
    WIRE = "wire"


class RailStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"


@dataclass(frozen=True)
class Address:
    street_line_1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None

    @property
    def lines(self) -> list[str]:
        """The address in its country's layout (see customers.align.addresses); empty when nothing is sent."""
        return addresses.address_lines(self)


@dataclass(frozen=True)
class StatusBreakdownRow:
    currency: Currency | str
    payment_rails: PaymentRail | str
    status: RailStatus | str


@dataclass(frozen=True)
class Kyc:
    status: KycStatus | str | None
    sub_status: KycSubStatus | str | None
    kyc_flow_link: str
    status_breakdown: tuple[StatusBreakdownRow, ...]


@dataclass(frozen=True)
class Customer:
    customer_id: uuid.UUID
    email: str
    type: CustomerType | str
    first_name: str | None
    last_name: str | None
    company_name: str | None
    address: Address | None
    kycs: Kyc | None

    @property
    def is_kyc_approved(self) -> bool:
        return self.kycs is not None and self.kycs.status == KycStatus.APPROVED

    @property
    def visible_address(self) -> Address | None:
        """The address, only when KYC is approved: the one place the address rule lives."""
        if self.is_kyc_approved and self.address is not None and self.address.lines:
            return self.address
        return None

    @property
    def display_name(self) -> str | None:
        individual_name = " ".join(_present(self.first_name, self.last_name))
        company_name = " ".join(_present(self.company_name))
        if self.type == CustomerType.CORPORATE:
            return company_name or individual_name or None
        return individual_name or company_name or None

    @classmethod
    def from_api(cls, data: Any, *, customer_id: uuid.UUID | None) -> "Customer":
        """Parse a response body for the customer that was asked for.

        `customer_id=None` for an item of a search by e-mail, where no ID was asked for.
        """
        body = _require_object(data, "the response body")
        returned_id = _require_string(body, "customer_id")
        if not CANONICAL_UUID.fullmatch(returned_id):
            raise InvalidCustomerData("customer_id is not a UUID")
        parsed_id = uuid.UUID(returned_id)
        if customer_id is not None and parsed_id != customer_id:
            raise InvalidCustomerData("customer_id differs from the customer that was asked for")
        return cls(
            customer_id=parsed_id,
            email=_require_string(body, "email"),
            type=_enum(CustomerType, _require_string(body, "type"), "type", parsed_id),
            first_name=_optional_string(body, "first_name"),
            last_name=_optional_string(body, "last_name"),
            company_name=_optional_string(body, "company_name"),
            address=_parse_address(body.get("address")),
            kycs=_parse_kyc(body.get("kycs"), parsed_id),
        )


def _present(*parts: str | None) -> list[str]:
    """The parts that carry text, stripped of surrounding whitespace."""
    return [part.strip() for part in parts if part and part.strip()]


def _parse_address(value: Any) -> Address | None:
    if value is None:
        return None
    address = _require_object(value, "address")
    return Address(
        street_line_1=_optional_string(address, "street_line_1", "address."),
        city=_optional_string(address, "city", "address."),
        state=_optional_string(address, "state", "address."),
        postal_code=_optional_string(address, "postal_code", "address."),
        country=_optional_string(address, "country", "address."),
    )


def _parse_kyc(value: Any, customer_id: uuid.UUID) -> Kyc | None:
    if value is None:
        return None
    kyc = _require_object(value, "kycs")
    if "status" not in kyc:
        raise InvalidCustomerData("kycs.status is missing")
    status = kyc["status"]
    if status is not None:
        status = _enum(KycStatus, _string_value(status, "kycs.status"), "kycs.status", customer_id)
    sub_status = _optional_string(kyc, "sub_status", "kycs.")
    if sub_status is not None:
        sub_status = _enum(KycSubStatus, sub_status, "kycs.sub_status", customer_id)
    if "status_breakdown" not in kyc:
        raise InvalidCustomerData("kycs.status_breakdown is missing")
    rows = kyc["status_breakdown"]
    if not isinstance(rows, list):
        raise InvalidCustomerData("kycs.status_breakdown is not an array")
    return Kyc(
        status=status,
        sub_status=sub_status,
        kyc_flow_link=_require_string(kyc, "kyc_flow_link", "kycs."),
        status_breakdown=tuple(_parse_breakdown_row(row, customer_id) for row in rows),
    )


def _parse_breakdown_row(value: Any, customer_id: uuid.UUID) -> StatusBreakdownRow:
    row = _require_object(value, "kycs.status_breakdown[]")
    prefix = "kycs.status_breakdown[]."
    return StatusBreakdownRow(
        currency=_enum(Currency, _require_string(row, "currency", prefix), prefix + "currency", customer_id),
        payment_rails=_enum(
            PaymentRail, _require_string(row, "payment_rails", prefix), prefix + "payment_rails", customer_id
        ),
        status=_enum(RailStatus, _require_string(row, "status", prefix), prefix + "status", customer_id),
    )


# Enum values are short codes, never personal data, so the unrecognised value itself is logged
# (capped in length and stripped of anything but safe characters, to keep log lines honest).
_LOGGABLE = re.compile(r"[^A-Za-z0-9_.-]")


def _enum(kind: type[EnumT], value: str, field: str, customer_id: uuid.UUID) -> EnumT | str:
    try:
        return kind(value)
    except ValueError:
        logger.warning(
            "Unrecognised %s value %r for customer_id=%s; shown as sent",
            field,
            _LOGGABLE.sub("?", value)[:40],
            customer_id,
        )
        return value


def _require_object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidCustomerData(f"{field} is not a JSON object")
    return value


def _string_value(value: Any, field: str) -> str:
    """Every string the dashboard reads passes here; unknown fields and object keys are never read."""
    if not isinstance(value, str):
        raise InvalidCustomerData(f"{field} is not a string")
    if LONE_SURROGATE.search(value):
        raise InvalidCustomerData(f"{field} holds a lone surrogate, which is not text")
    return value


def _require_string(obj: Mapping[str, Any], key: str, prefix: str = "") -> str:
    if key not in obj or obj[key] is None:
        raise InvalidCustomerData(f"{prefix}{key} is missing or null")
    return _string_value(obj[key], prefix + key)


def _optional_string(obj: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    """An optional string; null is read as absent, since it carries no more meaning here."""
    value = obj.get(key)
    if value is None:
        return None
    return _string_value(value, prefix + key)
