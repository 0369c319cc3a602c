"""The walks through the audit trail that a customer card costs, in the SQL they run as (issue #21).

A lookup's outcome marks what later cards may skip, and a card reads its audit rows in one query
(customers/services/audit.py says what each walk is for). Those few statements are the same on
every card, and Django built their nested subqueries afresh each time: building them cost a lookup
more CPU than all the database's own work for it (bench/README.md, "One lookup's CPU"). So they are
written out here once, as SQL that SQLite and PostgreSQL both run, each walk on its own index:

- values are always bound, never written into the SQL; the tables and indexes are the customers
  app's, whose names never change (docs/architecture.md);
- every walk orders by minus the ID, as its index does (customers.models.NEWEST_FIRST), so
  PostgreSQL cannot walk the primary key through a long run of one customer instead;
- a walk's conditions name the partial index's condition exactly, never with a bound value (SQLite
  proves a partial index's condition from the query's text, not from values bound to it).

Each function returns a RawSQL: an `IN` for the rows to read, or the mark an UPDATE sets.
"""

import uuid

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from customers.models import AuditEvent

# A user's newest first cards of runs (audit_user_shown_recent): a card is a row of
# customers.models.SHOWN_CARD. `below` is "" or a bound lower limit on minus the ID.
_FIRST_CARDS_OF_RUNS = """
        SELECT {column} FROM customers_auditevent
        WHERE user_id = %s AND NOT repeats_last_card{below}
            AND action IN ('lookup', 'email_search') AND customer_id IS NOT NULL AND batch_id IS NULL
        ORDER BY -id LIMIT %s
"""


def _runs_and_their_newest_cards(below: str) -> str:
    """The newest `size` first cards of runs, and the newest card of each of their customers
    (audit_user_customer_cards, one seek each)."""
    runs = {
        column: _FIRST_CARDS_OF_RUNS.format(column=column, below=below) for column in ("id", "customer_id")
    }
    return f"""
    SELECT id FROM ({runs["id"]}) AS runs
    UNION ALL
    SELECT (
        SELECT card.id FROM customers_auditevent AS card
        WHERE card.user_id = %s AND card.customer_id = runs.customer_id AND card.repeats_last_card IS NOT NULL
        ORDER BY -card.id LIMIT 1
    ) FROM ({runs["customer_id"]}) AS runs
"""  # noqa: S608 (made once, at import, of the constants here; every value is bound)


# `%s`: user, size, user, user, size.
_RUNS_AND_THEIR_NEWEST_CARDS = _runs_and_their_newest_cards(below="")
# The same below a row, the walk starting there: `%s`: user, -row, size, user, user, -row, size.
_RUNS_BELOW_AND_THEIR_NEWEST_CARDS = _runs_and_their_newest_cards(below=" AND -id > %s")
# A customer's card: History's lookups (audit_customer_kyc_changes), the sessions leads started and the
# link's copies (audit_customer_action_recent), then the reader's runs as above. `%s`: customer, how
# many, three times.
_CUSTOMER_ROWS = """
    SELECT id FROM (
        SELECT id FROM customers_auditevent
        WHERE customer_id = %s AND action = 'lookup' AND outcome = 'found' AND NOT kyc_unchanged
        ORDER BY -id LIMIT %s
    ) AS kyc_changes
    UNION ALL
    SELECT id FROM (
        SELECT id FROM customers_auditevent
        WHERE customer_id = %s AND action = 'kyc_session' AND outcome = 'session_started'
        ORDER BY -id LIMIT %s
    ) AS session_starts
    UNION ALL
    SELECT id FROM (
        SELECT id FROM customers_auditevent WHERE customer_id = %s AND action = 'link_copied'
        ORDER BY -id LIMIT %s
    ) AS link_copies
    UNION ALL
"""
_CARD = _CUSTOMER_ROWS + _RUNS_AND_THEIR_NEWEST_CARDS
# The customer's lookup before a row saw this status and sub-status, and nothing History shows came
# since: no KYC session started, no webhook of Align's time at or after it. `%s`: customer, -row,
# status, sub-status, customer, customer.
_KYC_UNCHANGED = """
    EXISTS (
        SELECT 1 FROM customers_auditevent AS previous
        WHERE previous.id = (
            SELECT id FROM customers_auditevent
            WHERE customer_id = %s AND action = 'lookup' AND -id > %s
            ORDER BY -id LIMIT 1
        )
        AND previous.outcome = 'found' AND previous.kyc_status = %s AND previous.kyc_sub_status = %s
        AND NOT EXISTS (
            SELECT 1 FROM customers_auditevent
            WHERE customer_id = %s AND action = 'kyc_session' AND id > previous.id
        )
        AND NOT EXISTS (
            SELECT 1 FROM customers_kycwebhookevent
            WHERE customer_id = %s AND event_created_at >= previous.occurred_at
        )
    )
"""
# The user's newest first card of a run below a row is of this customer. `%s`: user, -row, customer.
_REPEATS_LAST_CARD = """
    EXISTS (
        SELECT 1 FROM customers_auditevent AS previous
        WHERE previous.id = (
            SELECT id FROM customers_auditevent
            WHERE user_id = %s AND NOT repeats_last_card AND -id > %s
                AND action IN ('lookup', 'email_search') AND customer_id IS NOT NULL AND batch_id IS NULL
            ORDER BY -id LIMIT 1
        )
        AND previous.customer_id = %s
    )
"""


def card(
    *,
    customer_id: uuid.UUID,
    user_id: int,
    kyc_changes: int,
    session_starts: int,
    link_copies: int,
    runs: int,
) -> RawSQL:
    """The IDs of a customer's card's audit rows for `user_id`, each part this many at most."""
    customer = _customer(customer_id)
    params = [customer, kyc_changes, customer, session_starts, customer, link_copies]
    params += [user_id, runs, user_id, user_id, runs]
    return RawSQL(_CARD, params)  # noqa: S611  (the SQL above, its values bound)


def runs_and_their_newest_cards(*, user_id: int, size: int) -> RawSQL:
    """The IDs of the user's newest `size` first cards of runs, and of the newest card of each of their
    customers."""
    return RawSQL(_RUNS_AND_THEIR_NEWEST_CARDS, [user_id, size, user_id, user_id, size])  # noqa: S611  (as above)


def runs_below_and_their_newest_cards(*, user_id: int, below: int, size: int) -> RawSQL:
    """runs_and_their_newest_cards(), of the runs below ID `below`."""
    params = [user_id, -below, size, user_id, user_id, -below, size]
    return RawSQL(_RUNS_BELOW_AND_THEIR_NEWEST_CARDS, params)  # noqa: S611  (as above)


def kyc_unchanged(event: AuditEvent) -> RawSQL:
    """The kyc_unchanged mark of a found lookup, as its outcome's UPDATE sets it."""
    customer = _customer(event.customer_id)
    params = [customer, -event.pk, event.kyc_status, event.kyc_sub_status, customer, customer]
    return RawSQL(_KYC_UNCHANGED, params, output_field=BooleanField())  # noqa: S611  (as above)


def repeats_last_card(event: AuditEvent) -> RawSQL:
    """The repeats_last_card mark of a lookup of one customer, as its outcome's UPDATE sets it."""
    params = [event.user_id, -event.pk, _customer(event.customer_id)]
    return RawSQL(_REPEATS_LAST_CARD, params, output_field=BooleanField())  # noqa: S611  (as above)


def _customer(customer_id: uuid.UUID):
    """A customer ID as this database stores it (text on SQLite, a uuid on PostgreSQL)."""
    return AuditEvent._meta.get_field("customer_id").get_db_prep_value(customer_id, connection)
