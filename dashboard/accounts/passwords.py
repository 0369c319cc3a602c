"""Who may sign in with a password: DASHBOARD_PASSWORD_SIGN_IN, decided in one backend.

- "on": everyone with a password (the default without single sign-on).
- "break-glass": superusers only, for when the identity provider is down (the default with single
  sign-on); every such sign-in is logged at WARNING and recorded for auditors
  (dashboard/accounts/sessions.py).
- "off": nobody; only the identity provider signs people in.

A backend rather than the login form, so the admin's own login page obeys the same rule.
"""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

from dashboard.accounts.access import AccessStampBackendMixin


def password_sign_in_mode() -> str:
    return settings.DASHBOARD_PASSWORD_SIGN_IN


def is_break_glass() -> bool:
    """Whether a password sign-in that succeeds is a break-glass one, to be logged and recorded as such."""
    return password_sign_in_mode() == "break-glass"


class PasswordBackend(AccessStampBackendMixin, ModelBackend):
    """Django's username-and-password check, for the accounts DASHBOARD_PASSWORD_SIGN_IN lets through.

    The session's user is read with its access stamp (dashboard/accounts/access.py).
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if password_sign_in_mode() == "off":
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return password_sign_in_mode() == "on" or user.is_superuser
