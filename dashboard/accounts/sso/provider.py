"""The identity provider as the dashboard sees it: its discovery document, its keys, its token endpoint.

Everything the dashboard asks the provider goes through here, over one requests.Session with
explicit timeouts. The endpoints are read from the issuer's discovery document rather than
configured one by one (mozilla-django-oidc would have them as settings): a company gives its
issuer URL, and the document names the rest. The document must name the same issuer it was
fetched for, and its endpoints must be https (plain http only on this machine), or nothing is
sent to them.

No token, code or secret is ever put in a log line or an exception message here.
"""

import dataclasses
import ipaddress
import logging
import threading
import time
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.conf import settings

from dashboard.ops.health import HealthCheck, NotReady

logger = logging.getLogger(__name__)

# The document changes when the provider is reconfigured, which is rare; its keys rotate. Both are
# fetched again after this long, and the keys at once when a token names one not yet seen.
DISCOVERY_TTL_SECONDS = 3600
JWKS_TTL_SECONDS = 600
# After a failed fetch, the next sign-in tries again no sooner than this: a provider that is down
# is not asked once per page view.
RETRY_AFTER_FAILURE_SECONDS = 15
# Signature algorithms an ID token may use: public-key ones only, never HS* (keyed with the client
# secret, which the dashboard holds too) nor "none".
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# Clocks of the provider and this host may differ a little.
CLOCK_SKEW_SECONDS = 60


class ProviderUnavailable(Exception):
    """The provider could not be asked, or answered with something unusable.

    The message is safe to show an administrator: it names the issuer and the trouble, never a
    token or the client secret.
    """


class ProviderRefused(Exception):
    """The provider answered, and said no (a refresh token revoked, a user disabled)."""


@dataclasses.dataclass(frozen=True)
class ProviderEndpoints:
    """What the discovery document says, as far as the dashboard uses it."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    # Providers without RP-initiated logout (Google) have none: logout then ends the session here only.
    end_session_endpoint: str | None


@dataclasses.dataclass(frozen=True)
class Tokens:
    """A token endpoint's answer, kept server-side in the session (never sent to the browser)."""

    id_token: str
    access_token: str
    refresh_token: str | None


_http = requests.Session()
_lock = threading.Lock()
_cached: dict[str, tuple[float, object]] = {}


def _is_allowed_url(url: object) -> bool:
    """https, or plain http to this machine only (the local stand-in), as DASHBOARD_OIDC_ISSUER itself."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.netloc)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _get_json(url: str, what: str) -> dict:
    try:
        response = _http.get(url, timeout=settings.OIDC_TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except requests.RequestException as error:
        raise ProviderUnavailable(f"its {what} could not be fetched ({type(error).__name__})") from None
    except ValueError:
        raise ProviderUnavailable(f"its {what} is not JSON") from None
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"its {what} is not a JSON object")
    return document


def _remembered(key: str, ttl: float, fetch):
    """A value fetched at most once per `ttl`; a failure is remembered briefly, so not retried at once."""
    now = time.monotonic()
    with _lock:
        entry = _cached.get(key)
    if entry is not None and entry[0] > now:
        if isinstance(entry[1], ProviderUnavailable):
            raise entry[1]
        return entry[1]
    try:
        value = fetch()
    except ProviderUnavailable as error:
        with _lock:
            _cached[key] = (now + RETRY_AFTER_FAILURE_SECONDS, error)
        raise
    with _lock:
        _cached[key] = (now + ttl, value)
    return value


def forget() -> None:
    """Drop what was fetched: the next call asks the provider again (tests; a changed issuer)."""
    with _lock:
        _cached.clear()


def _fetch_endpoints() -> ProviderEndpoints:
    issuer = settings.DASHBOARD_OIDC_ISSUER
    document = _get_json(f"{issuer}/.well-known/openid-configuration", "discovery document")
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise ProviderUnavailable("its discovery document names another issuer")
    required = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    for name in required:
        if not _is_allowed_url(document.get(name)):
            raise ProviderUnavailable(
                f"its discovery document has no usable {name} (https, or http on loopback)"
            )
    end_session = document.get("end_session_endpoint")
    return ProviderEndpoints(
        issuer=str(document["issuer"]),
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        userinfo_endpoint=document["userinfo_endpoint"],
        jwks_uri=document["jwks_uri"],
        end_session_endpoint=end_session if _is_allowed_url(end_session) else None,
    )


def endpoints() -> ProviderEndpoints:
    """The provider's endpoints, from its discovery document; ProviderUnavailable if it can't be had."""
    try:
        return _remembered("discovery", DISCOVERY_TTL_SECONDS, _fetch_endpoints)
    except ProviderUnavailable as error:
        logger.warning("Identity provider unavailable: %s", error)
        raise


def _fetch_keys() -> list[dict]:
    keys = _get_json(endpoints().jwks_uri, "key set").get("keys")
    if not isinstance(keys, list):
        raise ProviderUnavailable("its key set has no keys")
    return [key for key in keys if isinstance(key, dict)]


def signing_key(token: str) -> jwt.PyJWK:
    """The provider's public key that signed `token`: by its `kid`, or the only signing key if it names none.

    A `kid` not among the keys held makes the key set be fetched again once: the provider rotated.
    Raises jwt.InvalidTokenError when no key fits.
    """
    header = jwt.get_unverified_header(token)
    algorithm = header.get("alg")
    if algorithm not in ID_TOKEN_ALGORITHMS:
        raise jwt.InvalidAlgorithmError("the token is not signed with a public-key algorithm")
    for attempt in range(2):
        keys = _remembered("jwks", JWKS_TTL_SECONDS, _fetch_keys)
        candidates = [
            key
            for key in keys
            if key.get("use", "sig") == "sig"
            and key.get("alg", algorithm) == algorithm
            and ("kid" not in header or key.get("kid") == header["kid"])
        ]
        if len(candidates) == 1 or (candidates and "kid" in header):
            return jwt.PyJWK(candidates[0], algorithm=algorithm)
        if attempt == 0 and "kid" in header:
            with _lock:
                _cached.pop("jwks", None)
    raise jwt.InvalidKeyError("no key of the provider's key set fits the token")


def verify_id_token(id_token: str, *, nonce: str | None) -> dict:
    """The ID token's claims, once its signature, issuer, audience, expiry and nonce all check out.

    Raises jwt.InvalidTokenError otherwise. mozilla-django-oidc checks the signature and nonce
    but neither the issuer nor the audience, so the whole check is made here.
    """
    key = signing_key(id_token)
    claims = jwt.decode(
        id_token,
        key,
        algorithms=[key.algorithm_name],
        audience=settings.DASHBOARD_OIDC_CLIENT_ID,
        issuer=endpoints().issuer,
        leeway=CLOCK_SKEW_SECONDS,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.DASHBOARD_OIDC_CLIENT_ID:
        raise jwt.InvalidAudienceError("the token was issued to another client")
    if nonce is not None and claims.get("nonce") != nonce:
        raise jwt.InvalidTokenError("the token's nonce is not the one this sign-in sent")
    return claims


def token_request(data: dict) -> dict:
    """POST to the token endpoint with the client's credentials (client_secret_basic)."""
    try:
        response = _http.post(
            endpoints().token_endpoint,
            data=data,
            auth=(settings.DASHBOARD_OIDC_CLIENT_ID, settings.DASHBOARD_OIDC_CLIENT_SECRET),
            timeout=settings.OIDC_TIMEOUT,
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as error:
        raise ProviderUnavailable(
            f"its token endpoint could not be reached ({type(error).__name__})"
        ) from None
    if response.status_code in (400, 401):
        raise ProviderRefused(f"its token endpoint answered {response.status_code}")
    if response.status_code != 200:
        raise ProviderUnavailable(f"its token endpoint answered {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise ProviderUnavailable("its token endpoint's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise ProviderUnavailable("its token endpoint's answer is not a JSON object")
    return answer


def still_valid(tokens: Tokens) -> Tokens:
    """Whether the provider still stands behind a signed-in session: the tokens it answers with.

    With a refresh token, the refresh grant (which a revoked user or a disabled account fails);
    without one, userinfo with the access token. ProviderRefused when the provider says no,
    ProviderUnavailable when it can't be asked.
    """
    if tokens.refresh_token:
        answer = token_request({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token})
        return Tokens(
            id_token=answer.get("id_token") or tokens.id_token,
            access_token=answer.get("access_token") or tokens.access_token,
            refresh_token=answer.get("refresh_token") or tokens.refresh_token,
        )
    try:
        response = _http.get(
            endpoints().userinfo_endpoint,
            headers={"Authorization": f"Bearer {tokens.access_token}"},
            timeout=settings.OIDC_TIMEOUT,
        )
    except requests.RequestException as error:
        raise ProviderUnavailable(
            f"its userinfo endpoint could not be reached ({type(error).__name__})"
        ) from None
    # Some providers answer a dead token with 400 rather than RFC 6750's 401.
    if response.status_code in (400, 401, 403):
        raise ProviderRefused(f"its userinfo endpoint answered {response.status_code}")
    if response.status_code != 200:
        raise ProviderUnavailable(f"its userinfo endpoint answered {response.status_code}")
    return tokens


def logout_url(id_token: str, post_logout_redirect_uri: str) -> str | None:
    """Where the browser goes to end the provider's session too (RP-initiated logout), if it can."""
    try:
        end_session = endpoints().end_session_endpoint
    except ProviderUnavailable:
        return None
    if end_session is None:
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "client_id": settings.DASHBOARD_OIDC_CLIENT_ID,
        }
    )
    return f"{end_session}{'&' if '?' in end_session else '?'}{query}"


@dataclasses.dataclass
class IdentityProviderReachable(HealthCheck):
    """/readyz: the provider's discovery document can be fetched and names the configured issuer."""

    def run(self) -> None:
        try:
            endpoints()
        except ProviderUnavailable as error:
            raise NotReady(f"{settings.DASHBOARD_OIDC_ISSUER}: {error}") from None


def readiness_check() -> IdentityProviderReachable | None:
    """/readyz's check of the provider, where single sign-on is set up."""
    return IdentityProviderReachable() if settings.SINGLE_SIGN_ON else None
