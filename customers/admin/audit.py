"""The audit log in the admin: who looked at which customer, searchable and exported as CSV, and by whom.

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

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ERROR_FLAG, IGNORED_PARAMS, PAGE_VAR, SEARCH_VAR
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, Max, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from customers.admin import activity
from customers.admin.base import (
    AuditLogRecordAdmin,
    CappedCountPaginator,
    ReadOnlyAdmin,
    breakable_ip,
    search_by_customer_id,
)
from customers.admin.words import badge_words, seen_status, seen_sub_status
from customers.forms import parse_customer_reference
from customers.models import AuditEvent, AuditExport
from customers.services import audit
from customers.services import decisions as presentation
from customers.services.email_search import email_hash_of_text
from customers.services.spreadsheets import BYTE_ORDER_MARK, csv_file_name, spreadsheet_safe
from customers.templatetags.kyc import badge
from dashboard.ops.records_admin import time_column

logger = logging.getLogger(__name__)

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
    # Added after the columns above, which scripts read by position: the sub-status code, then the
    # row in the words the list and the event page show.
    "kyc_sub_status",
    "action_words",
    "outcome_words",
    "kyc_status_words",
    "kyc_sub_status_words",
]
EXPORT_NOT_RECORDED = (
    "Nothing was exported: the export could not be put on record in the audit log. "
    "Try again; if it keeps happening, tell an administrator."
)


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can stream."""

    def write(self, value: str) -> str:
        return value


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
        batch_id = parse_batch_id(self.value())
        return [(self.value(), presentation.short_customer_id(batch_id) if batch_id else "Not a batch ID")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        batch_id = parse_batch_id(self.value())
        return queryset.filter(batch_id=batch_id) if batch_id else queryset.none()


def parse_batch_id(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


# A keyed e-mail hash as the audit trail stores it (customers/services/email_search.py): 64 hex digits.
EMAIL_HASH = re.compile(r"[0-9a-f]{64}")


# What a list address carries besides its filters: paging, sorting and the admin's own flags.
NOT_FILTERS = {*IGNORED_PARAMS, PAGE_VAR, ERROR_FLAG} - {SEARCH_VAR}
YES_NO = {"1": "yes", "0": "no"}


def export_name_details(query: QueryDict, *, all_matching: bool) -> list[str]:
    """What an export of the list holds, for its file name: each filter and the search, as in the
    address, and whether only rows ticked on a page were chosen (e.g. "outcome-found", "user-j.smith")."""
    filters = [(key, value) for key, value in query.items() if key not in NOT_FILTERS and value]
    details = [_filter_in_words(key, value) for key, value in filters]
    return details if all_matching else [*details, "selected-rows"]


def _filter_in_words(key: str, value: str) -> str:
    """One filter of the list, named by the field it filters and the value chosen; IDs shortened."""
    field = key.split("__")[0]
    if key == SEARCH_VAR:
        return f"search-{_search_in_words(value)}"
    if key == "user__id__exact":
        user = user_chosen(value)
        return f"user-{user.get_username() if user else value}"
    if key == BulkLookupFilter.parameter_name:
        return f"batch-{value[:8]}"
    if key.endswith("__gte"):
        return f"from-{value[:10]}"
    if key.endswith("__lt"):
        return f"before-{value[:10]}"
    if key.endswith("__exact") and value in YES_NO:
        return f"{field}-{YES_NO[value]}"
    return f"{field}-{value}"


def user_chosen(user_id: str):
    """The user whose ID the user filter holds; None when it holds none, or no user has it."""
    return get_user_model()._default_manager.filter(pk=user_id).first() if user_id.isdigit() else None


def _search_in_words(term: str) -> str:
    """A customer ID as the list shortens it, an e-mail's hash by its start: never a long code."""
    term = term.strip().lower()
    if EMAIL_HASH.fullmatch(term):
        return f"email-{term[:8]}"
    try:
        return presentation.short_customer_id(parse_customer_reference(term))
    except ValueError:
        return term


class AuditEventAdmin(ReadOnlyAdmin):
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
        (
            None,
            {
                "fields": [
                    "time",
                    "username",
                    "action",
                    "full_customer",
                    "outcome",
                    "kyc_status_seen",
                    "kyc_sub_status_seen",
                ]
            },
        ),
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
        # What the database marked as the outcome was written, for the cards read later (issue #21).
        ("Read by later cards", {"fields": ["kyc_unchanged_mark", "repeats_last_card_mark"]}),
    ]
    readonly_fields = [
        "time",
        "username",
        "full_customer",
        "kyc_status_seen",
        "kyc_sub_status_seen",
        "refresh",
        "automatic_refresh",
        "bulk_lookup",
        "event_id",
        "match_count",
        "matched_customer_ids",
        "email_hash",
        "kyc_unchanged_mark",
        "repeats_last_card_mark",
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

    time = time_column("occurred_at")

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
        """The status in the customer card's words; none when no customer was shown."""
        status = seen_status(event)
        return self.get_empty_value_display() if status is None else badge(status)

    @admin.display(description="KYC sub-status seen")
    def kyc_sub_status_seen(self, event: AuditEvent) -> str:
        """The sub-status in the card's words; none when Align sent none, no customer was shown, or
        for rows from before it was kept."""
        sub_status = seen_sub_status(event)
        return self.get_empty_value_display() if sub_status is None else badge(sub_status)

    @admin.display(description="refresh", ordering="is_refresh")
    def refresh(self, event: AuditEvent) -> str:
        """Words, not the admin's red cross, which would read as a failure on most rows."""
        return "Yes" if event.is_refresh else "No"

    @admin.display(description="automatic refresh", ordering="automatic")
    def automatic_refresh(self, event: AuditEvent) -> str:
        """Made by the customer's open page by itself (issue #13), not by a click on Refresh."""
        return "Yes" if event.automatic else "No"

    @admin.display(description="KYC unchanged")
    def kyc_unchanged_mark(self, event: AuditEvent) -> str:
        """Saw what the lookup before it saw, so History skips it (customers/services/audit.py)."""
        return "Yes" if event.kyc_unchanged else "No"

    @admin.display(description="repeats the last card")
    def repeats_last_card_mark(self, event: AuditEvent) -> str:
        """Followed a card of the same customer, so Your recent lookups reads its run by the first;
        empty for a row that showed no card."""
        if event.repeats_last_card is None:
            return self.get_empty_value_display()
        return "Yes" if event.repeats_last_card else "No"

    @admin.display(description="client IP", ordering="client_ip")
    def client_ip_column(self, event: AuditEvent) -> str:
        """An IPv6 address may break between its groups, so it never pushes the last column away."""
        if event.client_ip is None:
            return self.get_empty_value_display()
        return breakable_ip(event.client_ip)

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

    def get_urls(self) -> list[URLPattern]:
        """The audit log's pages and, before them (the change page would take its path), a user's activity."""
        activity_page = self.admin_site.admin_view(self.activity_view)
        return [
            path("activity/<int:user_id>/", activity_page, name="customers_auditevent_activity"),
            *super().get_urls(),
        ]

    def activity_view(self, request: HttpRequest, user_id: int) -> TemplateResponse:
        """Everything one user did (admin/activity.py), read by whoever may read the audit log."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        person = get_object_or_404(get_user_model(), pk=user_id)
        return activity.activity_response(request, self.admin_site, person)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("customers.export_auditevent")

    def changelist_view(self, request: HttpRequest, extra_context=None):
        """An e-mail typed into the search box is swapped for its keyed hash in the address, so it
        stays out of the browser's history, the page's links and a recorded export's filters.

        Filtered to one user, the list offers everything else that user did (`activity_of`).
        """
        hashed = email_hash_of_text(request.GET.get("q", ""))
        if hashed is not None:
            query = request.GET.copy()
            query["q"] = hashed
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        person = user_chosen(request.GET.get("user__id__exact", ""))
        return super().changelist_view(request, {**(extra_context or {}), "activity_of": person})

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
        details = export_name_details(request.GET, all_matching=export.all_matching)
        filename = csv_file_name("audit-log", *details, made_at=export.exported_at)
        response = StreamingHttpResponse(self._csv_lines(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response

    def _csv_lines(self, queryset: QuerySet) -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield BYTE_ORDER_MARK + writer.writerow(CSV_COLUMNS)
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
                    spreadsheet_safe(event.kyc_sub_status),
                    event.get_action_display(),
                    event.get_outcome_display(),
                    spreadsheet_safe(badge_words(seen_status(event))),
                    spreadsheet_safe(badge_words(seen_sub_status(event))),
                ]
            )


class AuditExportAdmin(AuditLogRecordAdmin):
    """Who exported the audit log: read by whoever may read the log, and changed by nobody."""

    list_display = ["time", "username", "rows", "selection", "filters_used", "client_ip", "request_id"]
    fields = ["time", "username", "rows", "selection", "filters_used", "client_ip", "request_id"]
    readonly_fields = fields
    list_filter = [("user", admin.RelatedOnlyFieldListFilter), "exported_at"]
    date_hierarchy = "exported_at"

    time = time_column("exported_at")

    @admin.display(description="selection", ordering="all_matching")
    def selection(self, export: AuditExport) -> str:
        return "All events the filters matched" if export.all_matching else "Rows ticked on one page"

    @admin.display(description="filters")
    def filters_used(self, export: AuditExport) -> SafeString | str:
        if not export.filters:
            return "None"
        return format_html('<code class="audit-filters">{}</code>', export.filters)
