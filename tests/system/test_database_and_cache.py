"""DATABASE_URL and REDIS_URL (issue #11): what they select, and what holds on the real servers.

The tests marked `needs_services` run in `make test`'s second pass only (tests/support/services.py), where
DATABASE_URL and REDIS_URL point at a throwaway PostgreSQL and Redis; elsewhere they are skipped.
"""

import json
import os
import runpy
import socket
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
import responses
from django.conf import settings
from django.contrib.sessions.backends.cache import KEY_PREFIX
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models.sql.compiler import SQLInsertCompiler
from django.db.utils import OperationalError
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.align.standin.demo import DemoId
from customers.models import AuditEvent, KycWebhookEvent
from customers.services import audit, card_walks
from dashboard.accounts.sessions import SESSION_REFRESH_SECONDS, SESSION_REFRESHED_KEY
from dashboard.ops.database import is_unwritable
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME

SETTINGS_FILE = str(settings.BASE_DIR / "dashboard" / "settings.py")
ADA = uuid.UUID(DemoId.INDIVIDUAL_APPROVED)
LOOKUP_URL = reverse("customers:detail", kwargs={"customer_ref": str(ADA)})
POSTGRES_URL = "postgres://kyc:s3cret-pw@db.internal:5433/kyc_desk"

needs_services = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")),
    reason="needs DATABASE_URL and REDIS_URL: make test's second pass (tests/support/services.py)",
)


def load_settings(monkeypatch, **environment) -> dict:
    """Evaluate the settings module afresh, with only these of DATABASE_URL and REDIS_URL set."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(SETTINGS_FILE)


def test_a_postgres_url_selects_postgresql(monkeypatch):
    database = load_settings(monkeypatch, DATABASE_URL=POSTGRES_URL)["DATABASES"]["default"]

    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.internal", 5433, "kyc_desk")
    assert (database["USER"], database["PASSWORD"]) == ("kyc", "s3cret-pw")


def test_postgresql_connections_persist_and_are_checked_before_reuse(monkeypatch):
    database = load_settings(monkeypatch, DATABASE_URL=POSTGRES_URL)["DATABASES"]["default"]

    assert database["CONN_MAX_AGE"] > 0
    assert database["CONN_HEALTH_CHECKS"] is True


def test_without_database_url_sqlite_stays_the_default(monkeypatch):
    database = load_settings(monkeypatch)["DATABASES"]["default"]

    assert database["ENGINE"] == "dashboard.ops.database"
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]


@pytest.mark.parametrize(
    "url",
    [
        "mysql://kyc:s3cret-pw@db.internal/kyc_desk",
        "sqlite:///tmp/s3cret-pw.sqlite3",
        "db.internal/kyc_desk-s3cret-pw",
        "postgres://kyc:s3cret-pw@db.internal:port/kyc_desk",
        "postgres://kyc:s3cret-pw@db.internal:5432/",
    ],
)
def test_a_bad_database_url_names_the_variable_and_not_the_password(monkeypatch, url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL") as raised:
        load_settings(monkeypatch, DATABASE_URL=url)

    assert "s3cret-pw" not in str(raised.value)


def test_a_redis_url_selects_the_redis_cache_for_both_caches_and_sessions_in_it(monkeypatch):
    loaded = load_settings(monkeypatch, REDIS_URL="redis://cache.internal:6379/2")

    for alias in ("default", "shared"):
        assert loaded["CACHES"][alias]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
        assert loaded["CACHES"][alias]["LOCATION"] == "redis://cache.internal:6379/2"
    assert loaded["SESSION_ENGINE"] == "dashboard.ops.session_store"


def test_a_redis_that_stops_answering_fails_a_request_within_seconds(monkeypatch):
    caches = load_settings(monkeypatch, REDIS_URL="redis://cache.internal:6379/2")["CACHES"]
    options = caches["default"]["OPTIONS"]

    assert 0 < options["socket_connect_timeout"] <= 5
    assert 0 < options["socket_timeout"] <= 5


def test_without_redis_url_the_shared_cache_is_the_database_and_sessions_in_it(monkeypatch):
    loaded = load_settings(monkeypatch)

    assert loaded["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert loaded["CACHES"]["shared"]["BACKEND"] == "dashboard.ops.shared_cache.DatabaseCache"
    assert loaded["SESSION_ENGINE"] == "django.contrib.sessions.backends.db"


def test_a_bad_redis_url_names_the_variable(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        load_settings(monkeypatch, REDIS_URL="cache.internal:6379")


def test_lockouts_are_kept_in_the_database_every_instance_shares(monkeypatch):
    loaded = load_settings(monkeypatch, REDIS_URL="redis://cache.internal:6379/2")

    assert loaded["AXES_HANDLER"] == "axes.handlers.database.AxesDatabaseHandler"


def test_a_postgresql_server_that_cannot_be_reached_counts_as_unwritable():
    with pytest.raises(OperationalError) as raised:
        raise OperationalError("connection failed") from psycopg.OperationalError("connection refused")

    assert is_unwritable(raised.value)


def test_a_postgresql_error_in_the_query_itself_does_not_count_as_unwritable():
    assert not is_unwritable(psycopg.errors.UndefinedTable("relation does not exist"))


def test_a_lookup_while_the_user_cannot_be_read_is_a_503_not_a_500(staff_client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection failed") from psycopg.OperationalError("connection refused")

    monkeypatch.setattr("django.contrib.auth.get_user", unreachable)
    response = staff_client.get(LOOKUP_URL)

    assert response.status_code == 503
    assert "Lookups are paused: the audit log can&#x27;t be written" in response.content.decode()


def test_another_page_while_the_user_cannot_be_read_says_the_database_cannot_be_written(
    staff_client, monkeypatch
):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection failed") from psycopg.OperationalError("connection refused")

    monkeypatch.setattr("django.contrib.auth.get_user", unreachable)
    response = staff_client.get("/admin/")

    assert response.status_code == 503
    assert "The dashboard's database can't be written. Try again later" in response.content.decode()


# --- On the real servers (make test's second pass) ------------------------------------------


@needs_services
@pytest.mark.django_db
def test_the_second_pass_runs_on_postgresql_and_redis():
    assert connection.vendor == "postgresql"
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    cache.set("kyc-desk-probe", "here", 5)
    assert cache.get("kyc-desk-probe") == "here"


@needs_services
def test_a_lookup_is_on_record_in_postgresql_before_align_is_asked(
    staff_client, align, customer_url, demo_body
):
    rows_when_asked = []

    def answer(request):
        rows_when_asked.extend(AuditEvent.objects.filter(customer_id=ADA).values_list("outcome", flat=True))
        return (200, {}, json.dumps(demo_body()))

    align.add_callback(responses.GET, customer_url(ADA), callback=answer, content_type="application/json")
    response = staff_client.get(LOOKUP_URL)

    assert response.status_code == 200
    assert rows_when_asked == [AuditEvent.Outcome.STARTED]
    assert list(AuditEvent.objects.values_list("outcome", flat=True)) == [AuditEvent.Outcome.FOUND]


def closed_port() -> int:
    """A loopback port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def database_down(transactional_db):
    """Points the connection at a port where no server listens; yields the function that ends it."""
    real_port = connection.settings_dict["PORT"]

    def back_up():
        connection.close()
        connection.settings_dict["PORT"] = real_port

    connection.close()
    connection.settings_dict["PORT"] = closed_port()
    yield back_up
    back_up()


@needs_services
def test_a_lookup_while_postgresql_is_down_is_a_503_then_works_again_without_a_restart(
    staff_client, serve, database_down
):
    while_down = staff_client.get(LOOKUP_URL)  # the session is in Redis, which stays up
    database_down()  # the server answers again; nothing here is restarted
    serve()
    once_back = staff_client.get(LOOKUP_URL)

    assert while_down.status_code == 503
    assert once_back.status_code == 200
    assert AuditEvent.objects.filter(customer_id=ADA, outcome=AuditEvent.Outcome.FOUND).count() == 1


@needs_services
def test_a_lookup_whose_audit_row_postgresql_refuses_says_lookups_are_paused(staff_client, monkeypatch):
    def server_gone(self, *args, **kwargs):
        raise OperationalError("server closed the connection") from psycopg.OperationalError("closed")

    monkeypatch.setattr(SQLInsertCompiler, "execute_sql", server_gone)
    response = staff_client.get(LOOKUP_URL)

    assert response.status_code == 503
    assert "Lookups are paused" in response.content.decode()


def wrong_password_from_another_instance(times: int) -> None:
    """Five wrong passwords, typed into another process: another instance on the same servers."""
    script = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "client = Client()\n"
        f"for _ in range({times}):\n"
        f"    client.post('/accounts/login/', {{'username': {STAFF_USERNAME!r}, 'password': 'wrong'}})\n"
    )
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    environment = os.environ | {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.support.settings"}
    subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", script], env=environment, check=True, cwd=settings.BASE_DIR, timeout=60
    )


@needs_services
def test_five_wrong_passwords_on_one_instance_lock_the_username_out_on_another(staff_user, transactional_db):
    wrong_password_from_another_instance(times=5)

    response = Client().post("/accounts/login/", {"username": STAFF_USERNAME, "password": STAFF_PASSWORD})

    assert response.status_code == 429


@needs_services
@pytest.mark.django_db
def test_a_request_a_minute_after_the_last_refresh_moves_the_session_expiry_in_redis_to_thirty_minutes_ahead(
    staff_client,
):
    session = staff_client.session
    session[SESSION_REFRESHED_KEY] = time.time() - SESSION_REFRESH_SECONDS
    session.save()
    key = cache.make_key(KEY_PREFIX + session.session_key)
    redis = cache._cache.get_client(key, write=True)
    redis.expire(key, 5 * 60)

    assert staff_client.get(reverse("customers:search")).status_code == 200
    assert 29 * 60 < redis.ttl(key) <= 30 * 60


@pytest.mark.django_db
def test_the_admin_finds_a_customer_by_an_id_prefix_typed_without_hyphens_on_either_database(
    admin_client, admin_user
):
    AuditEvent.objects.create(user=admin_user, action="lookup", customer_id=ADA, outcome="found")
    prefix = str(ADA).replace("-", "")[:12]  # PostgreSQL compares the hyphenated text of a UUID

    response = admin_client.get(reverse("admin:customers_auditevent_changelist"), {"q": prefix})

    assert [event.customer_id for event in response.context["cl"].result_list] == [ADA]


@needs_services
@pytest.mark.django_db
def test_postgresql_reads_a_customers_link_copies_through_the_customer_index(staff_user, django_user_model):
    """On a trail shaped like a team's (many customers, several users, fresh statistics), the newest
    copies of one customer come from audit_customer_action_recent, in order, with no sort.

    On a near-empty table the planner's choice follows whatever statistics earlier tests left,
    so the test gives it a trail to plan for rather than forbidding plans one by one.
    """
    colleagues = [staff_user] + [
        django_user_model.objects.create_user(username=f"colleague{number}") for number in range(4)
    ]
    AuditEvent.objects.bulk_create(
        AuditEvent(
            user=colleagues[number % len(colleagues)],
            action="link_copied" if number % 3 else "lookup",
            customer_id=uuid.UUID(int=number + 1, version=4),
            outcome="copied" if number % 3 else "found",
        )
        for number in range(3000)
    )
    AuditEvent.objects.create(user=staff_user, action="link_copied", customer_id=ADA, outcome="copied")
    with CaptureQueriesContext(connection) as queries:
        audit.link_copies(customer_id=ADA)
    (query,) = queries.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_auditevent")
        cursor.execute("ANALYZE auth_user")
        cursor.execute(f"EXPLAIN {query['sql']}")
        plan = " / ".join(row[0] for row in cursor.fetchall())

    assert "audit_customer_action_recent" in plan, plan
    assert "Sort" not in plan


@needs_services
@pytest.mark.django_db
def test_postgresql_reads_a_card_and_marks_a_lookup_by_index_however_often_the_customer_was_looked_up(
    staff_user, django_user_model
):
    """The card's one read (audit.card_trail) and the outcome's UPDATE that marks what later cards skip
    (audit.finish_lookup), on a trail shaped like a team's, with Ada looked up 2,000 times by one user,
    her page refreshing itself: each walk names its index, and nothing scans the audit table."""
    colleagues = [staff_user] + [
        django_user_model.objects.create_user(username=f"colleague{number}") for number in range(4)
    ]
    AuditEvent.objects.bulk_create(
        AuditEvent(
            user=colleagues[number % len(colleagues)],
            action="link_copied" if number % 5 == 0 else "lookup",
            customer_id=uuid.UUID(int=number % 7000 + 1, version=4),
            outcome="copied" if number % 5 == 0 else "found",
            kyc_status="approved",
        )
        for number in range(30_000)
    )
    AuditEvent.objects.bulk_create(
        AuditEvent(
            user=staff_user,
            action="lookup",
            customer_id=ADA,
            outcome="found",
            kyc_status="pending",
            kyc_unchanged=number > 0,
            repeats_last_card=number > 0,
            automatic=number > 0,
        )
        for number in range(2000)
    )
    KycWebhookEvent.objects.bulk_create(
        KycWebhookEvent(
            delivery_key=f"{number:064x}",
            customer_id=uuid.UUID(int=number % 7000 + 1, version=4),
            event_created_at=timezone.now(),
            kyc_status="approved",
        )
        for number in range(5000)
    )
    event = audit.start_lookup_as(audit.Actor(staff_user, None, "plans"), ADA)
    with CaptureQueriesContext(connection) as queries:
        audit.card_trail(customer_id=ADA, user=staff_user)
        event.kyc_status = "pending"
        AuditEvent.objects.filter(pk=event.pk).update(
            kyc_status=event.kyc_status,
            kyc_unchanged=card_walks.kyc_unchanged(event),
            repeats_last_card=card_walks.repeats_last_card(event),
        )
    card_read, outcome_write = (query["sql"] for query in queries.captured_queries)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_auditevent")
        cursor.execute("ANALYZE customers_kycwebhookevent")
        plans = []
        for sql in (card_read, outcome_write):
            cursor.execute(f"EXPLAIN {sql}")
            plans.append(" / ".join(row[0] for row in cursor.fetchall()))
    card_plan, outcome_plan = plans

    for index in ("audit_customer_kyc_changes", "audit_user_shown_recent", "audit_user_customer_cards"):
        assert index in card_plan, card_plan
    assert "Seq Scan on customers_auditevent" not in card_plan, card_plan
    for index in ("audit_customer_action_recent", "audit_user_shown_recent", "webhook_customer_since"):
        assert index in outcome_plan, outcome_plan
    assert "Seq Scan on customers_auditevent" not in outcome_plan, outcome_plan
