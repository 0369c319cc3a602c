"""The last answer to an error nothing else turned into a page: Django's handler500 (dashboard/urls.py).

Django turns an exception raised by a middleware into a response right where it is raised, by
calling this view: no other middleware ever sees it, and DatabaseUnavailableMiddleware only
catches a view's. So an error that says the database can't be written or reached, or that
Redis (the session store and the shared cache) can't be reached, raised by any middleware, is
answered here with the 503 page that says so: a session past its time limit can't be ended
while the database is read-only, for one, and is refused rather than served. Anything else is a
bug, and gets Django's own 500 page. Django logs either with its traceback.
"""

import sys

from django.http import HttpRequest, HttpResponse
from django.views import defaults
from redis import RedisError

from dashboard.ops import session_store
from dashboard.ops.database import is_unwritable
from dashboard.ops.database.middleware import requested_page, unavailable_response


def server_error(request: HttpRequest) -> HttpResponse:
    """A 503 saying which store is out, when one is; otherwise Django's 500 page."""
    error = sys.exc_info()[1]
    if isinstance(error, (session_store.SessionStoreUnavailable, RedisError)):
        return session_store.unavailable_response()
    if is_unwritable(error):
        return unavailable_response(requested_page(request), before_the_view=False)
    return defaults.server_error(request)
