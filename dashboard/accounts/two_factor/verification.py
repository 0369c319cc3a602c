"""Whether a session passed its second factor: kept by the session, not read on every request.

django-otp's OTPMiddleware loads the device a session was verified with on every request (a
query), to set request.user.otp_device. This subclass keeps the answer in the session's copy of
the user's access, beside their permissions (dashboard/accounts/access.py), and reads both again
only when that copy is no longer true: the user's access stamp moved on (a device of theirs added
or deleted, a permission changed), or the session names another device than the copy was made for.

What it read goes into the session only when the session is saved anyway (access.py says why); a
code entered on the verify page saves it, with the device django-otp's login just put there.

It overrides django-otp 1.7's per-request hook (requirements.txt pins the version); the tests in
tests/unit/test_access.py fail if a verified session stops being verified, or a deleted device
leaves it verified.
"""

from django.contrib.auth import SESSION_KEY as USER_SESSION_KEY
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.middleware import OTPMiddleware
from django_otp.models import Device

from dashboard.accounts import access

# What this request knows of the signed-in user's access: the copy it used, or what it read.
_REQUEST_ACCESS = "_dashboard_access"


class SessionVerificationMiddleware(OTPMiddleware):
    """django-otp's middleware, reading the device and the permissions once per session."""

    # django-otp's async path would read the device on every request; the dashboard serves sync only.
    async_capable = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self._install_lazy_accessors(request)
        response = self.get_response(request)
        _keep_if_saved(request)
        return response

    def _verify_user_sync(self, request, user):
        self._init_user_fields(user)
        if not user.is_authenticated:
            return user
        device_id = request.session.get(DEVICE_ID_SESSION_KEY, "")
        kept = access.kept_access(request.session, user, device_id=device_id)
        if kept is None:
            device = self._device_from_persistent_id(device_id) if device_id else None
            device = self._finalize_device(request, user, device)
            user.otp_device = device
            kept = access.read_access(user, device_id=device.persistent_id if device else "")
        elif kept.device_id:
            # Verified, as the copy says; the device itself is read only if something asks for it.
            user.otp_device = SimpleLazyObject(lambda: Device.from_persistent_id(kept.device_id))
        access.use_kept_permissions(user, kept)
        setattr(request, _REQUEST_ACCESS, (user, kept))
        return user


def _keep_if_saved(request: HttpRequest) -> None:
    """Put what this request knows into the session, if the session is saved anyway and still the user's.

    The device may have changed during the request: django-otp's login names the one a code was
    just entered for, and sets it on the user, which is how it is known to be theirs.
    """
    known = getattr(request, _REQUEST_ACCESS, None)
    session = request.session
    if known is None or not session.modified:
        return
    user, kept = known
    if session.get(USER_SESSION_KEY) != str(user.pk):  # signed out, or someone else signed in
        return
    device_id = session.get(DEVICE_ID_SESSION_KEY, "")
    if device_id != kept.device_id:
        device = user.otp_device
        if device is None or device.persistent_id != device_id:
            return
        kept = kept.but_for_device(device_id)
    access.keep(session, kept)
