"""Sign-ins, failed sign-ins and sign-outs in the admin: read, never written, superusers included.

Read here with accounts.view_signinevent, which superusers hold and no group is given. Auditors
(customers.view_auditevent) read each user's sign-ins on that user's activity page in the
customers admin, beside everything else the user did, so they need no permission of this app.
"""

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dashboard.accounts.models import SignInEvent


@admin.register(SignInEvent)
class SignInEventAdmin(admin.ModelAdmin):
    """Who signed in or out, or failed to, when and from where; listed and read, never changed."""

    list_display = ["time", "username", "kind", "client_ip", "request_id"]
    fields = ["time", "username", "kind", "client_ip", "request_id"]
    readonly_fields = fields
    list_filter = ["kind", ("user", admin.RelatedOnlyFieldListFilter), "occurred_at"]
    list_select_related = ["user"]
    show_full_result_count = False
    list_per_page = 100
    actions = None

    @admin.display(description="time", ordering="occurred_at")
    def time(self, event: SignInEvent) -> SafeString:
        """As the audit log shows times: date, seconds and zone, in the dashboard's time zone."""
        local = timezone.localtime(event.occurred_at)
        return format_html(
            '<time datetime="{}">{}</time>', local.isoformat(), f"{local:%Y-%m-%d %H:%M:%S %Z}"
        )

    @admin.display(description="user", ordering="user__username")
    def username(self, event: SignInEvent) -> str:
        return event.user.get_username()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
