"""The hardening rules: client address, login throttling, session limits, headers, cookies, no inline code.

Every test goes through the real middleware stack with django.test.Client (or calls
dashboard.accounts.sessions directly), so each one fails if the setting or code behind its rule changes.
"""

import json
import re
import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from customers.align.standin.demo import DemoId
from dashboard.accounts.sessions import (
    LOGGED_OUT_MESSAGE,
    SESSION_REFRESH_SECONDS,
    SESSION_REFRESHED_KEY,
    SESSION_STARTED_KEY,
    client_ip,
)
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME
from tests.unit.test_settings import PRODUCTION_LIKE, load_settings

# With REDIS_URL (make test's second pass) sessions live in Redis, where
# tests/system/test_database_and_cache.py checks their idle expiry instead.
sessions_in_the_database = pytest.mark.skipif(
    settings.SESSION_ENGINE != "django.contrib.sessions.backends.db", reason="sessions are in the cache"
)

LOGIN_URL = "/accounts/login/"
LOGOUT_URL = "/accounts/logout/"
SEARCH_URL = "/customers/"
ADA = str(DemoId.INDIVIDUAL_APPROVED)
WRONG_PASSWORD = "not-the-password-Q9"
SECOND_USERNAME = "kwame"
SECOND_PASSWORD = "another long passphrase"
PROXY = "10.0.0.2"
INNER_PROXY = "10.0.0.3"
LOCKED_OUT_TEXT = "locked on this computer for 15 minutes"
LOGIN_ERROR_TEXT = "Please enter a correct username and password"
TWELVE_HOUR_MESSAGE = "Your session reached its 12-hour limit and was ended for security."


def log_in(client: Client, username: str = STAFF_USERNAME, password: str = STAFF_PASSWORD, **extra):
    return client.post(LOGIN_URL, {"username": username, "password": password}, **extra)


def fail_logins(client: Client, times: int, username: str = STAFF_USERNAME, **extra):
    responses = [log_in(client, username, WRONG_PASSWORD, **extra) for _ in range(times)]
    return responses[-1]


def age_attempts(minutes: float) -> None:
    """Pretend the recorded login failures happened this many minutes ago."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=minutes))


def signed_in_client() -> Client:
    client = Client()
    response = log_in(client)
    assert response.status_code == 302, "the staff user could not log in"
    return client


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def start_session_hours_ago(client: Client, hours: float) -> None:
    session = client.session
    session[SESSION_STARTED_KEY] = time.time() - hours * 3600
    session.save()


def refreshed_seconds_ago(client: Client, seconds: float) -> None:
    """As if the session's idle expiry was last moved on this long ago."""
    session = client.session
    session[SESSION_REFRESHED_KEY] = time.time() - seconds
    session.save()


@pytest.fixture
def second_user(django_user_model):
    user = django_user_model.objects.create_user(username=SECOND_USERNAME, password=SECOND_PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="lookup_customer"))
    return user


# --- The client's address (dashboard.ops.client_ip.client_ip) ---------------------------------------


def test_client_ip_is_the_peer_address_without_trusted_proxies(rf, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = []
    assert client_ip(rf.get("/", REMOTE_ADDR="203.0.113.7")) == "203.0.113.7"


def test_forwarded_for_from_an_untrusted_peer_is_ignored(rf, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = [PROXY]
    request = rf.get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_ip(request) == "203.0.113.7"


def test_forwarded_for_is_ignored_when_no_proxy_is_trusted(rf, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = []
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_ip(request) == PROXY


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client(rf, settings):
    """The left-most entries are whatever the client sent; only hops our proxies added count."""
    settings.DASHBOARD_TRUSTED_PROXIES = [PROXY, INNER_PROXY]
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"192.0.2.66, 203.0.113.50, {INNER_PROXY}")
    assert client_ip(request) == "203.0.113.50"


@pytest.mark.parametrize("forwarded", ["not-an-address", "", "203.0.113.50, 999.1.1.1", "; DROP TABLE"])
def test_garbage_forwarded_for_falls_back_to_the_peer_address(rf, settings, forwarded):
    settings.DASHBOARD_TRUSTED_PROXIES = [PROXY]
    assert client_ip(rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)) == PROXY


def test_forwarded_ipv6_address_is_normalised(rf, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = [PROXY]
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="2001:DB8:0:0::1")
    assert client_ip(request) == "2001:db8::1"


# --- Login throttling (django-axes) ---------------------------------------------------------------


@pytest.mark.django_db
def test_four_wrong_passwords_still_show_the_login_form_with_an_error(client, staff_user):
    response = fail_logins(client, 4)
    assert response.status_code == 200
    assert LOGIN_ERROR_TEXT in response.content.decode()
    assert 'name="password"' in response.content.decode()


@pytest.mark.django_db
def test_fifth_wrong_password_shows_the_locked_out_page(client, staff_user):
    response = fail_logins(client, 5)
    assert response.status_code == 429
    assert LOCKED_OUT_TEXT in response.content.decode()
    assert 'name="password"' not in response.content.decode()


@pytest.mark.django_db
def test_locked_out_page_states_the_configured_limit_and_cool_off(client, staff_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=30)
    response = fail_logins(client, 3)
    assert response.status_code == 429
    assert "locked on this computer for 30 minutes after 3 wrong passwords" in response.content.decode()


@pytest.mark.django_db
def test_locked_out_user_is_refused_even_with_the_right_password(client, staff_user):
    fail_logins(client, 5)
    response = log_in(client)
    assert response.status_code == 429
    assert LOCKED_OUT_TEXT in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_lockout_is_per_username_another_user_at_the_same_address_logs_in(client, staff_user, second_user):
    fail_logins(client, 5)
    response = log_in(client, SECOND_USERNAME, SECOND_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == SEARCH_URL


@pytest.mark.django_db
def test_lockout_is_per_address_the_same_user_elsewhere_logs_in(client, staff_user):
    fail_logins(client, 5, REMOTE_ADDR="203.0.113.7")
    assert log_in(Client(), REMOTE_ADDR="203.0.113.7").status_code == 429
    assert log_in(Client(), REMOTE_ADDR="198.51.100.20").status_code == 302


@pytest.mark.django_db
def test_forged_forwarded_for_does_not_escape_a_lockout(client, staff_user, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = [PROXY]
    fail_logins(client, 5, REMOTE_ADDR="203.0.113.7")
    response = log_in(client, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert response.status_code == 429


@pytest.mark.django_db
def test_behind_a_trusted_proxy_lockouts_follow_the_forwarded_client(client, staff_user, settings):
    settings.DASHBOARD_TRUSTED_PROXIES = [PROXY]
    fail_logins(client, 5, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert log_in(Client(), REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert log_in(Client(), REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.20").status_code == 302


@pytest.mark.django_db
def test_lockout_still_holds_after_fourteen_minutes(client, staff_user):
    fail_logins(client, 5)
    age_attempts(14)
    assert log_in(client).status_code == 429


@pytest.mark.django_db
def test_login_works_again_after_the_fifteen_minute_cool_off(client, staff_user):
    fail_logins(client, 5)
    age_attempts(15.1)
    response = log_in(client)
    assert response.status_code == 302
    assert response["Location"] == SEARCH_URL


@pytest.mark.django_db
def test_successful_login_resets_the_failure_count(client, staff_user):
    fail_logins(client, 4)
    assert log_in(client).status_code == 302
    client.post(LOGOUT_URL)
    assert fail_logins(client, 4).status_code == 200


@pytest.mark.django_db
def test_lockout_is_logged_as_a_warning_without_username_or_password(client, staff_user, caplog):
    caplog.set_level("INFO")
    fail_logins(client, 5)
    lockouts = [
        record
        for record in caplog.records
        if record.name == "dashboard.accounts.sessions" and "locked out" in record.getMessage()
    ]
    assert len(lockouts) == 1
    assert lockouts[0].levelname == "WARNING"
    assert lockouts[0].user_id == str(staff_user.pk)
    line = lockouts[0].getMessage() + json.dumps(vars(lockouts[0]), default=str)
    assert STAFF_USERNAME not in line
    assert WRONG_PASSWORD not in line


@pytest.mark.django_db
def test_no_log_line_of_a_lockout_names_the_user_or_the_password(client, staff_user, caplog):
    caplog.set_level("DEBUG")
    fail_logins(client, 6)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "locked out" in logged
    assert STAFF_USERNAME not in logged
    assert WRONG_PASSWORD not in logged


# --- Idle timeout: 30 minutes without a request, and the cookie dies with the browser -----------


@sessions_in_the_database
@pytest.mark.django_db
def test_a_request_a_minute_after_the_last_refresh_moves_the_server_side_expiry_to_thirty_minutes_ahead(
    staff_user,
):
    client = signed_in_client()
    key = session_key(client)
    refreshed_seconds_ago(client, SESSION_REFRESH_SECONDS)
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + timedelta(minutes=5))
    assert client.get(SEARCH_URL).status_code == 200
    expires_in = Session.objects.get(pk=key).expire_date - timezone.now()
    assert timedelta(minutes=29) < expires_in <= timedelta(minutes=30)


@sessions_in_the_database
@pytest.mark.django_db
def test_requests_within_a_minute_of_the_last_refresh_do_not_write_the_session(staff_user):
    """The idle clock moves at most once a minute: not a database write per page and per lookup."""
    client = signed_in_client()
    key = session_key(client)
    refreshed_seconds_ago(client, SESSION_REFRESH_SECONDS - 5)
    soon = timezone.now() + timedelta(minutes=5)
    Session.objects.filter(pk=key).update(expire_date=soon)
    for _ in range(3):
        assert client.get(SEARCH_URL).status_code == 200
    assert Session.objects.get(pk=key).expire_date == soon


@sessions_in_the_database
@pytest.mark.django_db
def test_a_pages_automatic_requests_do_not_keep_the_session_from_idling_out(staff_user):
    """An open pending customer's page asks every few seconds (static/js/watch.js): nobody is at work."""
    client = signed_in_client()
    key = session_key(client)
    refreshed_seconds_ago(client, SESSION_REFRESH_SECONDS * 5)
    soon = timezone.now() + timedelta(minutes=5)
    Session.objects.filter(pk=key).update(expire_date=soon)
    assert client.get(SEARCH_URL, headers={"X-Automatic-Request": "1"}).status_code == 200
    assert Session.objects.get(pk=key).expire_date == soon
    assert client.get(SEARCH_URL).status_code == 200
    assert Session.objects.get(pk=key).expire_date > soon


@sessions_in_the_database
@pytest.mark.django_db
def test_session_past_its_expiry_is_sent_to_login(staff_user):
    client = signed_in_client()
    Session.objects.filter(pk=session_key(client)).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(SEARCH_URL)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next={SEARCH_URL}"


@pytest.mark.django_db
def test_session_cookie_has_no_expiry_so_it_ends_with_the_browser(client, staff_user):
    login_cookie = log_in(client).cookies[settings.SESSION_COOKIE_NAME]
    refreshed_seconds_ago(client, SESSION_REFRESH_SECONDS)  # so the next request saves the session
    later_cookie = client.get(SEARCH_URL).cookies[settings.SESSION_COOKIE_NAME]
    for cookie in (login_cookie, later_cookie):
        assert cookie.value
        assert cookie["expires"] == ""
        assert cookie["max-age"] == ""


# --- Absolute lifetime: 12 hours after sign-in, however busy ------------------------------------


@pytest.mark.django_db
def test_login_starts_the_session_clock(client, staff_user):
    before = time.time()
    log_in(client)
    assert before <= client.session[SESSION_STARTED_KEY] <= time.time()


@pytest.mark.django_db
def test_session_younger_than_twelve_hours_carries_on(staff_user):
    client = signed_in_client()
    start_session_hours_ago(client, 11.9)
    assert client.get(SEARCH_URL).status_code == 200


@pytest.mark.django_db
def test_session_older_than_twelve_hours_is_logged_out_and_sent_to_login(staff_user):
    client = signed_in_client()
    old_key = session_key(client)
    start_session_hours_ago(client, 12.01)
    response = client.get(SEARCH_URL)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next={SEARCH_URL}"
    assert not Session.objects.filter(pk=old_key).exists()
    assert client.get(SEARCH_URL).status_code == 302


@pytest.mark.django_db
def test_login_page_says_the_session_reached_its_twelve_hour_limit(staff_user):
    client = signed_in_client()
    start_session_hours_ago(client, 12.01)
    response = client.get(SEARCH_URL, follow=True)
    assert response.redirect_chain[-1][0] == f"{LOGIN_URL}?next={SEARCH_URL}"
    assert TWELVE_HOUR_MESSAGE in response.content.decode()


@pytest.mark.django_db
def test_htmx_request_after_twelve_hours_gets_a_client_side_redirect(staff_user):
    client = signed_in_client()
    start_session_hours_ago(client, 12.01)
    response = client.get(
        f"{SEARCH_URL}?customer_id={ADA}",
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{SEARCH_URL}"},
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{LOGIN_URL}?next={SEARCH_URL}"
    assert client.get(SEARCH_URL).status_code == 302


@pytest.mark.django_db
def test_absolute_limit_follows_the_configured_hours(staff_user, settings):
    settings.DASHBOARD_SESSION_MAX_HOURS = 1
    client = signed_in_client()
    start_session_hours_ago(client, 1.01)
    assert client.get(SEARCH_URL).status_code == 302


@pytest.mark.django_db
def test_session_without_a_start_time_gets_one(staff_user):
    client = signed_in_client()
    session = client.session
    del session[SESSION_STARTED_KEY]
    session.save()
    assert client.get(SEARCH_URL).status_code == 200
    assert time.time() - client.session[SESSION_STARTED_KEY] < 60


# --- Logging out ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_logout_by_get_is_refused(staff_user):
    client = signed_in_client()
    assert client.get(LOGOUT_URL).status_code == 405
    assert client.get(SEARCH_URL).status_code == 200


@pytest.mark.django_db
def test_logout_by_post_ends_the_session_and_its_key(staff_user):
    client = signed_in_client()
    old_key = session_key(client)
    response = client.post(LOGOUT_URL)
    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_key
    assert replay.get(SEARCH_URL).status_code == 302
    assert not Session.objects.filter(pk=old_key).exists()


@pytest.mark.django_db
def test_login_page_says_you_have_been_logged_out_after_logout(staff_user):
    response = signed_in_client().post(LOGOUT_URL, follow=True)
    assert response.redirect_chain == [(LOGIN_URL, 302)]
    assert LOGGED_OUT_MESSAGE in response.content.decode()


@pytest.mark.django_db
def test_logged_out_message_shows_once(staff_user):
    client = signed_in_client()
    client.post(LOGOUT_URL, follow=True)
    assert LOGGED_OUT_MESSAGE not in client.get(LOGIN_URL).content.decode()


@pytest.mark.django_db
def test_login_page_visited_directly_does_not_say_logged_out(client):
    assert LOGGED_OUT_MESSAGE not in client.get(f"{LOGIN_URL}?logged_out=1").content.decode()


@pytest.mark.django_db
def test_logout_without_a_session_does_not_say_logged_out(client):
    assert LOGGED_OUT_MESSAGE not in client.post(LOGOUT_URL, follow=True).content.decode()


# --- Headers and cookies --------------------------------------------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def login_page(client):
    return client.get(LOGIN_URL, secure=True)


@pytest.mark.django_db
def test_content_security_policy_allows_only_our_own_origin(login_page):
    directives = csp_directives(login_page["Content-Security-Policy"])
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_content_security_policy_allows_no_inline_code_or_eval(login_page):
    header = login_page["Content-Security-Policy"]
    assert "'unsafe-inline'" not in header
    assert "'unsafe-eval'" not in header


@pytest.mark.django_db
def test_content_security_policy_is_on_customer_pages_too(staff_client):
    assert "script-src 'self'" in staff_client.get(SEARCH_URL)["Content-Security-Policy"]


@pytest.mark.django_db
def test_strict_transport_security_lasts_a_year_and_covers_subdomains(login_page):
    parts = [part.strip() for part in login_page["Strict-Transport-Security"].split(";")]
    max_age = int(next(part for part in parts if part.startswith("max-age=")).split("=")[1])
    assert max_age >= 365 * 24 * 3600
    assert "includeSubDomains" in parts


@pytest.mark.django_db
def test_browser_hardening_headers(login_page):
    assert login_page["X-Content-Type-Options"] == "nosniff"
    assert login_page["Referrer-Policy"] == "same-origin"
    assert login_page["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_session_cookie_is_secure_http_only_and_same_site(client, staff_user):
    client.get(LOGIN_URL, secure=True)
    cookie = log_in(client, secure=True).cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


@pytest.mark.django_db
def test_csrf_cookie_is_secure_http_only_and_same_site(client, staff_user):
    client.get(LOGIN_URL, secure=True)
    cookie = log_in(client, secure=True).cookies[settings.CSRF_COOKIE_NAME]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert not cookie["expires"]
    assert not cookie["max-age"]


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get(LOGIN_URL)
    assert response.status_code == 301
    assert response["Location"] == f"https://testserver{LOGIN_URL}"


@pytest.mark.django_db
def test_https_announced_by_a_trusted_tls_proxy_is_not_redirected(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get(LOGIN_URL, headers={"X-Forwarded-Proto": "https"}).status_code == 200


@pytest.mark.django_db
def test_forwarded_proto_is_not_believed_without_a_tls_proxy(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None
    assert client.get(LOGIN_URL, headers={"X-Forwarded-Proto": "https"}).status_code == 301


def test_behind_tls_proxy_sets_the_proxy_ssl_header(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE, DJANGO_BEHIND_TLS_PROXY="1")
    assert loaded["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_without_tls_proxy_there_is_no_proxy_ssl_header(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE)
    assert "SECURE_PROXY_SSL_HEADER" not in loaded


def test_production_settings_redirect_to_https_and_send_hsts(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE)
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["CSRF_COOKIE_SECURE"] is True


# --- No inline script or style, so the CSP needs no 'unsafe-inline' -----------------------------

INLINE_CODE = {
    "inline <script>": re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "style= attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I),
    "on...= event handler": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    "hx-on attribute (evaluated code)": re.compile(r"<[^>]*\s(?:data-)?hx-on", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def assert_no_inline_code(html: str) -> None:
    assert "<html" in html or 'class="card' in html, "not a page"
    found = {
        kind: pattern.search(html).group(0) for kind, pattern in INLINE_CODE.items() if pattern.search(html)
    }
    assert not found, f"inline code in the page: {found}"


@pytest.mark.parametrize(
    "snippet",
    [
        "<script>alert(1)</script>",
        '<script type="module">go()</script>',
        "<style>p{}</style>",
        '<p style="color: red">',
        '<button type="button" onclick="go()">',
        '<body onload="go()">',
        '<div hx-on:click="go()">',
        '<a href="javascript:go()">',
    ],
)
def test_inline_code_detector_catches_each_kind(snippet):
    with pytest.raises(AssertionError, match="inline code"):
        assert_no_inline_code(f"<html><body>{snippet}</body></html>")


TEMPLATES = sorted((settings.BASE_DIR / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(settings.BASE_DIR)))
def test_no_template_holds_inline_code(template):
    """Every page, including those no other test renders (two-factor, errors), at the source."""
    source = template.read_text()
    matches = {kind: pattern.search(source) for kind, pattern in INLINE_CODE.items()}
    found = {kind: match.group(0) for kind, match in matches.items() if match}
    assert not found, f"inline code in {template.name}: {found}"


def test_template_scan_sees_the_pages():
    names = {path.relative_to(settings.BASE_DIR / "templates").as_posix() for path in TEMPLATES}
    assert {"base.html", "customers/lookup.html", "two_factor/setup.html", "registration/login.html"} <= names


def test_inline_code_detector_passes_external_scripts_and_styles():
    assert_no_inline_code(
        '<html><head><script src="/static/js/app.js" defer></script>'
        '<link rel="stylesheet" href="/static/css/app.css"></head><body class="one"></body></html>'
    )


@pytest.mark.django_db
def test_login_page_has_no_inline_code(client):
    assert_no_inline_code(client.get(LOGIN_URL).content.decode())


@pytest.mark.django_db
def test_login_page_with_an_error_and_a_message_has_no_inline_code(staff_user):
    client = signed_in_client()
    start_session_hours_ago(client, 12.01)
    page = client.get(SEARCH_URL, follow=True).content.decode()
    assert TWELVE_HOUR_MESSAGE in page
    assert_no_inline_code(page)
    assert_no_inline_code(log_in(client, password=WRONG_PASSWORD).content.decode())


@pytest.mark.django_db
def test_locked_out_page_has_no_inline_code(client, staff_user):
    response = fail_logins(client, 5)
    assert response.status_code == 429
    assert_no_inline_code(response.content.decode())


@pytest.mark.django_db
def test_search_page_has_no_inline_code(staff_client):
    assert_no_inline_code(staff_client.get(SEARCH_URL).content.decode())


@pytest.mark.django_db
def test_customer_page_has_no_inline_code(staff_client, align, customer_url, demo_body):
    align.get(customer_url(ADA), json=demo_body(ADA))
    response = staff_client.get(f"/customers/{ADA}/")
    assert 'id="customer-name"' in response.content.decode()
    assert_no_inline_code(response.content.decode())


@pytest.mark.django_db
def test_customer_fragment_has_no_inline_code(staff_client, align, customer_url, demo_body):
    align.get(customer_url(ADA), json=demo_body(ADA))
    response = staff_client.get(f"/customers/{ADA}/", headers={"HX-Request": "true"})
    assert 'id="customer-name"' in response.content.decode()
    assert_no_inline_code(response.content.decode())


@pytest.mark.django_db
def test_failure_page_has_no_inline_code(staff_client, align, customer_url):
    align.get(customer_url(ADA), status=500)
    response = staff_client.get(f"/customers/{ADA}/")
    assert response.status_code >= 500
    assert_no_inline_code(response.content.decode())


@pytest.mark.django_db
def test_403_page_has_no_inline_code(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="visitor", password="irrelevant-pw"))
    response = client.get(SEARCH_URL)
    assert response.status_code == 403
    assert_no_inline_code(response.content.decode())


@pytest.mark.django_db
def test_404_page_has_no_inline_code(staff_client):
    response = staff_client.get("/no-such-page/")
    assert response.status_code == 404
    assert_no_inline_code(response.content.decode())


@pytest.mark.django_db
def test_400_page_has_no_inline_code(client):
    response = client.get(LOGIN_URL, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert_no_inline_code(response.content.decode())


@pytest.mark.django_db
def test_500_page_has_no_inline_code(staff_user, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("customers.align.client.customer_get", broken)
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    response = client.get(f"/customers/{ADA}/")
    assert response.status_code == 500
    assert_no_inline_code(response.content.decode())
