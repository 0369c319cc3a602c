"""Sessions in a Redis that can't be reached (dashboard/ops/session_store.py): a 503 that says so.

Django's Redis cache pointed at a port nobody listens on, so what its client really raises
reaches the store. tests/system/test_redis_outage.py stops a real Redis under gunicorn.
"""

import pytest
from django.test import Client

from customers.align.standin.demo import DemoId
from dashboard.accounts.sessions import SESSION_REFRESHED_KEY
from dashboard.ops import session_store
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME
from tests.unit.test_health import closed_port

pytestmark = pytest.mark.django_db

SIGN_IN_BRIEFLY_UNAVAILABLE = "Sign-in is briefly unavailable"
SEARCH_URL = "/customers/"
LOGIN_URL = "/accounts/login/"


@pytest.fixture
def redis_down(settings) -> None:
    """Sessions and both caches in a Redis that can't be reached, as with REDIS_URL during an outage."""
    unreachable = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
    }
    settings.CACHES = {"default": unreachable, settings.SHARED_CACHE: unreachable}
    settings.SESSION_ENGINE = "dashboard.ops.session_store"


def signed_in_cookie(client: Client) -> str:
    """A session cookie, as a browser signed in before the outage holds it."""
    client.cookies["sessionid"] = "k3y0fas3ss10nr3d1sh0ldsbef0retheoutage"
    return client.cookies["sessionid"].value


def test_a_signed_in_page_says_sign_in_is_briefly_unavailable_and_keeps_the_cookie(client, redis_down):
    cookie = signed_in_cookie(client)

    response = client.get(SEARCH_URL)

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert SIGN_IN_BRIEFLY_UNAVAILABLE in response.content.decode()
    # Not deleted: a session Redis still holds when it is back goes on.
    assert "sessionid" not in response.cookies
    assert client.cookies["sessionid"].value == cookie


def test_an_htmx_lookup_gets_the_same_answer_to_swap_in(client, redis_down, htmx_headers):
    signed_in_cookie(client)

    response = client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/", headers=htmx_headers)

    assert response.status_code == 503
    assert SIGN_IN_BRIEFLY_UNAVAILABLE in response.content.decode()


def test_the_login_page_still_loads_for_a_browser_without_a_session(client, redis_down):
    assert client.get(LOGIN_URL).status_code == 200


def test_signing_in_says_sign_in_is_briefly_unavailable(client, staff_user, redis_down):
    response = client.post(LOGIN_URL, {"username": STAFF_USERNAME, "password": STAFF_PASSWORD})

    assert response.status_code == 503
    assert SIGN_IN_BRIEFLY_UNAVAILABLE in response.content.decode()
    assert "sessionid" not in response.cookies


def test_a_session_that_cannot_be_saved_leaves_the_page_as_it_is(staff_client, monkeypatch):
    """Redis gone between reading the session and saving it: the page was made, nothing is lost."""
    if staff_client.session.__class__ is not session_store.SessionStore:
        pytest.skip("the sessions are in the database: make test's second pass runs this on Redis")

    def unreachable(self, must_create=False):
        raise session_store.SessionStoreUnavailable

    session = staff_client.session
    session[SESSION_REFRESHED_KEY] = 0  # long ago: this request saves the session
    session.save()
    monkeypatch.setattr(session_store.SessionStore, "save", unreachable)

    response = staff_client.get(SEARCH_URL)

    assert response.status_code == 200
    assert STAFF_USERNAME in response.content.decode()
