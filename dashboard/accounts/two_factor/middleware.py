"""Who must verify: the middleware that holds a password-only session at the two-factor pages."""

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from dashboard.accounts.sso import session as sso_session
from dashboard.accounts.two_factor.devices import confirmed_app_devices
from dashboard.accounts.two_factor.next_page import with_next


class TwoFactorMiddleware:
    """Holds a password-only session at the two-factor pages until it is verified.

    A user who has enrolled an app is always asked for a code, whatever DASHBOARD_REQUIRE_2FA
    says, so switching the requirement off never weakens an account its owner protected. Where
    the requirement is on, a user without an app is sent to enrol one before anything else.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _is_exempt(request.path) and (page := held_at(request)):
            return _hold_at(request, page)
        return self.get_response(request)


def held_at(request: HttpRequest) -> str | None:
    """The two-factor page a signed-in user is held at until verified; None once they are through.

    A single sign-on whose ID token's `amr` named a method DASHBOARD_OIDC_TRUSTED_AMR trusts has
    had its second factor at the provider: it is through. Also what the top bar asks, so a held
    user is offered nothing but Log out.
    """
    user = request.user
    if (
        not user.is_authenticated
        or user.is_verified()
        or sso_session.provider_verified_second_factor(request)
    ):
        return None
    if confirmed_app_devices(user).exists():
        return "two_factor_verify"
    if settings.DASHBOARD_REQUIRE_2FA:
        return "two_factor_setup"
    return None


def _is_exempt(path: str) -> bool:
    """The pages an unverified user needs to get verified, or to give up and leave."""
    return path.startswith(settings.STATIC_URL) or path in _exempt_paths()


@functools.cache
def _exempt_paths() -> frozenset[str]:
    """Resolved once: the middleware asks on every request of an unverified user."""
    return frozenset(reverse(name) for name in ("two_factor_setup", "two_factor_verify", "login", "logout"))


def _hold_at(request: HttpRequest, url_name: str) -> HttpResponse:
    """Redirect to a two-factor page that sends the user on to where they were going.

    django-htmx's middleware comes before this one (settings.MIDDLEWARE), so request.htmx is
    there to ask. An htmx request gets a client-side redirect, so the page replaces the whole
    window instead of being swapped into the result card, and returns to the page the user was
    on (its path and query, from HX-Current-URL), not the fragment.
    """
    if request.htmx:
        current = urlsplit(request.htmx.current_url or "")
        return_to = current.path + (f"?{current.query}" if current.query else "")
        return HttpResponseClientRedirect(with_next(reverse(url_name), return_to or request.get_full_path()))
    return HttpResponseRedirect(with_next(reverse(url_name), request.get_full_path()))
