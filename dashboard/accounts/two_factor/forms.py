"""The code forms of the setup and verify pages: what a code must look like, and which device it opens."""

import logging
from collections.abc import Iterable

import django_otp
from django import forms
from django.core.exceptions import ValidationError
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard.accounts.two_factor.devices import accept_first_code, confirmed_app_devices

logger = logging.getLogger(__name__)

THROTTLED_MESSAGE = (
    "Too many wrong codes. Wait a few seconds and try again: each wrong code makes the wait longer."
)
WRONG_CODE_MESSAGE = (
    "That code didn't work. Enter the code your authenticator app shows now, or an unused recovery code."
)
WRONG_SETUP_CODE_MESSAGE = (
    "That code didn't work. Enter the 6-digit code your authenticator app shows now for KYC Desk. "
    "Each time this page opens it makes a new key: if you scanned an earlier one, "
    "scan the QR code on this page."
)
SETUP_CODE_FORMAT_MESSAGE = "Enter the 6-digit code from your authenticator app."


def _compact(code: str) -> str:
    """Codes are read off a phone or a sheet of paper: spaces, dashes and capitals don't matter."""
    return "".join(code.split()).replace("-", "").lower()


def _check_code(user, devices: Iterable[Device], code: str) -> Device:
    """The device that accepts `code`, or a ValidationError saying why none did.

    Each django-otp device throttles itself after wrong codes and then refuses even the right
    one without saying so; asking verify_is_allowed() first lets the page say so instead.
    An unconfirmed device never counts, whoever passes it in: its secret may have been seen by
    someone who had only the password.
    """
    devices = [device for device in devices if device.confirmed]
    allowed = [device for device in devices if device.verify_is_allowed()[0]]
    if devices and not allowed:
        logger.warning("Two-factor code not checked: too many wrong codes")
        raise ValidationError(THROTTLED_MESSAGE, code="throttled")
    for device in allowed:
        # verify_token locks the device row, so one recovery code cannot be spent twice at once.
        verified = django_otp.verify_token(user, device.persistent_id, code)
        if verified is not None:
            return verified
    logger.warning("Two-factor code refused")
    raise ValidationError(WRONG_CODE_MESSAGE, code="wrong")


def _code_input(*, numeric: bool) -> forms.TextInput:
    attrs = {
        "autocomplete": "one-time-code",
        "autocapitalize": "off",
        "spellcheck": "false",
    }
    if numeric:
        attrs["inputmode"] = "numeric"
    else:
        attrs["autofocus"] = True
    return forms.TextInput(attrs=attrs)


class SetupForm(forms.Form):
    """The first code from a newly added app, which proves the app holds the right secret.

    Not throttled: whoever is on the setup page is shown this secret, so guessing its codes
    gains nothing.
    """

    # No autofocus: on a phone it would scroll past the QR code and cover it with the keyboard.
    token = forms.CharField(
        label="6-digit code from the app", max_length=20, widget=_code_input(numeric=True)
    )

    def __init__(self, device: TOTPDevice, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.device = device

    def clean_token(self) -> str:
        code = _compact(self.cleaned_data["token"])
        if not code.isdigit() or len(code) != self.device.digits:
            raise ValidationError(SETUP_CODE_FORMAT_MESSAGE, code="format")
        if not accept_first_code(self.device, code):
            logger.warning("Two-factor setup code refused")
            raise ValidationError(WRONG_SETUP_CODE_MESSAGE, code="wrong")
        return code


class VerifyForm(forms.Form):
    """A code from the enrolled app, or one of the recovery codes.

    Not inputmode=numeric, unlike the setup form: recovery codes contain letters, and a phone's
    numeric keypad could not type them.
    """

    token = forms.CharField(
        label="Code from your authenticator app, or a recovery code",
        max_length=40,
        widget=_code_input(numeric=False),
    )

    def __init__(self, user, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.device: Device | None = None

    def clean_token(self) -> str:
        code = _compact(self.cleaned_data["token"])
        # App codes are all digits; recovery codes are base32 letters and digits, so the shape
        # of the code says which device to ask, and a mistyped app code never throttles the
        # recovery codes (or the other way round).
        if code.isdigit():
            devices = confirmed_app_devices(self.user)
        else:
            devices = StaticDevice.objects.devices_for_user(self.user, confirmed=True)
        self.device = _check_code(self.user, devices, code)
        return code
