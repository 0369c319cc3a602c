"""Django's floor (bench/floor.py), which `make bench` measures beside the dashboard: bench only, and
a lookup's guarantees kept.

It must be served only under bench.floor_settings, never by the real URLs or by production code;
and it must write exactly one audit row, committed before Align is asked, as the dashboard does.
No timing is asserted: the figures are `make bench`'s.
"""

import ast
import importlib
import json
import threading
import uuid

import pytest
from django.db import connection
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from bench import floor
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.models import AuditEvent

ADA = str(DemoId.INDIVIDUAL_APPROVED)
FLOOR_PATH = f"/bench/floor/{ADA}/"
FRAGMENT = b'<div id="result">the dashboard\'s own fragment, as captured</div>'
PRODUCTION_PACKAGES = ("customers", "dashboard")


@pytest.fixture
def floor_urls(settings, tmp_path):
    """The bench's settings, on top of the test settings: its URLs, and a fragment captured for Ada."""
    (tmp_path / f"{ADA}.html").write_bytes(FRAGMENT)
    settings.ROOT_URLCONF = "bench.floor"
    settings.BENCH_FLOOR_FRAGMENTS = str(tmp_path)
    floor.captured_fragment.cache_clear()
    yield
    floor.captured_fragment.cache_clear()


def committed_rows() -> list[tuple[str, str, int]]:
    """The audit rows another connection sees, as another request would: only what is committed."""
    seen: list[tuple[str, str, int]] = []

    def read() -> None:
        try:
            seen.extend(AuditEvent.objects.values_list("action", "outcome", "user_id"))
        finally:
            connection.close()  # this thread's own connection

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    return seen


def test_the_real_urls_have_no_floor():
    with pytest.raises(Resolver404):
        resolve(FLOOR_PATH, urlconf="dashboard.urls")
    with pytest.raises(NoReverseMatch):
        reverse("bench_floor", urlconf="dashboard.urls", args=[ADA])


def test_the_bench_settings_serve_the_real_urls_and_the_floor():
    bench_settings = importlib.import_module("bench.floor_settings")
    assert bench_settings.ROOT_URLCONF == "bench.floor"
    assert resolve(FLOOR_PATH, urlconf=bench_settings.ROOT_URLCONF).func is floor.lookup_floor
    assert resolve(f"/customers/{ADA}/", urlconf=bench_settings.ROOT_URLCONF).url_name == "detail"


def test_no_production_module_imports_the_bench(settings):
    importers = []
    for package in PRODUCTION_PACKAGES:
        for module in sorted((settings.BASE_DIR / package).rglob("*.py")):
            for node in ast.walk(ast.parse(module.read_text())):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(name == "bench" or name.startswith("bench.") for name in names):
                    importers.append(str(module.relative_to(settings.BASE_DIR)))
    assert importers == []


@pytest.mark.django_db(transaction=True)
def test_one_audit_row_is_committed_before_align_is_asked_and_finished_after(
    floor_urls, staff_user, staff_client, align, customer_url
):
    rows_when_asked = []

    def answer(request):
        rows_when_asked.extend(committed_rows())
        return 200, {"Content-Type": "application/json"}, json.dumps(DEMO_CUSTOMERS[ADA])

    align.add_callback("GET", customer_url(ADA), answer)
    response = staff_client.get(FLOOR_PATH, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.content == FRAGMENT
    assert rows_when_asked == [(AuditEvent.Action.LOOKUP, AuditEvent.Outcome.STARTED, staff_user.pk)]
    event = AuditEvent.objects.get()
    assert (event.customer_id, event.outcome, event.kyc_status) == (uuid.UUID(ADA), "found", "approved")


@pytest.mark.django_db
def test_an_align_failure_is_the_rows_outcome(floor_urls, staff_client, align, customer_url):
    align.get(customer_url(ADA), status=404, json={"message": "Customer not found"})

    response = staff_client.get(FLOOR_PATH)

    assert response.status_code == floor.ALIGN_FAILED_STATUS
    assert AuditEvent.objects.get().outcome == AuditEvent.Outcome.NOT_FOUND


@pytest.mark.django_db
def test_signed_out_nothing_is_recorded_or_asked(floor_urls, client, align):
    response = client.get(FLOOR_PATH)

    assert response.status_code == 403
    assert not AuditEvent.objects.exists()
    assert len(align.calls) == 0


@pytest.mark.django_db
def test_a_customer_without_a_captured_fragment_is_not_looked_up(floor_urls, staff_client, align):
    response = staff_client.get(f"/bench/floor/{DemoId.REJECTED}/")

    assert response.status_code == 404
    assert not AuditEvent.objects.exists()
    assert len(align.calls) == 0
