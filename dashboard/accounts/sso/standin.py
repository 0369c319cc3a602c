"""A local identity provider, the stand-in for the company's, for `make run SSO=1` and the tests.

`python -m dashboard.accounts.sso.standin --port 8002 [--demo-users]` serves OpenID Connect on
http://127.0.0.1:<port>: discovery, an authorization page where whoever signs in types the subject
(`sub`) they want to be, the token, userinfo, JWKS and end-session endpoints, and two test hooks,
`PUT /users/<sub>` (a person's claims, in their ID token and userinfo alike) and
`POST /users/<sub>/revoke-tokens` (what a provider does when someone leaves). Everything lives in
memory and dies with the process; any client ID and secret are accepted.

It is oidc-provider-mock, made to behave as a provider the dashboard is registered at where the
mock does not, so that what passes here passes there: a nonce is required, and PKCE with S256,
whose verifier the token endpoint checks; ID tokens name their key (kid); a refresh takes the
client's secret in the form; a dead access token answers 401 invalid_token. Its pages load
nothing from elsewhere, and its request log leaves out query strings, where tokens travel.

It listens on loopback only: anyone who reaches it signs in as whoever they like. Production code
never imports it (the import-linter contract in pyproject.toml); oidc-provider-mock is a test and
development dependency.
"""

import argparse
import dataclasses
import os
import sys
import urllib.parse
from collections.abc import Callable
from datetime import timedelta

import flask
import jinja2
import werkzeug.serving
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request
from authlib.oauth2.rfc7636 import CodeChallenge
from oidc_provider_mock import User
from oidc_provider_mock import app as mock_app
from oidc_provider_mock._app import AuthorizationCodeGrant as MockCodeGrant
from oidc_provider_mock._app import OpenIDCode as MockOpenIDCode
from oidc_provider_mock._app import RefreshTokenGrant as MockRefreshGrant
from oidc_provider_mock._app import TokenValidator as MockTokenValidator
from oidc_provider_mock._app import require_oauth
from oidc_provider_mock._storage import AccessToken, AuthorizationCode, storage

HOST = "127.0.0.1"
DEFAULT_PORT = 8002
PKCE_METHOD = "S256"
# How long access and ID tokens live (the mock's default); a refresh gets a new access token.
TOKEN_MAX_AGE = timedelta(hours=1)

# One person per group of the local group map (`make run SSO=1`, docs/single-sign-on.md), and one
# in no group, who must meet the 403 page. Staff and lead signed in with a second factor.
DEMO_USERS = (
    User(
        sub="sso-staff",
        claims={
            "given_name": "Sam",
            "family_name": "Staff",
            "name": "Sam Staff",
            "email": "sam.staff@example.com",
            "preferred_username": "sam.staff",
            "groups": ["kyc-staff"],
            "amr": ["pwd", "mfa"],
        },
    ),
    User(
        sub="sso-lead",
        claims={
            "given_name": "Lee",
            "family_name": "Lead",
            "name": "Lee Lead",
            "email": "lee.lead@example.com",
            "preferred_username": "lee.lead",
            "groups": ["kyc-leads"],
            "amr": ["pwd", "mfa"],
        },
    ),
    User(
        sub="sso-auditor",
        claims={
            "given_name": "Ava",
            "family_name": "Auditor",
            "name": "Ava Auditor",
            "email": "ava.auditor@example.com",
            "preferred_username": "ava.auditor",
            "groups": ["kyc-auditors"],
            "amr": ["pwd"],
        },
    ),
    User(
        sub="sso-nobody",
        claims={
            "given_name": "Noah",
            "family_name": "Nobody",
            "name": "Noah Nobody",
            "email": "noah.nobody@example.com",
            "preferred_username": "noah.nobody",
            "groups": ["marketing"],
            "amr": ["pwd"],
        },
    ),
)

# The mock's pages load a stylesheet from a CDN; the stand-in must work offline and reach no one.
OFFLINE_BASE_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Local identity provider</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  input, button { font: inherit; padding: 0.3rem 0.6rem; margin: 0.2rem 0; }
</style></head>
<body><main>{% block content %}{{ content }}{% endblock %}</main></body>
</html>
"""


@dataclasses.dataclass(kw_only=True, frozen=True)
class ChallengedCode(AuthorizationCode):
    """An authorization code that remembers the PKCE challenge it was issued for."""

    code_challenge: str
    code_challenge_method: str


class PkceCodeGrant(MockCodeGrant):
    """The mock's authorization-code grant, keeping each code's challenge for the token endpoint."""

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        super().save_authorization_code(code, request)
        issued = storage.get_authorization_code(code)
        data = request.payload.data
        storage.store_authorization_code(
            ChallengedCode(
                **dataclasses.asdict(issued),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
            )
        )


class RequiredS256Challenge(CodeChallenge):
    """PKCE as a provider set to require it: every authorization request carries an S256 challenge.

    authlib's CodeChallenge(required=True) alone insists on a verifier only from public clients;
    the dashboard is a confidential one, so without this a sign-in that never sent a challenge
    would pass. With a challenge on every code, a missing or wrong verifier always fails at the
    token endpoint.
    """

    SUPPORTED_CODE_CHALLENGE_METHOD = [PKCE_METHOD]

    def __init__(self) -> None:
        super().__init__(required=True)

    def validate_code_challenge(self, grant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': this provider requires PKCE")
        if data.get("code_challenge_method") != PKCE_METHOD:
            raise InvalidRequestError(f"'code_challenge_method' must be {PKCE_METHOD}")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDCodeNamingItsKey(MockOpenIDCode):
    """The mock's ID tokens, their header naming the signing key (kid) as providers' headers do.

    mozilla-django-oidc picks the key from the JWKS by the token's kid, and cannot verify a token
    without one.
    """

    def get_encode_header(self, client) -> dict:
        # The key ID the JWKS endpoint publishes for the same key.
        return {**super().get_encode_header(client), "kid": storage.jwk.as_dict()["kid"]}


class RefreshGrantAnyClientSecret(MockRefreshGrant):
    """The mock's refresh grant, taking the client's secret in the form too, as providers do.

    The mock accepts it only in an Authorization header for a refresh, though it takes both ways
    for an authorization code; the dashboard sends the secret the same way for both.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class DeadTokenIsInvalid(MockTokenValidator):
    """A revoked or unknown access token answers 401 invalid_token (RFC 6750, 3.1), as providers do.

    The mock answers an unknown token 400 access_denied (an expired one, 401 already).
    """

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        return storage.get_access_token(token_string)


def authorization_server(app: flask.Flask) -> AuthorizationServer:
    """The authlib server the mock set up for this app; it hands it to each request through flask.g."""
    with app.test_request_context():
        app.preprocess_request()
        return flask.g._authlib_authorization_server


def strengthen_grants(server: AuthorizationServer) -> None:
    """Swap the mock's authorization-code and refresh grants for the ones above."""
    replacements = {
        MockCodeGrant: (
            PkceCodeGrant,
            [
                OpenIDCodeNamingItsKey(require_nonce=True, token_max_age=TOKEN_MAX_AGE),
                RequiredS256Challenge(),
            ],
        ),
        MockRefreshGrant: (RefreshGrantAnyClientSecret, None),
    }
    for registry in (server._authorization_grants, server._token_grants):
        registry[:] = [
            replacements.get(grant_class, (grant_class, extensions)) for grant_class, extensions in registry
        ]


def advertise_pkce(app: flask.Flask) -> None:
    """Discovery names S256 in code_challenge_methods_supported, as providers that require PKCE do."""
    endpoint = "oidc-provider-mock.openid_config"
    mock_discovery: Callable[[], flask.Response] = app.view_functions[endpoint]

    def discovery() -> flask.Response:
        answer = mock_discovery()
        return flask.jsonify({**answer.get_json(), "code_challenge_methods_supported": [PKCE_METHOD]})

    app.view_functions[endpoint] = discovery


def provider_app(*, demo_users: bool) -> flask.Flask:
    """The mock's Flask app, strict about nonce and PKCE, its pages offline."""
    app = mock_app(
        require_nonce=True,
        access_token_max_age=TOKEN_MAX_AGE,
        user_claims=DEMO_USERS if demo_users else (),
    )
    strengthen_grants(authorization_server(app))
    # Its register_token_validator keeps the first one per token type, the mock's: replace that.
    require_oauth._token_validators[DeadTokenIsInvalid.TOKEN_TYPE] = DeadTokenIsInvalid()
    advertise_pkce(app)
    app.jinja_loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"_base.html": OFFLINE_BASE_TEMPLATE}), app.jinja_loader]
    )
    return app


class RequestLogWithoutQuery(werkzeug.serving.WSGIRequestHandler):
    """Request lines without their query string: an end-session request carries the ID token there."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urllib.parse.urlsplit(self.path).path
        self.log("info", '"%s %s" %s', self.command, path, code)


def listening_line(issuer: str, *, demo_users: bool) -> str:
    if demo_users:
        subjects = ", ".join(user.sub for user in DEMO_USERS)
        how = f"on its page, pick or type a subject: {subjects}"
    else:
        how = "on its page, type any subject (the tests set claims with PUT /users/<sub>)"
    return f"Local identity provider: issuer {issuer} ({how}; Ctrl-C stops it)"


def port_number(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError("a port from 1 to 65535")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard.accounts.sso.standin",
        description="Serve a local OpenID Connect identity provider on loopback (Ctrl-C stops it).",
    )
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT)
    parser.add_argument(
        "--demo-users",
        action="store_true",
        help=f"Offer {', '.join(user.sub for user in DEMO_USERS)}: one per group of the local group map, "
        "and one in none.",
    )
    options = parser.parse_args(argv)
    # authlib refuses plain HTTP unless told; loopback HTTP is what the stand-in serves.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    # A port already taken is said plainly by werkzeug, which then exits with status 1.
    server = werkzeug.serving.make_server(
        HOST,
        options.port,
        provider_app(demo_users=options.demo_users),
        threaded=True,
        request_handler=RequestLogWithoutQuery,
    )
    print(listening_line(f"http://{HOST}:{server.server_port}", demo_users=options.demo_users), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Local identity provider stopped.")
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
