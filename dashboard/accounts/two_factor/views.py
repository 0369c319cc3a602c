"""The two-factor pages: enrol an authenticator app, see the recovery codes once, verify a sign-in."""

import logging
from base64 import b32encode

import django_otp
import segno
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

from dashboard.accounts.two_factor.devices import APP_DEVICE_NAME, confirmed_app_devices, enrol
from dashboard.accounts.two_factor.forms import SetupForm, VerifyForm
from dashboard.accounts.two_factor.next_page import destination, safe_next, with_next

logger = logging.getLogger(__name__)

# Fresh recovery codes wait here between the enrolment POST and the one page that shows them.
RECOVERY_CODES_SESSION_KEY = "two_factor_new_recovery_codes"
# The secret of the setup attempt under way, kept on the server (database sessions) and nowhere
# else until its first code checks out.
PENDING_KEY_SESSION_KEY = "two_factor_pending_key"


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


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
def setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app; once its first code checks out, hand out recovery codes.

    A user who already has an app is sent to verify instead: adding a second app here would let
    anyone holding only the password attach their own phone to the account.
    """
    user = request.user
    next_url = safe_next(request)
    if confirmed_app_devices(user).exists():
        if user.is_verified():
            return redirect(destination(request))
        return redirect(with_next(reverse("two_factor_verify"), next_url))

    device = _app_device_for_attempt(request)
    form = SetupForm(device, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        codes = enrol(request, device)
        del request.session[PENDING_KEY_SESSION_KEY]
        _mark_verified(request, device)
        request.session[RECOVERY_CODES_SESSION_KEY] = codes
        return redirect(with_next(reverse("two_factor_recovery_codes"), next_url))

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
        return redirect(destination(request))
    context = {"codes": codes, "codes_text": "\n".join(codes), "continue_url": destination(request)}
    return render(request, "two_factor/recovery_codes.html", context)


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """Ask for a code, and say when the app was added, so an owner who never added it can tell."""
    user = request.user
    next_url = safe_next(request)
    if user.is_verified():
        return redirect(destination(request))
    app_device = confirmed_app_devices(user).order_by("pk").last()
    if app_device is None:
        return redirect(with_next(reverse("two_factor_setup"), next_url))

    form = VerifyForm(user, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        _mark_verified(request, form.device)
        used_recovery_code = isinstance(form.device, StaticDevice)
        logger.info("Two-factor verified with %s", "a recovery code" if used_recovery_code else "the app")
        return redirect(destination(request))
    context = {"form": form, "next": next_url or "", "app_added_at": app_device.created_at}
    return render(request, "two_factor/verify.html", context)
