"""What the local stand-in of Align serves: its demo customers, failure drills and e-mails to try,
for debug runs.

The stand-in (customers/align/standin/) describes them at an address of its own, DEMO_LIST_PATH,
so the search page of a debug run learns them over HTTP like any other caller, and production
code never imports the stand-in. Asked with a short timeout through the Align client's session
(never with the API key: the list is not Align's), kept per base URL once read, and given up
quietly: a list of demo IDs is a convenience, never a reason for a page to fail or wait.
"""

import functools
import logging
import re
from dataclasses import dataclass

import requests

from customers.align import client
from customers.align.records import CANONICAL_UUID

logger = logging.getLogger(__name__)

DEMO_LIST_PATH = "/stand-in/demo-list"
# The stand-in runs on this machine: it answers in milliseconds or not at all.
TIMEOUT_SECONDS = 0.5
# One address, with no spaces, of a length an e-mail can have: the search reads it like any text
# typed into the field (customers.forms), so this only keeps an odd answer off the page.
EMAIL_TO_TRY = re.compile(r"[^\s@]{1,64}@[^\s@]{1,253}")


@dataclass(frozen=True)
class DemoEntry:
    customer_id: str
    description: str


@dataclass(frozen=True)
class DemoEmail:
    """An address to search for on the search page: the stand-in's own, never a real person's."""

    email: str
    description: str


@dataclass(frozen=True)
class DemoList:
    customers: tuple[DemoEntry, ...]
    drills: tuple[DemoEntry, ...]
    emails: tuple[DemoEmail, ...]


def demo_list(base_url: str) -> DemoList | None:
    """The stand-in's demo customers, drills and e-mails at `base_url`; None when they cannot be read."""
    try:
        return _read(base_url)
    except (requests.RequestException, ValueError) as error:
        logger.info("The stand-in's demo list could not be read: %s", type(error).__name__)
        return None


@functools.cache
def _read(base_url: str) -> DemoList:
    """Kept once read, for the life of the process; a failure raises, so the next page asks again."""
    response = client.get_client().session.get(
        f"{base_url}{DEMO_LIST_PATH}", timeout=TIMEOUT_SECONDS, allow_redirects=False
    )
    response.raise_for_status()
    data = response.json()
    return DemoList(
        customers=_entries(data, "customers"), drills=_entries(data, "drills"), emails=_emails(data)
    )


def _entries(data: object, key: str) -> tuple[DemoEntry, ...]:
    """The `key` array as entries; ValueError unless each is a customer ID (for a link) and words."""
    return tuple(DemoEntry(*pair) for pair in _pairs(data, key, "customer_id", CANONICAL_UUID, "customer ID"))


def _emails(data: dict) -> tuple[DemoEmail, ...]:
    """The `emails` array as e-mails to try; ValueError unless each is one address and words."""
    return tuple(DemoEmail(*pair) for pair in _pairs(data, "emails", "email", EMAIL_TO_TRY, "e-mail address"))


def _pairs(data: object, key: str, field: str, pattern: re.Pattern, what: str) -> list[tuple[str, str]]:
    """(`field`, description) of each item of the `key` array; ValueError at the first that is off."""
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"the demo list has no {key} array")
    pairs = []
    for item in items:
        value = item.get(field) if isinstance(item, dict) else None
        description = item.get("description") if isinstance(item, dict) else None
        if not (isinstance(value, str) and pattern.fullmatch(value)):
            raise ValueError(f"an entry of {key} has no {what}")
        if not isinstance(description, str):
            raise ValueError(f"an entry of {key} has no description")
        pairs.append((value, description))
    return pairs
