"""Sessions in Redis (with REDIS_URL) that say so when Redis can't be reached.

Django's cache session store reads a cache it can't reach as "no such session": every signed-in
request would be sent to the login page with its cookie deleted, so a 20-second Redis outage
would sign everyone out for good, and signing in would then fail with a 500 when the new
session can't be stored. This store raises SessionStoreUnavailable instead; the middleware
(dashboard.ops.database.middleware) answers a 503 that says sign-in is briefly unavailable, and
keeps the cookie, so a session Redis still holds when it is back goes on as if nothing happened.
"""

import contextlib
from collections.abc import Iterator

from django.contrib.sessions.backends import cache
from django.http import HttpResponse
from django.template.loader import render_to_string
from redis import RedisError

UNAVAILABLE_TEMPLATE = "session_store_unavailable.html"
# Seconds a browser or script is told to wait before trying again: about a Redis restart.
RETRY_AFTER_SECONDS = 60


class SessionStoreUnavailable(Exception):
    """The session store can't be reached: no session can be read, made or saved now."""


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as error:
        raise SessionStoreUnavailable from error


class SessionStore(cache.SessionStore):
    """Django's cache session store, except that a store it can't reach raises SessionStoreUnavailable."""

    def load(self) -> dict:
        """Django's, without its catch-all: only a session the store does not hold is a new one."""
        with _reachable():
            session_data = self._cache.get(self.cache_key)
        if session_data is not None:
            return session_data
        self._session_key = None
        return {}

    def exists(self, session_key: str) -> bool:
        with _reachable():
            return super().exists(session_key)

    def save(self, must_create: bool = False) -> None:
        with _reachable():
            super().save(must_create=must_create)

    def delete(self, session_key: str | None = None) -> None:
        with _reachable():
            super().delete(session_key)


def unavailable_response() -> HttpResponse:
    """The 503 staff read while the session store can't be reached, for a page or an htmx swap alike.

    Rendered without the request: its context processors would ask who is signed in, which is
    the session store's to say.
    """
    response = HttpResponse(render_to_string(UNAVAILABLE_TEMPLATE), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
