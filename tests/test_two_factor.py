"""Two-factor sign-in: who is held at the two-factor pages, enrolment, recovery codes, verifying."""

import re
from urllib.parse import quote

import pytest
from django.http import HttpResponse
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard.two_factor import RECOVERY_CODES_SESSION_KEY, THROTTLED_MESSAGE, TwoFactorMiddleware

pytestmark = pytest.mark.django_db

SETUP = "/accounts/two-factor/setup/"
VERIFY = "/accounts/two-factor/verify/"
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


def pending_device(user) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user, confirmed=False)


@pytest.mark.usefixtures("require_2fa")
def test_setup_page_draws_the_qr_code_as_inline_svg_and_shows_the_key_without_inline_styles(
    staff_client, staff_user
):
    response = staff_client.get(SETUP)

    assert response.status_code == 200
    html = response.content.decode()
    device = pending_device(staff_user)
    assert device.name == "Authenticator app"
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


def test_setup_page_reuses_the_pending_device_so_a_scanned_code_stays_valid(staff_client, staff_user):
    first = staff_client.get(SETUP).context["secret"]
    second = staff_client.get(SETUP).context["secret"]

    assert first == second
    assert TOTPDevice.objects.filter(user=staff_user).count() == 1


@pytest.mark.usefixtures("require_2fa")
def test_setup_refuses_a_wrong_code_and_leaves_the_device_unconfirmed(staff_client, staff_user):
    staff_client.get(SETUP)
    device = pending_device(staff_user)

    response = staff_client.post(SETUP, {"token": wrong_code_for(device)})

    assert response.status_code == 200
    assert "That code didn&#x27;t work" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=staff_user, confirmed=True).exists()
    assert not is_verified(staff_client)
    assert staff_client.get(SEARCH)["Location"].startswith(SETUP)


@pytest.mark.usefixtures("require_2fa")
def test_setup_with_the_right_code_confirms_verifies_and_shows_ten_recovery_codes_exactly_once(
    staff_client, staff_user
):
    staff_client.get(SETUP)
    device = pending_device(staff_user)

    response = staff_client.post(SETUP, {"token": code_for(device)})

    assert response.status_code == 302
    assert response["Location"] == RECOVERY_CODES
    device.refresh_from_db()
    assert device.confirmed
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


def test_setup_replaces_earlier_recovery_codes(staff_client, staff_user, recovery_code):
    staff_client.get(SETUP)
    staff_client.post(SETUP, {"token": code_for(pending_device(staff_user))})

    assert not StaticToken.objects.filter(token=recovery_code).exists()
    assert StaticDevice.objects.filter(user=staff_user).count() == 1
    assert StaticToken.objects.filter(device__user=staff_user).count() == 10


@pytest.mark.usefixtures("require_2fa")
def test_setup_carries_next_through_to_the_continue_button(staff_client, staff_user):
    staff_client.get(setup_url(DEEP_LINK))
    response = staff_client.post(SETUP, {"token": code_for(pending_device(staff_user)), "next": DEEP_LINK})

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
