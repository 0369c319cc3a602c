"""The demo login exists only for local debug runs."""

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def test_refuses_outside_debug(settings, django_user_model):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="debug mode"):
        call_command("ensure_demo_user")
    assert not django_user_model.objects.filter(username="demo").exists()


def test_creates_a_demo_login_that_may_look_customers_up(settings, capsys):
    settings.DEBUG = True
    call_command("ensure_demo_user")
    user = authenticate(RequestFactory().post("/accounts/login/"), username="demo", password="demo")
    assert user is not None
    assert user.has_perm("customers.lookup_customer")
    assert not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["Compliance staff"]
    assert not user.user_permissions.exists()
    assert "'demo'" in capsys.readouterr().out


def test_running_twice_resets_the_password(settings, django_user_model):
    settings.DEBUG = True
    call_command("ensure_demo_user")
    user = django_user_model.objects.get(username="demo")
    user.set_password("changed-by-someone")
    user.save()
    call_command("ensure_demo_user")
    assert (
        authenticate(RequestFactory().post("/accounts/login/"), username="demo", password="demo") is not None
    )
