"""Errors raised by a middleware (dashboard/ops/server_error.py, Django's handler500).

Django answers them where they are raised, so no middleware catches them: a database that can't
be written or reached, or a Redis that can't be reached, must still be a 503 that says so; any
other error stays a 500. A session past its time limit, ended by SessionLifetimeMiddleware, is
where a read-only database raised one (tests/system/test_readonly_database.py runs it for real).
"""

import time

import psycopg
import pytest
import redis
from django.db import IntegrityError, OperationalError
from django.test import Client

from dashboard.accounts.sessions import SESSION_STARTED_KEY

pytestmark = pytest.mark.django_db

SEARCH_URL = "/customers/"


@pytest.fixture
def past_its_limit(staff_user, settings) -> Client:
    """A signed-in browser whose session reached DASHBOARD_SESSION_MAX_HOURS: this request ends it."""
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    session = client.session
    session[SESSION_STARTED_KEY] = time.time() - settings.DASHBOARD_SESSION_MAX_HOURS * 3600 - 60
    session.save()
    return client


def ending_the_session_raises(monkeypatch, error: Exception) -> None:
    def fail(request):
        raise error

    monkeypatch.setattr("dashboard.accounts.sessions.logout", fail)


def unreachable_database() -> OperationalError:
    try:
        raise OperationalError("connection failed") from psycopg.OperationalError("connection refused")
    except OperationalError as error:
        return error


def test_a_database_that_cannot_be_written_under_a_middleware_is_a_503_saying_so(past_its_limit, monkeypatch):
    ending_the_session_raises(monkeypatch, unreachable_database())

    response = past_its_limit.get(SEARCH_URL)

    assert response.status_code == 503
    assert "The dashboard's database can't be written." in response.content.decode()


def test_a_redis_that_cannot_be_reached_under_a_middleware_is_a_503_saying_so(past_its_limit, monkeypatch):
    ending_the_session_raises(monkeypatch, redis.exceptions.ConnectionError("Error 111 connecting"))

    response = past_its_limit.get(SEARCH_URL)

    assert response.status_code == 503
    assert "Sign-in is briefly unavailable" in response.content.decode()


def test_any_other_error_under_a_middleware_stays_a_500(past_its_limit, monkeypatch):
    ending_the_session_raises(monkeypatch, IntegrityError("NOT NULL constraint failed"))

    response = past_its_limit.get(SEARCH_URL)

    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
