"""Search by e-mail: ask Align only once the search is on record, keyed-hash the address for the audit.

The audit trail never holds an e-mail. It holds an HMAC-SHA256 of the normalised address under
DASHBOARD_AUDIT_HASH_KEY: an auditor who has an address can hash it the same way (the audit
admin's search box does) and find every search for it, while someone who reads the table, or a
copy of it, cannot list the addresses searched, nor test guesses without the key. The whole
address is compared case-blind for the hash (the local part too, although Align's match keeps
its case), so "Jane.Doe@Example.com" and "jane.doe@example.com" are one person to an auditor.
"""

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings

from customers.align.client import AlignError, customers_search_by_email
from customers.align.records import Customer
from customers.forms import EmailQuery, parse_email
from customers.services import audit
from customers.services.decisions import AUDIT_UNAVAILABLE, LookupFailure, describe_failure


def email_hash(query: EmailQuery) -> str:
    """The keyed hash of a normalised e-mail, as the audit trail stores it (64 hex digits)."""
    key = settings.DASHBOARD_AUDIT_HASH_KEY.encode()
    return hmac.new(key, query.address.lower().encode(), hashlib.sha256).hexdigest()


def email_hash_of_text(text: str) -> str | None:
    """The keyed hash of `text` when it is an e-mail address, else None (for the audit admin's search)."""
    try:
        return email_hash(parse_email(text))
    except ValueError:
        return None


@dataclass(frozen=True)
class EmailSearch:
    """What a search by e-mail came to: the customers found, or the failure to show."""

    customers: tuple[Customer, ...] = ()
    failure: LookupFailure | None = None
    recorded: bool = True


def search_by_email(request, query: EmailQuery) -> EmailSearch:
    """Record the search, then ask Align, then record what it found; no audit row, no search."""
    try:
        event = audit.start_email_search(audit.Actor.of(request), email_hash=email_hash(query))
    except audit.AuditUnavailable:
        return EmailSearch(failure=AUDIT_UNAVAILABLE, recorded=False)
    try:
        customers = customers_search_by_email(email=query.address)
    except AlignError as error:
        audit.finish_email_search(event, error=error)
        return EmailSearch(failure=describe_failure(error))
    audit.finish_email_search(event, customers=customers)
    return EmailSearch(customers=customers)
