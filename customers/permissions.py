"""Who may look customers up: active users holding `customers.lookup_customer`."""

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from dashboard.accounts.sessions import login_redirect

LOOKUP_PERMISSION = "customers.lookup_customer"
# Created by migration 0003 with exactly the lookup permission; how people are given access.
COMPLIANCE_STAFF_GROUP = "Compliance staff"


def lookup_permission_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send anonymous users to the login page and refuse (403) those without the permission.

    An htmx request from a page whose session has expired gets a client-side redirect, so the
    login page replaces the whole page instead of appearing inside the result card.
    """

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return login_redirect(request)
        if not request.user.has_perm(LOOKUP_PERMISSION):
            raise PermissionDenied("Customer lookups need the customers.lookup_customer permission.")
        return view(request, *args, **kwargs)

    return guarded
