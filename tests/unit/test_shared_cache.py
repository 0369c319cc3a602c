"""The shared cache (dashboard/ops/shared_cache.py): what every worker and instance must see.

Without REDIS_URL it is a table of the database, which several gunicorn workers write at once:
its counts and its "first one wins" must hold across them as Redis's do. Threads with a database
connection each stand in for the workers here; `make test`'s second pass runs the same tests on
PostgreSQL (the database cache is set up for them whatever REDIS_URL says).
"""

import threading
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection

from dashboard.ops.shared_cache import shared_cache

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 8
COUNTS_EACH = 25


@pytest.fixture
def database_cache(settings) -> Iterator[None]:
    """The shared cache as it is without REDIS_URL, on this run's database, its table made."""
    settings.CACHES = settings.CACHES | {
        settings.SHARED_CACHE: {
            "BACKEND": "dashboard.ops.shared_cache.DatabaseCache",
            "LOCATION": "kycdesk_shared_cache_test",
        }
    }
    call_command("createcachetable", verbosity=0)
    shared_cache.clear()
    yield
    shared_cache.clear()


def at_once(work: Callable[[], object], *, workers: int = WORKERS) -> list[object]:
    """`work` run by this many threads released together, each on a database connection of its own."""
    start = threading.Barrier(workers)
    results: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            results.append(work())
        except BaseException as error:  # reported below, by the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


def test_without_redis_the_shared_cache_is_the_database_and_the_default_stays_in_the_process(settings):
    if settings.REDIS_URL:
        pytest.skip("with REDIS_URL both caches are Redis")

    assert caches[settings.SHARED_CACHE].__class__.__name__ == "DatabaseCache"
    assert caches["default"].__class__.__name__ == "LocMemCache"


def test_counts_made_at_once_from_many_connections_are_all_counted(database_cache):
    shared_cache.add("kycdesk:test-count", 0)

    def count_some() -> None:
        for _ in range(COUNTS_EACH):
            shared_cache.incr("kycdesk:test-count")

    at_once(count_some)

    assert shared_cache.get("kycdesk:test-count") == WORKERS * COUNTS_EACH


def test_of_many_adds_of_one_key_at_once_exactly_one_wins(database_cache):
    won = at_once(lambda: shared_cache.add("kycdesk:test-guard", "taken", 60))

    assert won.count(True) == 1


def test_an_add_over_an_expired_entry_wins_once(database_cache):
    """An expired entry is still in the table until it is read or culled: one add takes its place."""
    shared_cache.set("kycdesk:test-guard", "long ago", -1)

    won = at_once(lambda: shared_cache.add("kycdesk:test-guard", "taken", 60))

    assert won.count(True) == 1


def test_a_missing_entry_is_not_counted(database_cache):
    with pytest.raises(ValueError, match="not found"):
        shared_cache.incr("kycdesk:never-added")
