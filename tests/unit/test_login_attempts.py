"""The login throttle keeps only what the lockout needs (accounts/login_attempts.py, AXES_ settings).

A username typed at a failed sign-in may be a password typed into the wrong box: django-axes
stores a keyed digest of it, and nothing else typed into the form, in any of its tables or
admin pages. The lockout itself is tested in tests/unit/test_security.py.
"""

import hashlib

import pytest
from axes.models import AccessAttempt
from django.apps import apps
from django.core.management import call_command
from django.test import Client

from dashboard.accounts.login_attempts import username_digest
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME

LOGIN_URL = "/accounts/login/"
WRONG_PASSWORD = "not-the-password-Q9"
CSRF_TOKEN = "k3Yp4ss3dCsrfT0k3nV4lu3xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
LOOKUP_LINK = "/customers/?customer_id=jane.doe%40example.com"


def axes_rows_as_text() -> str:
    """Every value of every row of every django-axes table."""
    models = apps.get_app_config("axes").get_models()
    return "\n".join(str(row) for model in models for row in model.objects.values())


def fail_login(client: Client, username: str, **data) -> None:
    response = client.post(LOGIN_URL, {"username": username, "password": WRONG_PASSWORD, **data})
    assert response.status_code == 200, "the sign-in did not fail as a wrong password"


@pytest.mark.django_db
def test_a_password_typed_as_the_username_is_in_no_axes_table(staff_user):
    fail_login(Client(), STAFF_PASSWORD)
    assert AccessAttempt.objects.count() == 1
    assert STAFF_PASSWORD not in axes_rows_as_text()


@pytest.mark.django_db
def test_a_password_typed_as_the_username_is_on_no_axes_admin_page(staff_user, admin_client):
    fail_login(Client(), STAFF_PASSWORD)
    attempt = AccessAttempt.objects.get()
    for url in ("/admin/axes/accessattempt/", f"/admin/axes/accessattempt/{attempt.pk}/change/"):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert STAFF_PASSWORD not in response.content.decode(), url


@pytest.mark.django_db
def test_a_failed_sign_in_keeps_only_the_lockout_counter(staff_user):
    fail_login(Client(), STAFF_USERNAME)
    counts = {model.__name__: model.objects.count() for model in apps.get_app_config("axes").get_models()}
    assert {name: count for name, count in counts.items() if count} == {"AccessAttempt": 1}


@pytest.mark.django_db
def test_the_attempt_is_kept_under_a_keyed_digest_of_the_username(staff_user):
    fail_login(Client(), STAFF_USERNAME)
    stored = AccessAttempt.objects.get().username
    assert stored == username_digest(STAFF_USERNAME)
    assert stored != hashlib.sha256(STAFF_USERNAME.encode()).hexdigest()


@pytest.mark.django_db
def test_the_digest_depends_on_the_secret_key(settings):
    digest = username_digest(STAFF_USERNAME)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only"
    assert username_digest(STAFF_USERNAME) != digest


@pytest.mark.django_db
def test_the_form_s_other_values_are_not_kept(staff_user):
    """`next` may hold a lookup link with what was typed; the CSRF token is a secret."""
    fail_login(Client(), STAFF_USERNAME, next=LOOKUP_LINK, csrfmiddlewaretoken=CSRF_TOKEN)
    kept = axes_rows_as_text()
    assert "jane.doe" not in kept
    assert CSRF_TOKEN not in kept


@pytest.mark.django_db
def test_the_next_address_in_the_login_url_is_not_kept(staff_user):
    response = Client().post(f"{LOGIN_URL}?next={LOOKUP_LINK}", {"username": STAFF_USERNAME, "password": "x"})
    assert response.status_code == 200
    assert "jane.doe" not in axes_rows_as_text()


@pytest.mark.django_db
def test_a_successful_sign_in_leaves_no_axes_row(staff_user):
    response = Client().post(LOGIN_URL, {"username": STAFF_USERNAME, "password": STAFF_PASSWORD})
    assert response.status_code == 302
    assert axes_rows_as_text() == ""


@pytest.mark.django_db
def test_unlock_username_lifts_the_lockout(staff_user, capsys):
    client = Client()
    for _ in range(5):
        client.post(LOGIN_URL, {"username": STAFF_USERNAME, "password": WRONG_PASSWORD})
    assert client.post(LOGIN_URL, {"username": STAFF_USERNAME, "password": STAFF_PASSWORD}).status_code == 429
    call_command("unlock_username", STAFF_USERNAME)
    assert "1 failed sign-in record(s) removed." in capsys.readouterr().out
    assert client.post(LOGIN_URL, {"username": STAFF_USERNAME, "password": STAFF_PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_unlock_username_says_when_there_was_nothing_to_lift(capsys):
    call_command("unlock_username", "nobody")
    assert capsys.readouterr().out.strip() == "No failed sign-ins found."
