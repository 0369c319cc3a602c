"""Two-factor sign-in: a TOTP code from an authenticator app, with one-time recovery codes.

A password alone is too little for a desk that shows customers' personal data, so a session that
has only passed the password check is held at these pages until a second factor verifies it.
django-otp stores the devices and checks the codes (with its throttling); this module decides
who must verify, walks a user through enrolment, and hands out recovery codes exactly once.
"""

import functools
import logging
import time
from base64 import b32encode
from collections.abc import Callable, Iterable
from urllib.parse import urlencode, urlsplit

import django_otp
import segno
from django import forms
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

from dashboard.ops.client_ip import client_ip

logger = logging.getLogger(__name__)

APP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
RECOVERY_CODE_COUNT = 10
# Fresh recovery codes wait here between the enrolment POST and the one page that shows them.
RECOVERY_CODES_SESSION_KEY = "two_factor_new_recovery_codes"
# The secret of the setup attempt under way, kept on the server (database sessions) and nowhere
# else until its first code checks out.
PENDING_KEY_SESSION_KEY = "two_factor_pending_key"

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


def confirmed_app_devices(user) -> QuerySet[TOTPDevice]:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True)


# --- Who must verify --------------------------------------------------------------------------


class TwoFactorMiddleware:
    """Holds a password-only session at the two-factor pages until it is verified.

    A user who has enrolled an app is always asked for a code, whatever DASHBOARD_REQUIRE_2FA
    says, so switching the requirement off never weakens an account its owner protected. Where
    the requirement is on, a user without an app is sent to enrol one before anything else.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not user.is_verified() and not _is_exempt(request.path):
            if confirmed_app_devices(user).exists():
                return _hold_at(request, "two_factor_verify")
            if settings.DASHBOARD_REQUIRE_2FA:
                return _hold_at(request, "two_factor_setup")
        return self.get_response(request)


def _is_exempt(path: str) -> bool:
    """The pages an unverified user needs to get verified, or to give up and leave."""
    return path.startswith(settings.STATIC_URL) or path in _exempt_paths()


@functools.cache
def _exempt_paths() -> frozenset[str]:
    """Resolved once: the middleware asks on every request of an unverified user."""
    return frozenset(reverse(name) for name in ("two_factor_setup", "two_factor_verify", "login", "logout"))


def _hold_at(request: HttpRequest, url_name: str) -> HttpResponse:
    """Redirect to a two-factor page that sends the user on to where they were going.

    This runs before django-htmx's middleware, so the HX-* headers are read directly. An htmx
    request gets a client-side redirect, so the page replaces the whole window instead of being
    swapped into the result card, and returns to the page the user was on, not the fragment.
    """
    if request.headers.get("HX-Request") == "true":
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        return_to = current.path + (f"?{current.query}" if current.query else "")
        return HttpResponseClientRedirect(_with_next(reverse(url_name), return_to or request.get_full_path()))
    return HttpResponseRedirect(_with_next(reverse(url_name), request.get_full_path()))


def _with_next(url: str, next_url: str | None) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def _safe_next(request: HttpRequest) -> str | None:
    """The `next` this request carries, if it stays on this site."""
    next_url = request.POST.get("next") or request.GET.get("next")
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return None


def _destination(request: HttpRequest) -> str:
    return _safe_next(request) or reverse("customers:search")


# --- Checking codes ---------------------------------------------------------------------------


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
        if not _accept_first_code(self.device, code):
            logger.warning("Two-factor setup code refused")
            raise ValidationError(WRONG_SETUP_CODE_MESSAGE, code="wrong")
        return code


def _accept_first_code(device: TOTPDevice, code: str) -> bool:
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


# --- Pages ------------------------------------------------------------------------------------


def _mark_verified(request: HttpRequest, device: Device) -> None:
    django_otp.login(request, device)
    # A new session key for the more trusted session, as Django does at password login.
    request.session.cycle_key()


def _qr_code_svg(device: TOTPDevice) -> str:
    """The QR code as inline SVG, drawn here so no image service ever sees the secret.

    segno writes presentation attributes (fill, stroke) and no style attributes, which the
    Content-Security-Policy (style-src 'self', no 'unsafe-inline') would block.
    """
    svg = segno.make(device.config_url, error="m").svg_inline(
        scale=4,
        dark="#1b2330",
        light="#ffffff",
        omitsize=True,
        svgclass="qr-code",
        title="QR code to add KYC Desk to an authenticator app",
    )
    return mark_safe(svg)  # noqa: S308  (segno's own markup; the only text in it is the title above)


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _app_device_for_attempt(request: HttpRequest) -> TOTPDevice:
    """This setup attempt's app, unsaved: its secret lives only in this session until confirmed.

    Opening the page starts a new attempt with a new secret; a POST continues the attempt its
    page started. A secret seen on another sign-in (by someone who had only the password, say)
    belongs to that session alone, so the account's owner can never confirm it later.
    """
    key = request.session.get(PENDING_KEY_SESSION_KEY) if request.method == "POST" else None
    if key is None:
        key = default_key()
        request.session[PENDING_KEY_SESSION_KEY] = key
    return TOTPDevice(user=request.user, name=APP_DEVICE_NAME, key=key, confirmed=True)


def _new_recovery_codes(user) -> list[str]:
    """Ten fresh recovery codes; any earlier ones stop working, so only one sheet is ever valid."""
    codes: set[str] = set()
    while len(codes) < RECOVERY_CODE_COUNT:
        codes.add(StaticToken.random_token())
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return sorted(codes)


def _enrol(request: HttpRequest, device: TOTPDevice) -> list[str]:
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


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
def setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app; once its first code checks out, hand out recovery codes.

    A user who already has an app is sent to verify instead: adding a second app here would let
    anyone holding only the password attach their own phone to the account.
    """
    user = request.user
    next_url = _safe_next(request)
    if confirmed_app_devices(user).exists():
        if user.is_verified():
            return redirect(_destination(request))
        return redirect(_with_next(reverse("two_factor_verify"), next_url))

    device = _app_device_for_attempt(request)
    form = SetupForm(device, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        codes = _enrol(request, device)
        del request.session[PENDING_KEY_SESSION_KEY]
        _mark_verified(request, device)
        request.session[RECOVERY_CODES_SESSION_KEY] = codes
        return redirect(_with_next(reverse("two_factor_recovery_codes"), next_url))

    secret = b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "next": next_url or "",
        "qr_svg": _qr_code_svg(device),
        "config_url": device.config_url,
        "secret": secret,
        "secret_grouped": _grouped(secret),
    }
    return render(request, "two_factor/setup.html", context)


@require_GET  # not HEAD either: drawing this page uses the codes up
@never_cache
@login_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """The new recovery codes, once: they leave the session as this page is drawn."""
    codes = request.session.pop(RECOVERY_CODES_SESSION_KEY, None)
    if not codes:
        return redirect(_destination(request))
    context = {"codes": codes, "codes_text": "\n".join(codes), "continue_url": _destination(request)}
    return render(request, "two_factor/recovery_codes.html", context)


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """Ask for a code, and say when the app was added, so an owner who never added it can tell."""
    user = request.user
    next_url = _safe_next(request)
    if user.is_verified():
        return redirect(_destination(request))
    app_device = confirmed_app_devices(user).order_by("pk").last()
    if app_device is None:
        return redirect(_with_next(reverse("two_factor_setup"), next_url))

    form = VerifyForm(user, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        _mark_verified(request, form.device)
        used_recovery_code = isinstance(form.device, StaticDevice)
        logger.info("Two-factor verified with %s", "a recovery code" if used_recovery_code else "the app")
        return redirect(_destination(request))
    context = {"form": form, "next": next_url or "", "app_added_at": app_device.created_at}
    return render(request, "two_factor/verify.html", context)
