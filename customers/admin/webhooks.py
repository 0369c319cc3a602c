"""Align's KYC webhook deliveries in the admin, for auditors: in the customer card's words, read-only.

Statuses, sub-statuses and rail codes read as the card reads them (customers.services.decisions);
a code the dashboard does not know is shown as Align sent it and marked unrecognised.
"""

import enum
from typing import TypeVar

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from customers.admin.base import CappedCountPaginator, ReadOnlyAdmin, search_by_customer_id
from customers.align.records import Currency, KycStatus, PaymentRail, RailStatus, StatusBreakdownRow
from customers.models import AuditEvent, KycWebhookEvent
from customers.services import decisions as presentation
from customers.templatetags.kyc import UNRECOGNISED_NOTE, badge
from dashboard.ops.records_admin import time_column


class KycStatusFilter(admin.SimpleListFilter):
    """The overall status in the card's words: the statuses the dashboard knows, and the rest as one.

    A fixed list rather than one value per status stored, which would read the whole table.
    """

    title = "KYC status"
    parameter_name = "kyc_status"
    OTHER = "other"
    # Each choice's value in the address, and the status stored, as the audit log stores it.
    STORED = {
        **{str(status): str(status) for status in KycStatus},
        "none": "",
        "not_sent": AuditEvent.KYC_STATUS_NOT_SENT,
    }

    def lookups(self, request, model_admin):
        found = AuditEvent.Outcome.FOUND
        choices = [
            (value, presentation.seen_status_badge(found, code).label) for value, code in self.STORED.items()
        ]
        return [*choices, (self.OTHER, "Other (unrecognised)")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() == self.OTHER:
            return queryset.exclude(kyc_status__in=self.STORED.values())
        if self.value() not in self.STORED:
            return queryset.none()
        return queryset.filter(kyc_status=self.STORED[self.value()])


KnownCode = TypeVar("KnownCode", bound=enum.StrEnum)


def breakdown_row(codes: list[str]) -> StatusBreakdownRow:
    """A stored [currency, rail, status] row as the card's row, its codes recognised where known."""
    currency, rail, status = codes
    return StatusBreakdownRow(
        _known(Currency, currency), _known(PaymentRail, rail), _known(RailStatus, status)
    )


def _known(kind: type[KnownCode], code: str) -> KnownCode | str:
    try:
        return kind(code)
    except ValueError:
        return code


class KycWebhookEventAdmin(ReadOnlyAdmin):
    """The KYC updates Align pushed, for auditors: read-only, like the audit log.

    Needs customers.view_kycwebhookevent (the Compliance auditors group has it, from migration
    0008). Codes and IDs only, shown in words: the delivery's personal data was never stored.
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
    list_filter = [KycStatusFilter, "received_at"]
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
        if not event.kyc_sub_status:
            return self.get_empty_value_display()
        return badge(presentation.sub_status_badge(event.kyc_sub_status))

    @admin.display(description="status breakdown")
    def breakdown_rows(self, event: KycWebhookEvent) -> SafeString | str:
        """One line per currency and rail, as on the customer card: "USD · ACH: Pending"."""
        if not event.breakdown:
            return "None"
        rows = [breakdown_row(codes) for codes in event.breakdown]
        return format_html_join(
            mark_safe("<br>"),
            "{}{}: {}",
            (
                (
                    presentation.breakdown_label(row),
                    "" if presentation.breakdown_is_recognised(row) else UNRECOGNISED_NOTE,
                    badge(presentation.breakdown_status_badge(row.status)),
                )
                for row in rows
            ),
        )

    @admin.display(description="event ID")
    def event_id(self, event: KycWebhookEvent) -> int:
        return event.pk

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        return search_by_customer_id(queryset, search_term), False
