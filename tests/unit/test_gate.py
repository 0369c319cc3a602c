"""The login-and-permission gate (dashboard.accounts.gate), on a view of its own behind every middleware.

customers.permissions puts the customer pages and the start of a KYC session behind it; their own
tests (test_views.py, test_kyc_sessions.py) check that they are.
"""

from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from dashboard import urls as dashboard_urls
from dashboard.accounts.gate import IDLE_SESSION_ENDED_MESSAGE, permission_required

PERMISSION = "auth.view_user"
REFUSAL = "This page needs the auth.view_user permission."
PAGE = "/gated/"
FRAGMENT = "/gated/fragment/"

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

passed: list[str] = []


@permission_required(PERMISSION, REFUSAL)
def gated(request: HttpRequest) -> HttpResponse:
    passed.append(request.path)
    return HttpResponse("behind the gate")


@permission_required(PERMISSION, REFUSAL, page=True)
def gated_page(request: HttpRequest, name: str) -> HttpResponse:
    passed.append(request.path)
    return HttpResponse(f"the page of {name}")


urlpatterns = [
    *dashboard_urls.urlpatterns,
    path(PAGE[1:], gated),
    path(FRAGMENT[1:], gated),
    path("pages/<str:name>/", gated_page),
]


@pytest.fixture(autouse=True)
def _forget_passes():
    passed.clear()


@pytest.fixture
def signed_in(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_user(username="visitor", password="irrelevant-pw"))
    return client


@pytest.fixture
def permitted(django_user_model) -> Client:
    user = django_user_model.objects.create_user(username="auditor", password="irrelevant-pw")
    app_label, codename = PERMISSION.split(".")
    user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_the_signed_out_are_sent_to_the_login_page_coming_back_to_the_page(client):
    response = client.get(PAGE, {"page": "2"})

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={quote(f'{PAGE}?page=2', safe='/')}"
    assert passed == []


def test_a_signed_out_htmx_request_sends_the_whole_window_to_log_in_and_back_to_the_page_not_the_fragment(
    client, htmx_headers
):
    response = client.get(FRAGMENT, headers={**htmx_headers, "HX-Current-URL": f"http://testserver{PAGE}"})

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/accounts/login/?next={PAGE}"
    assert passed == []


def test_the_signed_in_without_the_permission_get_the_403_page_saying_what_is_missing(signed_in):
    response = signed_in.get(PAGE)

    assert response.status_code == 403
    assert response.context["exception"] == REFUSAL
    assert "403.html" in [template.name for template in response.templates]
    assert passed == []


def test_the_signed_in_with_the_permission_reach_the_view(permitted):
    response = permitted.get(PAGE)

    assert response.status_code == 200
    assert response.content == b"behind the gate"
    assert passed == [PAGE]


def test_a_link_to_a_page_clicked_after_the_session_ended_comes_back_to_that_page(client, htmx_headers):
    """The customer clicked, not the one on screen when the session ended."""
    response = client.get(
        "/pages/grace/?refresh=1", headers={**htmx_headers, "HX-Current-URL": "http://testserver/pages/ada/"}
    )

    assert response["HX-Redirect"] == "/accounts/login/?next=/pages/grace/"


def test_a_post_to_a_page_comes_back_to_the_page_it_was_sent_from(client, htmx_headers):
    response = client.post(
        "/pages/grace/", headers={**htmx_headers, "HX-Current-URL": "http://testserver/pages/ada/"}
    )

    assert response["HX-Redirect"] == "/accounts/login/?next=/pages/ada/"


def test_a_session_that_idled_out_is_explained_on_the_login_page(client, settings):
    settings.DASHBOARD_SESSION_IDLE_MINUTES = 30
    client.cookies[settings.SESSION_COOKIE_NAME] = "a-session-that-has-expired"

    response = client.get(PAGE, follow=True)

    assert response.redirect_chain[0][0].startswith("/accounts/login/?next=")
    assert IDLE_SESSION_ENDED_MESSAGE.format(minutes=30).encode() in response.content
    assert b"Your session ended after 30 minutes without activity." in response.content


def test_a_visitor_who_never_signed_in_is_not_told_a_session_ended(client):
    response = client.get(PAGE, follow=True)

    assert b"Your session ended" not in response.content
