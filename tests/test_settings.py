"""Settings come from the environment, with clear errors for bad or missing values."""

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
