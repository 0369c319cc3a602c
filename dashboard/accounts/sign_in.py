"""The login page: "Sign in with <provider>" where single sign-on is set up, and the password form as
DASHBOARD_PASSWORD_SIGN_IN allows (dashboard/accounts/passwords.py decides who may use it).
"""

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.urls import reverse

from dashboard.accounts.passwords import password_sign_in_mode

PASSWORDS_OFF_MESSAGE = "Password sign-in is turned off here. Sign in with {provider} instead."


BREAK_GLASS_REFUSED_MESSAGE = (
    "Please enter a correct username and password. Only superusers may sign in with a password here; "
    "everyone else signs in with {provider}."
)


class PasswordSignInForm(AuthenticationForm):
    """Django's form, saying plainly that passwords are off, or for superusers only, when they are."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if password_sign_in_mode() == "break-glass":
            self.error_messages = self.error_messages | {
                "invalid_login": BREAK_GLASS_REFUSED_MESSAGE.format(
                    provider=settings.DASHBOARD_OIDC_PROVIDER_NAME
                )
            }

    def clean(self):
        if password_sign_in_mode() == "off":
            raise forms.ValidationError(
                PASSWORDS_OFF_MESSAGE.format(provider=settings.DASHBOARD_OIDC_PROVIDER_NAME),
                code="passwords_off",
            )
        return super().clean()


class LoginView(auth_views.LoginView):
    form_class = PasswordSignInForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        next_page = context.get("next") or ""
        context["password_sign_in"] = password_sign_in_mode()
        if settings.SINGLE_SIGN_ON:
            start = reverse("sso_start")
            context["single_sign_on_url"] = (
                f"{start}?{urlencode({'next': next_page})}" if next_page else start
            )
            context["single_sign_on_name"] = settings.DASHBOARD_OIDC_PROVIDER_NAME
        return context
