"""Template filters over customers.services.decisions, so templates stay layout only."""

import uuid
from datetime import date, datetime

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from customers.services import decisions as presentation

register = template.Library()

UNRECOGNISED_NOTE = mark_safe(' <span class="badge-note">unrecognised</span>')

register.filter("kyc_summary", presentation.kyc_summary)
register.filter("customer_type_badge", presentation.customer_type_badge)
register.filter("breakdown_label", presentation.breakdown_label)
register.filter("breakdown_is_recognised", presentation.breakdown_is_recognised)
register.filter("breakdown_status_badge", presentation.breakdown_status_badge)
register.filter("inert_link_text", presentation.inert_link_text)
register.filter("short_id", presentation.short_customer_id)
register.filter("offers_new_kyc_session", presentation.offers_new_kyc_session)


@register.filter
def when_short(moment: datetime) -> str:
    """A time for a list: "14:02" today, "24 Nov 14:02" before, in the dashboard's time zone."""
    return _short_time(timezone.localtime(moment), timezone.localdate())


def _short_time(local: datetime, today: date) -> str:
    if local.date() == today:
        return local.strftime("%H:%M")
    return f"{local.day} {local:%b %H:%M}"


@register.filter
def seen_status_badge(event) -> presentation.Badge:
    return presentation.seen_status_badge(event.outcome, event.kyc_status)


@register.simple_tag
def badge(value: presentation.Badge) -> SafeString:
    """A status badge that says its meaning in words; colour only repeats it."""
    note = "" if value.recognised else UNRECOGNISED_NOTE
    return format_html(
        '<span class="badge badge-{}"><span class="badge-dot" aria-hidden="true"></span>{}{}</span>',
        value.tone,
        value.label,
        note,
    )


# "Who already copied it" beside the KYC link (issue #9, item 16).
@register.simple_tag(takes_context=True)
def link_copies_seen(context, events) -> presentation.LinkCopies | None:
    """The link's recent copies, worded for whoever is reading the card ("by you") right now."""
    customer = context.get("customer")
    return presentation.describe_link_copies(
        events,
        viewer_id=context["request"].user.pk,
        now=timezone.now(),
        kyc=customer.kycs if customer is not None else None,
    )


# One row of "Your recent lookups" (templates/customers/lookup.html), as it was written in the template.
RECENT_LOOKUP_ROW = (
    '<li><a href="{url}" hx-get="{url}" hx-push-url="true" title="{customer_id}">\n'
    '      <code class="recent-id">{short_id}</code>\n'
    "      {badge}\n"
    '      <time class="recent-time" datetime="{at}">{when}</time>\n'
    "    </a></li>"
)
# Any customer's address is this one's with the ID replaced: one reverse() per list, not per row.
_ANY_CUSTOMER = uuid.UUID(int=0)


@register.simple_tag
def recent_lookup_rows(events) -> SafeString:
    """The rows of Your recent lookups: the customer, what was seen, when; built here, not as template nodes.

    Ten rows of a URL, four filters and a badge were most of an htmx lookup's rendering, and each
    row worked out the customers' address and today's date again (bench/README.md, "One lookup's
    CPU"); the same markup built here once per list costs a fraction of it.
    """
    address = reverse("customers:detail", args=[_ANY_CUSTOMER])
    today = timezone.localdate()
    rows = []
    for event in events:
        local = timezone.localtime(event.occurred_at)
        url = address.replace(str(_ANY_CUSTOMER), str(event.customer_id))
        rows.append(
            format_html(
                RECENT_LOOKUP_ROW,
                url=url,
                customer_id=event.customer_id,
                short_id=presentation.short_customer_id(event.customer_id),
                badge=badge(seen_status_badge(event)),
                at=local.isoformat(),
                when=_short_time(local, today),
            )
        )
    return mark_safe("\n    ".join(rows))  # noqa: S308  (each row made by format_html, its values escaped)
