"""Session lifetime, and the log lines and records of signing in and out.

The idle timeout is Django's own (SESSION_COOKIE_AGE, moved on each time the session is saved).
Saving it on every request (SESSION_SAVE_EVERY_REQUEST) would cost a write per page and per
lookup, so a signed-in session is saved at most once a minute for the clock alone: it may end up
to a minute before its idle timeout, never after. What Django lacks is an absolute limit, so a
session kept busy all night still ends.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url

from dashboard.accounts.gate import login_redirect
from dashboard.accounts.login_attempts import typed_username
from dashboard.accounts.models import SignInEvent
from dashboard.accounts.passwords import is_break_glass
from dashboard.accounts.sso import backend as sso_backend
from dashboard.accounts.sso import provider as sso_provider
from dashboard.accounts.sso import session as sso_session
from dashboard.accounts.trail import record_sign_in_event
from dashboard.ops.client_ip import client_ip

logger = logging.getLogger(__name__)

SESSION_STARTED_KEY = "dashboard_signed_in_at"
SESSION_REFRESHED_KEY = "dashboard_refreshed_at"
# A request this long after the session's expiry was last moved on saves it, which moves it on.
SESSION_REFRESH_SECONDS = 60
# Sent by a page that asks the server by itself (static/js/watch.js): nobody is at work, so such
# a request does not keep the session from idling out.
AUTOMATIC_REQUEST_HEADER = "X-Automatic-Request"
SESSION_ENDED_MESSAGE = (
    "Your session reached its {hours}-hour limit and was ended for security. Log in again to continue."
)
LOGGED_OUT_MESSAGE = "You have been logged out."


def start_session_clock(request: HttpRequest) -> None:
    request.session[SESSION_STARTED_KEY] = request.session[SESSION_REFRESHED_KEY] = time.time()


class SessionLifetimeMiddleware:
    """Ends a signed-in session DASHBOARD_SESSION_MAX_HOURS after it began, and keeps it from idling out.

    The idle expiry moves on whenever the session is saved; a request more than
    SESSION_REFRESH_SECONDS after the last such move marks the session changed, so it is saved.
    A page's automatic requests (AUTOMATIC_REQUEST_HEADER) do not: a pending customer's page
    left open would otherwise keep its session alive until the absolute limit.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            started = request.session.get(SESSION_STARTED_KEY)
            if started is None:
                start_session_clock(request)
            elif time.time() - started > settings.DASHBOARD_SESSION_MAX_HOURS * 3600:
                return self._end_session(request)
            elif (
                request.headers.get(AUTOMATIC_REQUEST_HEADER) != "1"
                and time.time() - request.session.get(SESSION_REFRESHED_KEY, 0) >= SESSION_REFRESH_SECONDS
            ):
                request.session[SESSION_REFRESHED_KEY] = time.time()
        return self.get_response(request)

    def _end_session(self, request: HttpRequest) -> HttpResponse:
        logger.info("Session ended: it reached the %s-hour limit", settings.DASHBOARD_SESSION_MAX_HOURS)
        logout(request)
        messages.info(request, SESSION_ENDED_MESSAGE.format(hours=settings.DASHBOARD_SESSION_MAX_HOURS))
        return login_redirect(request)


def log_signed_in(sender, request: HttpRequest, user, **kwargs) -> None:
    """Every sign-in on the trail; a break-glass one (a password under single sign-on) also at WARNING."""
    start_session_clock(request)
    if getattr(user, "backend", None) == sso_backend.BACKEND_PATH:
        logger.info("Signed in through single sign-on", extra={"user_id": str(user.pk)})
        record_sign_in_event(SignInEvent.Kind.SIGNED_IN_SSO, user, request)
    elif is_break_glass():
        logger.warning("Break-glass sign-in with a password", extra={"user_id": str(user.pk)})
        record_sign_in_event(SignInEvent.Kind.BREAK_GLASS, user, request)
    else:
        logger.info("Signed in", extra={"user_id": str(user.pk)})
        record_sign_in_event(SignInEvent.Kind.SIGNED_IN, user, request)


def log_signed_out(sender, request: HttpRequest, user, **kwargs) -> None:
    logger.info("Signed out", extra={"user_id": str(user.pk) if user else "-"})
    if user is not None:
        record_sign_in_event(SignInEvent.Kind.SIGNED_OUT, user, request)


def log_sign_in_failed(sender, credentials, request: HttpRequest | None = None, **kwargs) -> None:
    """No username on this line: a mistyped password in the username field would land in the log.

    Recorded against the account the username names, if one does; what was typed is never kept.
    A refused single sign-on (its credentials carry the nonce) is logged and recorded by
    dashboard/accounts/sso/views.py, in its own words.
    """
    if "nonce" in credentials:
        return
    logger.warning("Sign-in failed", extra={"client_ip": client_ip(request) if request else "-"})
    user = account_named(credentials.get(get_user_model().USERNAME_FIELD))
    if user is not None:
        record_sign_in_event(SignInEvent.Kind.SIGN_IN_FAILED, user, request)


def log_locked_out(sender, request: HttpRequest, username: str | None, ip_address: str, **kwargs) -> None:
    """`username` is the throttle's digest (accounts.login_attempts): the user is found by what was typed."""
    user = account_named(typed_username(request))
    logger.warning(
        "Sign-in locked out after %s failures for %s minutes",
        settings.AXES_FAILURE_LIMIT,
        int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
        extra={"user_id": str(user.pk) if user else "unknown", "client_ip": ip_address},
    )


def account_named(username: object) -> AbstractBaseUser | None:
    """The account a typed username names, if any; None when none does or it cannot be read now."""
    if not isinstance(username, str) or not username:
        return None
    user_model = get_user_model()
    try:
        return user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    except DatabaseError:
        logger.exception("The account behind a sign-in could not be read")
        return None


class LogoutView(auth_views.LogoutView):
    """Django's logout (POST only), then a line on the login page saying it worked.

    A message, not a query flag: only the logout itself can put it there, so a shared or
    bookmarked login address never claims someone was logged out. A session signed in through
    the provider is ended there too (RP-initiated logout, with id_token_hint), and the provider
    sends the browser back to the login page, where the message waits.
    """

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_signed_in = request.user.is_authenticated
        sso_tokens = sso_session.tokens(request) if was_signed_in else None
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            messages.success(request, LOGGED_OUT_MESSAGE)
        if sso_tokens is not None:
            back_here = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
            at_provider = sso_provider.logout_url(sso_tokens.id_token, back_here)
            if at_provider is not None:
                return HttpResponseRedirect(at_provider)
        return response
