"""Search by e-mail: the spellings Align is asked for, and the keyed hash the audit trail holds instead.

Align matches the whole address exactly, the local part's case included, while people type
e-mails in any case: "Ada.Lovelace@EXAMPLE.com" found nobody where "ada.lovelace@example.com" was
on file, and staff concluded the customer did not exist. So the address is asked for as typed
(the domain already lower-case, customers.forms.parse_email) and, only when that finds nobody,
in lower case, as addresses are nearly always kept: one audited search
(customers.services.audited_calls) within one deadline (customers.align.client). Nothing on the
page says which spelling matched: the card shows the customer's own e-mail.

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


def other_spellings(query: EmailQuery) -> tuple[str, ...]:
    """What to ask Align for when the address as typed finds nobody: it in lower case, if that differs."""
    lower_case = query.address.lower()
    return (lower_case,) if lower_case != query.address else ()


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
