"""Sign-ins, refusals, sign-outs and ended sessions in the admin: read, never written, superusers included.

Read here with accounts.view_signinevent, which superusers and the Compliance auditors group hold
(customers migration 0011): the whole list is where a refused single sign-on that named nobody
shows, and every break-glass sign-in. Auditors also read each user's sign-ins on that user's
activity page in the customers admin, beside everything else the user did. Who is who at the
identity provider is listed for superusers.
"""

from django.contrib import admin

from dashboard.accounts.models import SignInEvent, SingleSignOnIdentity
from dashboard.ops.records_admin import ReadOnlyModelAdmin, time_column


@admin.register(SignInEvent)
class SignInEventAdmin(ReadOnlyModelAdmin):
    """Who signed in or out, or failed to, when and from where; listed and read, never changed."""

    list_display = ["time", "username", "kind", "detail", "client_ip", "request_id"]
    fields = ["time", "username", "kind", "detail", "client_ip", "request_id"]
    readonly_fields = fields
    list_filter = ["kind", ("user", admin.RelatedOnlyFieldListFilter), "occurred_at"]
    list_select_related = ["user"]
    show_full_result_count = False
    list_per_page = 100

    time = time_column("occurred_at")

    @admin.display(description="user", ordering="user__username")
    def username(self, event: SignInEvent) -> str:
        return event.user.get_username() if event.user else "(nobody)"


@admin.register(SingleSignOnIdentity)
class SingleSignOnIdentityAdmin(ReadOnlyModelAdmin):
    """Which account the provider's `sub` signs in; made at the first single sign-on, never edited here."""

    list_display = ["user", "subject", "issuer", "created_at"]
    fields = list_display
    readonly_fields = fields
    list_select_related = ["user"]
    search_fields = ["user__username", "subject"]
