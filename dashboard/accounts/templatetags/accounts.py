"""What the top bar offers the signed-in user, decided by dashboard.accounts.two_factor."""

from django import template

from dashboard.accounts.two_factor.devices import confirmed_app_devices
from dashboard.accounts.two_factor.middleware import held_at

register = template.Library()


@register.filter
def has_two_factor(user) -> bool:
    """Whether the user has enrolled an authenticator app, the device sign-in asks a code of."""
    return user.is_authenticated and confirmed_app_devices(user).exists()


@register.filter
def held_at_sign_in(user) -> bool:
    """Whether the user still has a two-factor page to pass: the top bar then offers only Log out."""
    return held_at(user) is not None
