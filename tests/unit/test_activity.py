"""Everything one person did, in one place (issue #19, item 5): the record of sign-ins and sign-outs
(dashboard/accounts/models.py) and the per-user activity page of the customers admin."""

import logging

import pytest
from django.contrib.auth.models import Permission
from django.db import OperationalError
from django.test import Client
from prometheus_client import REGISTRY

from dashboard.accounts.models import SignInEvent
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
SIGN_INS = "/admin/accounts/signinevent/"
WRONG_PASSWORD = "not the password at all"


def sign_in(client: Client, username: str = STAFF_USERNAME, password: str = STAFF_PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def recorded() -> list[tuple[str, str]]:
    """The sign-in events on record, oldest first, as (username, kind)."""
    return [
        (event.user.get_username(), event.kind)
        for event in SignInEvent.objects.select_related("user").order_by("id")
    ]


def write_failures(kind: str) -> float:
    return REGISTRY.get_sample_value("kycdesk_audit_write_failures_total", {"action": kind}) or 0.0


# --- Sign-ins on record ------------------------------------------------------------------------------


def test_a_sign_in_is_recorded_with_its_address_and_request(staff_user):
    response = sign_in(Client(), REMOTE_ADDR="198.51.100.23")
    assert response.status_code == 302
    event = SignInEvent.objects.get()
    assert (event.user, event.kind) == (staff_user, SignInEvent.Kind.SIGNED_IN)
    assert event.client_ip == "198.51.100.23"
    assert event.request_id == response["X-Request-ID"]


def test_a_failed_sign_in_is_recorded_against_the_account_without_what_was_typed(staff_user):
    response = sign_in(Client(), password=WRONG_PASSWORD, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    event = SignInEvent.objects.get()
    assert (event.user, event.kind, event.client_ip) == (staff_user, "sign_in_failed", "203.0.113.9")
    assert WRONG_PASSWORD not in str(SignInEvent.objects.values().get())


def test_a_sign_in_event_holds_the_account_and_never_text_that_was_typed():
    """A new field here could keep a username or password: it must be decided on, not added in passing."""
    fields = {field.name for field in SignInEvent._meta.concrete_fields}
    assert fields == {"id", "user", "occurred_at", "kind", "client_ip", "request_id"}


@pytest.mark.parametrize(
    "username",
    [
        pytest.param("nobody-by-this-name", id="no-such-account"),
        pytest.param(STAFF_PASSWORD, id="a-password-typed-into-the-username-box"),
        pytest.param("", id="nothing-typed"),
    ],
)
def test_a_failed_sign_in_that_names_no_account_is_not_recorded(staff_user, username):
    sign_in(Client(), username=username, password=WRONG_PASSWORD)
    assert recorded() == []


def test_a_sign_out_is_recorded(staff_user):
    client = Client()
    sign_in(client)
    response = client.post(LOGOUT)
    assert response.status_code == 302
    assert recorded() == [(STAFF_USERNAME, "signed_in"), (STAFF_USERNAME, "signed_out")]
    assert SignInEvent.objects.latest("id").request_id == response["X-Request-ID"]


def test_a_sign_out_without_a_signed_in_user_records_nothing():
    assert Client().post(LOGOUT).status_code == 302
    assert recorded() == []


def test_a_sign_in_goes_ahead_when_its_record_cannot_be_written(staff_user, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise OperationalError("database is locked")

    before = write_failures("signed_in")
    monkeypatch.setattr(SignInEvent.objects, "create", refuse)
    client = Client()
    with caplog.at_level(logging.ERROR, logger="dashboard.accounts.sessions"):
        response = sign_in(client)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff_user.pk)
    assert any("signed_in event could not be recorded" in record.getMessage() for record in caplog.records)
    assert write_failures("signed_in") == before + 1


def test_a_failed_sign_in_is_still_refused_when_its_record_cannot_be_written(staff_user, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(SignInEvent.objects, "create", refuse)
    client = Client()
    assert sign_in(client, password=WRONG_PASSWORD).status_code == 200
    assert "_auth_user_id" not in client.session


# --- The sign-in records in the admin ---------------------------------------------------------------


def admin_with(django_user_model, *permissions: tuple[str, str], username: str = "reader") -> Client:
    user = django_user_model.objects.create_user(
        username=username, password="irrelevant-password", is_staff=True
    )
    user.user_permissions.add(
        *(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in permissions
        )
    )
    client = Client()
    client.force_login(user)
    return client


def test_sign_in_events_are_read_with_their_own_permission(django_user_model, staff_user):
    sign_in(Client())
    reader = admin_with(django_user_model, ("accounts", "view_signinevent"))
    response = reader.get(SIGN_INS)
    assert response.status_code == 200
    assert [event.kind for event in response.context["cl"].result_list if event.user == staff_user] == [
        "signed_in"
    ]


def test_an_auditor_reads_sign_ins_on_the_activity_page_not_in_this_list(django_user_model, staff_user):
    auditor = admin_with(django_user_model, ("customers", "view_auditevent"))
    assert auditor.get(SIGN_INS).status_code == 403


def test_nobody_adds_changes_or_deletes_a_sign_in_event(admin_client, staff_user):
    sign_in(Client())
    event = SignInEvent.objects.get(user=staff_user)
    page = f"{SIGN_INS}{event.pk}/change/"
    assert admin_client.get(f"{SIGN_INS}add/").status_code == 403
    assert admin_client.get(page).status_code == 200
    assert 'name="_save"' not in admin_client.get(page).content.decode()
    assert admin_client.post(page, {"kind": "signed_out"}).status_code == 403
    assert admin_client.post(f"{SIGN_INS}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SignInEvent.objects.get(pk=event.pk).kind == "signed_in"
