"""Pages that need no write still load when the database can't be written; the rest say why.

Two middleware classes, one per place a write can fail: the session saved at the end of a
request (at most once a minute, to move its idle expiry on: dashboard.accounts.sessions), and a view
that writes (signing in, two-factor, logging out, the admin). Lookups and Copy link beacons
handle their own audit write (customers.services.audit).
"""

import logging

from django.contrib.sessions import middleware as sessions
from django.contrib.sessions.exceptions import SessionInterrupted
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils.cache import patch_vary_headers

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
    """Django's, except that a session the database can't save leaves the response as it is.

    The session stays as last saved: the user is not logged out, nor told of an error, and its
    idle expiry is not moved on, so it ends no later than it would have. Django skips the save
    for a 5xx already, so a failed sign-in never saves half a session either.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        try:
            return super().process_response(request, response)
        except (DatabaseError, SessionInterrupted) as error:
            # Django's store reports a failed write as it reports a session deleted meanwhile by
            # a logout (SessionInterrupted): only the first is forgiven here.
            if not is_unwritable(error):
                raise
            logger.warning("The session could not be saved: the database can't be written")
            patch_vary_headers(response, ("Cookie",))
            return response


class DatabaseUnavailableMiddleware:
    """A view whose write fails because the database can't be written gets a 503 that says so.

    Any other database error is a bug, and stays a 500.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_unwritable(exception):
            return None
        logger.error("A write failed: the database can't be written", exc_info=exception)
        match = request.resolver_match
        context = {"signing_in": match is not None and match.url_name in SIGN_IN_PAGES}
        # Rendered without the request: its context processors would read the database again.
        return HttpResponse(render_to_string(UNAVAILABLE_TEMPLATE, context), status=503)


class SignedInUserMiddleware:
    """Finds out who is signed in up front, so a database that can't be reached is a 503, not a 500.

    The middleware after this one (the log context, the session clock, two-factor) each ask
    who is signed in, which reads the user from the database. Outside a view, where
    DatabaseUnavailableMiddleware can't see it, that read's failure would be a 500. A
    PostgreSQL server that is down does not let even that read through; SQLite always does.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.user.is_authenticated  # noqa: B018  (loads the user, once, for all that follow)
        except DatabaseError as error:
            if not is_unwritable(error):
                raise
            logger.error(
                "The signed-in user could not be read: the database can't be reached", exc_info=error
            )
            try:
                match = resolve(request.path_info)
            except Resolver404:
                match = None
            context = {
                "signing_in": match is not None and match.url_name in SIGN_IN_PAGES,
                # A lookup gets the lookup's own answer: nothing can be recorded, so nothing is fetched.
                "lookup_paused": PAUSED_ANSWERS.get(match.namespace) if match else None,
            }
            return HttpResponse(render_to_string(UNAVAILABLE_TEMPLATE, context), status=503)
        return self.get_response(request)
