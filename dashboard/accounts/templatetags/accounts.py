"""What the top bar and the error pages say of the signed-in user: two-factor, and single sign-on."""

from django import template
from django.conf import settings
from django.contrib.auth.models import Group

from dashboard.accounts.sso import session as sso_session
from dashboard.accounts.two_factor.devices import confirmed_app_devices
from dashboard.accounts.two_factor.middleware import held_at

register = template.Library()


@register.filter
def has_two_factor(user) -> bool:
    """Whether the user has enrolled an authenticator app, the device sign-in asks a code of."""
    return user.is_authenticated and confirmed_app_devices(user).exists()


@register.filter
def second_factor_at_provider(request) -> bool:
    """Whether the identity provider vouched for a second factor at this sign-in: no local one is offered."""
    return sso_session.provider_verified_second_factor(request)


@register.filter
def held_at_sign_in(request) -> bool:
    """Whether the signed-in user has a two-factor page still to pass: the top bar offers only Log out."""
    return held_at(request) is not None


@register.filter
def signed_in_through_provider(request) -> bool:
    return sso_session.is_single_sign_on(request)


@register.simple_tag
def provider_groups_granting(permission: str) -> list[str]:
    """The provider's groups (DASHBOARD_OIDC_GROUP_MAP) whose group here holds `permission` ("app.codename").

    What the 403 page names under single sign-on: groups here are reset from the provider's at each
    sign-in, so access is asked for there.
    """
    app_label, _, codename = permission.partition(".")
    granting = set(
        Group.objects.filter(
            name__in=settings.DASHBOARD_OIDC_GROUP_MAP.values(),
            permissions__content_type__app_label=app_label,
            permissions__codename=codename,
        ).values_list("name", flat=True)
    )
    return sorted(name for name, group in settings.DASHBOARD_OIDC_GROUP_MAP.items() if group in granting)


@register.simple_tag
def single_sign_on_provider() -> str:
    """The provider's name as the login page's button says it (DASHBOARD_OIDC_PROVIDER_NAME)."""
    return settings.DASHBOARD_OIDC_PROVIDER_NAME
