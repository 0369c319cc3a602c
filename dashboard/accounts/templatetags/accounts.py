"""What the top bar offers the signed-in user, decided by dashboard.accounts.two_factor.devices."""

from django import template

from dashboard.accounts.two_factor.devices import confirmed_app_devices

register = template.Library()


@register.filter
def has_two_factor(user) -> bool:
    """Whether the user has enrolled an authenticator app, the device sign-in asks a code of."""
    return user.is_authenticated and confirmed_app_devices(user).exists()
