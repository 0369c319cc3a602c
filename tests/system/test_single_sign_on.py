"""Single sign-on against a real local identity provider (dashboard/accounts/sso/standin.py, in a
process of its own): the dashboard in this process through Django's test client, the provider over
HTTP on loopback, the browser's part (following redirects, posting the provider's form) played by
`requests`. The provider enforces S256 PKCE and the nonce, as a real one does.

One test, or a few, per numbered point of issue #20; the Chromium click-through is in
tests/browser/test_single_sign_on.py.
"""

import logging
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from dashboard.accounts.models import SignInEvent, SingleSignOnIdentity
from dashboard.accounts.sso import provider, session
from tests.support.servers import free_loopback_port

pytestmark = pytest.mark.django_db

CLIENT_ID = "kyc-desk-tests"
CLIENT_SECRET = "kyc-desk-tests-client-secret"
GROUP_MAP = {
    "kyc-staff": "Compliance staff",
    "kyc-leads": "Compliance leads",
    "kyc-auditors": "Compliance auditors",
}
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/customers/"}


@pytest.fixture
def idp(settings, identity_provider):
    """The dashboard set up for single sign-on at the local provider, as docs/single-sign-on.md has it."""
    settings.SINGLE_SIGN_ON = True
    settings.DASHBOARD_OIDC_ISSUER = identity_provider.issuer
    settings.DASHBOARD_OIDC_CLIENT_ID = settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.DASHBOARD_OIDC_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.DASHBOARD_OIDC_PROVIDER_NAME = "Acme SSO"
    settings.DASHBOARD_OIDC_GROUP_MAP = GROUP_MAP
    settings.DASHBOARD_OIDC_TRUSTED_AMR = ["mfa"]
    settings.DASHBOARD_PASSWORD_SIGN_IN = "break-glass"
    provider.forget()
    yield identity_provider
    provider.forget()


def person(idp, *, groups=("kyc-staff",), amr=("pwd", "mfa"), **claims) -> str:
    """A new person at the provider, with a `sub` of their own; returns the sub."""
    sub = f"person-{uuid.uuid4().hex[:12]}"
    idp.set_user(
        sub,
        {
            "preferred_username": sub,
            "email": f"{sub}@example.com",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "groups": list(groups),
            "amr": list(amr),
        }
        | claims,
    )
    return sub


def authorize(client: Client, sub: str, *, next_page: str | None = None) -> str:
    """Start at the dashboard, sign in at the provider's form as `sub`; the callback URL it sends back to."""
    start = client.get("/accounts/sso/start/", {"next": next_page} if next_page else {})
    assert start.status_code == 302, start
    answer = requests.post(start["Location"], data={"sub": sub}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    callback = urlsplit(answer.headers["Location"])
    assert callback.path == "/accounts/sso/callback/"
    return f"{callback.path}?{callback.query}"


def callback_with_a_wrong_verifier(client: Client, sub: str) -> str:
    """A callback whose code the provider will refuse: the PKCE verifier kept for it is not the right one."""
    callback = authorize(client, sub)
    stored = client.session
    for state in stored["oidc_states"].values():
        state["code_verifier"] = "x" * 64
    stored.save()
    return callback


def sign_on(client: Client, sub: str, **kwargs):
    return client.get(authorize(client, sub, **kwargs))


def signed_in_user(client: Client):
    return client.get("/customers/").wsgi_request.user


def login_page_words(client: Client) -> str:
    return client.get("/accounts/login/").content.decode()


def due_for_recheck(client: Client) -> None:
    """Move the session's last re-check back past DASHBOARD_OIDC_RECHECK_SECONDS."""
    stored = client.session
    stored[session.SESSION_KEY] = stored[session.SESSION_KEY] | {"checked_at": time.time() - 3600}
    stored.save()


# --- 1. Configuration ---------------------------------------------------------------------------------


def test_readyz_names_an_unreachable_issuer_instead_of_failing_sign_in_later(client, settings, idp):
    settings.DASHBOARD_OIDC_ISSUER = f"http://127.0.0.1:{free_loopback_port()}"
    provider.forget()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["identity_provider"].startswith(settings.DASHBOARD_OIDC_ISSUER)
    assert "could not be fetched" in answer.json()["checks"]["identity_provider"]


def test_readyz_passes_with_a_reachable_provider(client, idp):
    assert client.get("/readyz").json()["checks"]["identity_provider"] == "ok"


def test_an_unreachable_provider_is_a_sentence_on_the_login_page_not_a_500(client, settings, idp):
    settings.DASHBOARD_OIDC_ISSUER = f"http://127.0.0.1:{free_loopback_port()}"
    provider.forget()
    answer = client.get("/accounts/sso/start/", follow=True)
    assert answer.status_code == 200
    assert "Sign-in with Acme SSO is unavailable right now" in answer.content.decode()


def test_without_an_issuer_the_sign_on_addresses_do_not_exist(client, settings):
    settings.SINGLE_SIGN_ON = False
    assert client.get("/accounts/sso/start/").status_code == 404
    assert client.get("/accounts/sso/callback/?code=x&state=y").status_code == 404
    assert "Sign in with" not in login_page_words(client)


# --- 2. Sign-in ---------------------------------------------------------------------------------------


def test_the_login_page_offers_the_provider_first(client, idp):
    page = login_page_words(client)
    assert "Sign in with Acme SSO" in page
    assert 'href="/accounts/sso/start/"' in page


def test_the_login_page_carries_the_page_asked_for_through_the_sign_on(client, idp):
    page = client.get("/accounts/login/?next=/customers/bulk/").content.decode()
    assert 'href="/accounts/sso/start/?next=%2Fcustomers%2Fbulk%2F"' in page
    sub = person(idp)
    assert sign_on(client, sub, next_page="/customers/bulk/")["Location"] == "/customers/bulk/"


def test_the_authorization_request_uses_the_code_flow_with_s256_pkce_state_and_nonce(client, idp):
    query = parse_qs(urlsplit(client.get("/accounts/sso/start/")["Location"]).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["state"][0]
    assert query["nonce"][0]
    assert query["client_id"] == [CLIENT_ID]
    assert "openid" in query["scope"][0].split()


def test_a_person_signs_in_through_the_provider(client, idp):
    sub = person(idp)
    answer = sign_on(client, sub)
    assert answer.status_code == 302
    assert answer["Location"] == "/customers/"
    user = signed_in_user(client)
    assert user.is_authenticated
    assert user.username == sub
    assert client.get("/customers/").status_code == 200
    assert SignInEvent.objects.filter(user=user, kind=SignInEvent.Kind.SIGNED_IN_SSO).count() == 1


def test_a_wrong_pkce_verifier_signs_nobody_in(client, idp):
    """The provider refuses the code when the verifier is not the one its challenge was made from."""
    answer = client.get(callback_with_a_wrong_verifier(client, person(idp)), follow=True)
    assert answer.status_code == 200
    assert "didn&#x27;t complete, so nobody was signed in" in answer.content.decode()
    assert not signed_in_user(client).is_authenticated


def test_a_forged_callback_signs_nobody_in_and_answers_with_the_login_page(client, idp):
    answer = client.get("/accounts/sso/callback/?code=forged-code&state=forged-state", follow=True)
    assert answer.status_code == 200
    assert "nobody was signed in" in answer.content.decode()
    assert not signed_in_user(client).is_authenticated
    event = SignInEvent.objects.get(kind=SignInEvent.Kind.SSO_REFUSED)
    assert event.user is None
    assert event.detail == "the callback's state is not one this browser started"


def test_a_replayed_callback_signs_nobody_in(client, idp):
    sub = person(idp)
    callback = authorize(client, sub)
    assert client.get(callback)["Location"] == "/customers/"
    client.post("/accounts/logout/")
    replayed = client.get(callback, follow=True)
    assert "nobody was signed in" in replayed.content.decode()
    assert not signed_in_user(client).is_authenticated


def test_a_callback_taken_to_another_browser_signs_nobody_in(client, idp):
    """The state lives in the session of the browser that started: a stolen callback URL is worthless."""
    callback = authorize(client, person(idp))
    other = Client()
    assert "nobody was signed in" in other.get(callback, follow=True).content.decode()
    assert not signed_in_user(other).is_authenticated


def test_the_provider_saying_no_is_said_on_the_login_page(client, idp):
    start = client.get("/accounts/sso/start/")
    denied = requests.post(start["Location"], data={"action": "deny"}, allow_redirects=False, timeout=10)
    callback = urlsplit(denied.headers["Location"])
    answer = client.get(f"{callback.path}?{callback.query}", follow=True)
    assert "Acme SSO did not sign you in" in answer.content.decode()
    assert SignInEvent.objects.get().detail == "the identity provider answered an error"


# --- 3. Who is who ------------------------------------------------------------------------------------


def test_users_are_matched_by_sub_and_names_and_email_follow_the_claims(client, idp):
    sub = person(idp)
    sign_on(client, sub)
    first = signed_in_user(client)
    client.post("/accounts/logout/")
    idp.set_user(
        sub,
        {
            "preferred_username": "renamed",
            "email": "ada.king@example.com",
            "given_name": "Ada",
            "family_name": "King",
            "groups": ["kyc-staff"],
            "amr": ["mfa"],
        },
    )
    sign_on(client, sub)
    again = get_user_model().objects.get(pk=signed_in_user(client).pk)
    assert again.pk == first.pk
    assert (again.username, again.email, again.last_name) == (sub, "ada.king@example.com", "King")
    assert get_user_model().objects.count() == 1


def test_a_local_account_sharing_the_email_is_never_signed_in_by_the_provider(client, idp, django_user_model):
    local = django_user_model.objects.create_user(
        username="ada", email="ada@example.com", password="a-long-local-password", is_superuser=True
    )
    sub = person(idp, preferred_username="ada", email="ada@example.com")
    sign_on(client, sub)
    user = signed_in_user(client)
    assert user.pk != local.pk
    assert user.username == "ada-sso"
    assert not user.is_superuser
    assert not user.has_usable_password()
    assert SingleSignOnIdentity.objects.get(user=user).subject == sub
    assert not SingleSignOnIdentity.objects.filter(user=local).exists()


# --- 4. Groups from the provider ----------------------------------------------------------------------


def test_groups_are_resynced_at_every_sign_in_both_added_and_removed(client, idp):
    sub = person(idp, groups=["kyc-staff", "not-mapped"])
    sign_on(client, sub)
    user = signed_in_user(client)
    assert set(user.groups.values_list("name", flat=True)) == {"Compliance staff"}
    client.post("/accounts/logout/")
    user.groups.add(Group.objects.get(name="Compliance leads"))
    idp.set_user(sub, {"preferred_username": sub, "groups": ["kyc-auditors"], "amr": ["mfa"]})
    sign_on(client, sub)
    assert set(user.groups.values_list("name", flat=True)) == {"Compliance auditors"}


def test_auditors_get_staff_status_so_the_audit_log_opens(client, idp):
    sign_on(client, person(idp, groups=["kyc-auditors"]))
    user = signed_in_user(client)
    assert user.is_staff
    assert client.get("/admin/customers/auditevent/").status_code == 200


def test_staff_do_not_get_staff_status(client, idp):
    sign_on(client, person(idp, groups=["kyc-staff"]))
    assert not signed_in_user(client).is_staff


def test_a_person_in_no_mapped_group_signs_in_and_is_told_which_provider_groups_give_access(client, idp):
    sign_on(client, person(idp, groups=["marketing"]))
    answer = client.get("/customers/")
    assert answer.status_code == 403
    page = answer.content.decode()
    assert (
        "needs one of these groups at Acme SSO: <strong>kyc-leads</strong>, <strong>kyc-staff</strong>"
        in page
    )
    assert "can't be changed in KYC Desk's admin" in page
    assert "Compliance staff</strong> group" not in page


# --- 5. Access ends with the provider -----------------------------------------------------------------


def test_a_still_valid_user_is_kept_signed_in_across_the_recheck_and_notices_nothing(client, idp):
    sign_on(client, person(idp))
    before = client.session[session.SESSION_KEY]
    due_for_recheck(client)
    answer = client.get("/customers/")
    assert answer.status_code == 200
    after = client.session[session.SESSION_KEY]
    assert after["checked_at"] > time.time() - 60
    assert after["access_token"] != before["access_token"]


def test_a_revoked_user_is_signed_out_at_the_next_request_after_the_interval(client, idp):
    sub = person(idp)
    sign_on(client, sub)
    idp.revoke(sub)
    assert client.get("/customers/").status_code == 200, "not before the interval is up"
    due_for_recheck(client)
    answer = client.get("/customers/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/?next=/customers/")
    assert "Acme SSO no longer signs you in to KYC Desk" in login_page_words(client)
    assert not signed_in_user(client).is_authenticated
    ended = SignInEvent.objects.get(kind=SignInEvent.Kind.SSO_ENDED)
    assert ended.detail.startswith("the identity provider refused the re-check")


def test_a_revoked_users_htmx_request_gets_hx_redirect_to_the_login_page(client, idp):
    sub = person(idp)
    sign_on(client, sub)
    idp.revoke(sub)
    due_for_recheck(client)
    answer = client.get(f"/customers/{uuid.uuid4()}/", **HTMX)
    assert answer.status_code == 200
    assert answer["HX-Redirect"] == "/accounts/login/?next=/customers/"


def test_the_recheck_interval_is_a_setting(client, settings, idp):
    sub = person(idp)
    sign_on(client, sub)
    idp.revoke(sub)
    settings.DASHBOARD_OIDC_RECHECK_SECONDS = 1
    time.sleep(1.1)
    assert client.get("/customers/").status_code == 302


def test_an_unreachable_provider_at_recheck_time_keeps_the_session(client, settings, idp):
    sign_on(client, person(idp))
    due_for_recheck(client)
    provider.forget()
    settings.DASHBOARD_OIDC_ISSUER = f"http://127.0.0.1:{free_loopback_port()}"
    assert client.get("/customers/").status_code == 200
    assert SignInEvent.objects.filter(kind=SignInEvent.Kind.SSO_ENDED).count() == 0


# --- 6. Logout ----------------------------------------------------------------------------------------


def test_logout_ends_the_session_here_and_at_the_provider(client, idp):
    sign_on(client, person(idp))
    id_token = client.session[session.SESSION_KEY]["id_token"]
    answer = client.post("/accounts/logout/")
    assert answer.status_code == 302
    target = urlsplit(answer["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == idp.discovery()["end_session_endpoint"]
    query = parse_qs(target.query)
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://testserver/accounts/login/"]
    assert not signed_in_user(client).is_authenticated
    assert "You have been logged out." in login_page_words(client)


def test_a_password_session_logs_out_here_only(client, idp, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="a-long-local-password")
    client.force_login(admin)
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"


# --- 7. Passwords -------------------------------------------------------------------------------------


@pytest.fixture
def password_people(django_user_model):
    superuser = django_user_model.objects.create_superuser("root", password="a-long-local-password")
    clerk = django_user_model.objects.create_user("clerk", password="a-long-local-password")
    return superuser, clerk


def password_sign_in(client: Client, username: str, path: str = "/accounts/login/"):
    return client.post(path, {"username": username, "password": "a-long-local-password"})


def test_break_glass_lets_only_superusers_in_with_a_password_logged_at_warning(
    client, idp, password_people, caplog
):
    with caplog.at_level(logging.WARNING, logger="dashboard.accounts.sessions"):
        assert password_sign_in(client, "root").status_code == 302
    assert "Break-glass sign-in with a password" in caplog.text
    assert SignInEvent.objects.get(kind=SignInEvent.Kind.BREAK_GLASS).user == password_people[0]
    client.post("/accounts/logout/")
    refused = password_sign_in(Client(), "clerk")
    assert "Only superusers may sign in with a password here; everyone else signs in with Acme SSO." in (
        refused.content.decode()
    )
    assert refused.status_code == 200
    assert not refused.wsgi_request.user.is_authenticated


def test_break_glass_keeps_the_password_form_behind_a_disclosure(client, idp):
    page = login_page_words(client)
    assert "<summary>Break-glass sign-in for administrators</summary>" in page
    assert "Every use is logged and shown to auditors" in page


def test_the_admins_own_login_page_obeys_break_glass_too(client, idp, password_people):
    answer = password_sign_in(client, "clerk", "/admin/login/?next=/admin/")
    assert answer.status_code == 200
    assert not answer.wsgi_request.user.is_authenticated


def test_passwords_off_lets_nobody_in_with_one_and_says_so(client, settings, idp, password_people):
    settings.DASHBOARD_PASSWORD_SIGN_IN = "off"
    page = login_page_words(client)
    assert 'type="password"' not in page
    assert "Sign in with Acme SSO" in page
    answer = password_sign_in(client, "root")
    assert answer.status_code == 200
    assert not answer.wsgi_request.user.is_authenticated


def test_passwords_on_offers_both(client, settings, idp, password_people):
    settings.DASHBOARD_PASSWORD_SIGN_IN = "on"
    page = login_page_words(client)
    assert "Sign in with Acme SSO" in page
    assert "or with a KYC Desk password" in page
    assert password_sign_in(client, "clerk").status_code == 302


# --- 8. Two-factor ------------------------------------------------------------------------------------


def test_the_providers_mfa_is_trusted_when_its_amr_says_so(client, settings, idp):
    settings.DASHBOARD_REQUIRE_2FA = True
    sign_on(client, person(idp, amr=["pwd", "mfa"]))
    assert client.get("/customers/").status_code == 200


def test_without_a_trusted_amr_the_local_totp_is_required(client, settings, idp):
    settings.DASHBOARD_REQUIRE_2FA = True
    sign_on(client, person(idp, amr=["pwd"]))
    assert client.get("/customers/")["Location"].startswith("/accounts/two-factor/setup/")


# --- 9. The trail -------------------------------------------------------------------------------------


def test_sign_ons_and_their_ends_are_logged_without_tokens_or_email_addresses(client, idp, caplog):
    sub = person(idp)
    with caplog.at_level(logging.INFO):
        sign_on(client, sub)
        tokens = dict(client.session[session.SESSION_KEY])
        idp.revoke(sub)
        due_for_recheck(client)
        client.get("/customers/")
    assert "Signed in through single sign-on" in caplog.text
    assert "Single sign-on session ended" in caplog.text
    own_lines = "\n".join(
        record.getMessage() + str(record.__dict__)
        for record in caplog.records
        if record.name.startswith("dashboard")
    )
    for secret in (tokens["id_token"], tokens["access_token"], tokens["refresh_token"], f"{sub}@example.com"):
        assert secret not in own_lines


@pytest.mark.parametrize(
    "lockout_parameters",
    [[["username", "ip_address"]], ["ip_address"]],
    ids=["username and address", "address"],
)
def test_failed_callbacks_never_lock_out_the_offices_address(
    client, idp, password_people, settings, lockout_parameters
):
    """Not even where the throttle locks an address out by itself (AXES_WHITELIST_CALLABLE)."""
    settings.DASHBOARD_PASSWORD_SIGN_IN = "on"
    settings.AXES_LOCKOUT_PARAMETERS = lockout_parameters
    sub = person(idp)
    for attempt in range(settings.AXES_FAILURE_LIMIT + 1):
        client.get(f"/accounts/sso/callback/?code=forged-{attempt}&state=forged-{attempt}")
        assert (
            "nobody was signed in"
            in client.get(callback_with_a_wrong_verifier(client, sub), follow=True).content.decode()
        )
    assert AccessAttempt.objects.count() == 0
    assert password_sign_in(client, "clerk").status_code == 302
    assert signed_in_user(client).is_authenticated


def test_a_deactivated_account_is_refused_at_sign_on_and_said_so(client, idp):
    sub = person(idp)
    sign_on(client, sub)
    user = signed_in_user(client)
    client.post("/accounts/logout/")
    user.is_active = False
    user.save()
    answer = sign_on(client, sub)
    assert "your KYC Desk account is deactivated" in client.get(answer["Location"]).content.decode()
    assert SignInEvent.objects.get(kind=SignInEvent.Kind.SSO_REFUSED).user == user
