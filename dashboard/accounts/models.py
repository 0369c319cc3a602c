"""Models of the accounts app: the record of who signed in and out, and who failed to.

Part of the trail an auditor reads beside the audit log ("everything j.smith did", in the
customers admin): until this record, sign-ins were log lines only.
"""

from django.conf import settings
from django.db import models


class SignInEvent(models.Model):
    """One sign-in, failed sign-in or sign-out of an existing account, from where and in which request.

    Written by the sign-in signal receivers (dashboard/accounts/sessions.py), never changed or
    deleted through the dashboard. It holds the account, never what was typed: a failed sign-in
    is recorded only when its username names an account, and the username itself is not kept.
    """

    class Kind(models.TextChoices):
        SIGNED_IN = "signed_in", "Signed in"
        SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
        SIGNED_OUT = "signed_out", "Signed out"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="sign_in_events",
        help_text="Users who signed in cannot be deleted; deactivate them instead.",
    )
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    client_ip = models.GenericIPAddressField("client IP", null=True, blank=True)
    request_id = models.CharField("request ID", max_length=32, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        default_permissions = ("view",)
        verbose_name = "sign-in event"
        indexes = [
            # "This user's newest sign-ins", for their activity page: one index walk, however many.
            models.Index(fields=["user", "-id"], name="sign_in_user_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.user.get_username()}"


class AccessStamp(models.Model):
    """The version of what a user may do and of their second factors, which sessions keep a copy of.

    A session keeps the user's permissions and the device it was verified with, with the version
    they were read at (dashboard/accounts/access.py), so a request reads neither. The version moves
    on whenever either could have changed, and a session holding another version reads them again
    on its next request, in whichever process: the stamp is read with the user itself. A user
    without a stamp is at version 0 until the first change gives them one.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="access_stamp"
    )
    version = models.PositiveBigIntegerField(default=0)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"Access stamp {self.version} of user {self.user_id}"
