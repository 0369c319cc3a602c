"""Align's KYC webhook deliveries in the admin, for auditors: codes and IDs, read-only like the audit log."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from customers.admin.base import CappedCountPaginator, ReadOnlyAdmin, search_by_customer_id, time_column
from customers.models import AuditEvent, KycWebhookEvent
from customers.services import decisions as presentation
from customers.templatetags.kyc import badge


class KycWebhookEventAdmin(ReadOnlyAdmin):
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
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100

    received = time_column("received_at", "received")
    align_time = time_column("event_created_at", "Align's time")

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
