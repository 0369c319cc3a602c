"""The suite's own guard: a test that tries to reach the real network fails."""

import socket

import pytest
import requests

from tests.conftest import NetworkAccessBlocked


def test_connecting_outside_this_machine_is_blocked():
    with pytest.raises(NetworkAccessBlocked), socket.create_connection(("192.0.2.1", 443), timeout=1):
        pass


def test_real_align_hosts_are_unreachable_from_tests():
    with pytest.raises((requests.ConnectionError, NetworkAccessBlocked)):
        requests.get("https://api-sandbox.alignlabs.dev/v0/customers/x", timeout=1)


def test_loopback_stays_allowed():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname(), timeout=1):
            pass
