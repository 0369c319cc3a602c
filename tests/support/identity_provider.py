"""The local identity provider (dashboard/accounts/sso/standin.py) in a process of its own, for tests.

A subprocess, not a thread: the stand-in is a Flask app whose storage lives in flask.g, and the
tests drive it over HTTP exactly as the dashboard does, at an issuer of its own on loopback.
"""

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.servers import free_loopback_port, running, wait_until_answers

DISCOVERY_PATH = "/.well-known/openid-configuration"
TIMEOUT_SECONDS = 5
START_WITHIN_SECONDS = 20
STOP_WITHIN_SECONDS = 5


@dataclass(frozen=True)
class IdentityProvider:
    """A running stand-in: its issuer, and the hooks a test sets people and revokes access through."""

    issuer: str

    def discovery(self) -> dict:
        answer = requests.get(f"{self.issuer}{DISCOVERY_PATH}", timeout=TIMEOUT_SECONDS)
        answer.raise_for_status()
        return answer.json()

    def set_user(self, sub: str, claims: dict) -> None:
        """Who signs in as `sub` from now on: the claims their ID token and userinfo carry."""
        answer = requests.put(f"{self.issuer}/users/{sub}", json=claims, timeout=TIMEOUT_SECONDS)
        answer.raise_for_status()

    def revoke(self, sub: str) -> None:
        """What a provider does when someone leaves: their access and refresh tokens stop working."""
        answer = requests.post(f"{self.issuer}/users/{sub}/revoke-tokens", timeout=TIMEOUT_SECONDS)
        answer.raise_for_status()


@contextmanager
def running_identity_provider(
    demo_users: bool = False, *, log_path: Path | None = None
) -> Iterator[IdentityProvider]:
    """Start the stand-in on a free loopback port, wait for its discovery document, stop it after.

    It writes what it prints to log_path (by default a temporary file, shown if it fails to start).
    """
    port = free_loopback_port()
    provider = IdentityProvider(issuer=f"http://127.0.0.1:{port}")
    command = [sys.executable, "-m", "dashboard.accounts.sso.standin", "--port", str(port)]
    if demo_users:
        command.append("--demo-users")
    with tempfile.TemporaryDirectory(prefix="identity-provider-") as work_dir:
        log = log_path or Path(work_dir) / "identity-provider.log"
        with running(command, log_path=log, stop_within=STOP_WITHIN_SECONDS) as process:
            wait_until_answers(
                process,
                lambda: provider.discovery()["issuer"] == provider.issuer,
                log,
                within=START_WITHIN_SECONDS,
                name="the local identity provider",
            )
            yield provider
