"""The two addresses of a single sign-on: /accounts/sso/start/ sends the browser to the provider,
/accounts/sso/callback/ takes its answer.

mozilla-django-oidc's views, with what a staff member sees when anything goes wrong: the login
page again, saying in a sentence what happened, never a 500 or a bare 400. Its state, nonce and
PKCE verifier (S256) are kept per attempt in the session and used once, so a replayed callback
finds no state and signs nobody in.
"""

import logging

from django.conf import settings
from django.contrib import auth, messages
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from dashboard.accounts.models import SignInEvent
from dashboard.accounts.sso import provider, session
from dashboard.accounts.sso.backend import trusts_provider_mfa
from dashboard.accounts.sso.provider import ProviderUnavailable
from dashboard.accounts.trail import record_sign_in_event

logger = logging.getLogger(__name__)

PROVIDER_UNAVAILABLE_MESSAGE = (
    "Sign-in with {provider} is unavailable right now: the identity provider can't be reached. "
    "Try again in a minute; if it lasts, tell your administrator."
)
REFUSED_MESSAGE = "Sign-in with {provider} didn't complete, so nobody was signed in. Start again below."
PROVIDER_SAID_NO_MESSAGE = "{provider} did not sign you in. Start again below, or ask your administrator."
DEACTIVATED_MESSAGE = (
    "{provider} signed you in, but your KYC Desk account is deactivated. "
    "Ask an administrator to reactivate it."
)
# A state this browser never sent, or one already used: a forged or replayed callback, or a callback
# URL taken to another browser.
STATE_UNKNOWN = "the callback's state is not one this browser started"


def _words(template: str) -> str:
    return template.format(provider=settings.DASHBOARD_OIDC_PROVIDER_NAME)


def _require_single_sign_on() -> None:
    if not settings.SINGLE_SIGN_ON:
        raise Http404("Single sign-on is not configured.")


class SignInStartView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider's authorization endpoint: code flow, PKCE (S256), state, nonce."""

    def __init__(self, **kwargs) -> None:
        # Not the library's __init__, which reads the endpoint from settings: it is the discovery
        # document's, fetched in get(), where an unreachable provider can be answered with a page.
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)
        self.OIDC_RP_CLIENT_ID = settings.DASHBOARD_OIDC_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        _require_single_sign_on()
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider.endpoints().authorization_endpoint
        except ProviderUnavailable:
            messages.error(request, _words(PROVIDER_UNAVAILABLE_MESSAGE))
            return redirect("login")
        return super().get(request)


class SignInCallbackView(OIDCAuthenticationCallbackView):
    """Takes the provider's answer; signs the user in, or says on the login page why not."""

    def get(self, request: HttpRequest) -> HttpResponse:
        _require_single_sign_on()
        self.refusal = ""
        self.message = REFUSED_MESSAGE
        if request.GET.get("error"):
            # The provider's own words are not shown: they are its, and may echo what was sent.
            self.refusal = "the identity provider answered an error"
            self.message = PROVIDER_SAID_NO_MESSAGE
        elif "state" in request.GET and request.GET["state"] not in request.session.get("oidc_states", {}):
            self.refusal = STATE_UNKNOWN
            return self.login_failure()
        try:
            return super().get(request)
        except SuspiciousOperation:
            self.refusal = STATE_UNKNOWN
            return self.login_failure()

    def login_failure(self) -> HttpResponse:
        user = getattr(self, "user", None)
        if user is not None and not user.is_active:
            refusal, self.message = "the account is deactivated here", DEACTIVATED_MESSAGE
        else:
            refusal = (
                getattr(self.request, "single_sign_on_refusal", None)
                or self.refusal
                or "the callback carried no code and state"
            )
            user = None
        logger.warning(
            "Single sign-on refused: %s", refusal, extra={"user_id": str(user.pk) if user else "-"}
        )
        record_sign_in_event(SignInEvent.Kind.SSO_REFUSED, user, self.request, detail=refusal)
        messages.error(self.request, _words(self.message))
        return redirect("login")

    def login_success(self) -> HttpResponse:
        """Sign in, then keep the tokens server-side for the re-check and the logout."""
        auth.login(self.request, self.user)
        session.start(
            self.request,
            self.user.single_sign_on_tokens,
            provider_mfa=trusts_provider_mfa(self.user.single_sign_on_claims),
        )
        return HttpResponseRedirect(self.success_url)
