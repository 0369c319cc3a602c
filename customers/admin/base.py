"""What every admin page of the dashboard's records shares: read, never written, by whoever may read them.

Nobody changes or deletes the record of who looked at a customer, superusers included, so every
write permission is refused here whatever the user's permissions say. Times show with seconds and
zone, so an auditor can quote them; lists that only grow count up to a cap.
"""

import uuid
from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from customers.forms import parse_customer_reference
from dashboard.ops.records_admin import ReadOnlyModelAdmin

MIN_PREFIX_CHARS = 4
HEX_DIGITS_IN_ID = 32


# The audit log only grows (millions of rows a year for a team), so its list never counts or
# groups over the whole table: counting stops here, and its filters (admin/audit.py) read indexes only.
AUDIT_LIST_COUNT_CAP = 10_000


class AtLeast(int):
    """A count that stopped at its cap: it reads "10,000+" wherever the admin prints it."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class CappedCountPaginator(Paginator):
    """Counts at most AUDIT_LIST_COUNT_CAP matching rows, so a page costs the same on any size of log.

    Beyond the cap the list says "10,000+" and pages through the newest 10,000; the month, user
    and other filters and the customer search reach the older events.
    """

    @cached_property
    def count(self) -> int:
        matching = self.object_list.order_by()[: AUDIT_LIST_COUNT_CAP + 1].count()
        return AtLeast(AUDIT_LIST_COUNT_CAP) if matching > AUDIT_LIST_COUNT_CAP else matching


BREAKABLE_COLON = mark_safe(":<wbr>")


def breakable_ip(address: str) -> SafeString:
    """An IPv6 address may break between its groups, so it never pushes the last column away."""
    groups = format_html_join(BREAKABLE_COLON, "{}", ((group,) for group in address.split(":")))
    return format_html('<span class="audit-ip">{}</span>', groups)


def search_by_customer_id(queryset: QuerySet, search_term: str) -> QuerySet:
    """Customer IDs are stored as UUIDs, so match them as IDs rather than as free text."""
    term = search_term.strip()
    if not term:
        return queryset
    try:
        return queryset.filter(customer_id=parse_customer_reference(term))
    except ValueError:
        pass
    prefix = term.lower()
    hex_digits = prefix.replace("-", "")
    if MIN_PREFIX_CHARS <= len(hex_digits) <= HEX_DIGITS_IN_ID and set(prefix) <= set("0123456789abcdef-"):
        # The IDs that start so lie between the prefix padded with 0s and with fs: a range
        # the customer_id index answers, where a LIKE over the text reads every row.
        first, last = (uuid.UUID(hex_digits.ljust(HEX_DIGITS_IN_ID, pad)) for pad in "0f")
        return queryset.filter(customer_id__range=(first, last))
    return queryset.none()


def activity_url(user_id: int) -> str:
    """The page of everything one user did, sign-ins included (admin/activity.py)."""
    return reverse("admin:customers_auditevent_activity", args=[user_id])


class ReadOnlyAdmin(ReadOnlyModelAdmin):
    """A kind of the desk's records in the admin, read by whoever may read the audit log.

    Set view_permission to have it read with that permission instead of the model's own: the
    records about the audit log (its exports, the bulk lookups) are read by whoever may read the log.
    """

    @admin.display(description="user", ordering="user__username")
    def username(self, record: Model) -> SafeString:
        """The username, leading to everything that user did (admin/activity.py)."""
        username = record.user.get_username()
        return format_html(
            '<a href="{}" title="Everything {} did">{}</a>', activity_url(record.user_id), username, username
        )


class AuditLogRecordAdmin(ReadOnlyAdmin):
    """A record about what users did with the audit log's customers (bulk lookups, exports): read by
    whoever may read the log, in a list that only grows."""

    view_permission = "customers.view_auditevent"
    list_select_related = ["user"]
    paginator = CappedCountPaginator
    show_full_result_count = False
