"""The local identity provider (dashboard/accounts/sso/standin.py), driven over HTTP as the dashboard
and a browser drive it: discovery, the authorization page's form, the token, userinfo and
end-session endpoints, and the test hooks that set people and revoke their tokens."""

import base64
import hashlib
import json
import re
import secrets
import socket
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.identity_provider import DISCOVERY_PATH, running_identity_provider
from tests.support.servers import run_captured

CLIENT_ID = "kyc-desk-tests"
CLIENT_SECRET = "tests-client-secret"
# Never followed: the tests read the code from the redirect the provider answers with.
REDIRECT_URI = "http://127.0.0.1:9/accounts/sso/callback/"
SCOPE = "openid email profile"
TIMEOUT = 5
PERSON = {
    "given_name": "Grace",
    "family_name": "Hopper",
    "email": "grace.hopper@example.com",
    "preferred_username": "grace.hopper",
    "groups": ["kyc-staff", "kyc-auditors"],
    "amr": ["pwd", "mfa"],
}


def standin_command(port: str) -> list[str]:
    return [sys.executable, "-m", "dashboard.accounts.sso.standin", "--port", port]


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636, 4.1 and 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_query(challenge: str, **changes: str | None) -> dict[str, str]:
    """What the dashboard sends to the authorization endpoint; a change of None leaves a field out."""
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    } | changes
    return {name: value for name, value in query.items() if value is not None}


def authorization_page(provider, query: dict[str, str]) -> requests.Response:
    endpoint = provider.discovery()["authorization_endpoint"]
    return requests.get(endpoint, params=query, timeout=TIMEOUT, allow_redirects=False)


def sign_in(provider, sub: str, query: dict[str, str]) -> dict[str, str]:
    """Type `sub` on the authorization page and send its form; the redirect's query parameters.

    The form posts to the page's own URL (query included), with the field `sub`.
    """
    page = authorization_page(provider, query)
    assert page.status_code == 200, page.text
    assert 'name="sub"' in page.text
    answer = requests.post(page.url, data={"sub": sub}, timeout=TIMEOUT, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return {name: values[0] for name, values in parse_qs(location.query).items()}


def exchange(provider, code: str, verifier: str | None) -> requests.Response:
    """The dashboard's token request: client_secret_post, as mozilla-django-oidc sends it."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return requests.post(provider.discovery()["token_endpoint"], data=form, timeout=TIMEOUT)


def signed_in_tokens(provider, sub: str) -> tuple[dict, dict[str, str]]:
    """A whole sign-in with the right verifier: the token answer, and the authorization query sent."""
    verifier, challenge = pkce_pair()
    query = authorization_query(challenge)
    redirect = sign_in(provider, sub, query)
    assert redirect["state"] == query["state"]
    answer = exchange(provider, redirect["code"], verifier)
    assert answer.status_code == 200, answer.text
    return answer.json(), query


def jwt_part(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def userinfo(provider, access_token: str) -> requests.Response:
    return requests.get(
        provider.discovery()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=TIMEOUT,
    )


def refresh(provider, refresh_token: str) -> requests.Response:
    """A refresh as the dashboard sends it, the client's secret in the form (client_secret_post)."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    return requests.post(provider.discovery()["token_endpoint"], data=form, timeout=TIMEOUT)


def test_discovery_names_the_issuer_it_is_reached_at_and_its_endpoints(identity_provider):
    discovery = identity_provider.discovery()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", discovery["issuer"])
    assert discovery["issuer"] == identity_provider.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert discovery[endpoint].startswith(f"{identity_provider.issuer}/")
    assert discovery["end_session_endpoint"].startswith(f"{identity_provider.issuer}/")


def test_a_sign_in_with_the_right_verifier_gets_tokens_signed_by_a_published_key(identity_provider):
    identity_provider.set_user("idp-right-verifier", PERSON)

    tokens, query = signed_in_tokens(identity_provider, "idp-right-verifier")

    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"]
    assert tokens["refresh_token"]
    claims = jwt_part(tokens["id_token"], 1)
    assert claims["iss"] == identity_provider.issuer
    assert claims["aud"] == [CLIENT_ID]
    assert claims["sub"] == "idp-right-verifier"
    assert claims["nonce"] == query["nonce"]
    assert "kid" not in claims
    header = jwt_part(tokens["id_token"], 0)
    published = requests.get(identity_provider.discovery()["jwks_uri"], timeout=TIMEOUT).json()["keys"]
    assert header["alg"] == "RS256"
    assert header["kid"] in {key["kid"] for key in published}


def test_the_id_token_and_userinfo_carry_the_claims_set_for_the_person(identity_provider):
    identity_provider.set_user("idp-claims", PERSON)

    tokens, _ = signed_in_tokens(identity_provider, "idp-claims")

    assert jwt_part(tokens["id_token"], 1).items() >= PERSON.items()
    answer = userinfo(identity_provider, tokens["access_token"])
    assert answer.status_code == 200
    assert answer.json() == {**PERSON, "sub": "idp-claims"}


def test_a_wrong_verifier_is_refused_at_the_token_endpoint(identity_provider):
    _, challenge = pkce_pair()
    wrong_verifier, _ = pkce_pair()
    redirect = sign_in(identity_provider, "idp-wrong-verifier", authorization_query(challenge))

    answer = exchange(identity_provider, redirect["code"], wrong_verifier)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_a_missing_verifier_is_refused_at_the_token_endpoint(identity_provider):
    _, challenge = pkce_pair()
    redirect = sign_in(identity_provider, "idp-no-verifier", authorization_query(challenge))

    answer = exchange(identity_provider, redirect["code"], None)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"code_challenge": None, "code_challenge_method": None}, id="no-challenge"),
        pytest.param({"code_challenge_method": "plain"}, id="plain-challenge"),
        pytest.param({"code_challenge_method": None}, id="no-method"),
        pytest.param({"nonce": None}, id="no-nonce"),
    ],
)
def test_an_authorization_request_without_s256_pkce_or_a_nonce_gets_no_sign_in_form(
    identity_provider, changes
):
    _, challenge = pkce_pair()

    page = authorization_page(identity_provider, authorization_query(challenge, **changes))

    assert 'name="sub"' not in page.text
    refused = parse_qs(urlsplit(page.headers.get("Location", "")).query).get("error") == ["invalid_request"]
    assert page.status_code == 400 or refused, (page.status_code, page.headers, page.text)


def test_a_refresh_works_until_the_person_is_revoked_then_their_tokens_are_dead(identity_provider):
    identity_provider.set_user("idp-revoked", PERSON)
    tokens, _ = signed_in_tokens(identity_provider, "idp-revoked")
    refreshed = refresh(identity_provider, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    # No new refresh token, no ID token: the first refresh token stays the one to use.
    assert refreshed.json().keys() >= {"access_token", "expires_in"}
    assert "refresh_token" not in refreshed.json()
    assert userinfo(identity_provider, refreshed.json()["access_token"]).status_code == 200

    identity_provider.revoke("idp-revoked")

    dead_refresh = refresh(identity_provider, tokens["refresh_token"])
    assert dead_refresh.status_code == 400
    assert dead_refresh.json()["error"] == "invalid_grant"
    dead_userinfo = userinfo(identity_provider, refreshed.json()["access_token"])
    assert dead_userinfo.status_code == 401
    assert dead_userinfo.json()["error"] == "invalid_token"
    assert dead_userinfo.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_revoking_one_person_leaves_the_others_signed_in(identity_provider):
    identity_provider.set_user("idp-stays", PERSON)
    identity_provider.set_user("idp-leaves", PERSON)
    staying, _ = signed_in_tokens(identity_provider, "idp-stays")
    signed_in_tokens(identity_provider, "idp-leaves")

    identity_provider.revoke("idp-leaves")

    assert refresh(identity_provider, staying["refresh_token"]).status_code == 200


def test_the_end_session_page_sends_the_browser_back_after_its_button(identity_provider):
    tokens, _ = signed_in_tokens(identity_provider, "idp-signs-out")
    back = "http://127.0.0.1:9/accounts/login/"
    page = requests.get(
        identity_provider.discovery()["end_session_endpoint"],
        params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": back},
        timeout=TIMEOUT,
    )
    assert page.status_code == 200
    confirm = re.search(r'<form method="post" action="([^"]+)">', page.text)
    assert confirm

    answer = requests.post(
        f"{identity_provider.issuer}{confirm[1]}",
        data={"redirect_uri": back},
        timeout=TIMEOUT,
        allow_redirects=False,
    )

    assert answer.status_code == 302
    assert answer.headers["Location"] == back


def test_demo_users_are_offered_with_their_groups_and_its_line_says_how_to_sign_in(tmp_path):
    log = tmp_path / "identity-provider.log"
    with running_identity_provider(demo_users=True, log_path=log) as provider:
        _, challenge = pkce_pair()
        page = authorization_page(provider, authorization_query(challenge))
        tokens, _ = signed_in_tokens(provider, "sso-staff")
        requests.get(
            provider.discovery()["end_session_endpoint"],
            params={"id_token_hint": tokens["id_token"]},
            timeout=TIMEOUT,
        )
        printed = log.read_text()

    offered = re.findall(r'<button[^>]*name="sub" value="([^"]+)"', page.text)
    assert offered == ["sso-staff", "sso-lead", "sso-auditor", "sso-nobody"]
    claims = jwt_part(tokens["id_token"], 1)
    assert claims["groups"] == ["kyc-staff"]
    assert claims["amr"] == ["pwd", "mfa"]
    assert claims["email"].endswith("@example.com")
    assert {"given_name", "family_name", "preferred_username"} <= claims.keys()
    (line,) = [line for line in printed.splitlines() if line.startswith("Local identity provider:")]
    assert provider.issuer in line
    assert "sso-staff, sso-lead, sso-auditor, sso-nobody" in line
    # The end-session request carried the ID token in its query; the request log keeps the path only.
    assert "/oauth2/end_session" in printed
    assert tokens["id_token"] not in printed


def test_its_pages_load_nothing_from_elsewhere(identity_provider):
    _, challenge = pkce_pair()

    page = authorization_page(identity_provider, authorization_query(challenge))

    assert page.status_code == 200
    assert not re.search(r"<(link|script|img)\b", page.text)


def test_it_is_stopped_after_the_test_even_when_the_test_fails():
    with pytest.raises(RuntimeError), running_identity_provider() as provider:
        raise RuntimeError("the test failed")

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{provider.issuer}{DISCOVERY_PATH}", timeout=TIMEOUT)


def test_a_port_already_taken_is_said_plainly():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_captured(standin_command(str(port)), env=None, timeout=30)

    assert result.returncode == 1
    assert f"Port {port} is in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_out_of_range_is_said_plainly():
    result = run_captured(standin_command("70000"), env=None, timeout=30)

    assert result.returncode == 2
    assert "--port: invalid port_number value: '70000'" in result.stderr
    assert "Traceback" not in result.stderr
