"""System checks that catch a dashboard which cannot look anybody up."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def align_api_key_configured(app_configs, **kwargs) -> list[Warning]:
    if settings.ALIGN_API_KEY:
        return []
    return [
        Warning(
            "ALIGN_API_KEY is not set: every lookup will say the dashboard is not configured.",
            hint="Set ALIGN_API_KEY to the company's Align secret key (see README, Configuration).",
            id="customers.W001",
        )
    ]
