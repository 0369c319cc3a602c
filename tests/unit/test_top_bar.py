"""The top bar offers what the signed-in user still needs: two-factor setup, and /admin/ for staff."""

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

SEARCH = "/customers/"
SETUP = "/accounts/two-factor/setup/"
SETUP_LINK = f'href="{SETUP}"'
ADMIN_LINK = 'href="/admin/"'


def top_bar(client: Client, path: str = SEARCH) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode().split('<header class="topbar">', 1)[1].split("</header>", 1)[0]


def enrolled_client(user) -> Client:
    """Signed in with a confirmed authenticator app, and verified with it, as after a code."""
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def test_user_with_staff_status_gets_the_admin_link(staff_client, staff_user):
    staff_user.is_staff = True
    staff_user.save()
    assert ADMIN_LINK in top_bar(staff_client)


def test_user_without_staff_status_gets_no_admin_link(staff_client):
    assert ADMIN_LINK not in top_bar(staff_client)


def test_user_without_an_authenticator_app_is_offered_two_factor_setup(staff_client):
    assert SETUP_LINK in top_bar(staff_client)


def test_user_with_an_authenticator_app_is_not_offered_setup(staff_user):
    assert SETUP_LINK not in top_bar(enrolled_client(staff_user))


def test_an_app_whose_first_code_never_came_still_counts_as_not_enrolled(staff_client, staff_user):
    TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=False)
    assert SETUP_LINK in top_bar(staff_client)


def test_the_setup_page_does_not_link_to_itself(staff_client):
    assert SETUP_LINK not in top_bar(staff_client, SETUP)


def test_signed_out_visitors_get_no_account_links(client):
    bar = top_bar(client, "/accounts/login/")
    assert SETUP_LINK not in bar
    assert ADMIN_LINK not in bar


def test_a_user_held_at_the_code_page_is_offered_only_log_out(staff_user):
    """Password accepted, code not yet: nothing of the app is offered before the second factor."""
    staff_user.is_staff = True
    staff_user.save()
    TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=True)
    client = Client()
    client.force_login(staff_user)
    bar = top_bar(client, "/accounts/two-factor/verify/")
    assert "Bulk lookup" not in bar
    assert ADMIN_LINK not in bar
    assert SETUP_LINK not in bar
    assert "Log out" in bar
    assert staff_user.get_username() in bar


def test_a_user_held_at_enrolment_is_offered_only_log_out(staff_client, settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    bar = top_bar(staff_client, SETUP)
    assert "Bulk lookup" not in bar
    assert "Log out" in bar


def test_once_verified_the_top_bar_offers_the_pages_again(staff_user):
    assert "Bulk lookup" in top_bar(enrolled_client(staff_user))
