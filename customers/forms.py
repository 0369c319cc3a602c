"""The lookup form: staff paste whatever they have, and get a canonical customer ID back."""

import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from customers.align.records import CANONICAL_UUID

EXAMPLE_CUSTOMER_ID = "3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91"
MAX_INPUT_CHARS = 2000
UNHYPHENATED_UUID = re.compile(r"[0-9a-f]{32}")
LINK_OR_PATH = re.compile(r"(?:https?://|/)", re.IGNORECASE)
NOT_A_CUSTOMER_ID = "Not a customer ID. Paste the customer's UUID, e.g. %(example)s."
EMPTY_INPUT = "Paste a customer ID first."
NOT_AN_ID_OR_EMAIL = (
    "Not a customer ID, nor a whole e-mail address (name@domain.example). "
    "Paste the customer's UUID, e.g. %(example)s, or their full e-mail address."
)
EMAIL_NOT_IN_LINKS = (
    "E-mail searches work only from the search field, so that an address never ends up in a link. "
    "Type the e-mail into the field and press Look up."
)
_EMAIL_VALIDATOR = EmailValidator()


@dataclass(frozen=True)
class EmailQuery:
    """A search by e-mail. `address` is what Align is asked for: the local part as typed, the
    domain lower-case and IDNA-encoded (Align's match is exact, and domains are case-blind)."""

    address: str

    def __repr__(self) -> str:  # an e-mail never reaches a traceback or a log through a repr
        return "EmailQuery(<hidden>)"

    def __str__(self) -> str:
        return "<e-mail>"


def parse_email(text: str) -> EmailQuery:
    """An e-mail address as Django's EmailValidator accepts it, normalised; ValueError otherwise."""
    candidate = text.strip()
    try:
        _EMAIL_VALIDATOR(candidate)
    except ValidationError:
        raise ValueError("not an e-mail address") from None
    local, domain = candidate.rsplit("@", 1)
    try:
        ascii_domain = domain.lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("the domain cannot be IDNA-encoded") from None
    return EmailQuery(f"{local}@{ascii_domain}")


def parse_customer_reference(text: str) -> uuid.UUID:
    """Read a customer ID as staff paste it: e-mails, spreadsheets, URNs and dashboard links.

    Accepts surrounding whitespace, any letter case, `{braces}`, a `urn:uuid:` prefix, 32 hex
    digits without hyphens, or an http(s) link or path whose last segment is the UUID. Two IDs
    pasted together are refused rather than guessed between. Raises ValueError otherwise.
    """
    candidate = text.strip()
    if len(candidate) > MAX_INPUT_CHARS:
        raise ValueError("too long to be a customer ID")
    if any(char.isspace() for char in candidate):
        raise ValueError("more than one word")
    if LINK_OR_PATH.match(candidate):
        segments = [segment for segment in urlsplit(candidate).path.split("/") if segment]
        candidate = segments[-1] if segments else ""
    candidate = candidate.lower()
    candidate = candidate.removeprefix("urn:uuid:")
    if candidate.startswith("{") and candidate.endswith("}"):
        candidate = candidate[1:-1]
    if not (CANONICAL_UUID.fullmatch(candidate) or UNHYPHENATED_UUID.fullmatch(candidate)):
        raise ValueError("not a UUID")
    return uuid.UUID(candidate)


class CustomerIdField(forms.CharField):
    """A customer ID by today's rules, or an EmailQuery when the input is an e-mail address."""

    def to_python(self, value) -> uuid.UUID | EmailQuery | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_email(text)
        except ValueError:
            pass
        try:
            return parse_customer_reference(text)
        except ValueError:
            message = NOT_AN_ID_OR_EMAIL if "@" in text else NOT_A_CUSTOMER_ID
            raise forms.ValidationError(
                message, code="invalid", params={"example": EXAMPLE_CUSTOMER_ID}
            ) from None


class CustomerLookupForm(forms.Form):
    customer_id = CustomerIdField(
        label="Customer ID or e-mail",
        strip=True,
        error_messages={"required": EMPTY_INPUT},
        widget=forms.TextInput(
            attrs={
                "placeholder": "Paste a UUID, a link ending in one, or an e-mail address",
                "autocomplete": "off",
                "spellcheck": "false",
                "autocapitalize": "off",
                "inputmode": "text",
            }
        ),
    )
