"""Search by e-mail: the keyed hash the audit trail holds instead of the address searched for.

The audit trail never holds an e-mail. It holds an HMAC-SHA256 of the normalised address under
DASHBOARD_AUDIT_HASH_KEY: an auditor who has an address can hash it the same way (the audit
admin's search box does) and find every search for it, while someone who reads the table, or a
copy of it, cannot list the addresses searched, nor test guesses without the key. The whole
address is compared case-blind for the hash (the local part too, although Align's match keeps
its case), so "Jane.Doe@Example.com" and "jane.doe@example.com" are one person to an auditor.
"""

import hashlib
import hmac

from django.conf import settings

from customers.forms import EmailQuery, parse_email


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
