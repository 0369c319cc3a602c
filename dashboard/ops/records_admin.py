"""The admin of records nobody may change: the audit trail, sign-ins. Read, never written.

Nobody changes or deletes a record of who did what, superusers included, so every write
permission is refused here whatever the user's permissions say. Times show with seconds and zone,
so an auditor can quote them.
"""

from collections.abc import Callable
from datetime import datetime

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString


def audit_time(moment: datetime) -> SafeString:
    """A time an auditor can quote: date, seconds and zone, in the dashboard's time zone."""
    local = timezone.localtime(moment)
    return format_html(
        '<time class="audit-time" datetime="{}">{}</time>', local.isoformat(), f"{local:%Y-%m-%d %H:%M:%S %Z}"
    )


def time_column(field: str, description: str = "time") -> Callable[[admin.ModelAdmin, Model], SafeString]:
    """A list and page column showing the record's `field` as audit_time does, sorted by that field."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: admin.ModelAdmin, record: Model) -> SafeString:
        return audit_time(getattr(record, field))

    return column


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """A kind of record in the admin: listed and read, never added, changed or deleted, no bulk actions.

    view_permission, when set, is what reading takes instead of the model's own view permission.
    """

    view_permission: str | None = None
    actions = None

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if self.view_permission is None:
            return super().has_view_permission(request, obj)
        return request.user.has_perm(self.view_permission)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
