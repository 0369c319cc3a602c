"""Access ends when the provider says so: an SSO session is re-checked, server-side, every few minutes.

mozilla-django-oidc's SessionRefresh middleware sends the browser back to the provider to find
out, which would take a staff member away mid-work, and knows htmx requests only by
X-Requested-With. Instead, once DASHBOARD_OIDC_RECHECK_SECONDS have passed, the next request of
the session asks the provider itself (the refresh grant, or userinfo): a valid user notices
nothing but that request taking a moment longer; a refused one is signed out.
"""

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse

from dashboard.accounts.gate import login_redirect
from dashboard.accounts.models import SignInEvent
from dashboard.accounts.sso import provider, session
from dashboard.accounts.sso.provider import ProviderRefused, ProviderUnavailable
from dashboard.accounts.trail import record_sign_in_event

logger = logging.getLogger(__name__)

ENDED_MESSAGE = (
    "{provider} no longer signs you in to KYC Desk, so your session was ended. "
    "If you still need access, sign in again or ask your administrator."
)
SINGLE_SIGN_ON_OFF_MESSAGE = (
    "Single sign-on has been turned off here, so your session was ended. Log in again."
)
# A provider that can't be reached is not a refusal: the session goes on, and is checked again this
# much later rather than at every request.
RETRY_UNREACHABLE_SECONDS = 60


class SingleSignOnRecheckMiddleware:
    """Asks the provider about a signed-in SSO session once DASHBOARD_OIDC_RECHECK_SECONDS have passed.

    The provider refuses: the session ends, recorded for auditors; a page lands on the login page
    saying why, an htmx request gets HX-Redirect there (gate.login_redirect). The provider can't be
    reached: the session goes on (an outage there must not sign a whole team out), logged, and is
    asked again a minute later; DASHBOARD_SESSION_MAX_HOURS still bounds it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not (request.user.is_authenticated and session.is_single_sign_on(request)):
            return self.get_response(request)
        if not settings.SINGLE_SIGN_ON:
            return _end(request, "single sign-on is off", SINGLE_SIGN_ON_OFF_MESSAGE)
        if session.seconds_since_check(request) >= settings.DASHBOARD_OIDC_RECHECK_SECONDS:
            ended = _recheck(request)
            if ended is not None:
                return ended
        response = self.get_response(request)
        _let_logout_reach_the_provider(response)
        return response


def _let_logout_reach_the_provider(response: HttpResponse) -> None:
    """Allow the page's Log out form to end at the provider's end-session page.

    Browsers hold a form's redirects to the page's CSP form-action, which is 'self' everywhere
    else: the provider's origin is added on the pages of a session it signed in, and only there.
    """
    try:
        end_session = provider.endpoints().end_session_endpoint
    except ProviderUnavailable:
        return
    if end_session:
        parts = urlsplit(end_session)
        update = dict(getattr(response, "_csp_update", None) or {})
        update["form-action"] = [*update.get("form-action", []), f"{parts.scheme}://{parts.netloc}"]
        response._csp_update = update


def _recheck(request: HttpRequest) -> HttpResponse | None:
    tokens = session.tokens(request)
    try:
        fresh = provider.still_valid(tokens)
    except ProviderUnavailable as error:
        logger.warning(
            "Single sign-on session not re-checked: the identity provider is unavailable: %s", error
        )
        retry_at = time.time() - settings.DASHBOARD_OIDC_RECHECK_SECONDS + RETRY_UNREACHABLE_SECONDS
        session.checked(request, tokens, at=retry_at)
        return None
    except ProviderRefused as refusal:
        if _checked_meanwhile(request):
            return None
        return _end(request, f"the identity provider refused the re-check: {refusal}", ENDED_MESSAGE)
    session.checked(request, fresh)
    logger.info("Single sign-on session re-checked")
    return None


def _checked_meanwhile(request: HttpRequest) -> bool:
    """Whether another request of this session re-checked it while this one asked, and took its refresh token.

    Providers that rotate refresh tokens refuse the old one once it is used: of two requests
    that re-check at the same moment, the later one would end a valid session.
    """
    stored: SessionBase = request.session.__class__(request.session.session_key)
    state = stored.get(session.SESSION_KEY)
    if not state or state["refresh_token"] == session.tokens(request).refresh_token:
        return False
    request.session[session.SESSION_KEY] = state
    return True


def _end(request: HttpRequest, reason: str, message: str) -> HttpResponse:
    user = request.user
    logger.warning("Single sign-on session ended: %s", reason, extra={"user_id": str(user.pk)})
    record_sign_in_event(SignInEvent.Kind.SSO_ENDED, user, request, detail=reason)
    logout(request)
    messages.info(request, message.format(provider=settings.DASHBOARD_OIDC_PROVIDER_NAME))
    return login_redirect(request)
