"""The audit log's codes in the words the customer card uses, decided once for every page that shows them.

The audit list, its CSV and a user's activity page read the same row the same way, so what an
auditor quotes from a file matches what they saw on screen.
"""

from customers.models import AuditEvent
from customers.services import decisions as presentation


def seen_status(event: AuditEvent) -> presentation.Badge | None:
    """The KYC status the event records, as the card's badge; None when no one customer was shown.

    That is a lookup that found the customer, a search by e-mail that found exactly one, and a new
    KYC session (the status Align gave it); a failed lookup or a copied link records no status.
    """
    if event.outcome not in presentation.STATUS_SEEN_OUTCOMES or event.customer_id is None:
        return None
    return presentation.seen_status_badge(event.outcome, event.kyc_status)


def seen_sub_status(event: AuditEvent) -> presentation.Badge | None:
    """The sub-status beside that status, as the card's badge; None when none was kept (rows from
    before it was, and every status but pending)."""
    if seen_status(event) is None or not event.kyc_sub_status:
        return None
    return presentation.sub_status_badge(event.kyc_sub_status)


def badge_words(badge: presentation.Badge | None) -> str:
    """A badge as plain text, for a file: its words, and a status the dashboard does not know marked so."""
    if badge is None:
        return ""
    return badge.label if badge.recognised else f"{badge.label} (unrecognised)"
