"""Django set up inside a benchmark's own process, pointed at a stand-in on loopback.

The in-process benchmarks (lookup_latency.py, audit_growth.py) measure Django's whole request
path through its test client, with the production settings module and debug off, so they share
one environment: plain HTTP and password sign-in, because what they time is the lookup.
"""

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from customers.align.standin.server import serving

STAND_IN_KEY = "bench-stand-in-key"
MEASURED_HOW = "Measured in one process on this machine: Django test client -> stand-in on loopback."


@contextmanager
def django_beside_a_stand_in(*, silence_up_to: int = logging.WARNING) -> Iterator[None]:
    """Django set up in this process on a scratch SQLite file, beside the stand-in on loopback.

    The demo customers' odd values are logged as warnings, once per lookup: silenced by default.
    """
    with tempfile.TemporaryDirectory() as scratch, serving(api_key=STAND_IN_KEY) as stand_in:
        set_up_django(
            stand_in,
            database_path=str(Path(scratch) / "bench.sqlite3"),
            static_root=Path(scratch) / "static",
            silence_up_to=silence_up_to,
        )
        yield
    print(MEASURED_HOW)


def set_up_django(stand_in, *, database_path: str, static_root: Path, silence_up_to: int) -> None:
    """Configure and start Django for this process; log lines up to `silence_up_to` are dropped."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-only-secret-key-bench-only-secret-key",
        DASHBOARD_AUDIT_HASH_KEY="bench-only-audit-hash-key",
        DJANGO_ALLOWED_HOSTS="testserver",
        DASHBOARD_DB_PATH=database_path,
        # Debug off, pages link the hashed copies that collectstatic writes (see prepare_database).
        DASHBOARD_STATIC_ROOT=str(static_root),
        DJANGO_HTTPS_ONLY="0",
        DASHBOARD_REQUIRE_2FA="0",
        ALIGN_API_BASE_URL=stand_in.base_url,
        ALIGN_API_KEY=STAND_IN_KEY,
    )
    import django

    django.setup()
    logging.disable(silence_up_to)


def prepare_database() -> None:
    """Migrate, and collect the static files that pages with debug off link by their hashed names."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)


def verified_staff_client():
    """A member of Compliance staff, signed in and verified with a code from an authenticator app.

    As staff work: not a superuser (who skips permission checks), with the permission and the
    second factor a real session carries. Returns the test client and the user.
    """
    import uuid

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client
    from django.urls import reverse
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from customers.permissions import COMPLIANCE_STAFF_GROUP

    user = get_user_model().objects.create_user(f"bench-{uuid.uuid4().hex[:8]}")
    user.groups.add(Group.objects.get(name=COMPLIANCE_STAFF_GROUP))
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    client = Client()
    client.force_login(user)
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    response = client.post(reverse("two_factor_verify"), {"token": f"{code:06d}"})
    assert response.status_code == 302, "the bench user's code was refused"
    return client, user
