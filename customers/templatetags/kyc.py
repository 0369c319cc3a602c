"""Template filters over customers.services.decisions, so templates stay layout only."""

from datetime import datetime

from django import template
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
    local = timezone.localtime(moment)
    if local.date() == timezone.localdate():
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
