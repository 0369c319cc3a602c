"""The audit log in Django's admin: readable and exportable, never editable.

Nobody changes or deletes the record of who looked at a customer, superusers included, so
every write permission is refused here whatever the user's permissions say.

The list and the event page show times with seconds and zone, usernames, and KYC statuses in the
product's words; templates/admin/customers/auditevent/ adds the stylesheet that keeps IDs and
times on one line.
"""

import csv
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from functools import cached_property

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import Count, Exists, Max, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from customers.forms import parse_customer_reference
from customers.models import AuditEvent, AuditExport, BulkLookup, BulkLookupExport, KycWebhookEvent
from customers.services import audit
from customers.services import decisions as presentation
from customers.services.email_search import email_hash_of_text
from customers.services.spreadsheets import spreadsheet_safe
from customers.templatetags.kyc import badge

logger = logging.getLogger(__name__)

admin.site.site_header = "KYC Desk administration"
admin.site.site_title = "KYC Desk administration"

CSV_COLUMNS = [
    "occurred_at",
    "user_id",
    "username",
    "action",
    "customer_id",
    "outcome",
    "kyc_status",
    "is_refresh",
    "automatic",
    "client_ip",
    "request_id",
    "batch_id",
    "match_count",
    "matched_customer_ids",
    "email_hash",
]
MIN_PREFIX_CHARS = 4
HEX_DIGITS_IN_ID = 32
EXPORT_NOT_RECORDED = (
    "Nothing was exported: the export could not be put on record in the audit log. "
    "Try again; if it keeps happening, tell an administrator."
)
BREAKABLE_COLON = mark_safe(":<wbr>")


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can stream."""

    def write(self, value: str) -> str:
        return value


def audit_time(moment: datetime) -> SafeString:
    """A time an auditor can quote: date, seconds and zone, in the dashboard's time zone."""
    local = timezone.localtime(moment)
    return format_html(
        '<time class="audit-time" datetime="{}">{}</time>', local.isoformat(), f"{local:%Y-%m-%d %H:%M:%S %Z}"
    )


# The audit log only grows (millions of rows a year for a team), so its list never counts or
# groups over the whole table: counting stops here, and the filters below read indexes only.
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


class UserWithEventsFilter(admin.RelatedFieldListFilter):
    """The users who have events, found by one indexed probe per user, not a DISTINCT over the log."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin) or ["username"]
        users = field.related_model._default_manager.filter(
            Exists(AuditEvent.objects.filter(user=OuterRef("pk")))
        ).order_by(*ordering)
        return [(user.pk, str(user)) for user in users]


class MonthFilter(admin.SimpleListFilter):
    """One month of the log, in the dashboard's time zone, from the first event's month to the last.

    Stands in for a date hierarchy, whose year and month links take a DISTINCT over every row:
    the months offered come from the oldest and newest events alone (one index read each).
    """

    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        times = AuditEvent.objects.values_list("occurred_at", flat=True)
        oldest = times.order_by("occurred_at").first()
        newest = times.order_by("-occurred_at").first()
        if oldest is None or newest is None:
            return []
        oldest, newest = timezone.localtime(oldest), timezone.localtime(newest)
        months = []
        year, month = newest.year, newest.month
        while (year, month) >= (oldest.year, oldest.month):
            months.append((f"{year:04d}-{month:02d}", f"{datetime(year, month, 1):%B %Y}"))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return months

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            year, month = (int(part) for part in self.value().split("-"))
            start = timezone.make_aware(datetime(year, month, 1))
            end = timezone.make_aware(datetime(year + month // 12, month % 12 + 1, 1))
        except (ValueError, OverflowError):
            return queryset.none()
        return queryset.filter(occurred_at__gte=start, occurred_at__lt=end)


class BulkLookupFilter(admin.SimpleListFilter):
    """The lookups of one bulk lookup, reached from its page (`?batch__id__exact=<batch ID>`).

    Offered only once chosen: listing every batch here would read the whole log for its batches.
    """

    title = "bulk lookup"
    parameter_name = "batch__id__exact"

    def lookups(self, request, model_admin):
        if self.value() is None:
            return []
        batch_id = _batch_id(self.value())
        return [(self.value(), presentation.short_customer_id(batch_id) if batch_id else "Not a batch ID")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        batch_id = _batch_id(self.value())
        return queryset.filter(batch_id=batch_id) if batch_id else queryset.none()


def _batch_id(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def batch_lookups_link(batch: BulkLookup) -> SafeString:
    """A link to the audit log filtered to this batch's lookups (they carry its ID)."""
    url = reverse("admin:customers_auditevent_changelist")
    return format_html(
        '<a href="{}?{}={}">Its lookups in the audit log</a>', url, BulkLookupFilter.parameter_name, batch.pk
    )


# A keyed e-mail hash as the audit trail stores it (customers/services/email_search.py): 64 hex digits.
EMAIL_HASH = re.compile(r"[0-9a-f]{64}")


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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "time",
        "username",
        "action",
        "short_customer",
        "outcome",
        "kyc_status_seen",
        "refresh",
        "client_ip_column",
        "request_id",
    ]
    # Every field of the model, the time first; tests/unit/test_admin.py fails when one is left out.
    fieldsets = [
        (None, {"fields": ["time", "username", "action", "full_customer", "outcome", "kyc_status_seen"]}),
        (
            "Details",
            {
                "fields": [
                    "refresh",
                    "automatic_refresh",
                    "client_ip",
                    "request_id",
                    "bulk_lookup",
                    "event_id",
                ]
            },
        ),
        # A search by e-mail (issue #14): what it found, and the keyed hash of the address.
        ("Search by e-mail", {"fields": ["match_count", "matched_customer_ids", "email_hash"]}),
    ]
    readonly_fields = [
        "time",
        "username",
        "full_customer",
        "kyc_status_seen",
        "refresh",
        "automatic_refresh",
        "bulk_lookup",
        "event_id",
        "match_count",
        "matched_customer_ids",
        "email_hash",
    ]
    list_filter = [
        ("user", UserWithEventsFilter),
        "action",
        "outcome",
        "is_refresh",
        "automatic",
        "occurred_at",
        MonthFilter,
        BulkLookupFilter,
    ]
    list_select_related = ["user"]
    search_fields = ["customer_id"]
    search_help_text = (
        "Customer ID: the whole ID (or a link ending in it), or its first characters. "
        "Or an e-mail address: it is hashed with the audit key, as searches by e-mail are stored, "
        "and matched in any letter case; the address bar then shows the hash, never the e-mail."
    )
    actions = ["export_csv"]
    list_per_page = 100
    paginator = CappedCountPaginator
    # The admin would otherwise count the whole log again, to print "(N total)" beside a search.
    show_full_result_count = False

    @admin.display(description="time", ordering="occurred_at")
    def time(self, event: AuditEvent) -> SafeString:
        return audit_time(event.occurred_at)

    @admin.display(description="user", ordering="user__username")
    def username(self, event: AuditEvent) -> str:
        return event.user.get_username()

    @admin.display(description="customer ID", ordering="customer_id")
    def short_customer(self, event: AuditEvent) -> SafeString:
        full_id = event.customer_id
        if full_id is None:  # a search by e-mail that did not find exactly one customer
            return self.get_empty_value_display()
        return format_html(
            '<code class="audit-id" title="{}">{}</code>', full_id, presentation.short_customer_id(full_id)
        )

    @admin.display(description="customer ID")
    def full_customer(self, event: AuditEvent) -> SafeString:
        return format_html('<code class="audit-id">{}</code>', event.customer_id)

    @admin.display(description="KYC status seen", ordering="kyc_status")
    def kyc_status_seen(self, event: AuditEvent) -> str:
        """The status in the customer card's words; none when no customer was found."""
        if event.outcome != AuditEvent.Outcome.FOUND or event.customer_id is None:
            return self.get_empty_value_display()
        return badge(presentation.seen_status_badge(event.outcome, event.kyc_status))

    @admin.display(description="refresh", ordering="is_refresh")
    def refresh(self, event: AuditEvent) -> str:
        """Words, not the admin's red cross, which would read as a failure on most rows."""
        return "Yes" if event.is_refresh else "No"

    @admin.display(description="automatic refresh", ordering="automatic")
    def automatic_refresh(self, event: AuditEvent) -> str:
        """Made by the customer's open page by itself (issue #13), not by a click on Refresh."""
        return "Yes" if event.automatic else "No"

    @admin.display(description="client IP", ordering="client_ip")
    def client_ip_column(self, event: AuditEvent) -> str:
        """An IPv6 address may break between its groups, so it never pushes the last column away."""
        if event.client_ip is None:
            return self.get_empty_value_display()
        groups = format_html_join(BREAKABLE_COLON, "{}", ((group,) for group in event.client_ip.split(":")))
        return format_html('<span class="audit-ip">{}</span>', groups)

    @admin.display(description="audit event ID")
    def event_id(self, event: AuditEvent) -> int:
        return event.pk

    @admin.display(description="bulk lookup")
    def bulk_lookup(self, event: AuditEvent) -> SafeString | str:
        """The batch this lookup was part of, as a link to it; none for a lookup of one customer."""
        if event.batch_id is None:
            return "None: a lookup of one customer"
        url = reverse("admin:customers_bulklookup_change", args=[event.batch_id])
        return format_html('<a href="{}"><code class="audit-id">{}</code></a>', url, event.batch_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("customers.export_auditevent")

    def changelist_view(self, request: HttpRequest, extra_context=None):
        """An e-mail typed into the search box is swapped for its keyed hash in the address, so it
        stays out of the browser's history, the page's links and a recorded export's filters."""
        hashed = email_hash_of_text(request.GET.get("q", ""))
        if hashed is not None:
            query = request.GET.copy()
            query["q"] = hashed
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip().lower()
        if EMAIL_HASH.fullmatch(term):
            return queryset.filter(email_hash=term), False
        return search_by_customer_id(queryset, search_term), False

    @admin.action(description="Export selected events as CSV", permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse | None:
        """The chosen events as CSV, made only once the export itself is on record (AuditExport).

        The events are pinned to those that exist at that moment, so the file holds exactly the
        number of rows recorded, even while new events arrive that the filters match.
        """
        pinned = queryset.aggregate(newest=Max("id"), rows=Count("id"))
        queryset = queryset.filter(id__lte=pinned["newest"] or 0)
        try:
            export = audit.record_export(
                request,
                rows=pinned["rows"],
                # The changelist's own query string: its filters, search and date, as in its address.
                filters=request.GET.urlencode(),
                all_matching=forms.BooleanField().to_python(request.POST.get("select_across")),
            )
        except audit.AuditUnavailable:
            self.message_user(request, EXPORT_NOT_RECORDED, messages.ERROR)
            return None
        logger.info("Audit log exported: %s events (audit log export %s)", export.rows, export.pk)
        filename = f"kyc-desk-audit-{timezone.now():%Y%m%d-%H%M%S}.csv"
        response = StreamingHttpResponse(self._csv_lines(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response

    def _csv_lines(self, queryset: QuerySet) -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(CSV_COLUMNS)
        for event in queryset.select_related("user").order_by("occurred_at", "id").iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    event.occurred_at.isoformat(),
                    event.user_id,
                    spreadsheet_safe(event.user.get_username()),
                    event.action,
                    event.customer_id or "",
                    event.outcome,
                    spreadsheet_safe(event.kyc_status),
                    event.is_refresh,
                    event.automatic,
                    event.client_ip or "",
                    event.request_id,
                    event.batch_id or "",
                    "" if event.match_count is None else event.match_count,
                    " ".join(event.matched_customer_ids),
                    event.email_hash,
                ]
            )


@admin.register(AuditExport)
class AuditExportAdmin(admin.ModelAdmin):
    """Who exported the audit log: read by whoever may read the log, and changed by nobody."""

    list_display = ["time", "username", "rows", "selection", "filters_used", "client_ip", "request_id"]
    fields = ["time", "username", "rows", "selection", "filters_used", "client_ip", "request_id"]
    readonly_fields = fields
    list_filter = [("user", admin.RelatedOnlyFieldListFilter), "exported_at"]
    list_select_related = ["user"]
    date_hierarchy = "exported_at"
    actions = None

    @admin.display(description="time", ordering="exported_at")
    def time(self, export: AuditExport) -> SafeString:
        return audit_time(export.exported_at)

    @admin.display(description="user", ordering="user__username")
    def username(self, export: AuditExport) -> str:
        return export.user.get_username()

    @admin.display(description="selection", ordering="all_matching")
    def selection(self, export: AuditExport) -> str:
        return "All events the filters matched" if export.all_matching else "Rows ticked on one page"

    @admin.display(description="filters")
    def filters_used(self, export: AuditExport) -> SafeString | str:
        if not export.filters:
            return "None"
        return format_html('<code class="audit-filters">{}</code>', export.filters)

    def has_view_permission(self, request: HttpRequest, obj: AuditExport | None = None) -> bool:
        """Whoever may read the audit log may read who exported it."""
        return request.user.has_perm("customers.view_auditevent")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditExport | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditExport | None = None) -> bool:
        return False


@admin.register(BulkLookup)
class BulkLookupAdmin(admin.ModelAdmin):
    """Who checked a list of customers, when, and how many: read by whoever may read the audit log."""

    list_display = ["time", "username", "ids_valid", "duplicates", "rejected", "not_fetched", "finished"]
    fields = [
        "time",
        "username",
        "batch_id",
        "ids_submitted",
        "ids_valid",
        "duplicates",
        "rejected",
        "not_fetched",
        "finished",
        "client_ip",
        "request_id",
        "lookups",
    ]
    readonly_fields = fields
    list_filter = [("user", admin.RelatedOnlyFieldListFilter), "started_at"]
    list_select_related = ["user"]
    search_fields = ["=id"]
    search_help_text = "Batch ID: the whole ID, as the lookups in the audit log carry it."
    actions = None
    paginator = CappedCountPaginator
    show_full_result_count = False

    @admin.display(description="time", ordering="started_at")
    def time(self, batch: BulkLookup) -> SafeString:
        return audit_time(batch.started_at)

    @admin.display(description="user", ordering="user__username")
    def username(self, batch: BulkLookup) -> str:
        return batch.user.get_username()

    @admin.display(description="batch ID")
    def batch_id(self, batch: BulkLookup) -> SafeString:
        return format_html('<code class="audit-id">{}</code>', batch.pk)

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, batch: BulkLookup) -> SafeString | str:
        return audit_time(batch.finished_at) if batch.finished_at else "Not recorded"

    @admin.display(description="lookups")
    def lookups(self, batch: BulkLookup) -> SafeString:
        return batch_lookups_link(batch)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        """Batch IDs are UUIDs: the whole ID finds its batch, anything else finds none."""
        if not search_term.strip():
            return queryset, False
        batch_id = _batch_id(search_term.strip())
        return (queryset.filter(pk=batch_id) if batch_id else queryset.none()), False

    def has_view_permission(self, request: HttpRequest, obj: BulkLookup | None = None) -> bool:
        return request.user.has_perm("customers.view_auditevent")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BulkLookup | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BulkLookup | None = None) -> bool:
        return False


@admin.register(BulkLookupExport)
class BulkLookupExportAdmin(admin.ModelAdmin):
    """Who downloaded a bulk lookup's CSV, of which batch, how much, and whether with e-mail addresses."""

    list_display = ["time", "username", "batch_link", "rows", "with_email", "status_filter"]
    fields = [
        "time",
        "username",
        "batch_link",
        "rows",
        "with_email",
        "status_filter",
        "client_ip",
        "request_id",
    ]
    readonly_fields = fields
    list_filter = [("user", admin.RelatedOnlyFieldListFilter), "with_email", "exported_at"]
    list_select_related = ["user"]
    actions = None
    paginator = CappedCountPaginator
    show_full_result_count = False

    @admin.display(description="time", ordering="exported_at")
    def time(self, export: BulkLookupExport) -> SafeString:
        return audit_time(export.exported_at)

    @admin.display(description="user", ordering="user__username")
    def username(self, export: BulkLookupExport) -> str:
        return export.user.get_username()

    @admin.display(description="bulk lookup")
    def batch_link(self, export: BulkLookupExport) -> SafeString:
        url = reverse("admin:customers_bulklookup_change", args=[export.batch_id])
        return format_html(
            '<a href="{}"><code class="audit-id">{}</code></a>',
            url,
            presentation.short_customer_id(export.batch_id),
        )

    def has_view_permission(self, request: HttpRequest, obj: BulkLookupExport | None = None) -> bool:
        return request.user.has_perm("customers.view_auditevent")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BulkLookupExport | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BulkLookupExport | None = None) -> bool:
        return False


@admin.register(KycWebhookEvent)
class KycWebhookEventAdmin(admin.ModelAdmin):
    """The KYC updates Align pushed, for auditors: read-only, like the audit log.

    Needs customers.view_kycwebhookevent (the Compliance auditors group has it, from migration
    0008). Codes and IDs only: the delivery's personal data was never stored.
    """

    list_display = ["received", "short_customer", "status", "sub_status", "align_time"]
    fields = [
        "received",
        "align_time",
        "full_customer",
        "status",
        "sub_status",
        "breakdown_rows",
        "delivery_key",
        "event_id",
    ]
    readonly_fields = fields
    list_filter = ["kyc_status", "received_at"]
    search_fields = ["customer_id"]
    search_help_text = "Customer ID: the whole ID (or a link ending in it), or its first characters."
    actions = None
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="received", ordering="received_at")
    def received(self, event: KycWebhookEvent) -> SafeString:
        return audit_time(event.received_at)

    @admin.display(description="Align's time", ordering="event_created_at")
    def align_time(self, event: KycWebhookEvent) -> SafeString:
        return audit_time(event.event_created_at)

    @admin.display(description="customer ID", ordering="customer_id")
    def short_customer(self, event: KycWebhookEvent) -> SafeString:
        return format_html(
            '<code class="audit-id" title="{}">{}</code>',
            event.customer_id,
            presentation.short_customer_id(event.customer_id),
        )

    @admin.display(description="customer ID")
    def full_customer(self, event: KycWebhookEvent) -> SafeString:
        return format_html('<code class="audit-id">{}</code>', event.customer_id)

    @admin.display(description="KYC status", ordering="kyc_status")
    def status(self, event: KycWebhookEvent) -> str:
        return badge(presentation.seen_status_badge(AuditEvent.Outcome.FOUND, event.kyc_status))

    @admin.display(description="sub-status")
    def sub_status(self, event: KycWebhookEvent) -> str:
        return event.kyc_sub_status or self.get_empty_value_display()

    @admin.display(description="status breakdown")
    def breakdown_rows(self, event: KycWebhookEvent) -> SafeString | str:
        if not event.breakdown:
            return "None"
        return format_html_join(
            mark_safe("<br>"), "<code>{} · {}</code>: {}", ((*row,) for row in event.breakdown)
        )

    @admin.display(description="event ID")
    def event_id(self, event: KycWebhookEvent) -> int:
        return event.pk

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        return search_by_customer_id(queryset, search_term), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: KycWebhookEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: KycWebhookEvent | None = None) -> bool:
        return False
