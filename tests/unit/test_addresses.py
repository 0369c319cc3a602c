"""Addresses in each country's layout, with the country named from ISO 3166-1."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.align.addresses import address_lines, country_line
from customers.align.records import Address

# --- country_line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "line"),
    [
        ("GB", "United Kingdom (GB)"),
        ("US", "United States (US)"),
        ("DE", "Germany (DE)"),
        ("FR", "France (FR)"),
        ("AE", "United Arab Emirates (AE)"),
    ],
)
def test_iso_code_is_shown_with_the_country_name(country, line):
    assert country_line(country) == line


def test_common_name_is_preferred_to_the_iso_long_form():
    assert country_line("KR") == "South Korea (KR)"


@pytest.mark.parametrize(("country", "line"), [("gb", "United Kingdom (GB)"), (" de ", "Germany (DE)")])
def test_code_in_lower_case_or_with_spaces_is_still_named(country, line):
    assert country_line(country) == line


def test_alpha_3_code_is_named_too():
    assert country_line("GBR") == "United Kingdom (GBR)"


@pytest.mark.parametrize(
    "country",
    ["ZZ", "UK", "XK", "United Kingdom", "G B", "GBRX", "<b>GB</b>", "É", "1A", "\u212aR"],
    ids=[
        "unassigned",
        "uk-not-iso",
        "kosovo-user-assigned",
        "a-name",
        "spaced",
        "four-letters",
        "markup",
        "non-ascii",
        "digit",
        "kelvin-sign-that-lower-cases-to-k",
    ],
)
def test_anything_that_is_not_an_iso_code_is_shown_as_sent(country):
    assert country_line(country) == country


def test_unknown_country_is_shown_stripped_of_surrounding_whitespace():
    assert country_line("  Narnia ") == "Narnia"


@pytest.mark.parametrize("country", [None, "", "   "])
def test_no_country_line_when_none_was_sent(country):
    assert country_line(country) is None


# --- address_lines: each country's layout ----------------------------------------------------------


def test_gb_puts_the_postcode_on_its_own_line_after_the_town():
    address = Address("12 St James's Square", "London", None, "SW1Y 4JH", "GB")
    assert address_lines(address) == ["12 St James's Square", "London", "SW1Y 4JH", "United Kingdom (GB)"]


def test_gb_county_goes_between_town_and_postcode():
    address = Address("12 St James's Square", "London", "Greater London", "SW1Y 4JH", "GB")
    assert address_lines(address)[1:4] == ["London", "Greater London", "SW1Y 4JH"]


def test_us_writes_city_state_and_zip_on_one_line():
    address = Address("1600 Pennsylvania Ave NW", "Washington", "DC", "20500", "US")
    assert address_lines(address) == [
        "1600 Pennsylvania Ave NW",
        "Washington, DC 20500",
        "United States (US)",
    ]


@pytest.mark.parametrize(
    ("city", "state", "postal_code", "line"),
    [
        ("Springfield", None, "62701", "Springfield, 62701"),
        ("Springfield", "IL", None, "Springfield, IL"),
        (None, "IL", "62701", "IL 62701"),
        ("Springfield", None, None, "Springfield"),
    ],
    ids=["no-state", "no-zip", "no-city", "city-only"],
)
def test_us_city_line_leaves_out_what_is_missing(city, state, postal_code, line):
    assert address_lines(Address(None, city, state, postal_code, "US")) == [line, "United States (US)"]


@pytest.mark.parametrize(
    ("country", "city", "postal_code", "line"),
    [("DE", "Hamburg", "20457", "20457 Hamburg"), ("FR", "Paris", "75008", "75008 Paris")],
)
def test_de_and_fr_put_the_postal_code_before_the_city(country, city, postal_code, line):
    assert address_lines(Address("Rue 1", city, None, postal_code, country))[1] == line


def test_postal_code_before_city_keeps_a_state_on_its_own_line():
    address = Address("Marienplatz 8", "München", "Bayern", "80331", "DE")
    assert address_lines(address) == ["Marienplatz 8", "80331 München", "Bayern", "Germany (DE)"]


def test_ae_shows_city_then_emirate_and_no_placeholder_postal_code():
    address = Address("Office 1204, Sheikh Zayed Road", "Dubai", "Dubai", "00000", "AE")
    assert address_lines(address) == [
        "Office 1204, Sheikh Zayed Road",
        "Dubai",
        "Dubai",
        "United Arab Emirates (AE)",
    ]


def test_ae_shows_a_real_postal_code_when_align_sent_one():
    address = Address("Office 1204", "Dubai", None, "12345", "AE")
    assert address_lines(address) == ["Office 1204", "Dubai", "12345", "United Arab Emirates (AE)"]


def test_zeros_are_kept_outside_the_uae():
    assert "00000" in address_lines(Address(None, "Springfield", None, "00000", "US"))[0]


@pytest.mark.parametrize("country", ["JP", "Narnia", None], ids=["other-iso-country", "unknown", "none"])
def test_other_countries_put_each_part_on_its_own_line(country):
    lines = address_lines(Address("1-1 Chiyoda", "Tokyo", "Tokyo-to", "100-0001", country))
    assert lines[:4] == ["1-1 Chiyoda", "Tokyo", "Tokyo-to", "100-0001"]


def test_lower_case_code_gets_its_country_layout():
    assert address_lines(Address(None, "Hamburg", None, "20457", "de")) == ["20457 Hamburg", "Germany (DE)"]


def test_blank_parts_are_left_out_and_the_rest_is_stripped():
    address = Address("  12 Rue de Rivoli ", " ", None, " 75001 ", "FR")
    assert address_lines(address) == ["12 Rue de Rivoli", "75001", "France (FR)"]


def test_address_of_nothing_has_no_lines():
    assert address_lines(Address()) == []


def test_markup_is_kept_as_text_for_the_template_to_escape():
    assert address_lines(Address("<script>x</script>", country="<b>")) == ["<script>x</script>", "<b>"]


def test_record_address_lines_are_these_lines():
    address = Address("Hafenstrasse 7", "Hamburg", None, "20457", "DE")
    assert address.lines == address_lines(address)


ANY_TEXT = st.none() | st.text(max_size=12) | st.sampled_from(["GB", "us", "DE", "fr", "AE", "00000", " "])


@given(parts=st.tuples(ANY_TEXT, ANY_TEXT, ANY_TEXT, ANY_TEXT, ANY_TEXT))
def test_any_strings_align_sends_give_lines_and_never_an_error(parts):
    lines = address_lines(Address(*parts))
    assert all(isinstance(line, str) and line == line.strip() and line for line in lines)
    assert (lines == []) == all(not (part and part.strip()) for part in parts)
