"""Liveness (/healthz) and readiness (/readyz) for the orchestrator, and the probe middleware.

Readiness runs django-health-check's own Database and Cache checks, plus three of ours it has no
check for (migrations applied, a database cache's table made, an API key configured), and answers
with one short reason per check. The library's messages are never shown: a database error's text
can name the host, so a failed library check reads only "unreachable", and only our own checks
word their reasons.
"""

import asyncio
import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import BaseDatabaseCache
from django.db import DatabaseError, connections, router
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import resolve
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable

# Answered before the session, authentication and two-factor middleware (ProbeMiddleware).
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Caches that live in this process's memory: nothing to reach, so nothing to check.
PROCESS_LOCAL_CACHES = frozenset(
    {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
)
LIBRARY_CHECK_FAILED = "unreachable"


class NotReady(ServiceUnavailable):
    """A failure of one of our own checks, its message written to be shown as it is."""


@dataclasses.dataclass
class MigrationsApplied(HealthCheck):
    """Every migration this code ships is applied to the database."""

    alias: str = "default"

    def run(self) -> None:
        connection = connections[self.alias]
        try:
            with connection.temporary_connection():
                executor = MigrationExecutor(connection)
                unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as error:
            raise NotReady("not checked: the database is unreachable") from error
        if unapplied:
            raise NotReady(f"{len(unapplied)} not applied")


@dataclasses.dataclass
class CacheTableMade(HealthCheck):
    """A cache kept in the database (the shared cache without Redis) has its table.

    `manage.py createcachetable` makes it, not `migrate`: without it bulk lookups can't start.
    Whether the database answers is the database check's to say; this one only reads, so a
    database that can't be written, whose pages still load, does not make the instance unready.
    """

    alias: str = "default"

    def run(self) -> None:
        table = settings.CACHES[self.alias]["LOCATION"]
        connection = connections[router.db_for_read(caches[self.alias].cache_model_class)]
        try:
            with connection.temporary_connection():
                tables = connection.introspection.table_names()
        except DatabaseError as error:
            raise NotReady("not checked: the database is unreachable") from error
        if table not in tables:
            raise NotReady("its table is missing: run manage.py createcachetable")


@dataclasses.dataclass
class AlignApiKeyConfigured(HealthCheck):
    """ALIGN_API_KEY is set: without it every lookup fails."""

    def run(self) -> None:
        if not settings.ALIGN_API_KEY:
            raise NotReady("ALIGN_API_KEY is not set")


# Checks other apps add from their ready() (the identity provider, when single sign-on is set up):
# ops knows nothing of them, as it knows nothing of the apps.
REGISTERED_CHECKS: dict[str, Callable[[], HealthCheck | None]] = {}


def register_readiness_check(name: str, check: Callable[[], HealthCheck | None]) -> None:
    """Add a check to /readyz under `name`, made at each probe; None leaves it out (nothing to check).

    Its NotReady message is shown as it is.
    """
    REGISTERED_CHECKS[name] = check


def readiness_checks() -> dict[str, HealthCheck]:
    """The checks by the name the answer gives them; a cache only when it is not in this process.

    A cache configured under two aliases (with REDIS_URL, the default and the shared cache are
    one Redis) is checked once, under the first.
    """
    checks: dict[str, HealthCheck] = {"database": Database(), "migrations": MigrationsApplied()}
    checked: list[dict] = []
    for alias, cache in settings.CACHES.items():
        if cache["BACKEND"] in PROCESS_LOCAL_CACHES or cache in checked:
            continue
        checked.append(cache)
        name = "cache" if alias == "default" else f"cache {alias}"
        in_database = isinstance(caches[alias], BaseDatabaseCache)
        checks[name] = CacheTableMade(alias=alias) if in_database else Cache(alias=alias)
    checks["api_key"] = AlignApiKeyConfigured()
    for name, make_check in REGISTERED_CHECKS.items():
        if (check := make_check()) is not None:
            checks[name] = check
    return checks


async def _run_all(checks: list[HealthCheck]) -> list[HealthCheckResult]:
    return await asyncio.gather(*(check.get_result() for check in checks))


def run_checks(checks: list[HealthCheck]) -> list[HealthCheckResult]:
    """The checks' results, side by side, on an event loop of their own in a thread of its own.

    Not asgiref's async_to_sync, which refuses a calling thread that an event loop runs in (as
    Playwright's keeps one in the process of the browser tests): a probe must answer whatever
    the thread it is asked in. The checks touch only connections of their own.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz") as pool:
        return pool.submit(asyncio.run, _run_all(checks)).result()


def _reason(result: HealthCheckResult) -> str:
    if result.error is None:
        return "ok"
    return result.error.message if isinstance(result.error, NotReady) else LIBRARY_CHECK_FAILED


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """200 while the process answers; touches nothing, so only a stuck process fails it."""
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """200 when every check passes, else 503; either way one short reason per check."""
    checks = readiness_checks()
    results = run_checks(list(checks.values()))
    reasons = {name: _reason(result) for name, result in zip(checks, results, strict=True)}
    ready = all(result.error is None for result in results)
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "checks": reasons}, status=200 if ready else 503
    )


class ProbeMiddleware:
    """Answers /healthz, /readyz and /metrics before the session and user middleware.

    Probes and scrapers are not users: they carry no session, need no login, CSRF or second
    factor. Skipping that part of the stack means /healthz never reads the session store or
    the database, even for a request that carries a cookie, and a database or Redis outage
    turns /readyz into a 503 that says so rather than a 500. The host is still checked against
    DJANGO_ALLOWED_HOSTS, as for every page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in PROBE_PATHS:
            return self.get_response(request)
        request.get_host()  # raises DisallowedHost (a 400) for a host not allowed
        match = resolve(request.path_info)
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)
