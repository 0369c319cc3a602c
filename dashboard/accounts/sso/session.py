"""What a session signed in through the provider keeps: its tokens, when it was last re-checked, its MFA.

Kept in the server-side session under one key, so a password session has none of it and
"signed in through single sign-on" is one question. The tokens never reach the browser: the
cookie holds only the session's key.
"""

import time

from django.http import HttpRequest

from dashboard.accounts.sso.provider import Tokens

SESSION_KEY = "dashboard_single_sign_on"


def start(request: HttpRequest, tokens: Tokens, *, provider_mfa: bool) -> None:
    """Called once the user is signed in: from now on the provider is asked about this session."""
    request.session[SESSION_KEY] = {
        "id_token": tokens.id_token,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "checked_at": time.time(),
        "provider_mfa": provider_mfa,
    }


def is_single_sign_on(request: HttpRequest) -> bool:
    return SESSION_KEY in request.session


def provider_verified_second_factor(request: HttpRequest) -> bool:
    """Whether the provider's `amr` vouched for a second factor at this session's sign-in."""
    return bool(request.session.get(SESSION_KEY, {}).get("provider_mfa"))


def tokens(request: HttpRequest) -> Tokens | None:
    state = request.session.get(SESSION_KEY)
    if not state:
        return None
    return Tokens(
        id_token=state["id_token"], access_token=state["access_token"], refresh_token=state["refresh_token"]
    )


def seconds_since_check(request: HttpRequest) -> float:
    return time.time() - request.session[SESSION_KEY]["checked_at"]


def checked(request: HttpRequest, fresh: Tokens, *, at: float | None = None) -> None:
    """The provider stood behind the session: keep what it answered with, and when."""
    state = dict(request.session[SESSION_KEY])
    state.update(
        id_token=fresh.id_token,
        access_token=fresh.access_token,
        refresh_token=fresh.refresh_token,
        checked_at=time.time() if at is None else at,
    )
    request.session[SESSION_KEY] = state
