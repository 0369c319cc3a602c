"""Bulk lookups in the admin: who checked a list of customers, and who downloaded its results."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from customers.admin.audit import BulkLookupFilter, parse_batch_id
from customers.admin.base import AuditLogRecordAdmin
from customers.models import BulkLookup, BulkLookupExport
from customers.services import decisions as presentation
from dashboard.ops.records_admin import audit_time, time_column


def batch_lookups_link(batch: BulkLookup) -> SafeString:
    """A link to the audit log filtered to this batch's lookups (they carry its ID)."""
    url = reverse("admin:customers_auditevent_changelist")
    return format_html(
        '<a href="{}?{}={}">Its lookups in the audit log</a>', url, BulkLookupFilter.parameter_name, batch.pk
    )


class BulkLookupAdmin(AuditLogRecordAdmin):
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
    search_fields = ["=id"]
    search_help_text = "Batch ID: the whole ID, as the lookups in the audit log carry it."

    time = time_column("started_at")

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
        batch_id = parse_batch_id(search_term.strip())
        return (queryset.filter(pk=batch_id) if batch_id else queryset.none()), False


class BulkLookupExportAdmin(AuditLogRecordAdmin):
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

    time = time_column("exported_at")

    @admin.display(description="bulk lookup")
    def batch_link(self, export: BulkLookupExport) -> SafeString:
        url = reverse("admin:customers_bulklookup_change", args=[export.batch_id])
        return format_html(
            '<a href="{}"><code class="audit-id">{}</code></a>',
            url,
            presentation.short_customer_id(export.batch_id),
        )
