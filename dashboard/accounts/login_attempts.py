"""What django-axes keeps of a failed sign-in (a keyed digest of the username), and what it never counts.

A password typed into the username box would otherwise sit in `axes_accessattempt` and show in
`/admin/`. The lockout only needs to recognise the same username again, which an HMAC keyed
with SECRET_KEY does; without the key the digest cannot be tried against guesses.
"""

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.crypto import salted_hmac

KEY_SALT = "dashboard.accounts.login_attempts.username"


def username_digest(username: str) -> str:
    """The form in which a username is stored by the login throttle."""
    return salted_hmac(KEY_SALT, username, algorithm="sha256").hexdigest()


def attempt_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """AXES_USERNAME_CALLABLE: the username from where axes would take it, as its digest."""
    source = credentials if credentials else getattr(request, "data", request.POST)
    username = source.get(settings.AXES_USERNAME_FORM_FIELD)
    return None if username is None else username_digest(str(username))


def typed_username(request: HttpRequest) -> str | None:
    """The username typed at the sign-in axes is handling (axes leaves the credentials on the request)."""
    credentials = getattr(request, "axes_credentials", None) or {}
    return credentials.get(settings.AXES_USERNAME_FORM_FIELD)


def is_single_sign_on_callback(request: HttpRequest, credentials: dict | None = None) -> bool:
    """AXES_WHITELIST_CALLABLE: the identity provider's callback is never counted towards a lockout.

    Its failures are a state or a token that does not verify, not a password guessed, and they
    come from the address a whole office shares: counting them would lock that office out.
    """
    return request.path == reverse("sso_callback")
