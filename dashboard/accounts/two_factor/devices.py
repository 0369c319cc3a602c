"""The second factors a user holds: one authenticator app and one sheet of recovery codes.

django-otp keeps them as devices; this module says which count, checks the first code of an app
being added, and swaps a user's devices for new ones in one step.
"""

import logging
import time

import django_otp
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard.ops.client_ip import client_ip

logger = logging.getLogger(__name__)

APP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
RECOVERY_CODE_COUNT = 10


def confirmed_app_devices(user) -> QuerySet[TOTPDevice]:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True)


def accept_first_code(device: TOTPDevice, code: str) -> bool:
    """Check a code against the unsaved device as TOTPDevice.verify_token would, without saving.

    The code's time step is remembered, so the code that confirmed the app cannot be entered
    again at the next sign-in.
    """
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    if not totp.verify(int(code), device.tolerance):
        return False
    device.last_t = totp.t()
    device.drift = totp.drift
    return True


def _new_recovery_codes(user) -> list[str]:
    """Ten fresh recovery codes; any earlier ones stop working, so only one sheet is ever valid."""
    codes: set[str] = set()
    while len(codes) < RECOVERY_CODE_COUNT:
        codes.add(StaticToken.random_token())
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return sorted(codes)


def enrol(request: HttpRequest, device: TOTPDevice) -> list[str]:
    """Make the confirmed app the user's only second factor, with a new sheet of recovery codes.

    One transaction removes every earlier device of the user (leftover unconfirmed apps, recovery
    codes, extra codes an administrator issued), so nothing issued or seen before this
    confirmation signs in after it. The enrolment goes on the user's History in /admin/.
    """
    user = device.user
    address = client_ip(request)
    with transaction.atomic():
        for device_model in django_otp.device_classes():
            device_model.objects.filter(user=user).delete()
        device.save()
        codes = _new_recovery_codes(user)
        LogEntry.objects.log_actions(
            user_id=user.pk,
            queryset=[user],
            action_flag=CHANGE,
            change_message=f"Set up two-factor sign-in from {address}: an authenticator app and "
            f"{RECOVERY_CODE_COUNT} recovery codes, replacing any earlier ones.",
        )
    logger.info("Two-factor authenticator app enrolled", extra={"client_ip": address})
    return codes
