"""Fixtures shared by the whole suite."""

import copy
import ipaddress
import socket
import uuid
from collections.abc import Iterator

import pytest
import responses
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from tests.support.identity_provider import IdentityProvider, running_identity_provider

STAFF_USERNAME = "jane"
STAFF_PASSWORD = "correct horse battery"
STAND_IN_KEY = "browser-tests-stand-in-key"


class NetworkAccessBlocked(RuntimeError):
    """A test tried to reach a host outside this machine."""


def _is_loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _block_external_network(monkeypatch):
    """Every test runs offline: only loopback connections (our own test servers) may open."""
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NetworkAccessBlocked(f"tests may not reach {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def _quick_retry_backoff(monkeypatch):
    """Retries wait milliseconds in tests; the tests of the backoff itself set their own."""
    monkeypatch.setattr("customers.align.client.BACKOFF_BASE_SECONDS", 0.001)


@pytest.fixture
def align():
    """The Align API, mocked; a test fails if a call it registered was never made."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def customer_url():
    def build(customer_id: uuid.UUID | str) -> str:
        return f"{settings.ALIGN_API_BASE_URL}/v0/customers/{customer_id}"

    return build


@pytest.fixture
def demo_body():
    """A fresh, mutable copy of a demo customer's body, by DemoId."""

    def build(demo_id: str = DemoId.INDIVIDUAL_APPROVED) -> dict:
        return copy.deepcopy(DEMO_CUSTOMERS[str(demo_id)])

    return build


@pytest.fixture
def serve(align, customer_url, demo_body):
    """Register Align's answer for a demo customer (Ada by default), optionally changed by a callback."""

    def register(demo_id=DemoId.INDIVIDUAL_APPROVED, change=None, **kwargs):
        body = demo_body(demo_id)
        if change:
            change(body)
        align.get(customer_url(demo_id), json=body, **kwargs)
        return body

    return register


@pytest.fixture
def staff_user(django_user_model):
    user = django_user_model.objects.create_user(username=STAFF_USERNAME, password=STAFF_PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="lookup_customer"))
    return user


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def htmx_headers() -> dict[str, str]:
    return {"HX-Request": "true"}


@pytest.fixture(scope="session")
def identity_provider() -> Iterator[IdentityProvider]:
    """The local identity provider in a process of its own, started for the first test that asks.

    Shared by the whole run and without demo users: each test sets the people it signs in as
    (identity_provider.set_user) under subjects of its own.
    """
    with running_identity_provider() as provider:
        yield provider
