"""The authentication backend behind /accounts/sso/callback/: who the provider's answer signs in.

mozilla-django-oidc does the code exchange (with the PKCE verifier) and the state and nonce
bookkeeping. Four of its defaults do not fit a compliance tool, and are replaced here:
- it verifies neither the ID token's issuer nor its audience (provider.verify_id_token does all);
- it needs a `kid` in every token and fetches the key set at each sign-in (provider.signing_key);
- it matches users by e-mail: here only the provider's `sub` does (SingleSignOnIdentity), so a
  local password account that shares an e-mail address is never signed in by the provider;
- a provider that answers an error or can't be reached raises out of it, a 500: here the
  sign-in is refused, said on the login page, logged without a token, and put on the trail.

Names, e-mail and groups are taken from the claims at every sign-in; the groups the provider's
are mapped to (DASHBOARD_OIDC_GROUP_MAP) replace whatever the user had.
"""

import logging
import re

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from dashboard.accounts.access import AccessStampBackendMixin
from dashboard.accounts.models import SingleSignOnIdentity
from dashboard.accounts.sso import provider
from dashboard.accounts.sso.provider import ProviderRefused, ProviderUnavailable, Tokens

logger = logging.getLogger(__name__)

BACKEND_PATH = "dashboard.accounts.sso.backend.SingleSignOnBackend"
USERNAME_MAX_LENGTH = 150


class SignOnRefused(Exception):
    """Why a callback signed nobody in, in words fit for the login page, the log and the trail."""


def _claim_list(value: object) -> list[str]:
    """A groups claim as a list, whether the provider sends a list or one space- or comma-separated string."""
    if isinstance(value, str):
        return [item for item in re.split(r"[\s,]+", value) if item]
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return []


def mapped_groups(claims: dict) -> set[str]:
    """The dashboard's groups the provider's groups claim maps to (DASHBOARD_OIDC_GROUP_MAP)."""
    provider_groups = _claim_list(claims.get(settings.DASHBOARD_OIDC_GROUPS_CLAIM))
    return {
        settings.DASHBOARD_OIDC_GROUP_MAP[name]
        for name in provider_groups
        if name in settings.DASHBOARD_OIDC_GROUP_MAP
    }


def trusts_provider_mfa(claims: dict) -> bool:
    """Whether the ID token's `amr` names a method DASHBOARD_OIDC_TRUSTED_AMR counts as a second factor."""
    return bool(set(_claim_list(claims.get("amr"))) & set(settings.DASHBOARD_OIDC_TRUSTED_AMR))


class SingleSignOnBackend(AccessStampBackendMixin, OIDCAuthenticationBackend):
    """Signs in the user the provider's verified `sub` names, creating the account at the first sign-in.

    Also what the session's user is read with afterwards (get_user, with its access stamp): an
    account deactivated here is signed out at its next request, as with passwords.
    """

    def __init__(self, *args, **kwargs) -> None:
        # mozilla-django-oidc's reads the endpoints from settings here; they come from the discovery
        # document instead, fetched when a sign-in needs them. Django makes a backend for every
        # request's get_user(), which must not ask the provider anything.
        self.OIDC_RP_CLIENT_ID = settings.DASHBOARD_OIDC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.DASHBOARD_OIDC_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = "RS256"
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return provider.endpoints().token_endpoint

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return provider.endpoints().userinfo_endpoint

    def authenticate(self, request, nonce=None, code_verifier=None, **kwargs):
        """Only the callback's credentials (a nonce) are this backend's; a password sign-in is not."""
        if request is None or nonce is None or not settings.SINGLE_SIGN_ON:
            return None
        request.single_sign_on_refusal = None
        try:
            return super().authenticate(request, nonce=nonce, code_verifier=code_verifier)
        except SignOnRefused as refusal:
            reason = str(refusal)
        except ProviderUnavailable as error:
            reason = f"the identity provider could not be asked: {error}"
        except ProviderRefused as error:
            reason = f"the identity provider refused the code: {error}"
        except jwt.InvalidTokenError as error:
            reason = f"the ID token did not verify ({type(error).__name__})"
        except SuspiciousOperation as error:
            reason = str(error)
        logger.warning("Single sign-on refused: %s", reason)
        request.single_sign_on_refusal = reason
        return None

    def get_token(self, payload: dict) -> dict:
        """The code exchange, through provider (its errors are ours, never an HTTPError's 500)."""
        answer = provider.token_request(
            {key: value for key, value in payload.items() if key != "client_secret"}
        )
        if not isinstance(answer.get("id_token"), str) or not isinstance(answer.get("access_token"), str):
            raise SignOnRefused("the identity provider's answer held no ID token")
        self.tokens = Tokens(
            id_token=answer["id_token"],
            access_token=answer["access_token"],
            refresh_token=answer.get("refresh_token")
            if isinstance(answer.get("refresh_token"), str)
            else None,
        )
        return answer

    def verify_token(self, token: str, **kwargs) -> dict:
        self.id_token_claims = provider.verify_id_token(token, nonce=kwargs.get("nonce"))
        return self.id_token_claims

    def store_tokens(self, access_token, id_token) -> None:
        """Not in the session yet: the callback view stores them once the user is signed in (update_user)."""

    def get_userinfo(self, access_token, id_token, payload) -> dict:
        """Userinfo's claims under the ID token's: the ID token is the verified one, and names the `sub`."""
        try:
            userinfo = super().get_userinfo(access_token, id_token, payload)
        except (requests.RequestException, ValueError, ProviderUnavailable) as error:
            logger.info("Userinfo not used (%s): the ID token's claims alone are read", type(error).__name__)
            userinfo = {}
        if not isinstance(userinfo, dict) or userinfo.get("sub", payload["sub"]) != payload["sub"]:
            raise SignOnRefused("the provider's userinfo names another subject than its ID token")
        # How the person authenticated is the ID token's word alone (OpenID Connect Core 2).
        userinfo.pop("amr", None)
        return {**userinfo, **payload}

    def verify_claims(self, claims: dict) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims: dict):
        return self.UserModel.objects.filter(
            single_sign_on_identity__issuer=provider.endpoints().issuer,
            single_sign_on_identity__subject=claims["sub"],
        )

    def create_user(self, claims: dict):
        """A new account for a `sub` seen for the first time, with no usable password.

        Its username is the provider's preferred_username (or e-mail, or sub), made unique: an
        existing account of that name is another person as far as the dashboard can tell, and
        is never merged with this one.
        """
        base = str(claims.get("preferred_username") or claims.get("email") or f"sso-{claims['sub']}")
        base = base[: USERNAME_MAX_LENGTH - 8]
        for attempt in range(1, 100):
            username = base if attempt == 1 else f"{base}-sso{attempt if attempt > 2 else ''}"
            if self.UserModel.objects.filter(username__iexact=username).exists():
                continue
            try:
                with transaction.atomic():
                    user = self.UserModel.objects.create_user(username)
                    SingleSignOnIdentity.objects.create(
                        user=user, issuer=provider.endpoints().issuer, subject=claims["sub"]
                    )
            except IntegrityError:
                continue
            logger.info("Account created at its first single sign-on", extra={"user_id": str(user.pk)})
            return self.update_user(user, claims)
        raise SignOnRefused("no free username could be found for a new account")

    def update_user(self, user, claims: dict):
        """Names, e-mail and groups from this sign-in's claims; staff status if a group reads the admin."""
        if not user.is_active:
            return user
        if isinstance(claims.get("given_name"), str):
            user.first_name = claims["given_name"][:150]
        if isinstance(claims.get("family_name"), str):
            user.last_name = claims["family_name"][:150]
        if isinstance(claims.get("email"), str):
            user.email = claims["email"][:254]
        wanted = mapped_groups(claims)
        groups = list(Group.objects.filter(name__in=wanted))
        for missing in wanted - {group.name for group in groups}:
            logger.error("DASHBOARD_OIDC_GROUP_MAP names a group that does not exist here: %s", missing)
        # Auditors read the audit log in the admin, which needs staff status; the others never see it.
        user.is_staff = any(
            permission.codename.startswith("view_")
            for group in groups
            for permission in group.permissions.all()
        )
        user.is_superuser = False
        user.save(update_fields=["first_name", "last_name", "email", "is_staff", "is_superuser"])
        user.groups.set(groups)
        # For the callback view, which keeps them in the session once the user is signed in.
        user.single_sign_on_claims = claims
        user.single_sign_on_tokens = self.tokens
        return user
