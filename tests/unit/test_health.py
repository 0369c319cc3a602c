"""/healthz and /readyz: no login, no second factor, and a short reason for each failing check."""

import json
import socket

import pytest
from django.core.management import call_command
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from health_check.exceptions import ServiceUnavailable

from dashboard import settings as production_settings
from dashboard.ops import health

pytestmark = pytest.mark.django_db

# What no readiness answer may hold: the key, the database's location, a stack trace.
SECRET_API_KEY = "test-api-key-5f1c9e0d7a"
UNREACHABLE_DATABASE = "/nonexistent-kycdesk-dir/kycdesk-db-host.sqlite3"


def readiness(client: Client) -> tuple[int, dict]:
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, json.loads(response.content)


def assert_body_hides_details(response_body: bytes) -> None:
    text = response_body.decode()
    assert SECRET_API_KEY not in text
    assert "Traceback" not in text
    assert "nonexistent-kycdesk-dir" not in text
    assert "kycdesk-db-host" not in text
    assert "127.0.0.1" not in text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_200_without_login(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok\n"


def test_healthz_makes_no_database_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        client.get("/healthz")


def test_healthz_reads_no_session_even_for_a_signed_in_browser(staff_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = staff_client.get("/healthz")

    assert response.status_code == 200


def test_healthz_is_not_held_at_two_factor_setup(client, staff_user, settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    client.force_login(staff_user)

    assert client.get("/healthz").status_code == 200


def test_healthz_and_readyz_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = production_settings.SECURE_REDIRECT_EXEMPT

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_metrics_is_still_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = production_settings.SECURE_REDIRECT_EXEMPT

    assert client.get("/metrics").status_code == 301


def test_probes_still_refuse_a_host_not_allowed(client):
    assert client.get("/healthz", HTTP_HOST="10.1.2.3").status_code == 400


def test_readyz_answers_200_when_every_check_passes(client):
    status, body = readiness(client)

    assert status == 200
    assert body["status"] == "ready"
    assert {"database", "migrations", "api_key"} <= body["checks"].keys()
    assert set(body["checks"].values()) == {"ok"}


def test_readyz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    # The checks run in threads of their own, whose connections are made from these settings.
    monkeypatch.setitem(connections.settings["default"], "NAME", UNREACHABLE_DATABASE)

    response = client.get("/readyz")

    assert response.status_code == 503
    checks = json.loads(response.content)["checks"]
    assert checks["database"] == "unreachable"
    assert checks["migrations"] == "not checked: the database is unreachable"
    assert_body_hides_details(response.content)


def test_readyz_is_503_when_a_migration_is_not_applied(client, monkeypatch):
    applied = MigrationRecorder.applied_migrations

    def all_but_the_audit_log_migrations(recorder):
        return {key: value for key, value in applied(recorder).items() if key[0] != "customers"}

    monkeypatch.setattr(MigrationRecorder, "applied_migrations", all_but_the_audit_log_migrations)

    status, body = readiness(client)

    assert status == 503
    assert body["checks"]["migrations"].endswith("not applied")
    assert body["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_configured_cache_is_unreachable(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }

    response = client.get("/readyz")

    assert response.status_code == 503
    assert json.loads(response.content)["checks"]["cache"] == "unreachable"
    assert_body_hides_details(response.content)


def test_readyz_checks_a_configured_cache_that_works(client, settings, tmp_path):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": tmp_path}
    }

    status, body = readiness(client)

    assert status == 200
    assert body["checks"]["cache"] == "ok"


def database_cache(table: str) -> dict:
    return {"BACKEND": "dashboard.ops.shared_cache.DatabaseCache", "LOCATION": table}


@pytest.mark.django_db(transaction=True)  # the checks read on connections of their own
def test_readyz_checks_that_the_shared_cache_table_is_made_without_redis(client, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": database_cache(production_settings.SHARED_CACHE_TABLE),
    }
    call_command("createcachetable", verbosity=0)

    status, body = readiness(client)

    assert status == 200
    assert body["checks"]["cache shared"] == "ok"
    assert "cache" not in body["checks"]  # the process's own memory: nothing to reach


def test_readyz_is_503_and_says_what_to_run_when_the_shared_cache_table_is_missing(client, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": database_cache("kycdesk_table_nobody_made"),
    }

    status, body = readiness(client)

    assert status == 503
    assert body["checks"]["cache shared"] == "its table is missing: run manage.py createcachetable"
    assert body["checks"]["database"] == "ok"


def test_readyz_checks_a_cache_configured_under_two_aliases_once(client, settings, tmp_path):
    """With REDIS_URL the default and the shared cache are one Redis."""
    cache = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": tmp_path}
    settings.CACHES = {"default": cache, "shared": cache}

    status, body = readiness(client)

    assert status == 200
    assert body["checks"]["cache"] == "ok"
    assert "cache shared" not in body["checks"]


def test_readyz_is_503_when_no_api_key_is_configured(client, settings):
    settings.ALIGN_API_KEY = ""

    status, body = readiness(client)

    assert status == 503
    assert body["checks"]["api_key"] == "ALIGN_API_KEY is not set"


def test_readyz_never_shows_the_api_key(client):
    response = client.get("/readyz")

    assert_body_hides_details(response.content)


def test_readyz_needs_no_login_nor_second_factor(client, staff_user, settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    client.force_login(staff_user)

    assert client.get("/readyz").status_code == 200


def test_probes_answer_only_get_and_head(client):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405


def test_a_library_check_message_is_never_shown(client, monkeypatch):
    """The library words a database failure from the driver's message, which may name the host."""

    def fail_naming_the_host(check):
        raise ServiceUnavailable("connection to server at db-primary.internal failed")

    monkeypatch.setattr(health.Database, "run", fail_naming_the_host)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert b"db-primary.internal" not in response.content
