"""Models of the accounts app: who signed in and out, who failed to, and who is who at the provider.

Part of the trail an auditor reads beside the audit log ("everything j.smith did", in the
customers admin): until this record, sign-ins were log lines only.
"""

from django.conf import settings
from django.db import models


class SignInEvent(models.Model):
    """One sign-in, refused sign-in, sign-out or ended session, from where and in which request.

    Written by dashboard/accounts/trail.py, never changed or deleted through the dashboard. It
    holds the account, never what was typed: a failed password sign-in is recorded only when its
    username names an account, and the username itself is not kept. A refused single sign-on
    whose callback names nobody (a forged or replayed one) is kept without an account.
    """

    class Kind(models.TextChoices):
        SIGNED_IN = "signed_in", "Signed in with a password"
        SIGNED_IN_SSO = "signed_in_sso", "Signed in through single sign-on"
        BREAK_GLASS = "break_glass", "Break-glass sign-in with a password"
        SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
        SSO_REFUSED = "sso_refused", "Single sign-on refused"
        SIGNED_OUT = "signed_out", "Signed out"
        SSO_ENDED = "sso_ended", "Session ended by the identity provider"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sign_in_events",
        help_text="Users who signed in cannot be deleted; deactivate them instead. Empty for a refused "
        "single sign-on that named nobody.",
    )
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    client_ip = models.GenericIPAddressField("client IP", null=True, blank=True)
    request_id = models.CharField("request ID", max_length=32, blank=True)
    # Why a sign-on was refused or a session ended, in words; never a token, an e-mail or a name.
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        default_permissions = ("view",)
        verbose_name = "sign-in event"
        indexes = [
            # "This user's newest sign-ins", for their activity page: one index walk, however many.
            models.Index(fields=["user", "-id"], name="sign_in_user_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.user.get_username() if self.user else 'nobody'}"


class SingleSignOnIdentity(models.Model):
    """Who a user is at the identity provider: its issuer and the `sub` it gives them.

    Users are matched by this pair alone, never by e-mail: an e-mail address can be reassigned,
    and a local password account that shares one must never be signed in by the provider. An
    account gets one when the provider first signs it in (dashboard/accounts/sso/backend.py).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="single_sign_on_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField("subject (sub)", max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_issuer_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


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
