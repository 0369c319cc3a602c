"""Models of the customers app.

Customers themselves live in Align, not here; the app keeps only what the dashboard owns:
the permission to look customers up, the audit trail of who looked at whom, and the record of
who exported that trail.
"""

import uuid

from django.conf import settings
from django.db import models


class CustomerAccess(models.Model):
    """Carries the permissions for customer lookups; it has no table of its own."""

    class Meta:
        managed = False
        verbose_name = "customer lookup access"
        default_permissions = ()
        permissions = [
            ("lookup_customer", "Can look up Align customers and see their KYC state"),
            # Given to no group by migration: an administrator grants it to whoever needs it.
            ("export_customer_email", "Can export customers' e-mail addresses in bulk lookup CSVs"),
            # Given to Compliance leads by migration 0009: a new session replaces the customer's link.
            ("start_kyc_session", "Can start a new KYC session for an Align customer"),
        ]

    def __str__(self) -> str:
        return "Customer lookup access"


class UserActionRecord(models.Model):
    """What every record of something a signed-in user did carries: the address and request it came from.

    Abstract, so each record keeps its own table. The user itself is declared by each record with
    acting_user(): the reverse accessor and the help text name what the user did, so they differ.
    """

    client_ip = models.GenericIPAddressField("client IP", null=True, blank=True)
    request_id = models.CharField("request ID", max_length=32, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        """ "Bulk lookup export 12 by jane": the kind of record, its ID, and who did it."""
        return f"{self._meta.verbose_name.capitalize()} {self.pk} by {self.user.get_username()}"


def acting_user(related_name: str, who: str) -> models.ForeignKey:
    """The user who did it; protected, so the record of what they did outlives their account."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name=related_name,
        help_text=f"{who} cannot be deleted; deactivate them instead.",
    )


# The rows that showed a user a customer's card: a lookup, or a search by e-mail that found exactly that
# one; a bulk lookup's rows are not cards shown. The audit trail sets repeats_last_card on these only.
SHOWN_CARD = models.Q(action__in=["lookup", "email_search"], customer_id__isnull=False, batch__isnull=True)

# "Newest first" as a customer card's walks of the audit trail ask for it (customers/services/audit.py):
# minus the ID, an order only their own indexes hold. Asked for by the ID itself, PostgreSQL may walk
# the primary key backwards instead and filter: its statistics can't tell that the newest rows of a
# long run of one customer are all ones the walk skips, so that walk, cheap by its estimate, would
# read the whole run. SQLite walks these indexes either way.
NEWEST_FIRST = models.Func(
    models.F("id"), template="(-%(expressions)s)", output_field=models.BigIntegerField()
)


class AuditEvent(UserActionRecord):
    """One lookup of a customer, or one copy of their KYC link, by one signed-in user.

    Answers an auditor's "who looked at this customer, when, and who sent them the KYC link?".
    It holds IDs and codes only: no name, e-mail or address of the customer is ever stored.
    Rows are written by the dashboard and never changed or deleted through it.
    """

    class Action(models.TextChoices):
        LOOKUP = "lookup", "Lookup"
        LINK_COPIED = "link_copied", "KYC link copied"
        EMAIL_SEARCH = "email_search", "Searched by e-mail"
        KYC_SESSION_STARTED = "kyc_session", "KYC session started"

    class Outcome(models.TextChoices):
        # A lookup is recorded before Align is asked; a row left "started" means the outcome
        # could not be written afterwards (the page was still shown, its access recorded).
        STARTED = "started", "Started (outcome not recorded)"
        FOUND = "found", "Found"
        NOT_FOUND = "not_found", "Not found"
        INVALID_RESPONSE = "invalid_response", "Invalid response from Align"
        KEY_REJECTED = "key_rejected", "API key rejected"
        RATE_LIMITED = "rate_limited", "Rate limited"
        TIMEOUT = "timeout", "Timed out"
        UNREACHABLE = "unreachable", "Align unreachable"
        UPSTREAM_ERROR = "upstream_error", "Align error"
        NOT_CONFIGURED = "not_configured", "API key not configured"
        COPIED = "copied", "Link copied"
        SESSION_STARTED = "session_started", "New KYC session started"
        REFUSED = "refused", "Refused by Align"

    # Stored in kyc_status when Align sent a KYC record whose overall status was null; an empty
    # kyc_status means the customer has no KYC record at all.
    KYC_STATUS_NOT_SENT = "(not sent)"

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = acting_user("audit_events", "Users with audit events")
    action = models.CharField(max_length=20, choices=Action.choices)
    # Empty only for a search by e-mail that did not find exactly one customer.
    customer_id = models.UUIDField("customer ID", db_index=True, null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    kyc_status = models.CharField(
        "KYC status seen", max_length=40, blank=True, help_text="Align's overall KYC status, when found."
    )
    kyc_sub_status = models.CharField(
        "KYC sub-status seen",
        max_length=60,
        blank=True,
        default="",
        help_text="Align's KYC sub-status code, when found; empty on rows from before it was kept.",
    )
    is_refresh = models.BooleanField("refresh", default=False)
    # A refresh the customer's open page made by itself (customers/services/history.py), not staff's click.
    automatic = models.BooleanField("automatic refresh", default=False)
    batch = models.ForeignKey(
        "BulkLookup",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="lookups",
        help_text="The bulk lookup this lookup belonged to; empty for a lookup of one customer.",
    )
    # A search by e-mail: how many customers it found and which, and a keyed hash of the
    # normalised e-mail (customers/services/email_search.py), never the e-mail itself.
    match_count = models.PositiveIntegerField("matches", null=True, blank=True)
    matched_customer_ids = models.JSONField("matched customer IDs", default=list, blank=True)
    email_hash = models.CharField(
        "e-mail hash",
        max_length=64,
        blank=True,
        db_index=True,
        help_text="HMAC-SHA256 of the searched e-mail under DASHBOARD_AUDIT_HASH_KEY; search it by e-mail.",
    )
    # Two marks that keep a card's reads the same size however often a customer is looked up, set by
    # the database as the lookup's outcome is written (customers/services/audit.py, finish_lookup).
    # False, the default, is always safe: the row is then read as it was before the marks existed.
    kyc_unchanged = models.BooleanField(
        "KYC unchanged",
        default=False,
        help_text="This lookup saw exactly what the customer's lookup before it saw, with no webhook or "
        "new KYC session between them: History, which shows changes, skips it.",
    )
    # Empty on a row that showed no card (a copy, a new session, a bulk lookup's row, a search by
    # e-mail without one match): the indexes of cards hold the rows where it is set, a condition
    # SQLite can check without the values a query binds (unlike SHOWN_CARD's list of actions).
    repeats_last_card = models.BooleanField(
        "repeats the last card",
        null=True,
        default=False,
        help_text="The user's card before this lookup was of the same customer: Your recent lookups "
        "reads the first of such a run. Empty on a row that showed no card.",
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        default_permissions = ("view",)
        permissions = [("export_auditevent", "Can export the audit log as CSV")]
        indexes = [
            models.Index(fields=["user", "action", "-id"], name="audit_user_action_recent"),
            # "Who already sent this customer the link": one indexed read per customer card.
            models.Index("customer_id", "action", NEWEST_FIRST, name="audit_customer_action_recent"),
            # "Did this user look this customer up lately?", asked before a link copy is believed:
            # one seek to the user's lookups of the customer within the window, however long the trail.
            models.Index(
                fields=["user", "customer_id", "action", "occurred_at"], name="audit_user_customer_recent"
            ),
            # "Your recent lookups": the customers this user was shown a card of, by a lookup or by a
            # search by e-mail with one match, newest first, without sorting a long trail. A bulk
            # lookup's rows are not cards shown, and would push every single lookup out of the list.
            # A run of cards of one customer is here by its first card only (repeats_last_card),
            # so a page that refreshed itself a thousand times is one entry, not a thousand.
            models.Index(
                "user",
                NEWEST_FIRST,
                name="audit_user_shown_recent",
                condition=models.Q(repeats_last_card=False),
            ),
            # ... and the newest card of one user and one customer, one seek each.
            models.Index(
                "user",
                "customer_id",
                NEWEST_FIRST,
                name="audit_user_customer_cards",
                condition=models.Q(repeats_last_card__isnull=False),
            ),
            # History's lookups of a customer (customers/services/history.py): those not marked as
            # repeating the lookup before them, newest first, whatever the number of those marked.
            models.Index(
                "customer_id",
                "action",
                "outcome",
                NEWEST_FIRST,
                name="audit_customer_kyc_changes",
                condition=models.Q(kyc_unchanged=False),
            ),
        ]

    def __str__(self) -> str:
        subject = self.customer_id or f"{self.match_count or 0} customers"
        return f"{self.get_action_display()} of {subject} by {self.user.get_username()}"


class AuditExport(UserActionRecord):
    """One CSV export of the audit log: who took a copy of the trail, when, of how much, and how chosen.

    Kept apart from AuditEvent, whose rows are each about one customer; an export is about the
    log itself. Read in the admin by whoever may read the audit log, and never changed or deleted.
    """

    exported_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = acting_user("audit_exports", "Users who exported the audit log")
    rows = models.PositiveIntegerField("events exported")
    all_matching = models.BooleanField(
        "all matching", help_text="Every event the filters matched, rather than the rows ticked on one page."
    )
    filters = models.TextField(
        blank=True, help_text="The audit log's filters and search at the time, as in its address."
    )

    class Meta:
        ordering = ["-exported_at", "-id"]
        # No permissions of its own: reading it takes customers.view_auditevent (view_permission, in admin/).
        default_permissions = ()
        verbose_name = "audit log export"


class BulkLookup(UserActionRecord):
    """One bulk lookup: who checked a list of customers, when, and how much of the list was read.

    Its ID is the batch ID that each of its lookups (AuditEvent.batch) carries, so an auditor can
    read "user X checked these 312 customers at 09:14". Counts only: the customers are in the
    lookups, and their names and statuses only in the cache while the batch is watched.
    """

    id = models.UUIDField("batch ID", primary_key=True, default=uuid.uuid4, editable=False)
    user = acting_user("bulk_lookups", "Users who ran bulk lookups")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ids_submitted = models.PositiveIntegerField("entries pasted")
    ids_valid = models.PositiveIntegerField("customer IDs")
    duplicates = models.PositiveIntegerField("duplicates ignored")
    rejected = models.PositiveIntegerField("not customer IDs")
    finished_at = models.DateTimeField(null=True, blank=True)
    not_fetched = models.PositiveIntegerField(
        "not fetched",
        default=0,
        help_text="Customers never sent to Align: the batch ran out of time, or nobody was watching it.",
    )

    class Meta:
        ordering = ["-started_at"]
        # No permissions of its own: reading it takes customers.view_auditevent (view_permission, in admin/).
        default_permissions = ()
        verbose_name = "bulk lookup"


class BulkLookupExport(UserActionRecord):
    """One CSV download of a bulk lookup's results, written before the file is sent."""

    batch = models.ForeignKey(BulkLookup, on_delete=models.PROTECT, related_name="exports")
    user = acting_user("bulk_lookup_exports", "Users who exported bulk lookups")
    exported_at = models.DateTimeField(auto_now_add=True, db_index=True)
    rows = models.PositiveIntegerField("customers exported")
    with_email = models.BooleanField("with e-mail addresses")
    status_filter = models.CharField(
        "status filter", max_length=40, blank=True, help_text="The one status exported; empty for all."
    )

    class Meta:
        ordering = ["-exported_at", "-id"]
        default_permissions = ()
        verbose_name = "bulk lookup export"


class KycWebhookEvent(models.Model):
    """One `customer.kycs.updated` delivery from Align: the KYC state it carried, and when.

    The company's record of how each customer's KYC moved, kept whether or not anyone looked the
    customer up. Status codes and IDs only: the e-mail, name and address Align sends in the same
    delivery are never stored. Written by the webhook receiver, never changed or deleted.
    """

    delivery_key = models.CharField(
        "delivery key",
        max_length=64,
        unique=True,
        help_text="SHA-256 of the event type, customer ID, Align's time and the body's digest: "
        "a delivery Align sends again is stored once.",
    )
    customer_id = models.UUIDField("customer ID")
    event_created_at = models.DateTimeField("Align's time", help_text="When Align says the change happened.")
    received_at = models.DateTimeField("received", auto_now_add=True)
    kyc_status = models.CharField(
        "KYC status",
        max_length=40,
        blank=True,
        help_text="As in the audit log: empty when the customer has no KYC record.",
    )
    kyc_sub_status = models.CharField("KYC sub-status", max_length=60, blank=True)
    breakdown = models.JSONField(
        "status breakdown", default=list, help_text="[currency, rail, status] per row, as Align sent them."
    )

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)
        verbose_name = "KYC webhook event"
        indexes = [
            # "The newest events of this customer", for the History section and an open page's poll.
            models.Index(fields=["customer_id", "-id"], name="webhook_customer_recent"),
            # "Did Align say anything of this customer since then?", asked as a lookup's outcome is written.
            models.Index(fields=["customer_id", "event_created_at"], name="webhook_customer_since"),
        ]

    def __str__(self) -> str:
        return f"KYC webhook event {self.pk} for {self.customer_id}"
