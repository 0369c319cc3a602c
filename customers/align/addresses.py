"""Addresses as staff read them out on a call: in the country's own layout, with the country named.

Country names come from pycountry, which ships ISO 3166-1 as kept by Debian's iso-codes project
(Python and Django have no country names of their own). Align's `country` is a free string in
the contract: an ISO code is named ("United Kingdom (GB)"); anything else is shown as sent.
"""

import re
from collections.abc import Callable
from typing import Protocol

import pycountry

# ASCII only: pycountry lower-cases what it is given, and Unicode look-alikes (the Kelvin sign
# becomes "k") must not be named as a country.
ISO_CODE = re.compile(r"[A-Za-z]{2,3}")

# UAE addresses have no postal codes, so forms that insist on one get zeros: saying them to a
# customer would only confuse, while any other value Align holds is shown.
NO_POSTAL_CODE = re.compile(r"0+")


def country_line(country: str | None) -> str | None:
    """ "United Kingdom (GB)" for an ISO 3166-1 code, anything else as sent, None when blank."""
    sent = _text(country)
    if sent is None:
        return None
    record = _iso_country(sent)
    if record is None:
        return sent
    return f"{getattr(record, 'common_name', record.name)} ({sent.upper()})"


class PostalAddress(Protocol):
    """What a layout reads of an address: records.Address, which delegates its `lines` here."""

    street_line_1: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None


def address_lines(address: PostalAddress) -> list[str]:
    """The address in its country's layout, skipping the parts Align left out or blank."""
    record = _iso_country(_text(address.country))
    layout = LAYOUTS.get(record.alpha_2 if record else None, _each_on_its_own_line)
    locality = layout(_text(address.city), _text(address.state), _text(address.postal_code))
    return _present(_text(address.street_line_1), *locality, country_line(address.country))


Layout = Callable[[str | None, str | None, str | None], list[str | None]]


def _each_on_its_own_line(city: str | None, state: str | None, postal_code: str | None) -> list[str | None]:
    """Royal Mail's order (post town, county, postcode last); also the default, as it guesses nothing."""
    return [city, state, postal_code]


def _postal_code_before_city(
    city: str | None, state: str | None, postal_code: str | None
) -> list[str | None]:
    """ "20457 Hamburg", as in most of continental Europe."""
    return [" ".join(_present(postal_code, city)), state]


def _united_states(city: str | None, state: str | None, postal_code: str | None) -> list[str | None]:
    """ "Springfield, IL 62701", as USPS writes it."""
    return [", ".join(_present(city, " ".join(_present(state, postal_code))))]


def _united_arab_emirates(city: str | None, state: str | None, postal_code: str | None) -> list[str | None]:
    """City, then emirate; a postal code only when it is more than the zeros forms ask for."""
    if postal_code and NO_POSTAL_CODE.fullmatch(postal_code):
        postal_code = None
    return [city, state, postal_code]


POSTCODE_FIRST = {"AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "IT", "LU", "NL", "NO", "PL", "PT", "SE"}

LAYOUTS: dict[str | None, Layout] = {
    "GB": _each_on_its_own_line,
    "US": _united_states,
    "AE": _united_arab_emirates,
    **dict.fromkeys(POSTCODE_FIRST, _postal_code_before_city),
}


def _iso_country(code: str | None):
    """pycountry's record for an ISO 3166-1 alpha-2 or alpha-3 code, any case; else None."""
    if code is None or not ISO_CODE.fullmatch(code):
        return None
    if len(code) == 2:
        return pycountry.countries.get(alpha_2=code)
    return pycountry.countries.get(alpha_3=code)


def _text(part: str | None) -> str | None:
    """The part without surrounding whitespace, or None when nothing is left."""
    stripped = part.strip() if part else ""
    return stripped or None


def _present(*parts: str | None) -> list[str]:
    return [part for part in parts if part]
