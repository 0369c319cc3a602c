"""Two-factor sign-in: who is held at the two-factor pages, enrolment, recovery codes, verifying."""

import logging
import re
from base64 import b32decode, b32encode
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard.accounts.two_factor.forms import THROTTLED_MESSAGE, _check_code
from dashboard.accounts.two_factor.middleware import TwoFactorMiddleware
from dashboard.accounts.two_factor.views import PENDING_KEY_SESSION_KEY, RECOVERY_CODES_SESSION_KEY
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME

pytestmark = pytest.mark.django_db

SETUP = "/accounts/two-factor/setup/"
VERIFY = "/accounts/two-factor/verify/"
LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
RECOVERY_CODES = "/accounts/two-factor/recovery-codes/"
SEARCH = "/customers/"
DEEP_LINK = "/customers/6b1d3c9e-2f4a-4c1e-9a53-1f8f0c2b7d44/"


@pytest.fixture
def require_2fa(settings):
    settings.DASHBOARD_REQUIRE_2FA = True


@pytest.fixture
def app_device(staff_user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=True)


@pytest.fixture
def recovery_code(staff_user) -> str:
    device = StaticDevice.objects.create(user=staff_user, name="Recovery codes")
    return device.token_set.create(token=StaticToken.random_token()).token


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def wrong_code_for(device: TOTPDevice) -> str:
    return f"{(int(code_for(device)) + 500_000) % 1_000_000:06d}"


def key_on_page(response: HttpResponse) -> bytes:
    """The setup key as a person reads it off the setup page."""
    shown = re.search(r'id="secret-key">([A-Z2-7 ]+)</code>', response.content.decode())
    assert shown is not None
    return b32decode(shown.group(1).replace(" ", ""))


def code_for_key(key: bytes, *, steps_ahead: int = 0) -> str:
    return f"{totp(key, drift=steps_ahead):06d}"


def wrong_code_for_key(key: bytes) -> str:
    return f"{(int(code_for_key(key)) + 500_000) % 1_000_000:06d}"


def enrol(client: Client) -> bytes:
    """Enrol through the setup page, as its user would; the key the app now holds."""
    key = key_on_page(client.get(SETUP))
    response = client.post(SETUP, {"token": code_for_key(key)})
    assert response.status_code == 302
    return key


def log_in(client: Client) -> None:
    response = client.post(LOGIN, {"username": STAFF_USERNAME, "password": STAFF_PASSWORD})
    assert response.status_code == 302


def setup_url(next_url: str) -> str:
    return f"{SETUP}?next={quote(next_url, safe='')}"


def verify_url(next_url: str) -> str:
    return f"{VERIFY}?next={quote(next_url, safe='')}"


def is_verified(client: Client) -> bool:
    return "otp_device_id" in client.session


# --- Who is held where ------------------------------------------------------------------------


@pytest.mark.usefixtures("require_2fa")
@pytest.mark.parametrize("path", [SEARCH, DEEP_LINK, "/admin/"])
def test_when_required_a_password_only_session_is_sent_to_setup_first(staff_client, path):
    response = staff_client.get(path)

    assert response.status_code == 302
    assert response["Location"] == setup_url(path)


@pytest.mark.usefixtures("require_2fa")
def test_when_required_an_htmx_request_gets_a_client_redirect_back_to_the_page_not_the_fragment(
    staff_client, htmx_headers
):
    response = staff_client.get(
        f"{SEARCH}?customer_id=abc",
        headers={**htmx_headers, "HX-Current-URL": f"http://testserver{DEEP_LINK}"},
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == setup_url(DEEP_LINK)


def test_an_htmx_request_from_a_user_with_an_app_gets_a_client_redirect_to_verify(
    staff_client, app_device, htmx_headers
):
    response = staff_client.get(
        SEARCH, headers={**htmx_headers, "HX-Current-URL": "http://testserver/customers/"}
    )

    assert response["HX-Redirect"] == verify_url(SEARCH)


def test_when_not_required_a_user_without_an_app_reaches_the_customers_page(staff_client):
    assert staff_client.get(SEARCH).status_code == 200


def test_when_not_required_a_half_finished_enrolment_does_not_hold_the_user(staff_client, staff_user):
    TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=False)

    assert staff_client.get(SEARCH).status_code == 200


def test_when_not_required_a_user_with_an_app_is_still_asked_for_a_code(staff_client, app_device):
    response = staff_client.get(DEEP_LINK)

    assert response.status_code == 302
    assert response["Location"] == verify_url(DEEP_LINK)


@pytest.mark.usefixtures("require_2fa")
def test_anonymous_users_are_left_to_the_login_redirect(client):
    response = client.get(SEARCH)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.usefixtures("require_2fa")
def test_logout_works_while_unverified(staff_client):
    response = staff_client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in staff_client.session


@pytest.mark.usefixtures("require_2fa")
@pytest.mark.parametrize("path", ["/static/css/app.css", "/accounts/login/", SETUP, VERIFY])
def test_the_middleware_lets_an_unverified_user_through_to_what_verifying_needs(rf, staff_user, path):
    """Called directly: WhiteNoise answers static files before the middleware in the full stack."""
    request = rf.get(path)
    request.user = staff_user
    staff_user.is_verified = lambda: False

    response = TwoFactorMiddleware(lambda request: HttpResponse("passed"))(request)

    assert response.content == b"passed"


# --- Enrolment --------------------------------------------------------------------------------


@pytest.mark.usefixtures("require_2fa")
def test_setup_page_draws_the_qr_code_as_inline_svg_and_shows_the_key_without_inline_styles(staff_client):
    response = staff_client.get(SETUP)

    assert response.status_code == 200
    html = response.content.decode()
    svg = re.search(r"<svg\b.*?</svg>", html, re.DOTALL)
    assert svg is not None
    assert "<path" in svg.group()
    # The Content-Security-Policy allows no inline styles and no inline scripts.
    assert "style=" not in html
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    grouped_key = response.context["secret_grouped"]
    assert re.fullmatch(r"([A-Z2-7]{4} )*[A-Z2-7]{1,4}", grouped_key)
    assert grouped_key in html
    assert "otpauth://totp/KYC%20Desk%3Ajane?secret=" in html
    assert 'autocomplete="one-time-code"' in html
    assert 'inputmode="numeric"' in html


def test_each_opening_of_the_setup_page_draws_a_new_key_and_stores_no_device(staff_client, staff_user):
    first = key_on_page(staff_client.get(SETUP))
    second = key_on_page(staff_client.get(SETUP))

    assert first != second
    assert not TOTPDevice.objects.filter(user=staff_user).exists()


def test_the_setup_key_is_held_on_the_server_not_in_the_form_or_the_cookie(staff_client, settings):
    html = staff_client.get(SETUP).content.decode()
    hex_key = staff_client.session[PENDING_KEY_SESSION_KEY]

    assert settings.SESSION_ENGINE != "django.contrib.sessions.backends.signed_cookies"
    inputs = " ".join(re.findall(r"<input\b[^>]*>", html))
    assert hex_key not in inputs
    assert b32encode(bytes.fromhex(hex_key)).decode() not in inputs


def test_a_code_from_a_setup_page_opened_earlier_is_refused(staff_client, staff_user):
    earlier_key = key_on_page(staff_client.get(SETUP))
    staff_client.get(SETUP)  # another tab, or the page opened again

    response = staff_client.post(SETUP, {"token": code_for_key(earlier_key)})

    assert response.status_code == 200
    assert "scan the QR code on this page" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=staff_user).exists()
    assert not is_verified(staff_client)


def test_a_setup_post_without_a_setup_page_is_refused(staff_client, staff_user):
    response = staff_client.post(SETUP, {"token": "123456"})

    assert response.status_code == 200
    assert "That code didn&#x27;t work" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=staff_user).exists()


@pytest.mark.usefixtures("require_2fa")
def test_setup_refuses_a_wrong_code_and_stores_no_device(staff_client, staff_user):
    key = key_on_page(staff_client.get(SETUP))

    response = staff_client.post(SETUP, {"token": wrong_code_for_key(key)})

    assert response.status_code == 200
    assert "That code didn&#x27;t work" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=staff_user).exists()
    assert not is_verified(staff_client)
    assert staff_client.get(SEARCH)["Location"].startswith(SETUP)


def test_after_a_wrong_code_the_page_keeps_the_key_the_app_already_holds(staff_client):
    key = key_on_page(staff_client.get(SETUP))

    again = staff_client.post(SETUP, {"token": wrong_code_for_key(key)})
    assert key_on_page(again) == key
    response = staff_client.post(SETUP, {"token": code_for_key(key)})

    assert response.status_code == 302
    assert is_verified(staff_client)


@pytest.mark.usefixtures("require_2fa")
def test_setup_with_the_right_code_confirms_verifies_and_shows_ten_recovery_codes_exactly_once(
    staff_client, staff_user
):
    key = key_on_page(staff_client.get(SETUP))

    response = staff_client.post(SETUP, {"token": code_for_key(key)})

    assert response.status_code == 302
    assert response["Location"] == RECOVERY_CODES
    device = TOTPDevice.objects.get(user=staff_user)
    assert device.confirmed
    assert device.name == "Authenticator app"
    assert device.bin_key == key
    assert PENDING_KEY_SESSION_KEY not in staff_client.session
    assert is_verified(staff_client)
    assert staff_client.get(SEARCH).status_code == 200

    page = staff_client.get(RECOVERY_CODES)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    shown = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())
    stored = StaticToken.objects.filter(device__user=staff_user).values_list("token", flat=True)
    assert len(shown) == 10
    assert sorted(shown) == sorted(stored)
    assert RECOVERY_CODES_SESSION_KEY not in staff_client.session

    again = staff_client.get(RECOVERY_CODES)
    assert again.status_code == 302
    assert again["Location"] == SEARCH
    assert not any(code in staff_client.get(SEARCH).content.decode() for code in shown)


def test_the_code_that_confirmed_the_app_cannot_be_entered_again_at_sign_in(staff_client, staff_user):
    key = key_on_page(staff_client.get(SETUP))
    first_code = code_for_key(key)
    staff_client.post(SETUP, {"token": first_code})

    later = Client()
    later.force_login(staff_user)
    response = later.post(VERIFY, {"token": first_code})

    assert "That code didn&#x27;t work" in response.content.decode()
    assert not is_verified(later)


def test_confirmation_replaces_every_earlier_device_of_the_user(staff_client, staff_user, recovery_code):
    leftover = TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=False)

    enrol(staff_client)

    assert not TOTPDevice.objects.filter(pk=leftover.pk).exists()
    assert list(TOTPDevice.objects.filter(user=staff_user).values_list("confirmed", flat=True)) == [True]
    assert not StaticToken.objects.filter(token=recovery_code).exists()
    assert StaticDevice.objects.filter(user=staff_user).count() == 1
    assert StaticToken.objects.filter(device__user=staff_user).count() == 10


@pytest.mark.usefixtures("require_2fa")
def test_a_key_copied_from_the_setup_page_before_the_owner_enrols_never_signs_in(staff_user):
    """Issue #10: someone with only the password copies a setup key and waits for the owner."""
    attacker = Client()
    log_in(attacker)
    copied_key = key_on_page(attacker.get(SETUP))
    attacker.post(LOGOUT)

    owner = Client()
    log_in(owner)
    enrol(owner)

    log_in(attacker)
    assert attacker.get(SEARCH)["Location"] == verify_url(SEARCH)
    # A code for the next time step: the owner's enrolment used up the current one, which
    # would hide a shared key.
    response = attacker.post(VERIFY, {"token": code_for_key(copied_key, steps_ahead=1)})

    assert response.status_code == 200
    assert "That code didn&#x27;t work" in response.content.decode()
    assert not is_verified(attacker)
    assert attacker.get(SEARCH)["Location"] == verify_url(SEARCH)


def test_enrolment_is_recorded_on_the_users_history_in_the_admin(staff_client, staff_user, admin_client):
    key = enrol(staff_client)

    entry = LogEntry.objects.get(object_id=str(staff_user.pk), content_type__model="user")
    assert entry.user == staff_user
    assert entry.is_change()
    assert entry.change_message.startswith("Set up two-factor sign-in from 127.0.0.1")
    history = admin_client.get(f"/admin/auth/user/{staff_user.pk}/history/").content.decode()
    assert "Set up two-factor sign-in from 127.0.0.1" in history
    assert key.hex() not in entry.change_message
    assert b32encode(key).decode() not in entry.change_message


def test_enrolment_is_logged_with_the_address_and_never_the_secret_or_codes(staff_client, staff_user, caplog):
    with caplog.at_level(logging.INFO, logger="dashboard.accounts.two_factor"):
        key = enrol(staff_client)

    enrolled = [
        record for record in caplog.records if record.getMessage() == "Two-factor authenticator app enrolled"
    ]
    assert [record.client_ip for record in enrolled] == ["127.0.0.1"]
    logged = caplog.text
    codes = StaticToken.objects.filter(device__user=staff_user).values_list("token", flat=True)
    assert key.hex() not in logged
    assert b32encode(key).decode() not in logged
    assert not any(code in logged for code in codes)


@pytest.mark.usefixtures("require_2fa")
def test_setup_carries_next_through_to_the_continue_button(staff_client):
    key = key_on_page(staff_client.get(setup_url(DEEP_LINK)))
    response = staff_client.post(SETUP, {"token": code_for_key(key), "next": DEEP_LINK})

    assert response["Location"] == f"{RECOVERY_CODES}?next={quote(DEEP_LINK, safe='')}"
    page = staff_client.get(response["Location"])
    assert page.context["continue_url"] == DEEP_LINK
    assert f'href="{DEEP_LINK}"' in page.content.decode()


def test_setup_does_not_add_a_second_app_for_an_unverified_user(staff_client, staff_user, app_device):
    response = staff_client.get(setup_url(DEEP_LINK))

    assert response["Location"] == verify_url(DEEP_LINK)
    assert TOTPDevice.objects.filter(user=staff_user).count() == 1


def test_setup_sends_a_verified_user_with_an_app_on_without_a_new_secret(
    staff_client, staff_user, app_device
):
    staff_client.post(VERIFY, {"token": code_for(app_device)})

    response = staff_client.get(SETUP)

    assert response.status_code == 302
    assert response["Location"] == SEARCH
    assert TOTPDevice.objects.filter(user=staff_user).count() == 1


# --- Verifying --------------------------------------------------------------------------------


@pytest.mark.usefixtures("require_2fa")
def test_verify_page_says_when_the_app_was_added(staff_client, app_device, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    TOTPDevice.objects.filter(pk=app_device.pk).update(created_at=datetime(2026, 11, 25, 13, 2, tzinfo=UTC))

    html = staff_client.get(VERIFY).content.decode()

    assert "Your authenticator app was added on 2026-11-25 14:02 CET." in html


@pytest.mark.usefixtures("require_2fa")
def test_verify_page_labels_its_one_field_for_both_kinds_of_code(staff_client, app_device):
    html = staff_client.get(VERIFY).content.decode()

    assert '<label for="id_token">Code from your authenticator app, or a recovery code</label>' in html
    assert 'autocomplete="one-time-code"' in html


@pytest.mark.usefixtures("require_2fa")
def test_verify_accepts_the_app_code_and_rotates_the_session_key(staff_client, app_device):
    session_key = staff_client.session.session_key

    response = staff_client.post(VERIFY, {"token": code_for(app_device)})

    assert response.status_code == 302
    assert response["Location"] == SEARCH
    assert is_verified(staff_client)
    assert staff_client.session.session_key != session_key
    assert staff_client.get(SEARCH).status_code == 200


@pytest.mark.usefixtures("require_2fa")
def test_verify_refuses_a_wrong_code_with_a_clear_message(staff_client, app_device):
    response = staff_client.post(VERIFY, {"token": wrong_code_for(app_device)})

    assert response.status_code == 200
    assert "That code didn&#x27;t work" in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert not is_verified(staff_client)


@pytest.mark.usefixtures("require_2fa")
def test_a_recovery_code_verifies_once_and_is_refused_the_second_time(
    staff_client, staff_user, app_device, recovery_code
):
    response = staff_client.post(VERIFY, {"token": recovery_code.upper()})

    assert response.status_code == 302
    assert is_verified(staff_client)
    assert not StaticToken.objects.filter(token=recovery_code).exists()

    second = Client()
    second.force_login(staff_user)
    refused = second.post(VERIFY, {"token": recovery_code})
    assert refused.status_code == 200
    assert "That code didn&#x27;t work" in refused.content.decode()
    assert not is_verified(second)


def test_verify_sends_a_user_without_an_app_to_setup(staff_client, recovery_code):
    response = staff_client.get(verify_url(DEEP_LINK))

    assert response["Location"] == setup_url(DEEP_LINK)


def test_verify_honours_next(staff_client, app_device):
    response = staff_client.post(verify_url(DEEP_LINK), {"token": code_for(app_device), "next": DEEP_LINK})

    assert response["Location"] == DEEP_LINK


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/path", "javascript:alert(1)"])
def test_verify_ignores_an_off_site_next(staff_client, app_device, next_url):
    response = staff_client.post(VERIFY, {"token": code_for(app_device), "next": next_url})

    assert response["Location"] == SEARCH


@pytest.mark.usefixtures("require_2fa")
def test_repeated_wrong_codes_are_throttled_even_the_right_one(staff_client, app_device):
    for _ in range(3):
        response = staff_client.post(VERIFY, {"token": wrong_code_for(app_device)})
    assert THROTTLED_MESSAGE in response.content.decode()

    app_device.refresh_from_db()
    throttled = staff_client.post(VERIFY, {"token": code_for(app_device)})
    assert THROTTLED_MESSAGE in throttled.content.decode()
    assert not is_verified(staff_client)


def test_wrong_app_codes_do_not_throttle_the_recovery_codes(staff_client, app_device, recovery_code):
    for _ in range(3):
        staff_client.post(VERIFY, {"token": wrong_code_for(app_device)})

    response = staff_client.post(VERIFY, {"token": recovery_code})

    assert response.status_code == 302
    assert is_verified(staff_client)


def test_a_code_from_an_unconfirmed_device_never_verifies(staff_client, staff_user, app_device):
    """A half-finished enrolment left in the database from before issue #10 was fixed."""
    leftover = TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=False)

    response = staff_client.post(VERIFY, {"token": code_for(leftover)})

    assert "That code didn&#x27;t work" in response.content.decode()
    assert not is_verified(staff_client)


def test_checking_a_code_skips_unconfirmed_devices_whoever_passes_them(staff_user):
    leftover = TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=False)

    with pytest.raises(ValidationError) as refused:
        _check_code(staff_user, [leftover], code_for(leftover))

    assert refused.value.code == "wrong"


# --- Methods ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method"),
    [
        *(
            (path, method)
            for path in (SETUP, VERIFY)
            for method in ("TRACE", "PUT", "PATCH", "DELETE", "HEAD")
        ),
        *((RECOVERY_CODES, method) for method in ("POST", "HEAD", "TRACE", "PUT", "DELETE")),
    ],
)
def test_two_factor_pages_answer_only_the_methods_they_need(staff_client, path, method):
    assert staff_client.generic(method, path).status_code == 405


def test_a_head_request_does_not_use_up_the_recovery_codes(staff_client):
    enrol(staff_client)

    staff_client.head(RECOVERY_CODES)

    assert len(staff_client.get(RECOVERY_CODES).context["codes"]) == 10


# --- The admin never shows a second factor ----------------------------------------------------


def totp_admin(device: TOTPDevice, subpage: str = "change/") -> str:
    return f"/admin/otp_totp/totpdevice/{device.pk}/{subpage}"


@pytest.mark.parametrize("subpage", ["change/", "history/", "delete/", None])
def test_admin_totp_device_pages_never_show_the_key(admin_client, app_device, subpage):
    url = totp_admin(app_device, subpage) if subpage else "/admin/otp_totp/totpdevice/"

    response = admin_client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert app_device.key not in html
    assert b32encode(app_device.bin_key).decode() not in html
    assert "otpauth://" not in html


@pytest.mark.parametrize("subpage", ["config/", "qrcode/"])
def test_admin_does_not_serve_a_totp_devices_qr_code_or_setup_details(admin_client, app_device, subpage):
    assert admin_client.get(totp_admin(app_device, subpage)).status_code == 403


@pytest.mark.parametrize("subpage", ["change/", "history/", "delete/", None])
def test_admin_static_device_pages_never_list_recovery_codes(
    admin_client, staff_user, recovery_code, subpage
):
    device = StaticDevice.objects.get(user=staff_user)
    url = (
        f"/admin/otp_static/staticdevice/{device.pk}/{subpage}"
        if subpage
        else "/admin/otp_static/staticdevice/"
    )

    response = admin_client.get(url)

    assert response.status_code == 200
    assert recovery_code not in response.content.decode()
