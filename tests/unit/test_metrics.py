"""/metrics: only for the token's bearer, the counters that matter, and no customer ID in sight."""

import os
import runpy
import subprocess
import sys
import textwrap
import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.test import Client

from customers.align.standin.demo import DemoId
from customers.models import AuditEvent
from dashboard.ops import metrics

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-3b8e0f"


@pytest.fixture
def metrics_token(settings) -> str:
    settings.DASHBOARD_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client: Client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return response.content.decode()


def sample(text: str, name: str, labels: str) -> float:
    """The value of one series in the exposition text, 0 when it is not there yet."""
    prefix = f"{name}{{{labels}}} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def test_metrics_is_404_when_no_token_is_configured(client, settings):
    settings.DASHBOARD_METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_without_a_token_is_401(client, metrics_token):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"kycdesk_" not in response.content


def test_metrics_with_a_wrong_token_is_401(client, metrics_token):
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")

    assert response.status_code == 401
    assert b"kycdesk_" not in response.content


def test_metrics_with_the_token_not_as_a_bearer_is_401(client, metrics_token):
    assert client.get("/metrics", HTTP_AUTHORIZATION=TOKEN).status_code == 401


def test_metrics_with_a_token_that_is_not_ascii_is_401_not_500(client, metrics_token):
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer m\u00e9trique").status_code == 401


def test_metrics_with_the_token_is_prometheus_text(client, metrics_token):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "# TYPE kycdesk_lookups_total counter" in response.content.decode()


def test_metrics_needs_no_login_nor_second_factor(client, metrics_token, staff_user, settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    client.force_login(staff_user)

    scrape(client)


def test_a_lookup_counts_by_its_outcome(client, staff_client, metrics_token, serve):
    before = sample(scrape(client), "kycdesk_lookups_total", 'outcome="found"')
    serve()

    staff_client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/")

    after = sample(scrape(client), "kycdesk_lookups_total", 'outcome="found"')
    assert after == before + 1


def test_a_failed_lookup_counts_under_its_audit_outcome(
    client, staff_client, metrics_token, align, customer_url
):
    customer_id = uuid.uuid4()
    align.get(customer_url(customer_id), status=404)
    before = sample(scrape(client), "kycdesk_lookups_total", 'outcome="not_found"')

    staff_client.get(f"/customers/{customer_id}/")

    assert sample(scrape(client), "kycdesk_lookups_total", 'outcome="not_found"') == before + 1


def test_align_attempts_and_retries_are_counted(
    client, staff_client, metrics_token, align, customer_url, demo_body
):
    customer_id = DemoId.INDIVIDUAL_APPROVED
    align.get(customer_url(customer_id), status=503)
    align.get(customer_url(customer_id), json=demo_body(customer_id))
    text = scrape(client)
    retried_before = sample(text, "kycdesk_align_retries_total", 'result="upstream_error"')
    failed_attempts_before = sample(text, "kycdesk_align_attempts_total", 'result="upstream_error"')
    ok_attempts_before = sample(text, "kycdesk_align_attempts_total", 'result="ok"')

    staff_client.get(f"/customers/{customer_id}/")

    text = scrape(client)
    assert sample(text, "kycdesk_align_retries_total", 'result="upstream_error"') == retried_before + 1
    assert (
        sample(text, "kycdesk_align_attempts_total", 'result="upstream_error"') == failed_attempts_before + 1
    )
    assert sample(text, "kycdesk_align_attempts_total", 'result="ok"') == ok_attempts_before + 1


def test_align_call_latency_is_a_histogram_of_the_whole_call(client, staff_client, metrics_token, serve):
    before = sample(scrape(client), "kycdesk_align_call_duration_seconds_count", 'result="ok"')
    serve()

    staff_client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/")

    text = scrape(client)
    assert sample(text, "kycdesk_align_call_duration_seconds_count", 'result="ok"') == before + 1
    assert 'kycdesk_align_call_duration_seconds_bucket{le="120.0",result="ok"}' in text


def test_an_audit_write_that_fails_is_counted(client, staff_client, metrics_token, align, monkeypatch):
    def fail(*args, **kwargs):
        raise DatabaseError("disk I/O error")

    before = sample(scrape(client), "kycdesk_audit_write_failures_total", 'action="lookup"')
    monkeypatch.setattr(AuditEvent.objects, "create", fail)

    response = staff_client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/")

    assert response.status_code == 503
    assert sample(scrape(client), "kycdesk_audit_write_failures_total", 'action="lookup"') == before + 1


def test_an_outcome_that_cannot_be_written_is_counted(
    client, staff_client, metrics_token, serve, monkeypatch
):
    save = AuditEvent.save

    def fail_to_record_the_outcome(event, *args, update_fields=None, **kwargs):
        if update_fields:
            raise DatabaseError("disk I/O error")
        save(event, *args, **kwargs)

    serve()
    before = sample(scrape(client), "kycdesk_audit_write_failures_total", 'action="lookup"')
    monkeypatch.setattr(AuditEvent, "save", fail_to_record_the_outcome)

    response = staff_client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/")

    assert response.status_code == 200
    assert sample(scrape(client), "kycdesk_audit_write_failures_total", 'action="lookup"') == before + 1


def test_request_latency_is_labelled_by_route_never_by_path(client, staff_client, metrics_token, serve):
    serve()

    staff_client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/")

    text = scrape(client)
    assert (
        'kycdesk_http_request_duration_seconds_count{method="GET",route="customers:detail",status="2xx"}'
        in text
    )


def test_an_unknown_method_is_counted_as_other(client, metrics_token):
    client.generic("BREW", "/healthz")

    assert 'method="other"' in scrape(client)


def test_metrics_never_show_a_customer_id(client, staff_client, metrics_token, serve, align, customer_url):
    serve()
    missing_id = uuid.uuid4()
    align.get(customer_url(missing_id), status=404)

    staff_client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/")
    staff_client.get(f"/customers/{missing_id}/")

    text = scrape(client).lower()
    assert str(DemoId.INDIVIDUAL_APPROVED).lower() not in text
    assert str(missing_id) not in text
    assert "/customers/" not in text


# --- Several processes (gunicorn workers) ------------------------------------------------------

WORKER_SCRIPT = textwrap.dedent(
    """
    from dashboard.ops import metrics
    metrics.LOOKUPS.labels(outcome="found").inc(3)
    """
)


def run_worker(multiproc_dir) -> None:
    """One process that counts three lookups, as a gunicorn worker would, and exits."""
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", WORKER_SCRIPT], env=environment, check=True, timeout=60
    )


def test_counts_from_several_worker_processes_add_up(client, metrics_token, settings, tmp_path):
    run_worker(tmp_path)
    run_worker(tmp_path)
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)

    assert sample(scrape(client), "kycdesk_lookups_total", 'outcome="found"') == 6


def test_child_exit_drops_the_live_files_of_the_worker_that_exited(tmp_path, monkeypatch):
    monkeypatch.setenv(metrics.MULTIPROC_DIR_VARIABLE, str(tmp_path))
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")
    (tmp_path / "gauge_livesum_4343.db").write_bytes(b"")

    metrics.child_exit(server=None, worker=SimpleNamespace(pid=4242))

    assert sorted(path.name for path in tmp_path.iterdir()) == ["gauge_livesum_4343.db"]


def test_a_multiprocess_directory_that_does_not_exist_stops_start_up(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))

    with pytest.raises(ImproperlyConfigured, match="PROMETHEUS_MULTIPROC_DIR"):
        runpy.run_path(str(django_settings.BASE_DIR / "dashboard" / "settings.py"))
