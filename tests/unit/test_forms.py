"""Reading a customer ID the way staff paste it, and the lookup form built on that."""

import uuid

import pytest

from customers.forms import (
    EXAMPLE_CUSTOMER_ID,
    NOT_AN_ID_OR_EMAIL,
    CustomerLookupForm,
    EmailQuery,
    parse_customer_reference,
    parse_email,
)

CANONICAL = "3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91"
OTHER = "8c4b1d2e-5f6a-4b7c-8d9e-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    "text",
    [
        CANONICAL,
        f"  {CANONICAL}  ",
        f"\n{CANONICAL}\n",
        f"\t{CANONICAL}\r\n",
        CANONICAL.upper(),
        "3F2A9C1E-7b4d-4E2A-9f61-2C8D5E0B7E91",
        f"{{{CANONICAL}}}",
        f"{{{CANONICAL.upper()}}}",
        f"urn:uuid:{CANONICAL}",
        f"URN:UUID:{CANONICAL}",
        f"Urn:Uuid:{CANONICAL.upper()}",
        CANONICAL.replace("-", ""),
        CANONICAL.replace("-", "").upper(),
        f"https://dashboard.example/customers/{CANONICAL}",
        f"https://dashboard.example/customers/{CANONICAL}/",
        f"https://dashboard.example/customers/{CANONICAL}/?tab=kyc#breakdown",
        f"https://dashboard.example/customers/{CANONICAL}?tab=kyc",
        f"http://localhost:8000/customers/{CANONICAL.upper()}/",
        f"  https://dashboard.example/customers/{CANONICAL}/\n",
        f"/customers/{CANONICAL}/",
    ],
    ids=[
        "plain",
        "spaces",
        "newlines",
        "tab-and-crlf",
        "upper-case",
        "mixed-case",
        "braces",
        "braces-upper-case",
        "urn",
        "urn-upper-case",
        "urn-mixed-case",
        "32-hex-digits",
        "32-hex-digits-upper-case",
        "url",
        "url-trailing-slash",
        "url-query-and-fragment",
        "url-query-no-slash",
        "http-localhost-url",
        "url-with-whitespace",
        "dashboard-path",
    ],
)
def test_parse_customer_reference_gives_the_canonical_uuid(text):
    customer_id = parse_customer_reference(text)
    assert isinstance(customer_id, uuid.UUID)
    assert str(customer_id) == CANONICAL


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "3f2a9c1e-7b4d-4e2a-9f61",
        CANONICAL[:-1],
        CANONICAL + "0",
        "0" + CANONICAL,
        CANONICAL.replace("f", "g", 1),
        CANONICAL.replace("-", "_"),
        CANONICAL.replace("-", " "),
        "https://dashboard.example/customers/",
        "https://dashboard.example/customers/ada-lovelace/",
        f"https://dashboard.example/customers/{CANONICAL}/kyc",
        f"https://dashboard.example/?customer={CANONICAL}",
        f"https://dashboard.example/#{CANONICAL}",
        CANONICAL + OTHER,
        f"{CANONICAL} {OTHER}",
        f"{CANONICAL},{OTHER}",
        f"{CANONICAL}\n{OTHER}",
        f"urn:uuid:urn:uuid:{CANONICAL}",
        f"{{{CANONICAL}",
        f"{{{{{CANONICAL}}}}}",
        " " * 10 + "a" * 2001,
        f"https://dashboard.example/{'x' * 2000}/{CANONICAL}",
        "<script>alert(1)</script>",
        f"<script>alert('{CANONICAL}')</script>",
        "' OR 1=1 --",
        f"{CANONICAL}'; DROP TABLE customers; --",
        "\x00" * 36,
        "\uff13f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91",
        f"{CANONICAL}/{OTHER}",
        f"{OTHER}\nhttps://dashboard.example/customers/{CANONICAL}/",
        "3f2a9c1e7b4d-4e2a-9f61-2c8d5e0b7e91",
        "3f2a9c1e-7b4d4e2a9f612c8d5e0b7e91",
    ],
    ids=[
        "empty",
        "only-whitespace",
        "too-short",
        "35-chars",
        "37-chars",
        "37-chars-leading",
        "non-hex-letter",
        "underscores",
        "spaces-inside",
        "url-without-uuid",
        "url-last-segment-not-uuid",
        "url-uuid-not-last-segment",
        "url-uuid-in-query",
        "url-uuid-in-fragment",
        "two-uuids-concatenated",
        "two-uuids-space",
        "two-uuids-comma",
        "two-uuids-newline",
        "urn-prefix-twice",
        "unbalanced-brace",
        "double-braces",
        "over-2000-chars",
        "url-over-2000-chars-ending-in-uuid",
        "html",
        "html-around-uuid",
        "sql",
        "sql-after-uuid",
        "nul-characters",
        "full-width-digit",
        "two-ids-joined-by-a-slash",
        "an-id-then-a-link",
        "hyphens-missing-in-part",
        "hyphens-present-in-part",
    ],
)
def test_parse_customer_reference_rejects_anything_else(text):
    with pytest.raises(ValueError, match=r"^(not a UUID|too long to be a customer ID|more than one word)$"):
        parse_customer_reference(text)


def test_lookup_form_gives_a_uuid():
    form = CustomerLookupForm({"customer_id": f"  urn:uuid:{CANONICAL.upper()} "})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["customer_id"] == uuid.UUID(CANONICAL)
    assert isinstance(form.cleaned_data["customer_id"], uuid.UUID)


@pytest.mark.parametrize("text", ["not-a-uuid", CANONICAL + "0", "<script>alert(1)</script>"])
def test_lookup_form_rejects_what_is_not_a_customer_id(text):
    form = CustomerLookupForm({"customer_id": text})
    assert not form.is_valid()
    (message,) = form.errors["customer_id"]
    assert message.startswith("Not a customer ID")
    assert EXAMPLE_CUSTOMER_ID in message


@pytest.mark.parametrize("data", [{"customer_id": ""}, {"customer_id": "  \n "}, {}])
def test_lookup_form_requires_a_customer_id(data):
    form = CustomerLookupForm(data)
    assert not form.is_valid()
    assert form.errors["customer_id"] == ["Paste a customer ID first."]


# --- An e-mail address searches by e-mail (issue #14) ----------------------------------------------


def cleaned(text: str):
    form = CustomerLookupForm({"customer_id": text})
    assert form.is_valid(), form.errors
    return form.cleaned_data["customer_id"]


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("jane@example.com", "jane@example.com"),
        ("  jane.doe+kyc@example.com \n", "jane.doe+kyc@example.com"),
        ("Jane.Doe@EXAMPLE.COM", "Jane.Doe@example.com"),
        ("jane@bücher.example", "jane@xn--bcher-kva.example"),
        ("jane@BÜCHER.example", "jane@xn--bcher-kva.example"),
        ("jane@xn--bcher-kva.example", "jane@xn--bcher-kva.example"),
        ("o'brien@sub.example.co.uk", "o'brien@sub.example.co.uk"),
    ],
)
def test_an_email_address_is_an_email_search_with_a_normalised_domain(text, sent):
    query = cleaned(text)
    assert isinstance(query, EmailQuery)
    assert query.address == sent


@pytest.mark.parametrize(
    "text",
    [
        CANONICAL,
        CANONICAL.replace("-", ""),
        f"urn:uuid:{CANONICAL}",
        f"https://dashboard.example/customers/{CANONICAL}/",
        f"https://user@dashboard.example/customers/{CANONICAL}",
        f"/customers/{CANONICAL}/",
    ],
)
def test_ids_and_links_ending_in_ids_stay_customer_ids(text):
    assert cleaned(text) == uuid.UUID(CANONICAL)


@pytest.mark.parametrize(
    "text",
    [
        "jane@example",
        "jane@",
        "@example.com",
        "jane@@example.com",
        "jane doe@example.com",
        "mailto:jane@example.com",
    ],
)
def test_almost_an_email_is_refused_with_words_that_mention_both(text):
    form = CustomerLookupForm({"customer_id": text})
    assert not form.is_valid()
    assert form.errors["customer_id"] == [NOT_AN_ID_OR_EMAIL % {"example": EXAMPLE_CUSTOMER_ID}]


def test_input_without_an_at_sign_keeps_todays_words():
    form = CustomerLookupForm({"customer_id": "nope"})
    assert not form.is_valid()
    assert form.errors["customer_id"][0].startswith("Not a customer ID. Paste")


def test_the_field_is_labelled_for_both():
    assert CustomerLookupForm().fields["customer_id"].label == "Customer ID or e-mail"


def test_an_email_query_never_shows_its_address_in_a_repr_or_str():
    query = parse_email("jane@example.com")
    assert "jane" not in repr(query)
    assert "jane" not in str(query)


# --- What pasting adds (issue #19, item 7) ----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"\u200b{CANONICAL}\u200b",
        f"{CANONICAL[:8]}\u200b{CANONICAL[8:]}",
        f"\ufeff{CANONICAL}",
        f"\u00a0{CANONICAL}\u00a0",
        f"\u202f{CANONICAL}\u2007",
        f"{CANONICAL}.",
        f"{CANONICAL},",
        f'"{CANONICAL}"',
        f"'{CANONICAL}'",
        f"\u201c{CANONICAL}\u201d",
        f"\u2018{CANONICAL}\u2019",
        f"<{CANONICAL}>",
        f"\u201c<{CANONICAL}>\u201d.",
        f"\u200e{CANONICAL}\u200f",
        f"<https://dashboard.example/customers/{CANONICAL}/>",
    ],
    ids=[
        "zero-width-spaces-around",
        "zero-width-space-inside",
        "byte-order-mark",
        "non-breaking-spaces",
        "narrow-and-figure-spaces",
        "trailing-full-stop",
        "trailing-comma",
        "straight-double-quotes",
        "straight-single-quotes",
        "curly-double-quotes",
        "curly-single-quotes",
        "angle-brackets",
        "quotes-brackets-and-full-stop",
        "direction-marks",
        "link-in-angle-brackets",
    ],
)
def test_what_pasting_adds_around_an_id_is_read_past(text):
    assert str(parse_customer_reference(text)) == CANONICAL
    form = CustomerLookupForm({"customer_id": text})
    assert form.is_valid(), form.errors
    assert str(form.cleaned_data["customer_id"]) == CANONICAL


@pytest.mark.parametrize(
    "text",
    [f"<{CANONICAL}", f'"{CANONICAL}\u201d', f"<<{CANONICAL}>", f"{CANONICAL}!"],
    ids=["unclosed-bracket", "mismatched-quotes", "unbalanced-brackets", "exclamation-mark"],
)
def test_wrapping_that_does_not_pair_up_is_not_guessed_at(text):
    with pytest.raises(ValueError, match=r"^not a UUID$"):
        parse_customer_reference(text)


def test_an_email_pasted_in_angle_brackets_with_a_full_stop_is_a_search():
    form = CustomerLookupForm({"customer_id": "<ada.lovelace@example.com>."})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["customer_id"] == EmailQuery("ada.lovelace@example.com")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (CANONICAL[:-1] + "l", "\u201cl\u201d"),
        ("\uff13" + CANONICAL[1:], "\u201c\uff13\u201d (U+FF13)"),
        (f"{CANONICAL[:8]}\u2062{CANONICAL[8:]}", "an invisible character (U+2062)"),
        (CANONICAL.replace("-", "\u2010"), "\u201c\u2010\u201d (U+2010)"),
    ],
    ids=["letter-l-for-one", "full-width-digit", "invisible-times", "unicode-hyphens"],
)
def test_a_character_that_cannot_be_read_is_named(text, named):
    form = CustomerLookupForm({"customer_id": text})
    assert not form.is_valid()
    (message,) = form.errors["customer_id"]
    assert message.startswith(f"Not a customer ID: it contains {named}, which can't be part of one.")
    assert EXAMPLE_CUSTOMER_ID in message


def test_text_that_is_not_id_shaped_gets_the_general_words():
    form = CustomerLookupForm({"customer_id": "ada-lovelace"})
    assert not form.is_valid()
    assert form.errors["customer_id"][0].startswith("Not a customer ID. Paste")
