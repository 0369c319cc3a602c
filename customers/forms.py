"""The lookup form: staff paste whatever they have, and get a canonical customer ID back."""

import re
import unicodedata
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
UNREADABLE_CHARACTER = (
    "Not a customer ID: it contains %(character)s, which can't be part of one. "
    "Paste the customer's UUID, e.g. %(example)s."
)
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

# What chat apps, e-mail clients, spreadsheets and word processors add to a pasted ID and nobody
# types on purpose: invisible characters anywhere (zero-width space, non-joiner and joiner, word
# joiner, byte-order mark, soft hyphen, left-to-right and right-to-left marks), and at either end
# a full stop or comma from the sentence around it, or quotes and angle brackets around it.
INVISIBLE_CHARACTERS = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f"))
TRAILING_PUNCTUATION = ".,;:"
WRAPPERS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb", "<": ">"}
UUID_CHARACTERS = frozenset("0123456789abcdef-")


class UnreadableCharacter(ValueError):
    """A customer ID with a character in it that can't be part of one, named for the person who pasted it."""

    def __init__(self, character: str) -> None:
        super().__init__("not a UUID")
        self.character = character

    @property
    def shown(self) -> str:
        """Quoted, with its code point when it is not ASCII; "an invisible character (U+2062)" when unseen."""
        code = f"U+{ord(self.character):04X}"
        if unicodedata.category(self.character)[0] in {"C", "Z"}:
            return f"an invisible character ({code})"
        if self.character.isascii():
            return f"\u201c{self.character}\u201d"
        return f"\u201c{self.character}\u201d ({code})"


def clean_pasted(text: str) -> str:
    """The text without what pasting adds around an ID or an address (see INVISIBLE_CHARACTERS)."""
    candidate = text.translate(INVISIBLE_CHARACTERS).strip()
    while True:
        unwrapped = candidate.rstrip(TRAILING_PUNCTUATION).strip()
        if len(unwrapped) >= 2 and WRAPPERS.get(unwrapped[0]) == unwrapped[-1]:
            unwrapped = unwrapped[1:-1].strip()
        if unwrapped == candidate:
            return candidate
        candidate = unwrapped


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

    Accepts what pasting adds (clean_pasted), any letter case, `{braces}`, a `urn:uuid:` prefix,
    32 hex digits without hyphens, or an http(s) link or path whose last segment is the UUID. Two
    IDs pasted together are refused rather than guessed between. Raises ValueError otherwise, or
    UnreadableCharacter when an ID is there but for a character that can't be part of one.
    """
    candidate = clean_pasted(text)
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
        raise _unreadable_character(candidate) or ValueError("not a UUID")
    return uuid.UUID(candidate)


def _unreadable_character(candidate: str) -> UnreadableCharacter | None:
    """The first character that keeps an otherwise ID-shaped text from being a customer ID.

    ID-shaped: as long as an ID (32 or 36 characters), or an ID once such characters are left out.
    """
    odd = [char for char in candidate if char not in UUID_CHARACTERS]
    if not odd:
        return None
    rest = "".join(char for char in candidate if char in UUID_CHARACTERS)
    if len(candidate) in {32, 36} or CANONICAL_UUID.fullmatch(rest) or UNHYPHENATED_UUID.fullmatch(rest):
        return UnreadableCharacter(odd[0])
    return None


class CustomerIdField(forms.CharField):
    """A customer ID by today's rules, or an EmailQuery when the input is an e-mail address."""

    def to_python(self, value) -> uuid.UUID | EmailQuery | None:
        text = clean_pasted(super().to_python(value) or "")
        if not text:
            return None
        try:
            return parse_email(text)
        except ValueError:
            pass
        try:
            return parse_customer_reference(text)
        except UnreadableCharacter as error:
            raise forms.ValidationError(
                UNREADABLE_CHARACTER,
                code="invalid",
                params={"character": error.shown, "example": EXAMPLE_CUSTOMER_ID},
            ) from None
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
