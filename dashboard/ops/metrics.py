"""Prometheus metrics: request latency, lookups by outcome, Align calls, audit write failures.

prometheus-client rather than django-prometheus: we need a few metrics of our own, labelled by
route and outcome only, and its multiprocess mode for gunicorn; django-prometheus would add
dozens of per-model and per-view series and its own middleware pair, and uses the same library
underneath. No label ever holds a customer ID, a user or a raw path: every label value comes
from a short fixed set, so the number of series stays small whatever clients send.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set before the workers start) makes each worker write
its values to files there, and /metrics adds them up across workers. gunicorn.conf.py calls
`child_exit` below so a dead worker's live values are dropped.
"""

import hmac
import os
import re
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

# Up to the longest lookup ALIGN_API_TIMEOUT allows (120 s).
LATENCY_BUCKETS_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_SECONDS = Histogram(
    "kycdesk_http_request_duration_seconds",
    "Time to answer a request, by route name, method and status class.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS_SECONDS,
)
LOOKUPS = Counter(
    "kycdesk_lookups",
    "Customer lookups by the outcome recorded in the audit log.",
    ["outcome"],
)
ALIGN_CALL_SECONDS = Histogram(
    "kycdesk_align_call_duration_seconds",
    "Time one lookup spent with Align, all attempts and waits included, by result.",
    ["result"],
    buckets=LATENCY_BUCKETS_SECONDS,
)
ALIGN_ATTEMPTS = Counter(
    "kycdesk_align_attempts",
    "Requests sent to Align, by the result of each.",
    ["result"],
)
ALIGN_RETRIES = Counter(
    "kycdesk_align_retries",
    "Requests to Align sent again, by the result of the attempt that was retried.",
    ["result"],
)
BULK_LOOKUPS = Counter("kycdesk_bulk_lookups", "Bulk lookups started (their customers count in lookups).")
AUDIT_WRITE_FAILURES = Counter(
    "kycdesk_audit_write_failures",
    "Audit log rows that could not be written, by action.",
    ["action"],
)
WEBHOOK_DELIVERIES = Counter(
    "kycdesk_webhook_deliveries",
    "Deliveries to /webhooks/align/, by what became of each (services/webhooks.py: DeliveryResult).",
    ["result"],
)


def align_result(error: Exception | None) -> str:
    """'ok', or the Align error's class in snake case ('upstream_timeout'): a fixed, short set."""
    if error is None:
        return "ok"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


class RequestMetricsMiddleware:
    """Times every request, labelled by route name (never the path), method and status class."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        REQUEST_SECONDS.labels(
            route=match.view_name if match is not None else "unresolved",
            method=request.method if request.method in KNOWN_METHODS else "other",
            status=f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        return response


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for a scraper that presents DASHBOARD_METRICS_TOKEN.

    No token configured: 404, as if there were no such page. A missing or wrong token: 401 with
    WWW-Authenticate, so whoever sets up the scraper can tell "wrong token" from "metrics off";
    the page's existence is no secret (docs/operations.md lists it), its contents are.
    """
    expected = settings.DASHBOARD_METRICS_TOKEN
    if not expected:
        return HttpResponseNotFound("Not found\n", content_type="text/plain")
    presented = request.headers.get("Authorization", "")
    if not hmac.compare_digest(presented.encode(), f"Bearer {expected}".encode()):
        response = HttpResponse("A bearer token is needed\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """Every worker's values added up in multiprocess mode; this process's otherwise."""
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    return registry


def child_exit(server, worker) -> None:
    """gunicorn's hook: drop the live values of a worker that exited (its counts stay summed).

    It runs in gunicorn's master, which never loads Django's settings: hence the environment.
    """
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        multiprocess.mark_process_dead(worker.pid, os.environ[MULTIPROC_DIR_VARIABLE])
