"""Sign-ins, failed sign-ins and sign-outs in the admin: read, never written, superusers included.

Read here with accounts.view_signinevent, which superusers hold and no group is given. Auditors
(customers.view_auditevent) read each user's sign-ins on that user's activity page in the
customers admin, beside everything else the user did, so they need no permission of this app.
"""

from django.contrib import admin

from dashboard.accounts.models import SignInEvent
from dashboard.ops.records_admin import ReadOnlyModelAdmin, time_column


@admin.register(SignInEvent)
class SignInEventAdmin(ReadOnlyModelAdmin):
    """Who signed in or out, or failed to, when and from where; listed and read, never changed."""

    list_display = ["time", "username", "kind", "client_ip", "request_id"]
    fields = ["time", "username", "kind", "client_ip", "request_id"]
    readonly_fields = fields
    list_filter = ["kind", ("user", admin.RelatedOnlyFieldListFilter), "occurred_at"]
    list_select_related = ["user"]
    show_full_result_count = False
    list_per_page = 100

    time = time_column("occurred_at")

    @admin.display(description="user", ordering="user__username")
    def username(self, event: SignInEvent) -> str:
        return event.user.get_username()
