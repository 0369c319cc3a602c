"""The ID token is believed only when its signature, issuer, audience, expiry and nonce all check out.

The provider is faked with `responses` here, so each way a token can be wrong is made on purpose;
the whole sign-in against a real local provider is in tests/system/test_single_sign_on.py.
"""

import time

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from dashboard.accounts.sso import provider
from dashboard.accounts.sso.provider import ProviderUnavailable

ISSUER = "https://login.example.com/realms/staff"
CLIENT_ID = "kyc-desk"
NONCE = "nonce-sent-with-this-sign-in"


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = _key()
OTHER_KEY = _key()


def jwk(private_key, kid: str | None = "key-1") -> dict:
    public = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return public | ({"kid": kid} if kid else {}) | {"use": "sig", "alg": "RS256"}


@pytest.fixture
def idp(settings):
    settings.SINGLE_SIGN_ON = True
    settings.DASHBOARD_OIDC_ISSUER = ISSUER
    settings.DASHBOARD_OIDC_CLIENT_ID = CLIENT_ID
    settings.DASHBOARD_OIDC_CLIENT_SECRET = "client-secret-value"
    provider.forget()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            f"{ISSUER}/.well-known/openid-configuration",
            json={
                "issuer": ISSUER,
                "authorization_endpoint": f"{ISSUER}/auth",
                "token_endpoint": f"{ISSUER}/token",
                "userinfo_endpoint": f"{ISSUER}/userinfo",
                "jwks_uri": f"{ISSUER}/certs",
                "end_session_endpoint": f"{ISSUER}/logout",
            },
        )
        mock.get(f"{ISSUER}/certs", json={"keys": [jwk(SIGNING_KEY)]})
        yield mock
    provider.forget()


def id_token(*, key=SIGNING_KEY, kid: str | None = "key-1", algorithm="RS256", **changes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "u-1", "iat": now, "exp": now + 300, "nonce": NONCE}
    claims |= changes
    claims = {name: value for name, value in claims.items() if value is not None}
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def test_a_token_that_checks_out_gives_its_claims(idp):
    assert provider.verify_id_token(id_token(), nonce=NONCE)["sub"] == "u-1"


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (lambda: id_token(key=OTHER_KEY), jwt.InvalidSignatureError),
        (lambda: id_token(iss="https://evil.example.com"), jwt.InvalidIssuerError),
        (lambda: id_token(aud="another-client"), jwt.InvalidAudienceError),
        (lambda: id_token(aud=[CLIENT_ID, "another-client"], azp="another-client"), jwt.InvalidAudienceError),
        (lambda: id_token(exp=int(time.time()) - 3600), jwt.ExpiredSignatureError),
        (lambda: id_token(exp=None), jwt.MissingRequiredClaimError),
        (lambda: id_token(nonce="a-nonce-from-another-sign-in"), jwt.InvalidTokenError),
        (lambda: id_token(nonce=None), jwt.InvalidTokenError),
        (lambda: id_token(kid="a-key-the-provider-never-had"), jwt.InvalidKeyError),
        (
            lambda: id_token(key="the-client-secret-long-enough-for-hs256-keys", algorithm="HS256"),
            jwt.InvalidAlgorithmError,
        ),
    ],
    ids=[
        "signed by another key",
        "another issuer",
        "another audience",
        "issued to another client",
        "expired",
        "no expiry",
        "another nonce",
        "no nonce",
        "unknown key",
        "signed with the client secret",
    ],
)
def test_a_token_wrong_in_any_way_is_refused(idp, token, error):
    with pytest.raises(error):
        provider.verify_id_token(token(), nonce=NONCE)


def test_an_unsigned_token_is_refused(idp):
    unsigned = jwt.encode({"iss": ISSUER, "aud": CLIENT_ID, "sub": "u-1"}, None, algorithm="none")
    with pytest.raises(jwt.InvalidAlgorithmError):
        provider.verify_id_token(unsigned, nonce=None)


def test_a_token_without_a_kid_is_checked_against_the_only_signing_key(idp):
    """The local stand-in's tokens carry no `kid`; mozilla-django-oidc's own lookup needs one."""
    idp.replace(responses.GET, f"{ISSUER}/certs", json={"keys": [jwk(SIGNING_KEY, kid=None)]})
    assert provider.verify_id_token(id_token(kid=None), nonce=NONCE)["sub"] == "u-1"


def test_a_new_kid_fetches_the_key_set_again_once_the_provider_rotated(idp):
    assert provider.verify_id_token(id_token(), nonce=NONCE)
    idp.replace(
        responses.GET, f"{ISSUER}/certs", json={"keys": [jwk(SIGNING_KEY), jwk(OTHER_KEY, kid="key-2")]}
    )
    assert provider.verify_id_token(id_token(key=OTHER_KEY, kid="key-2"), nonce=NONCE)["sub"] == "u-1"


def test_a_discovery_document_naming_another_issuer_is_not_used(idp):
    idp.replace(
        responses.GET,
        f"{ISSUER}/.well-known/openid-configuration",
        json={"issuer": "https://evil.example.com", "jwks_uri": f"{ISSUER}/certs"},
    )
    with pytest.raises(ProviderUnavailable, match="names another issuer"):
        provider.endpoints()


def test_endpoints_in_clear_text_off_this_machine_are_not_used(idp):
    document = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": "http://login.example.com/token",
        "userinfo_endpoint": f"{ISSUER}/userinfo",
        "jwks_uri": f"{ISSUER}/certs",
    }
    idp.replace(responses.GET, f"{ISSUER}/.well-known/openid-configuration", json=document)
    with pytest.raises(ProviderUnavailable, match="no usable token_endpoint"):
        provider.endpoints()


def test_an_unreachable_provider_is_asked_again_only_after_a_pause(idp):
    idp.replace(responses.GET, f"{ISSUER}/.well-known/openid-configuration", status=502)
    for _ in range(3):
        with pytest.raises(ProviderUnavailable, match="could not be fetched"):
            provider.endpoints()
    discovery_calls = [call for call in idp.calls if call.request.url.endswith("openid-configuration")]
    assert len(discovery_calls) == 1


def test_logout_goes_to_the_providers_end_session_endpoint_with_the_hint_and_the_way_back(idp):
    url = provider.logout_url("the-id-token", "https://desk.example.com/accounts/login/")
    assert url == (
        f"{ISSUER}/logout?id_token_hint=the-id-token"
        "&post_logout_redirect_uri=https%3A%2F%2Fdesk.example.com%2Faccounts%2Flogin%2F&client_id=kyc-desk"
    )
