"""The audit log in Django's admin: readable and exportable, never editable.

Nobody changes or deletes the record of who looked at a customer, superusers included, so
every write permission is refused here whatever the user's permissions say.
"""

import csv
import logging
from collections.abc import Iterator

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from customers.forms import parse_customer_reference
from customers.models import AuditEvent

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
    "client_ip",
    "request_id",
]
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MIN_PREFIX_CHARS = 4


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can stream."""

    def write(self, value: str) -> str:
        return value


def spreadsheet_safe(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "user",
        "action",
        "customer_id",
        "outcome",
        "kyc_status",
        "is_refresh",
        "client_ip",
        "request_id",
    ]
    list_filter = [
        ("user", admin.RelatedOnlyFieldListFilter),
        "action",
        "outcome",
        "is_refresh",
        "occurred_at",
    ]
    list_select_related = ["user"]
    date_hierarchy = "occurred_at"
    search_fields = ["customer_id"]
    search_help_text = "Customer ID: the whole ID (or a link ending in it), or its first characters."
    actions = ["export_csv"]
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("customers.export_auditevent")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        """Customer IDs are stored as UUIDs, so match them as IDs rather than as free text."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(customer_id=parse_customer_reference(term)), False
        except ValueError:
            pass
        prefix = term.lower()
        if len(prefix.replace("-", "")) >= MIN_PREFIX_CHARS and set(prefix) <= set("0123456789abcdef-"):
            return queryset.filter(customer_id__istartswith=prefix), False
        return queryset.none(), False

    @admin.action(description="Export selected events as CSV", permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        logger.info("Audit log exported: %s events", queryset.count())
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
                    event.customer_id,
                    event.outcome,
                    spreadsheet_safe(event.kyc_status),
                    event.is_refresh,
                    event.client_ip or "",
                    event.request_id,
                ]
            )
