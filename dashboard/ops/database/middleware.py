"""Pages that need no write still load when the database can't be written; the rest say why.

Two middleware classes, one per place a write can fail: the session saved at the end of a
request (at most once a minute, to move its idle expiry on: dashboard.accounts.sessions), and a view
that writes (signing in, two-factor, logging out, the admin). Lookups and Copy link beacons
handle their own audit write (customers.services.audit). A third reads the signed-in user up
front, so that a database that can't be read is a 503 too.

The same three answer for the session store in Redis (dashboard.ops.session_store): a session
that can't be read is a 503 saying sign-in is briefly unavailable, one that can't be made (signing
in) the same, and one that can't be saved leaves the page as it is.
"""

import logging

from django.contrib.sessions import middleware as sessions
from django.contrib.sessions.exceptions import SessionInterrupted
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils.cache import patch_vary_headers

from dashboard.ops import session_store
from dashboard.ops.database import is_unwritable

logger = logging.getLogger(__name__)

# What the pages of a URL namespace say when the signed-in user can't be read, registered by the
# app that owns those pages (customers: "Lookups are paused"), so that ops never imports an app.
PAUSED_ANSWERS: dict[str, object] = {}


def register_paused_answer(namespace: str, answer: object) -> None:
    """Give the pages of `namespace` their own answer (a title and a sentence) on the 503 page."""
    PAUSED_ANSWERS[namespace] = answer


UNAVAILABLE_TEMPLATE = "database_unavailable.html"
# The pages of signing in: each of them writes (the throttle's record of the attempt, the new
# session, the second factor's counters), and none of them can let anyone in without it.
SIGN_IN_PAGES = frozenset({"login", "two_factor_setup", "two_factor_verify"})


class SessionMiddleware(sessions.SessionMiddleware):
    """Django's, except that a session its store can't save leaves the response as it is.

    The session stays as last saved: the user is not logged out, nor told of an error, and its
    idle expiry is not moved on, so it ends no later than it would have. Django skips the save
    for a 5xx already, so a failed sign-in never saves half a session either.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        try:
            return super().process_response(request, response)
        except session_store.SessionStoreUnavailable:
            logger.warning("The session could not be saved: the session store can't be reached")
        except (DatabaseError, SessionInterrupted) as error:
            # Django's store reports a failed write as it reports a session deleted meanwhile by
            # a logout (SessionInterrupted): only the first is forgiven here.
            if not is_unwritable(error):
                raise
            logger.warning("The session could not be saved: the database can't be written")
        patch_vary_headers(response, ("Cookie",))
        return response


class DatabaseUnavailableMiddleware:
    """A view whose write fails because the database can't be written gets a 503 that says so;
    so does one whose session can't be made because the session store can't be reached (signing
    in, while Redis is down).

    Any other database error is a bug, and stays a 500.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, session_store.SessionStoreUnavailable):
            logger.warning("The session could not be made: the session store can't be reached")
            return session_store.unavailable_response()
        if not is_unwritable(exception):
            return None
        logger.error("A write failed: the database can't be written", exc_info=exception)
        return unavailable_response(request.resolver_match, before_the_view=False)


def unavailable_response(match: ResolverMatch | None, *, before_the_view: bool) -> HttpResponse:
    """The 503 page of a database that can't be written or reached, in the words of the page asked for.

    Rendered without the request: its context processors would read the database again.
    """
    context = {
        "signing_in": match is not None and match.url_name in SIGN_IN_PAGES,
        # Before the view, a lookup gets the lookup's own answer: nothing can be recorded, so
        # nothing is fetched.
        "lookup_paused": PAUSED_ANSWERS.get(match.namespace) if match and before_the_view else None,
    }
    return HttpResponse(render_to_string(UNAVAILABLE_TEMPLATE, context), status=503)


class SignedInUserMiddleware:
    """Finds out who is signed in up front, so a session store or database that can't be reached is
    a 503, not a 500.

    The middleware after this one (the log context, the session clock, two-factor) each ask
    who is signed in, which reads the session (from Redis, with REDIS_URL) and the user from the
    database. Outside a view, where DatabaseUnavailableMiddleware can't see it, that read's
    failure would be a 500. A PostgreSQL server that is down does not let even that read
    through; SQLite always does. Asking here costs nothing more: the session and the user are
    read once per request either way, and only when the request carries a session cookie.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.user.is_authenticated  # noqa: B018  (loads the user, once, for all that follow)
        except session_store.SessionStoreUnavailable:
            logger.warning("The session could not be read: the session store can't be reached")
            return session_store.unavailable_response()
        except DatabaseError as error:
            if not is_unwritable(error):
                raise
            logger.error(
                "The signed-in user could not be read: the database can't be reached", exc_info=error
            )
            return unavailable_response(requested_page(request), before_the_view=True)
        return self.get_response(request)


def requested_page(request: HttpRequest) -> ResolverMatch | None:
    """The page asked for, also before Django resolves it for the view."""
    try:
        return resolve(request.path_info)
    except Resolver404:
        return None
