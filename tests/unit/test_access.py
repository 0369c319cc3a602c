"""Permissions and the second factor, read once per session and read again when they change (issue #21,
item 2): dashboard/accounts/access.py and the two-factor middleware in dashboard/accounts/two_factor/
verification.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard.accounts import access
from dashboard.accounts.models import AccessStamp
from dashboard.accounts.passwords import PasswordBackend
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME

pytestmark = pytest.mark.django_db

SEARCH = "/customers/"
# The search page's htmx answer: the gate and the session's user, without the top bar, whose own
# question (has the user an authenticator app?) is the top bar's (dashboard/accounts/templatetags).
HTMX = {"HX-Request": "true"}
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def reads_of_permissions(queries) -> list[str]:
    return [query["sql"] for query in queries if "auth_permission" in query["sql"]]


def reads_of_access(queries) -> list[str]:
    """The queries of permissions and second-factor devices among those a request made.

    A session that has not passed a second factor is also asked, on every request, whether its user
    has an authenticator app (dashboard/accounts/two_factor/middleware.py, held_at): so only a
    verified session is expected to ask nothing of the devices.
    """
    return [query["sql"] for query in queries if "auth_permission" in query["sql"] or "otp_" in query["sql"]]


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


@pytest.fixture
def lookup_permission() -> Permission:
    return Permission.objects.get(codename="lookup_customer")


@pytest.fixture
def member(django_user_model, lookup_permission):
    """A member of a group that may look customers up, and nothing of their own."""
    group = Group.objects.create(name="Lookups")
    group.permissions.add(lookup_permission)
    user = django_user_model.objects.create_user(username="m.member", password=STAFF_PASSWORD)
    user.groups.add(group)
    return user


def signed_in(username: str) -> Client:
    """Signed in through the login page, as at work."""
    browser = Client()
    response = browser.post("/accounts/login/", {"username": username, "password": STAFF_PASSWORD})
    assert response.status_code == 302
    return browser


@pytest.fixture
def app_device(staff_user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=True)


@pytest.fixture
def verified(staff_user, app_device) -> Client:
    """Signed in with the password, then a code from the authenticator app."""
    browser = signed_in(STAFF_USERNAME)
    response = browser.post("/accounts/two-factor/verify/", {"token": code_for(app_device)})
    assert response.status_code == 302
    assert "otp_device_id" in browser.session
    return browser


# --- Read once ----------------------------------------------------------------------------------


def test_a_signed_in_session_reads_its_permissions_with_the_sign_in_and_never_again(member):
    browser = signed_in("m.member")
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert browser.get(SEARCH, headers=HTMX).status_code == 200
        assert reads_of_permissions(queries) == []


def test_a_verified_session_reads_neither_its_device_nor_its_permissions_again(verified, settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert verified.get(SEARCH, headers=HTMX).status_code == 200
        assert reads_of_access(queries) == []


def test_the_user_and_their_access_stamp_are_one_query(staff_user, django_assert_num_queries):
    with django_assert_num_queries(1):
        user = PasswordBackend().get_user(staff_user.pk)
        version = access.stamp_version(user)
    assert version == AccessStamp.objects.get(user=staff_user).version


# --- Read again when it changes ---------------------------------------------------------------


def test_a_permission_removed_from_a_group_takes_effect_on_a_members_next_request(member, lookup_permission):
    browser = signed_in("m.member")
    assert browser.get(SEARCH).status_code == 200
    Group.objects.get(name="Lookups").permissions.remove(lookup_permission)
    assert browser.get(SEARCH).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_permission_removed_in_another_process_takes_effect_on_the_next_request(member):
    """The copy is the session's and the stamp the database's: no process's memory is trusted."""
    browser = signed_in("m.member")
    assert browser.get(SEARCH).status_code == 200
    in_another_process(
        "from django.contrib.auth.models import Group, Permission;"
        "Group.objects.get(name='Lookups').permissions.remove(Permission.objects.get(codename='lookup_customer'))"
    )
    assert browser.get(SEARCH).status_code == 403


def in_another_process(code: str) -> None:
    """Run Django `code` in a process of its own, on this test's database (committed, so it sees it)."""
    database = connection.settings_dict
    environment = os.environ | {"DJANGO_SETTINGS_MODULE": "tests.support.settings"}
    if connection.vendor == "sqlite":
        environment["DASHBOARD_DB_PATH"] = str(database["NAME"])
    else:
        server = f"{database['HOST']}:{database['PORT']}"
        environment["DATABASE_URL"] = (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{server}/{database['NAME']}"
        )
    subprocess.run(  # noqa: S603  (our own interpreter and manage.py)
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=PROJECT_ROOT,
        env=environment,
        check=True,
        timeout=60,
    )


def test_a_user_added_to_a_group_gains_its_permissions_at_once(
    staff_user, django_user_model, lookup_permission
):
    django_user_model.objects.create_user(username="n.newcomer", password=STAFF_PASSWORD)
    browser = signed_in("n.newcomer")
    assert browser.get(SEARCH).status_code == 403
    group = Group.objects.create(name="Lookups")
    group.permissions.add(lookup_permission)
    group.user_set.add(django_user_model.objects.get(username="n.newcomer"))
    assert browser.get(SEARCH).status_code == 200


@pytest.mark.parametrize(
    "take_it_away",
    [
        lambda user, permission: user.user_permissions.remove(permission),
        lambda user, permission: user.user_permissions.clear(),
        lambda user, permission: permission.user_set.remove(user),
        lambda user, permission: permission.user_set.clear(),
    ],
    ids=["user.remove", "user.clear", "permission.remove", "permission.clear"],
)
def test_a_users_own_permission_taken_away_takes_effect_at_once(
    staff_user, staff_client, lookup_permission, take_it_away
):
    assert staff_client.get(SEARCH).status_code == 200
    take_it_away(staff_user, lookup_permission)
    assert staff_client.get(SEARCH).status_code == 403


@pytest.mark.parametrize(
    "take_it_away",
    [
        lambda user, group, permission: user.groups.remove(group),
        lambda user, group, permission: user.groups.clear(),
        lambda user, group, permission: group.user_set.clear(),
        lambda user, group, permission: group.permissions.clear(),
        lambda user, group, permission: permission.group_set.remove(group),
        lambda user, group, permission: permission.group_set.clear(),
        lambda user, group, permission: group.delete(),
    ],
    ids=[
        "user.groups.remove",
        "user.groups.clear",
        "group.users.clear",
        "group.permissions.clear",
        "permission.groups.remove",
        "permission.groups.clear",
        "group.delete",
    ],
)
def test_a_groups_permission_taken_away_by_any_way_takes_effect_at_once(
    member, lookup_permission, take_it_away
):
    browser = signed_in("m.member")
    assert browser.get(SEARCH).status_code == 200
    take_it_away(member, Group.objects.get(name="Lookups"), lookup_permission)
    assert browser.get(SEARCH).status_code == 403


def test_a_user_made_superuser_or_not_reads_again(staff_user):
    before = access.stamp_version(staff_user)
    staff_user.is_superuser = True
    staff_user.save()
    assert AccessStamp.objects.get(user=staff_user).version == before + 1


def test_signing_in_moves_no_stamp(staff_user):
    """Signing in saves the user's last_login, which changes nothing a session keeps."""
    before = AccessStamp.objects.get(user=staff_user).version
    signed_in(STAFF_USERNAME)
    assert AccessStamp.objects.get(user=staff_user).version == before


def test_migrate_moves_every_users_stamp_on(staff_user, django_user_model):
    """Data migrations give groups permissions through models that send no signals here."""
    unstamped = django_user_model.objects.create_user(username="u.unstamped")
    before = AccessStamp.objects.get(user=staff_user).version
    call_command("migrate", verbosity=0)
    assert AccessStamp.objects.get(user=staff_user).version == before + 1
    assert AccessStamp.objects.get(user=unstamped).version == 1


# --- The second factor ------------------------------------------------------------------------


def test_a_deleted_authenticator_app_unverifies_the_session(verified, app_device, settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    assert verified.get(SEARCH).status_code == 200
    app_device.delete()
    response = verified.get(SEARCH)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/setup/")
    assert "otp_device_id" not in verified.session


def test_an_app_taken_back_unconfirmed_unverifies_the_session(verified, app_device):
    assert verified.get(SEARCH).status_code == 200
    app_device.confirmed = False
    app_device.save()
    verified.get(SEARCH)
    assert "otp_device_id" not in verified.session


def test_a_code_entered_moves_no_stamp(verified, staff_user, app_device):
    """The device saves its counters at every code: that changes nothing a session keeps."""
    before = AccessStamp.objects.get(user=staff_user).version
    other = signed_in(STAFF_USERNAME)
    app_device.refresh_from_db()
    other.post("/accounts/two-factor/verify/", {"token": "000000"})  # wrong, counted: saved
    assert AccessStamp.objects.get(user=staff_user).version == before


def test_a_device_added_reads_again(verified, staff_user):
    before = AccessStamp.objects.get(user=staff_user).version
    TOTPDevice.objects.create(user=staff_user, name="Second app", confirmed=True)
    assert AccessStamp.objects.get(user=staff_user).version == before + 1


# --- What reading again may not do ------------------------------------------------------------


def test_reading_again_writes_the_session_only_when_it_is_saved_anyway(member, lookup_permission):
    """A session's write moves its idle expiry on (dashboard/accounts/sessions.py): a page's automatic
    requests must never, and the copy does not make them."""
    browser = signed_in("m.member")
    browser.get(SEARCH)
    Group.objects.get(name="Lookups").permissions.add(Permission.objects.get(codename="start_kyc_session"))
    kept = browser.session[access.SESSION_KEY]
    assert browser.get(SEARCH, headers={"X-Automatic-Request": "1"}).status_code == 200
    assert browser.session[access.SESSION_KEY] == kept  # read, used, not written
    session = browser.session
    session["dashboard_refreshed_at"] = 0  # the idle clock's minute is up: this request saves anyway
    session.save()
    browser.get(SEARCH)
    assert browser.session[access.SESSION_KEY] != kept
    assert "customers.start_kyc_session" in browser.session[access.SESSION_KEY]["groups"]


def test_a_copy_of_another_version_is_not_believed(member):
    browser = signed_in("m.member")
    session = browser.session
    session[access.SESSION_KEY] = session[access.SESSION_KEY] | {"version": -1, "own": ["customers.anything"]}
    session.save()
    with CaptureQueriesContext(connection) as queries:
        browser.get(SEARCH, headers=HTMX)
    assert len(reads_of_permissions(queries)) == 2  # the user's own permissions and their groups'


def test_a_copy_of_another_user_is_not_believed(member, staff_user):
    browser = signed_in("m.member")
    session = browser.session
    session[access.SESSION_KEY] = session[access.SESSION_KEY] | {"user_id": staff_user.pk}
    session.save()
    with CaptureQueriesContext(connection) as queries:
        browser.get(SEARCH, headers=HTMX)
    assert len(reads_of_permissions(queries)) == 2
