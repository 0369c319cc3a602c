"""Django's SQLite backend, able to read a database it can't write.

The database runs in WAL mode, which keeps two files beside it (-wal and -shm) that every
reader must be able to create. In a read-only directory a reader can't, and SQLite refuses even
a SELECT ("attempt to write a readonly database"), so every page would be a 500. When that
happens and the -wal file holds nothing (the last writer closed cleanly), the database file
alone is the whole database, and it is opened again as immutable: reads work, every write
fails as SQLite's read-only error, which the audit trail and the middleware turn into 503s.

Only then: an immutable connection would miss rows still in a -wal file. Connections are kept
between requests (CONN_MAX_AGE), but not an immutable one, nor one that saw an error (SQLite
opens a write-protected file read-only without a word, and such a connection would refuse
every write for as long as it is kept): those are closed at the end of their request, so a
normal one is opened on the next and wins as soon as the database is writable again.
"""

import logging
from pathlib import Path

from django.db.backends.sqlite3 import base as sqlite

logger = logging.getLogger(__name__)


class DatabaseWrapper(sqlite.DatabaseWrapper):
    # Whether the open connection is the immutable, read-only fallback.
    serving_reads_only = False

    def get_new_connection(self, conn_params):
        self.serving_reads_only = False
        try:
            return super().get_new_connection(conn_params)
        except sqlite.Database.OperationalError as error:
            path = Path(conn_params["database"])
            read_only = getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite.Database.SQLITE_READONLY
            if not read_only or self.is_in_memory_db() or _wal_may_hold_changes(path):
                raise
            logger.warning("The database can't be written (%s): serving reads only", error.sqlite_errorname)
            read_only_uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
            connection = super().get_new_connection(conn_params | {"database": read_only_uri, "uri": True})
            self.serving_reads_only = True
            return connection

    def close_if_unusable_or_obsolete(self):
        """Django's, except that the read-only fallback, or a connection that saw an error, is not kept.

        Django keeps a connection after an error when it is still usable, and SQLite's always is.
        """
        if self.connection is not None and (self.serving_reads_only or self.errors_occurred):
            self.close()
            return
        super().close_if_unusable_or_obsolete()


def _wal_may_hold_changes(path: Path) -> bool:
    """Whether rows may wait in the -wal file, where an immutable connection would not see them."""
    try:
        return path.with_name(f"{path.name}-wal").stat().st_size > 0
    except FileNotFoundError:
        return False
    except OSError:
        return True
