"""What the dashboard does when its database can't be written (SQLite) or reached (PostgreSQL).

A read-only directory or file, a full disk or a writer holding the lock past the timeout must
not turn every page into a 500. Reads go on where SQLite allows them (see `base`, the database
backend), a session that can't be saved leaves the page as it was, and anything that needs a
write says so in a 503 page (see `middleware`).
"""

import sqlite3

import psycopg

# SQLite's primary result codes for "the storage can't take this write now", as opposed to a
# mistake in a query (a missing table, a broken constraint), which stays a 500.
_UNWRITABLE_RESULT_CODES = frozenset(
    {
        sqlite3.SQLITE_READONLY,  # the file, its directory or its mount is read-only
        sqlite3.SQLITE_BUSY,  # another writer held the lock past the timeout
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,  # e.g. the -wal or -shm file beside it can't be created
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_PERM,
    }
)

_POSTGRESQL_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.ReadOnlySqlTransaction,
)


def _postgresql_unavailable(error: BaseException) -> bool:
    """Whether psycopg says the server can't be reached or can't take this write now.

    OperationalError covers a server that is down, restarting or refusing connections, a lost
    connection, a full disk and a lock or statement timeout; InterfaceError a connection that
    is already closed; ReadOnlySqlTransaction a read-only server (a standby). A mistake in a
    query (a missing table, a broken constraint) is none of these, and stays a 500.
    """
    return isinstance(error, _POSTGRESQL_UNAVAILABLE)


def is_unwritable(error: BaseException | None) -> bool:
    """Whether this error, or one it was raised from, says the database can't be written now.

    The chain matters: Django wraps SQLite's error in its own, and the session store turns it
    into "the session was deleted meanwhile" (UpdateError, then SessionInterrupted).
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        code = getattr(error, "sqlite_errorcode", None) if isinstance(error, sqlite3.Error) else None
        if code is not None and code & 0xFF in _UNWRITABLE_RESULT_CODES:
            return True
        if _postgresql_unavailable(error):
            return True
        error = error.__cause__ or error.__context__
    return False
