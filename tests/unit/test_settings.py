"""Settings come from the environment, with clear errors for bad or missing values."""

import re
import runpy

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SETTINGS_FILE = str(settings.BASE_DIR / "dashboard" / "settings.py")
PRODUCTION_LIKE = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50}


def load_settings(monkeypatch, **environment) -> dict:
    """Evaluate the settings module afresh under the given environment (and only that)."""
    for name in (
        "DJANGO_DEBUG",
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "ALIGN_API_BASE_URL",
        "ALIGN_API_KEY",
        "ALIGN_API_TIMEOUT",
        "ALIGN_API_KEY_HEADER",
        "DASHBOARD_SESSION_IDLE_MINUTES",
        "DASHBOARD_SESSION_MAX_HOURS",
        "DASHBOARD_REQUIRE_2FA",
        "DASHBOARD_TRUSTED_PROXIES",
        "DJANGO_BEHIND_TLS_PROXY",
        "DASHBOARD_LOG_FORMAT",
        "DJANGO_HTTPS_ONLY",
        "ALIGN_BULK_CONCURRENCY",
        "DASHBOARD_OIDC_ISSUER",
        "DASHBOARD_OIDC_CLIENT_ID",
        "DASHBOARD_OIDC_CLIENT_SECRET",
        "DASHBOARD_OIDC_GROUP_MAP",
        "DASHBOARD_OIDC_TRUSTED_AMR",
        "DASHBOARD_OIDC_RECHECK_SECONDS",
        "DASHBOARD_PASSWORD_SIGN_IN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(SETTINGS_FILE)


def test_defaults_are_safe(monkeypatch):
    loaded = load_settings(monkeypatch, DJANGO_SECRET_KEY="x" * 50)
    assert loaded["DEBUG"] is False
    assert loaded["ALIGN_API_BASE_URL"] == "https://api-sandbox.alignlabs.dev"
    assert loaded["ALIGN_API_KEY"] == ""
    assert loaded["ALIGN_API_TIMEOUT"] == 10.0
    assert loaded["ALIGN_API_KEY_HEADER"] == "Api-Key"
    assert loaded["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]


def test_secret_key_is_required_when_debug_is_off(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY is not set"):
        load_settings(monkeypatch, DJANGO_DEBUG="0")


def test_audit_hash_key_is_required_when_debug_is_off(monkeypatch):
    monkeypatch.delenv("DASHBOARD_AUDIT_HASH_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="DASHBOARD_AUDIT_HASH_KEY is not set"):
        load_settings(monkeypatch, **PRODUCTION_LIKE)


def test_debug_runs_without_an_audit_hash_key(monkeypatch):
    monkeypatch.delenv("DASHBOARD_AUDIT_HASH_KEY", raising=False)
    loaded = load_settings(monkeypatch, DJANGO_DEBUG="1")
    assert loaded["DASHBOARD_AUDIT_HASH_KEY"]


def test_audit_hash_key_is_read_from_the_environment(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE, DASHBOARD_AUDIT_HASH_KEY="k" * 40)
    assert loaded["DASHBOARD_AUDIT_HASH_KEY"] == "k" * 40


def test_debug_runs_without_a_secret_key(monkeypatch):
    loaded = load_settings(monkeypatch, DJANGO_DEBUG="1")
    assert loaded["DEBUG"] is True
    assert loaded["SECRET_KEY"]


def test_environment_values_are_read(monkeypatch):
    loaded = load_settings(
        monkeypatch,
        **PRODUCTION_LIKE,
        ALIGN_API_BASE_URL="https://api.alignlabs.dev/",
        ALIGN_API_KEY=" secret ",
        ALIGN_API_TIMEOUT="4.5",
        DJANGO_ALLOWED_HOSTS="kyc.example.com, kyc-internal.example.com",
    )
    assert loaded["ALIGN_API_BASE_URL"] == "https://api.alignlabs.dev"
    assert loaded["ALIGN_API_KEY"] == "secret"
    assert loaded["ALIGN_API_TIMEOUT"] == 4.5
    assert loaded["ALLOWED_HOSTS"] == ["kyc.example.com", "kyc-internal.example.com"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG must be one of"),
        ("ALIGN_API_TIMEOUT", "ten", "ALIGN_API_TIMEOUT must be a number"),
        ("ALIGN_API_TIMEOUT", "0", "more than 0"),
        ("ALIGN_API_TIMEOUT", "600", "at most 120"),
        ("ALIGN_API_BASE_URL", "api.alignlabs.dev", "must be an http"),
        ("ALIGN_API_BASE_URL", "ftp://api.alignlabs.dev", "must be an http"),
        ("ALIGN_API_KEY_HEADER", "Api Key", "must be an HTTP header name"),
        ("ALIGN_API_KEY_HEADER", "Api-Key:\r\nX-Evil", "must be an HTTP header name"),
    ],
)
def test_bad_values_fail_at_start_up_with_a_clear_message(monkeypatch, name, value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        load_settings(monkeypatch, **(PRODUCTION_LIKE | {name: value}))


# --- Security and compliance settings --------------------------------------------------------------


def test_two_factor_is_required_by_default_in_production(monkeypatch):
    assert load_settings(monkeypatch, **PRODUCTION_LIKE)["DASHBOARD_REQUIRE_2FA"] is True


def test_two_factor_is_off_by_default_in_debug(monkeypatch):
    assert load_settings(monkeypatch, DJANGO_DEBUG="1")["DASHBOARD_REQUIRE_2FA"] is False


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (PRODUCTION_LIKE | {"DASHBOARD_REQUIRE_2FA": "0"}, False),
        ({"DJANGO_DEBUG": "1", "DASHBOARD_REQUIRE_2FA": "1"}, True),
    ],
)
def test_two_factor_can_be_set_explicitly(monkeypatch, environment, expected):
    assert load_settings(monkeypatch, **environment)["DASHBOARD_REQUIRE_2FA"] is expected


def test_session_limits_default_to_thirty_minutes_idle_and_twelve_hours(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE)
    assert loaded["SESSION_COOKIE_AGE"] == 30 * 60
    # Saved at most once a minute to move the idle expiry on (accounts.sessions), not on every request.
    assert loaded["SESSION_SAVE_EVERY_REQUEST"] is False
    assert loaded["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    assert loaded["DASHBOARD_SESSION_MAX_HOURS"] == 12


def test_idle_minutes_set_the_session_cookie_age(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE, DASHBOARD_SESSION_IDLE_MINUTES="15")
    assert loaded["SESSION_COOKIE_AGE"] == 15 * 60


def test_max_hours_are_read(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE, DASHBOARD_SESSION_MAX_HOURS="8")
    assert loaded["DASHBOARD_SESSION_MAX_HOURS"] == 8


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DASHBOARD_SESSION_IDLE_MINUTES", "0", "DASHBOARD_SESSION_IDLE_MINUTES must be between 1 and 1440"),
        ("DASHBOARD_SESSION_IDLE_MINUTES", "abc", "DASHBOARD_SESSION_IDLE_MINUTES must be a whole number"),
        ("DASHBOARD_SESSION_IDLE_MINUTES", "-5", "must be between 1 and 1440; got '-5'"),
        ("DASHBOARD_SESSION_MAX_HOURS", "0", "DASHBOARD_SESSION_MAX_HOURS must be between 1 and 168"),
        ("DASHBOARD_SESSION_MAX_HOURS", "12.5", "DASHBOARD_SESSION_MAX_HOURS must be a whole number"),
        ("DASHBOARD_REQUIRE_2FA", "sometimes", "DASHBOARD_REQUIRE_2FA must be one of"),
        ("DJANGO_BEHIND_TLS_PROXY", "maybe", "DJANGO_BEHIND_TLS_PROXY must be one of"),
    ],
)
def test_bad_security_values_fail_at_start_up_with_a_clear_message(monkeypatch, name, value, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        load_settings(monkeypatch, **(PRODUCTION_LIKE | {name: value}))


def test_trusted_proxies_are_read_as_a_list(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE, DASHBOARD_TRUSTED_PROXIES="10.0.0.2, 10.0.0.3")
    assert loaded["DASHBOARD_TRUSTED_PROXIES"] == ["10.0.0.2", "10.0.0.3"]


def test_no_proxy_is_trusted_by_default(monkeypatch):
    assert load_settings(monkeypatch, **PRODUCTION_LIKE)["DASHBOARD_TRUSTED_PROXIES"] == []


def test_log_format_defaults_to_json_in_production(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE)
    assert loaded["DASHBOARD_LOG_FORMAT"] == "json"
    assert loaded["LOGGING"]["handlers"]["console"]["formatter"] == "json"


def test_log_format_defaults_to_text_in_debug(monkeypatch):
    loaded = load_settings(monkeypatch, DJANGO_DEBUG="1")
    assert loaded["DASHBOARD_LOG_FORMAT"] == "text"
    assert loaded["LOGGING"]["handlers"]["console"]["formatter"] == "text"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (PRODUCTION_LIKE | {"DASHBOARD_LOG_FORMAT": "Text"}, "text"),
        ({"DJANGO_DEBUG": "1", "DASHBOARD_LOG_FORMAT": "json"}, "json"),
    ],
)
def test_log_format_can_be_chosen_either_way(monkeypatch, environment, expected):
    loaded = load_settings(monkeypatch, **environment)
    assert loaded["LOGGING"]["handlers"]["console"]["formatter"] == expected


@pytest.mark.parametrize("value", ["yaml", "logfmt"])
def test_invalid_log_format_fails_at_start_up(monkeypatch, value):
    with pytest.raises(ImproperlyConfigured, match="DASHBOARD_LOG_FORMAT must be json or text"):
        load_settings(monkeypatch, **PRODUCTION_LIKE, DASHBOARD_LOG_FORMAT=value)


def test_https_only_can_be_turned_off_for_plain_http_on_loopback(monkeypatch):
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE, DJANGO_HTTPS_ONLY="0")
    assert loaded["SECURE_SSL_REDIRECT"] is False
    assert loaded["SESSION_COOKIE_SECURE"] is False
    assert loaded["CSRF_COOKIE_SECURE"] is False
    assert loaded["SECURE_HSTS_SECONDS"] == 0


def test_https_only_is_off_in_debug(monkeypatch):
    loaded = load_settings(monkeypatch, DJANGO_DEBUG="1")
    assert loaded["DJANGO_HTTPS_ONLY"] is False
    assert loaded["SECURE_SSL_REDIRECT"] is False


# --- The Align URL carries the API key: https, or plain http to this machine only --------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://api.alignlabs.dev",
        "http://10.0.0.5:8001",
        "http://127.0.0.1.nip.io",
        "http://localhost.example.com",
        "http://[2001:db8::1]:8001",
    ],
)
def test_plain_http_to_another_host_fails_at_start_up_naming_the_variable(monkeypatch, url):
    with pytest.raises(ImproperlyConfigured, match=r"ALIGN_API_BASE_URL must be an https:// URL.*clear text"):
        load_settings(monkeypatch, **PRODUCTION_LIKE, ALIGN_API_BASE_URL=url)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8001", "http://127.0.0.2:9001", "http://localhost:8001", "http://[::1]:8001"],
)
def test_plain_http_to_this_machine_is_accepted_for_the_stand_in(monkeypatch, url):
    assert load_settings(monkeypatch, **PRODUCTION_LIKE, ALIGN_API_BASE_URL=url)["ALIGN_API_BASE_URL"] == url


def test_make_run_environment_still_starts(monkeypatch):
    """What `make run` sets: debug, and the stand-in on loopback over plain http."""
    loaded = load_settings(monkeypatch, DJANGO_DEBUG="1", ALIGN_API_BASE_URL="http://127.0.0.1:8001")
    assert loaded["ALIGN_API_BASE_URL"] == "http://127.0.0.1:8001"


def test_a_malformed_ipv6_url_fails_with_a_clear_message(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="ALIGN_API_BASE_URL must be an http"):
        load_settings(monkeypatch, **PRODUCTION_LIKE, ALIGN_API_BASE_URL="https://[::1")


def test_bulk_lookups_fetch_eight_at_a_time_by_default(monkeypatch):
    assert load_settings(monkeypatch, **PRODUCTION_LIKE)["ALIGN_BULK_CONCURRENCY"] == 8


def test_bulk_concurrency_is_read(monkeypatch):
    assert (
        load_settings(monkeypatch, **PRODUCTION_LIKE, ALIGN_BULK_CONCURRENCY="3")["ALIGN_BULK_CONCURRENCY"]
        == 3
    )


@pytest.mark.parametrize("value", ["0", "33", "eight", "-1"])
def test_bulk_concurrency_out_of_bounds_fails_at_start_up(monkeypatch, value):
    with pytest.raises(ImproperlyConfigured, match="ALIGN_BULK_CONCURRENCY"):
        load_settings(monkeypatch, **PRODUCTION_LIKE, ALIGN_BULK_CONCURRENCY=value)


WEBHOOK_VARIABLES = (
    "ALIGN_WEBHOOKS_ENABLED",
    "ALIGN_WEBHOOK_PREVIOUS_API_KEY",
    "ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE",
)


def test_webhooks_are_off_by_default_with_no_previous_key_and_300_a_minute(monkeypatch):
    for name in WEBHOOK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE)
    assert loaded["ALIGN_WEBHOOKS_ENABLED"] is False
    assert loaded["ALIGN_WEBHOOK_PREVIOUS_API_KEY"] == ""
    assert loaded["ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE"] == 300


def test_webhook_settings_are_read(monkeypatch):
    loaded = load_settings(
        monkeypatch,
        **PRODUCTION_LIKE,
        ALIGN_WEBHOOKS_ENABLED="1",
        ALIGN_WEBHOOK_PREVIOUS_API_KEY=" old-key ",
        ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE="1200",
    )
    assert loaded["ALIGN_WEBHOOKS_ENABLED"] is True
    assert loaded["ALIGN_WEBHOOK_PREVIOUS_API_KEY"] == "old-key"
    assert loaded["ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE"] == 1200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE", "0"),
        ("ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE", "lots"),
        ("ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE", "100001"),
        ("ALIGN_WEBHOOKS_ENABLED", "maybe"),
    ],
)
def test_a_bad_webhook_setting_stops_start_up_naming_it(monkeypatch, name, value):
    with pytest.raises(ImproperlyConfigured, match=name):
        load_settings(monkeypatch, **PRODUCTION_LIKE, **{name: value})


# --- Single sign-on (docs/single-sign-on.md) -------------------------------------------------------
SSO = {
    "DASHBOARD_OIDC_ISSUER": "https://login.example.com/realms/staff",
    "DASHBOARD_OIDC_CLIENT_ID": "kyc-desk",
    "DASHBOARD_OIDC_CLIENT_SECRET": "client-secret-value",
}


def test_without_an_issuer_there_is_no_single_sign_on_and_passwords_are_on(monkeypatch):
    for name in SSO:
        monkeypatch.delenv(name, raising=False)
    loaded = load_settings(monkeypatch, **PRODUCTION_LIKE)
    assert (loaded["SINGLE_SIGN_ON"], loaded["DASHBOARD_PASSWORD_SIGN_IN"]) == (False, "on")


def test_with_an_issuer_passwords_default_to_break_glass_and_the_map_is_read(monkeypatch):
    loaded = load_settings(
        monkeypatch,
        **PRODUCTION_LIKE,
        **SSO,
        DASHBOARD_OIDC_GROUP_MAP="kyc-staff=Compliance staff, kyc-audit = Compliance auditors",
        DASHBOARD_OIDC_TRUSTED_AMR="mfa,hwk",
    )
    assert loaded["SINGLE_SIGN_ON"] is True
    assert loaded["DASHBOARD_PASSWORD_SIGN_IN"] == "break-glass"
    assert loaded["DASHBOARD_OIDC_GROUP_MAP"] == {
        "kyc-staff": "Compliance staff",
        "kyc-audit": "Compliance auditors",
    }
    assert loaded["DASHBOARD_OIDC_TRUSTED_AMR"] == ["mfa", "hwk"]
    assert loaded["DASHBOARD_OIDC_RECHECK_SECONDS"] == 300


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"DASHBOARD_OIDC_ISSUER": "http://login.example.com"},
            "DASHBOARD_OIDC_ISSUER must be an https:// URL",
        ),
        ({"DASHBOARD_OIDC_ISSUER": "login.example.com"}, "DASHBOARD_OIDC_ISSUER must be an http(s) URL"),
        (
            {"DASHBOARD_OIDC_CLIENT_SECRET": ""},
            "DASHBOARD_OIDC_CLIENT_ID and DASHBOARD_OIDC_CLIENT_SECRET must be",
        ),
        (
            {"DASHBOARD_OIDC_GROUP_MAP": "kyc-staff"},
            "DASHBOARD_OIDC_GROUP_MAP must read idp-group=Django group",
        ),
        (
            {"DASHBOARD_PASSWORD_SIGN_IN": "sometimes"},
            "DASHBOARD_PASSWORD_SIGN_IN must be on, break-glass or off",
        ),
        ({"DASHBOARD_OIDC_RECHECK_SECONDS": "0"}, "DASHBOARD_OIDC_RECHECK_SECONDS must be between 1"),
    ],
)
def test_bad_single_sign_on_values_fail_at_start_up_naming_the_variable(monkeypatch, environment, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        load_settings(monkeypatch, **(PRODUCTION_LIKE | SSO | environment))


def test_plain_http_is_accepted_for_an_issuer_on_this_machine_only(monkeypatch):
    loaded = load_settings(
        monkeypatch, **PRODUCTION_LIKE, **(SSO | {"DASHBOARD_OIDC_ISSUER": "http://127.0.0.1:8002"})
    )
    assert loaded["DASHBOARD_OIDC_ISSUER"] == "http://127.0.0.1:8002"


def test_passwords_off_without_single_sign_on_would_let_nobody_in(monkeypatch):
    monkeypatch.delenv("DASHBOARD_OIDC_ISSUER", raising=False)
    with pytest.raises(ImproperlyConfigured, match="nobody could sign in"):
        load_settings(monkeypatch, **PRODUCTION_LIKE, DASHBOARD_PASSWORD_SIGN_IN="off")
