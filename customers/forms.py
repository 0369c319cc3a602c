"""The lookup form: staff paste whatever they have, and get a canonical customer ID back."""

import re
import uuid
from urllib.parse import urlsplit

from django import forms

from customers.records import CANONICAL_UUID

EXAMPLE_CUSTOMER_ID = "3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91"
MAX_INPUT_CHARS = 2000
UNHYPHENATED_UUID = re.compile(r"[0-9a-f]{32}")
LINK_OR_PATH = re.compile(r"(?:https?://|/)", re.IGNORECASE)
NOT_A_CUSTOMER_ID = "Not a customer ID. Paste the customer's UUID, e.g. %(example)s."
EMPTY_INPUT = "Paste a customer ID first."


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
    def to_python(self, value) -> uuid.UUID | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_customer_reference(text)
        except ValueError:
            raise forms.ValidationError(
                NOT_A_CUSTOMER_ID, code="invalid", params={"example": EXAMPLE_CUSTOMER_ID}
            ) from None


class CustomerLookupForm(forms.Form):
    customer_id = CustomerIdField(
        label="Customer ID",
        strip=True,
        error_messages={"required": EMPTY_INPUT},
        widget=forms.TextInput(
            attrs={
                "placeholder": "Paste a UUID, a urn:uuid:…, or a link ending in one",
                "autocomplete": "off",
                "spellcheck": "false",
                "autocapitalize": "off",
                "inputmode": "text",
            }
        ),
    )
