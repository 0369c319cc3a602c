"""The cache every worker and every instance shares: Redis with REDIS_URL, the database without.

Some state must be seen by whichever process answers the next request: a bulk lookup's rows and
progress (its page's polls reach any worker), the webhook rate limit (a flood is counted across
all of them) and the new-KYC-session guard. That state lives in the cache settings.SHARED_CACHE
names, never in the default cache, which without Redis is each process's own memory.

Without Redis, the shared cache is Django's database cache rather than tables of our own: the
code that keeps this state speaks the cache API whichever server holds it, so one code path runs
and is tested in both deployments, with the same expiry and the same failures; and the state is
throwaway (a batch's rows, a minute's count), which is what a cache holds. Its table is made by
`manage.py createcachetable` (`make serve` runs it), not by a migration: which alias is a
database cache depends on REDIS_URL, and a migration must not. No single lookup reads it, so a
lookup costs no query more for it; a bulk row costs a few small writes beside its audit row.
"""

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends import db
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.db import DatabaseError, connections, router, transaction
from django.utils.connection import ConnectionProxy
from redis import RedisError

# Like django.core.cache.cache, for the cache every process shares.
shared_cache = ConnectionProxy(caches, settings.SHARED_CACHE)
# What the shared cache raises when it can't be reached or written: Redis's client (and the
# socket under it), or the database under Django's database cache.
UNAVAILABLE_ERRORS = (RedisError, OSError, DatabaseError)


class DatabaseCache(db.DatabaseCache):
    """Django's database cache, with `add` and `incr` atomic across processes, as Redis makes them.

    Django's `incr` reads the value and writes it back, so two workers counting at once would
    both write the same number, and a flood spread over workers would pass the rate limit. Its
    `add` may let two processes through where an expired entry is still in the table. Here each
    runs in one transaction that holds the entry's row: SELECT ... FOR UPDATE on PostgreSQL; on
    SQLite the transaction takes the database's write lock as it begins (transaction_mode
    IMMEDIATE, dashboard/settings.py), so the read and the write can't be split.
    """

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        with self._entry_locked(key, version):
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None) -> int:
        with self._entry_locked(key, version):
            return super().incr(key, delta, version)

    @contextlib.contextmanager
    def _entry_locked(self, key, version) -> Iterator[None]:
        alias = router.db_for_write(self.cache_model_class)
        connection = connections[alias]
        with transaction.atomic(using=alias):
            if connection.features.has_select_for_update:
                quote = connection.ops.quote_name
                # The table's name is ours (settings.CACHES), never a request's.
                query = f"SELECT 1 FROM {quote(self._table)} WHERE {quote('cache_key')} = %s FOR UPDATE"  # noqa: S608
                with connection.cursor() as cursor:
                    cursor.execute(query, [self.make_and_validate_key(key, version=version)])
            yield
